"""OpenDocument text (.odt, LibreOffice's own format) through odfpy: headings at their outline
level, paragraphs, lists, tables with their header row, sections, and the title, creator and
creation date of meta.xml. odfpy parses with defusedxml: entity declarations are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .archive import package, reading
from .base import LOADERS, MAX_FILE_BYTES, isolated, split_header
from .blocks import Blocks, md_table, properties

KIND = "OpenDocument text (.odt)"


@LOADERS.register(".odt")
@isolated
def load_odt(path: Path, data: bytes, limit: int = MAX_FILE_BYTES) -> tuple[str, dict[str, str]]:
    source = package(data, KIND, limit)
    with reading(KIND):
        from odf import dc, meta, teletype
        from odf.opendocument import load

        document = load(source)
        out = Blocks(limit)
        first_heading = _walk(document.text, out)

        def first(kind: Any) -> str | None:
            found = document.meta.getElementsByType(kind)
            return teletype.extractText(found[0]) if found else None

        props = properties(first(dc.Title), first(dc.Creator) or first(meta.InitialCreator),
                           first(meta.CreationDate))
    text, header = split_header(out.text())
    if "title" not in props and first_heading:
        props["title"] = first_heading
    return text, {**props, **header}


def _walk(node: Any, out: Blocks) -> str:
    """Write the blocks under `node`; returns the first heading's text."""
    from odf import teletype
    from odf.namespaces import TABLENS, TEXTNS
    from odf.table import TableRow

    first = ""
    for element in node.childNodes:
        if element.nodeType != element.ELEMENT_NODE:
            continue
        ns, tag = element.qname
        if ns == TEXTNS and tag == "h":
            text = teletype.extractText(element).strip()
            level = element.getAttrNS(TEXTNS, "outline-level") or "1"
            out.heading(int(level) if str(level).isdigit() else 1, text)
            first = first or text
        elif ns == TEXTNS and tag == "p":
            out.add(teletype.extractText(element))
        elif ns == TEXTNS and tag == "list":
            _list(element, out, 0)
        elif ns == TABLENS and tag == "table":
            rows = [[teletype.extractText(c) for c in row.childNodes
                     if c.nodeType == c.ELEMENT_NODE and c.qname == (TABLENS, "table-cell")]
                    for row in element.getElementsByType(TableRow)]
            out.add(md_table(rows))
        elif ns == TEXTNS and tag == "section":
            inner = _walk(element, out)
            first = first or inner
    return first


def _list(node: Any, out: Blocks, depth: int) -> None:
    """List items as `- ` lines, nested lists indented under their item."""
    from odf import teletype
    from odf.namespaces import TEXTNS

    for item in node.childNodes:
        if item.nodeType != item.ELEMENT_NODE or item.qname != (TEXTNS, "list-item"):
            continue
        for child in item.childNodes:
            if child.nodeType != child.ELEMENT_NODE:
                continue
            if child.qname in ((TEXTNS, "p"), (TEXTNS, "h")):
                text = " ".join(teletype.extractText(child).split())
                if text:
                    out.add("  " * depth + f"- {text}")
            elif child.qname == (TEXTNS, "list"):
                _list(child, out, depth + 1)
