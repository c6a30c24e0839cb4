"""The excerpts style, for capable local models: the model reads only the reader's best
sentences and says which words answer; the answer is the sentence that holds those words, as
written and cited, with the words singled out (`Answer.short`).

Why not the passages in full: on two cores a 1.5B model reads some tens of tokens a second, so
four passages (~1,000 tokens) cost many seconds before the first word, and a small model reading
them drifts (the 1.5B answered 4 of 22 seed questions, refusing most, when it was handed the
passages and told how to refuse). The reader's fused ranking already puts the sentence that
holds the answer among its best three for 90-94 % of XQuAD's questions (held-out and tune
halves); a short prompt of those sentences is quick to read, and the model does what it is good
at: finding the words that answer. Every word shown is the documents' own.

Whether the documents answer at all is decided from signals, not from the model's say-so
(asked to reply "Unknown", a small model almost never does): how sure the model was of its
reply (the log-probabilities of its tokens), the model judging its own reply against the
excerpts ("Is that answer stated in the excerpts? yes/no": one more forward pass over a few
tokens, the excerpts already read), and the reader's own signals (the best sentence's cosine,
the question's names). A logistic regression over them, fitted per model on the tune half of
XQuAD's articles with constructed unanswerables (benchmarks/fit_excerpts.py), says refuse or
answer; a model without a fit uses its reply and judge alone.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..generate import Generator
from ..schema import Answer, Evidence, Passage, final_answer
from ..text import STOP_WORDS, stem, words
from .judge import OWN_REPLY, answer_probability, decision
from .reader import REFUSAL, GroundedReader, coverage, literal_span, missing_names, with_date, with_relevance
from .verify import DIGITS

SYSTEM = ("Answer the question with the shortest phrase from the excerpts that answers it. "
          "If the excerpts do not answer it, reply: Unknown")
UNKNOWN = re.compile(r"^\W*(?:unknown|not (?:stated|given|mentioned)|none|n/?a)\W*$|don'?t say|do not say",
                     re.IGNORECASE)


@dataclass
class Reading:
    """What the model made of the excerpts: its reply and the signals the decision reads."""

    excerpts: list[Evidence]
    reply: str = ""
    phrase: str = ""
    """The words that answer, as an excerpt writes them (or the reply itself, when an excerpt
    holds each of its words in another form); "" when no excerpt holds them."""
    holding: list[Evidence] = field(default_factory=list)
    """The best-ranked excerpt that holds the reply: the answer's sentence."""
    logprobs: list[float] = field(default_factory=list)
    judge: float | None = None
    unknown: bool = False
    signals: dict[str, float] = field(default_factory=dict)


class ExcerptReader:
    """Question + passages -> an Answer whose text is the excerpt sentence the model's reply
    came from, or the refusal."""

    def __init__(self, ranker: GroundedReader, generator: Generator, excerpts: int = 3,
                 max_new_tokens: int = 32, judge: bool = True, model: dict | None = None):
        self.ranker = ranker
        """Ranks the passages' sentences (the compact reader's fused ranking)."""
        self.generator = generator
        self.excerpts = excerpts
        self.max_new_tokens = max_new_tokens
        self.judge = judge and generator.scores
        self.model = model if model is not None else decision("excerpts", generator.name)

    def chosen(self, ranked: list[Evidence]) -> list[Evidence]:
        """The best sentences, and the article date line when one is among the candidates (a
        "when" question may need it)."""
        sentences = [ev for ev in ranked if ev.date is None][: self.excerpts]
        dates = [ev for ev in ranked if ev.date is not None][:1]
        return sentences + dates

    @staticmethod
    def messages(question: str, excerpts: list[Evidence]) -> list[dict[str, str]]:
        lines = [f"[{ev.source}] {ev.text}" for ev in excerpts if ev.date is None]
        dates = sorted({ev.date for ev in excerpts if ev.date})
        if dates:
            lines.append(f"(Article date: {', '.join(dates)})")
        user = "Excerpts:\n" + "\n".join(lines) + f"\n\nQuestion: {question}"
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]

    def read(self, question: str, ranked: list[Evidence]) -> Reading:
        """The model's reply to the best sentences, with the signals the decision reads. The
        reply is not streamed: it is a few words, and a draft shown before the decision could be
        taken back by a refusal."""
        reading = Reading(self.chosen(ranked))
        messages = self.messages(question, reading.excerpts)
        confidence: list[float] | None = [] if self.generator.scores else None
        kwargs = {"confidence": confidence} if confidence is not None else {}
        reply = self.generator.generate(messages, self.max_new_tokens, one_line=True, **kwargs)
        reading.reply = reply.strip().strip('"').strip()
        reading.logprobs = confidence or []
        reading.unknown = not reading.reply or bool(UNKNOWN.search(reading.reply))
        if not reading.unknown and self.judge:
            reading.judge = self.generator.yes_probability(
                messages + [{"role": "assistant", "content": reading.reply},
                            {"role": "user", "content": OWN_REPLY}])
        return ground(question, reading)

    def answers(self, reading: Reading) -> bool:
        """Do the documents answer? The fitted decision over the signals, or, for a model
        without a fit, the model's own reply and judge."""
        if reading.unknown or not reading.phrase:
            return False
        if not self.model:
            return reading.judge is None or reading.judge >= 0.5
        return answer_probability(reading.signals, self.model) >= self.model["threshold"]

    def run(self, question: str, passages: list[Passage]) -> Answer:
        return final_answer(self.stream(question, passages))

    def stream(self, question: str, passages: list[Passage]) -> Iterator[str | Answer]:
        ranked, _, _ = self.ranker.rank(question, passages)
        passages = with_relevance(passages, ranked)
        if not ranked or missing_names(question, passages) or not self.answers(
                reading := self.read(question, ranked)):
            yield REFUSAL
            yield Answer(question, REFUSAL, passages, refused=True, method="refusal")
            return
        text = " ".join(GroundedReader.extractive(ev) for ev in reading.holding)
        cited = sorted({ev.source for ev in reading.holding})
        text = with_date(question, text, [passages[n - 1] for n in cited if n <= len(passages)])
        sources = [GroundedReader._highlight(p, n, reading.holding) if n in cited else p
                   for n, p in enumerate(passages, start=1)]
        short = reading.phrase if len(words(reading.phrase)) < len(words(text)) else ""
        yield text
        yield Answer(question, text, sources, refused=False, method="excerpts", short=short)


