"""Facts from a GGUF file's header (its metadata and tensor shapes) without loading the model.

Why: `rag config` says which model answers, how big it is and so which answer style `auto`
picks, and should not spend seconds on it: llama.cpp would map and set up the whole model, and
the `gguf` package's GGUFReader builds every metadata array (a 151,936-token vocabulary) as numpy
objects, about 8 s on a busy two-core machine. Walking the header with `struct` only skips those
arrays: a tenth of a second.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class GgufHeader:
    """The scalar metadata (arrays are skipped) and each tensor's element count."""

    metadata: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, int] = field(default_factory=dict)

    def parameters(self, tied_embeddings: bool = False) -> int:
        """The parameter count: every tensor's elements, as llama.cpp counts them; with
        `tied_embeddings` (the upstream model shares its embedding matrix with the output layer
        and the file stores it twice, as `output.weight`) the copy is counted once."""
        total = sum(self.tensors.values())
        if tied_embeddings and "token_embd.weight" in self.tensors:
            total -= self.tensors.get("output.weight", 0)
        return total


class _Cursor:
    def __init__(self, data: Any):
        self.data, self.at = data, 0

    def take(self, fmt: str) -> Any:
        value = struct.unpack_from("<" + fmt, self.data, self.at)[0]
        self.at += struct.calcsize("<" + fmt)
        return value

    def string(self) -> str:
        size = self.take("Q")
        self.at += size
        return bytes(self.data[self.at - size:self.at]).decode("utf-8", "replace")

    def skip_string(self) -> None:
        self.at += 8 + struct.unpack_from("<Q", self.data, self.at)[0]

    def value(self, kind: int) -> Any:
        if kind in _SCALARS:
            return self.take(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item, count = self.take("I"), self.take("Q")
            if item in _SCALARS:
                self.at += count * struct.calcsize("<" + _SCALARS[item])
            elif item == _STRING:
                for _ in range(count):
                    self.skip_string()
            else:
                for _ in range(count):
                    self.value(item)
            return None
        raise ValueError(f"unknown GGUF value type {kind}")


def read_header(path: Path) -> GgufHeader:
    """The header of a GGUF file (version 2 or 3); ValueError if it is not one."""
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data[:4] != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        cursor = _Cursor(data)
        cursor.at = 4
        version = cursor.take("I")
        if version not in (2, 3):
            raise ValueError(f"{path}: GGUF version {version} is not read here")
        tensors, pairs = cursor.take("Q"), cursor.take("Q")
        metadata: dict[str, Any] = {}
        try:
            for _ in range(pairs):
                key = cursor.string()
                value = cursor.value(cursor.take("I"))
                if value is not None:
                    metadata[key] = value
            shapes: dict[str, int] = {}
            for _ in range(tensors):
                name = cursor.string()
                elements = 1
                for _ in range(cursor.take("I")):
                    elements *= cursor.take("Q")
                cursor.take("I")  # the tensor's type
                cursor.take("Q")  # its offset
                shapes[name] = elements
        except struct.error as exc:
            raise ValueError(f"{path}: the GGUF header is cut short") from exc
    return GgufHeader(metadata, shapes)
