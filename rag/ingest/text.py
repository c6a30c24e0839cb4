"""Plain text and Markdown, in whatever encoding they were saved (rag/ingest/encoding.py)."""

from __future__ import annotations

import re
from pathlib import Path

from .base import LOADERS, MAX_FILE_BYTES, split_header, title_from_text
from .encoding import decode_text

_MD_HEADING = re.compile(r"^#\s+(.+)$", re.MULTILINE)


@LOADERS.register(".txt", ".md", ".markdown")
def load_text(path: Path, data: bytes, limit: int = MAX_FILE_BYTES) -> tuple[str, dict[str, str]]:
    text, encoding = decode_text(data)
    text, meta = split_header(text)
    if encoding not in ("utf-8", "ascii"):
        meta["encoding"] = encoding
    if "title" not in meta and path.suffix.lower() in (".md", ".markdown"):
        heading = _MD_HEADING.search(text)
        if heading:
            meta["title"] = heading.group(1).strip().strip("#").strip()
    if "title" not in meta:
        title = title_from_text(text)
        if title:
            meta["title"] = title
    return text, meta
