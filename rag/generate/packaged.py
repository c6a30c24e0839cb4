"""The packaged SmolLM2-135M-Instruct (`RAG_GENERATOR=smollm2`, the offline default), run by the
fastest engine this install has.

Why: llama.cpp reads the GGUF as it is and imports in a fraction of a second, where torch and
transformers take seconds to import and load (docs/PERFORMANCE.md, "cold ask"), so llama.cpp is
the default whenever `llama-cpp-python` is importable (`make run` and `make test` build it).
Without it, transformers runs the same weights, and the reason is logged once. Either engine
can be asked for by name: `llamacpp:smollm2`, `hf:smollm2`.
"""

from __future__ import annotations

import importlib.util
import logging

from ..config import Settings
from .base import CATALOGUE_MODELS, GENERATORS, Generator

log = logging.getLogger(__name__)

_warned = False


def engine() -> str:
    """'llamacpp' when llama-cpp-python is importable, else 'hf' (transformers)."""
    return "llamacpp" if importlib.util.find_spec("llama_cpp") is not None else "hf"


def on_llamacpp(generator: str) -> bool:
    """Whether a `RAG_GENERATOR` setting runs through llama.cpp in process: `llamacpp:...`, a
    catalogue model, or `smollm2` where llama-cpp-python is installed."""
    return (generator.startswith("llamacpp:") or generator in CATALOGUE_MODELS
            or (generator == "smollm2" and engine() == "llamacpp"))


@GENERATORS.register("smollm2")
def _smollm2(name: str, settings: Settings) -> Generator:
    global _warned
    if engine() == "llamacpp":
        from .llamacpp import packaged

        return packaged(settings)
    if not _warned:
        _warned = True
        log.warning("llama-cpp-python is not installed, so SmolLM2 runs through transformers "
                    "(slower to start: `make llama-cpp` builds llama.cpp once)")
    from .hf import packaged

    return packaged(settings)
