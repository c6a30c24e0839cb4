"""Word documents (.docx) through python-docx: headings as Markdown headings, lists, tables with
their header row, and the title, author and created date of the file's properties.

python-docx parses with lxml (entities not resolved; libxml2 refuses XML nested deeper than 256
levels and entity amplification), after the zip check of rag/ingest/archive.py."""

from __future__ import annotations

from pathlib import Path

from .archive import package, reading
from .base import LOADERS, MAX_FILE_BYTES, isolated, split_header
from .blocks import Blocks, md_table, properties

KIND = "Word document (.docx)"


@LOADERS.register(".docx")
@isolated
def load_docx(path: Path, data: bytes, limit: int = MAX_FILE_BYTES) -> tuple[str, dict[str, str]]:
    source = package(data, KIND, limit)
    with reading(KIND):
        import docx
        from docx.enum.style import WD_STYLE_TYPE
        from docx.table import Table
        from docx.text.paragraph import Paragraph

        document = docx.Document(source)
        # paragraph.style searches styles.xml for every paragraph (90% of the time on a
        # 200-page file): map style ids to names once, read each paragraph's id from its XML
        names = {s.style_id: s.name or "" for s in document.styles if s.type == WD_STYLE_TYPE.PARAGRAPH}
        out = Blocks(limit)
        first_heading = ""
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                out.add(md_table([[c.text for c in row.cells] for row in block.rows]))
                continue
            if not isinstance(block, Paragraph):
                continue
            text = block.text.strip()
            if not text:
                continue
            style = names.get(block._p.style or "", "")
            level = _heading_level(style)
            if level:
                out.heading(level, text)
                first_heading = first_heading or text
            elif style.startswith("List"):
                out.add(f"- {text}")
            else:
                out.add(text)
        core = document.core_properties
        meta = properties(core.title, core.author, core.created)
    text, header = split_header(out.text())
    if "title" not in meta and first_heading:
        meta["title"] = first_heading
    return text, {**meta, **header}


def _heading_level(style: str) -> int:
    """`Title` is level 1, `Heading 2` level 2; other styles are body text."""
    if style == "Title":
        return 1
    if style.startswith("Heading") and style[7:].strip().isdigit():
        return max(1, min(6, int(style[7:])))
    return 0
