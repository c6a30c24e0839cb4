"""Resumable indexing: the vectors of documents already embedded by a run that was stopped
(Ctrl+C, a kill, a power cut) are kept in the index folder, so the next run embeds only the
rest instead of starting over.

Layout: ``<index_dir>/.resume/<settings key>/<content sha256>.npy``, one float32 array per
document (one row per chunk), written to a temporary name and renamed, read back with
``allow_pickle=False``. The key changes with the embedding model and the splitter, so vectors
made with other settings are never reused. The folder is deleted once the index is saved.
The saved index itself is untouched by all this: it stays the previous generation until the
run completes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..schema import Document

log = logging.getLogger(__name__)

FOLDER = ".resume"


class EmbeddingCheckpoint:
    """Per-document vectors of an unfinished indexing run."""

    def __init__(self, index_dir: Path, config: dict[str, Any]):
        key = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
        self.root = index_dir / FOLDER
        self.folder = self.root / key

    def _path(self, doc: Document) -> Path:
        return self.folder / f"{doc.content_hash}.npy"

    def get(self, doc: Document, n_chunks: int, dimension: int) -> np.ndarray | None:
        """The document's vectors from an earlier run, if complete and of the right shape."""
        path = self._path(doc)
        if not doc.content_hash or not path.is_file():
            return None
        try:
            vectors = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            log.debug("ignoring unreadable checkpoint %s: %s", path.name, exc)
            return None
        if vectors.shape != (n_chunks, dimension) or vectors.dtype != np.float32:
            return None
        return vectors

    def put(self, doc: Document, vectors: np.ndarray) -> None:
        """Keep a document's vectors (atomically: a kill leaves the file whole or absent)."""
        if not doc.content_hash:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npy", dir=self.folder)
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
            os.replace(tmp, self._path(doc))
        except OSError as exc:  # a full disk costs resumability, not the run
            log.warning("could not keep embeddings for resuming (%s)", exc)

    def clear(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)


GROUP_BATCHES = 4
"""Embedding batches between two checkpoints: enough to batch well, few enough that a stopped
run loses little."""


def embed_resumable(
    embedder: Any,
    docs: list[Document],
    chunks: list[Any],
    checkpoint: EmbeddingCheckpoint | None,
    step: Any,
) -> tuple[np.ndarray, int]:
    """Vectors for `chunks` (of `docs`, in order), reusing and extending the checkpoint.

    Returns (vectors, number of chunks taken from the checkpoint). `step(n)` is called as
    chunks are done, resumed ones first."""
    if checkpoint is None:
        return embedder.encode([c.text for c in chunks], progress=step), 0
    rows: dict[str, list[int]] = {}
    for row, chunk in enumerate(chunks):
        rows.setdefault(chunk.doc_id, []).append(row)
    vectors = np.zeros((len(chunks), embedder.dimension), dtype=np.float32)
    pending: list[Document] = []
    resumed = 0
    for doc in docs:
        mine = rows.get(doc.id, [])
        kept = checkpoint.get(doc, len(mine), embedder.dimension) if mine else None
        if kept is None:
            pending.append(doc)
        else:
            vectors[mine] = kept
            resumed += len(mine)
    if resumed:
        log.info("resuming: %d chunks were embedded by an interrupted run", resumed)
        step(resumed)
    group: list[Document] = []
    for n, doc in enumerate(pending):
        group.append(doc)
        size = sum(len(rows.get(d.id, [])) for d in group)
        if size < GROUP_BATCHES * embedder.batch_size and n + 1 < len(pending):
            continue
        wanted = [r for d in group for r in rows.get(d.id, [])]
        if wanted:
            vectors[wanted] = embedder.encode([chunks[r].text for r in wanted], progress=step)
        for d in group:
            if rows.get(d.id):
                checkpoint.put(d, vectors[rows[d.id]])
        group = []
    return vectors, resumed
