"""Fit the excerpts style's answer-or-refuse decision (rag/answer/excerpts.py) for one real
model, on the tune half of XQuAD's articles, and measure it on the held-out half.

Every question is asked three ways, end to end over all of XQuAD's paragraphs: as it is
(answerable), with its own paragraph taken out of the retrieved passages, and with its key name
or number swapped for another of the article's (both unanswerable; rag.evaluate builds them).
For each, the model reads the reader's best sentences and replies (its real output, greedy); the
signals (its tokens' log-probabilities, its yes/no judgement of its own reply, the best
sentence's cosine and coverage, whether the reply is the excerpts' own words) are kept in
DIR/excerpts-<model>.jsonl, so a second run only fits. A logistic regression over them
separates answerable from unanswerable on the tune half; its threshold is the highest that
refuses at most 5 % of the tune half's answerable questions. Reported on both halves: refused,
false refusals, and, for the answerable ones, how often the answer holds the gold text and the
short answer's F1 (with and without the decision).

    python benchmarks/fit_excerpts.py ../shared/datasets/xquad/xquad.en.json \\
        --model qwen2.5-coder-1.5b-instruct --work DIR [--limit 400] [--write]

--write stores the decision in rag/answer/decisions.json under the model's name.

With --compact-judge the same questions go through the compact path (the packaged reader's own
refusals first), the model judges whether the best sentence answers (rag/answer/judge.py), and
the judge's threshold is chosen by the same 5 % rule (RAG_JUDGE uses it):

    python benchmarks/fit_excerpts.py ../shared/datasets/xquad/xquad.en.json \
        --model qwen2.5-coder-1.5b-instruct --work DIR --compact-judge [--write]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import evalkit  # noqa: F401  (puts the checkout on sys.path, offline)
import numpy as np

from rag import evaluate as ev
from rag.answer.excerpts import ExcerptReader, Reading, ground
from rag.answer.judge import DECISIONS, SIGNALS, answer_probability, store
from rag.answer.reader import missing_names
from rag.generate import make_generator

ROOT = Path(__file__).resolve().parents[1]
FALSE_REFUSALS = 0.05


def reading(reader: ExcerptReader, question: str, passages: list, stored: dict | None = None
            ) -> tuple[Reading | None, float]:
    """The model's reading of the best sentences (None when the reader refuses before asking:
    no sentence, or a name of the question that no passage mentions), and its seconds. A stored
    reading keeps the model's reply, confidence and judgement and is graded again (`ground`)."""
    started = time.perf_counter()
    ranked, _, _ = reader.ranker.rank(question, passages)
    if not ranked or missing_names(question, passages):
        return None, time.perf_counter() - started
    if stored is None:
        return reader.read(question, ranked), time.perf_counter() - started
    again = Reading(reader.chosen(ranked), reply=stored["reply"], logprobs=stored["logprobs"],
                    judge=None if stored["unknown"] else stored["signals"]["judge"],
                    unknown=stored["unknown"])
    return ground(question, again), stored["seconds"]


def record(kind: str, item: ev.SquadItem, question: str, result: Reading | None, seconds: float,
           half: str) -> dict:
    row = {"id": item.id, "kind": kind, "half": half, "question": question, "answers": item.answers,
           "seconds": round(seconds, 3), "asked": result is not None}
    if result is not None:
        text = " ".join(e.text for e in result.holding)
        row.update(reply=result.reply, phrase=result.phrase, unknown=result.unknown,
                   signals=result.signals, logprobs=[round(x, 3) for x in result.logprobs],
                   holds_gold=ev.contains_gold(text, item.answers),
                   f1=ev.metric_max_over_ground_truths(ev.f1_score, result.phrase, item.answers))
    return row


def cases(args: argparse.Namespace) -> Iterator[tuple[Any, ev.SquadItem, str, str, str, list]]:
    """(assistant, item, half, kind, question, passages) for each question of the chosen halves,
    asked as it is, with its own paragraph removed, and with its key name or number swapped."""
    every = ev.load_squad(args.squad)
    items = ev._spread(every, args.limit)
    split = ev.halves_of(every)
    paragraphs = ev.paragraphs_of(every)
    articles = ev.articles_of(paragraphs)
    assistant, mapping = ev._assistant(args.work, paragraphs, False, generator="extractive")
    k = assistant.settings.top_k
    for n, item in enumerate(items):
        half = split[item.title]
        if half not in args.halves.split(","):
            continue
        deeper = assistant.retriever.run(item.question, 3 * k)
        yield assistant, item, half, "answerable", item.question, deeper[:k]
        yield (assistant, item, half, "removed", item.question,
               [p for p in deeper if mapping.get(p.doc_id) != item.paragraph][:k])
        swapped = ev.swapped_question(item, articles[item.title])
        if swapped:
            yield assistant, item, half, "swapped", swapped, assistant.retriever.run(swapped, k)
        if n % 20 == 0:
            print(f"{n}/{len(items)} questions", file=sys.stderr)


