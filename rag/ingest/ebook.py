"""E-books (.epub) through EbookLib: the chapters in reading (spine) order as Markdown (headings
and tables kept, through markdownify), the table of contents skipped, and the Dublin Core title,
creator and date."""

from __future__ import annotations

from pathlib import Path

from .archive import package, reading
from .base import LOADERS, MAX_FILE_BYTES, isolated, quiet, split_header
from .blocks import Blocks, properties
from .html import html_to_markdown

KIND = "EPUB e-book (.epub)"
quiet("ebooklib")


@LOADERS.register(".epub")
@isolated
def load_epub(path: Path, data: bytes, limit: int = MAX_FILE_BYTES) -> tuple[str, dict[str, str]]:
    source = package(data, KIND, limit)
    with reading(KIND):
        import ebooklib
        from ebooklib import epub

        book = epub.read_epub(source, options={"ignore_ncx": True})
        out = Blocks(limit)
        for idref, _linear in book.spine:
            item = book.get_item_with_id(idref)
            if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT or isinstance(item, epub.EpubNav):
                continue
            out.add(html_to_markdown(item.get_content()))

        def first(name: str) -> str | None:
            values = book.get_metadata("DC", name)
            return str(values[0][0]) if values and values[0] and values[0][0] else None

        meta = properties(first("title"), first("creator"), first("date"))
    text, header = split_header(out.text())
    return text, {**meta, **header}
