"""Keep an index in step with a document folder, embedding only what is new or changed."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

from .embed import Embedder
from .embed.base import mixable
from .index import Index
from .ingest import MAX_FILE_BYTES, LoadError, discover, doc_id_for
from .ingest.chunk import Chunker
from .ingest.library import SkipLog, read_file, to_document
from .ingest.resume import EmbeddingCheckpoint, embed_resumable
from .schema import Document, IndexReport, SkippedFile

log = logging.getLogger(__name__)

_told: set[tuple[str | None, str]] = set()
"""Precision differences already logged (refresh runs every few seconds while asking)."""

Progress = Callable[[int, int], None]
"""Called as progress(done, total) while chunks are embedded."""


class Indexer:
    def __init__(self, embedder: Embedder, chunker: Chunker, store_kind: str = "faiss",
                 max_bytes: int = MAX_FILE_BYTES, store_options: dict[str, Any] | None = None):
        self.embedder = embedder
        self.chunker = chunker
        self.store_kind = store_kind
        self.max_bytes = max_bytes
        self.store_options = store_options or {}

    def config(self) -> dict[str, Any]:
        """Everything the stored vectors depend on; a difference forces a rebuild."""
        return {
            "embedding_model": self.embedder.model_id,
            "embedding_precision": self.embedder.precision,
            "dimension": self.embedder.dimension,
            "splitter": self.chunker.settings(),
            "store": self.store_kind,
            **({"store_options": self.store_options} if self.store_options else {}),
        }

    def new_index(self) -> Index:
        return Index.create(self.store_kind, self.embedder.dimension, self.config(), **self.store_options)

    def open(self, index_dir: Path) -> Index:
        return Index.open(index_dir, self.store_kind, self.embedder.dimension, self.config(),
                          **self.store_options)

    def rebuild_reason(self, index: Index) -> str | None:
        """Why the index must be embedded again, or None. A change of embedding precision
        (another machine measured another one fastest, or RAG_EMBEDDING_PRECISION changed)
        re-embeds unless the two are measured to mix (rag.embed.base.MIXABLE); an index saved
        before precisions were recorded is kept as it is."""
        old, new = index.config, self.config()
        if old == new:
            return None
        precision = "embedding_precision"
        changed = [key for key in new if old.get(key) != new[key] and key != precision]
        if changed:
            details = "; ".join(f"{key}: {old.get(key)!r} -> {new[key]!r}" for key in changed)
            return f"index settings changed ({details})"
        before, now = old.get(precision), new[precision]
        if before is not None and not mixable(before, now):
            return (f"the index was embedded with {before} and this machine embeds with {now} "
                    "(RAG_EMBEDDING_PRECISION, or measured fastest here: `rag config`); the two are "
                    "not measured to give the same results together, so every chunk is embedded again")
        if (before, now) not in _told:  # refresh runs every few seconds while asking: log once
            _told.add((before, now))
            if before is None:
                log.info("the index does not record which precision embedded it; keeping its "
                         "vectors (now embedding with %s)", now)
            else:
                log.info("the index was embedded with %s, new chunks and questions with %s "
                         "(measured to mix)", before, now)
        return None

    def run(
        self,
        index: Index | None,
        root: Path,
        progress: Progress | None = None,
        guard: AbstractContextManager[Any] | None = None,
        checkpoint: EmbeddingCheckpoint | None = None,
        shard: Callable[[str], bool] | None = None,
        skips: SkipLog | None = None,
        converted: Iterable[Document] | None = None,
    ) -> tuple[Index, IndexReport]:
        """Bring `index` (or a new one) in line with the files under `root` (only the documents
        `shard` selects, when given: parallel workers each take one shard).

        Reading, chunking and embedding happen first; the index is changed only at the end,
        inside `guard` (a lock that searches also take), so questions are answered meanwhile.
        With a `checkpoint`, vectors are kept per document as they are made, and those of an
        interrupted run are reused. `skips` remembers the files that could not be read, so an
        unchanged one is not read nor reported again (report.skipped_before); `converted` holds
        documents just read from the same bytes, which are not converted twice."""
        report = IndexReport()
        if index is not None:
            report.rebuilt_because = self.rebuild_reason(index)
            if report.rebuilt_because:
                log.warning("%s: rebuilding the index", report.rebuilt_because)
                index = None
        index = index or self.new_index()

        paths, unsupported = discover(root)
        skips = skips if skips is not None else SkipLog(None)
        for item in unsupported:
            if shard is None or shard(item.path):
                self._skip(report, skips, item.path, root / item.path, item.reason)
        converted = {d.content_hash: d for d in converted or ()}
        present: set[str] = set()
        to_embed: list[Document] = []
        for path in paths:
            doc_id = doc_id_for(root, path)
            if shard is not None and not shard(doc_id):
                continue
            present.add(doc_id)
            old = index.documents.get(doc_id)
            if old is not None and _same_stat(old, path):
                report.unchanged.append(doc_id)
                continue
            reason = skips.known(doc_id, path)
            if reason is not None:  # reported before, unchanged since: not read again
                report.skipped_before.append(SkippedFile(doc_id, reason))
                continue
            try:
                data, stat = read_file(path, self.max_bytes)
                digest = hashlib.sha256(data).hexdigest()
                if old is not None and old.content_hash == digest:  # touched, not changed
                    old.size, old.mtime = stat.st_size, stat.st_mtime
                    report.unchanged.append(doc_id)
                    continue
                if digest in converted:  # read moments ago (Assistant.add checks files first)
                    doc = replace(converted[digest], id=doc_id, path=str(path), size=stat.st_size,
                                  mtime=stat.st_mtime)
                else:
                    doc = to_document(path, doc_id, data, stat, self.max_bytes)
            except LoadError as exc:
                note = f"{exc}" + ("; kept the previously indexed version" if old else "")
                self._skip(report, skips, doc_id, path, note)
                continue
            (report.updated if old is not None else report.added).append(doc_id)
            to_embed.append(doc)
        skips.keep_only([s.path for s in report.skipped + report.skipped_before],
                        within=shard)

        report.removed = [d for d in index.documents if d not in present and index.owns(d, root)
                          and (shard is None or shard(d))]
        chunks = self.chunker.run(to_embed, first_id=index.next_id)
        total = len(chunks)
        done = 0

        def step(n: int) -> None:
            nonlocal done
            done += n
            if progress:
                progress(done, total)

        vectors, report.chunks_resumed = embed_resumable(self.embedder, to_embed, chunks,
                                                         checkpoint, step)
        report.chunks_embedded = total - report.chunks_resumed
        by_doc: dict[str, list[int]] = {}
        for row, chunk in enumerate(chunks):
            by_doc.setdefault(chunk.doc_id, []).append(row)
        with guard or contextlib.nullcontext():
            for doc_id in report.removed:
                index.delete(doc_id)
            for doc in to_embed:
                rows = by_doc.get(doc.id, [])
                index.put(doc, [chunks[r] for r in rows], vectors[rows])
        for skipped in report.skipped:
            log.warning("skipped %s: %s", skipped.path, skipped.reason)
        return index, report

    @staticmethod
    def _skip(report: IndexReport, skips: SkipLog, doc_id: str, path: Path, reason: str) -> None:
        """Report a file that cannot be indexed: newly (it is new or changed) or as before."""
        if skips.known(doc_id, path) == reason:
            report.skipped_before.append(SkippedFile(doc_id, reason))
        else:
            report.skipped.append(SkippedFile(doc_id, reason))
            skips.note(doc_id, path, reason)


def _same_stat(doc: Document, path: Path) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return doc.size == st.st_size and doc.mtime == st.st_mtime
