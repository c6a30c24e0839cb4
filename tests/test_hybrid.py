"""Hybrid retrieval: BM25 (segmented, rag/store/lexical.py) fused with the dense scores, the BM25
index persisted in the index generation and kept in step with the documents."""

from __future__ import annotations

import json

import pytest

from rag import Assistant, Settings
from rag.index import Index
from rag.retrieve import DenseRetriever, HybridRetriever, SentenceReranker, fuse


def test_fusions():
    dense = [(1, 0.9), (2, 0.8), (3, 0.1)]
    lexical = [(3, 12.0), (4, 6.0)]
    rrf = dict(fuse(dense, lexical, "rrf"))
    assert rrf[3] == pytest.approx(1 / 63 + 1 / 61) and max(rrf, key=rrf.get) == 3
    convex = fuse(dense, lexical, "convex", dense_weight=0.5)
    assert convex[0] == (1, pytest.approx(0.5)) and dict(convex)[3] == pytest.approx(0.5)
    assert [c for c, _ in fuse(dense, [], "convex", 0.5)] == [1, 2, 3]


def test_settings_flag_from_the_environment():
    assert Settings.from_env(env={}).hybrid is True
    assert Settings.from_env(env={"RAG_HYBRID": "0"}).hybrid is False
    assert Settings.from_env(env={"RAG_HYBRID": "off", "RAG_FUSION": "convex"}).fusion == "convex"
    with pytest.raises(ValueError, match="hybrid"):
        Settings.from_env(env={"RAG_HYBRID": "maybe"})
    with pytest.raises(ValueError, match="fusion"):
        Settings.from_env(env={"RAG_FUSION": "sum"})


def test_bm25_is_saved_with_the_index_and_follows_the_documents(fresh: Assistant):
    corpus, index_dir = fresh.settings.corpus_dir, fresh.settings.index_dir
    (corpus / "code.txt").write_text("Parcel ZX-4471 was delivered to warehouse Q on a Tuesday.")
    fresh.refresh()
    assert isinstance(fresh.retriever, HybridRetriever)
    generation = index_dir / (index_dir / "CURRENT").read_text().strip()
    segments = json.loads((generation / "bm25" / "lexical.json").read_text())["segments"]
    assert all((generation / "bm25" / f"{name}.rows.npy").is_file() for name in segments)
    loaded = Index.load(index_dir)  # checked against the manifest's checksums
    assert loaded._lexical is not None and len(loaded._lexical) == len(loaded.chunks)
    # an exact code the embedding model barely sees is found by its keyword
    assert loaded.lexical().search("ZX-4471", 3)[0][0] in loaded.chunks.ids_of("code.txt")
    assert fresh.search("Where did parcel ZX-4471 go?", 2)[0].doc_id == "code.txt"

    (corpus / "code.txt").write_text("Invoice 99-ALPHA was paid by the harbour authority.")
    fresh.refresh()
    lexical = fresh.index_data.lexical()
    assert lexical.search("ZX-4471", 3) == []
    assert lexical.search("99-ALPHA invoice", 3)[0][0] in fresh.index_data.chunks.ids_of("code.txt")
    (corpus / "code.txt").unlink()
    fresh.refresh()
    assert len(fresh.index_data.lexical()) == len(fresh.index_data.chunks)
    assert all(p.doc_id != "code.txt" for p in fresh.search("invoice 99-ALPHA harbour", 4))


def test_hybrid_keeps_dense_answers_and_scores_in_range(assistant: Assistant):
    index = assistant.index_data
    dense = DenseRetriever(assistant.embedder, lambda: index)
    for fusion in ("rrf", "convex"):
        hybrid = HybridRetriever(assistant.embedder, lambda: index, fusion=fusion)
        got = hybrid.run("Why did Putin travel to Beijing?", 4)
        assert len(got) == min(4, len(index.chunks)) and all(0 <= p.score <= 1 for p in got)
        assert got[0].chunk_id in {p.chunk_id for p in dense.run("Why did Putin travel to Beijing?", 4)}


def test_sentence_reranker_reorders_the_first_stage(assistant: Assistant):
    first = assistant.retriever
    reranker = SentenceReranker(first, assistant.embedder, candidates=6)
    question = "Which city did Putin arrive in?"
    candidates = first.run(question, 6)
    best = reranker.best_sentences(question, candidates)
    assert best.shape == (len(candidates),) and (best > -1).all() and (best <= 1.0001).all()
    kept = reranker.combine(candidates, best, weight=1.0)
    assert [p.chunk_id for p in kept] == [p.chunk_id for p in candidates]  # weight 1: first stage
    by_sentence = reranker.combine(candidates, best, weight=0.0)
    assert [p.score for p in by_sentence] == sorted(best.tolist(), reverse=True)
    top = reranker.run(question, 2)
    assert len(top) == 2 and "arrived in Beijing" in top[0].text
    assert Settings.from_env(env={"RAG_RERANK": "20"}).rerank == 20
