"""Which backend and precision embed fastest on this machine, found by measuring, not assumed.

Why: OpenVINO's own default (bf16 where the CPU has bf16 units) embedded 17-21 chunks/s on a
Xeon with AVX512-BF16 where f32 ran 31 and static int8 78 (issue 14); on another CPU the order
differs. So the first time the model is prepared with `RAG_EMBEDDING_PRECISION=auto`, each
candidate embeds a fixed sample (sample.txt, shipped with the package) for about a second after
a warm-up, its vectors are compared with f32's (mean cosine >= MIN_COSINE or it is rejected),
and the fastest wins; f32 unless another is faster by MARGIN, so noise does not flip it. A
single question is timed on 1 and 2 threads the same way. The result is kept as JSON in the
cache folder under a key of CPU model, CPU flags, library versions, model and thread count: a
different machine (or an upgraded OpenVINO) measures again. `rag config` shows it;
`rag config --measure` measures again.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from ..machine import cpu_info, has_bf16, key_of, write_atomic
from ..machine import machine as describe_machine
from .base import ENCODERS, Encoder

log = logging.getLogger(__name__)

MIN_COSINE = 0.99
"""A candidate whose vectors' mean cosine to f32's is below this is never chosen."""
MARGIN = 0.10
"""Another candidate must beat the reference (f32) by this fraction to be chosen."""
SECONDS = 1.0
"""Timed run per candidate, after one warm-up pass."""
QUERY = "what makes bread rise when it is baked"
REFERENCE = ("openvino", "f32")
LIBRARIES = ("openvino", "nncf", "torch", "sentence-transformers", "transformers", "tokenizers")
FORMAT = 1
measurements = 0
"""How many times this process measured (tests check that a cached choice is reused)."""


@dataclass
class Choice:
    """What `auto` resolves to on this machine, with the figures it was chosen by."""

    backend: str
    precision: str
    query_threads: int = 1
    rates: dict[str, float] = field(default_factory=dict)
    """chunks/s per candidate ("openvino:f32"...), on the shipped sample."""
    cosine: dict[str, float] = field(default_factory=dict)
    """mean cosine of each candidate's vectors to f32's."""
    rejected: dict[str, str] = field(default_factory=dict)
    """candidate -> why it was not eligible (cosine too low, failed to load)."""
    query_ms: dict[str, float] = field(default_factory=dict)
    """median ms per single question, per thread count ("1", "2")."""
    measured_at: str = ""
    seconds: float = 0.0
    """How long the whole measurement took."""
    machine: dict[str, Any] = field(default_factory=dict)
    key: str = ""

    @property
    def name(self) -> str:
        return f"{self.backend}:{self.precision}"


def sample_texts() -> list[str]:
    """The fixed sample: ~50 paragraphs of varied prose (written for this; no dataset text)."""
    text = files(__package__).joinpath("sample.txt").read_text(encoding="utf-8")
    return [p.strip().replace("\n", " ") for p in text.split("\n\n") if p.strip()]


def machine_key(model: str, threads: int) -> dict[str, Any]:
    """Everything the measured order depends on: a change in any of these measures again."""
    cpu = cpu_info()
    return describe_machine(cpu, LIBRARIES, bf16=has_bf16(cpu[1]), model=model, threads=threads,
                            format=FORMAT)


def candidates(backend: str, flags: Sequence[str]) -> list[tuple[str, str]]:
    """(backend, precision) pairs worth timing: bf16 only where the CPU has bf16 units (elsewhere
    OpenVINO emulates it slowly); torch (fp32) is the reference implementation, and a candidate
    only when the backend is `auto`."""
    found: list[tuple[str, str]] = []
    if backend in ("auto", "openvino") and importlib.util.find_spec("openvino") is not None:
        found.append(("openvino", "f32"))
        if has_bf16(flags):
            found.append(("openvino", "bf16"))
        if importlib.util.find_spec("nncf") is not None:
            found.append(("openvino", "int8"))
    if backend in ("auto", "torch") and importlib.util.find_spec("sentence_transformers") is not None:
        found.append(("torch", "fp32"))
    return found


def choice_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / "embedding-choice" / f"{key}.json"


def cached(cache_dir: Path, model: str, threads: int, backend: str = "auto") -> Choice | None:
    """The choice measured before on this machine (same key), if any."""
    key = key_of({**machine_key(model, threads), "backend": backend})
    path = choice_path(cache_dir, key)
    try:
        return Choice(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def choose(model: str, location: str, cache_dir: Path, threads: int, backend: str = "auto",
           remeasure: bool = False, pairs: Sequence[tuple[str, str]] | None = None,
           seconds: float = SECONDS) -> Choice:
    """The cached choice for this machine, or a new measurement (kept for next time); `pairs`
    replaces the candidates found here (tests, benchmarks)."""
    machine = {**machine_key(model, threads), "backend": backend}
    key = key_of(machine)
    path = choice_path(cache_dir, key)
    if not remeasure:
        found = cached(cache_dir, model, threads, backend)
        if found is not None:
            return found
    if pairs is None:
        pairs = candidates(backend, cpu_info()[1])
    result = measure(model, location, cache_dir, threads, pairs, seconds)
    result.machine, result.key = machine, key
    write_atomic(path, json.dumps(asdict(result), indent=1))  # two first runs may race
    log.info("embedding: chose %s (query on %d thread%s); kept in %s", result.name,
             result.query_threads, "" if result.query_threads == 1 else "s", path)
    return result


def _load(backend: str, precision: str, model: str, location: str, cache_dir: Path, threads: int,
          **options: Any) -> Encoder:
    return ENCODERS.get(backend)(model, location, cache_dir=cache_dir, precision=precision,
                                 threads=threads, device="cpu", **options)


def _rate(encoder: Encoder, texts: Sequence[str], seconds: float,
          batch: int = 32) -> tuple[float, np.ndarray]:
    """Chunks/s embedding `texts` in batches (longest first, as the Embedder does), and the
    vectors of one pass; one untimed pass first."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    batches = [[texts[i] for i in order[s:s + batch]] for s in range(0, len(order), batch)]

    def one_pass() -> np.ndarray:
        out = np.zeros((len(texts), encoder.dimension), dtype=np.float32)
        for s, b in zip(range(0, len(order), batch), batches, strict=True):
            out[order[s:s + batch]] = encoder.encode_batch(b)
        return out

    vectors = one_pass()  # warm-up (kernels for these shapes), and the vectors compared
    done, start = 0, time.perf_counter()
    while True:  # batches in turn until `seconds` have passed
        for b in batches:
            encoder.encode_batch(b)
            done += len(b)
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return done / elapsed, vectors


