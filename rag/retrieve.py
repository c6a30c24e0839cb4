"""Retrievers: question in, scored passages out. Hybrid and reranking stages slot in here."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

import numpy as np

from .embed import Embedder
from .filters import Where
from .index import Index
from .reader import split_sentences
from .schema import Passage


class Retriever(ABC):
    @abstractmethod
    def run(self, query: str, k: int, where: Where | None = None) -> list[Passage]:
        """The k best passages for the query (among those `where` allows), best first."""


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


class HybridRetriever(Retriever):
    """BM25 and dense retrieval fused: reciprocal rank fusion (`rrf`) or a convex combination of
    min-max normalised scores (`convex`, `dense_weight` on the dense side)."""

    def __init__(
        self,
        embedder: Embedder,
        index: Callable[[], Index],
        lock: AbstractContextManager[Any] | None = None,
        fusion: str = "rrf",
        dense_weight: float = 0.5,
        candidates: int = 50,
        rrf_k: int = 60,
    ):
        if fusion not in ("rrf", "convex"):
            raise ValueError(f"fusion is rrf or convex, not {fusion!r}")
        self.embedder = embedder
        self._index = index
        self._lock = lock or contextlib.nullcontext()
        self.fusion = fusion
        self.dense_weight = dense_weight
        self.candidates = candidates
        self.rrf_k = rrf_k
        weight = f" {dense_weight:g} dense" if fusion == "convex" else f" k={rrf_k}"
        self.label = f"hybrid BM25 + dense {embedder.model_id.rsplit('/', 1)[-1]} ({fusion}{weight})"

    def run(self, query: str, k: int, where: Where | None = None) -> list[Passage]:
        vector = self.embedder.encode_query(query)
        index = self._index()
        n = max(k, self.candidates)
        with self._lock:
            dense = index.nearest(vector, n, where)
            lexical = index.keywords(query, n, where)
            fused = fuse(dense, lexical, self.fusion, self.dense_weight, self.rrf_k)
            return [index.passage(cid, score) for cid, score in fused[:k]]


def fuse(
    dense: list[tuple[int, float]],
    lexical: list[tuple[int, float]],
    fusion: str = "rrf",
    dense_weight: float = 0.5,
    rrf_k: int = 60,
) -> list[tuple[int, float]]:
    """Two ranked lists of (chunk id, score), best first, fused into one, best first."""
    scores: dict[int, float] = {}
    if fusion == "rrf":
        for ranked in (dense, lexical):
            for rank, (cid, _) in enumerate(ranked, start=1):
                scores[cid] = scores.get(cid, 0.0) + 1.0 / (rrf_k + rank)
    else:
        for ranked, weight in ((dense, dense_weight), (lexical, 1.0 - dense_weight)):
            if not ranked:
                continue
            values = [s for _, s in ranked]
            low, high = min(values), max(values)
            for cid, s in ranked:
                norm = (s - low) / (high - low) if high > low else 1.0
                scores[cid] = scores.get(cid, 0.0) + weight * norm
    return sorted(scores.items(), key=lambda kv: -kv[1])


class SentenceReranker(Retriever):
    """Second stage: the first retriever's candidates re-scored by their best sentence.

    No cross-encoder ships offline; the embedding model, asked about single sentences instead
    of whole chunks, is the reranker that can run here. The final score mixes the first stage's
    (min-max normalised) score with the best sentence's cosine, `weight` on the first stage."""

    def __init__(self, first: Retriever, embedder: Embedder, candidates: int = 20, weight: float = 0.5):
        self.first = first
        self.embedder = embedder
        self.candidates = candidates
        self.weight = weight
        self.label = f"{getattr(first, 'label', 'dense')} + sentence rerank (top {candidates})"

    def run(self, query: str, k: int, where: Where | None = None) -> list[Passage]:
        passages = self.first.run(query, max(k, self.candidates), where)
        if len(passages) < 2:
            return passages[:k]
        return self.combine(passages, self.best_sentences(query, passages), self.weight)[:k]

    def best_sentences(self, query: str, passages: list[Passage]) -> np.ndarray:
        """Each passage's highest query-sentence cosine."""
        owners, sentences = [], []
        for n, p in enumerate(passages):
            for start, end in split_sentences(p.text) or [(0, len(p.text))]:
                owners.append(n)
                sentences.append(p.text[start:end])
        vectors = self.embedder.encode([query] + sentences)
        best = np.full(len(passages), -1.0)
        np.maximum.at(best, np.array(owners), vectors[1:] @ vectors[0])
        return best

    @staticmethod
    def combine(passages: list[Passage], best: np.ndarray, weight: float) -> list[Passage]:
        first = np.array([p.score for p in passages], dtype=np.float64)
        span = first.max() - first.min()
        first = (first - first.min()) / span if span > 0 else np.ones_like(first)
        scores = weight * first + (1 - weight) * best
        order = np.argsort(-scores, kind="stable")
        return [replace(passages[i], score=float(scores[i])) for i in order]