_CITATION = re.compile(r"\s*\[\d+\]")


def ground(question: str, reading: Reading) -> Reading:
    """Where the reply stands in the excerpts, and the signals: the model's own (its reply,
    confidence and judgement) are kept, the rest is worked out from the text, so a stored reply
    can be graded again without the model (benchmarks/fit_excerpts.py)."""
    sentences = [ev for ev in reading.excerpts if ev.date is None]
    reply = _CITATION.sub("", reading.reply).strip().rstrip(".")
    reading.phrase, reading.holding, literal = "", [], 0.0
    dated = [ev for ev in reading.excerpts if ev.date and any(f in reply for f in date_forms(ev.date))]
    if not reading.unknown:
        reading.phrase = quoted(reply, question, sentences)
        if reading.phrase:  # the best-ranked sentence that writes it is the answer
            reading.holding = [ev for ev in sentences if literal_span(reading.phrase, [ev])][:1]
            literal = 1.0
        elif dated:  # the article's date, which the excerpts give as a line of their own
            reading.holding, reading.phrase, literal = dated[:1], dated[0].date or "", 1.0
        else:  # the same words in another form ("2" for "two", "1500-1850" for "1500 and 1850")
            reading.holding = [ev for ev in sentences if said_in(reply, ev.text, question)][:1]
            reading.phrase, literal = (reply, 0.5) if reading.holding else ("", 0.0)
    best = reading.holding[0] if reading.holding else (sentences[0] if sentences else None)
    lp = reading.logprobs or [0.0]
    reading.signals = {
        "min_logprob": min(lp), "mean_logprob": sum(lp) / len(lp),
        "judge": reading.judge if reading.judge is not None else 0.5,
        "dense": max((ev.score for ev in sentences), default=0.0),
        "coverage": coverage(question, best.text) if best else 0.0,
        "literal": literal,
    }
    return reading


def date_forms(iso: str) -> list[str]:
    """An ISO date as a reply may write it: 2022-02-04, February 4, 2022, 4 February 2022."""
    try:
        day = datetime.date.fromisoformat(iso)
    except ValueError:
        return [iso]
    return [iso, f"{day:%B} {day.day}, {day.year}", f"{day.day} {day:%B} {day.year}"]


def quoted(reply: str, question: str, sentences: list[Evidence]) -> str:
    """The longest run of the reply's words that an excerpt writes word for word, as the excerpt
    writes it, provided the rest of the reply only repeats the question ("To travel to Beijing
    to attend the opening ceremony..." -> "to attend the opening ceremony..."); "" otherwise."""
    found = list(_RUN.finditer(reply))
    asked = {stem(w) for w in words(question)}
    for size in range(len(found), 0, -1):
        for start in range(len(found) - size + 1):
            inside = found[start:start + size]
            rest = found[:start] + found[start + size:]
            if any(m.group().lower() not in STOP_WORDS | FRAMING and stem(m.group()) not in asked
                   for m in rest):
                continue
            while len(inside) > 1 and (stem(inside[0].group()) in asked - STOP_WORDS
                                       or inside[0].group().lower() in FRAMING):
                inside = inside[1:]  # the question's own words at its edges are not the answer
            while len(inside) > 1 and stem(inside[-1].group()) in asked - STOP_WORDS:
                inside = inside[:-1]
            span = literal_span(reply[inside[0].start():inside[-1].end()], sentences)
            if span and any(w not in STOP_WORDS for w in words(span)):
                return span
    return ""


_RUN = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")
FRAMING = frozenset({"because", "since", "due", "answer", "excerpt", "excerpts", "according", "yes"})
"""Words a reply may wrap the quoted words in ("Because it was believed to ...")."""


def said_in(reply: str, sentence: str, question: str = "") -> bool:
    """Does the sentence hold every word of the reply that carries meaning (stemmed; a number
    as a digit or a word; the question's own words aside), so that the reply is the sentence's
    content in other form?"""
    said = words(re.sub(r"(?<=\d)[-–](?=\d)", " ", sentence))  # "1500-1850" and "1500 and 1850"
    held = {stem(w) for w in said} | {DIGITS.get(w, w) for w in said}
    asked = {stem(w) for w in words(question)}
    wanted = [w for w in words(re.sub(r"(?<=\d)[-–](?=\d)", " ", reply))
              if w not in STOP_WORDS | FRAMING and stem(w) not in asked]
    return bool(wanted) and all(stem(w) in held or DIGITS.get(w, w) in held for w in wanted)
