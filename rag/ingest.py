"""Turn files into `Document`s: one loader per file type, and the checks that make a bad file a
clear message instead of noise in the index."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .schema import Document, SkippedFile

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf")
MAX_FILE_BYTES = 50 * 1024 * 1024
"""Default size limit of one document (file bytes, and characters of extracted text): bigger
files are refused before they are read, so memory stays bounded (Settings.max_document_mb)."""

_DATE_HEADER = re.compile(r"^\s*date\s+(\d{4}-\d{2}-\d{2})\b[ \t]*\n?")
_FRONT_MATTER = re.compile(r"^---\s*\n(.*?)\n---\s*\n", re.DOTALL)
_MD_HEADING = re.compile(r"^#\s+(.+)$", re.MULTILINE)
PDF_STREAM_BYTES = 8_000_000
"""Largest decompressed PDF stream (pypdf's default is 75 MB, minutes of text extraction)."""
PDF_INFLATE_FLOOR = 16_000_000
"""Page content a PDF may decompress to in all: this or 20 times its size, if more."""
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


class LoadError(Exception):
    """A file that cannot be indexed; the message says why, in words for the user."""


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


def _title_from_name(path: Path) -> str:
    stem = re.sub(r"^\d{4}-\d{2}-\d{2}[-_ ]*", "", path.stem)
    words = re.sub(r"[-_]+", " ", stem).split()
    # "xi-putin-meeting" reads as "Xi Putin Meeting"; words already cased stay as they are
    return " ".join(w.capitalize() if w.islower() else w for w in words) or path.name


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


def load_text(path: Path, data: bytes, limit: int = MAX_FILE_BYTES) -> tuple[str, dict[str, str]]:
    text, meta = split_header(read_text_bytes(data))
    if path.suffix.lower() in (".md", ".markdown") and "title" not in meta:
        heading = _MD_HEADING.search(text)
        if heading:
            meta["title"] = heading.group(1).strip().strip("#").strip()
    return text, meta


def load_html(path: Path, data: bytes, limit: int = MAX_FILE_BYTES) -> tuple[str, dict[str, str]]:
    from bs4 import BeautifulSoup

    if not data.strip():
        raise LoadError("the file is empty")
    if b"\x00" in data[:8192]:
        raise LoadError("binary file (contains NUL bytes), not HTML")
    try:
        soup = BeautifulSoup(data, "html.parser")
        for tag in soup(["script", "style", "noscript", "template", "svg", "iframe"]):
            tag.decompose()
        title = soup.title.get_text(" ", strip=True) if soup.title else ""
        if soup.head:
            soup.head.decompose()
        raw = soup.get_text("\n")
    except RecursionError as exc:
        raise LoadError("the HTML is nested too deeply to read") from exc
    lines = [" ".join(line.split()) for line in raw.splitlines()]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    text, meta = split_header(text)
    if title and "title" not in meta:
        meta["title"] = title
    return text, meta


def load_pdf(path: Path, data: bytes, limit: int = MAX_FILE_BYTES) -> tuple[str, dict[str, str]]:
    """Text of every page. A PDF that expands to more than `limit` characters of text, or whose
    streams decompress beyond pypdf's limits (a decompression bomb), is refused."""
    import io

    from pypdf import PdfReader, apply_configuration
    from pypdf.errors import LimitReachedError, PdfReadError, PyPdfError

    if not data.strip():
        raise LoadError("the file is empty")
    try:
        with apply_configuration(zlib_maximum_output_length=PDF_STREAM_BYTES,
                                 image_maximum_buffer_size=PDF_STREAM_BYTES,
                                 xform_maximum_invocations_per_extraction=500):
            return _pdf_text(PdfReader(io.BytesIO(data)), limit, max(PDF_INFLATE_FLOOR, 20 * len(data)))
    except LoadError:
        raise
    except LimitReachedError as exc:
        raise LoadError(f"the PDF expands far beyond its size (a decompression bomb?): {exc}") from exc
    except (PyPdfError, PdfReadError, ValueError, KeyError, TypeError, OSError, RecursionError,
            AttributeError, IndexError, ZeroDivisionError) as exc:
        raise LoadError(f"not a readable PDF ({type(exc).__name__}: {exc})") from exc


def _pdf_text(reader: Any, limit: int, budget: int) -> tuple[str, dict[str, str]]:
    if reader.is_encrypted:
        try:
            if not reader.decrypt(""):
                raise LoadError("the PDF is encrypted with a password")
        except LoadError:
            raise
        except Exception as exc:
            raise LoadError(f"the PDF is encrypted and cannot be opened ({exc})") from exc
    pages: list[str] = []
    size = 0
    inflated = 0
    for page in reader.pages:  # first the sizes: reading text costs about 1 s per MB of content
        contents = page.get_contents()
        inflated += len(contents.get_data()) if contents is not None else 0
        if inflated > budget:
            raise LoadError(f"the PDF decompresses to more than {_mb(budget)} of page content, "
                            "far more than its size (a decompression bomb?)")
    for page in reader.pages:
        pages.append(page.extract_text() or "")
        size += len(pages[-1])
        if size > limit:
            raise LoadError(f"the PDF expands to more than {limit:,} characters of text "
                            "(limit: RAG_MAX_DOCUMENT_MB)")
    info = reader.metadata or {}
    title = str(info.get("/Title") or "").strip()
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise LoadError("the PDF has no extractable text (a scan without OCR?)")
    text, meta = split_header(text)
    if title and "title" not in meta:
        meta["title"] = title
    return text, meta


LOADERS: dict[str, Callable[[Path, bytes, int], tuple[str, dict[str, str]]]] = {
    ".txt": load_text,
    ".md": load_text,
    ".markdown": load_text,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
}


def load_file(path: Path, doc_id: str | None = None, max_bytes: int = MAX_FILE_BYTES) -> Document:
    """Read one file into a Document, or raise LoadError with the reason.

    Files over `max_bytes` are refused from their size alone, before a byte is read."""
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise LoadError(
            f"unsupported file type {path.suffix or '(none)'!r}; supported: "
            + ", ".join(SUPPORTED_SUFFIXES)
        )
    try:
        stat = path.stat()
        if not path.is_file():
            raise LoadError("not a regular file")
        if stat.st_size > max_bytes:
            raise LoadError(f"file too large ({_mb(stat.st_size)}; the limit is {_mb(max_bytes)}, "
                            "RAG_MAX_DOCUMENT_MB)")
        data = path.read_bytes()
    except OSError as exc:
        raise LoadError(f"cannot read the file ({exc.strerror or exc})") from exc
    text, meta = loader(path, data, max_bytes)
    text = _CONTROL.sub(" ", text)  # stray control characters (ANSI escapes, NULs) are not text
    if not text.strip():
        raise LoadError("no text left after extraction")
    return Document(
        id=doc_id or path.name,
        title=meta.get("title") or _title_from_name(path),
        path=str(path),
        text=text,
        date=meta.get("date"),
        content_hash=hashlib.sha256(data).hexdigest(),
        size=stat.st_size,
        mtime=stat.st_mtime,
    )


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


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
        if path.suffix.lower() in SUPPORTED_SUFFIXES:
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
