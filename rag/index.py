"""The persisted index: vectors, chunks, documents and a manifest, saved atomically.

Layout of the index folder::

    CURRENT              name of the live generation, replaced atomically
    gen-00000007/        one complete, immutable snapshot
        manifest.json    format, embedding model, splitter, counts, file checksums
        vectors.faiss    faiss.write_index output (+ vectors.delta.faiss, vectors.removed.npy:
                         the changes since that base was written, rag/store/faiss.py)
        bm25/            the chunks' BM25 segments (numpy arrays and JSON, rag/store/lexical.py)
        chunks.npy, chunk_texts.bin
                         the chunks: a table of ids and offsets, and their texts (rag/store/chunktable.py)
        documents.jsonl  one document per line (title, path, date, hash; where its text lies)
        document_texts.bin
                         (texts in segments: .1.bin, .2.bin... continue a blob, chunktable.py)

Beside the generations, `skipped.json` lists the library's files that could not be read, with
their size and mtime, so that later scans pass over them quietly (rag/ingest/library.py).

A save writes a new generation in a temporary folder, renames it into place, then swaps
CURRENT: a crash at any moment leaves the previous or the new snapshot, never a mix. Files are
never changed once written, so what did not change since the last generation is hard-linked
into the new one (its checksum carried over): adding a document to a million chunks writes the
new texts, vectors and BM25 segment, the chunk table and the document list, not gigabytes.

Loading parses only the document list: the vectors, the chunk table, the texts and BM25 are
memory-mapped, so a million-chunk index loads in well under a second and its texts are read
from disk when a passage is shown. Generations saved as format 1 (chunks and document texts
as JSON lines) still load, and are written in the current format at the next save.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .filters import Where
from .schema import Chunk, Document, Passage
from .store import VectorStore, store_class
from .store.chunktable import DOCUMENT_TEXTS, Blob, BlobWriter, ChunkTable, worth_keeping
from .store.files import same_file
from .store.lexical import Bm25

FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
CHUNKS_V1 = "chunks.jsonl"
DOCUMENTS = "documents.jsonl"
LEXICAL = "bm25"
HASH_LIMIT = 16 << 20
"""Files up to this size are checked against their sha256 at load; larger ones (vectors and
chunks of a big index, where hashing would dominate the load time) by their size, and by the
parsers. The manifest keeps every file's sha256 for a full check."""


class IndexMissing(Exception):
    pass


class IndexCorrupt(Exception):
    """The files on disk are not a complete index; the message says which part is wrong."""


