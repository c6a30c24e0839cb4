"""The embedding step: one facade over the configured backend, normalised vectors so that
inner product is cosine similarity."""

from __future__ import annotations

import logging
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .base import AUTO_ORDER, ENCODERS, Encoder, Unsupported, resolve_model
from .choice import Choice, candidates, choose, cpu_info

log = logging.getLogger(__name__)

BACKENDS = ("auto", *AUTO_ORDER)


def set_threads(threads: int) -> None:
    """torch threads (only if something imported torch: the OpenVINO path never needs it; OpenVINO
    gets its count when the model is compiled), and FAISS's."""
    import faiss

    torch = sys.modules.get("torch")
    ready = torch is not None and hasattr(torch, "get_num_threads") and hasattr(torch, "set_num_threads")
    if ready and torch.get_num_threads() != threads:  # (not a module another thread still imports)
        torch.set_num_threads(threads)
    # FAISS answers one question at a time: a single thread is fastest for that, and on a busy
    # machine 2 OpenMP threads wait for each other (10k vectors: 0.6 ms against 20 ms p50,
    # benchmarks/retrieval_latency.py). IVF training is the only bulk work, and it is rare.
    faiss.omp_set_num_threads(1)


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
        if cache_dir is None:
            from ..config import default_cache_dir

            cache_dir = default_cache_dir()
        self.model_id = model
        self.batch_size = batch_size
        location = resolve_model(model)
        self.choice: Choice | None = None
        """What `auto` precision resolved to on this machine, measured (rag.embed.choice)."""
        options: dict[str, Any] = {}
        if precision == "auto" and backend in ("auto", "openvino") and device == "cpu":
            self.choice = _measured(model, location, cache_dir, threads, backend)
            if self.choice is not None:
                backend, precision = self.choice.backend, self.choice.precision
                if backend == "openvino":
                    options["query_threads"] = self.choice.query_threads
        self.encoder = _load(backend, model, location, cache_dir=cache_dir,
                             precision=precision, threads=threads, device=device, **options)
        self.backend = self.encoder.label
        self.precision = _precision_of(self.encoder, precision)
        """"backend:precision" of the vectors (recorded in the index's manifest)."""
        self.dimension = self.encoder.dimension
        self.max_tokens = self.encoder.max_tokens
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self._recent_lock = threading.Lock()

    @property
    def tokenizer(self) -> Any:
        """Callable as `tokenizer(text, add_special_tokens=False)["input_ids"]`."""
        return self.encoder.tokenizer

    def encode(
        self,
        texts: Sequence[str],
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed in batches; `progress(n)` is called after each batch of n texts.

        Texts are batched by length (longest first), as `SentenceTransformer.encode` does
        within one call, so little time goes into padding."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        self.encoder.calibrate(texts)  # int8 only, once: quantized on these texts and a fixed sample
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(texts), self.batch_size):
            rows = order[start:start + self.batch_size]
            batch = [texts[i] for i in rows]
            out[rows] = self.encoder.encode_batch(batch)
            if progress:
                progress(len(batch))
        return out

    def encode_query(self, text: str) -> np.ndarray:
        return self.encoder.encode_query(text)

    RECENT = 20_000
    """Sentence vectors kept by `encode_recurring` (384 floats each: about 30 MB)."""

    def encode_recurring(self, texts: Sequence[str]) -> np.ndarray:
        """`encode` for texts that come back again and again — the reader's candidate sentences,
        since the same passages are retrieved question after question. A vector depends on its
        text alone, so the least recently used ones are kept; the rest go in one batch."""
        with self._recent_lock:  # one lock: a vector cannot be evicted between its check and its use
            missing = [t for t in dict.fromkeys(texts) if t not in self._recent]
            if missing:
                self._recent.update(zip(missing, self.encode(missing)))
            for text in texts:
                self._recent.move_to_end(text)
            out = np.stack([self._recent[t] for t in texts]) if texts else np.empty((0, self.dimension),
                                                                                   dtype=np.float32)
            while len(self._recent) > self.RECENT:
                self._recent.popitem(last=False)
        return out


def _measured(model: str, location: str, cache_dir: Path, threads: int, backend: str) -> Choice | None:
    """The measured choice, or None (the backend's own default) when measuring is impossible:
    no local model folder for OpenVINO, or every candidate failed."""
    if not Path(location).is_dir():
        return None
    if len(candidates(backend, cpu_info()[1])) < 2:  # nothing to choose between (no OpenVINO)
        return None
    try:
        return choose(model, location, cache_dir, threads, backend)
    except RuntimeError as exc:
        log.warning("embedding: could not measure precisions (%s); using the backend's default", exc)
        return None


def _precision_of(encoder: Encoder, precision: str) -> str:
    """"openvino:f32", "torch:fp32"...: which computation made the vectors."""
    name = encoder.label.split(" ", 1)[0]
    return f"{name}:{'fp32' if name == 'torch' else precision}"


def _load(backend: str, model: str, location: str, **options: Any) -> Encoder:
    """The first backend that can serve the model (`auto`), or the one asked for."""
    names = AUTO_ORDER if backend == "auto" else (backend,)
    for name in names:
        last = name == names[-1]
        try:
            return ENCODERS.get(name)(model, location, **options)
        except Unsupported as exc:
            if backend != "auto" or last:
                raise RuntimeError(f"{name} embedding backend unavailable: {exc}") from exc
            log.info("embedding with %s: %s cannot serve this model (%s)",
                     names[names.index(name) + 1], name, exc)
        except Exception as exc:  # conversion or compilation failed: the next backend may work
            if backend != "auto" or last:
                raise
            log.warning("%s embedding failed (%s); using %s", name, exc,
                        names[names.index(name) + 1], exc_info=True)
    raise AssertionError("no embedding backend tried")
