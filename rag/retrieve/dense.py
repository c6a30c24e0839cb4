"""Dense retrieval: cosine similarity between the question's embedding and the chunks'."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from ..embed import Embedder
from ..filters import Where
from ..index import Index
from ..schema import Passage
from .base import Retriever


class DenseRetriever(Retriever):
    """Cosine similarity between the query embedding and the chunk embeddings."""

    def __init__(
        self,
        embedder: Embedder,
        index: Callable[[], Index],
        lock: AbstractContextManager[Any] | None = None,
    ):
        self.embedder = embedder
        self._index = index  # a callable: the assistant refreshes the index between calls
        self._lock = lock or contextlib.nullcontext()

    def run(self, query: str, k: int, where: Where | None = None) -> list[Passage]:
        vector = self.embedder.encode_query(query)
        index = self._index()
        with self._lock:
            return index.search(vector, k, where)
