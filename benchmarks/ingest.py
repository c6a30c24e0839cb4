"""Ingestion throughput: files to a saved index, the stock LangChain pipeline against ours with
each embedding backend, in the same run; the chunks' token lengths; nDCG@10 per backend.

    python benchmarks/ingest.py /work/shared/datasets/scifact --docs 700 --repeats 3 --ndcg --write
    python benchmarks/ingest.py /work/shared/datasets/scifact --process --docs 300,1000 --repeats 2 --write

Throughput is chunks per second from the text files to a saved index (loading, splitting,
embedding, BM25 for ours, saving), with every model loaded beforehand; the median of
`--repeats` builds, the pipelines interleaved so that load on the shared machine hits all alike.

`--process` times what a user waits for instead: a whole new process each, from start to exit,
into a fresh index (`rag index` against a script running the stock LangChain pipeline), with the
model files already on disk and ours already exported and measured (`rag config` done once).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import perfkit
from perfkit import median

PIPELINES = {
    "torch": {"embedding_backend": "torch"},
    "openvino": {"embedding_backend": "openvino", "embedding_precision": "auto"},
    "openvino-int8": {"embedding_backend": "openvino", "embedding_precision": "int8"},
}
LABELS = {
    "langchain": "LangChain stock: HuggingFaceEmbeddings + FAISS.from_documents, 1000-char chunks",
    "torch": "rag, torch fp32 (sentence-transformers), length-sorted batches",
    "openvino": "rag, RAG_EMBEDDING_PRECISION=auto (the precision measured fastest on this machine)",
    "openvino-int8": "rag, OpenVINO int8 static (nncf, calibrated on the corpus' chunks)",
}


def our_assistant(corpus: Path, index: Path, threads: int, embedder: Any = None, **settings: Any):
    from rag import Assistant, Settings

    a = Assistant(Settings.from_env(corpus_dir=corpus, index_dir=index, generator="extractive",
                                    threads=threads, **settings))
    if embedder is not None:
        a.__dict__["embedder"] = embedder
    return a


def build_ours(corpus: Path, index: Path, threads: int, embedder: Any, **settings: Any) -> tuple[float, int]:
    a = our_assistant(corpus, index, threads, embedder, **settings)
    t = time.perf_counter()
    report = a.refresh()
    return time.perf_counter() - t, report.chunks_embedded


LANGCHAIN_SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {bench!r})
import perfkit
perfkit.langchain_index(Path(sys.argv[1]), perfkit.langchain_embeddings(int(sys.argv[3])), Path(sys.argv[2]))
"""


def process_seconds(name: str, corpus: Path, out: Path, threads: int) -> float:
    """Wall-clock seconds of one whole process building a fresh index of `corpus` into `out`."""
    env = dict(os.environ, RAG_CORPUS_DIR=str(corpus), RAG_INDEX_DIR=str(out), RAG_THREADS=str(threads))
    if name == "langchain":
        script = LANGCHAIN_SCRIPT.format(bench=str(Path(__file__).parent))
        cmd = [sys.executable, "-c", script, str(corpus), str(out), str(threads)]
    else:
        for key, value in PIPELINES[name].items():
            env[f"RAG_{key.upper()}"] = value
        cmd = [str(Path(sys.executable).parent / "rag"), "index"]
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def process_table(scifact: Path, work: Path, sizes: list[int], names: list[str], repeats: int,
                  threads: int) -> str:
    """Whole-process builds per corpus size, the pipelines interleaved, medians."""
    rows = ["| abstracts | pipeline | seconds (median, whole process) | × LangChain (time) |",
            "|---|---|---|---|"]
    for size in sizes:
        corpus = work / f"corpus-{size}"
        perfkit.scifact_files(scifact, corpus, size)
        # once untimed each: the OS file cache and, for int8, calibration on these chunks
        for name in names:
            process_seconds(name, corpus, work / f"warm-{size}-{name}", threads)
        seconds: dict[str, list[float]] = {n: [] for n in names}
        for r in range(repeats):
            for name in names:
                out = work / f"run{r}-{size}-{name}"
                seconds[name].append(process_seconds(name, corpus, out, threads))
                shutil.rmtree(out, ignore_errors=True)
                print(f"{size} {name}: {seconds[name][-1]:.1f} s", flush=True)
        base = median(seconds["langchain"]) if "langchain" in seconds else None
        for name in names:
            ratio = f"{base / median(seconds[name]):.2f}×" if base else ""
            rows.append(f"| {size} | {LABELS[name]} | {median(seconds[name]):.1f} | {ratio} |")
    return "\n".join(rows) + (f"\n\nSciFact abstracts written as text files; {threads} threads; median of "
                              f"{repeats} builds per pipeline and size, interleaved, after one untimed "
                              "build each.")


