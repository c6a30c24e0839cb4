"""Retrieval latency of one question (query embedding + search + fusion), ours against the stock
LangChain FAISS retriever, in the same run, on the seed corpus and on SciFact; and FAISS search
with 1 or 2 threads.

    python benchmarks/retrieval_latency.py --scifact /work/shared/datasets/scifact --runs 3 --write

The LangChain retriever is `FAISS.as_retriever(k=4)` over HuggingFaceEmbeddings (torch, the
same model), built from our chunk texts and vectors with `FAISS.from_embeddings`, so no time
goes into embedding the corpus twice: its query path is exactly the stock one.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import perfkit
from perfkit import ms, pct


def per_question(fn: Any, questions: list[str], runs: int) -> list[float]:
    fn(questions[0])  # warm-up
    times = []
    for _ in range(runs):
        for q in questions:
            t = time.perf_counter()
            fn(q)
            times.append(time.perf_counter() - t)
    return times


def measure(name: str, corpus: Path, questions: list[str], work: Path, lc_emb: Any, torch_emb: Any,
            args: argparse.Namespace) -> list[str]:
    from langchain_community.vectorstores import FAISS

    from rag import Assistant, Settings
    from rag.retrieve import HybridRetriever

    assistant = Assistant(Settings.from_env(corpus_dir=corpus, index_dir=work / f"index-{name}",
                                            generator="extractive", threads=args.threads))
    t = time.perf_counter()
    assistant.refresh()
    print(f"{name}: indexed in {time.perf_counter() - t:.0f} s", flush=True)
    index = assistant.index_data
    k = 4
    ours = per_question(lambda q: assistant.retriever.run(q, k), questions, args.runs)
    embed = per_question(assistant.embedder.encode_query, questions, args.runs)
    torch_hybrid = HybridRetriever(torch_emb, lambda: index, fusion=assistant.settings.fusion,
                                   dense_weight=assistant.settings.dense_weight)
    ours_torch = per_question(lambda q: torch_hybrid.run(q, k), questions, args.runs)

    chunks = list(index.chunks.values())
    vectors = np.vstack([index.store._index.reconstruct(c.id) for c in chunks]) if index.store.exact \
        else assistant.embedder.encode([c.text for c in chunks])
    lc_store = FAISS.from_embeddings(list(zip([c.text for c in chunks], vectors.tolist())), lc_emb)
    retriever = lc_store.as_retriever(search_kwargs={"k": k})
    lc = per_question(retriever.invoke, questions, args.runs)

    ratio = pct(ours, 0.5) / pct(lc, 0.5)
    return [
        f"| {name} ({len(chunks):,} chunks, {len(questions)} questions × {args.runs}) | LangChain "
        f"FAISS retriever (torch query embedding, exact search) | {ms(lc)} | 1.00 |",
        f"| | rag hybrid, torch query embedding | {ms(ours_torch)} | "
        f"{pct(ours_torch, 0.5) / pct(lc, 0.5):.2f} |",
        f"| | **rag hybrid (default: OpenVINO query embedding, BM25 + dense, convex fusion)** | "
        f"{ms(ours)} | **{ratio:.2f}** |",
        f"| | of which the query embedding (OpenVINO) | {ms(embed)} | |",
    ]


def faiss_threads(runs: int) -> list[str]:
    """One query at a time over 10k / 100k exact vectors with 1 and 2 FAISS threads."""
    import faiss

    rng = np.random.default_rng(0)
    rows = []
    for n in (10_000, 100_000):
        x = rng.standard_normal((n, 384), dtype=np.float32)
        index = faiss.IndexFlatIP(384)
        index.add(x)
        queries = rng.standard_normal((100, 384), dtype=np.float32)
        cells = []
        for threads in (1, 2):
            faiss.omp_set_num_threads(threads)
            times = per_question(lambda q, ix=index: ix.search(q[None, :], 10), list(queries), runs)
            cells.append(ms(times))
        rows.append(f"| {n:,} | {cells[0]} | {cells[1]} |")
    faiss.omp_set_num_threads(1)
    return ["| exact vectors | 1 FAISS thread | 2 FAISS threads |", "|---|---|---|"] + rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scifact", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    from rag.embed import Embedder

    work = Path(tempfile.mkdtemp(prefix="rag-latency-"))
    lc_emb = perfkit.langchain_embeddings(args.threads)
    torch_emb = Embedder("sentence-transformers/all-MiniLM-L6-v2", backend="torch")
    seed_q = [q["q"] for q in json.loads((perfkit.ROOT / "benchmarks" / "seed_questions.json")
                                         .read_text())["questions"]]
    rows = ["| corpus | retriever | one question | p50 vs LangChain |", "|---|---|---|---|"]
    rows += measure("seed corpus", perfkit.ROOT / "seeds", seed_q, work, lc_emb, torch_emb, args)
    if args.scifact:
        data, _ = perfkit.scifact_files(args.scifact, work / "scifact")
        questions = [data.queries[q] for q in data.qrels if q in data.queries]
        rows += measure("SciFact", work / "scifact", questions, work, lc_emb, torch_emb, args)
    note = (f"k = 4, {args.threads} threads for the embedding models (1 for OpenVINO's query model); "
            "FAISS searches with 1 thread (below). Target: rag p50 ≤ 0.4× LangChain.")
    body = rows + ["", note, "", "FAISS threads, one query at a time (random vectors, the machine "
                   "shared with other jobs):", ""]
    body += faiss_threads(args.runs) + ["", f"Command: `{perfkit.command()}`. {perfkit.load_note()}"]
    text = "\n".join(body)
    print(text)
    if args.write:
        perfkit.write_section("latency", "## Retrieval latency\n\n" + text)


if __name__ == "__main__":
    main()
