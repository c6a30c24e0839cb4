"""Retrievers: question in, scored passages out. Hybrid and reranking stages slot in here."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from .embed import Embedder
from .index import Index
from .schema import Passage


class Retriever(ABC):
    @abstractmethod
    def run(self, query: str, k: int) -> list[Passage]:
        """The k best passages for the query, best first, with scores."""


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

    def run(self, query: str, k: int) -> list[Passage]:
        vector = self.embedder.encode_query(query)
        index = self._index()
        with self._lock:
            return index.search(vector, k)
