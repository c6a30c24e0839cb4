"""FAISS files in the index folder: the default vector store (`RAG_STORE=faiss`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .base import STORES, VectorStore
from .files import link_or_copy


@STORES.register("faiss")
class FaissStore(VectorStore):
    """Exact inner-product search (IndexFlatIP under an id map, so documents can be removed) up
    to `exact_limit` vectors; above it an inverted file with 8-bit scalar quantization
    (IndexIVFScalarQuantizer: 4x smaller, scans `nprobe` of its lists), which keeps ids and
    removal natively.

    A loaded index is memory-mapped and never changed: vectors added since go into a small
    exact delta index, removed ones into a list of tombstones the base's search skips. A save
    then hard-links the base file and writes only the delta and the tombstones (a 1M-vector
    base is 400 MB; adding a document must not rewrite it); past `merge_share` of the base,
    or `merge_min` vectors, the save merges them into a new base."""

    kind = "faiss"
    filename = "vectors.faiss"
    exact_limit = 200_000
    """Above this many vectors the flat index is converted to IVF-SQ8 (measured in
    benchmarks/million.py: recall@10 against exact search and latency at 10k-1M)."""
    nprobe = 48
    merge_min = 20_000
    merge_share = 0.1
    """Delta vectors plus tombstones above max(merge_min, merge_share × base) are merged at
    the next save: an exact search over 20k vectors costs about a millisecond."""

    def __init__(self, dimension: int, index: object | None = None, mapped_from: BinaryIO | None = None,
                 path: Path | None = None):
        import faiss

        super().__init__(dimension)
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self._mapped_from = mapped_from
        """The open file the base is memory-mapped from (open, so it stays readable after a newer
        generation replaces it on disk): read-only until `_merge` reads it into memory."""
        self._path = path
        """Where the mapped base lies (hard-linked into the next generation)."""
        self._delta: object | None = None
        self._removed = np.zeros(0, dtype=np.int64)
        """Ids of base vectors that are gone, sorted."""
        self._selector: tuple[object, ...] | None = None
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

    @property
    def _frozen(self) -> bool:
        """The base is a mapped file: changes go to the delta and the tombstones."""
        return self._mapped_from is not None

    def _merge(self) -> None:
        """Read the base into memory and fold the delta and tombstones into it."""
        import faiss

        if self._mapped_from is not None:
            self._mapped_from.seek(0)
            self._index = faiss.read_index(faiss.PyCallbackIOReader(self._mapped_from.read))
            self._mapped_from.close()
            self._mapped_from = self._path = None
            self._tune()
        if len(self._removed):
            self._index.remove_ids(self._removed)
            self._removed = np.zeros(0, dtype=np.int64)
            self._selector = None
        if self._delta is not None:
            ids, vectors = _flat_contents(self._delta, self.dimension)
            self._delta = None
            self._add_base(ids, vectors)

    def _add_base(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))
        if self.exact and self._index.ntotal > self.exact_limit:
            self._index = _to_ivf(self._index, self.dimension)
            self._tune()

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ValueError(f"expected vectors of dimension {self.dimension}, got {vectors.shape}")
        if not self._frozen:
            self._add_base(ids, vectors)
            return
        if self._delta is None:
            self._delta = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dimension))
        self._delta.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))

    def remove(self, ids: Sequence[int]) -> int:
        """Remove vectors by id; returns how many (of a frozen base, the ids asked for: the
        index keeps the chunk table, so it only asks for ids it holds)."""
        if not len(ids):
            return 0
        ids = np.asarray(list(ids), dtype=np.int64)
        if not self._frozen:
            return int(self._index.remove_ids(ids))
        removed = 0
        if self._delta is not None:
            in_delta = np.isin(ids, self._delta_ids())
            if in_delta.any():
                removed = int(self._delta.remove_ids(ids[in_delta]))
            ids = ids[~in_delta]
        fresh = np.setdiff1d(ids, self._removed)
        if len(fresh):
            self._removed = np.union1d(self._removed, fresh)
            self._selector = None
        return removed + len(fresh)

    def _delta_ids(self) -> np.ndarray:
        import faiss

        return faiss.vector_to_array(self._delta.id_map) if self._delta is not None else np.zeros(0, np.int64)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if len(self) == 0:
            empty = np.full((len(queries), k), -1, dtype=np.int64)
            return np.zeros((len(queries), k), dtype=np.float32), empty
        k = min(k, len(self))
        scores, ids = self._index.search(queries, k, params=self._params()) \
            if len(self._removed) else self._index.search(queries, k)
        if self._delta is None or self._delta.ntotal == 0:
            return scores, ids
        more_scores, more_ids = self._delta.search(queries, min(k, int(self._delta.ntotal)))
        scores, ids = np.hstack([scores, more_scores]), np.hstack([ids, more_ids])
        scores = np.where(ids < 0, -np.inf, scores)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)

    def _params(self) -> object:
        """Search parameters that skip the tombstones (and keep nprobe for IVF)."""
        import faiss

        if self._selector is None:
            batch = faiss.IDSelectorBatch(self._removed)
            skip = faiss.IDSelectorNot(batch)
            params = faiss.SearchParametersIVF(sel=skip, nprobe=self.nprobe) if not self.exact \
                else faiss.SearchParameters(sel=skip)
            self._selector = (params, skip, batch)  # kept together: params point at the others
        return self._selector[0]

    def __len__(self) -> int:
        delta = int(self._delta.ntotal) if self._delta is not None else 0
        return int(self._index.ntotal) - len(self._removed) + delta

    # -- files ------------------------------------------------------------------------------
    def save(self, path: Path) -> list[str]:
        import shutil

        import faiss

        delta = int(self._delta.ntotal) if self._delta is not None else 0
        if self._frozen and delta + len(self._removed) > max(self.merge_min,
                                                               self.merge_share * self._index.ntotal):
            self._merge()
            delta = 0
        names = [path.name]
        if self._frozen:  # the base as loaded: the same file
            try:
                link_or_copy(self._path, path)
            except OSError:  # its generation was removed meanwhile: copy the open file
                self._mapped_from.seek(0)
                with open(path, "wb") as out:
                    shutil.copyfileobj(self._mapped_from, out, 1 << 22)
        else:
            faiss.write_index(self._index, str(path))
        if delta:
            names.append(_delta_name(path).name)
            faiss.write_index(self._delta, str(_delta_name(path)))
        if len(self._removed):
            names.append(_removed_name(path).name)
            np.save(_removed_name(path), self._removed, allow_pickle=False)
        return names

    def saved(self, path: Path) -> None:
        if self._frozen:
            self._path = path
            return
        # the base was just written whole: map it, so later changes go to a delta again and
        # the next save links this file instead of writing it
        fresh = FaissStore.load(path, self.dimension)
        self._index, self._mapped_from, self._path = fresh._index, fresh._mapped_from, path
        self._selector = None

    @classmethod
    def load(cls, path: Path, dimension: int) -> FaissStore:
        import faiss

        fh = open(path, "rb")  # noqa: SIM115 - kept open while the index is mapped from it
        try:
            index = faiss.read_index(str(path), _mmap_flag(fh.read(4)))
            delta = faiss.read_index(str(_delta_name(path))) if _delta_name(path).is_file() else None
            removed = np.load(_removed_name(path), allow_pickle=False) \
                if _removed_name(path).is_file() else np.zeros(0, dtype=np.int64)
        except (RuntimeError, ValueError) as exc:
            fh.close()
            raise ValueError(f"unreadable FAISS index {path.name}: {str(exc).splitlines()[0]}") from exc
        for part in (index, delta):
            if part is not None and part.d != dimension:
                fh.close()
                raise ValueError(f"FAISS index has dimension {part.d}, manifest says {dimension}")
        store = cls(dimension, index, mapped_from=fh, path=path)
        store._delta = delta
        store._removed = np.unique(removed.astype(np.int64))
        return store


def _delta_name(path: Path) -> Path:
    return path.with_name(path.stem + ".delta" + path.suffix)


def _removed_name(path: Path) -> Path:
    return path.with_name(path.stem + ".removed.npy")


def _mmap_flag(head: bytes) -> int:
    """Memory-map what FAISS can map: the inverted lists of an IVF file (IO_FLAG_MMAP) and the
    codes of a flat one (IO_FLAG_MMAP_IFC). The first bytes tell which kind the file holds."""
    import faiss

    if head.startswith(b"IwSq") or head.startswith(b"IwFl"):
        return faiss.IO_FLAG_MMAP
    return getattr(faiss, "IO_FLAG_MMAP_IFC", 0)


def _flat_contents(flat_map: object, dimension: int) -> tuple[np.ndarray, np.ndarray]:
    """The ids and vectors an IndexIDMap2(IndexFlatIP) holds."""
    import faiss

    flat = faiss.downcast_index(flat_map.index)
    vectors = faiss.vector_to_array(flat.codes).view(np.float32).reshape(-1, dimension)
    return faiss.vector_to_array(flat_map.id_map), vectors


def _to_ivf(flat_map: object, dimension: int) -> object:
    """The vectors and ids of an IndexIDMap2(IndexFlatIP), re-indexed as IVF with SQ8."""
    import faiss

    ids, vectors = _flat_contents(flat_map, dimension)
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
