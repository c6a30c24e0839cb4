"""Chunks and document texts kept on disk and read by id, so that loading an index of a million
chunks costs milliseconds and the texts stay out of the process's memory until a passage is shown.

Files of a generation (see rag/index.py)::

    chunks.npy           one row per chunk, sorted by id: id, document row, ordinal, offsets,
                         and where its text lies in chunk_texts.bin (numpy, no pickle)
    chunk_texts.bin      the chunk texts, UTF-8, back to back; later segments chunk_texts.1.bin,
                         .2.bin... continue it (offsets run on across the segments)
    document_texts.bin   the document texts, the same way (documents.jsonl says where)

Both tables are memory-mapped at load. Changes since the load are kept in memory (added chunks,
removed ids) and merged into new files at the next save; a generation's files are never changed.
Text segments unchanged since the load are hard-linked into the next generation, and new texts
go into one new segment, until deletions leave a quarter of the bytes unused or there are 16
segments: then the live texts are rewritten into one.
"""

from __future__ import annotations

import bisect
import mmap
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..schema import Chunk
from .files import link_or_copy

ROWS = "chunks.npy"
CHUNK_TEXTS = "chunk_texts.bin"
DOCUMENT_TEXTS = "document_texts.bin"
ROW = np.dtype([("id", "<i8"), ("doc", "<i4"), ("ordinal", "<i4"), ("start", "<i8"), ("end", "<i8"),
                ("at", "<i8"), ("size", "<i4")])
MAX_SEGMENTS = 16
KEEP_SHARE = 0.75
"""A save keeps a blob's segments (appending one) while at least this share of their bytes is
still used and there are fewer than MAX_SEGMENTS; otherwise it rewrites the live texts in one."""


def worth_keeping(blob: Blob, live_bytes: int) -> bool:
    return 0 < len(blob.paths) < MAX_SEGMENTS and live_bytes >= KEEP_SHARE * len(blob)


class Blob:
    """Read-only texts in one or more segment files, memory-mapped and addressed as one run of
    bytes: `read(at, size)` gives one text (a text never spans two segments).

    Why segments: a save that only adds texts hard-links the loaded segments into the new
    generation and writes the new texts into one more, instead of copying a gigabyte of
    unchanged text (rag/index.py keeps a million chunks; adding a document must cost a second)."""

    def __init__(self, paths: Sequence[Path] = ()):
        self.paths = list(paths)
        self._maps: list[mmap.mmap | bytes] = []
        self._starts: list[int] = []
        size = 0
        for path in self.paths:
            data: mmap.mmap | bytes = b""
            if path.stat().st_size:
                with open(path, "rb") as fh:
                    data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            self._maps.append(data)
            self._starts.append(size)
            size += len(data)
        self._size = size

    @classmethod
    def open(cls, folder: Path, name: str) -> Blob:
        """The segments of blob `name` in a generation's folder, in order."""
        return cls([folder / n for n in segment_names(folder, name)])

    def __len__(self) -> int:
        return self._size

    def read(self, at: int, size: int) -> str:
        return self.read_bytes(at, size).decode("utf-8", errors="replace")

    def read_bytes(self, at: int, size: int) -> bytes:
        if not self._maps:
            return b""
        s = bisect.bisect_right(self._starts, at) - 1
        at -= self._starts[s]
        return self._maps[s][at:at + size]


def segment_names(folder: Path, name: str) -> list[str]:
    """`name` (say chunk_texts.bin) and its later segments chunk_texts.1.bin, .2.bin... present
    in the folder, in order."""
    stem, suffix = name.rsplit(".", 1)
    numbered = ((_segment_number(p.name, name), p.name) for p in folder.glob(f"{stem}.*.{suffix}"))
    found = [(0, name)] if (folder / name).is_file() else []
    return [n for _, n in sorted(found + [(k, n) for k, n in numbered if k is not None])]


def _segment_number(filename: str, name: str) -> int | None:
    """0 for the blob's first file `name`, k for its segment `stem.k.suffix`, else None."""
    if filename == name:
        return 0
    stem, suffix = name.rsplit(".", 1)
    number = filename[len(stem) + 1:-len(suffix) - 1]
    ok = filename.startswith(stem + ".") and filename.endswith("." + suffix) and number.isdigit()
    return int(number) if ok else None


