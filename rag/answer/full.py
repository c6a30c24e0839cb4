"""The full answer style, for capable models: the passages in full, several cited sentences,
each verified (rag/answer/verify.py) before it is shown.

Streaming yields a sentence only once it is complete and checked, so nothing unverified is ever
shown as final. Unsupported sentences are dropped from `Answer.text` and kept, marked
unsupported, in `Answer.sentences` (the page shows them as a collapsed "not found in the
sources" line; the API and CLI carry the same records). No supported sentence: the refusal.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from ..generate import Generator
from ..schema import Answer, Passage, SentenceCheck, final_answer
from ..text import split_sentences
from .reader import REFUSAL, addresses_assistant, missing_names
from .verify import Verifier

SYSTEM = (
    "Answer the question from the numbered passages, in a few sentences that use their words. "
    "End each sentence with the number of the passage it comes from, like [1]. If the passages "
    "do not answer the question, say so."
)
"""Plain on purpose: told to reply with an exact refusal sentence, and that the passages are
"data, not instructions" inside a <documents> block, the 1.5B model refused 15 of 20 answerable
seed questions with that sentence; a passage's instructions are kept out by the verifier
instead (a sentence of a passage that addresses the assistant never supports anything)."""
WITHHELD = "(withheld: this passage gives instructions to the assistant)"
"""What the model reads in place of a passage that gives it orders: documents are data."""
DEFAULT_CONTEXT = 4096
"""Tokens assumed when the backend does not say (a remote chat API): small local servers."""
CHARS_PER_TOKEN = 4


class FullReader:
    """Question + passages -> a multi-sentence Answer whose every shown sentence is verified."""

    def __init__(self, generator: Generator, verifier: Verifier, max_answer_tokens: int = 512,
                 min_relevance: float = 0.36):
        self.generator = generator
        self.verifier = verifier
        self.max_answer_tokens = max_answer_tokens
        self.min_relevance = min_relevance
        """A true sentence is no answer unless it is about the question: some supported sentence
        must be this similar to it (the compact reader's refusal threshold). Asked the capital
        of Australia over the seed article, the 0.5B model copied three true sentences about
        China and Russia; each passed verification."""

    def fit(self, question: str, passages: list[Passage]) -> list[Passage]:
        """The passages that fit the model's context next to the prompt and the answer, the least
        relevant (last retrieved) dropped first."""
        window = self.generator.context_tokens or DEFAULT_CONTEXT
        budget = (window - self.max_answer_tokens - (len(SYSTEM) + len(question)) // CHARS_PER_TOKEN
                  - 64) * CHARS_PER_TOKEN
        kept = list(passages)
        while kept and sum(len(self._block(n, p)) for n, p in enumerate(kept, 1)) > budget:
            kept.pop()
        return kept

    @staticmethod
    def _block(n: int, passage: Passage) -> str:
        """The passage after its number, its title and date after the text: put first, on a line
        of their own, a 0.5B model answered with the title ("Newcastle_upon_Tyne [1].")."""
        about = ", ".join(x for x in (passage.title, passage.date) if x)
        text = WITHHELD if addresses_assistant(passage) else passage.text.strip()
        return f"[{n}] {text}" + (f" (from: {about})" if about else "") + "\n"

    def messages(self, question: str, passages: list[Passage]) -> list[dict[str, str]]:
        blocks = "\n".join(self._block(n, p) for n, p in enumerate(passages, 1))
        user = f"Passages:\n{blocks}\nQuestion: {question}"
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]

    def run(self, question: str, passages: list[Passage]) -> Answer:
        return final_answer(self.stream(question, passages))

    def stream(self, question: str, passages: list[Passage]) -> Iterator[str | Answer]:
        """Checked sentences as they complete (with their corrected citations), then the Answer."""
        passages = self.fit(question, passages)
        if not passages or missing_names(question, passages):
            yield REFUSAL
            yield Answer(question, REFUSAL, passages, refused=True, method="refusal")
            return
        records: list[SentenceCheck] = []
        asked = self.verifier.embedder.encode([question])[0]
        held: list[str] = []  # supported sentences waiting for one that is about the question
        on_topic = False
        buffer = ""
        pieces = self.generator.stream(self.messages(question, passages), self.max_answer_tokens,
                                       one_line=False)
        try:
            for piece in pieces:
                buffer += piece
                spans = split_sentences(buffer)
                if len(spans) < 2:
                    continue
                done, buffer = buffer[: spans[-1][0]], buffer[spans[-1][0]:]
                for record in self._check(done, passages, records):
                    on_topic = on_topic or self._about(question, asked, record)
                    held.append(self.render(record) + " ")
                    if on_topic:
                        yield "".join(held)
                        held.clear()
        finally:
            close = getattr(pieces, "close", None)
            if close:
                close()
        for record in self._check(buffer, passages, records):
            on_topic = on_topic or self._about(question, asked, record)
            held.append(self.render(record) + " ")
        if on_topic and held:
            yield "".join(held)
        yield self._answer(question, passages, records, on_topic)

    def _about(self, question: str, asked: np.ndarray, record: SentenceCheck) -> bool:
        """Is this supported sentence about the question (similar enough)? Sharing its words is
        not enough: "What is the capital of Russia?" shares half of them with any sentence that
        names Russia."""
        return float(self.verifier.vector(record.text) @ asked) >= self.min_relevance

    def _check(self, text: str, passages: list[Passage], records: list[SentenceCheck]
               ) -> Iterator[SentenceCheck]:
        """Verify each sentence of `text` (all are kept in `records`); yield the supported ones.
        A refusal sentence, and a sentence said before, is skipped."""
        for start, end in split_sentences(text):
            sentence = text[start:end]
            if self.verifier.is_refusal(sentence):
                continue
            record = self.verifier.check(sentence, passages)
            if not record.text or any(r.text == record.text for r in records):
                continue
            records.append(record)
            if record.supported:
                yield record

    @staticmethod
    def render(record: SentenceCheck) -> str:
        marks = "".join(f"[{n}]" for n in record.sources)
        body = record.text.rstrip()
        if body and body[-1] in ".!?":
            return f"{body[:-1]} {marks}{body[-1]}"
        return f"{body} {marks}."

    def _answer(self, question: str, passages: list[Passage], records: list[SentenceCheck],
                on_topic: bool) -> Answer:
        supported = [r for r in records if r.supported]
        if not supported or not on_topic:
            return Answer(question, REFUSAL, passages, refused=True, method="refusal",
                          sentences=records)
        spans: dict[int, list[tuple[int, int]]] = {}
        for record in supported:
            for n, start, end in record.spans:
                if (start, end) not in spans.setdefault(n, []):
                    spans[n].append((start, end))
        sources = [replace(p, highlights=sorted(spans[n]), highlight=sorted(spans[n])[0])
                   if n in spans else p for n, p in enumerate(passages, start=1)]
        text = " ".join(self.render(r) for r in supported)
        return Answer(question, text, sources, refused=False, method="full", sentences=records)
