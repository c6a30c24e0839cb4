"""The answer step: pick the evidence sentence, show it as the answer with the words that answer
the question singled out (`Answer.short`), and refuse when the documents do not hold it.

The sentences are ranked by several signals fused with weights fitted on the tune half of
XQuAD's articles (features.py: dense cosine, BM25 over the candidates, the question's rare
words, names and numbers, the expected answer type, the neighbours), or by the dense cosine
alone (`RAG_SENTENCE_RANKING=dense`). Refusal: the dense cosine's threshold and the name check,
or a classifier over the same ranking (`RAG_REFUSAL=learnt`, calibrated on constructed
unanswerables by benchmarks/fit_reader.py).

A 135M-parameter model rambles on long contexts, answers from memory and paraphrases, so it
neither picks the sentence nor writes the answer. By default (`RAG_SHORT_ANSWERS=copy`) its
decoding is masked so that it can only copy a span of the best sentence (rag/generate/copy.py):
that span is the short answer of a what/which question, the typed rules (span.py) find a
number, date, name or place, and for a why-question the clause that gives the reason (or no
short answer at all: a copied "Friday, Putin arrived in Beijing" is no reason). With `free`
(and for a served model, whose decoding cannot be masked) it writes a few words of its own
from the two best sentences; they are kept when every word it adds is in that evidence, and the
answer shows the sentences it took them from.
Either way every word shown as the answer is the documents' own.
"""
from __future__ import annotations

import re
from collections.abc import Generator as Steps
from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from ..embed import Embedder
from ..generate import Copy, Generator
from ..schema import Answer, Evidence, Passage, final_answer
from ..text import CONNECTORS, QUESTION_WORDS, STOP_WORDS, names, split_sentences, stem, words
from .features import (
    Candidate,
    Idf,
    features,
    fused_scores,
    load_model,
    mentions,
    place_root,
    refusal_features,
    unanswerable_probability,
)
from .judge import sentence_judgement
from .span import asks_why, kind_of, reason_clause, short_answer

REFUSAL = "The documents don't say."

_CITATION = re.compile(r"\s*\[(\d+)\]")
_PREAMBLE = re.compile(r"^(?:the answer is|answer|according to \[\d+\])\s*[:,]?\s*(?:\[\d+\]\s*[:,]?\s*)*",
                       re.IGNORECASE)
_INSTRUCTION = re.compile(
    r"<\|[a-z_]+\|>"
    r"|\b(?:ignore|disregard|forget)\b[^.]{0,40}\b(?:instructions?|prompts?|previous|prior|above)\b"
    r"|\b(?:system prompt|you are now|developer mode|jailbreak|system override)\b"
    r"|\bas an? (?:ai|assistant|language model)\b"
    r"|\b(?:assistant|ai|model|chatbot)s? (?:must|should|will) (?:answer|reply|respond|say)\b"
    r"|\bfor (?:every|each|any) (?:answer|question|reply)\b",
    re.IGNORECASE,
)
"""Sentences that address the assistant ("ignore previous instructions", chat-template tokens)."""


def addresses_assistant(passage: Passage) -> bool:
    """Does the passage give orders to the assistant? Then none of it is evidence, and no model
    reads it: with only the order's own sentence left out, the 0.5B model still answered from
    the passage's heading ("Putin's visit to Beijing, notes."), and asked to write freely it wrote
    the order's answer. The passage stays among the sources, never cited."""
    return _INSTRUCTION.search(passage.text) is not None


def unsupported_words(answer: str, question: str, evidence: str) -> list[str]:
    """Content words of the answer that are neither in the question nor in the evidence
    (compared by a crude stem, so "traveled" is supported by "travel")."""
    known = {stem(w) for w in words(question) + words(evidence)}
    return [w for w in words(answer) if w not in STOP_WORDS and stem(w) not in known]


def coverage(question: str, sentence: str) -> float:
    """Share of the question's content words (crudely stemmed) that the sentence contains; an
    adjective of a place counts when the sentence names the place ("Chinese" for "China")."""
    asked = {w for w in words(question) if w not in STOP_WORDS and w not in QUESTION_WORDS}
    if not asked:
        return 0.0
    said = words(sentence)
    stems = {stem(w) for w in said}

    def held(word: str) -> bool:
        root = place_root(word)
        return stem(word) in stems or (root is not None and any(w.startswith(root) for w in said))

    return len({stem(w) for w in asked if held(w)}) / len({stem(w) for w in asked})


