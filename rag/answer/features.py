"""Signals for choosing the answer sentence, fused by weights fitted on data.

The dense cosine alone picks a sentence that is *about* the question ("the unprecedented
closeness" for "In which city did Putin meet Xi?"); the sentence that answers it also shares
the question's rare words, its names and numbers, and holds a phrase of the asked type (a
place for "which city") that the question does not. These are the features of the QA systems
before BERT readers. The weights come from a logistic regression on the tune half of XQuAD's
articles (benchmarks/fit_reader.py writes rag/answer/reader_model.json); without that file
the ranking is the dense cosine, as before.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..store.lexical import bm25_idf, tokenize
from ..text import names
from .span import _capitalised, _is_date, _is_number, kind_of

MODEL_FILE = Path(__file__).with_name("reader_model.json")

FEATURES = (
    "dense", "dense_gap", "bm25", "idf_coverage", "collection_idf", "rarest_word", "names",
    "numbers", "typed_question", "type_phrase", "prev_dense", "next_dense", "prev_bm25",
    "next_bm25", "prev_idf", "next_idf", "prev_type_phrase", "next_type_phrase", "passage_dense",
    "passage_bm25", "length", "new_words",
)
"""One row per candidate sentence, in this order (the fitted weights follow it). The passage
is weighed by how well its sentences match (its best cosine to the question, its BM25 as one
text), never by its rank: two passages nearly tied swap ranks on a change as small as another
embedding precision or a third document, and the answer with them."""

_NUMBER = re.compile(r"\b\d[\d,.]*\b")
_WORD = re.compile(r"[\w][\w'’.,%-]*[\w%]|\w")


_DEMONYM = re.compile(r"(?:ese|ian|an|ish|i)$")


def place_root(word: str) -> str | None:
    """For what may be an adjective of a place ("chinese", "russian", "israeli"), the start of
    the place's name ("chin", "russi", "israel"); None for other words."""
    root = _DEMONYM.sub("", word)
    return root if root != word and len(root) >= 4 else None


def mentions(name: str, text: str) -> bool:
    """Does the lower-cased text mention the (lower-cased) name, or for an adjective of a place
    ("chinese", "russian", "israeli") the place ("china", "russia", "israel")?"""
    if name in text:
        return True
    root = place_root(name)
    return root is not None and root in text


@dataclass
class Candidate:
    """What the features need of a sentence: its text, its passage and its place in it."""

    text: str
    passage: int
    """0-based rank of its passage among the retrieved ones (which sentences share a passage;
    the rank itself is no feature)."""
    position: int
    """0-based position among its passage's candidate sentences."""
    dense: float


def _bm25(query: list[str], docs: list[list[str]], k1: float = 1.2, b: float = 0.75
          ) -> tuple[np.ndarray, dict[str, float]]:
    """BM25 of each candidate sentence for the query, with IDF over the candidates (Lucene's
    formula, as bm25s), and that IDF."""
    n = len(docs)
    df = Counter(t for d in docs for t in set(d))
    idf = {t: bm25_idf(n, df[t]) for t in set(query)}
    avg = max(1e-9, sum(len(d) for d in docs) / max(1, n))
    scores = np.zeros(n)
    for i, d in enumerate(docs):
        tf = Counter(d)
        for t in set(query):
            f = tf.get(t, 0)
            if f:
                scores[i] += idf[t] * f * (k1 + 1) / (f + k1 * (1 - b + b * len(d) / avg))
    return scores, idf


def _type_phrase(kind: str, sentence: str, asked: set[str]) -> float:
    """Does the sentence hold a phrase of the asked type that the question does not?"""
    if kind == "other":
        return 0.0
    tokens = _WORD.findall(sentence)
    test = {"number": _is_number, "date": _is_date}.get(kind)
    for k, tok in enumerate(tokens):
        if tok.lower() in asked:
            continue
        if test is not None:
            if test(tok):
                return 1.0
        elif k > 0 and _capitalised(tok) and not tok[:1].isdigit():
            return 1.0
    return 0.0


