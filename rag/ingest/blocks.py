"""What the document converters share: Markdown blocks collected within the text size limit,
tables (Markdown, or one `Header: value` line per row), dates, and library errors as one line.

Converters write Markdown because the chunker splits at its headings (rag/ingest/chunk.py):
a Word heading, a slide title, a sheet name or an e-book chapter starts a section of its own."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from typing import Any

from .base import LoadError


class Blocks:
    """Markdown blocks (paragraphs, headings, tables, table rows) of one document, refused as
    soon as they pass `limit` characters: a small file that expands to a huge text stops early.

    Blocks are paragraphs (a blank line between them): the chunker splits there first, and the
    reader takes each as a sentence of its own, so a spreadsheet row is one piece of evidence."""

    def __init__(self, limit: int):
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0

    def add(self, block: str) -> None:
        block = block.rstrip().lstrip("\n")  # leading spaces kept: a nested list item's indent
        if not block.strip():
            return
        self.size += len(block) + 2
        if self.size > self.limit:
            raise LoadError(f"the document expands to more than {self.limit:,} characters of text "
                            "(limit: RAG_MAX_DOCUMENT_MB)")
        self.parts.append(block)

    def heading(self, level: int, text: str) -> None:
        text = " ".join(text.split())
        if text:
            self.add("#" * max(1, min(level, 6)) + " " + text)

    def extend(self, blocks: Iterable[str]) -> None:
        for block in blocks:
            self.add(block)

    def text(self) -> str:
        return "\n\n".join(self.parts)


def cell(value: Any) -> str:
    """A table cell as text: dates as ISO dates, whole-number floats without `.0`."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return " ".join(str(value).split())


def md_table(rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table, the first row as its header (`|` escaped, cells on one line)."""
    cells = [[cell(c).replace("|", "\\|") for c in row] for row in rows]
    cells = [row for row in cells if any(row)]
    if not cells:
        return ""
    width = max(len(r) for r in cells)
    cells = [r + [""] * (width - len(r)) for r in cells]
    out = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * width]
    out += ["| " + " | ".join(r) + " |" for r in cells[1:]]
    return "\n".join(out)


def header_names(header: Sequence[Any]) -> list[str]:
    return [cell(h) or f"column {i + 1}" for i, h in enumerate(header)]


def kv_row(names: Sequence[str], row: Sequence[Any]) -> str:
    """`Region: North, Revenue: 4.2`: every value keeps its column's name, so a row stays one
    fact wherever the chunker cuts."""
    return ", ".join(f"{names[i] if i < len(names) else f'column {i + 1}'}: {text}"
                     for i, value in enumerate(row) if (text := cell(value)))


def iso_date(value: Any) -> str | None:
    """YYYY-MM-DD from a datetime, a date or a string that starts with one (`2023-05-01T...`)."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()[:10]
    match = re.match(r"\s*(\d{4}-\d{2}-\d{2})", str(value or ""))
    return match.group(1) if match else None


def properties(title: Any = None, author: Any = None, created: Any = None) -> dict[str, str]:
    """The metadata a document's own properties give (empty ones left out)."""
    meta: dict[str, str] = {}
    if title and " ".join(str(title).split()):
        meta["title"] = " ".join(str(title).split())[:300]
    if author and " ".join(str(author).split()):
        meta["author"] = " ".join(str(author).split())[:300]
    date = iso_date(created)
    if date:
        meta["date"] = date
    return meta


def described(exc: BaseException, limit: int = 200) -> str:
    """An exception as one short line for a skip message: `XMLSyntaxError: Excessive depth...`."""
    text = re.sub(r"'?<_io\.BytesIO object at 0x[0-9a-f]+>'?", "the file", " ".join(str(exc).split()))
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
