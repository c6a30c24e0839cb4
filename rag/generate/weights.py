"""Which encoding of the packaged SmolLM2 GGUF llama.cpp runs fastest on this machine, found by
measuring, not assumed.

Why: the package ships Q4_1 weights, and the portable llama.cpp build has fast batched kernels
(llamafile's sgemm, the repacked CPU buffers) for F16, BF16 and Q8_0 but not for Q4_1: on an
AVX2-only EPYC reading a compact prompt took about twice as long from Q4_1 as from an F16 copy
(benchmarks/llama_quant.py). On another CPU the order differs (BF16 where the CPU has bf16
units, or Q4_1 itself where memory is slow). So the first time the packaged model is loaded
with `RAG_LLAMACPP_WEIGHTS=auto`, llama.cpp's own quantizer (`llama_model_quantize`,
allow_requantize) writes each candidate copy once into the cache folder, each copy and the
shipped file answer a fixed compact prompt in interleaved rounds, and the fastest wins -- the
shipped file unless a copy is faster by MARGIN. The candidates hold the Q4_1 values nearly
exactly and were checked to keep the answers as right (CANDIDATES); a copy whose probe answer
misses the probe's fact is rejected all the same. The choice is kept as JSON keyed by CPU
model, flags, cores, threads, llama-cpp-python's version and the shipped file; copies not
chosen are deleted. `rag config` shows it, `rag config --measure` measures again.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..machine import cpu_info, has_bf16, key_of, machine, write_atomic

log = logging.getLogger(__name__)

FTYPES = {"F32": 0, "F16": 1, "Q4_0": 2, "Q8_0": 7, "BF16": 32}
"""llama_ftype values (llama.h) of the encodings this module can write."""
CANDIDATES = ("F16", "BF16")
"""Copies that hold the Q4_1 values (F16 to 11 bits, BF16 to 8: well under one Q4_1 step) and
keep the answers as right (seed set 90 % / 100 %, XQuAD rc F1 25.4 against the shipped 24.2 on
40 questions: benchmarks/llama_quant.py --quality). Q8_0, often the fastest, lost a seed answer
and 2.7 F1 points (llama.cpp rounds the activations to 8 bits against Q8_0 weights), so it is
only used when asked for; Q4_0 re-rounds onto a coarser grid and is never used. BF16 is timed
only where the CPU has bf16 units (`candidates`)."""
CHOOSABLE = (*CANDIDATES, "Q8_0")
SHIPPED = "shipped"
SETTINGS = ("auto", SHIPPED, *(f.lower() for f in CHOOSABLE))
MARGIN = 0.15
"""A copy must answer the probe this much faster than the shipped file to be chosen."""
RUNS = 2
TOKENS = 24
"""Timed probe answers per candidate (after one warm-up read), and tokens generated in each:
enough for the probe's fact, which the first timed answer must state."""
FORMAT = 2
PROBE = [{"role": "user", "content": (
    "[1] On Friday, Putin arrived in Beijing to attend the opening ceremony of the 2022 Winter "
    "Olympics.\n[1] After his face-to-face meeting with Xi, he ratified that Russia and China enjoy "
    '"unprecedented closeness.\n(Article date: 2022-02-04)\n\nQuestion: Why did Putin travel to '
    "Beijing?\nAnswer in a few words, citing the sentence like [1].")}]
"""The reader's compact prompt for a seed question (about 125 tokens with the system turn)."""
PROBE_FACTS = ("olympics",)
"""What every candidate's probe answer must say within TOKENS tokens (the shipped file says
"Putin traveled to Beijing to attend the 2022 Winter Olympics" in about 20)."""
measurements = 0
"""How many times this process measured (tests check that a cached choice is reused)."""


@dataclass
class WeightsChoice:
    """What `auto` resolves to on this machine, with the figures it was chosen by."""

    weights: str
    """`shipped` or the encoding of the copy (F16, BF16, Q8_0)."""
    file: str
    answer_ms: dict[str, float] = field(default_factory=dict)
    """Median ms of one probe answer (prompt read + TOKENS tokens), per candidate."""
    read_tps: dict[str, float] = field(default_factory=dict)
    """Prompt tokens read per second, per candidate."""
    rejected: dict[str, str] = field(default_factory=dict)
    measured_at: str = ""
    seconds: float = 0.0
    load: float = 0.0
    """The 1-minute load average when measured: above the core count, other jobs shared the
    cores and the order may be wrong, so the choice is measured again once the machine is quiet."""
    machine: dict[str, Any] = field(default_factory=dict)
    key: str = ""

    @property
    def provisional(self) -> bool:
        return self.load > (os.cpu_count() or 1)


