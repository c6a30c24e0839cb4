"""PDF through pypdf, with bounds on what a hostile file can make it decompress."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import LOADERS, MAX_FILE_BYTES, LoadError, mb, split_header

PDF_STREAM_BYTES = 8_000_000
"""Largest decompressed PDF stream (pypdf's default is 75 MB, minutes of text extraction)."""
PDF_INFLATE_FLOOR = 16_000_000
"""Page content a PDF may decompress to in all: this or 20 times its size, if more."""


@LOADERS.register(".pdf")
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
            raise LoadError(f"the PDF decompresses to more than {mb(budget)} of page content, "
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
