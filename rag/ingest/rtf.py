"""Rich Text Format (.rtf) through striprtf: the text with its \\uN and \\'hh escapes decoded
(headings are not marked in RTF's plain text), and the title and author of its \\info group."""

from __future__ import annotations

import re
from pathlib import Path

from .base import LOADERS, MAX_FILE_BYTES, LoadError, split_header
from .blocks import described, properties

_INFO = re.compile(rb"\{\\(title|author|creatim)\b([^{}]{0,2000})\}")
_CREATED = re.compile(rb"\\yr(\d{4})\\mo(\d{1,2})\\dy(\d{1,2})")


@LOADERS.register(".rtf")
def load_rtf(path: Path, data: bytes, limit: int = MAX_FILE_BYTES) -> tuple[str, dict[str, str]]:
    from striprtf.striprtf import rtf_to_text

    if not data.strip():
        raise LoadError("the file is empty")
    if not data.lstrip().startswith(b"{\\rtf"):
        raise LoadError("not an RTF document (it does not start with {\\rtf)")
    try:
        # RTF is 7-bit: every other character is an escape, so latin-1 maps its bytes 1:1
        text = rtf_to_text(data.decode("latin-1"), errors="ignore")
    except (RecursionError, MemoryError) as exc:
        raise LoadError("the RTF is nested too deeply or too large to read") from exc
    except Exception as exc:  # striprtf on text it was not written for
        raise LoadError(f"not a readable RTF document ({described(exc)})") from exc
    if len(text) > limit:
        raise LoadError(f"the document expands to more than {limit:,} characters of text "
                        "(limit: RAG_MAX_DOCUMENT_MB)")
    info: dict[str, str] = {}
    for key, value in _INFO.findall(data[:1 << 20]):
        if key == b"creatim":
            found = _CREATED.search(value)
            if found:
                year, month, day = (int(x) for x in found.groups())
                info["created"] = f"{year:04d}-{month:02d}-{day:02d}"
        else:
            info[key.decode()] = rtf_to_text("{\\rtf1 " + value.decode("latin-1") + "}").strip()
    text, header = split_header(text)
    return text, {**properties(info.get("title"), info.get("author"), info.get("created")), **header}
