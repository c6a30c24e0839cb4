"""What a measured choice depends on: the CPU (model and flags), the core count and library
versions, hashed into a key, so a choice measured on one machine is never reused on another.
Shared by the embedding precision choice (rag/embed/choice.py) and the llama.cpp weights
choice (rag/generate/weights.py)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def cpu_info() -> tuple[str, list[str]]:
    """CPU model name and flags (from /proc/cpuinfo on Linux; the platform's name elsewhere)."""
    model, flags = "", []
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                name, _, value = line.partition(":")
                name = name.strip()
                if name in ("model name", "Processor") and not model:
                    model = value.strip()
                elif name in ("flags", "Features") and not flags:
                    flags = sorted(value.split())
                if model and flags:
                    break
    except OSError:
        pass
    return model or platform.processor() or platform.machine(), flags


def has_bf16(flags: Sequence[str]) -> bool:
    """bf16 arithmetic units (AVX512-BF16 or AMX): elsewhere bf16 is emulated, slowly."""
    return bool({"avx512_bf16", "amx_bf16"} & set(flags))


def library_versions(names: Sequence[str]) -> dict[str, str | None]:
    """Installed version of each distribution (None when it is not installed)."""
    versions: dict[str, str | None] = {}
    for lib in names:
        try:
            versions[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            versions[lib] = None
    return versions


def machine(cpu: tuple[str, Sequence[str]], libraries: Sequence[str], **extra: Any) -> dict[str, Any]:
    """The machine part of a key: CPU model, a hash of its flags, cores, library versions, and
    whatever else the measured order depends on (`extra`)."""
    model, flags = cpu
    return {"cpu": model, "flags": hashlib.sha256(" ".join(flags).encode()).hexdigest()[:16],
            "libraries": library_versions(libraries), "cores": os.cpu_count(), **extra}


def key_of(described: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


def write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder and rename: two first runs may race,
    and a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
