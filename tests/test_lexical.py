"""Segmented BM25 (rag/store/lexical.py): an index grown and shrunk in segments scores every
chunk exactly as one built from scratch does, and as bm25s (the library it replaced) does, on
the seed article and real SciFact abstracts; tombstones, compaction and the saved files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from rag.store import lexical
from rag.store.lexical import Bm25, tokenize

SCIFACT = Path("/work/shared/datasets/scifact")
ROOT = Path(__file__).resolve().parents[1]
QUERIES = ["vitamin D deficiency and bone density", "Putin Xi meeting Beijing", "cancer cells",
           "gene expression in mice", "the", "antibiotic resistance bacteria infection",
           "protein protein protein binding"]


@pytest.fixture(scope="module")
def corpus() -> list[tuple[int, str]]:
    texts = [p for f in sorted((ROOT / "seeds").glob("*.txt"))
             for p in f.read_text().split("\n\n") if p.strip()]
    if not (SCIFACT / "corpus.jsonl").is_file():
        pytest.skip("SciFact is not in /work/shared/datasets")
    with open(SCIFACT / "corpus.jsonl") as fh:
        for line, _ in zip(fh, range(1200)):
            row = json.loads(line)
            texts.append(f"{row['title']}\n\n{row['text']}")
    texts.append("")  # a chunk with no tokens counts as one, as bm25s counted it
    return list(enumerate(texts))


def full(bm25: Bm25, query: str) -> dict[int, float]:
    return dict(bm25.search(query, 10**9))


def assert_same(a: Bm25, b: Bm25) -> None:
    assert len(a) == len(b)
    for q in QUERIES:
        sa, sb = full(a, q), full(b, q)
        assert sa.keys() == sb.keys(), q
        for cid in sa:
            assert sa[cid] == pytest.approx(sb[cid], rel=1e-9, abs=1e-9), (q, cid)
        top_a, top_b = a.search(q, 10), b.search(q, 10)
        assert [s for _, s in top_a] == pytest.approx([s for _, s in top_b], abs=1e-9), q


def test_scores_are_those_of_bm25s(corpus):
    """The formula, statistics and tokens are the ones bm25s (Lucene variant) used before."""
    import bm25s

    ours = Bm25.build(corpus)
    model = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
    model.index([tokenize(t) or ["_"] for _, t in corpus], show_progress=False)
    for q in QUERIES:
        tokens = [t for t in tokenize(q) if t in model.vocab_dict]
        reference = model.get_scores(tokens) if tokens else np.zeros(len(corpus))
        got = full(ours, q)
        assert set(got) == {i for i in range(len(corpus)) if reference[i] > 0}, q
        for cid, score in got.items():
            assert score == pytest.approx(float(reference[cid]), rel=1e-5, abs=1e-6), (q, cid)
        # the same top 10 (ties and float32 near-ties aside: compared by score)
        best = np.sort(reference[reference > 0])[::-1][:10]
        assert [s for _, s in ours.search(q, 10)] == pytest.approx(best.tolist(), rel=1e-5), q


def test_incremental_equals_rebuild(corpus):
    """Grown in segments, with removals and replacements on the way: the same scores as a
    single segment built from the chunks that are left."""
    grown = Bm25.build(corpus[:800])
    for start in range(800, len(corpus), 37):
        grown.add(corpus[start:start + 37])
        grown.search("warm", 1)  # each batch becomes its own segment
    removed = set(range(0, len(corpus), 7))
    grown.remove(sorted(removed))
    replaced = {5: "vitamin D and bone density in old mice", 801: "cancer cells cancer"}
    grown.add(replaced.items())
    texts = {cid: t for cid, t in corpus if cid not in removed} | replaced
    rebuilt = Bm25.build(sorted(texts.items()))
    assert len(grown.segments) > 10 and len(rebuilt.segments) == 1
    assert_same(grown, rebuilt)
    # the removed ones are gone, the statistics moved (IDF of a rarer term rose)
    hits = full(grown, "cancer cells")
    assert not removed & (set(hits) - set(replaced)) and 801 in hits
    grown.compact()
    assert len(grown.segments) == 1 and grown.churn() == 0
    assert_same(grown, rebuilt)


def test_idf_follows_the_live_documents():
    bm25 = Bm25.build([(1, "alpha beta"), (2, "alpha gamma"), (3, "delta")])
    n, df = 3, 2
    first = dict(bm25.search("alpha", 5))
    bm25.remove([2])
    after = dict(bm25.search("alpha", 5))
    assert set(after) == {1}
    # N 3 -> 2, df 2 -> 1, avgdl 5/3 -> 3/2: the score changes the way BM25 says
    idf0, idf1 = math.log(1 + (n - df + 0.5) / (df + 0.5)), math.log(1 + (2 - 1 + 0.5) / 1.5)
    assert first[1] == pytest.approx(idf0 * 1 / (1 + 1.2 * (0.25 + 0.75 * 2 / (5 / 3))))
    assert after[1] == pytest.approx(idf1 * 1 / (1 + 1.2 * (0.25 + 0.75 * 2 / 1.5)))
    bm25.remove([99])  # not indexed: ignored
    bm25.add([(4, "alpha")])
    bm25.add([(4, "epsilon")])  # replaced before it was ever searched
    assert set(dict(bm25.search("alpha", 5))) == {1} and dict(bm25.search("epsilon", 5)).keys() == {4}


def test_save_load_round_trip_links_unchanged_segments(corpus, tmp_path):
    bm25 = Bm25.build(corpus[:1000])
    bm25.add(corpus[1000:1100])
    bm25.remove([3, 1050])
    names = bm25.save(tmp_path / "g1" / "bm25")
    assert len(bm25.segments) == 2 and "bm25/s000000.dead.npy" in names
    loaded = Bm25.load(tmp_path / "g1" / "bm25")
    assert loaded is not None
    assert isinstance(loaded.segments[0].rows, np.memmap)
    assert_same(bm25, loaded)
    loaded.add(corpus[1100:])
    loaded.save(tmp_path / "g2" / "bm25")
    base = "s000000.rows.npy"
    assert (tmp_path / "g2" / "bm25" / base).stat().st_ino == (tmp_path / "g1" / "bm25" / base).stat().st_ino
    again = Bm25.load(tmp_path / "g2" / "bm25")
    assert_same(again, Bm25.build([c for c in corpus if c[0] not in (3, 1050)]))


def test_compaction_at_save_when_churn_is_high(corpus, tmp_path, monkeypatch):
    bm25 = Bm25.build(corpus[:1000])
    bm25.remove(range(50))  # 5 %: kept as tombstones
    bm25.save(tmp_path / "a")
    assert len(bm25.segments) == 1 and bm25.segments[0].dead_count == 50
    bm25.remove(range(50, 150))  # 15 %: merged away at save
    bm25.save(tmp_path / "b")
    assert bm25.segments[0].dead_count == 0 and len(bm25.segments[0].ids) == 850
    assert not list((tmp_path / "b").glob("*.dead.npy"))
    for start in range(1000, 1000 + 10 * 9, 9):  # many segments: merged too
        bm25.add(corpus[start:start + 9])
        len(bm25)
    assert len(bm25.segments) > lexical.MAX_SEGMENTS
    bm25.save(tmp_path / "c")
    assert len(bm25.segments) == 1
    assert_same(Bm25.load(tmp_path / "c"), Bm25.build(corpus[150:1090]))


def test_a_save_of_another_version_is_not_used(corpus, tmp_path):
    bm25 = Bm25.build(corpus[:100])
    bm25.save(tmp_path)
    meta = json.loads((tmp_path / lexical.META).read_text())
    (tmp_path / lexical.META).write_text(json.dumps({**meta, "version": 1}))
    assert Bm25.load(tmp_path) is None
    # a bm25s save of version 1 (no segments list) is not used either
    (tmp_path / lexical.META).write_text(json.dumps({"library": "bm25s", "method": "lucene", "k1": 1.2,
                                                     "b": 0.75, "version": 1}))
    assert Bm25.load(tmp_path) is None
    (tmp_path / lexical.META).write_text(json.dumps(meta))
    (tmp_path / "s000000.rows.npy").write_bytes(b"broken")
    assert Bm25.load(tmp_path) is None


def _put(index, doc_id: str, texts: list[str]) -> None:
    from rag.schema import Chunk, Document

    rng = np.random.default_rng(len(index.chunks))
    first = index.next_id
    chunks = [Chunk(first + j, doc_id, t, 0, len(t), j) for j, t in enumerate(texts)]
    vectors = rng.standard_normal((len(texts), 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index.put(Document(id=doc_id, title=doc_id, path="", text=" ".join(texts), content_hash=doc_id),
              chunks, vectors)


def test_the_index_updates_bm25_instead_of_rebuilding(corpus, tmp_path):
    """Index.put / delete add a segment and tombstones to the loaded BM25; a save of an older
    BM25 version is built again from the chunk texts once."""
    import hashlib

    from rag.index import Index

    index = Index.create("faiss", 8, {"test": "lexical"})
    texts = [t for _, t in corpus[:600]]
    for d in range(0, 600, 10):
        _put(index, f"doc-{d}", texts[d:d + 10])
    index.save(tmp_path)
    loaded = Index.load(tmp_path)
    bm25 = loaded._lexical
    assert bm25 is not None and len(bm25.segments) == 1
    _put(loaded, "doc-new", [t for _, t in corpus[600:610]])
    loaded.delete("doc-0")
    _put(loaded, "doc-10", [t for _, t in corpus[610:615]])  # replaced: its old chunks go
    assert loaded.lexical() is bm25 and len(bm25) == len(loaded.chunks) == 595
    assert len(bm25.segments) == 2  # the base with 20 tombstones, one segment for both puts
    rebuilt = Bm25.build((cid, loaded.chunks[cid].text) for cid in sorted(loaded.chunks))
    assert_same(bm25, rebuilt)
    generation = loaded.save(tmp_path)
    again = Index.load(tmp_path)
    assert len(again._lexical.segments) == 2
    assert_same(again.lexical(), rebuilt)
    # an older BM25 save in a valid generation: not used, built again from the chunks
    meta_file = generation / "bm25" / lexical.META
    meta_file.write_text(json.dumps({**json.loads(meta_file.read_text()), "version": 1}))
    manifest = json.loads((generation / "manifest.json").read_text())
    manifest["files"]["bm25/lexical.json"] = hashlib.sha256(meta_file.read_bytes()).hexdigest()
    manifest["sizes"]["bm25/lexical.json"] = meta_file.stat().st_size
    (generation / "manifest.json").write_text(json.dumps(manifest))
    old = Index.load(tmp_path)
    assert old._lexical is None
    assert len(old.lexical().segments) == 1
    assert_same(old.lexical(), rebuilt)


def test_pruned_top_k_is_the_exhaustive_top_k(corpus):
    """The k best (MaxScore pruning skips the long postings of common words once no unseen
    chunk can reach the top) are those of the full scoring, over several segments with
    removed chunks, for queries mixing rare and common words."""
    bm25 = Bm25.build(corpus[:700])
    bm25.add(corpus[700:])
    bm25.remove(range(0, 700, 7))
    bm25.search("warm", 1)  # the second segment is made
    assert len(bm25.segments) == 2
    rng = np.random.default_rng(0)
    vocab = sorted({t for _, text in corpus[::20] for t in tokenize(text)})
    queries = QUERIES + [" ".join(rng.choice(vocab, size=rng.integers(2, 9))) for _ in range(60)]
    for q in queries:
        everything = sorted(full(bm25, q).values(), reverse=True)
        for k in (1, 3, 10, 40):
            got = [s for _, s in bm25.search(q, k)]
            assert got == pytest.approx(everything[:k], rel=1e-9), (q, k)


def test_saved_again_after_its_folder_is_gone(corpus, tmp_path):
    """Another process may remove the generation this BM25 was loaded from: the next save writes
    the segments from memory instead of linking files that are gone."""
    import shutil

    Bm25.build(corpus[:300]).save(tmp_path / "a")
    loaded = Bm25.load(tmp_path / "a")
    shutil.rmtree(tmp_path / "a")
    loaded.save(tmp_path / "b")
    again = Bm25.load(tmp_path / "b")
    assert again is not None
    assert_same(again, Bm25.build(corpus[:300]))
