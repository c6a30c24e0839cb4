"""Question answering on a SQuAD file, on both halves of its articles: reading comprehension,
end to end, and the refusal of constructed unanswerables (`rag eval qa`)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from .data import SquadItem, _spread, articles_of, halves_of, load_squad, paragraphs_of, swapped_question
from .metrics import (
    _CITATIONS,
    answer_text,
    contains_gold,
    exact_match_score,
    f1_score,
    metric_max_over_ground_truths,
)
from .runner import Result, _assistant, _bar, _new_assistant


def _halves(items: list[SquadItem], per_item: dict[str, dict[str, float]],
            split: dict[str, str]) -> dict[str, dict[str, float]]:
    """Mean of each per-question measure over the tune half, the held-out half and all."""
    groups: dict[str, list[str]] = {"tune": [], "held-out": [], "all": []}
    for item in items:
        groups[split[item.title]].append(item.id)
        groups["all"].append(item.id)
    out: dict[str, dict[str, float]] = {}
    for name, ids in groups.items():
        if ids:
            keys = per_item[ids[0]].keys()
            out[name] = {k: 100.0 * sum(per_item[i][k] for i in ids) / len(ids) for k in keys}
            out[name]["questions"] = len(ids)
    return out


def evaluate_qa(squad_file: Path, work: Path, mode: str = "rc", limit: int | None = None,
                progress: bool = True, embedder: Any = None, **settings: Any) -> Result:
    """SQuAD EM/F1, and the share of answers holding the gold text, on the tune half and the
    held-out half of the articles (`split_articles`). `rc`: the reader gets the gold paragraph
    as its only passage. `e2e`: every paragraph is indexed and the assistant retrieves and
    answers."""
    if mode not in ("rc", "e2e"):
        raise ValueError("mode is rc or e2e")
    items = _spread(load_squad(squad_file), limit)
    paragraphs = paragraphs_of(load_squad(squad_file))
    if mode == "e2e":
        assistant, mapping = _assistant(work, paragraphs, progress, embedder, **settings)
    else:  # no index: the reader alone
        assistant, mapping = _new_assistant(work / "corpus", work / "index", embedder, **settings), {}
    predictions: dict[str, str] = {}
    per_item: dict[str, dict[str, float]] = {}
    times: list[float] = []
    bar = _bar(progress, len(items), f"answering ({mode})")
    for item in items:
        started = time.perf_counter()
        if mode == "rc":
            answer = assistant.reader.run(item.question, [gold_passage(item)])
        else:
            answer = assistant.ask(item.question)
        times.append(time.perf_counter() - started)
        predictions[item.id] = answer_text(answer)
        scores = qa_scores(item, answer)
        if mode == "e2e":
            scores[f"gold paragraph in top {assistant.settings.top_k}"] = float(
                gold_retrieved(item, answer, mapping))
        per_item[item.id] = scores
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    halves = _halves(items, per_item, halves_of(load_squad(squad_file)))
    times.sort()
    return Result(
        Path(squad_file).name,
        {k: v for k, v in halves["held-out" if "held-out" in halves else "all"].items() if k != "questions"},
        {"questions": len(items), "paragraphs": len(paragraphs), "mode": mode, "halves": halves,
         "generator": assistant.settings.generator, "median_seconds": times[len(times) // 2],
         "predictions": predictions},
    )


def gold_passage(item: SquadItem) -> Any:
    """The question's own paragraph as the reader's only passage: reading comprehension."""
    from ..schema import Passage

    return Passage(0, item.paragraph, item.title, "", None, item.context, 0, len(item.context), 1.0)


def qa_scores(item: SquadItem, answer: Any) -> dict[str, float]:
    """One answer's SQuAD EM and F1 (of what `answer_text` scores), whether its text holds the
    gold answer, and whether it was refused: 0 or 1 each, averaged into the tables."""
    pred = answer_text(answer)
    full = "" if answer.refused else _CITATIONS.sub("", answer.text)
    return {"exact_match": metric_max_over_ground_truths(exact_match_score, pred, item.answers),
            "f1": metric_max_over_ground_truths(f1_score, pred, item.answers),
            "answer holds gold": float(contains_gold(full, item.answers)),
            "refused": float(answer.refused)}


def gold_retrieved(item: SquadItem, answer: Any, mapping: dict[str, str]) -> bool:
    """Was the question's own paragraph among the passages the answer was read from?"""
    return any(mapping.get(p.doc_id) == item.paragraph for p in answer.sources)


