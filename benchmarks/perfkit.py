"""Shared parts of the performance benchmarks: the SciFact corpus as files, the stock LangChain
pipeline they are compared with, percentiles, and the sections of docs/PERFORMANCE.md."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# OpenMP threads that spin while they wait make torch collapse when other jobs share the cores
# (one query: 970 ms p50 against 17 ms with PASSIVE, benchmarks/threads.py), which would flatter
# every comparison with the torch-based LangChain pipeline. Set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DOC = ROOT / "docs" / "PERFORMANCE.md"
HEADER = """# Performance

Every figure below comes from a script in `benchmarks/`, run on a 2-core machine that was shared
with other jobs at the time (timings are noisy: medians of repeated runs, and comparisons are
ratios measured in the same run). The command that produced each section is given with it.
"""

LANGCHAIN_CHUNK_CHARS = 1000
LANGCHAIN_OVERLAP_CHARS = 200
"""The stock tutorial splitter settings (characters), as a LangChain user would write them."""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(values: list[float]) -> str:
    return f"p50 {pct(values, 0.5) * 1000:.1f} ms, p95 {pct(values, 0.95) * 1000:.1f} ms"


def timed(fn: Callable[[], Any], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def median(values: list[float]) -> float:
    return statistics.median(values)


def set_torch_threads(threads: int) -> None:
    import faiss
    import torch

    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)


def scifact_files(scifact: Path, folder: Path, docs: int | None = None) -> tuple[Any, dict[str, str]]:
    """The SciFact corpus (the first `docs` documents) as text files; (BEIR data, file -> doc id)."""
    from rag.evaluate import _write_corpus, load_beir

    data = load_beir(scifact)
    if docs:
        data.corpus = dict(list(data.corpus.items())[:docs])
    return data, _write_corpus(folder, data.corpus)


def langchain_embeddings(threads: int) -> Any:
    """HuggingFaceEmbeddings on the same packaged model, normalised as ours are."""
    try:  # the maintained home of the class (the bench extra installs it)
        from langchain_huggingface import HuggingFaceEmbeddings
    except ImportError:
        from langchain_community.embeddings import HuggingFaceEmbeddings

    from rag.config import DEFAULT_EMBEDDING_MODEL
    from rag.embed import resolve_model

    set_torch_threads(threads)
    return HuggingFaceEmbeddings(
        model_name=resolve_model(DEFAULT_EMBEDDING_MODEL),
        model_kwargs={"device": "cpu"},
        encode_kwargs={"normalize_embeddings": True},
    )


def langchain_index(corpus: Path, embeddings: Any, out: Path) -> tuple[Any, list[Any]]:
    """The stock pipeline: DirectoryLoader + RecursiveCharacterTextSplitter(1000, 200) +
    FAISS.from_documents + save_local. Returns (vector store, chunks)."""
    from langchain_community.document_loaders import DirectoryLoader, TextLoader
    from langchain_community.vectorstores import FAISS
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    docs = DirectoryLoader(str(corpus), glob="*.txt", loader_cls=TextLoader).load()
    splitter = RecursiveCharacterTextSplitter(chunk_size=LANGCHAIN_CHUNK_CHARS,
                                              chunk_overlap=LANGCHAIN_OVERLAP_CHARS)
    chunks = splitter.split_documents(docs)
    store = FAISS.from_documents(chunks, embeddings)
    store.save_local(str(out))
    return store, chunks


def write_section(key: str, body: str, path: Path = DOC) -> None:
    """Replace (or append) the part of docs/PERFORMANCE.md between `<!-- perf:key -->` markers."""
    from rag.evaluate import write_section as write

    write(path, key, body, prefix="perf", header=HEADER)


SIMD_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
"""The CPU flags that decide which kernels run (OpenVINO, FAISS, llama.cpp, torch)."""


def cpu_line() -> str:
    """CPU model and the SIMD flags that matter, from /proc/cpuinfo (what `lscpu` shows): a
    figure is a property of the machine it was taken on, so every section names it."""
    from rag.machine import cpu_info

    model, flags = cpu_info()
    have = [f for f in SIMD_FLAGS if f in flags]
    return f"{model}, {os.cpu_count()} cores, flags: {' '.join(have) or 'none of ' + '/'.join(SIMD_FLAGS)}"


def load_note() -> str:
    """The machine and its load while the figures were taken (other jobs share the 2 cores)."""
    one, five, _ = os.getloadavg()
    return (f"Measured on {cpu_line()}. Load average at the end of the run: {one:.1f} (1 min), "
            f"{five:.1f} (5 min).")


def command() -> str:
    script = Path(sys.argv[0]).resolve()
    name = script.relative_to(ROOT) if script.is_relative_to(ROOT) else script
    return " ".join(["python", str(name), *sys.argv[1:]])
