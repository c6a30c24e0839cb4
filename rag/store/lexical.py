"""BM25 over the chunks, the keyword half of hybrid retrieval, kept up to date incrementally.

The index is a list of immutable segments (a base segment, then one small segment per update)
plus tombstones for the chunks removed since a segment was written. Each segment keeps raw
postings (term frequencies and document lengths), not precomputed scores, so a query scores
every segment with the SAME collection statistics: the live document count, the live average
length and each query term's document frequency summed over the live documents of all
segments. The scores therefore equal a full rebuild's (bm25s, Lucene variant: the formula and
the tokenisation are those `bm25s` used here before), and adding a document costs the
tokenisation of its chunks, not of the whole library.

Saved inside the index generation (numpy arrays and JSON, no pickle; memory-mapped at load).
A segment's files never change once written, so a later save hard-links them into the new
generation instead of rewriting them; segments are merged into one (postings merged, no
re-tokenising) at save when removals pass `COMPACT_DEAD` of the rows or there are more than
`MAX_SEGMENTS` of them."""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Iterable
from itertools import chain
from pathlib import Path

import numpy as np

from .files import link_or_copy

log = logging.getLogger(__name__)

SETTINGS = {"library": "rag segments", "method": "lucene", "k1": 1.2, "b": 0.75,
            "tokens": "lower \\w\\w+, English stopwords, Snowball English stemmer", "version": 2}
"""What the saved BM25 depends on; a difference means it is built again from the chunks."""
META = "lexical.json"
COMPACT_DEAD = 0.10
"""Merge the segments at save once this share of their rows is removed chunks..."""
MAX_SEGMENTS = 8
"""...or once there are more segments than this."""
_ARRAYS = ("ids", "lengths", "indptr", "rows", "tfs")
_TOKEN = re.compile(r"(?u)\b\w\w+\b")


class _Tokenizer:
    def __init__(self) -> None:
        import Stemmer

        self._stem = Stemmer.Stemmer("english").stemWords
        self._stop = _english_stop_words()

    def __call__(self, text: str) -> list[str]:
        return self._stem([t for t in _TOKEN.findall(text.lower()) if t not in self._stop])