def _query_ms(encode: Callable[[str], Any], seconds: float) -> float:
    for _ in range(3):
        encode(QUERY)
    times: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        t = time.perf_counter()
        encode(QUERY)
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))


def measure(model: str, location: str, cache_dir: Path, threads: int,
            pairs: Sequence[tuple[str, str]], seconds: float = SECONDS) -> Choice:
    """Time every candidate on the sample, reject those that disagree with f32, pick by speed."""
    global measurements
    measurements += 1
    started = time.perf_counter()
    texts = sample_texts()
    names = [f"{b}:{p}" for b, p in pairs]
    log.info("embedding: measuring which precision is fastest on this CPU (once per machine, "
             "up to a minute; int8 is quantized once to time it): %s", ", ".join(names))
    rates: dict[str, float] = {}
    vectors: dict[str, np.ndarray] = {}
    rejected: dict[str, str] = {}
    encoders: dict[str, Encoder] = {}
    scratch = Path(tempfile.mkdtemp(prefix="measure-", dir=_ensure(cache_dir)))
    _share_exports(cache_dir, scratch)
    try:
        for (backend, precision), name in zip(pairs, names, strict=True):
            # int8 is calibrated on the first corpus it embeds; measuring it calibrates on the
            # sample instead, so into a scratch folder that is thrown away afterwards.
            where = scratch if precision == "int8" else cache_dir
            if where is scratch:
                _share_exports(cache_dir, scratch)  # f32 may have been exported just now
            try:
                encoder = _load(backend, precision, model, location, where, threads)
                encoder.calibrate(texts)
                rates[name], vectors[name] = _rate(encoder, texts, seconds)
                encoders[name] = encoder
            except Exception as exc:  # noqa: BLE001 - a candidate that fails is only not chosen
                log.warning("embedding: %s could not be measured (%s)", name, exc)
                rejected[name] = f"failed: {exc}"
                continue
            log.info("embedding: %s embeds %.1f chunks/s", name, rates[name])
        return _pick(rates, vectors, rejected, encoders, threads, seconds, started)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _pick(rates: dict[str, float], vectors: dict[str, np.ndarray],
          rejected: dict[str, str], encoders: dict[str, Encoder], threads: int, seconds: float,
          started: float) -> Choice:
    reference = f"{REFERENCE[0]}:{REFERENCE[1]}"
    if reference not in vectors:  # no OpenVINO: torch fp32 is the reference
        reference = next(iter(vectors), "")
    cosine = {name: float(np.mean(np.sum(v * vectors[reference], axis=1))) for name, v in vectors.items()}
    for name, value in cosine.items():
        if value < MIN_COSINE:
            rejected[name] = f"mean cosine to {reference} {value:.4f} < {MIN_COSINE}"
            log.warning("embedding: %s rejected: %s", name, rejected[name])
    eligible = {n: r for n, r in rates.items() if n not in rejected}
    if not eligible:
        raise RuntimeError(f"no embedding candidate could be measured: {rejected}")
    best = max(eligible, key=eligible.__getitem__)
    if reference in eligible and eligible[best] < eligible[reference] * (1 + MARGIN):
        best = reference
    backend, precision = best.split(":", 1)
    query_ms, query_threads = _query_threads(encoders[best], backend, threads, seconds)
    return Choice(backend, precision, query_threads, rates=rates, cosine=cosine, rejected=rejected,
                  query_ms=query_ms, measured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  seconds=round(time.perf_counter() - started, 1))


