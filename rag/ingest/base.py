"""What every file loader shares: the error that becomes a message for the user, the registry of
loaders keyed by file suffix, and the header and title rules that apply to every format."""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable
from pathlib import Path

from ..registry import Registry

MAX_FILE_BYTES = 50 * 1024 * 1024
"""Default size limit of one document (file bytes, and characters of extracted text): bigger
files are refused before they are read, so memory stays bounded (Settings.max_document_mb)."""

_DATE_HEADER = re.compile(r"^\s*date\s+(\d{4}-\d{2}-\d{2})\b[ \t]*\n?")
_FRONT_MATTER = re.compile(r"^---\s*\n(.*?)\n---\s*\n", re.DOTALL)


class LoadError(Exception):
    """A file that cannot be indexed; the message says why, in words for the user."""


Loader = Callable[[Path, bytes, int], tuple[str, dict[str, str]]]
"""(path, the file's bytes, the text size limit) -> (text, metadata such as title and date);
raises LoadError with the reason when the file cannot be read."""

LOADERS: Registry[Loader] = Registry("file type", {
    ".txt": "rag.ingest.text",
    ".md": "rag.ingest.text",
    ".markdown": "rag.ingest.text",
    ".html": "rag.ingest.html",
    ".htm": "rag.ingest.html",
    ".pdf": "rag.ingest.pdf",
    ".docx": "rag.ingest.word",
    ".pptx": "rag.ingest.slides",
    ".xlsx": "rag.ingest.spreadsheet",
    ".csv": "rag.ingest.delimited",
    ".tsv": "rag.ingest.delimited",
    ".epub": "rag.ingest.ebook",
    ".odt": "rag.ingest.opendocument",
    ".rtf": "rag.ingest.rtf",
    ".json": "rag.ingest.jsondoc",
    ".jsonl": "rag.ingest.jsondoc",
    ".eml": "rag.ingest.mail",
    ".png": "rag.ingest.image",
    ".jpg": "rag.ingest.image",
    ".jpeg": "rag.ingest.image",
    ".tif": "rag.ingest.image",
    ".tiff": "rag.ingest.image",
})
SUPPORTED_SUFFIXES = tuple(LOADERS.names())


def split_header(text: str) -> tuple[str, dict[str, str]]:
    """Lift a leading `date YYYY-MM-DD` line or a YAML-style front matter into metadata."""
    meta: dict[str, str] = {}
    match = _FRONT_MATTER.match(text.lstrip("\ufeff"))
    if match:
        for line in match.group(1).splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip().lower() in ("title", "date"):
                meta[key.strip().lower()] = value.strip().strip("\"'")
        text = text.lstrip("\ufeff")[match.end():]
    match = _DATE_HEADER.match(text)
    if match:
        meta["date"] = match.group(1)
        text = text[match.end():]
    if "date" in meta and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", meta["date"][:10]):
        del meta["date"]
    elif "date" in meta:
        meta["date"] = meta["date"][:10]
    return text.strip(), meta


def title_from_name(path: Path) -> str:
    stem = re.sub(r"^\d{4}-\d{2}-\d{2}[-_ ]*", "", path.stem)
    words = re.sub(r"[-_]+", " ", stem).split()
    # "xi-putin-meeting" reads as "Xi Putin Meeting"; words already cased stay as they are
    return " ".join(w.capitalize() if w.islower() else w for w in words) or path.name


def quiet(*libraries: str) -> None:
    """Keep a converter library's warnings ("invalid pdf header", "EOF marker not found",
    "Workbook contains no default style") away from the user: a file either loads or is
    skipped with our own one-line reason. (A user who wants them lowers the library logger's
    level after importing rag.)"""
    for name in libraries:
        warnings.filterwarnings("ignore", module=rf"{re.escape(name)}(\.|$)")
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.ERROR)


def isolated(loader: Loader) -> Loader:
    """Mark a loader to run in the conversion worker process, under CPU and memory limits
    (rag/ingest/worker.py): the ones whose libraries parse archives, XML, PDF or images."""
    loader.isolated = True  # type: ignore[attr-defined]
    return loader


_LIST_ITEM = re.compile(r"^([-*+>|]|\d+[.)])\s")


def title_from_text(text: str) -> str | None:
    """The first line of a plain text, when it reads as a title: short, a few words, no
    sentence or clause punctuation at its end, and set apart (a blank line after it, or a
    short line before a capitalised one). A hard-wrapped paragraph's first line is not."""
    lines = text.lstrip().split("\n", 2)
    first = lines[0].strip()
    after = lines[1].strip() if len(lines) > 1 else ""
    if first.startswith("#"):
        first = first.lstrip("#").strip()
    if not 2 <= len(first) <= 100 or len(first.split()) > 14 or _LIST_ITEM.match(first):
        return None
    if first[-1] in ".,;:" and not first.endswith("..."):
        return None
    if not any(c.isalpha() for c in first):
        return None
    close = after and not re.fullmatch(r"[=-]{3,}", after)  # not set apart by a blank line
    if close and (len(first) > 60 or len(first.split()) > 8 or not after[:1].isupper()):
        return None
    return first


def mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"
