"""Split documents into passages that fit the embedding model's window, keeping offsets."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .schema import Chunk, Document

# Paragraphs, then lines, then sentence ends, then clauses, then words.
SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ": ", ", ", " ", ""]


class Chunker:
    """LangChain's recursive splitter, measuring length in the embedding model's tokens."""

    def __init__(self, chunk_size: int, chunk_overlap: int, count_tokens: Callable[[str], int]):
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self._count = count_tokens
        self._splitter: Any = None  # made on first use: a question never needs it (faster start)

    @property
    def splitter(self) -> Any:
        if self._splitter is None:
            from langchain_text_splitters import RecursiveCharacterTextSplitter

            self._splitter = RecursiveCharacterTextSplitter(
                chunk_size=self.chunk_size,
                chunk_overlap=self.chunk_overlap,
                length_function=self._count,
                separators=SEPARATORS,
                keep_separator="end",
                strip_whitespace=True,
            )
        return self._splitter

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, chunk_size: int, chunk_overlap: int) -> Chunker:
        def count(text: str) -> int:
            return len(tokenizer(text, add_special_tokens=False)["input_ids"])

        return cls(chunk_size, chunk_overlap, count)

    def settings(self) -> dict[str, Any]:
        return {
            "chunk_size_tokens": self.chunk_size,
            "chunk_overlap_tokens": self.chunk_overlap,
            "separators": SEPARATORS,
        }

    def run(self, documents: Iterable[Document], first_id: int = 0) -> list[Chunk]:
        chunks: list[Chunk] = []
        next_id = first_id
        for doc in documents:
            cursor = 0
            for ordinal, piece in enumerate(self.splitter.split_text(doc.text)):
                start = _locate(doc.text, piece, cursor)
                chunks.append(Chunk(next_id, doc.id, piece, start, start + len(piece), ordinal))
                next_id += 1
                cursor = start + 1
        return chunks


def _locate(text: str, piece: str, cursor: int) -> int:
    """Offset of `piece` in `text`: chunks come in order, each at or after the previous start."""
    start = text.find(piece, cursor)
    if start < 0:
        start = text.find(piece)
    if start < 0:  # cannot happen with strip_whitespace splitting, but never lose a chunk
        raise ValueError("chunk text not found in its document")
    return start
