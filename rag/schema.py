"""The plain data passed between the pipeline's steps, in the order it flows:
Document -> Chunk -> Passage -> Evidence -> Answer."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class Document:
    """One source file, as text. `text` is what chunk offsets point into."""

    id: str
    """Path relative to the document library, with forward slashes."""
    title: str
    path: str
    text: str
    date: str | None = None
    """ISO date (YYYY-MM-DD) from a leading `date YYYY-MM-DD` header or front matter."""
    content_hash: str = ""
    """sha256 of the file's bytes: re-indexing skips documents whose hash is unchanged."""
    size: int = 0
    mtime: float = 0.0
    author: str | None = None
    """From the file's properties (a Word document's author, an e-mail's sender), when it has them."""

    def to_dict(self) -> dict[str, Any]:
        """Its fields (plain values, so no deep copy: an index saves 100k of these at a time)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class Chunk:
    """A passage of a document; `text == document.text[start:end]`."""

    id: int
    doc_id: str
    text: str
    start: int
    end: int
    ordinal: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Passage:
    """A retrieved chunk with its document's metadata and its score."""

    chunk_id: int
    doc_id: str
    title: str
    path: str
    date: str | None
    text: str
    start: int
    end: int
    score: float
    highlight: tuple[int, int] | None = None
    """Offsets, inside `text`, of the sentence that supports the answer."""
    relevance: float | None = None
    """The question's cosine with the passage's closest sentence, set by the reader: a number a
    person can read and compare across questions. `score` is the retrieval's (fused) score,
    which only ranks."""
    highlights: list[tuple[int, int]] = field(default_factory=list)
    """Full style: every span of `text` that supports a sentence of the answer."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Evidence:
    """A sentence of a retrieved passage, scored against the question: what an answer rests on."""

    source: int
    """1-based position of the passage in the answer's sources: the citation number."""
    text: str
    start: int
    """Offsets of the sentence inside its passage's text (both 0 for a date line)."""
    end: int
    score: float = 0.0
    date: str | None = None
    """Set on the stand-in sentence that carries a document's date, so "when" questions and
    "what date" questions find it like any other sentence."""


@dataclass
class SentenceCheck:
    """One sentence of a full answer and what verification found for it."""

    text: str
    """The sentence as the model wrote it, its citation markers removed."""
    sources: list[int] = field(default_factory=list)
    """Citation numbers after verification (re-cited to the passage that holds it)."""
    supported: bool = False
    spans: list[tuple[int, int, int]] = field(default_factory=list)
    """(source number, start, end): the supporting span's offsets inside that passage's text."""
    cited: list[int] = field(default_factory=list)
    """The numbers the model itself cited."""

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "sources": self.sources, "supported": self.supported,
                "spans": [list(s) for s in self.spans], "cited": self.cited}


@dataclass
class Answer:
    question: str
    text: str
    sources: list[Passage] = field(default_factory=list)
    """Passages in citation order: marker [n] refers to sources[n-1]."""
    refused: bool = False
    """True when the documents do not hold the answer."""
    method: str = ""
    """How the text was made: `generated`, `extractive` (fallback) or `refusal`."""
    short: str = ""
    """The phrase in the text that answers the question (a number, date, name or place) when
    the question asks for one and the text holds it; empty otherwise."""
    sentences: list[SentenceCheck] = field(default_factory=list)
    """Full style: every sentence the model wrote, supported or not. Unsupported ones are
    dropped from `text` and kept here (supported=False), so they can be shown as such."""
    searched: str = ""
    """The standalone question that was searched (a follow-up rewritten with its history)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "searched": self.searched or self.question,
            "sentences": [s.to_dict() for s in self.sentences],
            "answer": self.text,
            "short": self.short,
            "refused": self.refused,
            "method": self.method,
            "sources": [s.to_dict() for s in self.sources],
        }


@dataclass
class SkippedFile:
    path: str
    reason: str


@dataclass
class IndexReport:
    """What a (re)index did, for progress messages and tests."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    """Files that cannot be indexed, new or changed since they were last reported."""
    skipped_before: list[SkippedFile] = field(default_factory=list)
    """Files skipped for the same reason at an earlier scan and unchanged since: not repeated."""
    chunks_embedded: int = 0
    chunks_resumed: int = 0
    """Chunks whose vectors an interrupted run had already made (rag/ingest/resume.py)."""
    rebuilt_because: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.rebuilt_because)

    def summary(self) -> str:
        parts = [
            f"{len(self.added)} added",
            f"{len(self.updated)} updated",
            f"{len(self.removed)} removed",
            f"{len(self.unchanged)} unchanged",
            f"{self.chunks_embedded} chunks embedded",
        ]
        if self.chunks_resumed:
            parts.append(f"{self.chunks_resumed} chunks resumed")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        if self.skipped_before:
            parts.append(f"{len(self.skipped_before)} still skipped (rag list --skipped)")
        return ", ".join(parts)


def final_answer(items: Iterable[str | Answer]) -> Answer:
    """The Answer that ends a reader's stream (the text pieces before it are drafts)."""
    answer: Answer | None = None
    for item in items:
        if isinstance(item, Answer):
            answer = item
    if answer is None:
        raise RuntimeError("the reader's stream ended without an Answer")
    return answer