Idf = Callable[[Iterable[str]], "dict[str, float] | None"]
"""Terms -> their IDF over the whole collection (the index's BM25 statistics), or None when
there is no collection to count in (the reader given a passage alone)."""


def features(question: str, candidates: list[Candidate], idf: Idf | None = None) -> np.ndarray:
    """The feature matrix (len(candidates) x len(FEATURES)). `idf`: the collection's IDF; without
    it the question's rare words are counted by their IDF over the candidates."""
    if not candidates:
        return np.zeros((0, len(FEATURES)))
    q_tokens = tokenize(question)
    docs = [tokenize(c.text) for c in candidates]
    bm25, local_idf = _bm25(q_tokens, docs)
    bm25_norm = bm25 / bm25.max() if bm25.max() > 0 else bm25
    total_idf = sum(local_idf.values()) or 1.0
    global_idf = (idf(set(q_tokens)) if idf is not None else None) or local_idf
    total_global = sum(global_idf.values()) or 1.0
    rarest = max(global_idf, key=lambda t: (global_idf[t], t)) if global_idf else None
    q_names = [n.lower() for n in names(question, sentence_starts=False)]
    q_numbers = set(_NUMBER.findall(question))
    kind = kind_of(question)
    asked = {w.lower() for w in _WORD.findall(question)}
    q_set = set(q_tokens)
    dense = np.array([c.dense for c in candidates])
    held = [set(d) for d in docs]
    coverage = np.array([sum(v for t, v in global_idf.items() if t in h) / total_global for h in held])
    typed = np.array([_type_phrase(kind, c.text, asked) for c in candidates])
    index = {(c.passage, c.position): i for i, c in enumerate(candidates)}
    by_passage: dict[int, list[int]] = {}
    for i, c in enumerate(candidates):
        by_passage.setdefault(c.passage, []).append(i)
    shown = list(by_passage)
    passage_bm25, _ = _bm25(q_tokens, [[t for i in by_passage[p] for t in docs[i]] for p in shown])
    top_bm25 = passage_bm25.max() or 1.0
    p_dense = {p: float(dense[by_passage[p]].max()) - float(dense.max()) for p in shown}
    p_bm25 = {p: float(v) / top_bm25 for p, v in zip(shown, passage_bm25)}

    def near(values: np.ndarray, i: int | None) -> float:
        return float(values[i]) if i is not None else 0.0

    rows = []
    for i, c in enumerate(candidates):
        text = c.text.lower()
        prev, nxt = index.get((c.passage, c.position - 1)), index.get((c.passage, c.position + 1))
        rows.append([
            c.dense,
            c.dense - dense.max(),
            bm25_norm[i],
            sum(local_idf[t] for t in local_idf if t in held[i]) / total_idf,
            coverage[i],
            float(rarest in held[i]) if rarest is not None else 0.0,
            sum(mentions(n, text) for n in q_names) / len(q_names) if q_names else 1.0,
            sum(n in c.text for n in q_numbers) / len(q_numbers) if q_numbers else 1.0,
            float(kind != "other"),
            typed[i],
            near(dense, prev), near(dense, nxt), near(bm25_norm, prev), near(bm25_norm, nxt),
            near(coverage, prev), near(coverage, nxt), near(typed, prev), near(typed, nxt),
            p_dense[c.passage],
            p_bm25[c.passage],
            math.log1p(len(docs[i])),
            math.log1p(len(held[i] - q_set)),
        ])
    return np.array(rows, dtype=float)


@lru_cache(maxsize=4)
def load_model(path: Path = MODEL_FILE) -> dict | None:
    """The fitted weights, or None when the file is absent or was fitted on other features."""
    try:
        model = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return model if tuple(model.get("features", ())) == FEATURES else None


