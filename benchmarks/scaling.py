"""Scaling figures for docs/SCALING.md: parallel ingestion into Milvus, and query latency at
100k chunks on FAISS and on Milvus.

    python benchmarks/scaling.py --scifact /work/shared/datasets/scifact --docs 600 \\
        --workers 1,2,4 --chunks 100000 --queries 200 [--parts ingest,search,sizes]

Ingestion: SciFact abstracts written as files into a library, then N `rag index --shard i/N`
processes started together against one Milvus Lite server (started here on 127.0.0.1) and
timed from start to the last exit; the real embedding model runs in every worker, with
`RAG_THREADS` = cores / N so the workers share the cores instead of oversubscribing them.
A single `rag index` on FAISS gives the baseline. Every run checks that the collection holds
exactly the chunks the library makes (nothing lost, nothing twice).

Search: 100k chunks with SciFact sentences as text and synthetic unit vectors (random, 384-d:
embedding 100k chunks would take most of an hour on this machine; exact search cost does not
depend on the values). Latency per query, one query at a time, dense top-50 and BM25 top-50,
on FAISS (IndexFlatIP, bm25s in process) and Milvus (FLAT, BM25 function, over gRPC on
loopback), median of `--repeats` passes over the queries, one thread per search.

Sizes: bytes per vector of FLAT, IVF_FLAT, IVF_SQ8, IVF_PQ and HNSW, as FAISS serializes them
(Milvus' knowhere engine builds these index types on FAISS), for the on-paper cluster sizing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# one thread per search, here and in the Milvus Lite server: one query at a time is measured,
# and on a shared 2-core machine FAISS's OpenMP pool only adds contention (torch in the
# indexing workers gets RAG_THREADS explicitly)
os.environ["OMP_NUM_THREADS"] = "1"

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.core import pct  # noqa: E402
from rag.store.milvus import MilvusStore, lite_server  # noqa: E402


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_library(scifact: Path, folder: Path, docs: int) -> int:
    folder.mkdir(parents=True)
    rows = read_jsonl(scifact / "corpus.jsonl")[:docs]
    for row in rows:
        (folder / f"{row['_id']}.txt").write_text(f"{row['title']}\n\n{row['text']}\n", encoding="utf-8")
    return len(rows)


def ingest(library: Path, work: Path, workers: int, env: dict[str, str], threads: int) -> dict:
    """N sharded `rag index` workers at once; wall time from start to the last exit."""
    env = dict(env, RAG_CORPUS_DIR=str(library), RAG_INDEX_DIR=str(work / f"index-{uuid.uuid4().hex[:6]}"),
               RAG_THREADS=str(max(1, threads // workers)), RAG_GENERATOR="extractive")
    shard = ["--shard", "{i}/{n}"] if workers > 1 or env.get("RAG_STORE") == "milvus" else []
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "rag.cli", "index", "--quiet",
                               *[a.format(i=i, n=workers) for a in shard]],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
             for i in range(1, workers + 1)]
    outs = [p.communicate() for p in procs]
    wall = time.perf_counter() - start
    for p, (out, err) in zip(procs, outs):
        if p.returncode != 0:
            raise SystemExit(f"worker failed:\n{out}\n{err}")
    chunks = sum(int(out.split(" chunks embedded")[0].rsplit(", ", 1)[-1]) for out, _ in outs)
    return {"workers": workers, "seconds": wall, "chunks": chunks, "chunks_per_s": chunks / wall,
            "per_worker": [out.strip().splitlines()[-1] for out, _ in outs]}


def ingestion(args: argparse.Namespace, uri: str, work: Path) -> list[dict]:
    library = work / "library"
    n = write_library(Path(args.scifact), library, args.docs)
    print(f"library: {n} SciFact abstracts", file=sys.stderr)
    results = []
    base = dict(os.environ, RAG_STORE="faiss")
    results.append({"store": "faiss", **ingest(library, work, 1, base, args.threads)})
    print(results[-1], file=sys.stderr)
    for workers in args.workers:
        collection = f"ingest{workers}_{uuid.uuid4().hex[:6]}"
        env = dict(os.environ, RAG_STORE="milvus", RAG_MILVUS_URI=uri, RAG_MILVUS_COLLECTION=collection)
        result = {"store": "milvus", **ingest(library, work, workers, env, args.threads)}
        store = MilvusStore(384, uri, collection)
        result["rows_in_milvus"] = len(store)
        if result["rows_in_milvus"] != result["chunks"]:
            raise SystemExit(f"{workers} workers: {result['chunks']} chunks embedded but "
                             f"{result['rows_in_milvus']} rows in Milvus")
        store.close()
        results.append(result)
        print(result, file=sys.stderr)
    return results


def corpus_texts(scifact: Path, n: int) -> list[str]:
    """n passages of two SciFact sentences each, cycling through the corpus."""
    sentences = [s.strip() + "." for row in read_jsonl(scifact / "corpus.jsonl")
                 for s in row["text"].split(". ") if len(s) > 30]
    return [f"{sentences[(2 * i) % len(sentences)]} {sentences[(2 * i + 1) % len(sentences)]}"
            for i in range(n)]


def timed(fn, queries: list, repeats: int) -> list[float]:
    """Per-query latencies in ms: the median over `repeats` passes, query by query."""
    runs = []
    for _ in range(repeats):
        times = []
        for q in queries:
            t = time.perf_counter()
            fn(q)
            times.append((time.perf_counter() - t) * 1000)
        runs.append(times)
    return [statistics.median(col) for col in zip(*runs)]


def search(args: argparse.Namespace, uri: str) -> dict:
    import faiss

    from rag.store.faiss import FaissStore
    from rag.store.lexical import Bm25

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(0)
    n, dim = args.chunks, 384
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts = corpus_texts(Path(args.scifact), n)
    qtexts = [r["text"] for r in read_jsonl(Path(args.scifact) / "queries.jsonl")][: args.queries]
    qvecs = rng.standard_normal((len(qtexts), dim)).astype(np.float32)
    qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
    ids = np.arange(n, dtype=np.int64)
    out: dict = {"chunks": n, "queries": len(qtexts), "k": 50}

    faiss_store = FaissStore(dim)
    t = time.perf_counter()
    faiss_store.add(ids, vectors)
    bm25 = Bm25.build(zip(ids.tolist(), texts))
    out["faiss_build_s"] = time.perf_counter() - t
    out["faiss_dense_ms"] = timed(lambda q: faiss_store.search(q[None], 50), list(qvecs), args.repeats)
    out["faiss_bm25_ms"] = timed(lambda q: bm25.search(q, 50), qtexts, args.repeats)

    store = MilvusStore(dim, uri, f"search_{uuid.uuid4().hex[:6]}")
    rows = [{"doc_id": f"d{i // 4}", "text": text, "start": 0, "end": len(text), "ordinal": i % 4}
            for i, text in enumerate(texts)]
    t = time.perf_counter()
    store.add(ids, vectors, rows)
    out["milvus_insert_s"] = time.perf_counter() - t
    t = time.perf_counter()
    store.save(Path("."))
    out["milvus_flush_s"] = time.perf_counter() - t
    assert len(store) == n
    out["milvus_dense_ms"] = timed(lambda q: store.search_rows(q[None], 50, fields=[]), list(qvecs),
                                   args.repeats)
    out["milvus_bm25_ms"] = timed(lambda q: store.keyword_rows(q, 50), qtexts, args.repeats)
    store.close()
    return out


def index_sizes(n: int, dim: int = 384) -> list[dict]:
    """Bytes per vector of the FAISS index types Milvus' engine (knowhere) builds on, measured
    as the serialized size of each index over n synthetic vectors (what a query node holds)."""
    import faiss

    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    nlist = max(16, int(4 * np.sqrt(n)))
    specs = {"FLAT": "IDMap2,Flat", f"IVF_FLAT (nlist {nlist})": f"IVF{nlist},Flat",
             "IVF_SQ8": f"IVF{nlist},SQ8", "IVF_PQ (m=48, 8 bits)": f"IVF{nlist},PQ48x8",
             "HNSW (M=16)": "IDMap2,HNSW16", "HNSW (M=32)": "IDMap2,HNSW32"}
    rows = []
    for name, factory in specs.items():
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        t = time.perf_counter()
        index.train(x[: min(n, 50 * nlist)])
        index.add_with_ids(x, np.arange(n, dtype=np.int64))
        build = time.perf_counter() - t
        size = len(faiss.serialize_index(index))
        rows.append({"index": name, "bytes_per_vector": size / n, "build_s": build})
        print(rows[-1], file=sys.stderr)
    return rows


def report(ingest_rows: list[dict], search_row: dict, command: str, sizes: list[dict] | None = None) -> str:
    lines = [f"Command: `{command}`", ""]
    if ingest_rows:
        lines += ["| store | workers | chunks | wall time (s) | chunks/s | vs 1 Milvus worker |",
                  "|---|---|---|---|---|---|"]
        one = next((r for r in ingest_rows if r["store"] == "milvus" and r["workers"] == 1), None)
        for r in ingest_rows:
            ratio = f"{r['chunks_per_s'] / one['chunks_per_s']:.2f}x" if one else "-"
            lines.append(f"| {r['store']} | {r['workers']} | {r['chunks']} | {r['seconds']:.1f} | "
                         f"{r['chunks_per_s']:.1f} | {ratio} |")
        lines.append("")
    if search_row:
        s = search_row
        lines += [f"{s['chunks']:,} chunks, {s['queries']} queries, top-{s['k']}, one query at a time:", "",
                  "| backend | search | p50 (ms) | p95 (ms) |", "|---|---|---|---|"]
        for key, label in (("faiss_dense_ms", "FAISS IndexFlatIP (in process)"),
                           ("faiss_bm25_ms", "bm25s (in process)"),
                           ("milvus_dense_ms", "Milvus Lite FLAT (gRPC, loopback)"),
                           ("milvus_bm25_ms", "Milvus Lite BM25 function (gRPC, loopback)")):
            lines.append(f"| {label.split(' ', 1)[0]} | {label.split(' ', 1)[1]} | "
                         f"{pct(s[key], 0.5):.1f} | {pct(s[key], 0.95):.1f} |")
        lines += ["", f"Build: FAISS + bm25s {s['faiss_build_s']:.1f} s; Milvus insert "
                  f"{s['milvus_insert_s']:.1f} s + flush {s['milvus_flush_s']:.1f} s.", ""]
    if sizes:
        lines += ["| index type | bytes per vector | GB per million | GB per 100M | build (s) |",
                  "|---|---|---|---|---|"]
        for r in sizes:
            b = r["bytes_per_vector"]
            lines.append(f"| {r['index']} | {b:.0f} | {b / 1000:.3f} | {b / 10:.1f} | {r['build_s']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scifact", required=True, help="BEIR SciFact folder (corpus.jsonl, queries.jsonl)")
    parser.add_argument("--docs", type=int, default=600, help="abstracts to ingest")
    parser.add_argument("--workers", default="1,2,4", help="worker counts to measure")
    parser.add_argument("--chunks", type=int, default=100_000, help="chunks for the search part")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="cores to share")
    parser.add_argument("--parts", default="ingest,search,sizes",
                        help="which parts to run: ingest, search, sizes (index bytes per vector)")
    parser.add_argument("--size-vectors", type=int, default=100_000, help="vectors for the sizes part")
    parser.add_argument("--json", metavar="FILE", help="also write the raw figures here")
    args = parser.parse_args()
    args.workers = [int(w) for w in args.workers.split(",")]
    parts = set(args.parts.split(","))
    command = "python " + " ".join(sys.argv)
    with tempfile.TemporaryDirectory(prefix="rag-scaling-") as tmp:
        work = Path(tmp)
        with lite_server(work / "milvus") as uri:
            ingest_rows = ingestion(args, uri, work) if "ingest" in parts else []
            search_row = search(args, uri) if "search" in parts else {}
    sizes = index_sizes(args.size_vectors) if "sizes" in parts else []
    if args.json:
        Path(args.json).write_text(json.dumps({"ingest": ingest_rows, "search": search_row, "sizes": sizes},
                                              indent=1))
    print(report(ingest_rows, search_row, command, sizes))


if __name__ == "__main__":
    main()