def collect(args: argparse.Namespace, path: Path) -> list[dict]:
    """Ask every question (three ways); each result is one JSON line in `path`. Questions
    answered by an earlier run are graded again from their stored reply, not asked again."""
    fresh = path.with_suffix(".tmp")  # an interrupted run's rows count too
    stored = {(r["id"], r["kind"]): r for f in (path, fresh) if f.exists() for r in map(json.loads, f.open())}
    reader = None
    rows: list[dict] = []
    with fresh.open("w") as out:
        for assistant, item, half, kind, question, passages in cases(args):
            if reader is None:
                generator = make_generator(assistant.settings.replace(generator=args.model))
                reader = ExcerptReader(assistant.reader, generator, excerpts=args.excerpts, model={})
            before = stored.get((item.id, kind))
            result, seconds = reading(reader, question, passages,
                                      before if before and before["asked"] else None)
            rows.append(record(kind, item, question, result, seconds, half))
            out.write(json.dumps(rows[-1]) + "\n")
            out.flush()
    fresh.replace(path)
    return rows


def highest_threshold(scores: list[float], answerable: int, lost: int) -> float:
    """The highest threshold on the answerable questions' `scores` that refuses at most
    FALSE_REFUSALS of all `answerable` ones, the `lost` ones (refused before any score) counted
    first; past that share already, the highest that refuses no more of them."""
    ordered = sorted(scores)
    allowed = max(0, int(FALSE_REFUSALS * answerable) - lost)
    return float(ordered[allowed]) if allowed < len(ordered) else 0.0


def compact_judge(args: argparse.Namespace) -> int:
    """The compact path with the model as its judge: the packaged reader's own refusals, then
    the judge's P(yes) for the best sentence of the rest; the threshold by the same 5 % rule."""
    path = args.work / f"compact-judge-{args.model.replace('/', '_')}.jsonl"
    rows: list[dict] = [json.loads(line) for line in path.open()] if path.exists() else []
    if not rows:
        reader = None
        with path.open("w") as out:
            for assistant, item, half, kind, question, passages in cases(args):
                if reader is None:
                    judge = make_generator(assistant.settings.replace(generator=args.model))
                    reader = assistant.reader
                    reader.judge = judge
                ranked, _, refuse = reader.rank(question, passages)
                row = {"id": item.id, "kind": kind, "half": half, "refused": bool(refuse or not ranked)}
                if not row["refused"]:
                    row["refused"] = reader.weak(question, ranked)
                    row["judge"] = None if row["refused"] else reader.judgement(question, ranked[0])
                rows.append(row)
                out.write(json.dumps(row) + "\n")
    tune = [r for r in rows if r["half"] == "tune"]
    answerable = [r for r in tune if r["kind"] == "answerable"]
    lost = sum(r["refused"] for r in answerable)
    threshold = highest_threshold(
        [r["judge"] for r in answerable if not r["refused"] and r["judge"] is not None],
        len(answerable), lost)
    print(f"compact path judged by {args.model}: threshold {threshold:.3f}")
    for half in ("tune", "held-out"):
        part = [r for r in rows if r["half"] == half]
        if not part:
            continue
        for label, cut in (("without judge", -1.0), ("with judge", threshold)):
            def refused(r: dict, cut: float = cut) -> bool:
                return r["refused"] or (r.get("judge") is not None and r["judge"] < cut)
            ans = [refused(r) for r in part if r["kind"] == "answerable"]
            una = [refused(r) for r in part if r["kind"] != "answerable"]
            print(f"{half:8s} {label:13s} unanswerables refused % {100 * np.mean(una):.1f}, "
                  f"false refusals % {100 * np.mean(ans):.1f} ({len(ans)} answerable)")
    if args.write:
        store("compact-judge", args.model, {"threshold": threshold, "fitted_on": (
            f"tune half of {args.squad.name}: {len(answerable)} answerable questions and their "
            "constructed unanswerables; benchmarks/fit_excerpts.py --compact-judge")})
        print(f"wrote {DECISIONS.relative_to(ROOT)}", file=sys.stderr)
    return 0


