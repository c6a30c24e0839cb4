"""The library folder: which files are documents, and reading one into a `Document` (the
loader its suffix names, then the checks every format shares)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

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


class SkipLog:
    """Files of the library that could not be indexed, with their size, mtime and reason, kept
    in the index folder (`skipped.json`): a file is reported when it is new or has changed, and
    a later scan passes over it quietly (and without reading it) until it changes again, so
    `rag ask` does not repeat "skipped empty.md" question after question. `rag list --skipped`
    shows them all."""

    FILE = "skipped.json"

    def __init__(self, folder: Path | None):
        """`folder`: the index folder; None keeps the list in memory only."""
        self.path = folder / self.FILE if folder is not None else None
        self.entries: dict[str, dict[str, Any]] = {}
        self._changed = False
        if self.path is None:
            return
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(raw, dict):
                self.entries = {str(k): v for k, v in raw.items()
                                if isinstance(v, dict) and isinstance(v.get("reason"), str)}
        except (OSError, ValueError):
            pass  # none yet, or unreadable: files are reported again, nothing worse

    def known(self, doc_id: str, path: Path) -> str | None:
        """The reason given before, if the file is unchanged since (same size and mtime)."""
        entry = self.entries.get(doc_id)
        if entry is None:
            return None
        try:
            st = path.stat()
        except OSError:
            return None
        if entry.get("size") == st.st_size and entry.get("mtime") == st.st_mtime:
            return entry["reason"]
        return None

    def note(self, doc_id: str, path: Path, reason: str) -> None:
        try:
            st = path.stat()
            entry = {"size": st.st_size, "mtime": st.st_mtime, "reason": reason}
        except OSError:
            entry = {"reason": reason}
        if self.entries.get(doc_id) != entry:
            self.entries[doc_id] = entry
            self._changed = True

    def keep_only(self, doc_ids: Iterable[str], within: Callable[[str], bool] | None = None) -> None:
        """Forget the files that were read since or are gone (of those `within` selects)."""
        keep = set(doc_ids)
        for doc_id in list(self.entries):
            if doc_id not in keep and (within is None or within(doc_id)):
                del self.entries[doc_id]
                self._changed = True

    def save(self) -> None:
        if not self._changed or self.path is None or not self.path.parent.is_dir():
            return
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.entries, fh, ensure_ascii=False, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
            self._changed = False
        except OSError as exc:  # a read-only index folder costs the quiet re-scans, not the run
            Path(tmp).unlink(missing_ok=True)
            log.debug("could not keep the list of skipped files (%s)", exc)

    def items(self) -> list[SkippedFile]:
        return [SkippedFile(doc_id, e["reason"]) for doc_id, e in sorted(self.entries.items())]
