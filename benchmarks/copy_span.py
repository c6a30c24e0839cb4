"""How the packaged SmolLM2 should pick the short answer of a what/which/why question: copying
a span of the best sentence under a decoding mask (rag/generate/copy.py) with a bonus on
ending the reply per word copied, or writing a few words freely (RAG_SHORT_ANSWERS=free).

Reading comprehension (the gold paragraph is the reader's only passage) on XQuAD questions
whose kind is "other" (not a number, date, name or place: those are the typed rules' job),
SQuAD F1 of what `rag eval qa` scores (the short answer, else the sentence). The bonus is
chosen on the tune half of the articles (`--half tune`, the default); report the held-out half
with `--half held-out`.

    python benchmarks/copy_span.py ../shared/datasets/xquad/xquad.en.json --bonus 0,1,2,4,6,8,12 \
        [--half tune] [--write docs/EVALUATION.md]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag import evaluate as ev  # noqa: E402
from rag.answer.span import kind_of  # noqa: E402
from rag.schema import Passage  # noqa: E402


def measure(items: list[ev.SquadItem], assistant, short_answers: str, bonus: float) -> dict[str, float]:
    reader = assistant.reader
    reader.copy = short_answers == "copy" and reader.generator is not None and reader.generator.copies
    reader.end_bonus = bonus
    f1, shorts, times = [], 0, []
    for item in items:
        passage = Passage(0, item.paragraph, item.title, "", None, item.context, 0, len(item.context), 1.0)
        started = time.perf_counter()
        answer = reader.run(item.question, [passage])
        times.append(time.perf_counter() - started)
        f1.append(ev.metric_max_over_ground_truths(ev.f1_score, ev.answer_text(answer), item.answers))
        shorts += bool(answer.short)
    times.sort()
    return {"f1": 100 * sum(f1) / len(f1), "short": 100 * shorts / len(items),
            "seconds": times[len(times) // 2]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("squad", type=Path)
    parser.add_argument("--bonus", default="0,1,2,4,6,8,12", help="end bonuses to try (logits per word)")
    parser.add_argument("--half", default="tune", choices=["tune", "held-out"])
    parser.add_argument("--limit", type=int, default=400,
                        help="questions spread over the file, before the split")
    parser.add_argument("--write", metavar="FILE.md")
    args = parser.parse_args()

    items = ev._spread(ev.load_squad(args.squad), args.limit)
    split = ev.halves_of(ev.load_squad(args.squad))
    items = [i for i in items if split[i.title] == args.half and kind_of(i.question) == "other"]
    with tempfile.TemporaryDirectory() as work:
        assistant = ev._new_assistant(Path(work) / "corpus", Path(work) / "index")
        rows = [("free (a few words of its own, checked)", measure(items, assistant, "free", 0.0))]
        for bonus in (float(b) for b in args.bonus.split(",")):
            rows.append((f"copy, end bonus {bonus:g}", measure(items, assistant, "copy", bonus)))
            print(rows[-1], flush=True)
    lines = [f"{len(items)} what/which/why questions of XQuAD's {args.half} half (of {args.limit} spread "
             "over the file), gold paragraph given; SQuAD F1 of the short answer (else the sentence).",
             "", "| short answer | F1 | questions with a short answer (%) | median s |", "|---|---|---|---|"]
    lines += [f"| {name} | {m['f1']:.1f} | {m['short']:.0f} | {m['seconds']:.2f} |" for name, m in rows]
    lines += ["", "Command: `python benchmarks/copy_span.py ../shared/datasets/xquad/xquad.en.json "
              f"--bonus {args.bonus} --half {args.half} --write docs/EVALUATION.md`"]
    body = "\n".join(lines)
    print(body)
    if args.write:
        title = f"### Short answers by copying ({args.half} half)\n\n"
        ev.write_section(Path(args.write), f"copy-span-{args.half}", title + body)


if __name__ == "__main__":
    main()