class BlobWriter:
    """Writes a blob into a new generation's folder: either afresh (one segment) or, given the
    loaded blob to keep, by hard-linking its segments and appending texts in one new segment,
    so the offsets of the kept texts stay valid. `names` lists the files that make it up."""

    def __init__(self, folder: Path, name: str, keep: Blob | None = None):
        self.folder, self.name = folder, name
        self.names: list[str] = []
        self.size = 0
        if keep is not None and keep.paths:
            for path, data in zip(keep.paths, keep._maps):
                try:
                    link_or_copy(path, folder / path.name)
                except OSError:  # the loaded generation was removed meanwhile: its mapped bytes
                    (folder / path.name).write_bytes(memoryview(data))
                self.names.append(path.name)
            self.size = len(keep)
            stem, suffix = name.rsplit(".", 1)
            self._next = f"{stem}.{_segment_number(keep.paths[-1].name, name) + 1}.{suffix}"
        else:
            self._next = name
        self._out: BinaryIO | None = None

    def write(self, text: str) -> tuple[int, int]:
        data = text.encode("utf-8")
        return self.write_bytes(data), len(data)

    def write_bytes(self, data: bytes) -> int:
        if self._out is None:  # the new segment is made when the first text comes
            self._out = open(self.folder / self._next, "wb")  # noqa: SIM115 - closed in close()
            self.names.append(self._next)
        self._out.write(data)
        at, self.size = self.size, self.size + len(data)
        return at

    def close(self) -> list[str]:
        """Finish the new segment; returns the blob's file names."""
        if self._out is not None:
            self._out.close()
        elif not self.names:  # nothing at all: still one (empty) file, so the blob exists
            (self.folder / self.name).touch()
            self.names.append(self.name)
        return self.names

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._out is not None and not self._out.closed:
            self._out.close()