class Index:
    """Documents, their chunks and the chunk vectors, kept consistent with each other.

    `documents` holds each document's metadata; its text (`Document.text` is empty there) is
    read with `document_text`, so a large library's texts stay on disk."""

    def __init__(self, store: VectorStore, config: dict[str, Any]):
        self.store = store
        self.config = config
        """What the vectors depend on (embedding model, splitter): a change means rebuild."""
        self.documents: dict[str, Document] = {}
        self.chunks = ChunkTable()
        self._texts: dict[str, str] = {}
        """Texts of the documents put since the load."""
        self._saved_texts = Blob()
        self._text_at: dict[str, tuple[int, int]] = {}
        """Where the loaded documents' texts lie in `_saved_texts`."""
        self.next_id = 0
        self.generation = 0
        self._lexical: Bm25 | None = None
        self._folder: Path | None = None
        """The generation loaded or last saved: its unchanged files are hard-linked into the next."""
        self._digests: dict[str, str] = {}
        """Its manifest's checksums, reused for the files the next generation shares with it."""
        self._lines: dict[str, str] = {}
        """The documents.jsonl line of each document unchanged since the load or last save:
        written again as it is (serialising 100k documents would cost seconds per save)."""
        self._linked: set[str] = set()
        """Files of the save under way that are hard links to the last generation's."""
        self._written: tuple[bool, dict[str, tuple[int, int]], dict[str, str]] = (True, {}, {})
        """What the save under way did: kept the text segments?, and where it put the texts and
        lines it wrote afresh."""

    @classmethod
    def create(cls, store_kind: str, dimension: int, config: dict[str, Any], **options: Any) -> Index:
        """A new index; a backend may bring its own Index subclass (`index_class`)."""
        store = store_class(store_kind)(dimension, **options)
        return (getattr(store, "index_class", None) or cls)(store, config)

    @classmethod
    def open(cls, index_dir: Path, store_kind: str, dimension: int, config: dict[str, Any],
             **options: Any) -> Index:
        """The index to work on: a shared store (a server) is connected to, a local one is
        loaded from `index_dir` (IndexMissing, IndexCorrupt when it cannot be)."""
        if store_class(store_kind).shared:
            return cls.create(store_kind, dimension, config, **options)
        return cls.load(index_dir)

    def outdated(self, index_dir: Path) -> bool:
        """True when another process saved a newer generation than this one."""
        return self.generation != current_generation(index_dir)

    def owns(self, doc_id: str, root: Path) -> bool:
        """Whether syncing the library folder `root` may remove this document when its file goes."""
        return True

    def document_text(self, doc_id: str) -> str:
        if doc_id not in self.documents:
            raise KeyError(doc_id)
        text = self._texts.get(doc_id)
        return text if text is not None else self._saved_texts.read(*self._text_at[doc_id])

    # -- content --------------------------------------------------------------------------
    def put(self, doc: Document, chunks: list[Chunk], vectors: np.ndarray) -> None:
        """Add a document, replacing any earlier version with the same id."""
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk expected")
        self.delete(doc.id)
        self.store.add(np.array([c.id for c in chunks], dtype=np.int64), vectors)
        self.documents[doc.id] = replace(doc, text="")
        self._texts[doc.id] = doc.text
        self._lines.pop(doc.id, None)
        for c in chunks:
            self.chunks.add(c)
        self.next_id = max([self.next_id] + [c.id + 1 for c in chunks])
        if self._lexical is not None:  # a new small segment, not a rebuild
            self._lexical.add((c.id, c.text) for c in chunks)

    def delete(self, doc_id: str) -> bool:
        if doc_id not in self.documents:
            return False
        ids = self.chunks.ids_of(doc_id)
        self.store.remove(ids)
        for cid in ids:
            self.chunks.remove(cid)
        del self.documents[doc_id]
        self._texts.pop(doc_id, None)
        self._lines.pop(doc_id, None)
        self._text_at.pop(doc_id, None)
        if self._lexical is not None:
            self._lexical.remove(ids)
        return True

    def lexical(self) -> Bm25:
        """BM25 over the chunks: loaded with the index and updated as documents come and go;
        built from the chunk texts only when there is none (new index, other settings)."""
        if self._lexical is None:
            self._lexical = Bm25.build((cid, self.chunks[cid].text) for cid in sorted(self.chunks))
        return self._lexical

    def idf(self, terms: Iterable[str]) -> dict[str, float] | None:
        """The (tokenized) terms' BM25 IDF over the indexed chunks, for the reader's rare-word
        signal; None while there is nothing indexed to count in."""
        lexical = self.lexical()
        return lexical.idf(terms) if len(lexical) else None

    def chunk_count(self, doc_id: str) -> int:
        return self.chunks.count(doc_id)

    def search(self, vector: np.ndarray, k: int, where: Where | None = None) -> list[Passage]:
        """The k nearest chunks; with a filter, the nearest among the chunks it allows."""
        return [self.passage(i, s) for i, s in self.nearest(vector, k, where)]

    def nearest(self, vector: np.ndarray, k: int, where: Where | None = None) -> list[tuple[int, float]]:
        """(chunk id, cosine) of the k nearest chunks the filter allows, nearest first."""
        scores, ids = self.store.search(vector, len(self.store) if where else k)
        hits = [(int(i), float(s)) for s, i in zip(scores[0], ids[0]) if i >= 0]
        return self._allowed(hits, where)[:k]

    def keywords(self, query: str, k: int, where: Where | None = None) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) of the k best keyword matches the filter allows."""
        lexical = self.lexical()
        return self._allowed(lexical.search(query, len(lexical) if where else k), where)[:k]

    def _allowed(self, hits: list[tuple[int, float]], where: Where | None) -> list[tuple[int, float]]:
        if where is None:
            return hits
        docs, doc_of = self.documents, self.chunks.doc_of
        return [(i, s) for i, s in hits if where.matches(d := doc_of(i), docs[d].date)]

    def passage(self, chunk_id: int, score: float) -> Passage:
        c = self.chunks[chunk_id]
        d = self.documents[c.doc_id]
        return Passage(c.id, d.id, d.title, d.path, d.date, c.text, c.start, c.end, score)

    # -- persistence ----------------------------------------------------------------------
    def save(self, index_dir: Path) -> Path:
        """Write a new generation and make it current; returns its folder."""
        index_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=index_dir))
        try:
            names = self.store.save(tmp / self.store_filename) + [DOCUMENTS]
            rows, text_names = self._save_documents(tmp)
            names += text_names + self.chunks.save(tmp, rows) + self.lexical().save(tmp / LEXICAL)
            self._linked = set()
            files = {name: self._digest(tmp, name) for name in names}
            sizes = {name: (tmp / name).stat().st_size for name in names}
            manifest = {
                "format_version": FORMAT_VERSION,
                "store": self.store.kind,
                "dimension": self.store.dimension,
                "config": self.config,
                "next_id": self.next_id,
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "counts": {"documents": len(self.documents), "chunks": len(self.chunks)},
                "files": files,
                "sizes": sizes,
            }
            _write_bytes(tmp / MANIFEST, json.dumps(manifest).encode())
            for name in files:
                if name not in self._linked:  # a linked file is the last generation's, on disk
                    _fsync(tmp / name)
            _fsync(tmp)
            generation = max(self.generation, current_generation(index_dir)) + 1
            while (index_dir / _gen_name(generation)).exists():
                generation += 1
            final = index_dir / _gen_name(generation)
            os.rename(tmp, final)
            _write_bytes(index_dir / (CURRENT + ".tmp"), _gen_name(generation).encode())
            os.replace(index_dir / (CURRENT + ".tmp"), index_dir / CURRENT)
            _fsync(index_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.generation = generation
        self._rebase(final, files)
        _remove_stale(index_dir, keep=final.name)
        return final

    def _digest(self, folder: Path, name: str) -> str:
        """A file's sha256: the last generation's, when the file is its (a hard link)."""
        known = self._digests.get(name)
        if known and self._folder is not None and same_file(folder / name, self._folder / name):
            self._linked.add(name)
            return known
        return _sha256(folder / name)

    def _rebase(self, folder: Path, digests: dict[str, str]) -> None:
        """After a save: read from the new generation's files from now on, as a load would,
        so the next save links them. The store, chunk table and BM25 keep their own state."""
        self._folder, self._digests = folder, dict(digests)
        self._saved_texts = Blob.open(folder, DOCUMENT_TEXTS)
        kept, fresh_at, fresh_lines = self._written
        if not kept:
            self._text_at, self._lines = {}, {}
        self._text_at.update(fresh_at)
        self._lines.update(fresh_lines)
        self._texts = {}
        self.chunks = ChunkTable.load(folder, list(self.documents))
        self.store.saved(folder / self.store_filename)
        if self._lexical is not None:
            self._lexical.saved(folder / LEXICAL)

    def _save_documents(self, folder: Path) -> tuple[dict[str, int], list[str]]:
        """Write the document list and texts; returns each document's row and the text files.
        The loaded texts stay where they are (their segments linked, their lines copied as
        they are) unless deletions left a quarter of them unused; new texts go into a new
        segment."""
        rows = dict(zip(self.documents, range(len(self.documents))))
        keep = worth_keeping(self._saved_texts, sum(size for _, size in self._text_at.values()))
        fresh_at: dict[str, tuple[int, int]] = {}
        fresh_lines: dict[str, str] = {}
        with BlobWriter(folder, DOCUMENT_TEXTS, self._saved_texts if keep else None) as blob, \
                open(folder / DOCUMENTS, "w", encoding="utf-8") as out:

            def line(doc: Document) -> str:
                """The document's line written afresh: it is new, or its text moves."""
                text = self._texts.get(doc.id)
                if text is not None:
                    at, size = blob.write(text)
                elif keep:
                    at, size = self._text_at[doc.id]
                else:
                    size = self._text_at[doc.id][1]
                    at = blob.write_bytes(self._saved_texts.read_bytes(*self._text_at[doc.id]))
                row = doc.to_dict()
                del row["text"]
                fresh_at[doc.id] = (at, size)
                fresh_lines[doc.id] = json.dumps({**row, "text_at": [at, size]}, ensure_ascii=False) + "\n"
                return fresh_lines[doc.id]

            kept = self._lines if keep else {}
            out.writelines(kept.get(doc.id) or line(doc) for doc in self.documents.values())
            names = blob.close()
        self._written = (keep, fresh_at, fresh_lines)
        return rows, names

    @property
    def store_filename(self) -> str:
        return getattr(self.store, "filename", "vectors.bin")

    @classmethod
    def load(cls, index_dir: Path) -> Index:
        pointer = index_dir / CURRENT
        if not pointer.exists():
            raise IndexMissing(f"no index in {index_dir}")
        name = pointer.read_text().strip()
        folder = index_dir / name
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except FileNotFoundError as exc:
            raise IndexCorrupt(f"{folder} has no manifest") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise IndexCorrupt(f"manifest in {folder} is unreadable ({exc})") from exc
        version = manifest.get("format_version")
        if version not in READABLE_FORMATS:
            raise IndexCorrupt(f"index format {version} is not one of {READABLE_FORMATS}")
        sizes = manifest.get("sizes", {})
        for fname, digest in manifest.get("files", {}).items():
            path = folder / fname
            if not path.exists():
                raise IndexCorrupt(f"{fname} is missing from {folder}")
            size = path.stat().st_size
            if fname in sizes and size != sizes[fname]:
                raise IndexCorrupt(f"{fname} in {folder} is damaged ({size} bytes, not {sizes[fname]})")
            if (size <= HASH_LIMIT or fname not in sizes) and _sha256(path) != digest:
                raise IndexCorrupt(f"{fname} in {folder} is damaged (checksum mismatch)")
        try:
            kind = manifest["store"]
            store = store_class(kind).load(
                folder / getattr(store_class(kind), "filename", "vectors.bin"),
                int(manifest["dimension"]),
            )
            index = cls(store, manifest["config"])
            if version == 1:
                index._load_v1(folder)
            else:
                index._load_documents(folder)
            index.next_id = int(manifest["next_id"])
            if f"{LEXICAL}/lexical.json" in manifest.get("files", {}):
                index._lexical = Bm25.load(folder / LEXICAL)  # None: built again when needed
        except (KeyError, TypeError, ValueError, EOFError, OSError) as exc:
            raise IndexCorrupt(f"index in {folder} is inconsistent ({exc})") from exc
        if len(store) != len(index.chunks):
            raise IndexCorrupt(f"{len(store)} vectors but {len(index.chunks)} chunks in {folder}")
        index.generation = _parse_gen(name)
        index._folder, index._digests = folder, dict(manifest.get("files", {}))
        return index

    def _load_documents(self, folder: Path) -> None:
        texts = Blob.open(folder, DOCUMENT_TEXTS)
        with open(folder / DOCUMENTS, encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                row = json.loads(line)
                at, size = row.pop("text_at")
                if at < 0 or size < 0 or at + size > len(texts):
                    raise ValueError(f"the text of {row.get('id')} lies beyond {DOCUMENT_TEXTS}")
                self.documents[row["id"]] = Document(**row, text="")
                self._text_at[row["id"]] = (at, size)
                self._lines[row["id"]] = line if line.endswith("\n") else line + "\n"
        self._saved_texts = texts
        self.chunks = ChunkTable.load(folder, list(self.documents))

    def _load_v1(self, folder: Path) -> None:
        """Format 1: documents and chunks as JSON lines, texts included."""
        for row in _read_jsonl(folder / DOCUMENTS):
            doc = Document(**row)
            self.documents[doc.id] = replace(doc, text="")
            self._texts[doc.id] = doc.text
        for row in _read_jsonl(folder / CHUNKS_V1):
            chunk = Chunk(**row)
            if chunk.doc_id not in self.documents:
                raise ValueError(f"chunk {chunk.id} belongs to no document")
            self.chunks.add(chunk)


@contextlib.contextmanager
def write_lock(index_dir: Path) -> Iterator[None]:
    """One writer at a time across processes (the page and the command line, say)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _gen_name(n: int) -> str:
    return f"gen-{n:08d}"


def _parse_gen(name: str) -> int:
    try:
        return int(name.removeprefix("gen-"))
    except ValueError:
        return 0


def current_generation(index_dir: Path) -> int:
    """The generation number CURRENT points at (0 when there is no index)."""
    try:
        return _parse_gen((index_dir / CURRENT).read_text().strip())
    except OSError:
        return 0


def saved_counts(index_dir: Path) -> tuple[int, int] | None:
    """(documents, chunks) of the saved index, read from its manifest alone (nothing loaded);
    None when there is no readable index."""
    try:
        name = (index_dir / CURRENT).read_text().strip()
        manifest = json.loads((index_dir / name / MANIFEST).read_text())
        if "counts" in manifest:
            return int(manifest["counts"]["documents"]), int(manifest["counts"]["chunks"])
        documents = manifest["documents"]  # saved before the counts: one entry per document
        return len(documents), sum(int(d.get("chunks", 0)) for d in documents.values())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _remove_stale(index_dir: Path, keep: str) -> None:
    for entry in index_dir.iterdir():
        if entry.is_dir() and entry.name != keep and entry.name.startswith(("gen-", ".tmp-")):
            shutil.rmtree(entry, ignore_errors=True)


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
