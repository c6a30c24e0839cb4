"""BM25 over the chunks (bm25s), the keyword half of hybrid retrieval.

Built from the chunk texts the index already holds, so it never needs the embedding model;
saved inside the index generation (numpy arrays and JSON, no pickle; memory-mapped at load)
and rebuilt whenever the chunks change (BM25's document frequencies are corpus-wide: a few
seconds for 16,000 chunks)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SETTINGS = {"library": "bm25s", "method": "lucene", "k1": 1.2, "b": 0.75,
            "tokens": "lower \\w\\w+, English stopwords, Snowball English stemmer", "version": 1}
"""What the saved BM25 depends on; a difference means it is built again from the chunks."""
IDS = "chunk_ids.npy"
META = "lexical.json"
_TOKEN = re.compile(r"(?u)\b\w\w+\b")


class _Tokenizer:
    def __init__(self) -> None:
        import Stemmer
        from bm25s.stopwords import STOPWORDS_EN

        self._stem = Stemmer.Stemmer("english").stemWords
        self._stop = frozenset(STOPWORDS_EN)

    def __call__(self, text: str) -> list[str]:
        return self._stem([t for t in _TOKEN.findall(text.lower()) if t not in self._stop])


_tokenizer: _Tokenizer | None = None


def tokenize(text: str) -> list[str]:
    global _tokenizer
    if _tokenizer is None:
        _tokenizer = _Tokenizer()
    return _tokenizer(text)


class Bm25:
    """BM25 scores of chunks for a query; chunk ids are the index's ids."""

    def __init__(self, model, chunk_ids: np.ndarray):
        self.model = model
        self.chunk_ids = chunk_ids

    @classmethod
    def build(cls, chunks: Iterable[tuple[int, str]]) -> Bm25:
        import bm25s

        ids, corpus = [], []
        for cid, text in chunks:
            ids.append(cid)
            corpus.append(tokenize(text) or ["_"])  # bm25s needs a token per document
        model = bm25s.BM25(method=SETTINGS["method"], k1=SETTINGS["k1"], b=SETTINGS["b"])
        if corpus:
            model.index(corpus, show_progress=False)
        return cls(model, np.array(ids, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) for the k best chunks with a positive score."""
        if not len(self):
            return []
        tokens = [t for t in tokenize(query) if t in self.model.vocab_dict]
        if not tokens:
            return []
        scores = self.model.get_scores(tokens)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self.chunk_ids[i]), float(scores[i])) for i in top if scores[i] > 0]

    def save(self, folder: Path) -> list[str]:
        """Write into `folder`; returns the file names (relative to the folder's parent)."""
        folder.mkdir(parents=True, exist_ok=True)
        if len(self):
            self.model.save(str(folder), show_progress=False)
        np.save(folder / IDS, self.chunk_ids, allow_pickle=False)
        (folder / META).write_text(json.dumps(SETTINGS))
        return sorted(f"{folder.name}/{p.name}" for p in folder.iterdir() if p.is_file())

    @classmethod
    def load(cls, folder: Path) -> Bm25 | None:
        """The saved BM25, or None when it is missing or was built with other settings."""
        import bm25s

        try:
            if json.loads((folder / META).read_text()) != SETTINGS:
                return None
            ids = np.load(folder / IDS, allow_pickle=False)
            if len(ids) == 0:
                return cls.build([])
            model = bm25s.BM25.load(str(folder), mmap=True, show_progress=False, verbosity=0)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("BM25 index in %s unreadable (%s): building it again", folder, exc)
            return None
        return cls(model, ids)
