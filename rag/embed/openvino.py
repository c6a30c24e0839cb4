"""The embedding model through OpenVINO: converted once from the torch module (no optimum),
cached on disk, then run without importing torch.

Why: on this kind of CPU OpenVINO's default precision (bf16 on AMX/AVX512-bf16 hardware)
embeds about 3-4x faster than torch fp32 with cosine 0.9999 to it, and a cached model loads
in a fraction of a second without torch or sentence-transformers (a faster `rag ask` start).

Telemetry: OpenVINO's converter and nncf report usage to an analytics host unless a consent
file says no (and they do send when the file is missing). Both import the `openvino_telemetry`
package and fall back to a no-op stub when it cannot be imported, so `block_telemetry()`
makes that import fail before `openvino` is first imported. Nothing is written to $HOME.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .base import ENCODERS, Encoder, Unsupported

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "f32", "bf16", "int8")
"""auto: OpenVINO's default for the CPU (bf16 where it has bf16 units, else f32); the Embedder
never passes auto (it measures and passes what it chose, rag.embed.choice). int8: static
quantization with nncf, calibrated on the first chunks the model embeds and a fixed sample."""
CALIBRATION_SIZE = 300
FORMAT = 1  # bump when the exported graph changes


def block_telemetry() -> None:
    """Make `import openvino_telemetry` fail, so OpenVINO and nncf use their no-op stubs."""
    module = sys.modules.get("openvino_telemetry", "absent")
    if module is None:
        return
    if module != "absent":
        log.warning("openvino_telemetry was imported before rag could block it")
        return
    sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]
    sys.modules["openvino_telemetry.backend"] = None  # type: ignore[assignment]


PAD_TO = 16
"""Inputs are padded to a multiple of this many tokens (see the tokenizer set-up below)."""


class TokenCounter:
    """The model's tokenizer with the call shape the chunker uses (`tok(text, ...)["input_ids"]`),
    on the light `tokenizers` package: no truncation, no padding."""

    def __init__(self, tokenizer_file: Path):
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(tokenizer_file))
        self._tok.no_truncation()
        self._tok.no_padding()

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": self._tok.encode(text, add_special_tokens=add_special_tokens).ids}


def _pooling(location: Path) -> str:
    """mean or cls, from the sentence-transformers pooling config; anything else is unsupported."""
    modules = json.loads((location / "modules.json").read_text())
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or not set(kinds[2:]) <= {"Normalize"}:
        raise Unsupported(f"modules {kinds} (only Transformer, Pooling, Normalize)")
    config = json.loads((location / modules[1]["path"] / "config.json").read_text())
    modes = [k for k, v in config.items() if k.startswith("pooling_mode_") and v]
    if modes == ["pooling_mode_mean_tokens"]:
        return "mean"
    if modes == ["pooling_mode_cls_token"]:
        return "cls"
    raise Unsupported(f"pooling {modes}")


def _max_tokens(location: Path) -> int:
    path = location / "sentence_bert_config.json"
    if path.is_file():
        return int(json.loads(path.read_text()).get("max_seq_length", 512))
    return 512


def cache_key(location: Path, precision: str) -> str:
    """Model files (names, sizes, mtimes), precision, OpenVINO version, export format."""
    import openvino

    files = sorted((p.relative_to(location).as_posix(), p.stat().st_size, int(p.stat().st_mtime))
                   for p in location.rglob("*") if p.is_file())
    blob = json.dumps([files, precision, openvino.__version__, FORMAT]).encode()
    return f"{location.name}-{precision}-{hashlib.sha256(blob).hexdigest()[:16]}"


def export(location: Path, pooling: str) -> Any:
    """The torch model (transformer + pooling + normalisation) as an OpenVINO model."""
    import openvino as ov
    import torch
    from transformers import AutoModel

    class Pooled(torch.nn.Module):
        def __init__(self, model: torch.nn.Module):
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            if pooling == "cls":
                pooled = hidden[:, 0]
            else:
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    model = Pooled(AutoModel.from_pretrained(str(location)).eval())
    example = torch.ones((2, 8), dtype=torch.int64)
    with torch.inference_mode():
        return ov.convert_model(
            model,
            example_input={"input_ids": example, "attention_mask": example},
            input=[("input_ids", [-1, -1], ov.Type.i64), ("attention_mask", [-1, -1], ov.Type.i64)],
        )


class OpenVinoEncoder:
    """Tokenize with `tokenizers`, run the cached OpenVINO model; rows are unit vectors."""

    def __init__(self, location: Path, cache_dir: Path, precision: str = "auto", threads: int = 1,
                 query_threads: int = 1):
        if precision not in PRECISIONS:
            raise ValueError(f"precision is one of {', '.join(PRECISIONS)}, not {precision!r}")
        self.label = f"openvino ({precision})"
        block_telemetry()
        if not (location / "tokenizer.json").is_file() or not (location / "modules.json").is_file():
            raise Unsupported(f"{location} is not a local sentence-transformers folder with tokenizer.json")
        self.location = location
        self.pooling = _pooling(location)
        self.max_tokens = _max_tokens(location)
        self.cache_dir = cache_dir / "openvino"
        self.precision = precision
        self.threads = threads
        self.query_threads = query_threads
        """For one question at a time: chosen by measurement (rag.embed.choice), 1 by default."""
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(location / "tokenizer.json"))
        self._tok.enable_truncation(max_length=self.max_tokens)
        # Padded to a multiple of 16 tokens: OpenVINO prepares kernels per input shape, and
        # fewer shapes pay (bf16: 152 -> 166 chunks/s); masked, the vectors do not change. Not
        # for int8: its static activation ranges do not expect the pad positions (SciFact dense
        # nDCG@10 0.666 unpadded, 0.625 padded).
        self._tok.enable_padding(pad_id=self._tok.token_to_id("[PAD]") or 0,
                                 pad_to_multiple_of=None if precision == "int8" else PAD_TO)
        self.tokenizer = TokenCounter(location / "tokenizer.json")
        self._needs_calibration = False
        self._lock = threading.Lock()  # one inference request, shared by threads
        self._query_lock = threading.Lock()
        self._calibration_lock = threading.Lock()
        if precision == "int8":
            path = self.cache_dir / cache_key(location, "int8") / "model.xml"
            if path.is_file():
                self._compiled = self._compile(path, "int8")
            else:  # quantized on the first texts it embeds (rag.embed.openvino.calibrate)
                self._needs_calibration = True
                self._compiled = self._compile(self._cached("auto"), "auto")
        else:
            self._compiled = self._compile(self._cached(precision), precision)
        self.dimension = int(self._compiled.outputs[0].get_partial_shape()[1].get_length())
        self._query: Any = None
        """The same model compiled for one short text at a time on `query_threads` threads: on a
        busy machine, threads waiting for each other can cost more than they bring for a
        10-token input (measured per machine by rag.embed.choice)."""

    def _cached(self, precision: str, calibration: Sequence[str] = ()) -> Path:
        """The model's IR in the cache, converted (and quantized) first if missing."""
        import openvino as ov

        folder = self.cache_dir / cache_key(self.location, precision)
        if (folder / "model.xml").is_file() and (folder / "model.bin").is_file():
            return folder / "model.xml"
        source = self._exported()
        if source is not None:  # the same graph, exported before under another precision
            log.info("reusing %s for OpenVINO (%s)", source.parent.name, precision)
            model = ov.Core().read_model(str(source))
        else:
            log.info("converting %s for OpenVINO (%s), once, into %s", self.location.name, precision, folder)
            model = export(self.location, self.pooling)
        if precision == "int8":
            model = self._quantize(model, calibration)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.cache_dir))
        try:
            ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=False)
            try:
                os.rename(tmp, folder)
            except OSError:  # another process finished first: keep its copy
                if not (folder / "model.xml").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return folder / "model.xml"

    def _exported(self) -> Path | None:
        """An IR of this model already in the cache: f32, bf16 and auto are the same exported
        graph (the precision is a compile hint), and int8 is quantized from it; reading it
        saves a torch export (seconds, and importing torch)."""
        for other in ("auto", "f32", "bf16"):
            path = self.cache_dir / cache_key(self.location, other) / "model.xml"
            if path.is_file() and path.with_suffix(".bin").is_file():
                return path
        return None

    def _quantize(self, model: Any, texts: Sequence[str]) -> Any:
        import nncf

        batches = [self._inputs(texts[i:i + 8]) for i in range(0, len(texts), 8)]
        return nncf.quantize(
            model,
            nncf.Dataset(batches),
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(batches),
        )

    def _compile(self, path: Path, precision: str, threads: int = 0) -> Any:
        import openvino as ov

        self._path = path, precision
        config: dict[str, Any] = {"INFERENCE_NUM_THREADS": threads or self.threads,
                                  "PERFORMANCE_HINT": "LATENCY",
                                  # OpenVINO's model cache: the compiled model is kept beside the
                                  # IR and loaded at the next start (0.54 s → 0.27 s measured here)
                                  "CACHE_DIR": str(path.parent / "compiled")}
        if precision in ("f32", "bf16"):
            config["INFERENCE_PRECISION_HINT"] = precision
        return ov.Core().compile_model(str(path), "CPU", config)

    def _inputs(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        encoded = self._tok.encode_batch(list(texts))
        return {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
        }

    def calibrate(self, texts: Sequence[str]) -> None:
        """For int8: quantize on these texts (a spread sample of them) unless already done.

        Done at the first text embedded, whatever its size, so every vector of an index comes
        from one model; the packaged sample (~50 paragraphs of varied prose) always joins the
        corpus' texts, so neither a two-chunk corpus nor an odd first one (a generated test
        library) sets the ranges for every later collection alone. Waiting for a batch of 32
        instead switched the model in the middle of a process, and the seed index's vectors no
        longer matched its questions'."""
        if not self._needs_calibration:
            return
        with self._calibration_lock:
            if not self._needs_calibration:  # another thread did it meanwhile
                return
            step = max(1, len(texts) // CALIBRATION_SIZE)
            from .choice import sample_texts

            sample = list(texts[::step][:CALIBRATION_SIZE]) + sample_texts()
            with self._lock:
                self._compiled = self._compile(self._cached("int8", sample), "int8")
            self._needs_calibration = False
            self._query = None

    def encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        inputs = self._inputs(texts)
        with self._lock:
            out = self._compiled(inputs)[0]
        return np.asarray(out, dtype=np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        self.calibrate([])  # a question before any text: the model the texts will get
        inputs = self._inputs([text])
        with self._query_lock:  # not the batch lock: questions need not wait for indexing
            if self._query is None:
                self._query = self._compile(*self._path, threads=self.query_threads).create_infer_request()
            out = self._query.infer(inputs)[0]
        return np.asarray(out, dtype=np.float32)[0]


@ENCODERS.register("openvino")
def _openvino(model: str, location: str, *, cache_dir: Path, precision: str = "auto", threads: int = 1,
              device: str = "cpu", query_threads: int = 1, **options: Any) -> Encoder:
    if device != "cpu":
        raise Unsupported(f"OpenVINO runs the model on the CPU here, not on {device}")
    if importlib.util.find_spec("openvino") is None:
        raise Unsupported("the openvino package is not installed")
    if not Path(location).is_dir():
        raise Unsupported(f"{location} is not a local model folder")
    return OpenVinoEncoder(Path(location), cache_dir, precision, threads, query_threads)