def refused_without_own_paragraph(assistant: Any, mapping: dict[str, str], item: SquadItem) -> bool:
    """Asked with its own paragraph's chunks dropped from a deeper search, as if that paragraph
    were not indexed: on topic, but nothing answers it any more. Is it refused?"""
    k = assistant.settings.top_k
    deeper = assistant.retriever.run(item.question, 3 * k)
    without = [p for p in deeper if mapping.get(p.doc_id) != item.paragraph][:k]
    return assistant.reader.run(item.question, without).refused


def evaluate_unanswerable(squad_file: Path, work: Path, limit: int | None = None, progress: bool = True,
                          embedder: Any = None, **settings: Any) -> Result:
    """Refusal of constructed unanswerables, end to end over every paragraph: each question
    asked (1) as it is (it should be answered: a refusal is a false refusal), (2) with its own
    paragraph taken out of the results (its chunks are dropped from a deeper search, as if it
    were not indexed: on topic, no answer), and (3) with its key name or number swapped
    (`swapped_question`). Reported on both halves of the articles."""
    items = _spread(load_squad(squad_file), limit)
    paragraphs = paragraphs_of(load_squad(squad_file))
    articles = articles_of(paragraphs)
    assistant, mapping = _assistant(work, paragraphs, progress, embedder, **settings)
    per_item: dict[str, dict[str, float]] = {}
    swapped_counts = Counter()
    examples: list[tuple[str, str, bool]] = []
    times: list[float] = []
    bar = _bar(progress, len(items), "answering (unanswerable)")
    for item in items:
        started = time.perf_counter()
        answered = assistant.ask(item.question)
        times.append(time.perf_counter() - started)
        removed = refused_without_own_paragraph(assistant, mapping, item)
        row = {"false refusals (answerable)": float(answered.refused),
               "refused: own paragraph removed": float(removed)}
        swapped = swapped_question(item, articles[item.title])
        if swapped is not None:
            result = assistant.ask(swapped)
            row["refused: name or number swapped"] = float(result.refused)
            swapped_counts[item.id] = 1
            if len(examples) < 5:
                examples.append((item.question, swapped, result.refused))
        per_item[item.id] = row
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    halves: dict[str, dict[str, float]] = {}
    split = halves_of(load_squad(squad_file))
    for name in ("tune", "held-out", "all"):
        ids = [i.id for i in items if name == "all" or split[i.title] == name]
        if not ids:
            continue
        rows = [per_item[i] for i in ids]
        swaps = [r["refused: name or number swapped"] for r in rows if "refused: name or number swapped" in r]
        unanswerable = [r["refused: own paragraph removed"] for r in rows] + swaps

        def share(key: str, rows: list[dict[str, float]] = rows) -> float:
            return 100.0 * sum(r[key] for r in rows) / len(rows)

        halves[name] = {
            "refused (all unanswerables)": 100.0 * sum(unanswerable) / len(unanswerable),
            "refused: own paragraph removed": share("refused: own paragraph removed"),
            "refused: name or number swapped": 100.0 * sum(swaps) / len(swaps) if swaps else float("nan"),
            "false refusals (answerable)": share("false refusals (answerable)"),
            "questions": len(ids), "swapped": len(swaps),
        }
    times.sort()
    return Result(Path(squad_file).name,
                  {k: v for k, v in halves["held-out" if "held-out" in halves else "all"].items()
                   if k not in ("questions", "swapped")},
                  {"questions": len(items), "paragraphs": len(paragraphs), "mode": "unanswerable",
                   "halves": halves, "generator": assistant.settings.generator,
                   "median_seconds": times[len(times) // 2], "examples": examples})
