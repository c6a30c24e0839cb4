"""Which embedding precision is fastest on this machine, and which may share an index.

1. The choice table: every candidate rag.embed.choice times on this machine (chunks/s on the
   shipped sample, mean cosine to f32, one question's ms on 1 and 2 threads), the choice, and
   the CPU (model and flags, as lscpu shows them). Measures again (`rag config --measure`).
2. The mixing check on BEIR SciFact: documents embedded by precision A, questions by B, dense
   nDCG@10 against pure A (dense alone: the hybrid's BM25 half would hide a difference). A pair
   whose difference is within 0.002 both ways may go into rag.embed.base.MIXABLE.

    python benchmarks/precision.py                    # full: all 5,183 abstracts, 300 questions
    python benchmarks/precision.py --docs 400         # small: the judged abstracts + fill
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import perfkit  # noqa: F401  (offline, quiet, thread settings)
from perfkit import ROOT, cpu_line

sys.path.insert(0, str(ROOT))

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def choice_table(threads: int, seconds: float) -> tuple[str, list[tuple[str, str]]]:
    from rag.config import default_cache_dir
    from rag.embed import choice, resolve_model

    pairs = choice.candidates("auto", choice.cpu_info()[1])
    found = choice.choose(MODEL, resolve_model(MODEL), default_cache_dir(), threads, remeasure=True,
                          seconds=seconds)
    lines = [f"CPU: {cpu_line()}; {threads} threads; measured in {found.seconds} s", "",
             "| candidate | chunks/s | cosine to f32 | |", "|---|---:|---:|---|"]
    for name, rate in sorted(found.rates.items(), key=lambda kv: -kv[1]):
        note = "**chosen**" if name == found.name else found.rejected.get(name, "")
        lines.append(f"| {name} | {rate:.1f} | {found.cosine.get(name, 0):.4f} | {note} |")
    timings = ", ".join(f"{n} thread(s) {ms:.2f} ms" for n, ms in found.query_ms.items())
    lines += ["", f"one question: {timings}; questions use {found.query_threads}"]
    return "\n".join(lines), pairs


def subset(data, docs: int | None, queries: int) -> tuple[dict, dict, dict]:
    """The first `queries` judged questions, their relevant abstracts, and others up to `docs`."""
    judged = [q for q in data.qrels if q in data.queries][:queries]
    qrels = {q: data.qrels[q] for q in judged}
    if docs is None:
        return data.corpus, {q: data.queries[q] for q in judged}, qrels
    keep = list(dict.fromkeys(d for q in judged for d in qrels[q] if d in data.corpus))
    for doc in data.corpus:
        if len(keep) >= docs:
            break
        if doc not in keep:
            keep.append(doc)
    return {d: data.corpus[d] for d in keep}, {q: data.queries[q] for q in judged}, qrels


def mixing(pairs: list[tuple[str, str]], docs: int | None, queries: int, threads: int) -> str:
    from rag.config import default_cache_dir
    from rag.embed import Embedder, choice
    from rag.evaluate import load_beir, retrieval_metrics

    data = load_beir(ROOT.parent / "shared" / "datasets" / "scifact")
    corpus, questions, qrels = subset(data, docs, queries)
    ids = list(corpus)
    texts = [f"{corpus[d][0]}\n{corpus[d][1]}".strip() for d in ids]
    qids = list(questions)
    doc_vectors, query_vectors = {}, {}
    with tempfile.TemporaryDirectory() as scratch:  # int8 calibrated on these abstracts, not kept
        cache = Path(scratch)
        choice._share_exports(default_cache_dir(), cache)
        for backend, precision in pairs:
            name = f"{backend}:{precision}"
            embedder = Embedder(MODEL, backend=backend, cache_dir=cache, threads=threads,
                                precision="auto" if backend == "torch" else precision)
            start = time.perf_counter()
            doc_vectors[name] = embedder.encode(texts)
            query_vectors[name] = np.stack([embedder.encode_query(questions[q]) for q in qids])
            print(f"{name}: {len(texts)} abstracts in {time.perf_counter() - start:.1f} s", file=sys.stderr)

    def ndcg(a: str, b: str) -> float:
        scores = query_vectors[b] @ doc_vectors[a].T
        run = {}
        for row, q in enumerate(qids):
            top = np.argsort(-scores[row])[:100]
            run[q] = {ids[i]: float(scores[row, i]) for i in top}
        return retrieval_metrics(qrels, run)["ndcg@10"]

    names = list(doc_vectors)
    pure = {a: ndcg(a, a) for a in names}
    lines = [f"SciFact: {len(ids)} abstracts, {len(qids)} questions, dense nDCG@10; rows: the index's "
             "precision (A), columns: the questions' (B); in brackets the difference to pure A", "",
             "| index \\ questions | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    close: list[str] = []
    for a in names:
        cells = []
        for b in names:
            value = ndcg(a, b)
            cells.append(f"{value:.4f}" + ("" if a == b else f" ({value - pure[a]:+.4f})"))
            if a < b and abs(value - pure[a]) <= 0.002 and abs(ndcg(b, a) - pure[b]) <= 0.002:
                close.append(f"frozenset({{{a!r}, {b!r}}})")
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    lines += ["", "within 0.002 both ways (candidates for MIXABLE): " + (", ".join(close) or "none")]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=None, help="abstracts (default: all)")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=1.0, help="timed run per candidate")
    parser.add_argument("--skip-choice", action="store_true", help="only the mixing check")
    args = parser.parse_args()
    from rag.embed import choice

    if args.skip_choice:
        print(f"CPU: {cpu_line()}")
        pairs = choice.candidates("auto", choice.cpu_info()[1])
    else:
        table, pairs = choice_table(args.threads, args.seconds)
        print(table + "\n")
    print(mixing(pairs, args.docs, args.queries, args.threads))


if __name__ == "__main__":
    main()
