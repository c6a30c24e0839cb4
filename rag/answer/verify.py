"""Sentence-by-sentence verification of a full answer against the passages it cites.

A sentence is supported when one window of a passage (a sentence, or two adjacent ones) holds
it: every number, month and name it states appears as written (a changed figure is never
supported; names may come from the sentences around the window, where a passage names its
topic, but never where the passage, anywhere in it, puts another name or figure in the same
place: "Manning's offense was" against "Denver's offense was"), its figures and negations sit in one sentence,
enough of its content words are there (crudely stemmed; question-shape words such as "how many"
do not count), and the embedding model finds the two similar above a threshold. Both thresholds
are chosen on XQuAD claims (benchmarks/verify.py). A sentence that a passage other than the one
it cites holds is re-cited; one that no passage holds is unsupported. Sentences of a passage that
address the assistant ("ignore previous instructions") never support anything: they are data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..embed import Embedder
from ..schema import Passage, SentenceCheck
from ..text import STOP_WORDS, names, split_sentences, stem, words
from .features import place_root
from .reader import _INSTRUCTION

CITATION = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*)\]")
_MARKUP = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+|\*\*|__|^#+\s*")
_NUMBER = re.compile(r"\d+(?:[.,–-]\d+)*")
"""A number as written, a score or range ("23–16") whole: its parts alone prove nothing."""
_MONTHS = frozenset({
    "january", "february", "march", "april", "june", "july", "august", "september",
    "october", "november", "december",
})
_NUMBER_WORDS = frozenset({
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "twenty", "thirty", "forty", "fifty", "hundred", "thousand", "million", "billion",
})
_PAIR = re.compile(r"\bboth\b|\b[A-Z][\w'’-]+ and [A-Z][\w'’-]+")
"""What holds a "two" without writing it: "both", or two names joined ("China and Russia" for
"the two countries")."""
_NEGATED = re.compile(r"(?:\b(?:not|never|no|without)|n't)[\s,]+(\w+)", re.IGNORECASE)


def negations(text: str) -> set[str]:
    """What is negated: the stem of the word after each "not", "never", "n't"."""
    return {stem(w) for w in _NEGATED.findall(text)}


def negation_held(sentence: str, window: str) -> bool:
    """Does the window negate what the sentence negates? The same word negated, or, for a word
    the window does not use at all, some negation in it (a paraphrase: "not connected" for "not
    directly linked"). A word the window states without a negation is the flip this catches."""
    wanted = negations(sentence) - negations(window)
    if not wanted:
        return True
    if not _NEGATED.search(window):
        return False
    used = {stem(w) for w in words(window)}
    return not (wanted & used)


REFUSAL_PHRASES = re.compile(
    r"\b(?:documents?|passages?|sources?|context)\b[^.]{0,40}\b(?:do(?:es)?n[o']t|do(?:es)? not|"
    r"never)\b[^.]{0,20}\b(?:say|contain|hold|mention|answer|provide|include)", re.IGNORECASE)
"""The fixed phrase (and its usual variants) a model writes when the passages lack the answer."""


def clean(sentence: str) -> tuple[str, list[int]]:
    """The sentence without markdown and citation markers, and the numbers it cites."""
    cited: list[int] = []
    for group in CITATION.findall(sentence):
        cited += [int(n) for n in re.split(r"\s*,\s*", group) if n]
    text = CITATION.sub("", _MARKUP.sub("", sentence)).replace("**", "").strip()
    return text, sorted(set(cited))


OPENERS = frozenset({
    "although", "though", "because", "despite", "prior", "if", "unless", "whether", "besides",
    "outside", "inside", "throughout", "meanwhile", "however", "thus", "therefore", "hence", "yet",
    "still", "instead", "moreover", "furthermore", "nevertheless", "much", "many", "several",
    "another", "every", "either", "neither", "like", "unlike", "among", "amongst", "against",
    "along", "around", "across", "beyond", "within", "without", "toward", "towards", "upon", "via",
    "per", "following", "according", "including", "today", "tomorrow", "yesterday", "now", "later",
    "earlier", "finally", "first", "second", "third", "last", "next", "initially", "originally",
    "eventually", "currently", "recently", "previously", "subsequently", "sometimes", "often",
    "aside", "apart", "usually", "generally", "typically", "mostly", "largely", "once", "even", "already",
    "ever", "perhaps",
})
"""Words that open a sentence with a capital and are no name ("Despite Manning's problems",
"Prior to 2000", "Because of ..."): with the stop words, they never start a name there."""

GENERIC = frozenset({
    "many", "much", "name", "named", "called", "term", "year", "years", "type", "kind", "way",
    "number", "did", "does", "used", "known",
})
"""Words a sentence may take from the question's shape ("how many", "in what year", "what is the
name of") that say nothing the passage must hold: they are not counted as content words."""



def _is_figure(fact: str) -> bool:
    return fact[0].isdigit() or fact.lower() in _MONTHS or fact.lower() in _NUMBER_WORDS


def facts(sentence: str, common: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """What must appear as written: numbers, months and number words, and names.

    A name that opens the sentence counts ("Medvedev arrived") unless its first word is a plain
    word: a stop word, a usual opener ("Despite", "Because"), or one of `common`, the words the
    passages write in lower case ("Teachers in Wales" when the passage says "teachers"); the rest
    of such a run still counts ("Despite Manning" -> "Manning")."""
    found = _NUMBER.findall(sentence)
    found += [w for w in words(sentence) if w in _MONTHS or (w in _NUMBER_WORDS and w != "one")]
    inside = names(sentence, sentence_starts=False)
    for name in names(sentence):
        if name in inside or name in found:
            continue
        parts = name.split()
        if _plain(parts[0], common):
            while parts and _plain(parts[0], common):
                parts.pop(0)
            name = " ".join(parts)
        if name and name not in found:
            found.append(name)
    return found + [n for n in inside if n not in found]


def _plain(word: str, common: frozenset[str] | set[str]) -> bool:
    """A capitalised word that opens a sentence and is no name: a stop word, a usual opener, or
    a word the passages write in lower case, in any form ("Developments" where they say
    "development": the same crude stem)."""
    lower = word.lower()
    if lower in STOP_WORDS or lower in OPENERS or lower in common:
        return True
    root = stem(lower)
    return len(lower) >= 5 and any(len(c) >= 5 and stem(c) == root for c in common)


def lower_words(text: str) -> set[str]:
    """The words a text writes in lower case: for `facts`, they are no names there."""
    return {w for w in re.findall(r"\b[a-z][a-z'’-]*\b", text)}


DIGITS = {w: str(n) for n, w in enumerate([
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve"])}
_WORDS_OF = {d: w for w, d in DIGITS.items()}


def holds_facts(sentence_facts: list[str], window: str) -> bool:
    """Every fact is in the window as written; a name may take a plural or possessive ending
    ("Panther" / "Panthers'") but no other change."""
    lower = window.lower()
    for fact in sentence_facts:
        digit = DIGITS.get(fact.lower())
        if digit and re.search(rf"(?<![\d.,])\b{digit}\b(?![.,]?\d)", window):
            continue  # "nine" for "9"
        if fact in _WORDS_OF and re.search(rf"\b{_WORDS_OF[fact]}\b", lower):
            continue  # "9" for "nine"
        if fact.lower() == "two" and _PAIR.search(window):
            continue  # "the two countries" for "China and Russia"
        if fact[0].isdigit():
            figure = "[-–]".join(re.escape(part) for part in re.split("[-–]", fact))
            if not re.search(rf"(?<!\d)(?<!\d[.,–-]){figure}(?![\d]|[.,–-]\d)", window):
                return False
        else:
            plural = _is_name(fact) and len(fact) >= 4
            base = re.escape(re.sub(r"(?:['’]s?|s)$", "", fact.lower()) if plural else fact.lower())
            ending = r"s?(?:['’]s?)?" if plural else ""
            if not re.search(rf"\b{base}{ending}\b", lower) and not _place_of(fact, window):
                return False
    return True


def _place_of(fact: str, window: str) -> bool:
    """Is `fact` an adjective of a place the window names ("Chinese" where it says "China")?"""
    root = place_root(fact.lower()) if " " not in fact and _is_name(fact) else None
    return root is not None and re.search(rf"\b{re.escape(root.capitalize())}[a-z]*\b", window) is not None


_IN_PLACE = (r"(?:[A-Z](?:[\w'’-]|\.(?=\w))*(?:\s+(?:of\s+|de\s+|the\s+)?[A-Z](?:[\w'’-]|\.(?=\w))*)*"
             r"|\d+(?:[.,:–-]\d+)*)")
"""A name (dots inside: "U.S") or a figure, as it may stand in the passage; a dot that ends a
sentence ends the name ("Parliament. The Scottish" is two)."""
_FRAME_WORD = re.compile(r"[A-Za-z]+|[^\sA-Za-z,]+")
_CLAUSE = re.compile(r"[:;()\[\]\"“”—]|\s[–-]\s")


def _frame(side: str, before: bool) -> str | None:
    """The word next to a fact on one side, and the one past it when that word is a stop word
    ("lost to the Broncos in the round": "to the", "in the"), as a pattern; None when no word
    is there. A frame of one stop word ("the X in") is shared by too many places to tell."""
    tokens = _FRAME_WORD.findall(side)
    taken: list[str] = []
    for token in (reversed(tokens) if before else tokens):
        if not token.isalpha() or len(taken) == 2 or (taken and taken[0].lower() not in STOP_WORDS):
            break
        taken.append(token)
    if not taken:
        return None
    taken = taken[::-1] if before else taken
    return r"[\s,]+".join(rf"(?i:{re.escape(w)})" for w in taken)


def _strong(frame: str) -> bool:
    """Is a frame pattern more than one stop word ("the", "and"), which most places share?"""
    found = re.findall(r"\(\?i:([^)]*)\)", frame)
    return len(found) > 1 or any(w.lower() not in STOP_WORDS for w in found)


def changed_in_place(sentence: str, fact: str, window: str) -> bool:
    """Does the window put another name or figure where the sentence puts `fact`, between the
    same words ("Manning's offense was" where the passage has "Denver's offense was")? A
    swapped name that the passage holds elsewhere passes every as-written test; this one sees
    that the place it sits in belongs to someone else. The passage's name may be longer ("Nikola
    Tesla" where the sentence says "Tesla"), never shorter or another."""
    at = re.search(rf"(?<![\w-]){re.escape(fact)}(?![\w-])", sentence)
    if not at:
        return False
    head, tail = sentence[:at.start()], re.sub(r"^['’]s?", "", sentence[at.end():])
    # the frame stays inside the fact's clause: across "Question: answer" it means nothing
    head, tail = _CLAUSE.split(head)[-1], _CLAUSE.split(tail)[0]
    before, after = _frame(head, True), _frame(tail, False)
    opening, closing = not head.strip(), bool(re.fullmatch(r"[\s'’\"”)]*[.!?]?[\s'’\"”)]*", tail))
    # an opening name has no word before it, a closing one none after it: the other side must do,
    # and alone it must be more than one stop word ("throughout X.", "of the X.", not "the X.")
    if (before is None and not opening) or (after is None and not closing) or before is after is None:
        return False
    if (before is None or after is None) and not _strong(before or after or ""):
        return False
    lead = rf"\b{before}[\s,]+(?:the\s+)?" if before else r"(?<![\w'’-])"
    trail = rf"[\s,]+{after}\b" if after else r"\s*[.!?;]"
    pattern = rf"{lead}({_IN_PLACE})(?:['’]s?)?{trail}"
    if re.search(pattern.replace(f"({_IN_PLACE})", f"({re.escape(fact)})"), window):
        return False  # the passage has the sentence's own wording too (a list, a repeat)
    return any(fact.lower() not in m.group(1).lower().rstrip(".")
               for m in re.finditer(pattern, window))


def _is_name(fact: str) -> bool:
    return fact[0].isupper() and fact.lower() not in _MONTHS and fact.lower() not in _NUMBER_WORDS


def word_share(sentence: str, window: str) -> float:
    """The share of the sentence's content words (stemmed) that the window holds."""
    mine = {stem(w) for w in words(sentence) if w not in STOP_WORDS and w not in GENERIC}
    if not mine:
        return 1.0
    return len(mine & {stem(w) for w in words(window)}) / len(mine)


@dataclass
class _Window:
    source: int
    start: int
    end: int
    text: str
    pair: bool = False
    around: str = ""
    """The window with the sentence before and after it: where the names it leaves unsaid (the
    passage's topic, "the team" for "the Panthers") may be found."""
    passage: str = ""
    """The whole passage: a role it gives another name anywhere is not the sentence's to claim."""


class Verifier:
    """Answer sentences + the passages -> one SentenceCheck per sentence."""

    def __init__(self, embedder: Embedder, threshold: float = 0.40, min_word_share: float = 0.5):
        self.embedder = embedder
        self.threshold = threshold
        self.min_word_share = min_word_share
        self._windows: list[_Window] = []
        self._vectors: np.ndarray | None = None
        self._key: tuple[int, ...] = ()
        self._common: set[str] = set()
        self._last: tuple[str, np.ndarray] | None = None

    def vector(self, text: str) -> np.ndarray:
        """The sentence's embedding, computed once: checking it against the cited passage, the
        others and pairs of them, and the full reader's on-topic test, all need it. The last one
        is kept (one tuple: a concurrent answer at worst computes its own again)."""
        last = self._last
        if last is None or last[0] != text:
            last = self._last = (text, self.embedder.encode([text])[0])
        return last[1]

    def windows(self, passages: list[Passage]) -> list[_Window]:
        """Every sentence and every pair of adjacent sentences, instruction-like ones left out."""
        found: list[_Window] = []
        for n, passage in enumerate(passages, start=1):
            spans = [(s, e) for s, e in split_sentences(passage.text)
                     if not _INSTRUCTION.search(passage.text[s:e])]
            for i, (s, _) in enumerate(spans):
                for last in (i, i + 1)[:2 if i + 1 < len(spans) else 1]:
                    end = spans[last][1]
                    around = passage.text[spans[max(i - 1, 0)][0]:spans[min(last + 1, len(spans) - 1)][1]]
                    found.append(_Window(n, s, end, passage.text[s:end], last > i, around,
                                         passage.text))
        return found

    def _placed(self, wanted: list[str], text: str, i: int) -> bool:
        """Do the facts sit in window i the way the sentence states them? In a pair of sentences,
        every number and date is in one of them, the main one (of the two that could be, the one
        holding more of the sentence's words): a figure from the neighbour does not vouch for a
        claim that moved it, nor a "not" from the neighbour's statement. Names may come from the
        sentences around (a passage names its topic once: "the team" for "the Panthers"), never
        from a place where the passage has another name or figure (`changed_in_place`, over the
        whole passage: a role swap may pass through another window that names both). Asking
        instead that a pronoun link the two sentences caught a few more role swaps and failed
        more supported sentences on 8 XQuAD articles (benchmarks/verify.py)."""
        window = self._windows[i]
        if any(changed_in_place(text, f, window.passage or window.around or window.text)
               for f in wanted):
            return False
        if not window.pair:
            return True
        first, second = [w for w in self._windows if w.source == window.source and not w.pair
                         and window.start <= w.start and w.end <= window.end][:2]
        figures = [f for f in wanted if _is_figure(f)]
        candidates = [w for w in (first, second) if holds_facts(figures, w.text)]
        if not candidates:
            return False
        main = max(candidates, key=lambda w: word_share(text, w.text))
        return negation_held(text, main.text)

    def prepare(self, passages: list[Passage]) -> None:
        key = tuple(p.chunk_id for p in passages) + (hash(tuple(p.text for p in passages)),)
        if key == self._key and self._vectors is not None:
            return
        self._windows = self.windows(passages)
        self._common = lower_words(" ".join(p.text for p in passages))
        self._vectors = (self.embedder.encode_recurring([w.text for w in self._windows])
                         if self._windows else np.zeros((0, 1)))
        self._key = key

    def score(self, text: str, windows: list[int]) -> list[tuple[float, int]]:
        """(similarity, window index) of the windows that hold the sentence's facts and words."""
        if not windows or self._vectors is None:
            return []
        wanted = facts(text, self._common)
        figures = [f for f in wanted if _is_figure(f)]
        eligible = [i for i in windows
                    if holds_facts(figures, self._windows[i].text)
                    and holds_facts(wanted, self._windows[i].around)
                    and self._placed(wanted, text, i)
                    and word_share(text, self._windows[i].text) >= self.min_word_share
                    and negation_held(text, self._windows[i].text)]
        if not eligible:
            return []
        vector = self.vector(text)
        sims = self._vectors[eligible] @ vector
        return sorted(((float(s), i) for s, i in zip(sims, eligible)), reverse=True)

    def check(self, sentence: str, passages: list[Passage]) -> SentenceCheck:
        text, cited = clean(sentence)
        self.prepare(passages)
        record = SentenceCheck(text=text, cited=cited)
        if not text or not words(text):
            return record
        cited_windows = [i for i, w in enumerate(self._windows) if w.source in cited]
        other_windows = [i for i, w in enumerate(self._windows) if w.source not in cited]
        for pool in (cited_windows, other_windows):  # the cited passage first, then re-cite
            ranked = [(s, i) for s, i in self.score(text, pool) if s >= self.threshold]
            if ranked:
                best = self._windows[ranked[0][1]]
                record.supported = True
                record.sources = [best.source]
                record.spans = [(best.source, best.start, best.end)]
                return record
        pair = self.pair(text)
        if pair is not None:
            first, second = (self._windows[i] for i in pair)
            record.supported = True
            record.sources = sorted({first.source, second.source})
            record.spans = [(w.source, w.start, w.end) for w in (first, second)]
        return record

    def pair(self, text: str, candidates: int = 6) -> tuple[int, int] | None:
        """Two sentences of different places (two passages, or far apart in one) that hold the
        sentence together where neither does alone ("The Chinese president's full name is Xi
        Jinping": the name in one passage, "the Chinese leader" in another). Each figure must
        still stand, as written and placed, in one of them (a figure and its claim are never
        put together from two places); the names and content words may come from both, each
        must add some, and the sentence must be similar to the two read together. A fact that no
        passage holds (a population from the model's memory) is still unsupported."""
        if self._vectors is None or not self._windows:
            return None
        wanted = facts(text, self._common)
        figures = [f for f in wanted if _is_figure(f)]
        single = [i for i, w in enumerate(self._windows) if not w.pair]
        vector = self.vector(text)
        near = sorted(single, key=lambda i: -float(self._vectors[i] @ vector))[:candidates]
        mine = {stem(w) for w in words(text) if w not in STOP_WORDS and w not in GENERIC}
        found: list[tuple[int, int]] = []
        for a, i in enumerate(near):
            for j in near[a + 1:]:
                one, two = self._windows[i], self._windows[j]
                if one.source == two.source and abs(one.start - two.start) < 2 * len(one.text):
                    continue  # neighbours are a window of their own already
                both = f"{one.around} {two.around}"
                if not holds_facts(wanted, both) or not negation_held(text, f"{one.text} {two.text}"):
                    continue
                if figures and not any(holds_facts(figures, w.text) and self._placed(wanted, text, k)
                                       for k, w in ((i, one), (j, two))):
                    continue
                if any(changed_in_place(text, f, w.passage) for f in wanted for w in (one, two)):
                    continue
                has = [{stem(x) for x in words(w.text)} & mine for w in (one, two)]
                if not has[0] - has[1] or not has[1] - has[0]:
                    continue  # one of them adds nothing: it would be a single window
                if word_share(text, f"{one.text} {two.text}") >= self.min_word_share:
                    found.append((i, j))
        if not found:
            return None
        joined = self.embedder.encode([f"{self._windows[i].text} {self._windows[j].text}" for i, j in found])
        sims = joined @ vector
        best = int(np.argmax(sims))
        return found[best] if sims[best] >= self.threshold else None

    def candidates(self, claim: str, passage: str) -> list[tuple[float, float]]:
        """For the benchmark: (word share, similarity) of every window of the passage that holds
        the claim's facts, so that both thresholds can be chosen from one pass."""
        p = Passage(0, "", "", "", None, passage, 0, len(passage), 0.0)
        self.prepare([p])
        text = clean(claim)[0]
        least, self.min_word_share = self.min_word_share, 0.0
        try:
            ranked = self.score(text, list(range(len(self._windows))))
        finally:
            self.min_word_share = least
        return [(word_share(text, self._windows[i].text), s) for s, i in ranked]

    def is_refusal(self, sentence: str) -> bool:
        return bool(REFUSAL_PHRASES.search(sentence)) or "don't say" in sentence.lower()
