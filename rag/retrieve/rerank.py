"""A second retrieval stage that re-scores passages by their best sentence (`RAG_RERANK`)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..embed import Embedder
from ..filters import Where
from ..schema import Passage
from ..text import split_sentences
from .base import Retriever


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
