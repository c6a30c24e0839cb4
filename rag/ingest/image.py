"""Images of text (.png, .jpg, .jpeg, .tif, .tiff: scans, photographed pages, screenshots)
through OCR (rag/ingest/ocr.py); every page of a multi-page TIFF."""

from __future__ import annotations

import io
from pathlib import Path

from .archive import not_this_kind
from .base import LOADERS, MAX_FILE_BYTES, LoadError, isolated, quiet
from .blocks import Blocks, described
from .ocr import MAX_PIXELS, progress, read, require

MAX_FRAMES = 2000
quiet("PIL")


@LOADERS.register(".png", ".jpg", ".jpeg", ".tif", ".tiff")
@isolated
def load_image(path: Path, data: bytes, limit: int = MAX_FILE_BYTES) -> tuple[str, dict[str, str]]:
    from PIL import Image, UnidentifiedImageError

    if not data.strip():
        raise LoadError("the file is empty")
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
    except UnidentifiedImageError as exc:
        raise not_this_kind(data, "image") or LoadError("not an image Pillow can read") from exc
    except Exception as exc:
        raise LoadError(f"not a readable image ({described(exc)})") from exc
    with image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise LoadError(f"the image is {width:,} x {height:,} pixels, more than the "
                            f"{MAX_PIXELS:,} OCR reads (a decompression bomb?)")
        frames = min(getattr(image, "n_frames", 1), MAX_FRAMES)
        require()
        out = Blocks(limit)
        for number in range(frames):
            if frames > 1:
                progress(path.name, number + 1, number + 1, frames)
            try:
                image.seek(number)
                image.load()
                page = image.copy()
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
                raise LoadError(f"a damaged or truncated image ({described(exc)})") from exc
            out.add(read(page))
    if not out.parts:
        raise LoadError("OCR found no text in the image")
    return out.text(), {}
