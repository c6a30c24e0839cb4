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
    questions = json.loads(Path(questions_file).read_text(encoding="utf-8"))["questions"]
    assistant = _new_assistant(corpus, work / "index", embedder, **settings)
    counts = Counter()
    misses: list[str] = []
    answers: dict[str, str] = {}
    for item in questions:
        answer = assistant.ask(item["q"])
        answers[item["q"]] = answer_text(answer)
        if item["expect"]:
            ok = not answer.refused and any(e.lower() in answer.text.lower() for e in item["expect"])
            group = "answerable"
        else:
            ok = answer.refused
            group = "unanswerable (hard)" if item.get("hard") else "unanswerable"
        counts[group] += 1
        counts[group + " ok"] += ok
        if not ok:
            misses.append(item["q"])
    metrics = {g: 100.0 * counts[g + " ok"] / counts[g]
               for g in ("answerable", "unanswerable", "unanswerable (hard)") if counts[g]}
    return Result(Path(questions_file).name, metrics,
                  {"counts": dict(counts), "misses": misses, "generator": assistant.settings.generator,
                   "answers": answers})
