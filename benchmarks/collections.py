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

Exit status 0 only if no answer comes from another collection (answers the reader misses
within its own collection's documents are counted and listed apart).
"""

from __future__ import annotations

# This file shares its name with the standard library's `collections`; that module is imported
# at interpreter start-up (by site), before this folder is on sys.path, so it is not shadowed.
import argparse
import json
import os
import re
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
        passes, crossed, missed, trace = [], [], [], []
        for _ in (1, 2):
            seconds = []
            for n, name in enumerate(names):
                took, final = ask(client, SAME_QUESTION, name)
                seconds.append(took)
                text = (final.get("answer") or "").lower()
                notes = " ".join(s["text"] for s in final.get("sources", [])
                                 if s["doc_id"] == "archive-notes.md").lower()
                words = set(re.findall(r"[a-z]+", f"{text} {notes}"))
                foreign = [w for i, w in enumerate(CODES + [t.lower() for t in TOWNS])
                           if i % len(CODES) != n and w in words]
                if foreign:
                    crossed.append(f"{name}: {foreign} in {final.get('answer')!r}")
                elif final.get("refused") or CODES[n] not in text:
                    missed.append(f"{name}: {final.get('answer') or final.get('error')!r}")
                other_town = TOWNS[(n + 1) % len(names)]
                _, refusal = ask(client, f"Which archive is kept in {other_town}?", name)
                if not refusal.get("refused"):
                    crossed.append(f"{name} answered about {other_town}: {refusal.get('answer')!r}")
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
            "answers": 4 * len(names), "crossed": crossed, "missed": missed,
        }
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def probe(work: Path, names: list[str], limit: int) -> dict:
    """Index memory alone, in a fresh process: the embedder and the default collection loaded,
    then a search (retrieval only, no generator) in every collection, twice."""
    out = subprocess.run([sys.executable, __file__, "--probe", str(work), "--limits", str(limit),
                          "--names", ",".join(names)], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=3600)
    if out.returncode != 0:
        raise SystemExit(f"probe failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def probe_main(work: Path, names: list[str], limit: int) -> None:
    import gc

    from rag import Settings
    from rag.collections import Collections

    settings = Settings.from_env(corpus_dir=work / "library", index_dir=work / "index",
                                 collections_dir=work / "collections", generator="extractive",
                                 max_loaded_collections=limit)
    collections = Collections(settings=settings)
    collections.home.search(SAME_QUESTION)
    gc.collect()
    start, _ = memory(os.getpid())
    trace, chunks = [], []
    for _ in (1, 2):
        for name in names:
            collections.get(name).search(SAME_QUESTION)
            gc.collect()
            trace.append(round(memory(os.getpid())[0], 1))
    chunks = [collections.info(name).chunks for name in names]
    print(json.dumps({"limit": limit, "rss_start_mb": round(start, 1), "rss_trace_mb": trace,
                      "chunks": chunks, "peak_mb": round(memory(os.getpid())[1], 1)}))


def cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return "unknown CPU"
    info = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    flags = [f for f in info.get("Flags", "").split() if f.startswith(("avx512", "amx", "avx2"))]
    return f"{info.get('Model name', '?').strip()} ({', '.join(flags[:6]) or 'no AVX flags listed'})"


def report(results: list[dict], probes: list[dict], docs: int) -> str:
    n = results[0]["collections"] if results else len(probes[0]["chunks"])
    lines = [
        "## Many collections in one server",
        "",
        f"{n} collections of {docs} SciFact abstracts and one note each, in one `rag serve` "
        "(SmolLM2 generator, FAISS). Every collection is asked the same question (\"What is the "
        "access code of the archive?\": its own word, and no other collection's) and a question "
        "only the next collection can answer (\"Which archive is kept in <the next one's "
        "town>?\": refused), through `/ask`; then everything again. Memory is the server's "
        "resident set (VmRSS) after the models and the default collection are loaded, after "
        "the first collection, after the first pass, at the end, and its peak (VmHWM).",
        "",
        "| loaded at most (`RAG_MAX_LOADED_COLLECTIONS`) | RSS after start | after the first "
        "collection | after all (first pass) | at the end (second pass) | peak | answer p50, "
        "first / second pass | answers from another collection | own answers missed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        trace = r["rss_trace_mb"]
        lines.append(
            f"| {r['limit']} | {r['rss_start_mb']:.0f} MB | {trace[0]:.0f} MB | "
            f"{r['rss_after_first_pass_mb']:.0f} MB | {r['rss_end_mb']:.0f} MB | {r['peak_mb']:.0f} MB | "
            f"{r['answer_p50_first_s']:.2f} / {r['answer_p50_second_s']:.2f} s | "
            f"{len(r['crossed'])} of {r['answers']} | {len(r['missed'])} of {r['answers'] // 2} |")
    missed = sorted({m for r in results for m in r["missed"]})
    if missed:
        lines += ["", "Missed (the reader's, within the collection's own documents): "
                  + "; ".join(missed) + "."]
    lines += [
        "",
        "The server's RSS is mostly the models (loaded once, shared by every collection); it "
        "grows with the first questions (allocator arenas, the generator's buffers) whatever "
        "the limit, so the indexes' own share is measured apart: in a fresh process with the "
        "embedder only, a search in every collection, twice (`--probe`).",
        "",
        "| chunks per collection (mean) | loaded at most | RSS after the embedder and default | "
        "after all searched once | after the second pass | each collection held |",
        "|---|---|---|---|---|---|",
    ]
    for p in probes:
        held = min(p["limit"], len(p["chunks"]))
        trace = p["rss_trace_mb"]
        first = trace[: len(p["chunks"])]
        per = (first[held - 1] - first[0]) / (held - 1) if held > 1 else 0.0
        lines.append(
            f"| {sum(p['chunks']) / len(p['chunks']):.0f} | {p['limit']} | {p['rss_start_mb']:.0f} MB | "
            f"{first[-1]:.0f} MB | {trace[-1]:.0f} MB | {per:+.2f} MB |")
    lines += [
        "",
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
    parser.add_argument("--probe-docs", type=int, default=150,
                        help="abstracts per collection for a second, index-memory-only run (0: none)")
    parser.add_argument("--limits", default="20,4", help="RAG_MAX_LOADED_COLLECTIONS values to run")
    parser.add_argument("--scifact", default=str(ROOT.parent / "shared" / "datasets" / "scifact"))
    parser.add_argument("--work", help="work folder (default: a temporary one, deleted)")
    parser.add_argument("--write", nargs="?", const=str(ROOT / "docs" / "PERFORMANCE.md"),
                        help="update this benchmark's section of docs/PERFORMANCE.md")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument("--probe", metavar="WORK", help=argparse.SUPPRESS)
    parser.add_argument("--names", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    limits = [int(x) for x in args.limits.split(",")]
    if args.probe:
        probe_main(Path(args.probe), args.names.split(","), limits[0])
        return 0
    if args.collections > len(CODES):
        parser.error(f"at most {len(CODES)} collections")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="rag-collections-"))
    try:
        names = build(work / "small", args.collections, args.docs, Path(args.scifact))
        results = [run(work / "small", names, limit) for limit in limits]
        probes = [probe(work / "small", names, limit) for limit in limits]
        if args.probe_docs:
            build(work / "large", args.collections, args.probe_docs, Path(args.scifact))
            probes += [probe(work / "large", names, limit) for limit in limits]
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    body = report(results, probes, args.docs)
    print(body)
    if args.json:
        print(json.dumps({"server": results, "index": probes}, indent=1))
    if args.write:
        from rag.evaluate import write_section

        write_section(Path(args.write), MARK, body, prefix="perf", header=HEADER)
    return 0 if not any(r["crossed"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
