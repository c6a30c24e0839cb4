"""Split documents into passages that fit the embedding model's window, keeping offsets."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from ..schema import Chunk, Document

# Paragraphs, then lines, then sentence ends, then clauses, then words.
SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ": ", ", ", " ", ""]

HEADING_TOKENS = 48
"""A piece of fewer tokens than this is a heading (a title, a "## Section" line): alone it says
too little to be found, so it is joined to the piece after it. The splitter leaves one alone
when the paragraph after it is too long to be merged with it (28% of SciFact's chunks were a
title alone). 48 covers 99% of SciFact's titles (median 21 tokens, 90th percentile 33, 99th 46;
32 would leave 12% of them alone) and Markdown or HTML section headings, which are shorter. A
short paragraph before a long one is joined the same way: alone it would be as thin a chunk. A
piece under 48 tokens joined to a full one (chunk_size 200) stays within the 254 tokens MiniLM
reads besides its 2 special tokens, so the window check (`max_tokens`) seldom has to refuse."""


class Chunker:
    """LangChain's recursive splitter, measuring length in the embedding model's tokens."""

    def __init__(self, chunk_size: int, chunk_overlap: int, count_tokens: Callable[[str], int],
                 max_tokens: int | None = None, heading_tokens: int = HEADING_TOKENS):
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.max_tokens = chunk_size if max_tokens is None else max_tokens
        """The longest chunk a joined heading may make: the model's window less its special tokens."""
        self.heading_tokens = heading_tokens
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
    def for_tokenizer(cls, tokenizer: Any, chunk_size: int, chunk_overlap: int,
                      window: int | None = None) -> Chunker:
        """`window`: the model's input length in tokens, special tokens included (256 for MiniLM)."""
        def count(text: str) -> int:
            return len(tokenizer(text, add_special_tokens=False)["input_ids"])

        specials = len(tokenizer("", add_special_tokens=True)["input_ids"])
        return cls(chunk_size, chunk_overlap, count, None if window is None else window - specials)

    def settings(self) -> dict[str, Any]:
        return {
            "chunk_size_tokens": self.chunk_size,
            "chunk_overlap_tokens": self.chunk_overlap,
            "separators": SEPARATORS,
            "join_heading_under_tokens": self.heading_tokens,
            "joined_max_tokens": self.max_tokens,
            "sections": "markdown headings",
        }

    def run(self, documents: Iterable[Document], first_id: int = 0) -> list[Chunk]:
        chunks: list[Chunk] = []
        next_id = first_id
        for doc in documents:
            for ordinal, (start, end) in enumerate(self.spans(doc.text)):
                chunks.append(Chunk(next_id, doc.id, doc.text[start:end], start, end, ordinal))
                next_id += 1
        return chunks

    def spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of each chunk of `text`: each Markdown section on its own (a chunk never
        runs from one section into the next), split by the splitter, each heading joined to the
        piece after it (and a run of headings to the piece after them) while the joined span
        stays within `max_tokens`."""
        spans: list[tuple[int, int]] = []
        for start, end in sections(text):
            spans += [(start + a, start + b) for a, b in self._section_spans(text[start:end])]
        return spans

    def _section_spans(self, text: str) -> list[tuple[int, int]]:
        pieces: list[tuple[int, int]] = []
        cursor = 0
        for piece in self.splitter.split_text(text):
            start = _locate(text, piece, cursor)
            pieces.append((start, start + len(piece)))
            cursor = start + 1
        spans: list[tuple[int, int]] = []
        i = 0
        while i < len(pieces):
            start, end = pieces[i]
            while i + 1 < len(pieces) and self._is_heading(text[start:end]):
                joined_end = max(end, pieces[i + 1][1])
                if self._count(text[start:joined_end]) > self.max_tokens:
                    break
                i += 1
                end = joined_end
            spans.append((start, end))
            i += 1
        return spans

    def _is_heading(self, piece: str) -> bool:
        # every word is at least one token: a piece of as many words is no heading (no counting)
        return len(piece.split()) < self.heading_tokens and self._count(piece) < self.heading_tokens


_HEADING = re.compile(r"#{1,6}[ \t]+\S")
_FENCE = re.compile(r"[ \t]{0,3}(```|~~~)")


def sections(text: str) -> list[tuple[int, int]]:
    """(start, end) of each Markdown section: a line starting with `#` to `######` and a space
    begins one (not inside a ``` code fence). The converters write a document's headings, slide
    titles, sheet names and chapters this way. A section that is only its heading goes with the
    next one: "# Report" then "## Methods" start one section."""
    starts = [0]
    fenced = False
    offset = 0
    for line in text.splitlines(keepends=True):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and offset and _HEADING.match(line):
            starts.append(offset)
        offset += len(line)
    merged: list[int] = []
    for start in starts:
        if merged and _alone(text, merged[-1], start):
            continue  # the section before is a heading alone: it takes this one in
        merged.append(start)
    return [(a, b) for a, b in zip(merged, [*merged[1:], len(text)]) if text[a:b].strip()]


def _alone(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] is a heading line and nothing else."""
    first, _, rest = text[start:end].partition("\n")
    return bool(_HEADING.match(first)) and not rest.strip()


def _locate(text: str, piece: str, cursor: int) -> int:
    """Offset of `piece` in `text`: chunks come in order, each at or after the previous start."""
    start = text.find(piece, cursor)
    if start < 0:
        start = text.find(piece)
    if start < 0:  # cannot happen with strip_whitespace splitting, but never lose a chunk
        raise ValueError("chunk text not found in its document")
    return start
