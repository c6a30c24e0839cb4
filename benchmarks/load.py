"""Load test of the web page's API: N concurrent gradio_client clients, each asking M questions
through /ask of a real `rag serve`, with a document upload in the middle of the load.

    python benchmarks/load.py                                 # 16 clients x 25 questions
    python benchmarks/load.py --clients 4 --per-client 5      # the size the test suite runs
    python benchmarks/load.py --write docs/PERFORMANCE.md     # update the Load section
    python benchmarks/load.py --url http://127.0.0.1:7860/    # a running server (no upload)
    python benchmarks/load.py --clients 8 --per-client 5 --concurrency 1,2   # compare, one run

Questions come from the seed question set (benchmarks/seed_questions.json, the default).
First every question is asked once, alone: questions answered wrongly even then are left out
(the reader's known misses are not a load problem). Under load an answer is correct when it
contains one of the expected phrases, or is the refusal for a question the documents do not
answer. Once a third of the answers are in, an extra client uploads a new document through
/add_documents and then asks about it: the upload must not break the questions in flight, and
the new document must be found. Latency is from submitting a question to its final answer, so
it includes the wait in the server's queue (RAG_ANSWER_CONCURRENCY questions at once; with
llama.cpp as many answers written at once, sharing the threads).

Exit status 0 only with zero errors and every answer correct (but those the upload changed:
wrong alone, too, in the larger collection); --json prints the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perfkit import load_note  # noqa: E402
from ui_latency import ROOT, free_port, pct, start_server, timed_ask  # noqa: E402

UPLOAD_NAME = "port-verity-notes.md"
UPLOAD_TEXT = ("# Port Verity notes\n\nThe lighthouse of Port Verity was painted teal in 1987 by "
               "the keeper Alma Ruiz.\n")
UPLOAD_QUESTION = ("What colour was the lighthouse of Port Verity painted?", ["teal"])
MARK = "perf:load"


def correct(final: dict, expect: list[str]) -> bool:
    if final.get("error") or not final.get("done", True):
        return False
    if not expect:
        return bool(final.get("refused"))
    text = final.get("answer", "").lower()
    return not final.get("refused") and any(e.lower() in text for e in expect)


def usable_questions(client, spec: dict, k: int) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """Questions the assistant answers correctly when alone (hard ones left out), and those it
    misses even then."""
    kept, missed = [], []
    for item in spec["questions"]:
        if item.get("hard"):
            continue
        _, _, final = timed_ask(client, item["q"], k)
        (kept if correct(final, item["expect"]) else missed).append((item["q"], item["expect"]))
    return kept, [q for q, _ in missed]


def run_load(url: str, questions: list[tuple[str, list[str]]], clients: int, per_client: int,
             k: int, upload_dir: Path | None, timeout: float) -> dict:
    """Every client asks `per_client` questions in turn (each starting at another question);
    returns the figures and every failure."""
    from gradio_client import Client, handle_file

    lock = threading.Lock()
    latencies: list[float] = []
    firsts: list[float] = []
    failures: list[str] = []
    wrong: list[tuple[str, list[str], float, str]] = []  # (question, expected, when, failure)
    done = [0]
    total = clients * per_client
    started = threading.Event()
    third = threading.Event()
    upload: dict = {}
    deadline = time.monotonic() + timeout

    def client_loop(n: int) -> None:
        try:
            client = Client(url, verbose=False)
        except Exception as exc:  # counted, never raised: every failure is reported
            with lock:
                failures.extend([f"client {n}: could not connect ({exc})"] * per_client)
            return
        started.wait()
        for i in range(per_client):
            if time.monotonic() > deadline:
                with lock:
                    failures.append(f"client {n}: out of time before question {i + 1}")
                return
            question, expect = questions[(n * per_client + i) % len(questions)]
            try:
                first, full, final = timed_ask(client, question, k)
                ok = correct(final, expect)
                note = final.get("error") or final.get("answer", "")
            except Exception as exc:
                first = full = 0.0
                ok, note = False, f"{type(exc).__name__}: {exc}"
            with lock:
                if ok:
                    latencies.append(full)
                    firsts.append(first)
                else:
                    failures.append(f"client {n}: {question!r} -> {note!r}")
                    wrong.append((question, expect, time.perf_counter(), failures[-1]))
                done[0] += 1
                if done[0] * 3 >= total:
                    third.set()

    def uploader() -> None:
        third.wait(timeout)
        path = upload_dir / UPLOAD_NAME
        path.write_text(UPLOAD_TEXT, encoding="utf-8")
        start = upload["began"] = time.perf_counter()
        try:
            client = Client(url, verbose=False)
            result = client.predict([handle_file(str(path))], api_name="/add_documents")
            upload["seconds"] = time.perf_counter() - start
            upload["added"] = result.get("added")
            upload["in_flight"] = total - done[0]
            _, _, final = timed_ask(client, UPLOAD_QUESTION[0], k)
            upload["found"] = correct(final, UPLOAD_QUESTION[1])
            upload["answer"] = final.get("answer")
        except Exception as exc:
            upload["error"] = f"{type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=client_loop, args=(n,), daemon=True) for n in range(clients)]
    if upload_dir is not None:
        threads.append(threading.Thread(target=uploader, daemon=True))
    for t in threads:
        t.start()
    time.sleep(0.5)
    wall = time.perf_counter()
    started.set()
    for t in threads:
        t.join(max(1.0, deadline - time.monotonic()))
    wall = time.perf_counter() - wall
    if any(t.is_alive() for t in threads):
        failures.append(f"stopped after {timeout:.0f} s with clients still waiting")
    if upload_dir is not None and not (upload.get("added") == [UPLOAD_NAME] and upload.get("found")):
        failures.append(f"upload during the load failed: {upload}")
    # A question answered after the upload began may have met the larger collection: if it is
    # answered the same wrong way alone in that collection, the upload changed it, not the load.
    changed: list[str] = []
    if wrong and "began" in upload:
        client = Client(url, verbose=False)
        for question, expect, when, failure in wrong:
            if when > upload["began"] and not correct(timed_ask(client, question, k)[2], expect):
                failures.remove(failure)
                changed.append(question)
    upload.pop("began", None)
    return {
        "clients": clients, "per_client": per_client, "questions": total,
        "answered_correctly": len(latencies), "failures": failures, "upload": upload,
        "changed_by_upload": changed,
        "seconds": round(wall, 1),
        "throughput_per_s": round(len(latencies) / wall, 3) if wall else 0.0,
        "full_answer_p50": pct(latencies, 0.5) if latencies else None,
        "full_answer_p95": pct(latencies, 0.95) if latencies else None,
        "first_token_p50": pct(firsts, 0.5) if firsts else None,
        "first_token_p95": pct(firsts, 0.95) if firsts else None,
    }


def at_once() -> int:
    """Questions the measured server works on at once (RAG_ANSWER_CONCURRENCY, auto resolved)."""
    from rag.config import Settings
    from rag.generate import answers_at_once

    return answers_at_once(Settings.from_env())


def generator_name() -> str:
    """The generator the server answers with (RAG_GENERATOR, inherited by `rag serve`)."""
    return os.environ.get("RAG_GENERATOR", "").strip() or "smollm2"


def section_key() -> str:
    """The default generator's figures keep their section; another model's get their own."""
    name = generator_name()
    return "load" if name == "smollm2" else "load-" + name.replace(":", "-").replace("/", "-")


def report(figures: dict, command: str) -> str:
    up = figures["upload"]
    upload = (f"an upload of one document after a third of the answers took {up['seconds']:.1f} s "
              f"with {up['in_flight']} questions still to answer, and the new document was found"
              if up.get("found") else "no upload (a running server was measured)")
    lines = [
        "## Reliability: load" + ("" if generator_name() == "smollm2" else f", {generator_name()}"),
        "",
        f"{figures['clients']} concurrent `gradio_client` clients x {figures['per_client']} "
        f"questions each ({figures['questions']} answers) through `/ask` of a real `rag serve` on "
        f"127.0.0.1, generator {generator_name()}; {upload}. Latency is from submitting a question to its "
        "final answer, including the wait in the server's queue "
        f"({figures.get('concurrency') or at_once()} questions worked on at once).",
        "",
        "| | p50 | p95 |",
        "|---|---|---|",
        f"| full answer (with queueing) | {figures['full_answer_p50']:.2f} s | "
        f"{figures['full_answer_p95']:.2f} s |",
        f"| first streamed token | {figures['first_token_p50']:.2f} s | "
        f"{figures['first_token_p95']:.2f} s |",
        "",
        f"Errors: {len(figures['failures'])}; correct answers: {figures['answered_correctly']} of "
        f"{figures['questions']}; throughput {figures['throughput_per_s']:.2f} answers/s over "
        f"{figures['seconds']:.0f} s, i.e. {figures['seconds'] / max(1, figures['questions']):.2f} s "
        "of server time per answer. Left out (wrong even without load): "
        f"{len(figures.get('missed_alone', []))} of the non-hard seed questions. Answered otherwise "
        "after the upload, and the same way alone in the larger collection (the new document "
        f"changed the hybrid ranking, not the load): {len(figures.get('changed_by_upload', []))}.",
        "",
        "With RAG_ANSWER_CONCURRENCY=2 two questions are worked on at once: their searches and "
        "reading overlap, and llama.cpp writes both answers at once in two contexts "
        "(RAG_GENERATOR_REPLICAS auto), each on its share of the threads, never more threads "
        "than RAG_THREADS in all (rag/generate/llamacpp.py). A model file of 1 GiB or more gets "
        "one context, so auto (0) works on one question at a time with it "
        "(rag.generate.answers_at_once). With N clients waiting, a question waits for about "
        "N / concurrency answers: p50 and p95 are mostly queueing.",
        *(["", "| RAG_ANSWER_CONCURRENCY | answers/s | p50 | errors |", "|---|---|---|---|"]
          + [f"| {c} | {f['throughput_per_s']:.2f} | {f['full_answer_p50'] or 0:.2f} s | "
             f"{len(f['failures'])} |" for c, f in figures.get("compared", {}).items()]
          if len(figures.get("compared", {})) > 1 else []),
        "",
        f"Measured {time.strftime('%Y-%m-%d')} with `{command}`. {load_note()}",
    ]
    return "\n".join(lines)


def write_section(path: Path, body: str) -> None:
    """Put `body` between this benchmark's markers in `path` (a section of its own, so other
    benchmarks can write theirs in the same file)."""
    from rag.evaluate import write_section as write

    write(path, section_key(), body, prefix=MARK.split(":", 1)[0], header="# Performance\n")


def one_load(args: argparse.Namespace, spec: dict, env: dict[str, str]) -> dict:
    """Start a server (or use --url), keep the questions it answers alone, run the load."""
    from gradio_client import Client

    process = None
    workdir = Path(tempfile.mkdtemp(prefix="rag-load-"))
    try:
        if args.url:
            url = args.url
        else:
            shutil.copytree(ROOT / spec.get("corpus", "seeds"), workdir / "library")
            os.environ["GRADIO_TEMP_DIR"] = str(workdir / "gradio")
            port = free_port()
            url = f"http://127.0.0.1:{port}/"
            process = start_server(workdir, port, url, env)
        questions, missed = usable_questions(Client(url, verbose=False), spec, args.k)
        if not questions:
            raise SystemExit("no seed question is answered correctly even without load")
        (workdir / "uploads").mkdir()
        figures = run_load(url, questions, args.clients, args.per_client, args.k,
                           None if args.url else workdir / "uploads", args.timeout)
        figures["missed_alone"] = missed
        figures["usable"] = len(questions)
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except Exception:
                process.kill()
        shutil.rmtree(workdir, ignore_errors=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=Path, default=ROOT / "benchmarks/seed_questions.json")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--per-client", type=int, default=25, help="questions per client")
    parser.add_argument("-k", type=int, default=4, help="passages per question")
    parser.add_argument("--url", help="load a running server (no upload) instead of starting one")
    parser.add_argument("--timeout", type=float, default=3600, help="stop after this many seconds")
    parser.add_argument("--concurrency", default="",
                        help="RAG_ANSWER_CONCURRENCY values to compare, e.g. 1,2 (a server each; "
                             "the first is the one reported in full)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--write", type=Path, metavar="FILE.md", help="update the Load section")
    args = parser.parse_args(argv)
    spec = json.loads(args.questions.read_text(encoding="utf-8"))


    compared: dict[str, dict] = {}
    for value in [v.strip() for v in args.concurrency.split(",") if v.strip()] or [""]:
        figures = one_load(args, spec, {"RAG_ANSWER_CONCURRENCY": value} if value else {})
        figures["concurrency"] = value or f"auto: {at_once()}"
        compared[value or "default"] = figures
    figures = next(iter(compared.values()))
    figures["compared"] = {c: {k: f[k] for k in ("throughput_per_s", "full_answer_p50", "failures")}
                           for c, f in compared.items()}

    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for failure in figures["failures"]:
            print("FAILED", failure)
        if figures["answered_correctly"]:
            print(report(figures, "python benchmarks/load.py " + " ".join(sys.argv[1:])))
    if args.write and figures["answered_correctly"]:
        write_section(args.write, report(figures, "python benchmarks/load.py "
                                         + " ".join(a for a in (argv or sys.argv[1:]))))
        print(f"updated the Load section of {args.write}", file=sys.stderr)
    return 0 if not figures["failures"] else 1


if __name__ == "__main__":
    sys.exit(main())
