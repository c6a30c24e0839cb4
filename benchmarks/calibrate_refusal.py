"""Calibrate the refusal threshold (RAG_MIN_SCORE) on data instead of by hand.

Each sampled XQuAD question is asked twice of the reader alone: once with its own paragraph
(it should answer) and once with the most similar paragraph of a *different* article (it should
refuse: the documents do not hold the answer, but something near-topic is retrieved, as in real
use). The reader refuses when the best sentence's similarity is below the threshold or the
question names something no passage mentions. The threshold that maximises balanced accuracy
(mean of the answer rate on the first set and the refusal rate on the second) is reported next
to the current default, and written into docs/EVALUATION.md with --write.

    python benchmarks/calibrate_refusal.py ../shared/datasets/xquad/xquad.en.json --questions 400 --write
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import evalkit
import numpy as np

from rag.answer.reader import missing_names
from rag.config import Settings
from rag.evaluate import _new_assistant, load_squad
from rag.schema import Passage


def best_score(reader, question: str, passage: Passage) -> tuple[float, bool]:
    ranked = reader.select(question, [passage])
    return (ranked[0].score if ranked else 0.0), bool(missing_names(question, [passage]))


def sweep(pos: np.ndarray, neg: np.ndarray, pos_names: np.ndarray, neg_names: np.ndarray,
          threshold: float) -> tuple[float, float]:
    answered = np.mean((pos >= threshold) & ~pos_names)
    refused = np.mean((neg < threshold) | neg_names)
    return float(answered), float(refused)


def main() -> int:
    parser = evalkit.parser(__doc__, "squad_file")
    parser.add_argument("--questions", type=int, default=400, help="questions sampled evenly over the file")
    args = parser.parse_args()

    items = load_squad(args.squad_file)
    step = max(1, len(items) // args.questions)
    sample = items[::step][: args.questions]
    paragraphs: dict[str, tuple[str, str]] = {}
    for item in items:
        paragraphs.setdefault(item.paragraph, (item.title, item.context))
    with tempfile.TemporaryDirectory() as work:
        assistant = _new_assistant(Path(work) / "corpus", Path(work) / "index", generator="extractive")
        reader, embedder = assistant.reader, assistant.embedder
        keys = list(paragraphs)
        vectors = embedder.encode([paragraphs[k][1] for k in keys])
        questions = embedder.encode([item.question for item in sample])
        pos, neg, pos_names, neg_names = [], [], [], []
        for item, qv in zip(sample, questions):
            title, context = paragraphs[item.paragraph]
            own = Passage(0, item.paragraph, title, "", None, context, 0, len(context), 1.0)
            sims = vectors @ qv
            for i in np.argsort(-sims):  # the nearest paragraph of another article: a hard negative
                if paragraphs[keys[i]][0] != title:
                    other_title, other = paragraphs[keys[i]]
                    break
            near = Passage(0, keys[i], other_title, "", None, other, 0, len(other), float(sims[i]))
            s, n = best_score(reader, item.question, own)
            pos.append(s)
            pos_names.append(n)
            s, n = best_score(reader, item.question, near)
            neg.append(s)
            neg_names.append(n)
    pos_a, neg_a = np.array(pos), np.array(neg)
    pn, nn = np.array(pos_names), np.array(neg_names)
    grid = np.round(np.arange(0.10, 0.70, 0.01), 2)
    results = [(t, *sweep(pos_a, neg_a, pn, nn, t)) for t in grid]
    best = max(results, key=lambda r: (r[1] + r[2]) / 2)
    current = Settings().min_score
    cur = (current, *sweep(pos_a, neg_a, pn, nn, current))
    rows = [("current default", cur), ("calibrated (best balanced accuracy)", best)]
    lines = [
        "### Refusal threshold, calibrated on XQuAD",
        "",
        f"{len(sample)} XQuAD questions, each asked with its own paragraph (should answer) and with the "
        "most similar paragraph of another article (should refuse). The name check refuses "
        f"{100 * nn.mean():.1f}% of the second set by itself and wrongly refuses {100 * pn.mean():.1f}% "
        "of the first.",
        "",
        "| threshold | value | answered (own paragraph) | refused (other article) | balanced accuracy |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, (t, answered, refused) in rows:
        lines.append(f"| {label} | {t:.2f} | {100 * answered:.1f}% | {100 * refused:.1f}% | "
                     f"{50 * (answered + refused):.1f}% |")
    command = f"python benchmarks/calibrate_refusal.py {args.squad_file} --questions {args.questions}"
    return evalkit.finish(lines, command, "refusal", args.write)


if __name__ == "__main__":
    sys.exit(main())
