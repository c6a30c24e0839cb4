"""Vector stores: a tiny base class and a registry of backends, chosen by `RAG_STORE`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..registry import Registry


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
    def save(self, path: Path) -> list[str]:
        """Write the store into a new generation's folder at `path` (its main file; a backend
        may add files named after it beside it); returns the names of the files, relative to
        the folder, for the manifest."""

    def saved(self, path: Path) -> None:
        """The generation just saved is now at `path` (renamed into place): a store that links
        unchanged files into the next generation reads them from here from now on."""
        return None

    @classmethod
    @abstractmethod
    def load(cls, path: Path, dimension: int) -> VectorStore: ...

    @classmethod
    def options(cls, settings: Any) -> dict[str, Any]:
        """Constructor arguments this backend takes from the settings (a server's URI, say)."""
        return {}


STORES: Registry[type[VectorStore]] = Registry("store", {
    "faiss": "rag.store.faiss",
    "milvus": "rag.store.milvus",
})
"""Backends in their own modules, imported when first chosen (Milvus' client is heavy); each
registers itself."""


def store_kinds() -> list[str]:
    return STORES.names()


def store_class(kind: str) -> type[VectorStore]:
    return STORES.get(kind)
