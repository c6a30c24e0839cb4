"""Vector stores: a tiny base class and one backend per family, chosen by configuration."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


class VectorStore(ABC):
    """Maps int64 chunk ids to unit vectors and finds the nearest by inner product."""

    kind: str = ""
    shared: bool = False
    """True for a store outside the index folder (a server), shared by several processes."""

    def __init__(self, dimension: int):
        self.dimension = dimension

    @abstractmethod
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    @abstractmethod
    def remove(self, ids: Sequence[int]) -> int: ...

    @abstractmethod
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each of shape (len(queries), k); missing hits have id -1."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def save(self, path: Path) -> None: ...

    @classmethod
    @abstractmethod
    def load(cls, path: Path, dimension: int) -> VectorStore: ...

    @classmethod
    def options(cls, settings: Any) -> dict[str, Any]:
        """Constructor arguments this backend takes from the settings (a server's URI, say)."""
        return {}


class FaissStore(VectorStore):
    """Exact inner-product search (IndexFlatIP) under an id map, so documents can be removed."""

    kind = "faiss"
    filename = "vectors.faiss"

    def __init__(self, dimension: int, index: object | None = None):
        import faiss

        super().__init__(dimension)
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ValueError(f"expected vectors of dimension {self.dimension}, got {vectors.shape}")
        self._index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))

    def remove(self, ids: Sequence[int]) -> int:
        if not len(ids):
            return 0
        return int(self._index.remove_ids(np.asarray(list(ids), dtype=np.int64)))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if len(self) == 0:
            empty = np.full((len(queries), k), -1, dtype=np.int64)
            return np.zeros((len(queries), k), dtype=np.float32), empty
        return self._index.search(queries, min(k, len(self)))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, dimension: int) -> FaissStore:
        import faiss

        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise ValueError(f"unreadable FAISS index {path.name}: {str(exc).splitlines()[0]}") from exc
        if index.d != dimension:
            raise ValueError(f"FAISS index has dimension {index.d}, manifest says {dimension}")
        return cls(dimension, index)


STORES: dict[str, type[VectorStore]] = {"faiss": FaissStore}
PLUGINS = {"milvus": "rag.milvus"}
"""Backends in their own modules (heavy clients), imported when first chosen; they register
themselves in STORES."""


def store_kinds() -> list[str]:
    return sorted(set(STORES) | set(PLUGINS))


def store_class(kind: str) -> type[VectorStore]:
    if kind not in STORES and kind in PLUGINS:
        importlib.import_module(PLUGINS[kind])
    try:
        return STORES[kind]
    except KeyError:
        raise ValueError(f"unknown store {kind!r}; choose one of {', '.join(store_kinds())}") from None
