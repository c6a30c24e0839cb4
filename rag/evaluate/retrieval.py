"""Retrieval on a BEIR folder: the corpus indexed by the assistant's pipeline, documents scored
by their best chunk (`rag eval retrieval`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .data import load_beir
from .metrics import Run, retrieval_metrics
from .runner import Result, _assistant


def evaluate_retrieval(beir_dir: Path, work: Path, limit: int | None = None, depth: int = 100,
                       progress: bool = True, embedder: Any = None, compare: bool = False,
                       **settings: Any) -> Result:
    """Index the BEIR corpus with the assistant's own pipeline, retrieve for each judged query,
    and score documents by their best chunk. With `compare`, dense and hybrid variants are
    measured too, on the same index (the first row is the configured retrieval)."""
    from ..retrieve import DenseRetriever, HybridRetriever

    data = load_beir(beir_dir)
    qids = [q for q in data.qrels if q in data.queries]
    if limit:
        qids = qids[:limit]
    qrels = {q: data.qrels[q] for q in qids}
    started = time.perf_counter()
    settings.setdefault("generator", "extractive")  # not used: retrieval only
    assistant, mapping = _assistant(work, data.corpus, progress, embedder, **settings)
    index = assistant.index_data
    indexed = time.perf_counter() - started

    def measure(retriever: Any) -> tuple[dict[str, float], float]:
        run: Run = {}
        started = time.perf_counter()
        for qid in qids:
            scores: dict[str, float] = {}
            for p in retriever.run(data.queries[qid], depth * 3):
                doc = mapping.get(p.doc_id, p.doc_id)
                scores[doc] = max(scores.get(doc, float("-inf")), p.score)
            run[qid] = dict(sorted(scores.items(), key=lambda kv: -kv[1])[:depth])
        return retrieval_metrics(qrels, run), time.perf_counter() - started

    metrics, searched = measure(assistant.retriever)
    variants = [(retrieval_label(assistant), metrics)]
    if compare:
        emb, get = assistant.embedder, (lambda: index)
        others = [DenseRetriever(emb, get), HybridRetriever(emb, get, fusion="rrf")]
        others += [HybridRetriever(emb, get, fusion="convex", dense_weight=w) for w in (0.3, 0.5, 0.7)]
        for retriever in others:
            label = retrieval_label(assistant, retriever)
            if label != variants[0][0]:
                variants.append((label, measure(retriever)[0]))
    return Result(
        Path(beir_dir).name,
        metrics,
        {"queries": len(qids), "documents": len(data.corpus), "index_seconds": indexed,
         "search_seconds": searched, "retrieval": variants[0][0], "variants": variants,
         "chunks": len(index.chunks)},
    )


def retrieval_label(assistant: Any, retriever: Any = None) -> str:
    s = assistant.settings
    model = s.embedding_model.rsplit("/", 1)[-1]
    kind = getattr(retriever or assistant.retriever, "label", None) or f"dense {model}"
    return f"{kind}, chunks {s.chunk_size}/{s.chunk_overlap} tokens, best chunk per document"
