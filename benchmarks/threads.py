"""Thread settings for one query embedding: torch with 1 or 2 threads, OpenMP threads spinning
(the default) or sleeping (`OMP_WAIT_POLICY=PASSIVE`) while they wait, and OpenVINO with 1 or 2
threads; each in a fresh process, the same questions.

    python benchmarks/threads.py --write
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import perfkit

CODE = """
import json, sys, time
sys.path.insert(0, {root!r})
from rag.embed import Embedder
backend, threads = sys.argv[1], int(sys.argv[2])
if backend == "torch":
    import torch
    torch.set_num_threads(threads)
e = Embedder("sentence-transformers/all-MiniLM-L6-v2", backend=backend, threads=threads)
questions = json.loads(sys.argv[3])
e.encode_query(questions[0])
times = []
for q in questions * 3:
    t = time.perf_counter()
    e.encode_query(q)
    times.append(time.perf_counter() - t)
print(json.dumps(times))
"""


def run(backend: str, threads: int, policy: str | None, questions: list[str]) -> list[float]:
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, "-c", CODE.format(root=str(perfkit.ROOT)), backend, str(threads),
                          json.dumps(questions)], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    questions = [q["q"] for q in json.loads((perfkit.ROOT / "benchmarks" / "seed_questions.json")
                                            .read_text())["questions"]][:20]
    rows = ["| query embedding | threads | OMP_WAIT_POLICY | one question |", "|---|---|---|---|"]
    for backend, threads, policy in [("torch", 2, None), ("torch", 2, "PASSIVE"), ("torch", 1, None),
                                     ("torch", 1, "PASSIVE"), ("openvino", 2, None)]:
        shown = "1 (its query request)" if backend == "openvino" else str(threads)
        times = run(backend, threads, policy, questions)
        rows.append(f"| {backend} | {shown} | {policy or 'default (spin)'} | {perfkit.ms(times)} |")
        print(rows[-1], flush=True)
    body = "\n".join(rows + ["", "OpenVINO answers questions on a one-thread request whatever `threads` says "
                             "(rag/embed/openvino.py); its thread pool is TBB, not OpenMP.", "",
                             f"Command: `{perfkit.command()}`. {perfkit.load_note()}"])
    print(body)
    if args.write:
        perfkit.write_section("threads", "## Thread settings\n\n" + body)


if __name__ == "__main__":
    main()
