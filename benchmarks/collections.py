"""Many collections in one server: memory (RSS) and answers, with and without unloading.

    python benchmarks/collections.py                     # 20 collections x 12 SciFact abstracts
    python benchmarks/collections.py --limits 20,8,4 --write   # update docs/PERFORMANCE.md

Each collection holds `--docs` SciFact abstracts (a different slice each) and one note of its
own: "The access code of the archive is <word>. The archive is kept in <Town>." The same
question, "What is the access code of the archive?", is asked in every collection and must be
answered with that collection's word and no other's; "Which archive is kept in <Town>?", with
the next collection's town, must be refused. For each limit (RAG_MAX_LOADED_COLLECTIONS) a real
`rag serve` is started, every collection is asked both questions through `/ask` with
gradio_client (first pass: each collection loads), then again (second pass: with a limit
below the number of collections, each one loads again), and the server's resident memory
(VmRSS, and its peak VmHWM, from /proc) is read after start and after every collection.

Exit status 0 only if every answer is right.
"""

from __future__ import annotations

# This file shares its name with the standard library's `collections`; that module is imported
# at interpreter start-up (by site), before this folder is on sys.path, so it is not shadowed.
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perfkit import HEADER, ROOT, command, load_note, pct  # noqa: E402
from ui_latency import free_port, start_server  # noqa: E402

CODES = ["amber", "birch", "cobalt", "dune", "ember", "fjord", "garnet", "heron", "indigo",
         "juniper", "kestrel", "lagoon", "marble", "nectar", "onyx", "pebble", "quartz", "raven",
         "saffron", "tundra", "umber", "violet", "willow", "yarrow", "zephyr"]
TOWNS = ["Ashby", "Brackley", "Carnforth", "Dunmore", "Elsworth", "Fenwick", "Glenrose", "Hartwell",
         "Ilkley", "Jarrow", "Kelso", "Lydney", "Marlow", "Nairn", "Oakham", "Penrith", "Quorn",
         "Rydal", "Selkirk", "Thirsk", "Ulverston", "Ventnor", "Whitby", "Yarm", "Zennor"]
SAME_QUESTION = "What is the access code of the archive?"
MARK = "collections"


def note(n: int) -> str:
    return (f"# Archive notes\n\nThe access code of the archive is {CODES[n]}. The archive is "
            f"kept in {TOWNS[n]}.\n")


def build(work: Path, count: int, docs: int, scifact: Path) -> list[str]:
    """The default library (the seed article) and `count` collections, indexed."""
    from rag import Settings
    from rag.collections import Collections
    from rag.evaluate import _write_corpus, load_beir

    shutil.copytree(ROOT / "seeds", work / "library", dirs_exist_ok=True)
    data = load_beir(scifact)
    items = list(data.corpus.items())
    settings = Settings.from_env(corpus_dir=work / "library", index_dir=work / "index",
                                 collections_dir=work / "collections", generator="extractive")
    collections = Collections(settings=settings)
    names = [f"archive-{n:02d}" for n in range(count)]
    for n, name in enumerate(names):
        upload = work / "uploads" / name
        _write_corpus(upload, dict(items[n * docs:(n + 1) * docs]))
        (upload / "archive-notes.md").write_text(note(n), encoding="utf-8")
        collections.create(name).add([upload])
    collections.home.documents()
    collections.close()
    return names


