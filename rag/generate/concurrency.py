"""How many questions to work on at once, from the configured model's file size, known without
loading the model (the page's queue, /v1 and MCP size their bounds before any answer)."""

from __future__ import annotations

from pathlib import Path

from ..config import Settings
from .base import BARE, CATALOGUE_MODELS, smollm2_gguf

REPLICA_MAX_BYTES = 1 << 30
"""A llama.cpp model file under this size gets a context per concurrent answer (generator_replicas
auto); a larger one gets one context, and then one answer at a time (answers_at_once)."""


def model_file_bytes(settings: Settings) -> int | None:
    """The size of the llama.cpp model file the generator setting names, without loading it
    (None: not a local llama.cpp model, or not there)."""
    kind, _, name = settings.generator.strip().partition(":")
    if kind == "llamacpp" and name in BARE:
        kind, name = name, ""
    try:
        if kind == "smollm2" and not name:
            return smollm2_gguf().stat().st_size
        if kind in CATALOGUE_MODELS and not name:
            from .catalogue import lookup

            return lookup(kind).size
        if kind == "llamacpp" and name:
            return Path(name).expanduser().stat().st_size
    except (OSError, RuntimeError):
        return None
    return None


def answers_at_once(settings: Settings) -> int:
    """Questions worked on at once (the page's queue, /v1, MCP): `answer_concurrency`, or with 0
    (auto) 2, but 1 for a llama.cpp model file of REPLICA_MAX_BYTES or more. Such a model has one
    context, so a second question at once only takes cores from the answer being written: with the
    1.5B Qwen, 8 clients got 0.32 answers/s at 1 against 0.19 at 2 (benchmarks/load.py
    --concurrency 1,2, docs/PERFORMANCE.md)."""
    if settings.answer_concurrency:
        return settings.answer_concurrency
    size = model_file_bytes(settings)
    return 1 if size is not None and size >= REPLICA_MAX_BYTES else 2
