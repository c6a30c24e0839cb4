"""Every vector-store backend goes through the same cycle: index, save, load, add, delete,
search (the same test runs for each entry of the backend registry)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.filters import Where
from rag.index import Index, IndexCorrupt
from rag.schema import Chunk, Document
from rag.store import store_class, store_kinds


def _doc(doc_id: str, text: str, date: str | None = None) -> Document:
    return Document(id=doc_id, title=doc_id, path=doc_id, text=text, date=date, content_hash=doc_id)


@pytest.mark.parametrize("backend", store_kinds(), indirect=True)
def test_backend_cycle(backend: tuple[str, dict], tmp_path: Path, embedder):
    kind, options = backend
    texts = {
        "harbor.txt": "The harbor opened in 1907 and handles container ships.",
        "bakery.txt": "The bakery sells sourdough bread every morning.",
        "rocket.txt": "The rocket reached orbit on its third launch attempt.",
    }
    dates = {"harbor.txt": "2021-05-01", "bakery.txt": "2022-01-10", "rocket.txt": "2023-03-15"}

    def reopen() -> Index:  # what another process sees: the files on disk, or the server
        return Index.open(tmp_path, kind, embedder.dimension, {"test": True}, **options)

    def put(index: Index, doc_id: str) -> None:
        text = texts[doc_id]
        index.put(_doc(doc_id, text, dates[doc_id]),
                  [Chunk(index.next_id, doc_id, text, 0, len(text), 0)], embedder.encode([text]))

    index = Index.create(kind, embedder.dimension, {"test": True}, **options)
    for doc_id in ("harbor.txt", "bakery.txt"):
        put(index, doc_id)
    put(index, "harbor.txt")  # the same document again replaces it: no duplicate chunks
    index.save(tmp_path)

    loaded = reopen()
    assert sorted(loaded.documents) == ["bakery.txt", "harbor.txt"]
    assert len(loaded.store) == 2
    assert loaded.chunk_count("harbor.txt") == 1
    assert loaded.document_text("bakery.txt") == texts["bakery.txt"]

    put(loaded, "rocket.txt")
    assert loaded.delete("bakery.txt")
    assert not loaded.delete("bakery.txt")
    loaded.save(tmp_path)

    final = reopen()
    assert sorted(final.documents) == ["harbor.txt", "rocket.txt"]
    query = embedder.encode_query("When did the launch reach orbit?")
    hits = final.search(query, 3)
    assert [h.doc_id for h in hits] == ["rocket.txt", "harbor.txt"]
    assert hits[0].score > hits[1].score
    assert hits[0].text == texts["rocket.txt"] and hits[0].date == "2023-03-15"
    assert final.search(embedder.encode_query("sourdough bread"), 3)[0].doc_id != "bakery.txt"
    # metadata filters: by document, by date range, on the dense and on the keyword side
    assert [h.doc_id for h in final.search(query, 3, Where.of(["harbor.txt"]))] == ["harbor.txt"]
    assert [h.doc_id for h in final.search(query, 3, Where.of(date_to="2022-12-31"))] == ["harbor.txt"]
    assert final.search(query, 3, Where.of(date_from="2024-01-01")) == []
    rocket = [cid for cid, _ in final.keywords("rocket orbit launch", 3)]
    assert len(rocket) == 1 and final.passage(rocket[0], 1.0).doc_id == "rocket.txt"
    assert final.keywords("rocket orbit", 3, Where.of(date_from="2021-01-01", date_to="2021-12-31")) == []
    if not store_class(kind).shared:  # only the live generation is left on disk
        assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [f"gen-{final.generation:08d}"]


def test_failed_save_keeps_the_previous_index(tmp_path: Path, embedder, monkeypatch):
    index = Index.create("faiss", embedder.dimension, {})
    index.put(_doc("a.txt", "alpha"), [Chunk(0, "a.txt", "alpha", 0, 5, 0)], embedder.encode(["alpha"]))
    index.save(tmp_path)
    index.put(_doc("b.txt", "beta"), [Chunk(1, "b.txt", "beta", 0, 4, 0)], embedder.encode(["beta"]))

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("rag.store.chunktable.ChunkTable.save", crash)  # after the documents
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
        (gen / "chunks.npy").write_text('{"id": 0, "doc_')
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
