"""Core figures: cold start of `rag ask`, answer latency over the seed question set, and
indexing throughput against raw `SentenceTransformer.encode` on the same chunks, same run.

    python benchmarks/core.py                                  # seed set + 300 SciFact abstracts
    python benchmarks/core.py --scifact ../shared/datasets/scifact --docs 500 --readme

Timings are medians of repeated runs (the machine is shared and noisy); throughput is
compared as a ratio measured in one process.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _env(corpus: Path, index: Path, generator: str | None = None) -> dict[str, str]:
    env = dict(os.environ, RAG_CORPUS_DIR=str(corpus), RAG_INDEX_DIR=str(index))
    if generator:
        env["RAG_GENERATOR"] = generator
    return env


def cold_start(corpus: Path, index: Path, runs: int, generator: str | None = None) -> list[float]:
    env = _env(corpus, index, generator)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "rag.cli", "ask", "Why did Putin travel to Beijing?"],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
        )
        times.append(time.perf_counter() - t)
        if out.returncode != 0 or "Olympics" not in out.stdout:
            raise SystemExit(f"rag ask failed: {out.stdout}\n{out.stderr}")
    return times


STEPS = """
import json, time
t0 = time.perf_counter()
steps = {}
def lap(name):
    global t0
    t = time.perf_counter()
    steps[name] = t - t0
    t0 = t
