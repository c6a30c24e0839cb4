"""JSON and JSON Lines through the standard library: every text, number and boolean leaf as a
`key.path: value` line, and each record (an object in a list, a line of a JSON Lines file) as
one line of them, so each value keeps the name that gives it meaning. A top-level `title`,
`author` and `date` (or `created`) fill the document's fields."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .base import LOADERS, MAX_FILE_BYTES, LoadError
from .blocks import Blocks, properties
from .encoding import decode_text


@LOADERS.register(".json", ".jsonl")
def load_json(path: Path, data: bytes, limit: int = MAX_FILE_BYTES) -> tuple[str, dict[str, str]]:
    text, _ = decode_text(data)
    out = Blocks(limit)
    meta: dict[str, str] = {}
    try:
        if path.suffix.lower() == ".jsonl":
            for number, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    try:
                        out.add(", ".join(leaves(json.loads(line))))
                    except json.JSONDecodeError as exc:
                        raise LoadError(f"line {number} is not valid JSON ({exc.msg})") from exc
        else:
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                where = f"line {exc.lineno}, column {exc.colno}"
                raise LoadError(f"not valid JSON ({exc.msg} at {where})") from exc
            if isinstance(value, dict):
                meta = properties(*(_text(value.get(k)) for k in ("title", "author")),
                                  _text(value.get("date") or value.get("created")))
            out.extend(lines(value))
    except RecursionError as exc:
        raise LoadError("the JSON is nested too deeply to read") from exc
    return out.text(), meta


def lines(value: Any, prefix: str = "") -> Iterator[str]:
    """One line per fact: a leaf as `a.b.c: value`, a record (an object in a list) as one line
    of its leaves, `observations: object: Comet Halley, seen_from: Mount Tarn`."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from lines(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for inner in value:
            if isinstance(inner, dict):
                record = ", ".join(leaves(inner))
                if record:
                    yield f"{prefix}: {record}" if prefix else record
            else:
                yield from lines(inner, prefix)
    else:
        yield from leaves(value, prefix)


def leaves(value: Any, prefix: str = "") -> Iterator[str]:
    """`a.b.c: value` for every leaf that holds something (nulls and empty texts are left out)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from leaves(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for inner in value:
            yield from leaves(inner, prefix)
    elif value is not None and value != "":
        shown = " ".join(str(value).split()) if not isinstance(value, bool) else str(value).lower()
        yield f"{prefix}: {shown}" if prefix else shown


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
