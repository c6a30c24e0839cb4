"""The FAISS store by size: exact search below `exact_limit`, IVF with 8-bit scalar quantization
above it; memory-mapped loading; cheap load-time checks of big index files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from rag import index as index_module
from rag.index import Index, IndexCorrupt
from rag.schema import Chunk, Document
from rag.store.faiss import FaissStore


def _vectors(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    """Clustered unit vectors (like text embeddings, unlike uniform noise)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, d))
    x = centres[rng.integers(0, 40, n)] + 0.5 * rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_large_store_switches_to_ivf_and_keeps_ids_and_recall(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(FaissStore, "exact_limit", 5_000)
    x, ids = _vectors(12_000), np.arange(12_000, dtype=np.int64) * 3 + 7
    exact, approx = FaissStore(32), FaissStore(32)
    monkeypatch.setattr(exact, "exact_limit", 10**9)
    for start in range(0, len(x), 3_000):  # in batches, as documents arrive
        exact.add(ids[start:start + 3_000], x[start:start + 3_000])
        approx.add(ids[start:start + 3_000], x[start:start + 3_000])
    assert exact.exact and not approx.exact and len(approx) == 12_000
    queries = _vectors(50, seed=1)
    truth, found = exact.search(queries, 10)[1], approx.search(queries, 10)[1]
    recall = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found)])
    assert recall >= 0.95, recall
    assert approx.remove([int(ids[0]), int(ids[1])]) == 2 and len(approx) == 11_998
    assert int(ids[0]) not in approx.search(x[:1], 10)[1][0]

    approx.save(tmp_path / "v.faiss")
    loaded = FaissStore.load(tmp_path / "v.faiss", 32)
    assert not loaded.exact and np.array_equal(loaded.search(queries, 10)[1], approx.search(queries, 10)[1])


@pytest.mark.parametrize("limit", [10**9, 500])
def test_mapped_store_changes_after_its_file_is_gone(tmp_path: Path, monkeypatch, limit: int):
    """Loaded memory-mapped; a newer generation may delete the file; changes and saves still work."""
    monkeypatch.setattr(FaissStore, "exact_limit", limit)
    x = _vectors(2_000)
    store = FaissStore(32)
    store.add(np.arange(2_000), x)
    store.save(tmp_path / "a.faiss")
    mapped = FaissStore.load(tmp_path / "a.faiss", 32)
    (tmp_path / "a.faiss").unlink()
    mapped.save(tmp_path / "b.faiss")  # unchanged: the same bytes
    assert FaissStore.load(tmp_path / "b.faiss", 32).search(x[:3], 1)[1].ravel().tolist() == [0, 1, 2]
    mapped.remove([0])
    mapped.add(np.array([5_000]), x[:1])
    assert mapped.search(x[:1], 1)[1][0, 0] == 5_000
    mapped.save(tmp_path / "c.faiss")
    assert len(FaissStore.load(tmp_path / "c.faiss", 32)) == 2_000


def _saved_index(tmp_path: Path) -> Path:
    index = Index.create("faiss", 32, {})
    x = _vectors(300)
    chunks = [Chunk(i, "a.txt", f"text {i}", 0, 1, i) for i in range(300)]
    index.put(Document(id="a.txt", title="a", path="a.txt", text="x", content_hash="h"), chunks, x)
    return index.save(tmp_path)


@pytest.mark.parametrize("damage", ["truncate", "extend"])
def test_big_files_are_checked_by_size(tmp_path: Path, monkeypatch, damage: str):
    monkeypatch.setattr(index_module, "HASH_LIMIT", 0)  # every file counts as big
    gen = _saved_index(tmp_path)
    assert len(Index.load(tmp_path).store) == 300
    data = (gen / "vectors.faiss").read_bytes()
    data = data[:-8] if damage == "truncate" else data + b"\0" * 8
    (gen / "vectors.faiss").write_bytes(data)
    with pytest.raises(IndexCorrupt, match="bytes"):
        Index.load(tmp_path)


def test_small_files_are_still_hashed(tmp_path: Path):
    gen = _saved_index(tmp_path)
    data = bytearray((gen / "chunk_texts.bin").read_bytes())
    data[20] = ord("X") if data[20] != ord("X") else ord("Y")  # same size, other bytes
    (gen / "chunk_texts.bin").write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt, match="checksum"):
        Index.load(tmp_path)


def test_manifest_without_sizes_is_fully_hashed(tmp_path: Path):
    """Indexes saved before sizes were recorded still load, checked by hash."""
    import json

    gen = _saved_index(tmp_path)
    manifest = json.loads((gen / "manifest.json").read_text())
    del manifest["sizes"]
    (gen / "manifest.json").write_text(json.dumps(manifest))
    assert len(Index.load(tmp_path).chunks) == 300
    shutil.copy(gen / "chunk_texts.bin", tmp_path / "keep")
    (gen / "chunk_texts.bin").write_text((tmp_path / "keep").read_text().replace("text 1", "text 9"))
    with pytest.raises(IndexCorrupt):
        Index.load(tmp_path)


@pytest.mark.parametrize("limit", [10**9, 500])
def test_loaded_store_changes_through_a_delta_like_a_rebuilt_one(tmp_path: Path, monkeypatch,
                                                                   limit: int):
    """A loaded (mapped) store takes additions in a delta and removals as tombstones: searches
    see exactly the live vectors, through saves and loads, until a save merges them in."""
    monkeypatch.setattr(FaissStore, "exact_limit", limit)
    monkeypatch.setattr(FaissStore, "merge_min", 300)
    x = _vectors(3_000)
    live = dict(enumerate(x[:1_000]))
    store = FaissStore(32)
    store.add(np.arange(1_000), x[:1_000])
    store.save(tmp_path / "g0.faiss")
    store = FaissStore.load(tmp_path / "g0.faiss", 32)
    rng = np.random.default_rng(5)
    next_id, saves, merges = 1_000, 0, 0
    for step in range(12):
        new = np.arange(next_id, next_id + 40)
        store.add(new, x[new])
        live.update(zip(new.tolist(), x[new]))
        next_id += 40
        gone = rng.choice(sorted(live), size=30, replace=False)  # from the base and the delta
        assert store.remove(gone.tolist()) == 30
        for i in gone.tolist():
            del live[i]
        assert len(store) == len(live)
        ids = np.array(sorted(live))
        found = store.search(x[ids[:50]], 5)[1]
        assert not set(found.ravel().tolist()) - set(live)  # nothing removed comes back
        if limit > 10**6:  # exact: the same answers as a store built from the live vectors
            fresh = FaissStore(32)
            fresh.add(ids, np.stack([live[i] for i in ids]))
            assert np.array_equal(found, fresh.search(x[ids[:50]], 5)[1])
        kept = [i for i in new.tolist() if i in live]
        assert store.search(x[kept], 1)[1][:, 0].tolist() == kept
        if step % 3 == 2:
            saves += 1
            path = tmp_path / f"g{saves}.faiss"
            names = store.save(path)
            merged = f"g{saves}.delta.faiss" not in names
            store = FaissStore.load(path, 32) if step % 2 else store
            store.saved(path)
            assert len(store) == len(live)
            if merged:  # past merge_min: one file again, no delta nor tombstones
                assert names == [path.name]
                merges += 1
    assert saves == 4 and 0 < merges < saves
