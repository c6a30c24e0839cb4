"""Hybrid retrieval: BM25 keyword scores fused with the dense scores (the default)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any

from ..embed import Embedder
from ..filters import Where
from ..index import Index
from ..schema import Passage
from .base import Retriever


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
        """The keyword search needs no vector: it runs on a second thread while the question is
        embedded and the vectors searched (OpenVINO, FAISS and a Milvus call release the GIL),
        under the one index lock so both see the same index. At 1M chunks the keyword search
        is the longest step (benchmarks/million.py)."""
        index = self._index()
        n = max(k, self.candidates)
        with self._lock:
            lexical = _KEYWORDS.submit(index.keywords, query, n, where)
            try:
                vector = self.embedder.encode_query(query)
                dense = index.nearest(vector, n, where)
            finally:
                keywords = lexical.result()
            fused = fuse(dense, keywords, self.fusion, self.dense_weight, self.rrf_k)
            return [index.passage(cid, score) for cid, score in fused[:k]]


_KEYWORDS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rag-keywords")
"""One keyword search at a time per index (its lock); a second worker for another collection's."""


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