def _query_threads(chosen: Any, backend: str, threads: int, seconds: float) -> tuple[dict[str, float], int]:
    """Median ms of one question on 1 and on 2 threads, on the chosen OpenVINO model (torch
    shares one global thread pool with indexing, so it keeps `threads`); 2 only when faster by
    MARGIN."""
    if backend != "openvino" or threads < 2:
        return {str(threads): round(_query_ms(chosen.encode_query, seconds / 2), 2)}, threads

    def make(n: int) -> Callable[[str], Any]:
        chosen.query_threads, chosen._query = n, None  # recompiled for n threads on next query
        return chosen.encode_query

    return _query_pair(make, seconds)


def _query_pair(make: Callable[[int], Callable[[str], Any]], seconds: float) -> tuple[dict[str, float], int]:
    ms = {str(n): round(_query_ms(make(n), seconds / 2), 2) for n in (1, 2)}
    for n, value in ms.items():
        log.info("embedding: one question on %s thread(s): %.2f ms", n, value)
    return ms, 2 if ms["2"] * (1 + MARGIN) < ms["1"] else 1


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _share_exports(cache_dir: Path, scratch: Path) -> None:
    """Hard-link (or copy) the exported OpenVINO models into the scratch folder, so measuring
    int8 quantizes the cached graph instead of exporting the model from torch again."""
    source = cache_dir / "openvino"
    if not source.is_dir():
        return
    for folder in source.iterdir():
        if folder.name.startswith(".") or "-int8-" in folder.name or not (folder / "model.bin").is_file():
            continue
        target = scratch / "openvino" / folder.name
        if target.exists():
            continue
        target.mkdir(parents=True)
        for item in folder.iterdir():
            if item.is_dir():  # OpenVINO's compiled-model cache: made again where needed
                continue
            try:
                os.link(item, target / item.name)
            except OSError:
                shutil.copy2(item, target / item.name)