def token_report(tokenizer: Any, texts: list[str], titles: set[str], window: int) -> dict[str, float]:
    counts = [len(tokenizer(t, add_special_tokens=True)["input_ids"]) for t in texts]
    return {
        "max": max(counts),
        "over": sum(c > window for c in counts) / len(counts),
        "title_only": sum(t.strip() in titles for t in texts) / len(texts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scifact", type=Path, help="BEIR SciFact folder")
    parser.add_argument("--docs", default="700",
                        help="documents for the throughput part (--process: sizes, comma-separated)")
    parser.add_argument("--process", action="store_true",
                        help="time whole processes (rag index vs a LangChain script), fresh index each")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pipelines", default="langchain,torch,openvino,openvino-int8")
    parser.add_argument("--ndcg", action="store_true", help="nDCG@10 on all of SciFact per backend")
    parser.add_argument("--ndcg-only", action="store_true", help="only nDCG@10 (no throughput)")
    parser.add_argument("--write", action="store_true", help="update docs/PERFORMANCE.md")
    parser.add_argument("--section", default="ingest", help="its section (marker key) in the docs")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    args = parser.parse_args()
    names = args.pipelines.split(",")

    perfkit.set_torch_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="rag-ingest-"))
    if args.process:
        sizes = [int(n) for n in args.docs.split(",")]
        body = process_table(args.scifact, work, sizes, names, args.repeats, args.threads)
        body += f"\n\nCommand: `{perfkit.command()}`. {perfkit.load_note()}"
        print(body, flush=True)
        if args.write:
            perfkit.write_section("ingest-process", "### Ingestion, whole processes\n\n" + body)
        return
    corpus = work / "corpus"
    data, _ = perfkit.scifact_files(args.scifact, corpus, int(args.docs))
    titles = {title.strip() for title, _ in data.corpus.values() if title.strip()}

    embedders: dict[str, Any] = {}
    lc = perfkit.langchain_embeddings(args.threads) if "langchain" in names else None
    first_build: dict[str, float] = {}
    for name in names:
        if name == "langchain":
            continue
        a = our_assistant(corpus, work / f"warm-{name}", args.threads, **PIPELINES[name])
        embedders[name] = a.embedder
        # a first build: warms the model up; for int8 it also calibrates (once, then cached)
        t = time.perf_counter()
        a.refresh()
        first_build[name] = time.perf_counter() - t
    if lc is not None:
        perfkit.langchain_index(corpus, lc, work / "warm-langchain")

    if args.ndcg_only:
        body = f"{ndcg_table(args.scifact, work, args.threads, embedders)}\n\n"
        body += f"Command: `{perfkit.command()}`. {perfkit.load_note()}"
        print(body)
        if args.write:
            perfkit.write_section("ingest-quality", "### Retrieval quality per embedding backend\n\n" + body)
        return
    seconds: dict[str, list[float]] = {n: [] for n in names}
    chunks: dict[str, int] = {}
    lc_chunks: list[Any] = []
    for r in range(args.repeats):
        for name in names:
            out = work / f"run{r}-{name}"
            if name == "langchain":
                t = time.perf_counter()
                _, lc_chunks = perfkit.langchain_index(corpus, lc, out)
                seconds[name].append(time.perf_counter() - t)
                chunks[name] = len(lc_chunks)
            else:
                s, n = build_ours(corpus, out, args.threads, embedders[name], **PIPELINES[name])
                seconds[name].append(s)
                chunks[name] = n
            shutil.rmtree(out, ignore_errors=True)
            print(f"{name}: {chunks[name]} chunks in {seconds[name][-1]:.1f} s", flush=True)

    # quality of the vectors and of the chunks
    reference = embedders.get("torch")
    ours = our_assistant(corpus, work / f"warm-{names[-1]}", args.threads, embedders[names[-1]])
    texts = [c.text for c in ours.index_data.chunks.values()]
    sample = texts[:: max(1, len(texts) // 500)]
    tokenizer = next(iter(embedders.values())).tokenizer
    window = next(iter(embedders.values())).max_tokens
    cosine = {}
    if reference is not None:
        ref = reference.encode(sample)
        cosine = {n: float((e.encode(sample) * ref).sum(1).mean()) for n, e in embedders.items()}
    tokens = {"rag": token_report(tokenizer, texts, titles, window)}
    if lc_chunks:
        tokens["langchain"] = token_report(tokenizer, [c.page_content for c in lc_chunks], titles, window)

    base = chunks.get("langchain", 0) / median(seconds["langchain"]) if "langchain" in names else None
    # chunks/s favours whoever cuts more, smaller chunks: the same files' time is compared too
    rows = ["| pipeline | chunks | seconds (median) | chunks/s | × LangChain (chunks/s) | "
            "× LangChain (time, same files) | cosine to torch fp32 |", "|---|---|---|---|---|---|---|"]
    for name in names:
        rate = chunks[name] / median(seconds[name])
        ratio = f"{rate / base:.2f}×" if base else ""
        by_time = f"{median(seconds['langchain']) / median(seconds[name]):.2f}×" if base else ""
        cos = f"{cosine[name]:.5f}" if name in cosine else ""
        rows.append(f"| {LABELS[name]} | {chunks[name]} | {median(seconds[name]):.1f} | {rate:.1f} | "
                    f"{ratio} | {by_time} | {cos} |")
    lines = rows + [""]
    lines.append(f"SciFact, first {len(data.corpus)} documents written as text files; "
                 f"{args.threads} threads; median of {args.repeats} builds per pipeline, interleaved.")
    if "openvino-int8" in first_build:
        lines.append(f"The int8 model's first build, which converts and calibrates it once (then cached), "
                     f"took {first_build['openvino-int8']:.1f} s.")
    for who, t in tokens.items():
        lines.append(f"- {who} chunks: longest {t['max']} tokens (window {window}); "
                     f"{t['over']:.1%} longer than the window (silently truncated); "
                     f"{t['title_only']:.1%} a title alone.")
    lines += ["", f"Command: `{perfkit.command()}`. {perfkit.load_note()}"]
    body = "\n".join(lines)
    print(body, flush=True)
    if args.write:
        title = "## Ingestion" if args.section == "ingest" else "### Ingestion, another run"
        perfkit.write_section(args.section, f"{title}\n\n" + body)
    if args.ndcg:
        table = ndcg_table(args.scifact, work, args.threads, embedders)
        body = f"{table}\n\nCommand: `{perfkit.command()}`. {perfkit.load_note()}"
        print(body)
        if args.write:
            perfkit.write_section("ingest-quality", "### Retrieval quality per embedding backend\n\n" + body)


def ndcg_table(scifact: Path, work: Path, threads: int, embedders: dict[str, Any]) -> str:
    """nDCG@10 on all of SciFact (300 test queries), dense and hybrid, per embedding backend."""
    from rag.evaluate import evaluate_retrieval

    rows = ["| embedding | chunks | nDCG@10 dense | nDCG@10 hybrid (default) | Recall@100 hybrid |",
            "|---|---|---|---|---|"]
    for name, embedder in embedders.items():
        result = evaluate_retrieval(scifact, work / f"ndcg-{name}", progress=False, embedder=embedder,
                                    compare=True, threads=threads, **PIPELINES[name])
        variants = dict(result.details["variants"])
        dense = next(m for label, m in variants.items() if label.startswith("dense"))
        rows.append(f"| {LABELS[name].removeprefix('rag, ')} | {result.details['chunks']} | "
                    f"{dense['ndcg@10']:.3f} | {result.metrics['ndcg@10']:.3f} | "
                    f"{result.metrics['recall@100']:.3f} |")
        print(rows[-1], flush=True)
    return "All of SciFact (5,183 abstracts, 300 test queries):\n\n" + "\n".join(rows)


if __name__ == "__main__":
    main()