def fused_scores(question: str, candidates: list[Candidate], model: dict | None = None,
                 x: np.ndarray | None = None, idf: Idf | None = None) -> np.ndarray:
    """The probability that each candidate holds the answer (the fitted model), or the dense
    cosine when no model is there. `x`: the features, when already computed."""
    model = model if model is not None else load_model()
    if model is None or not candidates:
        return np.array([c.dense for c in candidates])
    x = features(question, candidates, idf) if x is None else x
    mean, scale = np.array(model["mean"]), np.array(model["scale"])
    z = ((x - mean) / scale) @ np.array(model["weights"]) + model["bias"]
    return 1.0 / (1.0 + np.exp(-z))


REFUSAL_FEATURES = ("best", "margin", "dense", "type_phrase", "idf_coverage", "names_found",
                    "missing_names", "numbers_found", "best_idf_coverage", "absent_words", "absent_name",
                    "collection_idf", "best_collection_idf", "absent_idf", "rarest_held", "dense_gap_top")
"""Per question: the best fused score, its margin to the runner-up, the best dense cosine, whether
the best sentence holds a phrase of the asked type, how much of the question's rare words
and numbers it holds and of its names its passage holds, the best rare-word coverage
of any sentence, the share of the question's words and whether a word of one of its names that
no candidate sentence holds,
whether a name or number of the question is missing from every passage; then by the
collection's IDF: the best sentence's and the best coverage of the question's rare words, the
IDF-weighted share of them that no candidate holds, whether its rarest word is held by any, and
how far the chosen sentence's cosine is below the closest one."""


def refusal_features(question: str, candidates: list[Candidate], x: np.ndarray, fused: np.ndarray,
                     missing: bool, idf: Idf | None = None) -> list[float]:
    """The refusal classifier's row for one question, from its candidates' features and scores."""
    if not len(fused):
        return [0.0] * 6 + [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    col = {name: i for i, name in enumerate(FEATURES)}
    order = np.argsort(-fused, kind="stable")
    best = order[0]
    runner = fused[order[1]] if len(order) > 1 else 0.0
    typed = x[best, col["type_phrase"]] if x[best, col["typed_question"]] else 1.0
    held = set()
    for c in candidates:
        held.update(tokenize(c.text))
    asked = set(tokenize(question))
    absent = len(asked - held) / len(asked) if asked else 0.0
    name_words = {t for n in names(question, sentence_starts=False) for t in tokenize(n)}
    # names by the best sentence's passage: the answer sentence often says "he" or "the two
    # countries" for the name another sentence of the passage spells out
    q_names = [n.lower() for n in names(question, sentence_starts=False)]
    window = " ".join(c.text for c in candidates if c.passage == candidates[best].passage).lower()
    names_near = sum(mentions(n, window) for n in q_names) / len(q_names) if q_names else 1.0
    weights = (idf(asked) if idf is not None and asked else None) or {t: 1.0 for t in asked}
    total = sum(weights.values()) or 1.0
    absent_idf = sum(v for t, v in weights.items() if t not in held) / total
    return [float(fused[best]), float(fused[best] - runner), float(x[:, col["dense"]].max()),
            float(typed), float(x[best, col["idf_coverage"]]), names_near,
            float(missing), float(x[best, col["numbers"]]), float(x[:, col["idf_coverage"]].max()),
            absent, float(bool(name_words - held)),
            float(x[best, col["collection_idf"]]), float(x[:, col["collection_idf"]].max()),
            absent_idf, float(x[:, col["rarest_word"]].max()), float(x[best, col["dense_gap"]])]


def unanswerable_probability(row: list[float], model: dict) -> float:
    """The refusal classifier's probability that the documents do not answer the question."""
    r = model["refusal"]
    z = float(((np.array(row) - np.array(r["mean"])) / np.array(r["scale"])) @ np.array(r["weights"]))
    return 1.0 / (1.0 + math.exp(-(z + r["bias"])))
