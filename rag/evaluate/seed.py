"""The project's own question set over seeds/, answerable and unanswerable (`rag eval seed`)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from .metrics import answer_text
from .runner import Result, _new_assistant


def evaluate_seed(questions_file: Path, corpus: Path, work: Path, embedder: Any = None,
                  **settings: Any) -> Result:
    """The project's question set: answerable questions are right when the answer contains one
    of the expected phrases; unanswerable ones must be refused ('hard' ones counted apart)."""
    questions = seed_questions(questions_file)
    assistant = _new_assistant(corpus, work / "index", embedder, **settings)
    counts = Counter()
    misses: list[str] = []
    answers: dict[str, str] = {}
    for item in questions:
        answer = assistant.ask(item["q"])
        answers[item["q"]] = answer_text(answer)
        group, ok = seed_check(item, answer)
        counts[group] += 1
        counts[group + " ok"] += ok
        if not ok:
            misses.append(item["q"])
    metrics = {g: 100.0 * counts[g + " ok"] / counts[g]
               for g in ("answerable", "unanswerable", "unanswerable (hard)") if counts[g]}
    return Result(Path(questions_file).name, metrics,
                  {"counts": dict(counts), "misses": misses, "generator": assistant.settings.generator,
                   "answers": answers})


def seed_questions(questions_file: Path) -> list[dict[str, Any]]:
    """The questions of a seed set file: {"q", "expect" (phrases; none: must be refused), "hard"}."""
    return json.loads(Path(questions_file).read_text(encoding="utf-8"))["questions"]


def seed_check(item: dict[str, Any], answer: Any) -> tuple[str, bool]:
    """(group, right): an answerable question is right when the answer holds one of its expected
    phrases, an unanswerable one ('hard' ones grouped apart) when it is refused."""
    if item["expect"]:
        ok = not answer.refused and any(e.lower() in answer.text.lower() for e in item["expect"])
        return "answerable", ok
    return ("unanswerable (hard)" if item.get("hard") else "unanswerable"), answer.refused
