"""The whole index at scale (benchmarks/million.py `--parts text`): chunk texts, BM25 and
vectors saved as a generation, loaded in a fresh process, and one hybrid question at a time
(query embedding + BM25 + dense + fusion) against LangChain's FAISS retriever at the same size
(the store `FAISS.from_embeddings` would build: IndexFlatL2 and an InMemoryDocstore, filled in
batches). Then one document (about 10 chunks of real abstracts) is added end to end in that
process, as a running server would: embedded, put, and a new generation saved (BM25 gets one
small segment; its other segments are hard-linked, not rebuilt).

Chunk texts repeat SciFact abstracts (the first 800 characters of the abstract the chunk's
vector was synthesised from); one document per 10 chunks, carrying no text of its own. The
document added is made of the corpus's last abstracts, which no chunk repeats, and is then
looked for with a question made of its first words (hybrid top 4).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import perfkit
from million import synthesise

CHUNKS_PER_DOC = 10

OURS = """
import json, sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from rag.embed import Embedder, set_threads
from rag.index import Index
from rag.retrieve import HybridRetriever

def rss():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return {{k: int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "RssAnon", "RssFile")}}

set_threads({threads})
embedder = Embedder("sentence-transformers/all-MiniLM-L6-v2", backend="auto", threads={threads})
embedder.encode_query("warm-up")
base = rss()
t = time.perf_counter()
index = Index.load(Path({index!r}))
index.lexical()
load = time.perf_counter() - t
loaded = rss()
retriever = HybridRetriever(embedder, lambda: index, fusion="convex", dense_weight=0.5)
questions = json.loads(Path({questions!r}).read_text())
retriever.run(questions[0], 4)
times = []
for _ in range(2):
    for q in questions:
        t = time.perf_counter()
        retriever.run(q, 4)
        times.append(time.perf_counter() - t)
steps = {{"embed": [], "dense": [], "bm25": []}}  # where a question's time goes
for q in questions:
    t0 = time.perf_counter()
    v = embedder.encode_query(q)
    t1 = time.perf_counter()
    index.nearest(v, 40)
    t2 = time.perf_counter()
    index.keywords(q, 40)
    steps["embed"].append(t1 - t0)
    steps["dense"].append(t2 - t1)
    steps["bm25"].append(time.perf_counter() - t2)
after = rss()
# add one document end to end, as a running server would: embed its chunks, put, save a new
# generation (BM25: one new segment, the rest hard-linked), then ask about it
from rag.schema import Chunk, Document
text = Path({newdoc!r}).read_text()
parts = [text[i:i + 800] for i in range(0, len(text), 800)][:10]
t = time.perf_counter()
vectors = embedder.encode(parts)
embed = time.perf_counter() - t
doc = Document(id="added-doc", title="added", path="", text=text, content_hash="added")
first = index.next_id
index.put(doc, [Chunk(first + j, doc.id, p, 0, 0, j) for j, p in enumerate(parts)], vectors)
put = time.perf_counter() - t - embed
index.save(Path({index!r}))
add = time.perf_counter() - t
found = [p.doc_id for p in retriever.run(parts[0][:200], 4)]
print(json.dumps({{"load": load, "times": times, "steps": steps, "base": base, "loaded": loaded,
                  "after": after, "add": add, "add_embed": embed, "add_put": put,
                  "add_found": "added-doc" in found}}))
"""

LANGCHAIN = """
import json, sys, time
import numpy as np
sys.path.insert(0, {root!r}); sys.path.insert(0, {bench!r})
import perfkit
from pathlib import Path
from langchain_community.vectorstores import FAISS
emb = perfkit.langchain_embeddings({threads})
texts = json.loads(Path({texts!r}).read_text())
vectors = np.load({vectors!r}, mmap_mode="r")
ids = np.load({ids!r}, mmap_mode="r")
# what FAISS.from_embeddings builds (IndexFlatL2, InMemoryDocstore), filled batch by batch so
# a million vectors never become Python lists
import faiss
from langchain_community.docstore.in_memory import InMemoryDocstore
from langchain_core.documents import Document
index = faiss.IndexFlatL2(vectors.shape[1])
for start in range(0, len(vectors), 50_000):
    index.add(np.ascontiguousarray(vectors[start:start + 50_000]))
keys = [str(i) for i in range(len(ids))]
docstore = InMemoryDocstore({{k: Document(page_content=texts[i]) for k, i in zip(keys, ids)}})
store = FAISS(emb, index, docstore, dict(enumerate(keys)))
del vectors
retriever = store.as_retriever(search_kwargs={{"k": 4}})
questions = json.loads(Path({questions!r}).read_text())
retriever.invoke(questions[0])
times = []
for _ in range(2):
    for q in questions:
        t = time.perf_counter()
        retriever.invoke(q)
        times.append(time.perf_counter() - t)
