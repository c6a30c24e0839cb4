"""The packaged SmolLM2 GGUF (Q4_1) against copies of it re-encoded by llama.cpp's own quantizer
(`llama_model_quantize`, allow_requantize), run through llama-cpp-python on this machine.

Why: the portable llama.cpp build has fast batched kernels (llamafile's sgemm, the repacked
CPU buffers) for F32, F16, BF16, Q8_0 and Q4_0 weights but not for Q4_1, so reading the
prompt -- most of a compact answer's time -- can run at half speed on the shipped file. Which
copy is fastest differs by CPU (AVX2, AVX-512 VNNI, AMX), hence rag/generate/weights.py measures
at run time; this script prints the whole table, and with `--quality` the seed set and XQuAD rc
answers of each copy compared word for word with the shipped file's.

    python benchmarks/llama_quant.py                       # speed table, ~1 min
    python benchmarks/llama_quant.py --quality --xquad 60  # + answers, a few minutes
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from perfkit import ROOT, cpu_line, load_note  # noqa: F401 - sets the offline env first

sys.path.insert(0, str(ROOT))

FORMATS = ("Q4_1", "F16", "BF16", "Q8_0", "Q4_0", "F32")
"""Q4_1 is the shipped file as it is; Q4_0 re-rounds onto a coarser grid (lossy), the others
hold the Q4_1 values (nearly) exactly."""


def speed(path: Path, threads: int, runs: int, tokens: int, batch: int | None = None,
          prefix: bool = False) -> dict[str, float]:
    """Median prompt read (ms, tokens/s) and generation speed on the compact prompt.
    `prefix`: the prompt is read after a different question's prompt, so llama-cpp-python's
    prefix match reuses the shared head (the system turn), as consecutive questions do."""
    from rag.generate.llamacpp import LlamaCppGenerator
    from rag.generate.weights import PROBE, timed_answer

    gen = LlamaCppGenerator(path, path.stem, threads, batch=batch)
    ids = gen.prompt(PROBE)
    other = gen.prompt([{"role": "user", "content": "[1] Something else entirely.\n\nQuestion: "
                         "What?\nAnswer in a few words, citing the sentence like [1]."}])
    timed_answer(gen, tokens)  # warm-up
    read, per_token = [], []
    for _ in range(runs):
        if prefix:
            list(zip(range(1), gen.llm.generate(other, top_k=1, temp=0.0, reset=True)))
        else:
            gen.llm.reset()
        started = time.perf_counter()
        steps = gen.llm.generate(ids, top_k=1, temp=0.0, repeat_penalty=1.0, reset=True)
        next(steps)
        read.append(time.perf_counter() - started)
        started = time.perf_counter()
        for _ in zip(range(tokens), steps):
            pass
        per_token.append((time.perf_counter() - started) / tokens)
    r, t = statistics.median(read), statistics.median(per_token)
    return {"tokens": len(ids), "read_ms": r * 1000, "read_tps": len(ids) / r, "gen_tps": 1 / t,
            "answer_ms": (r + tokens * t) * 1000}


def quality(paths: dict[str, Path], xquad: int, threads: int) -> None:
    """Seed set (rag eval seed) and XQuAD rc answers of every copy, and how many are word for
    word the shipped file's."""
    from rag.evaluate import evaluate_qa, evaluate_seed

    seed_file = ROOT / "benchmarks" / "seed_questions.json"
    squad = ROOT.parent / "shared" / "datasets" / "xquad" / "xquad.en.json"
    from rag import Assistant, Settings

    answers: dict[str, dict[str, str]] = {}
    embedder = Assistant(Settings.from_env(threads=threads, generator="extractive")).embedder
    with tempfile.TemporaryDirectory(prefix="llama-quant-") as work:
        print("\n| weights | seed answerable | seed unanswerable | seed same as Q4_1 | "
              f"XQuAD rc ({xquad}) F1 | holds gold | same as Q4_1 |\n|---|---|---|---|---|---|---|")
        for name, path in paths.items():
            settings = {"generator": f"llamacpp:{path}", "threads": threads}
            seed = evaluate_seed(seed_file, ROOT / "seeds", Path(work) / "seed", embedder, **settings)
            qa = evaluate_qa(squad, Path(work) / "qa", "rc", xquad, False, embedder, **settings)
            answers[name] = {**seed.details["answers"], **qa.details["predictions"]}
            base = answers[next(iter(paths))]
            seed_same = sum(answers[name][q] == base[q] for q in seed.details["answers"])
            qa_same = sum(answers[name][q] == base[q] for q in qa.details["predictions"])
            halves = qa.details["halves"]["all"]
            m = seed.metrics
            print(f"| {name} | {m['answerable']:.0f} % | {m.get('unanswerable', 0):.0f} % | "
                  f"{seed_same}/{len(seed.details['answers'])} | {halves['f1']:.1f} | "
                  f"{halves['answer holds gold']:.1f} % | {qa_same}/{len(qa.details['predictions'])} |",
                  flush=True)
        shipped = answers[next(iter(paths))]
        for name, got in list(answers.items())[1:]:
            changed = [q for q in shipped if got[q] != shipped[q]][:4]
            for q in changed:
                print(f"\n{name} differs on {q!r}:\n  Q4_1: {shipped[q]!r}\n  {name}: {got[q]!r}")


