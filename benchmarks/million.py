"""Scale: the FAISS store at 10k, 100k and 1M chunks — build time, size on disk, load time,
resident memory, search latency and recall@10 against exact search — and, with `--parts text`, the
whole index (chunk texts, BM25, vectors) and one hybrid question against LangChain's retriever.

    python benchmarks/million.py /work/shared/datasets/scifact --sizes 10000,100000,1000000 --write
    python benchmarks/million.py /work/shared/datasets/scifact --parts text --write

The vectors are synthesised, and the docs say so: each is a mix of two real embeddings of
SciFact abstracts (the packaged MiniLM) plus a little noise, normalised, so they keep the shape
of text embeddings (clusters, anisotropy) that uniform noise lacks. The queries are the real
SciFact test questions, embedded by the same model. Exact top-10 is computed while the vectors
are generated, batch by batch. Load, memory and latency are measured in a fresh process per
size (RSS from /proc: anonymous memory plus the mapped file pages actually touched).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import perfkit

BATCH = 50_000


HELD_OUT = 3
"""The corpus's last abstracts are never seeds: the text part adds them as a new document, whose
words and vector must then be its own, not those of hundreds of synthesised copies."""


def seeds(scifact: Path, docs: int, threads: int) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Embeddings of the first `docs` SciFact abstracts (the held-out last ones aside) and of
    the test queries, and their texts."""
    from rag.embed import Embedder
    from rag.evaluate import load_beir

    data = load_beir(scifact)
    corpus = [f"{t}\n\n{x}" for t, x in data.corpus.values()]
    texts = corpus[:min(docs, len(corpus) - HELD_OUT)]
    queries = [data.queries[q] for q in data.qrels if q in data.queries]
    embedder = Embedder("sentence-transformers/all-MiniLM-L6-v2", backend="auto", threads=threads)
    return embedder.encode(texts), embedder.encode(queries), texts, queries


def synthesise(n: int, base: np.ndarray, seed: int = 0):
    """Batches of unit vectors: a real embedding + half another + noise (norm about 0.3)."""
    rng = np.random.default_rng(seed)
    d = base.shape[1]
    for start in range(0, n, BATCH):
        m = min(BATCH, n - start)
        i, j = rng.integers(0, len(base), m), rng.integers(0, len(base), m)
        x = base[i] + 0.5 * base[j] + rng.standard_normal((m, d), dtype=np.float32) * (0.3 / np.sqrt(d))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        yield start, x.astype(np.float32), i


def build_store(n: int, base: np.ndarray, queries: np.ndarray, out: Path, exact_limit: int | None):
    """Build and save the store; returns (build seconds, exact top-10 ids per query)."""
    from rag.store.faiss import FaissStore

    store = FaissStore(base.shape[1])
    if exact_limit is not None:
        store.exact_limit = exact_limit
    best_s = np.full((len(queries), 10), -np.inf, dtype=np.float32)
    best_i = np.full((len(queries), 10), -1, dtype=np.int64)
    spent = 0.0
    for start, x, _ in synthesise(n, base):
        ids = np.arange(start, start + len(x), dtype=np.int64)
        t = time.perf_counter()
        store.add(ids, x)
        spent += time.perf_counter() - t
        scores = queries @ x.T
        top = np.argpartition(-scores, 10, axis=1)[:, :10]
        cand_s = np.concatenate([best_s, np.take_along_axis(scores, top, 1)], axis=1)
        cand_i = np.concatenate([best_i, ids[top]], axis=1)
        order = np.argsort(-cand_s, axis=1)[:, :10]
        best_s, best_i = np.take_along_axis(cand_s, order, 1), np.take_along_axis(cand_i, order, 1)
    t = time.perf_counter()
    store.save(out)
    spent += time.perf_counter() - t
    return spent, best_i, "exact (flat)" if store.exact else f"IVF-SQ8, nprobe {store.nprobe}"


PROBE = """
import json, sys, time
import numpy as np
sys.path.insert(0, {root!r})
from rag.embed import set_threads
from rag.store.faiss import FaissStore
set_threads({threads})

def rss():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return {{k: int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "RssAnon", "RssFile")}}

before = rss()
t = time.perf_counter()
store = FaissStore.load({path!r}, {dim})
load = time.perf_counter() - t
queries = np.load({queries!r})
truth = np.load({truth!r})
found, times = [], []
for rnd in range(3):
    for q in queries:
        t = time.perf_counter()
        ids = store.search(q[None, :], 10)[1][0]
        times.append(time.perf_counter() - t)
        if rnd == 0:
            found.append(ids)
recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, found)]))
print(json.dumps({{"load": load, "times": times, "recall": recall, "before": before, "after": rss()}}))
"""