def _english_stop_words() -> frozenset[str]:
    """bm25s's English list (saved BM25 segments depend on it), read from its module alone:
    importing the bm25s package itself (its retrievers, scipy) costs most of a second of a
    cold `rag ask`, for a tuple of words."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("bm25s")
        path = Path(spec.submodule_search_locations[0]) / "stopwords.py"
        module_spec = importlib.util.spec_from_file_location("_rag_bm25s_stopwords", path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        return frozenset(module.STOPWORDS_EN)
    except (AttributeError, ImportError, OSError, TypeError):  # laid out otherwise: the package
        from bm25s.stopwords import STOPWORDS_EN

        return frozenset(STOPWORDS_EN)


_tokenizer: _Tokenizer | None = None


def tokenize(text: str) -> list[str]:
    global _tokenizer
    if _tokenizer is None:
        _tokenizer = _Tokenizer()
    return _tokenizer(text)


class Segment:
    """Postings of some chunks, in column form: for term t, `rows[indptr[t]:indptr[t+1]]` are
    the rows (chunks, sorted by id) holding it and `tfs` the counts. Only `dead` changes."""

    def __init__(self, name: str, ids: np.ndarray, lengths: np.ndarray, indptr: np.ndarray,
                 rows: np.ndarray, tfs: np.ndarray, terms: list[str], source: Path | None = None):
        self.name, self.ids, self.lengths = name, ids, lengths
        self.indptr, self.rows, self.tfs, self.terms = indptr, rows, tfs, terms
        self.vocab = {t: i for i, t in enumerate(terms)}
        self.dead = np.zeros(len(ids), dtype=bool)
        self.dead_count = 0
        self.live_length = float(lengths.sum(dtype=np.int64))
        """Sum of the live chunks' lengths, kept as chunks are removed (for the average)."""
        self.source = source
        """The folder the immutable files were loaded from (hard-linked at the next save)."""

    @classmethod
    def build(cls, name: str, docs: list[tuple[int, list[str]]]) -> Segment:
        docs = sorted(docs, key=lambda d: d[0])
        ids = np.array([d[0] for d in docs], dtype=np.int64)
        # an empty chunk counts as one token, as bm25s (which needs one) counted it
        lengths = np.array([max(len(d[1]), 1) for d in docs], dtype=np.int32)
        sizes = [len(d[1]) for d in docs]
        terms = sorted(dict.fromkeys(chain.from_iterable(d[1] for d in docs)))
        rank = {t: i for i, t in enumerate(terms)}
        term_ids = np.fromiter(map(rank.__getitem__, chain.from_iterable(d[1] for d in docs)),
                               dtype=np.int64, count=sum(sizes))
        row_of = np.repeat(np.arange(len(docs), dtype=np.int64), sizes)
        keys, counts = np.unique(term_ids * max(len(docs), 1) + row_of, return_counts=True)
        return cls._from_keys(name, ids, lengths, terms, keys, counts)

    @classmethod
    def _from_keys(cls, name: str, ids: np.ndarray, lengths: np.ndarray, terms: list[str],
                   keys: np.ndarray, counts: np.ndarray) -> Segment:
        """From sorted keys term * rows + row and their term frequencies."""
        n = max(len(ids), 1)
        indptr = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys // n, minlength=len(terms)), out=indptr[1:])
        return cls(name, ids, lengths, indptr, (keys % n).astype(np.int32),
                   counts.astype(np.float32), terms)

    def __len__(self) -> int:
        return len(self.ids) - self.dead_count

    def row_of(self, chunk_id: int) -> int | None:
        """The live row of a chunk, or None when the segment does not hold it."""
        i = int(np.searchsorted(self.ids, chunk_id))
        if i < len(self.ids) and self.ids[i] == chunk_id and not self.dead[i]:
            return i
        return None

    def kill(self, rows: np.ndarray | int) -> None:
        rows = np.unique(np.atleast_1d(rows))
        rows = rows[~self.dead[rows]]
        self.dead[rows] = True
        self.dead_count += len(rows)
        self.live_length -= float(self.lengths[rows].sum(dtype=np.int64))

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """Live (rows, term frequencies) of a term."""
        t = self.vocab.get(term)
        if t is None:
            return _EMPTY_ROWS, _EMPTY_TFS
        rows, tfs = self.rows[self.indptr[t]:self.indptr[t + 1]], self.tfs[self.indptr[t]:self.indptr[t + 1]]
        if self.dead_count:
            keep = ~self.dead[rows]
            rows, tfs = rows[keep], tfs[keep]
        return rows, tfs

    # -- files ---------------------------------------------------------------------------
    def save(self, folder: Path) -> list[str]:
        """Write (or hard-link, when unchanged since loaded) the files; returns their names."""
        names = [f"{self.name}.{a}.npy" for a in _ARRAYS] + [f"{self.name}.terms.json"]
        for fname in names:
            if self.source is not None and (self.source / fname).is_file():
                try:
                    link_or_copy(self.source / fname, folder / fname)
                    continue
                except OSError:  # its generation went meanwhile: written from memory below
                    pass
            if fname.endswith(".json"):
                (folder / fname).write_text(json.dumps(self.terms))
            else:
                np.save(folder / fname, getattr(self, fname.split(".")[1]), allow_pickle=False)
        if self.dead_count:
            names.append(f"{self.name}.dead.npy")
            np.save(folder / names[-1], np.flatnonzero(self.dead).astype(np.int32), allow_pickle=False)
        return names

    @classmethod
    def load(cls, folder: Path, name: str) -> Segment:
        arrays = [np.load(folder / f"{name}.{a}.npy", mmap_mode="r", allow_pickle=False) for a in _ARRAYS]
        terms = json.loads((folder / f"{name}.terms.json").read_text())
        ids, lengths, indptr, rows, _ = arrays
        if len(lengths) != len(ids) or len(indptr) != len(terms) + 1 or len(rows) != indptr[-1] \
                or len(arrays[4]) != len(rows):
            raise ValueError(f"BM25 segment {name} has arrays of inconsistent lengths")
        segment = cls(name, *arrays, terms, source=folder)
        if (folder / f"{name}.dead.npy").is_file():
            dead = np.load(folder / f"{name}.dead.npy", allow_pickle=False).astype(np.int64)
            if len(dead) and (dead.min() < 0 or dead.max() >= len(ids)):
                raise ValueError(f"BM25 segment {name} has tombstones outside it")
            segment.kill(dead)
        return segment


_EMPTY_ROWS = np.zeros(0, dtype=np.int32)
_EMPTY_TFS = np.zeros(0, dtype=np.float32)


