"""The metrics, computed the standard way and checked against `ranx` in the tests:

- nDCG@10 as pytrec_eval / BEIR: linear gain (the graded qrels score), log2 discount, ideal
  ranking from the judged relevant documents; Recall@100 and MRR@10 over documents judged
  relevant (score > 0); the mean is over the queries that have judgments.
- Exact match and F1 as the official SQuAD v1.1 script: lower case, punctuation and articles
  removed, whitespace collapsed; the best score over the gold answers, averaged, times 100.

Pure functions of strings and scores: no model, no index, so any runner or benchmark can use them.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

Run = dict[str, dict[str, float]]
"""query id -> {doc id: score}"""
Qrels = dict[str, dict[str, int]]
"""query id -> {doc id: graded relevance}"""


# -- retrieval metrics ------------------------------------------------------------------------
def _ranked(scores: dict[str, float]) -> list[str]:
    # trec_eval order: score descending, ties by document id descending
    return [d for d, _ in sorted(scores.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)]


def ndcg_at_k(qrels: dict[str, int], scores: dict[str, float], k: int = 10) -> float:
    ranked = _ranked(scores)[:k]
    dcg = sum(qrels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked) if qrels.get(d, 0) > 0)
    ideal = sorted((r for r in qrels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(qrels: dict[str, int], scores: dict[str, float], k: int = 100) -> float:
    relevant = {d for d, r in qrels.items() if r > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(_ranked(scores)[:k])) / len(relevant)


def mrr_at_k(qrels: dict[str, int], scores: dict[str, float], k: int = 10) -> float:
    for i, d in enumerate(_ranked(scores)[:k]):
        if qrels.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def retrieval_metrics(qrels: Qrels, run: Run) -> dict[str, float]:
    """Mean nDCG@10, Recall@100 and MRR@10 over the queries with relevant judgments."""
    queries = [q for q, judged in qrels.items() if any(r > 0 for r in judged.values())]
    if not queries:
        raise ValueError("no query has a relevant document in the qrels")
    totals = {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
    for q in queries:
        scores = run.get(q, {})
        totals["ndcg@10"] += ndcg_at_k(qrels[q], scores, 10)
        totals["recall@100"] += recall_at_k(qrels[q], scores, 100)
        totals["mrr@10"] += mrr_at_k(qrels[q], scores, 10)
    return {name: value / len(queries) for name, value in totals.items()}


# -- SQuAD v1.1 metrics (the official evaluation script) ----------------------------------------
def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace."""

    def remove_articles(text: str) -> str:
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text: str) -> str:
        return " ".join(text.split())

    def remove_punc(text: str) -> str:
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def f1_score(prediction: str, ground_truth: str) -> float:
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(prediction_tokens)
    recall = num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def exact_match_score(prediction: str, ground_truth: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def metric_max_over_ground_truths(metric: Callable[[str, str], Any], prediction: str,
                                  ground_truths: Iterable[str]) -> float:
    return max(float(metric(prediction, gt)) for gt in ground_truths)


def squad_scores(predictions: dict[str, str], answers: dict[str, list[str]]) -> dict[str, float]:
    """EM and F1 (0-100) over the questions in `answers`; a missing prediction scores 0."""
    em = f1 = 0.0
    for qid, golds in answers.items():
        pred = predictions.get(qid, "")
        em += metric_max_over_ground_truths(exact_match_score, pred, golds)
        f1 += metric_max_over_ground_truths(f1_score, pred, golds)
    n = len(answers)
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f1 / n}


def contains_gold(answer: str, golds: Iterable[str]) -> bool:
    """Does the answer hold one of the gold answers (both SQuAD-normalised)? What a reader of a
    sentence answer sees, where EM/F1 punish the sentence's other words."""
    text = f" {normalize_answer(answer)} "
    return any(f" {normalize_answer(g)} " in text for g in golds if normalize_answer(g))


_CITATIONS = re.compile(r"\s*\[\d+\]")


def answer_text(answer: Any) -> str:
    """What is scored: the short answer where there is one, else the answer without citation
    markers; a refusal is an empty answer."""
    if answer.refused:
        return ""
    return answer.short or _CITATIONS.sub("", answer.text).strip()