def matrix(rows: list[dict]) -> np.ndarray:
    return np.array([[r["signals"][s] for s in SIGNALS] for r in rows])


def report(rows: list[dict], decide) -> dict[str, float]:
    """Refusals and answer quality when `decide(row)` says answer."""
    answerable = [r for r in rows if r["kind"] == "answerable"]
    unanswerable = [r for r in rows if r["kind"] != "answerable"]
    answered = {id(r): r["asked"] and decide(r) for r in rows}
    return {
        "questions": len(answerable),
        "unanswerables refused %": 100 * np.mean([not answered[id(r)] for r in unanswerable]),
        "false refusals %": 100 * np.mean([not answered[id(r)] for r in answerable]),
        "answer holds gold %": 100 * np.mean([answered[id(r)] and r["holds_gold"] for r in answerable]),
        "short answer F1": 100 * np.mean([r["f1"] if answered[id(r)] else 0.0 for r in answerable]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("squad", type=Path)
    parser.add_argument("--model", required=True, help="a generator setting (a catalogue name)")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=400, help="questions spread over the file")
    parser.add_argument("--excerpts", type=int, default=3, help="sentences the model reads")
    parser.add_argument("--halves", default="tune", help="tune, or tune,held-out: which halves to ask")
    parser.add_argument("--write", action="store_true", help="store rag/answer/decisions.json")
    parser.add_argument("--compact-judge", action="store_true",
                        help="fit the threshold of the model judging the compact path's answers instead")
    args = parser.parse_args()
    if args.compact_judge:
        return compact_judge(args)
    from sklearn.linear_model import LogisticRegression

    path = args.work / f"excerpts-{args.model.replace('/', '_')}-{args.excerpts}.jsonl"
    rows = [r for r in collect(args, path) if r["kind"] in ("answerable", "removed", "swapped")]
    tune = [r for r in rows if r["half"] == "tune" and r["asked"] and not r["unknown"] and r["phrase"]]
    x = matrix(tune)
    y = np.array([r["kind"] == "answerable" for r in tune], dtype=int)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    clf = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000).fit((x - mean) / scale, y)
    model = {"signals": list(SIGNALS), "mean": mean.tolist(), "scale": scale.tolist(),
             "weights": clf.coef_[0].tolist(), "bias": float(clf.intercept_[0]), "threshold": 0.0}
    tune_answerable = [r for r in rows if r["half"] == "tune" and r["kind"] == "answerable"]
    # those the model itself refused or could not quote are lost before any threshold
    lost = sum(1 for r in tune_answerable if not (r["asked"] and not r["unknown"] and r["phrase"]))
    model["threshold"] = highest_threshold(
        [answer_probability(r["signals"], model) for r in tune_answerable
         if r["asked"] and not r["unknown"] and r["phrase"]], len(tune_answerable), lost)
    model["fitted_on"] = (f"tune half of {args.squad.name}: {len(tune_answerable)} answerable questions "
                          f"and their constructed unanswerables, {args.excerpts} excerpts; "
                          "benchmarks/fit_excerpts.py")

    def fitted(r: dict) -> bool:
        return not r["unknown"] and bool(r["phrase"]) and \
            answer_probability(r["signals"], model) >= model["threshold"]

    def unfitted(r: dict) -> bool:
        return not r["unknown"] and bool(r["phrase"]) and r["signals"]["judge"] >= 0.5

    def always(r: dict) -> bool:
        return not r["unknown"] and bool(r["phrase"])

    print(f"model {args.model}, {args.excerpts} excerpts; weights "
          + ", ".join(f"{s} {w:+.2f}" for s, w in zip(SIGNALS, model["weights"])))
    for half in ("tune", "held-out"):
        part = [r for r in rows if r["half"] == half]
        if not part:
            continue
        for label, decide in (("reply only", always), ("judge >= 0.5", unfitted), ("fitted", fitted)):
            figures = report(part, decide)
            print(f"{half:8s} {label:13s} " + ", ".join(f"{k} {v:.1f}" for k, v in figures.items()))
    seconds = sorted(r["seconds"] for r in rows if r["asked"])
    print(f"median seconds per reading {seconds[len(seconds) // 2]:.2f} (model reply and judge)")
    if args.write:
        store("excerpts", args.model, model)
        print(f"wrote {DECISIONS.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
