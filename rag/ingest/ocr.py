"""Reading scanned pages: Debian's tesseract-ocr through pytesseract, when it is installed.

Measured (docs/FORMATS.md): about 1.2 s of CPU per A4 page for English at 200 dpi, character
error rate 0.09 on a clean 10-pt page; OpenMP threads tripled the CPU for the same text on a
busy two-core machine, so tesseract runs single-threaded (OMP_THREAD_LIMIT=1), one page at a
time. Pages are logged as they are read: a long scan shows its progress."""

from __future__ import annotations

import logging
import os
import shutil
from typing import Any

from .base import LoadError

log = logging.getLogger(__name__)

MISSING = "no text layer: install tesseract-ocr to read scanned pages"
DPI = 200
"""Rendering resolution of a scanned PDF page: as accurate as 300 dpi on 10-pt text, 25% less CPU."""
MAX_PIXELS = 60_000_000
"""Largest page image read (an A4 page at 600 dpi is 35 million pixels); larger images are
refused, bigger renderings scaled down: a hostile page size cannot exhaust memory."""
PAGE_SECONDS = 300
"""Wall-clock bound of one page's tesseract run (normally a few seconds)."""

_settings = {"languages": "eng"}
_installed: dict[str, Any] = {}


def configure(languages: str | None = None) -> None:
    """Tesseract languages for what follows, `eng+deu` (RAG_OCR_LANGUAGES)."""
    if languages:
        _settings["languages"] = languages


def languages() -> str:
    return _settings["languages"]


def available() -> bool:
    """Whether the tesseract program can be run (found on PATH)."""
    import pytesseract

    return shutil.which(pytesseract.pytesseract.tesseract_cmd) is not None


def require() -> None:
    """Raise LoadError with what to install when OCR cannot run with the languages asked for."""
    if not available():
        raise LoadError(MISSING)
    import pytesseract

    key = shutil.which(pytesseract.pytesseract.tesseract_cmd)
    if key not in _installed:
        try:
            _installed[key] = set(pytesseract.get_languages())
        except Exception as exc:  # a broken install
            raise LoadError(f"tesseract-ocr cannot run ({type(exc).__name__}: {exc})") from exc
    missing = [lang for lang in languages().split("+") if lang not in _installed[key]]
    if missing:
        packages = " ".join(f"tesseract-ocr-{lang.replace('_', '-').lower()}" for lang in missing)
        raise LoadError(f"the OCR language {', '.join(missing)} is not installed (RAG_OCR_LANGUAGES): "
                        f"install {packages}")


def read(image: Any) -> str:
    """The text tesseract reads in one page image (a PIL image)."""
    import pytesseract

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        from PIL import Image

        flat = Image.new("RGB", image.size, "white")  # transparent text on nothing reads as black
        flat.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        image = flat
    if image.mode not in ("L", "1"):
        image = image.convert("L")
    try:
        text = pytesseract.image_to_string(image, lang=languages(), timeout=PAGE_SECONDS)
    except pytesseract.TesseractNotFoundError as exc:
        raise LoadError(MISSING) from exc
    except RuntimeError as exc:  # pytesseract's timeout
        raise LoadError(f"OCR of a page took more than {PAGE_SECONDS} s") from exc
    except pytesseract.TesseractError as exc:
        raise LoadError(f"tesseract could not read the image ({' '.join(str(exc.message).split())[:200]})"
                        ) from exc
    return "\n".join(line.rstrip() for line in text.replace("\f", "\n").splitlines()).strip()


def progress(name: str, page: int, done: int, total: int) -> None:
    """Log each page as its OCR starts: a 100-page scan takes minutes."""
    if total > 1:
        log.info("%s: reading page %d by OCR (%d of %d)", name, page, done, total)
    else:
        log.info("%s: reading page %d by OCR", name, page)