class ChunkTable(Mapping[int, Chunk]):
    """Chunks by id: those of the loaded generation read on demand from memory-mapped files,
    the ones changed since kept in memory."""

    def __init__(self, rows: np.ndarray | None = None, texts: Blob | None = None,
                 doc_ids: list[str] | None = None):
        self._rows = rows if rows is not None else np.zeros(0, dtype=ROW)
        self._ids = np.ascontiguousarray(self._rows["id"])
        """The id column in memory (8 bytes a chunk): a strided search on the mapped table
        costs a fraction of a millisecond per lookup, this a microsecond."""
        self._texts = texts or Blob()
        self._doc_ids = doc_ids or []
        self._removed: set[int] = set()
        """Ids of the loaded rows that are gone (deleted, or replaced by an added chunk)."""
        self._added: dict[int, Chunk] = {}
        self._base_counts: np.ndarray | None = None
        self._removed_per_doc: Counter[str] = Counter()
        self._added_per_doc: Counter[str] = Counter()
        self._doc_rows: dict[str, int] | None = None
        self._docs: np.ndarray | None = None

    @classmethod
    def load(cls, folder: Path, doc_ids: list[str]) -> ChunkTable:
        """The table of a saved generation; ValueError when its files do not fit together."""
        rows = np.load(folder / ROWS, mmap_mode="r", allow_pickle=False)
        if rows.dtype != ROW or rows.ndim != 1:
            raise ValueError(f"{ROWS} has rows of {rows.dtype}, not {ROW}")
        table = cls(rows, Blob.open(folder, CHUNK_TEXTS), doc_ids)
        if len(rows):  # checked on the columns the table keeps in memory anyway
            ids, docs = table._ids, table._doc_column()
            if np.any(ids[1:] <= ids[:-1]):
                raise ValueError(f"{ROWS} is not sorted by chunk id")
            if docs.min() < 0 or docs.max() >= len(doc_ids):
                raise ValueError(f"{ROWS} points at documents that are not listed")
            if rows["at"].min() < 0 or rows["size"].min() < 0 or \
                    int((rows["at"] + rows["size"]).max()) > len(table._texts):
                raise ValueError(f"{ROWS} points beyond the end of {CHUNK_TEXTS}")
        return table

    # -- reading ----------------------------------------------------------------------------
    def _row(self, chunk_id: int) -> int:
        """Row of a loaded chunk that is still there, or -1."""
        if chunk_id in self._removed:
            return -1
        ids = self._ids
        i = int(np.searchsorted(ids, chunk_id))
        return i if i < len(ids) and ids[i] == chunk_id else -1

    def __getitem__(self, chunk_id: int) -> Chunk:
        chunk = self._added.get(chunk_id)
        if chunk is not None:
            return chunk
        i = self._row(chunk_id)
        if i < 0:
            raise KeyError(chunk_id)
        r = self._rows[i]
        return Chunk(int(r["id"]), self._doc_ids[r["doc"]], self._texts.read(int(r["at"]), int(r["size"])),
                     int(r["start"]), int(r["end"]), int(r["ordinal"]))

    def doc_of(self, chunk_id: int) -> str:
        """The chunk's document id, without reading its text."""
        chunk = self._added.get(chunk_id)
        if chunk is not None:
            return chunk.doc_id
        i = self._row(chunk_id)
        if i < 0:
            raise KeyError(chunk_id)
        return self._doc_ids[self._rows["doc"][i]]

    def __contains__(self, chunk_id: object) -> bool:
        return chunk_id in self._added or (isinstance(chunk_id, (int, np.integer))
                                          and self._row(int(chunk_id)) >= 0)

    def __len__(self) -> int:
        return len(self._rows) - len(self._removed) + len(self._added)

    def __iter__(self) -> Iterator[int]:
        for cid in self._ids.tolist():
            if cid not in self._removed:
                yield cid
        yield from self._added

    def ids_of(self, doc_id: str) -> list[int]:
        ids = [c.id for c in self._added.values() if c.doc_id == doc_id] \
            if self._added_per_doc[doc_id] else []
        row = self._doc_row(doc_id)
        if row >= 0:
            base = self._ids[self._doc_column() == row]
            ids = [int(i) for i in base if int(i) not in self._removed] + ids
        return ids

    def count(self, doc_id: str) -> int:
        """How many chunks the document has (cheap: the listing asks for every document)."""
        base = 0
        row = self._doc_row(doc_id)
        if row >= 0:
            if self._base_counts is None:
                self._base_counts = np.bincount(self._doc_column(), minlength=len(self._doc_ids))
            base = int(self._base_counts[row])
        return base - self._removed_per_doc[doc_id] + self._added_per_doc[doc_id]

    def _doc_column(self) -> np.ndarray:
        """The loaded rows' document numbers, in memory once asked for (load checks them, a
        delete scans them)."""
        if self._docs is None:
            self._docs = np.ascontiguousarray(self._rows["doc"])
        return self._docs

    def _doc_row(self, doc_id: str) -> int:
        if self._doc_rows is None:
            self._doc_rows = {d: i for i, d in enumerate(self._doc_ids)}
        return self._doc_rows.get(doc_id, -1)

    # -- changing ---------------------------------------------------------------------------
    def add(self, chunk: Chunk) -> None:
        self.remove(chunk.id)
        self._added[chunk.id] = chunk
        self._added_per_doc[chunk.doc_id] += 1

    def remove(self, chunk_id: int) -> None:
        chunk = self._added.pop(chunk_id, None)
        if chunk is not None:
            self._added_per_doc[chunk.doc_id] -= 1
            return
        if self._row(chunk_id) >= 0:
            self._removed_per_doc[self.doc_of(chunk_id)] += 1
            self._removed.add(chunk_id)

    # -- saving -----------------------------------------------------------------------------
    def save(self, folder: Path, doc_rows: Mapping[str, int]) -> list[str]:
        """Write the table (loaded rows still there, then the added chunks) for documents
        numbered by `doc_rows`; returns the file names. The loaded text segments are kept
        (hard-linked) while most of their bytes are still used, so adding chunks writes only
        the new texts; the row table (44 bytes a chunk) is written whole."""
        kept = self._rows
        if self._removed:
            kept = kept[~np.isin(self._ids, np.fromiter(self._removed, dtype=np.int64))]
        renumber = np.array([doc_rows.get(d, -1) for d in self._doc_ids] or [-1], dtype=np.int32)
        out = np.empty(len(kept) + len(self._added), dtype=ROW)
        out[:len(kept)] = kept
        out["doc"][:len(kept)] = renumber[kept["doc"]]
        keep = worth_keeping(self._texts, int(kept["size"].sum(dtype=np.int64)))
        with BlobWriter(folder, CHUNK_TEXTS, self._texts if keep else None) as blob:
            if not keep:
                for i, (at, size) in enumerate(zip(kept["at"].tolist(), kept["size"].tolist())):
                    out["at"][i] = blob.write_bytes(self._texts.read_bytes(at, size))
            for i, c in enumerate(self._added.values(), start=len(kept)):
                at, size = blob.write(c.text)
                out[i] = (c.id, doc_rows.get(c.doc_id, -1), c.ordinal, c.start, c.end, at, size)
            names = blob.close()
        if len(out) and out["doc"].min() < 0:
            raise ValueError("a chunk belongs to no document of the index")
        if np.any(out["id"][1:] <= out["id"][:-1]):  # added ids are usually all past the loaded ones
            out = out[np.argsort(out["id"], kind="stable")]
        with open(folder / ROWS, "wb") as fh:
            np.save(fh, out, allow_pickle=False)
        return [ROWS, *names]
