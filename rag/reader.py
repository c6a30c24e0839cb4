"""The answer step: pick the evidence sentences, let the generator phrase a short answer from
them alone, check the answer against them, and refuse when the documents do not hold it.

A 135M-parameter model rambles on long contexts and answers from memory, so it is given only
the few best sentences, asked for a short phrase, and its reply is kept only when its words are
found in the sentences it cites. Otherwise the best sentence itself is the answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from .embed import Embedder
from .generate import Generator
from .schema import Answer, Passage

REFUSAL = "The documents don't say."

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])|\n\s*\n|\n(?=\s*[-*•#])")
_WORD = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)?")
_STOP = frozenset(
    """a an the of to in on at for from by with and or but is are was were be been being it its
    this that these those as he she they them his her their we our you your i not no do does did
    has have had will would can could should may might shall than then there here what which who
    whom whose when where why how all any both each few more most other some such only own same so
    too very s t just also into about over after before between under again further once said says
    according""".split()
)


@dataclass
class Evidence:
    source: int
    """1-based position of the passage in the answer's sources: the citation number."""
    text: str
    start: int
    """Offsets of the sentence inside its passage's text."""
    end: int
    score: float


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans (start, end) in `text`; good enough for news and reports."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for match in _SENTENCE_END.finditer(text):
        _add_span(text, pos, match.start(), spans)
        pos = match.end()
    _add_span(text, pos, len(text), spans)
    return spans


def _add_span(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if len(_WORD.findall(stripped)) >= 2:
        lead = len(piece) - len(piece.lstrip())
        spans.append((start + lead, start + lead + len(stripped)))


def content_words(text: str) -> list[str]:
    return [w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in _STOP]


def support(answer: str, evidence: str) -> float:
    """Share of the answer's content words that occur in the evidence (1.0 = all of them)."""
    words = content_words(answer)
    if not words:
        return 0.0
    vocab = set(content_words(evidence))
    return sum(1 for w in words if w in vocab or w.rstrip("s") in vocab) / len(words)


class GroundedReader:
    """Question + retrieved passages -> Answer whose every claim is found in a cited passage."""

    SYSTEM = (
        "You answer questions about documents. Use only the numbered evidence. "
        "Reply with one short sentence that ends with the evidence number in brackets, like [1]. "
        "If the evidence does not answer the question, reply: " + REFUSAL
    )

    def __init__(
        self,
        embedder: Embedder,
        generator: Generator | None,
        min_score: float,
        evidence_sentences: int = 2,
        max_new_tokens: int = 32,
        min_support: float = 0.75,
    ):
        self.embedder = embedder
        self.generator = generator
        self.min_score = min_score
        self.evidence_sentences = evidence_sentences
        self.max_new_tokens = max_new_tokens
        self.min_support = min_support

    # -- evidence -------------------------------------------------------------------------
    def select(self, question: str, passages: list[Passage]) -> list[Evidence]:
        """All sentences of the passages, best first, each sentence once."""
        candidates: list[Evidence] = []
        seen: set[tuple[str, int]] = set()
        for n, passage in enumerate(passages, start=1):
            for start, end in split_sentences(passage.text):
                key = (passage.doc_id, passage.start + start)
                if key in seen:
                    continue
                seen.add(key)
                candidates.append(Evidence(n, passage.text[start:end], start, end, 0.0))
        if not candidates:
            return []
        vectors = self.embedder.encode([question] + [c.text for c in candidates])
        scores = vectors[1:] @ vectors[0]
        for cand, score in zip(candidates, scores):
            cand.score = float(score)
        order = np.argsort(-scores, kind="stable")
        return [candidates[i] for i in order]

    def messages(self, question: str, evidence: list[Evidence], passages: list[Passage]):
        lines = []
        for ev in evidence:
            date = passages[ev.source - 1].date
            dated = f" (dated {date})" if date else ""
            lines.append(f"[{ev.source}]{dated} {ev.text}")
        user = "Evidence:\n" + "\n".join(lines) + f"\n\nQuestion: {question}"
        return [{"role": "system", "content": self.SYSTEM}, {"role": "user", "content": user}]

    # -- answering ------------------------------------------------------------------------
    def run(self, question: str, passages: list[Passage]) -> Answer:
        answer: Answer | None = None
        for item in self.stream(question, passages):
            if isinstance(item, Answer):
                answer = item
        assert answer is not None
        return answer

    def stream(self, question: str, passages: list[Passage]) -> Iterator[str | Answer]:
        """Yield text pieces as they are generated, then the final, checked Answer.

        The pieces are a draft: the final Answer may replace them with the fallback."""
        ranked = self.select(question, passages)
        if not ranked or ranked[0].score < self.min_score:
            yield REFUSAL
            yield Answer(question, REFUSAL, passages, refused=True, method="refusal")
            return
        evidence = ranked[: self.evidence_sentences]
        text, method = "", "extractive"
        if self.generator is not None:
            pieces: list[str] = []
            for piece in self.generator.stream(
                self.messages(question, evidence, passages), self.max_new_tokens
            ):
                pieces.append(piece)
                yield piece
            draft = _clean("".join(pieces))
            checked = self.check(draft, evidence)
            if checked:
                text, method = checked, "generated"
        if not text:
            text = self.extractive(question, evidence[0], passages)
        cited = sorted({int(n) for n in re.findall(r"\[(\d+)\]", text)} | {evidence[0].source})
        sources = [self._highlight(p, n, evidence) if n in cited else p
                   for n, p in enumerate(passages, start=1)]
        yield Answer(question, text, sources, refused=False, method=method)

    def check(self, draft: str, evidence: list[Evidence]) -> str | None:
        """The draft with valid citations if the evidence supports it, else None."""
        if not draft or REFUSAL.lower().rstrip(".") in draft.lower():
            return None
        cited = {int(n) for n in re.findall(r"\[(\d+)\]", draft)}
        known = {ev.source for ev in evidence}
        cited &= known
        body = re.sub(r"\s*\[\d+\]", "", draft).strip()
        pool = [ev for ev in evidence if ev.source in cited] or evidence
        if support(body, " ".join(ev.text for ev in pool)) < self.min_support:
            return None
        if not cited:
            best = max(pool, key=lambda ev: support(body, ev.text))
            cited = {best.source}
        marks = "".join(f"[{n}]" for n in sorted(cited))
        body = body.rstrip()
        if body and body[-1] in ".!?":
            return f"{body[:-1]} {marks}{body[-1]}"
        return f"{body} {marks}."

    def extractive(self, question: str, best: Evidence, passages: list[Passage]) -> str:
        sentence = best.text.strip()
        end = "" if sentence[-1:] in ".!?\"”" else "."
        text = f"{sentence}{end} [{best.source}]"
        date = passages[best.source - 1].date
        if date and question.strip().lower().startswith("when") and date not in text:
            text += f" (The document is dated {date}.)"
        return text

    @staticmethod
    def _highlight(passage: Passage, n: int, evidence: list[Evidence]) -> Passage:
        mine = [ev for ev in evidence if ev.source == n]
        if not mine:
            return passage
        return replace(passage, highlight=(mine[0].start, mine[0].end))


def _clean(text: str) -> str:
    text = text.strip().splitlines()[0] if text.strip() else ""
    return text.strip().strip('"').strip()
