"""Plain text and Markdown: UTF-8 (with or without a BOM) and UTF-16 with a BOM."""

from __future__ import annotations

import re
from pathlib import Path

from .base import LOADERS, MAX_FILE_BYTES, LoadError, split_header

_MD_HEADING = re.compile(r"^#\s+(.+)$", re.MULTILINE)


def read_text_bytes(data: bytes) -> str:
    """Decode text a person would call a text file, or say why it is not one."""
    if not data.strip():
        raise LoadError("the file is empty")
    head = data[:8192]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise LoadError(f"invalid UTF-16 text ({exc.reason} at byte {exc.start})") from exc
    if b"\x00" in head:
        raise LoadError("binary file (contains NUL bytes), not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(
            f"not UTF-8 text (undecodable byte at position {exc.start}); save it as UTF-8"
        ) from exc
    controls = sum(1 for c in text[:8192] if ord(c) < 32 and c not in "\t\n\r\f")
    if controls > max(8, len(text[:8192]) // 20):
        raise LoadError("binary file (mostly control characters), not text")
    return text



@LOADERS.register(".txt", ".md", ".markdown")
def load_text(path: Path, data: bytes, limit: int = MAX_FILE_BYTES) -> tuple[str, dict[str, str]]:
    text, meta = split_header(read_text_bytes(data))
    if path.suffix.lower() in (".md", ".markdown") and "title" not in meta:
        heading = _MD_HEADING.search(text)
        if heading:
            meta["title"] = heading.group(1).strip().strip("#").strip()
    return text, meta
