"""PDF through pypdf, with bounds on what a hostile file can make it decompress; pages without
a text layer (scans) are rendered with pypdfium2 and read by OCR (rag/ingest/ocr.py), so a PDF
that is partly text and partly scans gets both."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from .base import LOADERS, MAX_FILE_BYTES, LoadError, isolated, mb, quiet, split_header
from .blocks import described
from .ocr import DPI, MAX_PIXELS, progress, read, require

log = logging.getLogger(__name__)
quiet("pypdf")

PDF_STREAM_BYTES = 8_000_000
"""Largest decompressed PDF stream (pypdf's default is 75 MB, minutes of text extraction)."""
PDF_INFLATE_FLOOR = 16_000_000
"""Page content a PDF may decompress to in all: this or 20 times its size, if more."""
SCAN_TEXT_CHARS = 20
"""A page with less text than this but an image on it is a scan (a page number is not a text layer)."""


@LOADERS.register(".pdf")
@isolated
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
            return _pdf_text(PdfReader(io.BytesIO(data)), limit, max(PDF_INFLATE_FLOOR, 20 * len(data)),
                             data, path.name)
    except LoadError:
        raise
    except LimitReachedError as exc:
        raise LoadError(f"the PDF expands far beyond its size (a decompression bomb?): {exc}") from exc
    except (PyPdfError, PdfReadError, ValueError, KeyError, TypeError, OSError, RecursionError,
            AttributeError, IndexError, ZeroDivisionError) as exc:
        raise LoadError(f"not a readable PDF ({type(exc).__name__}: {exc})") from exc


def _pdf_text(reader: Any, limit: int, budget: int, data: bytes, name: str) -> tuple[str, dict[str, str]]:
    if reader.is_encrypted:
        try:
            if not reader.decrypt(""):
                raise LoadError("the PDF is encrypted with a password")
        except LoadError:
            raise
        except Exception as exc:
            raise LoadError(f"the PDF is encrypted and cannot be opened ({exc})") from exc
    pages: list[str] = []
    scans: list[int] = []
    size = 0
    inflated = 0
    for page in reader.pages:  # first the sizes: reading text costs about 1 s per MB of content
        contents = page.get_contents()
        inflated += len(contents.get_data()) if contents is not None else 0
        if inflated > budget:
            raise LoadError(f"the PDF decompresses to more than {mb(budget)} of page content, "
                            "far more than its size (a decompression bomb?)")
    for number, page in enumerate(reader.pages):
        pages.append(page.extract_text() or "")
        size += len(pages[-1])
        if size > limit:
            raise LoadError(f"the PDF expands to more than {limit:,} characters of text "
                            "(limit: RAG_MAX_DOCUMENT_MB)")
        if len(pages[-1].strip()) < SCAN_TEXT_CHARS and _has_images(page):
            scans.append(number)
    has_text = any(p.strip() for i, p in enumerate(pages) if i not in scans)
    if scans:
        try:
            require()
        except LoadError as exc:
            if not has_text:
                raise
            log.warning("%s: %d of %d pages have no text layer and were not read (%s)",
                        name, len(scans), len(pages), exc)
        else:
            size = _read_scans(data, scans, pages, size, limit, name)
    info = reader.metadata or {}
    title = str(info.get("/Title") or "").strip()
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        if scans:
            raise LoadError("OCR found no text on the PDF's scanned pages")
        raise LoadError("the PDF has no extractable text: its pages hold neither text nor images")
    text, meta = split_header(text)
    if title and "title" not in meta:
        meta["title"] = title
    author = str(info.get("/Author") or "").strip()
    if author:
        meta.setdefault("author", author)
    return text, meta


def _has_images(page: Any) -> bool:
    try:
        return len(page.images) > 0
    except Exception:  # broken resources: let the renderer decide whether anything is drawn
        return True


def _read_scans(data: bytes, scans: list[int], pages: list[str], size: int, limit: int, name: str) -> int:
    """OCR the pages in `scans` (rendered by pypdfium2 at DPI, scaled down to MAX_PIXELS)."""
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise LoadError(f"the PDF's scanned pages cannot be rendered ({described(exc)})") from exc
    try:
        for done, number in enumerate(scans, start=1):
            progress(name, number + 1, done, len(scans))
            page = document[number]
            try:
                width, height = page.get_size()
                scale = DPI / 72
                if width * height * scale * scale > MAX_PIXELS:
                    scale = math.sqrt(MAX_PIXELS / max(1.0, width * height))
                image = page.render(scale=scale, grayscale=True).to_pil()
            except pdfium.PdfiumError as exc:
                raise LoadError(f"page {number + 1} of the PDF cannot be rendered "
                                f"({described(exc)})") from exc
            finally:
                page.close()
            pages[number] = read(image)
            size += len(pages[number])
            if size > limit:
                raise LoadError(f"the PDF expands to more than {limit:,} characters of text "
                                "(limit: RAG_MAX_DOCUMENT_MB)")
    finally:
        document.close()
    return size
