"""The library folder: which files are documents, and reading one into a `Document` (the
loader its suffix names, then the checks every format shares)."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

from ..schema import Document, SkippedFile
from .base import LOADERS, MAX_FILE_BYTES, LoadError, mb, title_from_name
from .worker import convert

log = logging.getLogger(__name__)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def read_file(path: Path, max_bytes: int = MAX_FILE_BYTES) -> tuple[bytes, os.stat_result]:
    """The bytes of a document file (and its stat), or LoadError; files over `max_bytes` are
    refused from their size alone, before a byte is read."""
    if path.suffix.lower() not in LOADERS:
        raise LoadError(
            f"unsupported file type {path.suffix or '(none)'!r}; supported: "
            + ", ".join(LOADERS.names())
        )
    try:
        stat = path.stat()
        if not path.is_file():
            raise LoadError("not a regular file")
        if stat.st_size > max_bytes:
            raise LoadError(f"file too large ({mb(stat.st_size)}; the limit is {mb(max_bytes)}, "
                            "RAG_MAX_DOCUMENT_MB)")
        return path.read_bytes(), stat
    except OSError as exc:
        raise LoadError(f"cannot read the file ({exc.strerror or exc})") from exc


def load_file(path: Path, doc_id: str | None = None, max_bytes: int = MAX_FILE_BYTES) -> Document:
    """Read one file into a Document, or raise LoadError with the reason.

    Files over `max_bytes` are refused from their size alone, before a byte is read; text
    over `max_bytes` characters is refused too (a small archive can expand to much more)."""
    data, stat = read_file(path, max_bytes)
    return to_document(path, doc_id or path.name, data, stat, max_bytes)


def to_document(path: Path, doc_id: str, data: bytes, stat: os.stat_result,
                max_bytes: int = MAX_FILE_BYTES) -> Document:
    """The Document of a file's bytes, through the loader its suffix names."""
    text, meta = convert(LOADERS.get(path.suffix.lower()), path, data, max_bytes)
    if len(text) > max_bytes:
        raise LoadError(f"the document expands to more than {max_bytes:,} characters of text "
                        "(limit: RAG_MAX_DOCUMENT_MB)")
    text = _CONTROL.sub(" ", text)  # stray control characters (ANSI escapes, NULs) are not text
    if not text.strip():
        raise LoadError("no text left after extraction")
    if meta.get("encoding"):
        log.debug("%s: read as %s", doc_id, meta["encoding"])
    return Document(
        id=doc_id,
        title=meta.get("title") or title_from_name(path),
        path=str(path),
        text=text,
        date=meta.get("date"),
        content_hash=hashlib.sha256(data).hexdigest(),
        size=stat.st_size,
        mtime=stat.st_mtime,
        author=meta.get("author") or None,
    )


def discover(root: Path) -> tuple[list[Path], list[SkippedFile]]:
    """Files under the library folder: the supported ones, and the others reported by name."""
    found: list[Path] = []
    skipped: list[SkippedFile] = []
    if not root.exists():
        return found, skipped
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue  # hidden files and folders (editor swap files, .git) are not documents
        if path.suffix.lower() in LOADERS:
            found.append(path)
        else:
            skipped.append(SkippedFile(str(rel), f"unsupported file type {path.suffix or '(none)'!r}"))
    return found, skipped


def doc_id_for(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def load_many(root: Path, paths: Iterable[Path], max_bytes: int = MAX_FILE_BYTES
              ) -> tuple[list[Document], list[SkippedFile]]:
    docs: list[Document] = []
    skipped: list[SkippedFile] = []
    for path in paths:
        doc_id = doc_id_for(root, path)
        try:
            docs.append(load_file(path, doc_id, max_bytes))
        except LoadError as exc:
            skipped.append(SkippedFile(doc_id, str(exc)))
    return docs, skipped


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
