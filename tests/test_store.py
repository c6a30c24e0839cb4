"""Every vector-store backend goes through the same cycle: index, save, load, add, delete,
search (the same test runs for each entry of the backend registry)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.index import Index, IndexCorrupt
from rag.schema import Chunk, Document
from rag.store import STORES


def _doc(doc_id: str, text: str) -> Document:
    return Document(id=doc_id, title=doc_id, path=doc_id, text=text, content_hash=doc_id)


@pytest.mark.parametrize("kind", sorted(STORES))
def test_backend_cycle(kind: str, tmp_path: Path, embedder):
    texts = {
        "harbor.txt": "The harbor opened in 1907 and handles container ships.",
        "bakery.txt": "The bakery sells sourdough bread every morning.",
        "rocket.txt": "The rocket reached orbit on its third launch attempt.",
    }
    index = Index.create(kind, embedder.dimension, {"test": True})
    next_id = 0
    for doc_id, text in list(texts.items())[:2]:
        vectors = embedder.encode([text])
        index.put(_doc(doc_id, text), [Chunk(next_id, doc_id, text, 0, len(text), 0)], vectors)
        next_id += 1
    index.save(tmp_path)

    loaded = Index.load(tmp_path)
    assert sorted(loaded.documents) == ["bakery.txt", "harbor.txt"]
    assert len(loaded.store) == 2

    text = texts["rocket.txt"]
    loaded.put(_doc("rocket.txt", text), [Chunk(loaded.next_id, "rocket.txt", text, 0, len(text), 0)],
               embedder.encode([text]))
    assert loaded.delete("bakery.txt")
    assert not loaded.delete("bakery.txt")
    loaded.save(tmp_path)

    final = Index.load(tmp_path)
    hits = final.search(embedder.encode_query("When did the launch reach orbit?"), 3)
    assert [h.doc_id for h in hits] == ["rocket.txt", "harbor.txt"]
    assert hits[0].score > hits[1].score
    assert final.search(embedder.encode_query("sourdough bread"), 3)[0].doc_id != "bakery.txt"
    # only the live generation is left on disk
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [f"gen-{final.generation:08d}"]


def test_failed_save_keeps_the_previous_index(tmp_path: Path, embedder, monkeypatch):
    index = Index.create("faiss", embedder.dimension, {})
    index.put(_doc("a.txt", "alpha"), [Chunk(0, "a.txt", "alpha", 0, 5, 0)], embedder.encode(["alpha"]))
    index.save(tmp_path)
    index.put(_doc("b.txt", "beta"), [Chunk(1, "b.txt", "beta", 0, 4, 0)], embedder.encode(["beta"]))

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("rag.index._write_jsonl", crash)
    with pytest.raises(OSError, match="disk full"):
        index.save(tmp_path)
    monkeypatch.undo()
    assert sorted(Index.load(tmp_path).documents) == ["a.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize("damage", ["truncate-vectors", "garble-chunks", "drop-manifest",
                                    "bad-current", "empty-vectors"])
def test_damaged_index_is_detected(tmp_path: Path, embedder, damage: str):
    index = Index.create("faiss", embedder.dimension, {})
    index.put(_doc("a.txt", "alpha"), [Chunk(0, "a.txt", "alpha", 0, 5, 0)], embedder.encode(["alpha"]))
    gen = index.save(tmp_path)
    if damage == "truncate-vectors":
        data = (gen / "vectors.faiss").read_bytes()
        (gen / "vectors.faiss").write_bytes(data[: len(data) // 2])
    elif damage == "empty-vectors":
        (gen / "vectors.faiss").write_bytes(b"")
    elif damage == "garble-chunks":
        (gen / "chunks.jsonl").write_text('{"id": 0, "doc_')
    elif damage == "drop-manifest":
        (gen / "manifest.json").unlink()
    elif damage == "bad-current":
        (tmp_path / "CURRENT").write_text("gen-99999999")
    with pytest.raises(IndexCorrupt):
        Index.load(tmp_path)


def test_vectors_must_match_dimension(embedder):
    index = Index.create("faiss", embedder.dimension, {})
    with pytest.raises(ValueError, match="dimension"):
        index.put(_doc("a.txt", "x"), [Chunk(0, "a.txt", "x", 0, 1, 0)], np.zeros((1, 7), np.float32))