from rag import Assistant
lap("python, import rag")
a = Assistant()
_ = a.embedder
lap("embedding model (OpenVINO, cached)")
_ = a.index_data
lap("index load and library check")
a.retriever.run("Why did Putin travel to Beijing?", 4)
lap("first retrieval")
_ = a.generator
lap("generator (tokenizer, weights)")
a.ask("Why did Putin travel to Beijing?")
lap("the answer (reading, generating)")
print(json.dumps(steps))
"""


def cold_steps(corpus: Path, index: Path, runs: int) -> dict[str, float]:
    """Where a cold start's time goes: each step's median over fresh processes."""
    env = _env(corpus, index)
    runs_out = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", STEPS], capture_output=True, text=True, env=env,
                             cwd=ROOT, check=True)
        runs_out.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {k: statistics.median(r[k] for r in runs_out) for k in runs_out[0]}


def answer_latency(assistant, questions: list[dict], rounds: int) -> tuple[list[float], int, int]:
    times, right, refused_ok = [], 0, 0
    assistant.ask(questions[0]["q"])  # warm-up: models loaded, index read
    for r in range(rounds):
        for item in questions:
            t = time.perf_counter()
            answer = assistant.ask(item["q"])
            times.append(time.perf_counter() - t)
            if r == 0 and item["expect"]:
                right += any(e.lower() in answer.text.lower() for e in item["expect"])
            elif r == 0:
                refused_ok += answer.refused
    return times, right, refused_ok


def throughput(scifact: Path, n_docs: int, threads: int) -> dict[str, float]:
    from rag import Assistant, Settings

    work = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    corpus = work / "corpus"
    corpus.mkdir()
    with open(scifact / "corpus.jsonl") as fh:
        for i, line in enumerate(fh):
            if i >= n_docs:
                break
            row = json.loads(line)
            name = re.sub(r"\W+", "_", row["_id"])
            (corpus / f"{name}.txt").write_text(f"{row['title']}\n\n{row['text']}")
    assistant = Assistant(
        Settings.from_env(
            corpus_dir=corpus, index_dir=work / "index", generator="extractive", threads=threads
        )
    )
    embedder = assistant.embedder
    t = time.perf_counter()
    report = assistant.refresh()
    pipeline_s = time.perf_counter() - t
    texts = [c.text for c in assistant.index_data.chunks.values()]
    t = time.perf_counter()
    embedder.encode(texts)  # the configured backend alone, on the same chunks
    raw_s = time.perf_counter() - t
    return {
        "docs": n_docs,
        "chunks": report.chunks_embedded,
        "pipeline_chunks_per_s": report.chunks_embedded / pipeline_s,
        "encode_chunks_per_s": len(texts) / raw_s,
    }


def decode_speed(settings, runs: int = 5) -> dict[str, float]:
    """Milliseconds per generated token for the packaged SmolLM2 in float32 and bfloat16."""
    import torch

    from rag.generate import smollm2_gguf
    from rag.generate.hf import TransformersGenerator, cpu_has_bf16, dequantized_checkpoint

    location = dequantized_checkpoint(smollm2_gguf(), settings.cache_dir)
    messages = [
        {
            "role": "user",
            "content": "[1] On Friday, Putin arrived in Beijing to attend the opening "
            "ceremony of the 2022 Winter Olympics.\n\nQuestion: Why did Putin travel to Beijing?\n"
            "Answer in a few words, citing the sentence like [1].",
        }
    ]
    result = {}
    for dtype in ["float32", "bfloat16"] if cpu_has_bf16() else ["float32"]:
        gen = TransformersGenerator(location, "SmolLM2", settings.threads, dtype)
        inputs = gen._inputs(messages)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            with torch.inference_mode():
                gen.model.generate(
                    **inputs,
                    max_new_tokens=24,
                    min_new_tokens=24,
                    do_sample=False,
                    pad_token_id=gen.tokenizer.eos_token_id,
                )
            times.append(time.perf_counter() - t)
        result[dtype] = statistics.median(times) / 24 * 1000
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=Path, default=ROOT / "benchmarks" / "seed_questions.json")
    parser.add_argument("--scifact", type=Path, default=ROOT.parent / "shared" / "datasets" / "scifact")
    parser.add_argument("--docs", type=int, default=300, help="SciFact abstracts to index")
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the question set")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--readme", action="store_true", help="write the table into README.md")
    args = parser.parse_args()

    import shutil

    from perfkit import cpu_line

    from rag import Assistant, Settings
    from rag.generate.packaged import engine

    work = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    corpus = work / "seeds"
    shutil.copytree(ROOT / "seeds", corpus)
    settings = Settings.from_env(corpus_dir=corpus, index_dir=work / "index", threads=args.threads)
    assistant = Assistant(settings)
    assistant.refresh()
    questions = json.loads(args.questions.read_text())["questions"]

    cold = cold_start(corpus, work / "index", args.cold_runs)
    steps = cold_steps(corpus, work / "index", args.cold_runs)
    lat, right, refused = answer_latency(assistant, questions, args.rounds)
    other = None  # the packaged model through the other engine, for comparison
    if importlib.util.find_spec("llama_cpp") is not None:  # the default's engine is llama.cpp
        other_cold = cold_start(corpus, work / "index", args.cold_runs, "hf:smollm2")
        other_assistant = Assistant(settings.replace(generator="hf:smollm2"))
        other_assistant.__dict__["embedder"] = assistant.embedder
        other = other_cold, *answer_latency(other_assistant, questions, args.rounds)
    n_ans = sum(1 for q in questions if q["expect"])
    rows = [
        (
            "`rag ask` cold start (new process, index built, models cached)",
            f"median {statistics.median(cold):.2f} s over {len(cold)} runs",
            "≤ 2.5 s",
        ),
        (
            "cold start by step (medians, same runs count)",
            "; ".join(f"{k} {v:.2f} s" for k, v in steps.items()),
            "",
        ),
        (
            f"answer latency, {len(questions)} seed questions × {args.rounds}",
            f"p50 {pct(lat, 0.5):.2f} s, p95 {pct(lat, 0.95):.2f} s",
            "p50 ≤ 1 s",
        ),
        (
            "seed set quality",
            f"{right}/{n_ans} answered right, {refused}/{len(questions) - n_ans} refused",
            "",
        ),
    ]
    if other is not None:
        other_cold, other_lat, other_right, other_refused = other
        rows += [
            (
                "the same with `RAG_GENERATOR=hf:smollm2` (the transformers fallback, used when "
                "llama-cpp-python is not installed): cold start",
                f"median {statistics.median(other_cold):.2f} s over {len(other_cold)} runs",
                "",
            ),
            (
                "hf:smollm2: answer latency; seed set quality",
                f"p50 {pct(other_lat, 0.5):.2f} s, p95 {pct(other_lat, 0.95):.2f} s; {other_right}/{n_ans} "
                f"answered right, {other_refused}/{len(questions) - n_ans} refused",
                "",
            ),
        ]
    speed = decode_speed(settings)
    rows.append(
        (
            "generator decoding (SmolLM2-135M, transformers, 24 tokens incl. prompt)",
            ", ".join(f"{k} {v:.0f} ms/token" for k, v in speed.items())
            + (f" (bf16 {speed['float32'] / speed['bfloat16']:.1f}x faster)" if "bfloat16" in speed else ""),
            "",
        )
    )
    if args.scifact.exists():
        tp = throughput(args.scifact, args.docs, args.threads)
        ratio = tp["pipeline_chunks_per_s"] / tp["encode_chunks_per_s"]
        rows.append(
            (
                f"indexing throughput, {tp['docs']} SciFact abstracts → {tp['chunks']} chunks",
                f"{tp['pipeline_chunks_per_s']:.1f} chunks/s files→saved index; raw encode "
                f"{tp['encode_chunks_per_s']:.1f} chunks/s (ratio {ratio:.2f})",
                "",
            )
        )
    table = ["| measure | result | target |", "|---|---|---|"]
    table += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    cmd = "python benchmarks/core.py " + " ".join(sys.argv[1:])
    text = (
        "\n".join(table)
        + f"\n\nMeasured {time.strftime('%Y-%m-%d')} on {cpu_line()}, {args.threads} threads,"
        + f" default generator engine: {engine()}, with `{cmd.strip()}`."
    )
    print(text)
    if args.readme:
        readme = ROOT / "README.md"
        content = readme.read_text()
        new = re.sub(
            r"(<!-- bench:core -->\n).*?(\n<!-- /bench:core -->)",
            lambda m: m.group(1) + text + m.group(2),
            content,
            flags=re.DOTALL,
        )
        readme.write_text(new)


if __name__ == "__main__":
    main()
