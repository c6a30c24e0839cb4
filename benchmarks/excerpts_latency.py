"""Where the excerpts style's time goes, per model: the seed questions answered through
`Assistant.ask` with each steps timed (retrieval and ranking, the model reading the excerpts and
writing its reply, the judge's one forward pass), and the prompt's length in tokens, so the
reading speed of the model on this CPU can be read off.

    python benchmarks/excerpts_latency.py                          # both Qwen models, 2 rounds
    python benchmarks/excerpts_latency.py --model qwen2.5-coder-1.5b-instruct --threads 1,2
    python benchmarks/excerpts_latency.py --write                  # docs/PERFORMANCE.md

Medians over the rounds; the first round warms the caches (the model's pages, llama.cpp's
prefix of the system turn) and is not counted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time

import perfkit
from perfkit import ROOT

from rag import Assistant
from rag.answer.judge import OWN_REPLY

MODELS = ("qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-0.5b-instruct")


def measure(model: str, threads: int, rounds: int, questions: list[str]) -> dict[str, float]:
    assistant = Assistant(generator=model, answer_style="excerpts", threads=threads,
                          index_dir=tempfile.mkdtemp(prefix="excerpts-latency-"))
    reader, generator = assistant.reader, assistant.generator
    steps: dict[str, list[float]] = {"rank": [], "reply": [], "judge": [], "answer": [], "tokens": []}
    for round_no in range(rounds + 1):
        for question in questions:  # as a user gets it: after another question
            started = time.perf_counter()
            assistant.ask(question)
            if round_no:
                steps["answer"].append(time.perf_counter() - started)
        for question in questions:  # step by step, again after another question
            started = time.perf_counter()
            passages = assistant.search(question)
            ranked, _, _ = reader.ranker.rank(question, passages)
            ranked_at = time.perf_counter()
            excerpts = reader.chosen(ranked)
            messages = reader.messages(question, excerpts)
            reply = generator.generate(messages, reader.max_new_tokens, one_line=True)
            replied_at = time.perf_counter()
            generator.yes_probability(messages + [{"role": "assistant", "content": reply},
                                                  {"role": "user", "content": OWN_REPLY}])
            judged_at = time.perf_counter()
            if round_no:
                steps["rank"].append(ranked_at - started)
                steps["reply"].append(replied_at - ranked_at)
                steps["judge"].append(judged_at - replied_at)
                steps["tokens"].append(len(generator.prompt(messages)))
    return {name: statistics.median(values) for name, values in steps.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", help="a catalogue model (default: both)")
    parser.add_argument("--threads", default="2", help="thread counts to compare, e.g. 1,2")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="update docs/PERFORMANCE.md")
    args = parser.parse_args()
    spec = json.loads((ROOT / "benchmarks" / "seed_questions.json").read_text())
    questions = [q["q"] for q in spec["questions"] if q["expect"]]
    rows = []
    for model in args.model or MODELS:
        for threads in (int(t) for t in args.threads.split(",")):
            figures = measure(model, threads, args.rounds, questions)
            rows.append(f"| {model} | {threads} | {figures['tokens']:.0f} | {figures['rank']:.2f} s | "
                        f"{figures['reply']:.2f} s | {figures['judge']:.2f} s | {figures['answer']:.2f} s |")
            print(rows[-1], flush=True)
    lines = [
        "## The excerpts style: where the time goes",
        "",
        f"The {len(questions)} answerable seed questions, medians over {args.rounds} rounds after a "
        "warm-up: retrieval and ranking; the model reading its prompt (the system turn, three "
        "excerpts and the question: tokens in the third column) and writing its few words; the "
        "judge's one forward pass over its question (the excerpts are read already); the whole "
        "`Assistant.ask`. Each question follows another one, so llama.cpp's prefix cache holds "
        "only the system turn; the questions repeat over the rounds, so retrieval's embeddings "
        "are cached (a new question adds the embedding of one question, milliseconds).",
        "",
        "| model | threads | prompt tokens | retrieval + ranking | read + reply | judge | whole answer |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Measured {time.strftime('%Y-%m-%d')} with `python benchmarks/excerpts_latency.py"
        f"{' --threads ' + args.threads if args.threads != '2' else ''}`. {perfkit.load_note()}",
    ]
    report = "\n".join(lines)
    print(report)
    if args.write:
        perfkit.write_section("excerpts-latency", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