def merge(name: str, segments: list[Segment]) -> Segment:
    """One segment holding the live chunks of `segments`: postings merged, nothing re-tokenised."""
    live = [np.flatnonzero(~s.dead) for s in segments]
    ids = np.concatenate([s.ids[r] for s, r in zip(segments, live)] or [np.zeros(0, np.int64)])
    order = np.argsort(ids, kind="stable")
    new_row = np.empty(len(ids), dtype=np.int64)
    new_row[order] = np.arange(len(ids))
    terms = sorted(set().union(*(s.terms for s in segments)))
    rank = {t: i for i, t in enumerate(terms)}
    n = max(len(ids), 1)
    keys, counts, offset = [], [], 0
    for s, rows in zip(segments, live):
        renumber = np.full(len(s.ids), -1, dtype=np.int64)
        renumber[rows] = new_row[offset:offset + len(rows)]
        offset += len(rows)
        term_of = np.repeat(np.array([rank[t] for t in s.terms], dtype=np.int64), np.diff(s.indptr))
        row = renumber[s.rows]
        keep = row >= 0
        keys.append(term_of[keep] * n + row[keep])
        counts.append(np.asarray(s.tfs)[keep])
    key = np.concatenate(keys or [np.zeros(0, np.int64)])
    by_key = np.argsort(key, kind="stable")
    lengths = np.concatenate([s.lengths[r] for s, r in zip(segments, live)] or [np.zeros(0, np.int32)])
    return Segment._from_keys(name, ids[order], lengths[order], terms, key[by_key],
                              np.concatenate(counts or [_EMPTY_TFS])[by_key])


def bm25_idf(n_docs: int, df: int) -> float:
    """Lucene's BM25 IDF (as bm25s): never negative, even for a term in most documents."""
    return math.log(1 + (n_docs - df + 0.5) / (df + 0.5))


def collection_idf(n_docs: int, df: int) -> float:
    """A term's IDF for the reader's rare-word signal: a term no chunk holds gets the IDF of a
    term seen once (rare, not infinitely so)."""
    df = max(1, df)
    return bm25_idf(max(n_docs, df), df)


def _weight(idf: float, tfs: np.ndarray, lengths: np.ndarray, base: float,
            per_length: float) -> np.ndarray:
    """A term's BM25 contribution (Lucene variant) to chunks of these term frequencies and lengths."""
    return idf * tfs / (base + per_length * lengths + tfs)


def _segment_scores(s: Segment, plan: list[tuple[float, tuple[np.ndarray, np.ndarray]]], k: int,
                    base: float, per_length: float) -> tuple[np.ndarray, np.ndarray] | None:
    """A segment's BM25 scores (dense, by row) and the rows that can be among the k best.

    Exact top k with MaxScore pruning: a term adds less than its idf to any chunk, so once the
    k-th best score so far exceeds the idfs of the terms still to come, no chunk unseen yet
    can reach the top k; the remaining (common, long-postings) terms are then looked up only
    for the candidates (a binary search in their sorted postings), not scanned. At a million
    chunks a common word's postings hold hundreds of thousands of rows."""
    plan = [(idf, rows, tfs) for idf, (rows, tfs) in plan if len(rows)]
    if not plan:
        return None
    scores = np.zeros(len(s.ids), dtype=np.float64)
    remaining = sum(idf for idf, _, _ in plan)
    candidates = None
    seen, done = 0, 0.0
    for idf, rows, tfs in plan:
        remaining -= idf
        done += idf
        if candidates is None:
            scores[rows] += _weight(idf, tfs, s.lengths[rows], base, per_length)  # rows unique
            seen += len(rows)
            # the k-th best is below the idfs summed so far: look only when that could beat the rest
            if seen >= k and 0 < remaining < done:
                positive = np.flatnonzero(scores)
                if len(positive) >= k:
                    kth = np.partition(scores[positive], len(positive) - k)[len(positive) - k]
                    if remaining < kth:
                        candidates = positive[scores[positive] + remaining >= kth * (1 - 1e-12)]
            continue
        at = np.minimum(np.searchsorted(rows, candidates), len(rows) - 1)
        hit = rows[at] == candidates
        r, t = candidates[hit], tfs[at[hit]]
        scores[r] += _weight(idf, t, s.lengths[r], base, per_length)
        kth = np.partition(scores[candidates], len(candidates) - k)[len(candidates) - k]
        candidates = candidates[scores[candidates] + remaining >= kth * (1 - 1e-12)]
    return scores, (np.flatnonzero(scores > 0) if candidates is None else candidates)


