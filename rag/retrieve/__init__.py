"""Retrieval: the `Retriever` contract (base.py), dense, hybrid and reranking stages, and the
LangChain adapter (langchain.py). `make_retriever` builds what the settings ask for."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from ..config import Settings
from ..embed import Embedder
from ..index import Index
from .base import Retriever
from .dense import DenseRetriever
from .hybrid import HybridRetriever, fuse
from .rerank import SentenceReranker


def make_retriever(settings: Settings, embedder: Embedder, index: Callable[[], Index],
                   lock: AbstractContextManager[Any] | None = None) -> Retriever:
    """Hybrid (or dense) first stage, and the sentence reranker when `rerank` is set."""
    first: Retriever
    if settings.hybrid:
        first = HybridRetriever(embedder, index, lock, settings.fusion, settings.dense_weight)
    else:
        first = DenseRetriever(embedder, index, lock)
    if settings.rerank:
        return SentenceReranker(first, embedder, settings.rerank)
    return first


__all__ = ["DenseRetriever", "HybridRetriever", "Retriever", "SentenceReranker", "fuse", "make_retriever"]
