"""CSV and TSV through the standard library's csv module, decoded like any text file: the first
row is the header, and every other row becomes one line that keeps it ("Region: North,
Revenue: 4.2"), the same as a spreadsheet's rows."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from .base import LOADERS, MAX_FILE_BYTES, LoadError
from .blocks import Blocks, header_names, kv_row
from .encoding import decode_text


@LOADERS.register(".csv", ".tsv")
def load_delimited(path: Path, data: bytes, limit: int = MAX_FILE_BYTES) -> tuple[str, dict[str, str]]:
    text, _ = decode_text(data)
    if path.suffix.lower() == ".tsv":
        dialect: type[csv.Dialect] | csv.Dialect = csv.excel_tab
    else:
        try:  # commas, or the semicolons of locales whose decimal mark is a comma
            dialect = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
    rows = csv.reader(io.StringIO(text, newline=""), dialect)
    out = Blocks(limit)
    try:
        names = next((header_names(r) for r in rows if any(c.strip() for c in r)), None)
        if names is None:
            raise LoadError("the file has no rows")
        for row in rows:
            out.add(kv_row(names, row))
    except csv.Error as exc:
        raise LoadError(f"not a readable table (line {rows.line_num}: {exc})") from exc
    if not out.parts:  # a header alone: its names are the text
        out.add(", ".join(names))
    return out.text(), {}
