"""The on-disk chunk table (rag/store/chunktable.py): chunks and texts survive any sequence of saves,
loads, additions and deletions exactly; damaged tables are refused at load; indexes saved in
the previous format (JSON lines) still load and are upgraded by the next save."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from rag import index as index_module
from rag.index import Index, IndexCorrupt
from rag.schema import Chunk, Document
from rag.store.chunktable import ROWS, segment_names

DIM = 16


def _write_jsonl(path: Path, rows) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def _put(index: Index, model: dict[str, str], doc_id: str, text: str, rng: random.Random) -> None:
    """Put `text` as a document cut into 1-4 chunks; record it in the plain-dict model."""
    cuts = sorted(rng.sample(range(1, len(text)), rng.randint(0, min(3, len(text) - 1))))
    bounds = list(zip([0] + cuts, cuts + [len(text)]))
    chunks = [Chunk(index.next_id + n, doc_id, text[a:b], a, b, n) for n, (a, b) in enumerate(bounds)]
    vectors = np.random.default_rng(index.next_id).standard_normal((len(chunks), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index.put(Document(id=doc_id, title=doc_id.upper(), path=f"/lib/{doc_id}", text=text,
                       content_hash=str(hash(text))), chunks, vectors)
    model[doc_id] = text


def _check(index: Index, model: dict[str, str]) -> None:
    assert sorted(index.documents) == sorted(model)
    assert len(index.chunks) == len(index.store)
    by_doc: dict[str, list[Chunk]] = {}
    for cid in index.chunks:
        chunk = index.chunks[cid]
        assert chunk.id == cid and index.chunks.doc_of(cid) == chunk.doc_id
        by_doc.setdefault(chunk.doc_id, []).append(chunk)
    for doc_id, text in model.items():
        assert index.document_text(doc_id) == text
        assert index.documents[doc_id].title == doc_id.upper()
        chunks = sorted(by_doc.pop(doc_id), key=lambda c: c.ordinal)
        assert "".join(c.text for c in chunks) == text  # every character, in order, once
        assert all(text[c.start:c.end] == c.text for c in chunks)
        assert index.chunk_count(doc_id) == len(chunks)
        assert sorted(index.chunks.ids_of(doc_id)) == sorted(c.id for c in chunks)
    assert not by_doc  # no chunk of a document that is gone


@pytest.mark.parametrize("reload", [True, False])
def test_random_changes_survive_saves_and_loads(tmp_path: Path, reload: bool):
    """Saved and loaded again, or saved and kept on (a server saves after each change: the
    next save must link the files of the generation it just wrote, not of the one it loaded)."""
    rng = random.Random(7)
    words = ["ταχύ", "harbor", "日本語", "rocket", "naïve", "bread", "🙂", "orbit", "x"]
    index, model = Index.create("faiss", DIM, {}), {}
    for _ in range(60):
        doc_id = f"doc{rng.randint(0, 11)}.txt"
        action = rng.random()
        if action < 0.6:
            _put(index, model, doc_id, " ".join(rng.choices(words, k=rng.randint(2, 30))), rng)
        elif action < 0.8 and doc_id in model:
            assert index.delete(doc_id)
            del model[doc_id]
        else:
            index.save(tmp_path)
            if reload:
                index = Index.load(tmp_path)
        _check(index, model)
    index.save(tmp_path)
    _check(Index.load(tmp_path), model)


def test_a_loaded_index_reads_texts_from_disk(tmp_path: Path):
    index, model = Index.create("faiss", DIM, {}), {}
    _put(index, model, "a.txt", "alpha beta gamma delta", random.Random(1))
    index.save(tmp_path)
    loaded = Index.load(tmp_path)
    assert isinstance(loaded.chunks._rows, np.memmap) and loaded.documents["a.txt"].text == ""
    _check(loaded, model)


def test_unsorted_table_is_refused_even_when_not_hashed(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(index_module, "HASH_LIMIT", 0)  # checked by size and structure only
    index, model = Index.create("faiss", DIM, {}), {}
    _put(index, model, "a.txt", "one two three four five six seven", random.Random(3))
    gen = index.save(tmp_path)
    rows = np.load(gen / ROWS)
    assert len(rows) >= 2
    rows[[0, 1]] = rows[[1, 0]]  # same size, ids out of order
    with open(gen / ROWS, "wb") as fh:
        np.save(fh, rows, allow_pickle=False)
    with pytest.raises(IndexCorrupt, match="sorted"):
        Index.load(tmp_path)
    rows[[0, 1]] = rows[[1, 0]]
    rows["at"][0] = 10**9  # text beyond the end of the file
    with open(gen / ROWS, "wb") as fh:
        np.save(fh, rows, allow_pickle=False)
    with pytest.raises(IndexCorrupt, match="beyond"):
        Index.load(tmp_path)


def test_format_1_index_loads_and_is_upgraded(tmp_path: Path):
    """A generation as format 1 wrote it: texts inside documents.jsonl and chunks.jsonl."""
    index, model = Index.create("faiss", DIM, {"m": 1}), {}
    _put(index, model, "a.txt", "the harbor opened in 1907", random.Random(4))
    _put(index, model, "b.txt", "the bakery sells bread", random.Random(5))
    gen = tmp_path / "gen-00000001"
    gen.mkdir()
    index.store.save(gen / "vectors.faiss")
    _write_jsonl(gen / "documents.jsonl",
                 ({**d.to_dict(), "text": model[d.id]} for d in index.documents.values()))
    _write_jsonl(gen / "chunks.jsonl", (index.chunks[c].to_dict() for c in index.chunks))
    names = ["vectors.faiss", "documents.jsonl", "chunks.jsonl"]
    manifest = {"format_version": 1, "store": "faiss", "dimension": DIM, "config": {"m": 1},
                "next_id": index.next_id, "files": {n: index_module._sha256(gen / n) for n in names}}
    (gen / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "CURRENT").write_text(gen.name)

    old = Index.load(tmp_path)
    _check(old, model)
    assert [p.doc_id for p in old.search(index.store._index.reconstruct(0)[None, :], 1)] == ["a.txt"]
    _put(old, model, "c.txt", "the rocket reached orbit", random.Random(6))
    new_gen = old.save(tmp_path)
    manifest = json.loads((new_gen / "manifest.json").read_text())
    assert manifest["format_version"] == index_module.FORMAT_VERSION
    assert not (new_gen / "chunks.jsonl").exists()
    _check(Index.load(tmp_path), model)


def _inode(folder: Path, name: str) -> int:
    return (folder / name).stat().st_ino


def test_adding_links_the_unchanged_files_and_deleting_compacts(tmp_path: Path):
    """Adding a document writes only what is new (texts in one more segment, vectors in a
    delta); the big files are the previous generation's, hard-linked, and their checksums are
    reused; once most texts are deleted the segments are rewritten as one."""
    rng = random.Random(3)
    index, model = Index.create("faiss", DIM, {}), {}
    for n in range(40):
        _put(index, model, f"d{n}", f"text number {n} " * 20, rng)
    first = index.save(tmp_path)
    big = ["vectors.faiss", "chunk_texts.bin", "document_texts.bin"]
    before = {name: _inode(first, name) for name in big}
    index = Index.load(tmp_path)
    _put(index, model, "new", "a new document about harbours " * 5, rng)
    second = index.save(tmp_path)
    assert not first.exists() and {name: _inode(second, name) for name in big} == before
    assert (second / "chunk_texts.1.bin").is_file() and (second / "document_texts.1.bin").is_file()
    assert (second / "vectors.delta.faiss").is_file()
    _check(index, model)
    loaded = Index.load(tmp_path)
    _check(loaded, model)
    manifest = json.loads((second / "manifest.json").read_text())
    assert all(index_module._sha256(second / n) == d for n, d in manifest["files"].items())
    hit = loaded.search(loaded.store._delta.reconstruct(int(loaded.chunks.ids_of("new")[0])), 1)
    assert hit[0].doc_id == "new"

    for n in range(35):  # most of the texts go: the next save rewrites them in one segment
        loaded.delete(f"d{n}")
        del model[f"d{n}"]
    third = loaded.save(tmp_path)
    assert segment_names(third, "chunk_texts.bin") == ["chunk_texts.bin"]
    assert segment_names(third, "document_texts.bin") == ["document_texts.bin"]
    assert _inode(third, "chunk_texts.bin") != before["chunk_texts.bin"]
    _check(Index.load(tmp_path), model)