def requantize(source: Path, target: Path, encoding: str, threads: int) -> Path:
    """`source` re-encoded as `encoding` by llama.cpp's quantizer, written to a temporary file
    beside `target` and renamed, so a half-written copy is never loaded."""
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[encoding]
    params.allow_requantize = True  # the tensors are Q4_1 already
    params.nthread = threads
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".gguf", dir=target.parent)
    os.close(fd)
    try:
        code = llama_cpp.llama_model_quantize(str(source).encode(), tmp.encode(), ctypes.byref(params))
        if code != 0:
            raise RuntimeError(f"llama.cpp could not write a {encoding} copy of {source.name} (code {code})")
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def copy_path(cache_dir: Path, source: Path, encoding: str) -> Path:
    """Where the `encoding` copy of `source` is kept (named by the source's size, so another
    version of the package makes another copy)."""
    return cache_dir / "gguf" / f"{source.stem}-{source.stat().st_size}.{encoding}.gguf"


def machine_key(source: Path, threads: int) -> dict[str, Any]:
    """Everything the measured order depends on: a change in any of these measures again."""
    return machine(cpu_info(), ("llama_cpp_python",), model=source.name,
                   size=source.stat().st_size, threads=threads, format=FORMAT)


def choice_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / "generator-choice" / f"{key}.json"