def missing_names(question: str, passages: list[Passage]) -> list[str]:
    """Names in the question (Norway, NATO, FIFA World Cup) of which no retrieved passage
    mentions any word, and numbers (2018) that none contains: such a question is about
    something the documents do not cover. "Olympic Games" counts as mentioned when "Olympics"
    is; "China-Russia" when "China" or "Russia" is, "Xi's" when "Xi" is, "Indian" when "India"
    is. The question's first
    word never opens a name: it is the question's shape."""
    text = " ".join(f"{p.title} {p.text}" for p in passages).lower()
    missing = [name for name in names(question, sentence_starts=False)
               if not any(mentions(part.lower(), text) for part in re.split(r"[\s\-‐–]+", name)
                          if part and part.lower() not in CONNECTORS)]
    return missing + [n for n in re.findall(r"\b\d{2,}\b", question) if n not in text]


def informative(question: str, sentence: str) -> bool:
    """Can this sentence be evidence? Not a question, not a heading, not an instruction aimed
    at the assistant (it is data, never obeyed nor quoted as an answer), and it says something
    the question does not: a document that repeats the question (to be retrieved ahead of an
    instruction, say) does not answer it. One new word is enough ("In 1186, Temujin was elected
    khan"): on XQuAD, asking for two would drop 11 of the 1,189 answer sentences."""
    text = sentence.strip()
    if text.endswith("?") or text.startswith("#") or _INSTRUCTION.search(text):
        return False
    asked = {stem(w) for w in words(question)}
    new = {w for w in words(_CITATION.sub(" ", text))
           if w not in STOP_WORDS and w not in QUESTION_WORDS and stem(w) not in asked}
    return len(new) >= 1


def copied_sentence(draft: str, evidence: list[Evidence], min_words: int = 8) -> Evidence | None:
    """The evidence sentence the draft recites word for word (at least `min_words` of it)."""
    said = words(_CITATION.sub(" ", _PREAMBLE.sub("", draft.strip())))
    if len(said) < min_words:
        return None
    needle = f" {' '.join(said)} "
    for ev in evidence:
        if ev.date is None and needle in f" {' '.join(words(ev.text))} ":
            return ev
    return None


def holding(reply: str, evidence: list[Evidence]) -> list[Evidence]:
    """The evidence sentences a checked reply was taken from: the one that holds most of its
    words, and the next best too when the reply needs words only that one has. The answer shows
    these sentences as written, so every word a person reads is the source's own; the reply is
    only the short answer inside them."""
    said = set(words(_CITATION.sub(" ", reply))) - STOP_WORDS
    cited = {int(n) for n in _CITATION.findall(reply)}
    sentences = [ev for ev in evidence if ev.date is None] or evidence[:1]
    ranked = sorted(sentences, key=lambda ev: (-len(said & set(words(ev.text))), ev.source not in cited))
    chosen = ranked[:1]
    left = said - set(words(chosen[0].text))
    extra = [ev for ev in ranked[1:] if left & set(words(ev.text))]
    if extra:
        chosen.append(extra[0])
    return sorted(chosen, key=evidence.index)


