"""Latency of the web page's API: time to the first streamed token and to the full answer,
measured with gradio_client against the real server (the same /ask endpoint the docs show).

    python benchmarks/ui_latency.py                          # seed questions, 3 runs
    python benchmarks/ui_latency.py --runs 5 --questions benchmarks/seed_questions.json
    python benchmarks/ui_latency.py --url http://127.0.0.1:7860/   # a running `rag serve`

Without --url a server (`rag serve`) is started in a subprocess on a free loopback port, over
a temporary copy of the questions' corpus, and stopped at the end; --in-process starts it in
this process instead (then --direct also times `assistant.stream` without the page, though the
client and the server then share one interpreter and slow each other down a little).
Times are p50/p95 over every question of every run after one warm-up question.
Targets: first token <= 0.5 s, full answer <= 1.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _name, _value in {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
                      "GRADIO_ANALYTICS_ENABLED": "False", "TRANSFORMERS_VERBOSITY": "error"
                      }.items():
    os.environ.setdefault(_name, _value)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_FIRST = 0.5
TARGET_FULL = 1.5


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed_ask(client, question: str, k: int) -> tuple[float, float, dict]:
    """(seconds to the first non-empty streamed text, seconds to the final answer, final)."""
    start = time.perf_counter()
    first = None
    final: dict = {}
    job = client.submit(question, k, [], api_name="/ask")
    for update in job:
        if first is None and isinstance(update, dict) and update.get("answer"):
            first = time.perf_counter() - start
        if isinstance(update, dict) and update.get("done"):
            final = update
    full = time.perf_counter() - start
    if not final:
        outputs = job.outputs()
        final = outputs[-1] if outputs else {}
    return (first if first is not None else full), full, final


def start_server(workdir: Path, port: int, url: str, env: dict[str, str] | None = None,
                 log_name: str = "server.log", wait: float = 300) -> subprocess.Popen:
    """`rag serve` on a copy of the corpus, ready to answer (`env`: more variables)."""
    import urllib.request

    log_path = workdir / log_name
    process = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "--corpus", str(workdir / "library"), "--index",
         str(workdir / "index"), "serve", "--port", str(port)],
        cwd=ROOT, stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"rag serve exited: {log_path.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"rag serve did not come up within {wait:.0f} s")


def timed_direct(assistant, question: str, k: int) -> tuple[float, float]:
    """The same measure on `assistant.stream` in this process: what the page adds is the
    difference."""
    start = time.perf_counter()
    first = None
    for item in assistant.stream(question, k):
        if first is None and isinstance(item, str) and item:
            first = time.perf_counter() - start
    full = time.perf_counter() - start
    return (first if first is not None else full), full


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=Path, default=ROOT / "benchmarks/seed_questions.json")
    parser.add_argument("--runs", type=int, default=3, help="passes over the question set")
    parser.add_argument("-k", type=int, default=4, help="passages per question")
    parser.add_argument("--url", help="measure a running server instead of starting one")
    parser.add_argument("--auth", metavar="USER:PASSWORD", help="login for --url")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--slowest", type=int, default=0, metavar="N",
                        help="also list the N slowest answers with their method")
    parser.add_argument("--in-process", action="store_true",
                        help="start the server in this process, not as `rag serve`")
    parser.add_argument("--direct", action="store_true",
                        help="with --in-process: also time assistant.stream(), alternating "
                        "with the API calls, to show what the page adds")
    args = parser.parse_args(argv)

    spec = json.loads(args.questions.read_text(encoding="utf-8"))
    questions = [item["q"] for item in spec["questions"]]

    from gradio_client import Client

    demo = None
    process = None
    workdir = None
    if args.url:
        url = args.url
    else:
        corpus = ROOT / spec.get("corpus", "seeds")
        workdir = Path(tempfile.mkdtemp(prefix="rag-ui-bench-"))
        shutil.copytree(corpus, workdir / "library")
        os.environ["GRADIO_TEMP_DIR"] = str(workdir / "gradio")
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        if args.in_process:
            from rag import Settings
            from rag.assistant import Assistant
            from ui.app import launch

            settings = Settings.from_env(corpus_dir=workdir / "library",
                                         index_dir=workdir / "index")
            assistant = Assistant(settings)
            demo = launch(assistant, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
        else:
            process = start_server(workdir, port, url)
    try:
        auth = tuple(args.auth.split(":", 1)) if args.auth else None
        client = Client(url, auth=auth, verbose=False)
        timed_ask(client, questions[0], args.k)  # warm-up
        firsts, fulls, refused = [], [], 0
        slow: list[tuple[float, float, str, str]] = []
        direct_firsts: list[float] = []
        direct_fulls: list[float] = []
        for _ in range(args.runs):
            for question in questions:
                first, full, final = timed_ask(client, question, args.k)
                firsts.append(first)
                fulls.append(full)
                slow.append((full, first, final.get("method", "?"), question))
                refused += bool(final.get("refused"))
                if args.direct and demo is not None:
                    first, full = timed_direct(assistant, question, args.k)
                    direct_firsts.append(first)
                    direct_fulls.append(full)
        figures = {
            "url": url,
            "questions": len(questions),
            "runs": args.runs,
            "answers": len(fulls),
            "refused": refused,
            "first_token_p50": pct(firsts, 0.5),
            "first_token_p95": pct(firsts, 0.95),
            "full_answer_p50": pct(fulls, 0.5),
            "full_answer_p95": pct(fulls, 0.95),
        }
        if direct_fulls:
            figures.update(direct_first_token_p50=pct(direct_firsts, 0.5),
                           direct_first_token_p95=pct(direct_firsts, 0.95),
                           direct_full_answer_p50=pct(direct_fulls, 0.5),
                           direct_full_answer_p95=pct(direct_fulls, 0.95))
    finally:
        if demo is not None:
            demo.close()
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)

    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    for full, first, method, question in sorted(slow, reverse=True)[:args.slowest]:
        print(f"  slow: {full:.2f} s (first token {first:.2f} s, {method}) {question}")
    print(f"{figures['answers']} answers ({figures['questions']} questions x {args.runs} runs, "
          f"k={args.k}) through {url} /ask")
    for label, key, target in [("first streamed token", "first_token", TARGET_FIRST),
                               ("full answer", "full_answer", TARGET_FULL)]:
        p50, p95 = figures[f"{key}_p50"], figures[f"{key}_p95"]
        verdict = "meets" if p95 <= target else ("p50 meets" if p50 <= target else "misses")
        print(f"  {label:<21} p50 {p50:.3f} s   p95 {p95:.3f} s   "
              f"(target <= {target} s: {verdict})")
        if f"direct_{key}_p50" in figures:
            print(f"    {'in-process, no page':<19} p50 {figures[f'direct_{key}_p50']:.3f} s   "
                  f"p95 {figures[f'direct_{key}_p95']:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