def instruction_first(self, question: str, evidence: list) -> list[dict[str, str]]:
    """The compact prompt with its fixed instruction ahead of the evidence, so consecutive
    questions share a longer prefix (the system turn and the instruction) for llama.cpp to reuse."""
    sentences = [ev for ev in evidence if ev.date is None]
    dates = sorted({ev.date for ev in evidence if ev.date})
    lines = [f"[{ev.source}] {ev.text}" for ev in sentences]
    if dates:
        lines.append(f"(Article date: {', '.join(dates)})")
    user = f"{self.INSTRUCTION}\n\n" + "\n".join(lines) + f"\n\nQuestion: {question}"
    return [{"role": "user", "content": user}]


def order(path: Path, threads: int) -> None:
    """Seed answers and shared-prefix length with the reader's prompt as it is and with the
    instruction first, on the same weights."""
    from rag import Assistant, Settings
    from rag.answer.reader import GroundedReader
    from rag.evaluate import evaluate_seed
    from rag.generate.llamacpp import LlamaCppGenerator
    from rag.schema import Evidence

    seed_file = ROOT / "benchmarks" / "seed_questions.json"
    embedder = Assistant(Settings.from_env(threads=threads, generator="extractive")).embedder
    generator = LlamaCppGenerator(path, path.stem, threads)
    results = {}
    original = GroundedReader.messages
    with tempfile.TemporaryDirectory(prefix="llama-order-") as work:
        for name, builder in (("evidence first (as is)", original), ("instruction first", instruction_first)):
            GroundedReader.messages = builder  # type: ignore[method-assign]
            try:
                seed = evaluate_seed(seed_file, ROOT / "seeds", Path(work) / "seed", embedder,
                                     generator=f"llamacpp:{path}", threads=threads)
            finally:
                GroundedReader.messages = original  # type: ignore[method-assign]
            reader = GroundedReader(embedder, None)
            a = generator.prompt(builder(reader, "Why?", [Evidence(1, "Alpha beta.", 0, 11)]))
            b = generator.prompt(builder(reader, "Who won?", [Evidence(1, "Gamma delta.", 0, 12)]))
            shared = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            results[name] = seed
            m = seed.metrics
            print(f"| {name} | {m['answerable']:.0f} % | {m.get('unanswerable', 0):.0f} % | "
                  f"{shared} tokens shared by any two prompts |", flush=True)
    (_, first), (_, second) = results.items()
    one, two = first.details["answers"], second.details["answers"]
    print(f"\nanswers word for word the same: {sum(one[q] == two[q] for q in one)}/{len(one)}")
    for q, text in first.details["answers"].items():
        if second.details["answers"][q] != text:
            print(f"  {q!r}:\n    as is: {text!r}\n    instruction first: {second.details['answers'][q]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--formats", nargs="+", default=list(FORMATS))
    parser.add_argument("--threads", type=int, nargs="+", default=[2])
    parser.add_argument("--batch", type=int, nargs="+", default=[0],
                        help="n_batch = n_ubatch values to try (0: the generator's default)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=20, help="generated tokens timed per answer")
    parser.add_argument("--prefix", action="store_true", help="also time with the system turn reused")
    parser.add_argument("--quality", action="store_true", help="compare seed and XQuAD answers")
    parser.add_argument("--xquad", type=int, default=60, help="XQuAD rc questions for --quality")
    parser.add_argument("--order", action="store_true",
                        help="seed answers with the instruction ahead of the evidence (shipped weights)")
    parser.add_argument("--keep", metavar="DIR", help="write the copies here (default: a temp dir)")
    args = parser.parse_args()

    from rag.generate.base import smollm2_gguf
    from rag.generate.weights import requantize

    if args.order:
        order(smollm2_gguf(), max(args.threads))
        return

    folder = Path(args.keep or tempfile.mkdtemp(prefix="llama-quant-"))
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name in args.formats:
        if name == "Q4_1":
            paths[name] = smollm2_gguf()
            continue
        target = folder / f"SmolLM2-135M-Instruct.{name}.gguf"
        started = time.perf_counter()
        if not target.exists():
            requantize(smollm2_gguf(), target, name, max(args.threads))
        print(f"{name}: {target.stat().st_size / 1e6:.0f} MB, made in {time.perf_counter() - started:.1f} s",
              file=sys.stderr)
        paths[name] = target

    print(f"Measured on {cpu_line()}; llama-cpp-python "
          f"{__import__('llama_cpp').__version__}; {args.runs} runs each, medians.\n")
    print("| weights | threads | n_batch | prompt read | tokens/s read | tokens/s generated | "
          f"answer (read + {args.tokens} tokens) |" + (" read, system turn reused |" if args.prefix else ""))
    print("|---|---|---|---|---|---|---|" + ("---|" if args.prefix else ""))
    for name, path in paths.items():
        for threads in args.threads:
            for batch in args.batch:
                s = speed(path, threads, args.runs, args.tokens, batch or None)
                extra = ""
                if args.prefix:
                    p = speed(path, threads, args.runs, args.tokens, batch or None, prefix=True)
                    extra = f" {p['read_ms']:.0f} ms |"
                print(f"| {name} | {threads} | {batch or 'default'} | {s['read_ms']:.0f} ms "
                      f"({s['tokens']} tokens) | {s['read_tps']:.0f} | {s['gen_tps']:.1f} | "
                      f"{s['answer_ms']:.0f} ms |{extra}", flush=True)
    if args.quality:
        quality(paths, args.xquad, max(args.threads))
    print(f"\n{load_note()}")


if __name__ == "__main__":
    main()