def literal_span(phrase: str, sentences: list[Evidence]) -> str:
    """`phrase` as one of the sentences writes it (the same words in the same order, compared
    without case or punctuation), or "" when no sentence holds it word for word: only a copied
    phrase is shown as the short answer."""
    wanted = words(phrase)
    if not wanted:
        return ""
    for ev in sentences:
        found = list(re.finditer(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*", ev.text))
        said = [m.group().lower() for m in found]
        for i in range(len(said) - len(wanted) + 1):
            start, end = found[i].start(), found[i + len(wanted) - 1].end()
            whole = (start == 0 or not ev.text[start - 1].isalnum()) and \
                (end == len(ev.text) or not ev.text[end].isalnum())  # "Jos" is not "José"
            if said[i:i + len(wanted)] == wanted and whole:
                return ev.text[start:end]
    return ""


def with_date(question: str, text: str, cited: list[Passage]) -> str:
    """A "when" question answered with a relative day ("On Friday") also gets the date of the
    document it cites, from the document's date metadata."""
    if not question.strip().lower().startswith("when"):
        return text
    dates = sorted({p.date for p in cited if p.date})
    if not dates or any(d in text for d in dates):
        return text
    return f"{text} (The article is dated {', '.join(dates)}.)"


def with_relevance(passages: list[Passage], candidates: list[Evidence]) -> list[Passage]:
    """Each passage with its `relevance`: the dense cosine of its closest sentence."""
    best: dict[int, float] = {}
    for ev in candidates:
        if ev.date is None:
            best[ev.source] = max(best.get(ev.source, -1.0), ev.score)
    return [replace(p, relevance=round(best[n], 4)) if n in best else p
            for n, p in enumerate(passages, start=1)]


def _pool(evidence: list[Evidence]) -> str:
    return " ".join(ev.text for ev in evidence) + " " + " ".join(ev.date or "" for ev in evidence)


class GroundedReader:
    """Question + retrieved passages -> Answer whose claim is found in a cited passage."""

    INSTRUCTION = "Answer in a few words, citing the sentence like [1]."
    COPY_INSTRUCTION = "Answer with the few words of the text that answer the question."

    def __init__(
        self,
        embedder: Embedder,
        generator: Generator | None,
        min_score: float = 0.36,
        fallback_min_score: float = 0.49,
        evidence_sentences: int = 2,
        max_new_tokens: int = 24,
        learnt_refusal: bool = False,
        ranking: str = "fused",
        idf: Idf | None = None,
        copy: bool = True,
        end_bonus: float = 4.0,
        judge: Generator | None = None,
        judge_threshold: float = 0.5,
    ):
        self.embedder = embedder
        self.generator = generator
        self.judge = judge if judge is not None and judge.scores else None
        """A capable model that judges whether the best sentence answers the question before
        it is shown (`RAG_JUDGE`); below `judge_threshold` (fitted on XQuAD's tune half:
        judge.py) the answer is the refusal."""
        self.judge_threshold = judge_threshold
        self.min_score = min_score
        """Below this, the best sentence is too far from the question: refuse at once."""
        self.fallback_min_score = fallback_min_score
        """Answer with the best sentence only if it is at least this similar or holds half of
        the question's words, otherwise refuse: always when copying (a masked reply always
        "passes", so it says nothing of whether the text answers), and when a free reply fails
        the check."""
        self.evidence_sentences = evidence_sentences
        self.max_new_tokens = max_new_tokens
        self.ranking = ranking
        """`fused`: the fitted signals (features.py) rank the sentences; `dense`: the cosine alone
        (docs/EVALUATION.md, reader-fit)."""
        self.idf = idf
        """The collection's IDF of terms (the index's BM25 statistics), for the question's rare
        words; None: counted over the candidate sentences."""
        self.learnt_refusal = learnt_refusal
        """Refuse by the fitted classifier instead of `min_score`. Off: calibrated on XQuAD's
        encyclopedia sentences, it refuses seed-article questions whose short news sentences
        score lower (docs/EVALUATION.md, reader-fit)."""
        self.copy = copy and generator is not None and generator.copies
        """The generator's decoding is masked to copy a span of the best sentence
        (rag/generate/copy.py): its reply is always the sentence's own words."""
        self.end_bonus = end_bonus
        """Copying: added to the logit of ending the reply, per word copied, so the copy stops
        at a short span instead of running on to the sentence's end. Chosen on XQuAD's tune half
        (benchmarks/copy_span.py: what/which/why questions, gold paragraph, F1 of the short
        answer 17.8 with 0, 23.0 with 4; the held-out half did not confirm it: 17.9 and 16.7)."""

    # -- evidence -------------------------------------------------------------------------
    def candidates(self, question: str, passages: list[Passage]) -> tuple[list[Evidence], list[Candidate]]:
        """Every informative sentence of the passages (and a date line per dated document), in
        passage order, with its dense cosine to the question (`Evidence.score`)."""
        candidates: list[Evidence] = []
        places: list[tuple[int, int]] = []
        seen: set[tuple[str, int]] = set()
        dated: set[str] = set()
        for n, passage in enumerate(passages, start=1):
            if passage.date and passage.doc_id not in dated:
                dated.add(passage.doc_id)
                line = f"Publication date of this article: {passage.date}."
                candidates.append(Evidence(n, line, 0, 0, date=passage.date))
                places.append((n - 1, -10))
            position = 0
            for start, end in ([] if addresses_assistant(passage) else split_sentences(passage.text)):
                key = (passage.doc_id, passage.start + start)
                if key not in seen and informative(question, passage.text[start:end]):
                    seen.add(key)
                    candidates.append(Evidence(n, passage.text[start:end], start, end))
                    places.append((n - 1, position))
                    position += 1
        if not candidates:
            return [], []
        asked = self.embedder.encode([question])[0]
        scores = self.embedder.encode_recurring([c.text for c in candidates]) @ asked
        for cand, score in zip(candidates, scores):
            cand.score = float(score)
        return candidates, [Candidate(c.text, a, b, c.score) for c, (a, b) in zip(candidates, places)]

    def rank(self, question: str, passages: list[Passage]) -> tuple[list[Evidence], np.ndarray, bool]:
        """The candidate sentences best first by the fused score (features.py: dense cosine,
        BM25, rare words, names, numbers, answer type, neighbours), those scores, and whether
        the documents do not answer (the fitted refusal classifier; without one, the dense
        cosine's threshold and the name check). Each Evidence keeps its dense cosine as
        `score`: a number a person can compare across questions."""
        candidates, rows = self.candidates(question, passages)
        missing = bool(missing_names(question, passages))
        if not candidates:
            return [], np.zeros(0), True
        model = load_model() if self.ranking == "fused" or self.learnt_refusal else None
        dense = np.array([c.score for c in candidates])
        refuse = missing or dense.max() < self.min_score
        fused = dense
        if model is not None:
            x = features(question, rows, self.idf)
            scores = fused_scores(question, rows, model, x)
            if self.ranking == "fused":
                fused = scores
            if self.learnt_refusal and "refusal" in model:
                row = refusal_features(question, rows, x, scores, missing, self.idf)
                refuse = missing or unanswerable_probability(row, model) > model["refusal"]["threshold"]
        order = [int(i) for i in np.argsort(-fused, kind="stable")]
        # A date line is no sentence of the text, and none was in the data the weights were
        # fitted on: it keeps its place by the dense cosine, first only when closest of all.
        closest = max((c.score for c in candidates if c.date is None), default=-1.0)
        lines = [i for i in order if candidates[i].date is not None]
        first = [i for i in lines if candidates[i].score > closest]
        order = first + [i for i in order if i not in lines] + [i for i in lines if i not in first]
        return [candidates[i] for i in order], fused[order], refuse

    def select(self, question: str, passages: list[Passage]) -> list[Evidence]:
        """Every sentence of the passages (and a date line per dated document), best first."""
        return self.rank(question, passages)[0]

    def messages(self, question: str, evidence: list[Evidence]) -> list[dict[str, str]]:
        """Evidence, question, then the instruction. With the instruction first, consecutive
        prompts would share 42 tokens instead of 27 (the system turn) for llama.cpp's prefix
        reuse, but 6 of the 33 seed answers changed, more of them to the extractive fallback
        (`python benchmarks/llama_quant.py --order`), so the order stays."""
        sentences = [ev for ev in evidence if ev.date is None]
        dates = sorted({ev.date for ev in evidence if ev.date})
        lines = [f"[{ev.source}] {ev.text}" for ev in sentences]
        if dates:
            lines.append(f"(Article date: {', '.join(dates)})")
        instruction = self.COPY_INSTRUCTION if self.copy else self.INSTRUCTION
        user = "\n".join(lines) + f"\n\nQuestion: {question}\n{instruction}"
        return [{"role": "user", "content": user}]

    # -- answering ------------------------------------------------------------------------
    def run(self, question: str, passages: list[Passage]) -> Answer:
        return final_answer(self.stream(question, passages))

    def stream(self, question: str, passages: list[Passage]) -> Iterator[str | Answer]:
        """Yield text pieces as they are generated, then the final, checked Answer.

        The pieces are a draft: the final Answer may replace them with the fallback."""
        ranked, _, refuse = self.rank(question, passages)
        passages = with_relevance(passages, ranked)
        if refuse:
            yield REFUSAL
            yield self._refusal(question, passages)
            return
        best = ranked[0]
        evidence = self._evidence(ranked)
        weak = self.weak(question, ranked)
        if not weak and self.judged_out(question, best):
            yield REFUSAL
            yield self._refusal(question, passages)
            return
        if self.copy:
            if weak:
                yield self._refusal(question, passages)
                return
            text = self.extractive(best)
            phrase = yield from self._copied_phrase(question, best, evidence)
            method = "generated" if phrase else "extractive"
        else:
            text, method, phrase = "", "extractive", ""
            if self.generator is not None:
                text, phrase, method = yield from self._free_reply(question, evidence)
            if not text:
                if weak:
                    yield self._refusal(question, passages)
                    return
                text = self.extractive(best)
        cited = {int(n) for n in _CITATION.findall(text)}
        text = with_date(question, text, [passages[n - 1] for n in sorted(cited) if n <= len(passages)])
        sources = [self._highlight(p, n, evidence) if n in cited else p
                   for n, p in enumerate(passages, start=1)]
        yield Answer(question, text, sources, refused=False, method=method,
                     short=self.short(question, phrase, text))

    def weak(self, question: str, ranked: list[Evidence]) -> bool:
        """Is the best sentence too far from the question to be shown without a reply that
        passes the check: less similar than `fallback_min_score` by meaning (the closest
        sentence's cosine) and holding less than half its words?"""
        top = max((ev.score for ev in ranked), default=0.0)
        return not self.learnt_refusal and top < self.fallback_min_score and \
            coverage(question, ranked[0].text) < 0.5

    def judgement(self, question: str, best: Evidence) -> float | None:
        """The judge's P(yes) that the best sentence answers the question (None: no judge)."""
        if self.judge is None or best.date is not None:
            return None
        return sentence_judgement(self.judge, question, _CITATION.sub("", best.text))

    def judged_out(self, question: str, best: Evidence) -> bool:
        judged = self.judgement(question, best)
        return judged is not None and judged < self.judge_threshold

    @staticmethod
    def short(question: str, phrase: str, text: str) -> str:
        """The short answer: for a question that asks for a number, date, name or place, the
        phrase of that kind in the model's reply (free replies), else in the answer's sentences;
        for other questions, the model's copied phrase when it is shorter than the sentences."""
        body = _CITATION.sub("", text)
        if asks_why(question):  # the clause that gives the reason, or none at all
            found = reason_clause(question, phrase) if phrase else None
            return found or reason_clause(question, body) or ""
        if kind_of(question) == "other":
            return phrase if phrase and len(words(phrase)) < len(words(body)) else ""
        return (short_answer(question, phrase) if phrase else None) or short_answer(question, body) or ""

    def _copied_phrase(self, question: str, best: Evidence,
                       evidence: list[Evidence]) -> Steps[str, None, str]:
        """The words of the best sentence that answer a what/which question, as the model
        picks them with its decoding masked to copy that sentence (rag/generate/copy.py); "" when
        it copies nothing the question does not already say, or runs past the token limit. The
        answer shows the whole sentence: the ranking, not the 135M model, chooses it. Typed
        questions are left to the typed rules (span.py): on XQuAD's tune half they found the
        short answer better than in the model's phrase (F1 30.9 against 29.6 over all questions)."""
        if self.generator is None or best.date is not None or kind_of(question) != "other" \
                or asks_why(question):
            return ""  # a number, date, name, place or reason: the rules find it in the sentence
        skip = STOP_WORDS | QUESTION_WORDS | set(words(question))
        sentence = _CITATION.sub("", best.text)
        shown = [best] + [ev for ev in evidence if ev.date is not None]
        pieces: list[str] = []
        stream = self.generator.stream(self.messages(question, shown), self.max_new_tokens,
                                       copy_from=Copy((sentence,), frozenset(skip), self.end_bonus))
        try:
            for piece in stream:
                pieces.append(piece)
                yield piece
        finally:
            stream.close()
        reply = "".join(pieces).strip().strip(",;:").strip()
        if len(pieces) >= self.max_new_tokens or not informative(question, reply):
            return ""
        return literal_span(reply, [best])

    def _free_reply(self, question: str,
                    evidence: list[Evidence]) -> Steps[str, None, tuple[str, str, str]]:
        """(answer text, phrase, method) from the model's own few words: kept when every word
        it adds is in the evidence; the text is then the sentences it took them from, the phrase
        its reply where a sentence holds it word for word. No text when the reply fails."""
        assert self.generator is not None
        pool = _pool(evidence)
        pieces: list[str] = []
        copied: Evidence | None = None
        stream = self.generator.stream(self.messages(question, evidence), self.max_new_tokens,
                                       one_sentence=True)
        try:
            for piece in stream:
                pieces.append(piece)
                yield piece
                so_far = "".join(pieces)
                finished_words = so_far[: so_far.rfind(" ") + 1]
                if unsupported_words(_CITATION.sub(" ", finished_words), question, pool):
                    break  # it already said something the evidence does not hold: stop early
                copied = copied_sentence(finished_words, evidence)
                if copied:
                    break  # it is reciting a sentence: that sentence is the answer
        finally:
            stream.close()
        if copied:
            return self.extractive(copied), "", "extractive"
        reply = self.check(question, "".join(pieces), evidence)
        if not reply:
            return "", "", "extractive"
        chosen = holding(reply, evidence)
        text = " ".join(self.extractive(ev) for ev in chosen)
        return text, literal_span(_CITATION.sub("", reply).strip().rstrip("."), chosen), "generated"

    def _evidence(self, ranked: list[Evidence]) -> list[Evidence]:
        """The best sentences; a date line only travels along as the article date."""
        chosen = [ev for ev in ranked if ev.date is None][: self.evidence_sentences]
        dates = [ev for ev in ranked if ev.date is not None]
        if ranked[0].date is not None:
            chosen.insert(0, ranked[0])
        elif dates:
            chosen.append(dates[0])
        return chosen

    def check(self, question: str, draft: str, evidence: list[Evidence]) -> str | None:
        """The draft with valid citations if every word it adds is in the evidence, else None."""
        line = draft.strip().splitlines()[0].strip().strip('"').strip() if draft.strip() else ""
        line = _PREAMBLE.sub("", line).strip()
        if not line or "don't say" in line.lower() or "do not say" in line.lower():
            return None
        body = _CITATION.sub("", line).strip()
        if not re.search(r"[.!?][\"'”’]?$", line.rstrip("]0123456789[ ")) and not body.endswith("."):
            return None  # cut off by the token limit: a fragment is not an answer
        known = {ev.source for ev in evidence}
        cited = {int(n) for n in _CITATION.findall(line)} & known
        pool = _pool(evidence)
        asked = set(words(question))
        new_words = [w for w in words(body) if w not in STOP_WORDS and w not in asked]
        if not new_words or unsupported_words(body, question, pool):
            return None
        published = set(words(" ".join(ev.date for ev in evidence if ev.date)))
        if evidence[0].date is None and published and set(new_words) <= published:
            return None  # the publication date alone: context for "on Friday", not the event's date
        if not cited:
            def overlap(ev: Evidence) -> int:
                return len(set(new_words) & set(words(ev.text)))
            cited = {max((ev for ev in evidence if ev.date is None), key=overlap,
                         default=evidence[0]).source}
        marks = "".join(f"[{n}]" for n in sorted(cited))
        body = body.rstrip()
        if body and body[-1] in ".!?":
            return f"{body[:-1]} {marks}{body[-1]}"
        return f"{body} {marks}."

    @staticmethod
    def extractive(best: Evidence) -> str:
        if best.date is not None:
            return f"The document is dated {best.date}. [{best.source}]"
        sentence = _CITATION.sub("", best.text).strip()  # the document's own markers are not ours
        return f"{sentence} [{best.source}]"

    @staticmethod
    def _refusal(question: str, passages: list[Passage]) -> Answer:
        return Answer(question, REFUSAL, passages, refused=True, method="refusal")

    @staticmethod
    def _highlight(passage: Passage, n: int, evidence: list[Evidence]) -> Passage:
        mine = [ev for ev in evidence if ev.source == n and ev.date is None]
        if not mine:
            return passage
        return replace(passage, highlight=(mine[0].start, mine[0].end))
