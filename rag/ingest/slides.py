"""PowerPoint decks (.pptx) through python-pptx: each slide a section under its title, its text
frames (grouped shapes too), tables and speaker notes, and the file's properties."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .archive import package, reading
from .base import LOADERS, MAX_FILE_BYTES, isolated, split_header
from .blocks import Blocks, md_table, properties

KIND = "PowerPoint deck (.pptx)"


@LOADERS.register(".pptx")
@isolated
def load_pptx(path: Path, data: bytes, limit: int = MAX_FILE_BYTES) -> tuple[str, dict[str, str]]:
    source = package(data, KIND, limit)
    with reading(KIND):
        from pptx import Presentation

        deck = Presentation(source)
        out = Blocks(limit)
        first_title = ""
        for number, slide in enumerate(deck.slides, start=1):
            title = slide.shapes.title
            heading = " ".join(title.text.split()) if title is not None and title.has_text_frame else ""
            first_title = first_title or heading
            out.heading(2, heading or f"Slide {number}")
            skip = title.shape_id if title is not None else None
            for shape in slide.shapes:
                _shape_text(shape, skip, out)
            if slide.has_notes_slide:  # reading notes_slide would create one
                notes = slide.notes_slide.notes_text_frame
                if notes is not None and notes.text.strip():
                    out.add(f"Notes: {notes.text.strip()}")
        core = deck.core_properties
        meta = properties(core.title, core.author, core.created)
    text, header = split_header(out.text())
    if "title" not in meta and first_title:
        meta["title"] = first_title
    return text, {**meta, **header}


def _shape_text(shape: Any, skip: int | None, out: Blocks) -> None:
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
        for inner in shape.shapes:
            _shape_text(inner, skip, out)
        return
    if shape.shape_id == skip:
        return
    if shape.has_text_frame:
        for paragraph in shape.text_frame.paragraphs:
            text = "".join(run.text for run in paragraph.runs).strip()
            if text:
                out.add(("  " * (paragraph.level - 1) + "- " + text) if paragraph.level > 0 else text)
    if getattr(shape, "has_table", False):
        out.add(md_table([[c.text for c in row.cells] for row in shape.table.rows]))