print(json.dumps({{"times": times}}))
"""


def run(code: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def build_index(n: int, base: np.ndarray, texts: list[str], out: Path) -> tuple[float, np.ndarray, Path]:
    """Put n chunks (10 per document) and save; returns (seconds, seed row per chunk, vectors)."""
    from rag.index import Index
    from rag.schema import Chunk, Document

    index = Index.create("faiss", base.shape[1], {"benchmark": "scale"})
    rows = np.zeros(n, dtype=np.int64)
    vectors = np.lib.format.open_memmap(out.parent / f"vectors-{n}.npy", mode="w+",
                                        dtype=np.float32, shape=(n, base.shape[1]))
    spent = 0.0
    for start, x, seed_rows in synthesise(n, base):
        rows[start:start + len(x)] = seed_rows
        vectors[start:start + len(x)] = x
        t = time.perf_counter()
        for d in range(0, len(x), CHUNKS_PER_DOC):
            first = start + d
            doc = Document(id=f"doc-{first // CHUNKS_PER_DOC}", title=f"document {first // CHUNKS_PER_DOC}",
                           path="", text="", content_hash=str(first))
            chunks = [Chunk(first + j, doc.id, texts[seed_rows[d + j]][:800], 0, 0, j)
                      for j in range(min(CHUNKS_PER_DOC, len(x) - d))]
            index.put(doc, chunks, x[d:d + len(chunks)])
        spent += time.perf_counter() - t
    vectors.flush()
    t = time.perf_counter()
    gen = index.save(out)
    return spent + time.perf_counter() - t, rows, gen


def held_out(scifact: Path) -> list[str]:
    """The abstracts million.py keeps out of the seeds: a document no chunk repeats."""
    from million import HELD_OUT

    from rag.evaluate import load_beir

    return [f"{t}\n\n{x}" for t, x in list(load_beir(scifact).corpus.values())[-HELD_OUT:]]


def text_rows(args: argparse.Namespace, work: Path, base: np.ndarray, texts: list[str],
              questions: list[str]) -> list[str]:
    qfile = work / "questions.json"
    qfile.write_text(json.dumps(questions))
    tfile = work / "texts.json"
    tfile.write_text(json.dumps([t[:800] for t in texts]))
    newdoc = work / "new-document.txt"
    newdoc.write_text("\n\n".join(held_out(args.scifact)))  # about 10 chunks of real abstracts
    rows = ["| chunks | build (put + save, BM25 included) | size on disk | load (process already "
            "running, models loaded) | index's share of RSS: after load / after the questions "
            "(anonymous + mapped file pages) | hybrid question p50 / p95 | "
            "LangChain retriever p50 / p95 | ratio | p50 of its steps: query embedding / dense "
            "top 40 / BM25 top 40 | add one document end to end (embed + put + save) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for n in args.sizes:
        out = work / f"index-{n}"
        build, seed_rows, gen = build_index(n, base, texts, out)
        size = sum(p.stat().st_size for p in gen.rglob("*") if p.is_file())
        np.save(work / f"ids-{n}.npy", seed_rows)
        ours = run(OURS.format(root=str(perfkit.ROOT), threads=args.threads, index=str(out),
                               questions=str(qfile), newdoc=str(newdoc)))
        lc = run(LANGCHAIN.format(root=str(perfkit.ROOT), bench=str(Path(__file__).parent),
                                  threads=args.threads, texts=str(tfile),
                                  vectors=str(work / f"vectors-{n}.npy"), ids=str(work / f"ids-{n}.npy"),
                                  questions=str(qfile)))
        before, loaded, after = ours["base"], ours["loaded"], ours["after"]
        grown = {k: after[k] - before[k] for k in after}
        p50, lc50 = perfkit.pct(ours["times"], 0.5), perfkit.pct(lc["times"], 0.5)
        rows.append(
            f"| {n:,} | {build:.0f} s | {size / 1e6:.0f} MB | {ours['load']:.2f} s | "
            f"+{loaded['VmRSS'] - before['VmRSS']:.0f} MB / +{grown['VmRSS']:.0f} MB "
            f"({grown['RssAnon']:.0f} anon + {grown['RssFile']:.0f} file; process {after['VmRSS']:.0f} MB) | "
            f"{p50 * 1000:.1f} / "
            f"{perfkit.pct(ours['times'], 0.95) * 1000:.1f} ms | {lc50 * 1000:.1f} / "
            f"{perfkit.pct(lc['times'], 0.95) * 1000:.1f} ms | {p50 / lc50:.2f} | "
            f"{' / '.join(f'{perfkit.pct(v, 0.5) * 1000:.1f}' for v in ours['steps'].values())} ms | "
            f"{ours['add']:.2f} s ({ours['add_embed']:.2f} embed, {ours['add_put']:.2f} put, "
            f"{ours['add'] - ours['add_embed'] - ours['add_put']:.2f} save)"
            f"{'' if ours['add_found'] else ', NOT FOUND after'} |"
        )
        print(rows[-1], flush=True)
        (work / f"vectors-{n}.npy").unlink()
        shutil.rmtree(out, ignore_errors=True)
    return rows