def memory(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def serve(work: Path, port: int, limit: int) -> subprocess.Popen:
    env = {"RAG_COLLECTIONS_DIR": str(work / "collections"), "RAG_MAX_LOADED_COLLECTIONS": str(limit)}
    return start_server(work, port, f"http://127.0.0.1:{port}/", env, f"server-{limit}.log", 600)


def ask(client, question: str, collection: str) -> tuple[float, dict]:
    start = time.perf_counter()
    final = client.submit(question, 4, [], collection, api_name="/ask").result()
    return time.perf_counter() - start, final


def run(work: Path, names: list[str], limit: int) -> dict:
    from gradio_client import Client

    port = free_port()
    process = serve(work, port, limit)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        ask(client, "Why did Putin travel to Beijing?", "default")  # the models, warmed
        start_rss, _ = memory(process.pid)
        passes, wrong, trace = [], [], []
        for _ in (1, 2):
            seconds = []
            for n, name in enumerate(names):
                took, final = ask(client, SAME_QUESTION, name)
                seconds.append(took)
                others = [c for c in CODES if c != CODES[n] and c in final.get("answer", "")]
                if final.get("refused") or CODES[n] not in final.get("answer", "") or others:
                    wrong.append(f"{name}: {final.get('answer') or final.get('error')!r}")
                other_town = TOWNS[(n + 1) % len(names)]
                _, refusal = ask(client, f"Which archive is kept in {other_town}?", name)
                if not refusal.get("refused"):
                    wrong.append(f"{name} answered about {other_town}: {refusal.get('answer')!r}")
                rss, _ = memory(process.pid)
                trace.append(round(rss, 1))
            passes.append(seconds)
        rss, peak = memory(process.pid)
        first_pass = trace[: len(names)]
        return {
            "limit": limit, "collections": len(names), "rss_start_mb": round(start_rss, 1),
            "rss_after_first_pass_mb": first_pass[-1], "rss_end_mb": round(rss, 1),
            "peak_mb": round(peak, 1), "rss_trace_mb": trace,
            "answer_p50_first_s": round(pct(passes[0], 0.5), 2),
            "answer_p50_second_s": round(pct(passes[1], 0.5), 2),
            "answers": 4 * len(names), "wrong": wrong,
        }
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return "unknown CPU"
    info = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    flags = [f for f in info.get("Flags", "").split() if f.startswith(("avx512", "amx", "avx2"))]
    return f"{info.get('Model name', '?').strip()} ({', '.join(flags[:6]) or 'no AVX flags listed'})"


def report(results: list[dict], docs: int) -> str:
    n = results[0]["collections"]
    lines = [
        "## Many collections in one server",
        "",
        f"{n} collections of {docs} SciFact abstracts and one note each, in one `rag serve` "
        "(SmolLM2 generator, FAISS). Every collection is asked the same question (\"What is the "
        "access code of the archive?\": its own word, and no other collection's) and a question "
        "only the next collection can answer (refused), through `/ask`; then everything again. "
        "Memory is the server's resident set (VmRSS) after the models and the default "
        "collection are loaded, after the first pass, at the end, and its peak (VmHWM).",
        "",
        "| loaded at most (`RAG_MAX_LOADED_COLLECTIONS`) | RSS after start | after the first "
        "collection | after all (first pass) | at the end (second pass) | peak | each further "
        "collection held | answer p50, first / second pass | right |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        held = min(r["limit"], n)
        trace = r["rss_trace_mb"]
        per = (trace[held - 1] - trace[0]) / (held - 1) if held > 1 else 0.0
        lines.append(
            f"| {r['limit']} | {r['rss_start_mb']:.0f} MB | {trace[0]:.0f} MB | "
            f"{r['rss_after_first_pass_mb']:.0f} MB | "
            f"{r['rss_end_mb']:.0f} MB | {r['peak_mb']:.0f} MB | {per:+.1f} MB | "
            f"{r['answer_p50_first_s']:.2f} / {r['answer_p50_second_s']:.2f} s | "
            f"{r['answers'] - len(r['wrong'])}/{r['answers']} |")
    lines += [
        "",
        "The models (embedder, generator) are loaded once and shared; each collection adds its "
        "own index (vectors and BM25 arrays memory-mapped, the chunk table, the document list). "
        "The first collection asked also pays one-time costs of the process (allocator arenas, "
        "caches of the first questions), so the cost of a collection is the slope after it. "
        "With a limit below the number of collections, a second pass loads each collection "
        "again: the difference between the two answer medians is that reload.",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {cpu()}, {os.cpu_count()} cores, with "
        f"`{command()}`. {load_note()}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collections", type=int, default=20)
    parser.add_argument("--docs", type=int, default=12, help="SciFact abstracts per collection")
    parser.add_argument("--limits", default="20,4", help="RAG_MAX_LOADED_COLLECTIONS values to run")
    parser.add_argument("--scifact", default=str(ROOT.parent / "shared" / "datasets" / "scifact"))
    parser.add_argument("--work", help="work folder (default: a temporary one, deleted)")
    parser.add_argument("--write", nargs="?", const=str(ROOT / "docs" / "PERFORMANCE.md"),
                        help="update this benchmark's section of docs/PERFORMANCE.md")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    if args.collections > len(CODES):
        parser.error(f"at most {len(CODES)} collections")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="rag-collections-"))
    try:
        names = build(work, args.collections, args.docs, Path(args.scifact))
        results = [run(work, names, int(limit)) for limit in args.limits.split(",")]
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    body = report(results, args.docs)
    print(body)
    if args.json:
        print(json.dumps(results, indent=1))
    if args.write:
        from rag.evaluate import write_section

        write_section(Path(args.write), MARK, body, prefix="perf", header=HEADER)
    return 0 if not any(r["wrong"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