class Bm25:
    """BM25 scores of chunks for a query; chunk ids are the index's ids."""

    def __init__(self, segments: list[Segment], serial: int = 0):
        self.segments = segments
        self.serial = serial
        """Number of the next segment, so that names never repeat."""
        self._pending: dict[int, str] = {}
        self._lock = threading.Lock()
        """Chunks added since the last query or save: one segment for a whole batch of puts."""

    @classmethod
    def build(cls, chunks: Iterable[tuple[int, str]]) -> Bm25:
        index = cls([])
        index.add(chunks)
        index._flush()
        return index

    def __len__(self) -> int:
        self._flush()
        return sum(len(s) for s in self.segments)

    # -- changes -------------------------------------------------------------------------
    def add(self, chunks: Iterable[tuple[int, str]]) -> None:
        """Index chunks (a chunk id already there replaces the old one); they become a new
        segment at the next query or save."""
        for cid, text in chunks:
            self.remove([cid])
            self._pending[int(cid)] = text

    def _flush(self) -> None:
        with self._lock:  # two searches at once must not both turn the same batch into a segment
            if self._pending:
                docs = [(cid, tokenize(text)) for cid, text in self._pending.items()]
                self.segments = [*self.segments, Segment.build(f"s{self.serial:06d}", docs)]
                self.serial += 1
                self._pending = {}

    def remove(self, chunk_ids: Iterable[int]) -> None:
        """Tombstone the chunks; ids not indexed are ignored."""
        for cid in chunk_ids:
            if self._pending.pop(int(cid), None) is not None:
                continue
            for segment in self.segments:
                row = segment.row_of(int(cid))
                if row is not None:
                    segment.kill(row)
                    break

    def compact(self) -> None:
        """Merge all segments into one, dropping the removed chunks."""
        self._flush()
        if len(self.segments) > 1 or any(s.dead_count for s in self.segments):
            self.segments = [merge(f"s{self.serial:06d}", self.segments)]
            self.serial += 1

    def churn(self) -> float:
        """Share of the rows that are removed chunks."""
        self._flush()
        rows = sum(len(s.ids) for s in self.segments)
        return sum(s.dead_count for s in self.segments) / rows if rows else 0.0

    # -- queries -------------------------------------------------------------------------
    def idf(self, terms: Iterable[str]) -> dict[str, float]:
        """Each (tokenized) term's BM25 IDF over the whole collection, as `search` weighs it; a
        term no chunk holds gets the IDF of a term seen once (rare, not infinitely so)."""
        n_docs = len(self)
        return {term: collection_idf(n_docs, sum(len(s.postings(term)[0]) for s in self.segments))
                for term in set(terms)}

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) for the k best chunks with a positive score."""
        n_docs = len(self)  # flushes the pending chunks
        terms = Counter(tokenize(query))
        if not n_docs or not terms or k <= 0:
            return []
        k1, b = SETTINGS["k1"], SETTINGS["b"]
        avgdl = sum(s.live_length for s in self.segments) / n_docs
        plan = []  # (idf, postings per segment), rarest term first
        for term, times in terms.items():
            postings = [s.postings(term) for s in self.segments]
            df = sum(len(rows) for rows, _ in postings)
            if df:
                plan.append((times * bm25_idf(n_docs, df), postings))
        plan.sort(key=lambda p: -p[0])
        scores = [_segment_scores(s, [(idf, post[i]) for idf, post in plan], k, k1 * (1 - b),
                                  k1 * b / avgdl) for i, s in enumerate(self.segments)]
        best_ids, best_scores = [], []
        for s, sc in zip(self.segments, scores):  # each segment's k best, then the k best of those
            if sc is None:
                continue
            sc, top = sc
            if len(top) > k:
                top = top[np.argpartition(-sc[top], k - 1)[:k]]
            best_ids.append(np.asarray(s.ids[top]))
            best_scores.append(sc[top])
        if not best_ids:
            return []
        ids, found = np.concatenate(best_ids), np.concatenate(best_scores)
        order = np.argsort(-found, kind="stable")[:k]
        return [(int(ids[i]), float(found[i])) for i in order]

    # -- files ---------------------------------------------------------------------------
    def save(self, folder: Path) -> list[str]:
        """Write into `folder` (merging the segments first when churn calls for it); returns
        the file names (relative to the folder's parent)."""
        if self.churn() > COMPACT_DEAD or len(self.segments) > MAX_SEGMENTS:
            self.compact()
        folder.mkdir(parents=True, exist_ok=True)
        names = []
        for segment in self.segments:
            names += segment.save(folder)
        meta = {**SETTINGS, "segments": [s.name for s in self.segments], "serial": self.serial}
        (folder / META).write_text(json.dumps(meta))
        return sorted(f"{folder.name}/{n}" for n in names + [META])

    def saved(self, folder: Path) -> None:
        """The files just saved are in `folder` now: the next save links them from there."""
        for segment in self.segments:
            segment.source = folder

    @classmethod
    def load(cls, folder: Path) -> Bm25 | None:
        """The saved BM25, or None when it is missing or was built with other settings."""
        try:
            meta = json.loads((folder / META).read_text())
            if {k: meta.get(k) for k in SETTINGS} != SETTINGS:
                return None
            return cls([Segment.load(folder, name) for name in meta["segments"]], int(meta["serial"]))
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            log.warning("BM25 index in %s unreadable (%s): building it again", folder, exc)
            return None