def probe(path: Path, dim: int, queries: Path, truth: Path, threads: int) -> dict[str, Any]:
    code = PROBE.format(root=str(perfkit.ROOT), threads=threads, path=str(path), dim=dim,
                        queries=str(queries), truth=str(truth))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def vector_rows(args: argparse.Namespace, work: Path, base: np.ndarray, qv: np.ndarray) -> list[str]:
    np.save(work / "queries.npy", qv)
    rows = ["| chunks | index | build | size on disk | load | RSS after searches (anon + file) | "
            "search p50 / p95 | recall@10 vs exact |", "|---|---|---|---|---|---|---|---|"]
    plans = [(n, None) for n in args.sizes]
    if args.flat_reference:
        plans.append((max(args.sizes), 10**12))  # the same vectors, exact search, for reference
    for n, limit in plans:
        path = work / f"vectors-{n}-{'flat' if limit else 'auto'}.faiss"
        build, truth, kind = build_store(n, base, qv, path, limit)
        np.save(work / "truth.npy", truth)
        r = probe(path, base.shape[1], work / "queries.npy", work / "truth.npy", args.threads)
        after = r["after"]
        rows.append(
            f"| {n:,} | {kind} | {build:.1f} s | {path.stat().st_size / 1e6:.0f} MB | "
            f"{r['load'] * 1000:.0f} ms | {after['VmRSS']:.0f} MB ({after['RssAnon']:.0f} + "
            f"{after['RssFile']:.0f}) | {perfkit.pct(r['times'], 0.5) * 1000:.2f} / "
            f"{perfkit.pct(r['times'], 0.95) * 1000:.2f} ms | {r['recall']:.3f} |"
        )
        print(rows[-1], flush=True)
        path.unlink()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scifact", type=Path)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed-docs", type=int, default=5183, help="SciFact abstracts embedded as seeds")
    parser.add_argument("--flat-reference", action="store_true",
                        help="also the largest size with exact search, for comparison")
    parser.add_argument("--parts", default="vectors",
                        help="vectors (the FAISS store), text (the whole index, hybrid questions, LangChain)")
    parser.add_argument("--questions", type=int, default=300, help="questions asked per size (text part)")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    work = args.work or Path(tempfile.mkdtemp(prefix="rag-million-"))
    work.mkdir(parents=True, exist_ok=True)

    t = time.perf_counter()
    base, qv, texts, questions = seeds(args.scifact, args.seed_docs, args.threads)
    print(f"{len(base)} seed embeddings, {len(qv)} queries in {time.perf_counter() - t:.0f} s", flush=True)
    if "vectors" in args.parts:
        body = ["### Vector store", ""] + vector_rows(args, work, base, qv)
        body += ["", "Vectors synthesised from SciFact embeddings (see the script's docstring); queries "
                 f"are the {len(qv)} SciFact test questions; {args.threads} threads; search is one query "
                 "at a time, 3 passes; load and RSS are measured in a fresh process per size.",
                 "", f"Command: `{perfkit.command()}`. {perfkit.load_note()}"]
        write(args, "million", "## Scale: 10k to 1M chunks\n\n" + "\n".join(body))
    if "text" in args.parts:
        from scale_text import __doc__ as about
        from scale_text import text_rows

        body = ["### Whole index: texts, BM25 and vectors", ""]
        body += text_rows(args, work, base, texts, questions[:args.questions])
        body += ["", " ".join(about.split("\n\n", 1)[1].split()), f"{args.threads} threads; "
                 f"{min(args.questions, len(questions))} SciFact questions × 2, one at a time.", "",
                 f"Command: `{perfkit.command()}`. {perfkit.load_note()}"]
        write(args, "million-text", "\n".join(body))


def write(args: argparse.Namespace, key: str, text: str) -> None:
    print(text, flush=True)
    if args.write:
        perfkit.write_section(key, text)

if __name__ == "__main__":
    main()
