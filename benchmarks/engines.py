"""The packaged SmolLM2 through its two engines, same run: llama.cpp (the default when
llama-cpp-python is installed) and transformers (the fallback, `hf:smollm2`). Same greedy
decoding on the same GGUF weights; llama.cpp computes with the quantized blocks, transformers
with a float32 dequantized copy, so a few answers can differ. This script says how many.

    python benchmarks/engines.py                  # seed set + XQuAD rc, 300 questions
    python benchmarks/engines.py --write          # also docs/EVALUATION.md, section "engines"
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import perfkit  # noqa: F401  (offline, quiet, thread settings)
from perfkit import ROOT, command, load_note

sys.path.insert(0, str(ROOT))

ENGINES = ("llamacpp:smollm2", "hf:smollm2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--squad", type=Path,
                        default=ROOT.parent / "shared" / "datasets" / "xquad" / "xquad.en.json")
    parser.add_argument("--questions", type=Path, default=ROOT / "benchmarks" / "seed_questions.json")
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    from rag.evaluate import evaluate_qa, evaluate_seed, write_section

    seeds, rc = {}, {}
    for engine in ENGINES:
        with tempfile.TemporaryDirectory() as work:
            seeds[engine] = evaluate_seed(args.questions, ROOT / "seeds", Path(work) / "seed",
                                          generator=engine, threads=args.threads)
            rc[engine] = evaluate_qa(args.squad, Path(work) / "rc", "rc", args.limit, progress=False,
                                     generator=engine, threads=args.threads)

    a, b = ENGINES
    lines = ["| | " + " | ".join(f"`{e}`" for e in ENGINES) + " |", "|---|---|---|"]
    for label, key in (("seed set: answerable right (%)", "answerable"),
                       ("seed set: unanswerable refused (%)", "unanswerable")):
        cells = " | ".join(f"{seeds[e].metrics.get(key, 0):.0f}" for e in ENGINES)
        lines.append(f"| {label} | {cells} |")
    for label, key in (("XQuAD rc: EM", "exact_match"), ("XQuAD rc: F1", "f1"),
                       ("XQuAD rc: refused (%)", "refused")):
        lines.append(f"| {label} | " + " | ".join(f"{rc[e].metrics[key]:.2f}" for e in ENGINES) + " |")
    lines.append("| XQuAD rc: median seconds per answer | "
                 + " | ".join(f"{rc[e].details['median_seconds']:.2f}" for e in ENGINES) + " |")
    sa, sb = seeds[a].details["answers"], seeds[b].details["answers"]
    same_seed = [q for q in sa if sa[q] == sb[q]]
    pa, pb = rc[a].details["predictions"], rc[b].details["predictions"]
    same_rc = sum(pa[k] == pb[k] for k in pa)
    differ = [q for q in sa if q not in same_seed]
    body = "\n".join(lines) + (
        f"\n\nIdentical answers: seed set {len(same_seed)}/{len(sa)}, "
        f"XQuAD rc {same_rc}/{len(pa)}."
        + (f" Seed questions answered differently: {'; '.join(differ)}." if differ else "")
        + f"\n\n{load_note()} Command: `{command()}`.")
    print(body)
    if args.write:
        write_section(ROOT / "docs" / "EVALUATION.md", "engines", body)


if __name__ == "__main__":
    main()