def cached(cache_dir: Path, source: Path, threads: int, provisional: bool = False) -> WeightsChoice | None:
    """The choice measured before on this machine (same key) whose file still exists; one
    measured on a busy machine only while this one is busy too, or if `provisional`."""
    path = choice_path(cache_dir, key_of(machine_key(source, threads)))
    try:
        found = WeightsChoice(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if not Path(found.file).is_file():
        return None
    if found.provisional and not provisional and not busy():
        return None  # measured on a busy machine, and this one is quiet now: measure again
    return found


def busy() -> bool:
    """More runnable jobs than cores over the last minute (timings would be skewed)."""
    try:
        return os.getloadavg()[0] > (os.cpu_count() or 1)
    except OSError:  # no load average on this platform
        return False


def timed_answer(generator: Any, tokens: int = TOKENS) -> tuple[float, float, str]:
    """(seconds to read the probe, seconds per generated token, the first words): exactly
    `tokens` tokens are generated, past any end token, so every candidate does the same work."""
    ids = generator.prompt(PROBE)
    generator.llm.reset()  # no prefix reuse: the whole prompt is read
    started = time.perf_counter()
    steps = generator.llm.generate(ids, top_k=1, top_p=1.0, min_p=0.0, temp=0.0,
                                   repeat_penalty=1.0, reset=True)
    out = [next(steps)]
    read = time.perf_counter() - started
    started = time.perf_counter()
    for token in steps:
        out.append(token)
        if len(out) > tokens:
            break
    per_token = (time.perf_counter() - started) / tokens
    return read, per_token, generator.llm.detokenize(out, special=False).decode("utf-8", "replace")


def candidates(flags: Sequence[str]) -> tuple[str, ...]:
    """The copies worth timing on a CPU with these flags."""
    return tuple(e for e in CANDIDATES if e != "BF16" or has_bf16(flags))


def measure(source: Path, cache_dir: Path, threads: int, encodings: Sequence[str] | None = None,
            runs: int = RUNS, *, make: Callable[[Path, str, int], Any]) -> WeightsChoice:
    """Write each candidate copy (once), time probe answers from each and from the shipped file
    in interleaved rounds (load from other jobs then weighs on all alike; the fastest of the
    rounds counts, as load only ever adds time), reject a copy whose answer misses the probe's
    facts, pick the fastest."""
    global measurements
    measurements += 1
    started = time.perf_counter()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    encodings = candidates(cpu_info()[1]) if encodings is None else encodings
    log.info("llama.cpp: measuring which encoding of %s answers fastest on this CPU (once per "
             "machine, about half a minute): shipped, %s", source.name, ", ".join(encodings))
    files = {SHIPPED: source}
    rejected: dict[str, str] = {}
    generators: dict[str, Any] = {}
    texts: dict[str, str] = {}
    for name in (SHIPPED, *encodings):
        try:
            if name != SHIPPED:
                files[name] = copy_path(cache_dir, source, name)
                if not files[name].is_file():
                    requantize(source, files[name], name, threads)
            generators[name] = make(files[name], name, threads)
            timed_answer(generators[name], 1)  # warm-up: pages the weights in, repacks them
        except Exception as exc:  # noqa: BLE001 - a candidate that fails is only not chosen
            log.warning("llama.cpp: %s could not be measured (%s)", name, exc)
            rejected[name] = f"failed: {exc}"
            generators.pop(name, None)
    timings: dict[str, list[tuple[float, float, str]]] = {name: [] for name in generators}
    try:
        for _ in range(runs):
            for name, generator in generators.items():
                timings[name].append(timed_answer(generator))
                texts.setdefault(name, timings[name][0][2])
        tokens = len(next(iter(generators.values())).prompt(PROBE)) if generators else 0
    finally:
        for generator in generators.values():
            generator.llm.close()
    answer_ms: dict[str, float] = {}
    read_tps: dict[str, float] = {}
    for name, results in timings.items():
        read, per_token = min(r[0] for r in results), min(r[1] for r in results)
        answer_ms[name] = round((read + TOKENS * per_token) * 1000, 1)
        read_tps[name] = round(tokens / read, 1)
        log.info("llama.cpp: %s answers the probe in %.0f ms (reads %.0f tokens/s)", name,
                 answer_ms[name], read_tps[name])
        if not all(fact in texts[name].lower() for fact in PROBE_FACTS):
            rejected[name] = f"probe answer {texts[name]!r} misses {', '.join(PROBE_FACTS)}"
            log.warning("llama.cpp: %s rejected: %s", name, rejected[name])
    eligible = {n: v for n, v in answer_ms.items() if n not in rejected}
    best = min(eligible, key=eligible.__getitem__) if eligible else SHIPPED
    if SHIPPED in eligible and eligible[best] * (1 + MARGIN) > eligible[SHIPPED]:
        best = SHIPPED
    for name, path in files.items():  # copies not chosen only take disk space
        if name not in (SHIPPED, best):
            path.unlink(missing_ok=True)
    return WeightsChoice(best, str(files[best]), answer_ms, read_tps, rejected,
                         time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         round(time.perf_counter() - started, 1), round(load, 2))


def choose(source: Path, cache_dir: Path, threads: int, remeasure: bool = False,
           encodings: Sequence[str] | None = None, runs: int = RUNS, *,
           make: Callable[[Path, str, int], Any]) -> WeightsChoice:
    """The cached choice for this machine, or a new measurement (kept for next time)."""
    described = machine_key(source, threads)
    key = key_of(described)
    if not remeasure:
        found = cached(cache_dir, source, threads)
        if found is not None:
            return found
    result = measure(source, cache_dir, threads, encodings, runs, make=make)
    result.machine, result.key = described, key
    path = choice_path(cache_dir, key)
    write_atomic(path, json.dumps(asdict(result), indent=1))
    log.info("llama.cpp: chose the %s weights; kept in %s", result.weights, path)
    return result


def resolve(source: Path, cache_dir: Path, threads: int, setting: str = "auto", *,
            make: Callable[[Path, str, int], Any]) -> Path:
    """The GGUF file to load for the packaged model: the shipped one, a copy in the encoding
    given (made once), or the measured choice (`auto`)."""
    setting = setting.strip().lower()
    if setting == SHIPPED:
        return source
    encoding = setting.upper()
    if setting == "auto":
        found = choose(source, cache_dir, threads, make=make)
        if found.weights == SHIPPED:
            return source
        encoding = found.weights  # its copy again if another process deleted it meanwhile
    if encoding not in CHOOSABLE:
        raise ValueError(f"llamacpp_weights must be one of {', '.join(SETTINGS)}, not {setting!r}")
    path = copy_path(cache_dir, source, encoding)
    return path if path.is_file() else requantize(source, path, encoding, threads)
