"""Incremental BM25: the segments of rag/store/lexical.py against tantivy (the Rust search
library, Python bindings `pip install tantivy`) on the same synthetic chunks.

    python benchmarks/bm25_incremental.py /work/shared/datasets/scifact --chunks 100000 --write

Chunks are 800-character windows of SciFact abstracts (chunk i takes abstract i mod 5183 at a
shifted start, so texts repeat the way the 1M-chunk benchmark's do). Both engines get the same
tokens (our tokeniser's output, joined by spaces; tantivy splits on whitespace), so only the
engines differ. Measured, for each: the initial build (and save/commit), adding one document
of 10 chunks and making it searchable on disk (ours: new segment + the BM25 folder saved into a
fresh generation folder, unchanged segments hard-linked; tantivy: add, commit, reload), deleting
that document the same way, the load of the saved index in this process, and the p50 / p95 of
top-100 keyword queries (the SciFact test questions). Score agreement: the share of our top-10
that tantivy's top-10 holds (tantivy stores document lengths in one byte, so its BM25 differs
slightly from the exact one).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import perfkit

ADD = 10
"""Chunks in the added document."""


def chunks(scifact: Path, n: int) -> tuple[list[tuple[int, str]], list[str]]:
    from rag.evaluate import load_beir

    data = load_beir(scifact)
    abstracts = [f"{t}\n\n{x}" for t, x in data.corpus.values()]
    out = []
    for i in range(n):
        text = abstracts[i % len(abstracts)]
        start = (i // len(abstracts)) * 37 % max(len(text) - 400, 1)
        out.append((i, text[start:start + 800]))
    questions = [data.queries[q] for q in data.qrels if q in data.queries]
    return out, questions


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def ours(corpus, questions, extra, work: Path) -> dict:
    from rag.store.lexical import Bm25

    r: dict = {}
    bm25: Bm25 | None = None

    def build():
        nonlocal bm25
        bm25 = Bm25.build(corpus)
        bm25.save(work / "g0")
    r["build"] = timed(build)
    r["load"] = timed(lambda: Bm25.load(work / "g0"))
    bm25 = Bm25.load(work / "g0")

    def add():
        bm25.add(extra)
        bm25.save(work / "g1")
    r["add"] = timed(add)

    def delete():
        bm25.remove([c for c, _ in extra])
        bm25.save(work / "g2")
    r["delete"] = timed(delete)
    bm25 = Bm25.load(work / "g2")
    r["times"], r["top"] = [], []
    for q in questions:
        t = time.perf_counter()
        hits = bm25.search(q, 100)
        r["times"].append(time.perf_counter() - t)
        r["top"].append([c for c, _ in hits[:10]])
    return r


def tantivy_side(corpus, questions, extra, work: Path) -> dict:
    import tantivy

    from rag.store.lexical import tokenize

    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("id", stored=True, indexed=True, fast=True)
    builder.add_text_field("text", tokenizer_name="whitespace", index_option="freq")
    schema = builder.build()
    r: dict = {}
    path = work / "tantivy"
    path.mkdir()

    def build():
        index = tantivy.Index(schema, path=str(path))
        writer = index.writer(heap_size=128_000_000, num_threads=1)
        for cid, text in corpus:
            writer.add_document(tantivy.Document(id=cid, text=" ".join(tokenize(text))))
        writer.commit()
        writer.wait_merging_threads()
    r["build"] = timed(build)
    r["load"] = timed(lambda: tantivy.Index.open(str(path)).searcher())
    index = tantivy.Index.open(str(path))
    writer = index.writer(heap_size=50_000_000, num_threads=1)

    def add():
        for cid, text in extra:
            writer.add_document(tantivy.Document(id=cid, text=" ".join(tokenize(text))))
        writer.commit()
        index.reload()
    r["add"] = timed(add)

    def delete():
        for cid, _ in extra:
            writer.delete_documents_by_term("id", cid)
        writer.commit()
        index.reload()
    r["delete"] = timed(delete)
    searcher = index.searcher()
    r["times"], r["top"] = [], []
    for q in questions:
        terms = " ".join(dict.fromkeys(t for t in tokenize(q)))  # OR of the terms, BM25
        t = time.perf_counter()
        hits = []
        if terms:
            query = index.parse_query_lenient(terms, ["text"])[0]
            result = searcher.search(query, 100).hits
            hits = [searcher.doc(address)["id"][0] for _, address in result]
        r["times"].append(time.perf_counter() - t)
        r["top"].append(hits[:10])
    return r


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scifact", type=Path)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    corpus, questions = chunks(args.scifact, args.chunks + ADD)
    corpus, extra = corpus[:args.chunks], corpus[args.chunks:]
    work = Path(tempfile.mkdtemp(prefix="rag-bm25-"))
    try:
        a = ours(corpus, questions, extra, work)
        b = tantivy_side(corpus, questions, extra, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    overlap = sum(len(set(x) & set(y)) for x, y in zip(a["top"], b["top"])) / max(
        sum(len(x) for x in a["top"]), 1)
    rows = [f"| engine ({args.chunks:,} chunks) | build + save | load | add a {ADD}-chunk document, "
            "saved | delete it, saved | keyword query p50 / p95 (top 100) |", "|---|---|---|---|---|---|"]
    for name, r in (("segments (rag/store/lexical.py)", a), ("tantivy", b)):
        rows.append(f"| {name} | {r['build']:.1f} s | {r['load'] * 1000:.0f} ms | {r['add'] * 1000:.0f} ms | "
                    f"{r['delete'] * 1000:.0f} ms | {perfkit.pct(r['times'], 0.5) * 1000:.2f} / "
                    f"{perfkit.pct(r['times'], 0.95) * 1000:.2f} ms |")
    text = "\n".join(rows + ["", f"tantivy's top 10 holds {overlap:.1%} of the exact BM25 top 10 "
                             f"({len(questions)} SciFact questions; same tokens for both).", "",
                             f"Command: `{perfkit.command()}`. {perfkit.load_note()}"])
    print(text, flush=True)
    if args.write:
        perfkit.write_section("bm25-incremental", text)


if __name__ == "__main__":
    main()
