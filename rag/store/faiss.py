"""FAISS files in the index folder: the default vector store (`RAG_STORE=faiss`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .base import STORES, VectorStore


@STORES.register("faiss")
class FaissStore(VectorStore):
    """Exact inner-product search (IndexFlatIP under an id map, so documents can be removed) up
    to `exact_limit` vectors; above it an inverted file with 8-bit scalar quantization
    (IndexIVFScalarQuantizer: 4x smaller, scans `nprobe` of its lists), which keeps ids and
    removal natively. Loaded indexes are memory-mapped, and read into memory on the first change."""

    kind = "faiss"
    filename = "vectors.faiss"
    exact_limit = 200_000
    """Above this many vectors the flat index is converted to IVF-SQ8 (measured in
    benchmarks/million.py: recall@10 against exact search and latency at 10k-1M)."""
    nprobe = 48

    def __init__(self, dimension: int, index: object | None = None, mapped_from: BinaryIO | None = None):
        import faiss

        super().__init__(dimension)
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self._mapped_from = mapped_from
        """The open file the index is memory-mapped from (open, so it stays readable after a newer
        generation replaces it on disk): read-only until `_writable` reads it into memory."""
        self._tune()

    def _tune(self) -> None:
        import faiss

        ivf = faiss.try_extract_index_ivf(self._index)
        if ivf is not None:
            ivf.nprobe = self.nprobe

    @property
    def exact(self) -> bool:
        import faiss

        return faiss.try_extract_index_ivf(self._index) is None

    def _writable(self) -> None:
        """A memory-mapped index cannot change: read it into memory first."""
        if self._mapped_from is not None:
            import faiss

            self._mapped_from.seek(0)
            self._index = faiss.read_index(faiss.PyCallbackIOReader(self._mapped_from.read))
            self._mapped_from.close()
            self._mapped_from = None
            self._tune()

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ValueError(f"expected vectors of dimension {self.dimension}, got {vectors.shape}")
        self._writable()
        self._index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))
        if self.exact and len(self) > self.exact_limit:
            self._index = _to_ivf(self._index, self.dimension)
            self._tune()

    def remove(self, ids: Sequence[int]) -> int:
        if not len(ids):
            return 0
        self._writable()
        return int(self._index.remove_ids(np.asarray(list(ids), dtype=np.int64)))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if len(self) == 0:
            empty = np.full((len(queries), k), -1, dtype=np.int64)
            return np.zeros((len(queries), k), dtype=np.float32), empty
        return self._index.search(queries, min(k, len(self)))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def save(self, path: Path) -> None:
        import shutil

        import faiss

        if self._mapped_from is not None:  # unchanged since loaded: the same bytes
            self._mapped_from.seek(0)
            with open(path, "wb") as out:
                shutil.copyfileobj(self._mapped_from, out, 1 << 22)
        else:
            faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, dimension: int) -> FaissStore:
        import faiss

        fh = open(path, "rb")  # noqa: SIM115 - kept open while the index is mapped from it
        try:
            index = faiss.read_index(str(path), _mmap_flag(fh.read(4)))
        except RuntimeError as exc:
            fh.close()
            raise ValueError(f"unreadable FAISS index {path.name}: {str(exc).splitlines()[0]}") from exc
        if index.d != dimension:
            fh.close()
            raise ValueError(f"FAISS index has dimension {index.d}, manifest says {dimension}")
        return cls(dimension, index, mapped_from=fh)


def _mmap_flag(head: bytes) -> int:
    """Memory-map what FAISS can map: the inverted lists of an IVF file (IO_FLAG_MMAP) and the
    codes of a flat one (IO_FLAG_MMAP_IFC). The first bytes tell which kind the file holds."""
    import faiss

    if head.startswith(b"IwSq") or head.startswith(b"IwFl"):
        return faiss.IO_FLAG_MMAP
    return getattr(faiss, "IO_FLAG_MMAP_IFC", 0)


def _to_ivf(flat_map: object, dimension: int) -> object:
    """The vectors and ids of an IndexIDMap2(IndexFlatIP), re-indexed as IVF with SQ8."""
    import faiss

    flat = faiss.downcast_index(flat_map.index)
    vectors = faiss.vector_to_array(flat.codes).view(np.float32).reshape(-1, dimension)
    ids = faiss.vector_to_array(flat_map.id_map)
    nlist = int(4 * np.sqrt(len(ids)))
    quantizer = faiss.IndexFlatIP(dimension)
    ivf = faiss.IndexIVFScalarQuantizer(quantizer, dimension, nlist, faiss.ScalarQuantizer.QT_8bit,
                                        faiss.METRIC_INNER_PRODUCT)
    ivf.own_fields = True
    quantizer.this.disown()
    sample = np.random.default_rng(0).choice(len(ids), size=min(len(ids), 64 * nlist), replace=False)
    ivf.train(np.ascontiguousarray(vectors[np.sort(sample)]))
    ivf.add_with_ids(vectors, ids)
    return ivf
