"""A GGUF model run in process by llama.cpp (`llama-cpp-python`): `RAG_GENERATOR=llamacpp:smollm2`
(the packaged SmolLM2 GGUF), an installed catalogue model by its name
(`qwen2.5-coder-1.5b-instruct`, or `llamacpp:qwen2.5-coder-1.5b-instruct`; rag/generate/catalogue.py)
or `llamacpp:/path/to/model.gguf`.

Why: transformers needs torch's imports and a dequantized copy, seconds of a cold start;
llama.cpp imports in a fraction of a second and reads the GGUF as it is, so it runs the packaged
`smollm2` whenever llama-cpp-python is installed (rag/generate/packaged.py). It compiles at
install, so `make run`/`make test` build its wheel once and cache it.

The prompt is ChatML (SmolLM2's and Qwen2.5's template, with the model's default system turn
when none is given),
built token by token: the turn markers are parsed as special tokens, message contents never
are, so a document or question that contains "<|im_start|>" reaches the model as text.

Several people asking at once: one llama.cpp context writes one answer at a time, so the
generator holds `replicas` contexts (each a Llama over the same memory-mapped file) and the
answers in flight share the threads: an answer alone runs on all of them; when another starts,
the running one hands its extra threads back at its next token and each runs on its share.
llama.cpp's threads wait for each other by spinning, so more threads than free cores does not
just share them, it stalls every answer (here a 125-token prompt read in 0.73 s on one thread
took 7.9 s on two with the other core busy): the threads in use never exceed `threads`.
"""

from __future__ import annotations

import codecs
import contextlib
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..config import Settings
from ..text import sentence_complete
from .base import (
    CATALOGUE_MODELS,
    GENERATORS,
    Generator,
    GeneratorError,
    Messages,
    smollm2_gguf,
)
from .concurrency import REPLICA_MAX_BYTES, answers_at_once
from .copy import Copy, CopySpan, Vocabulary, cached_vocabulary

DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
"""SmolLM2-Instruct's chat template adds this system turn when the messages have none."""


class LlamaCppGenerator(Generator):
    """Greedy decoding, like the transformers generator: answers must be repeatable."""

    def __init__(self, gguf: Path, name: str, threads: int, context: int = 4096,
                 batch: int | None = None, replicas: int = 1, cache_dir: Path | None = None,
                 system: str = DEFAULT_SYSTEM):
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise GeneratorError(
                "the llamacpp generator needs llama-cpp-python: see the README, Other generators"
            ) from exc
        if not gguf.is_file():
            raise GeneratorError(f"no GGUF model at {gguf}")
        self.name = name
        self.system = system
        """The system turn a prompt without one gets (the model's chat template's default)."""
        sizes = {"n_batch": batch, "n_ubatch": batch} if batch else {}  # llama.cpp's default: 512
        self.threads = threads
        # further contexts are made when a second answer first finds none free: a lone user's
        # cold start loads one
        self._make = lambda: Llama(model_path=str(gguf), n_ctx=context, n_threads=threads,
                                   n_threads_batch=threads, n_gpu_layers=0, verbose=False, **sizes)
        self.llm = self._make()
        self._free: queue.Queue[Any] = queue.Queue()
        self._free.put(self.llm)
        self._made = 1
        self._making = threading.Lock()
        self.replicas = replicas
        self._active = 0  # answers holding a context
        self._spare = threads  # threads no answer holds
        self._threads_changed = threading.Condition()
        self._start = self._special("<|im_start|>")
        self._end = self._special("<|im_end|>")
        self._newline = self.llm.tokenize(b"\n", add_bos=False, special=False)
        self.context_tokens = self.llm.n_ctx()
        self.parameters = gguf_parameters(self.llm)
        self._vocabulary: Vocabulary | None = None
        stat = gguf.stat()
        self._vocabulary_key = f"llamacpp:{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        self.cache_dir = cache_dir
        """Where the copy mask's vocabulary is kept between processes (None: read each time)."""


    def _special(self, marker: str) -> int:
        ids = self.llm.tokenize(marker.encode(), add_bos=False, special=True)
        if len(ids) != 1:
            raise GeneratorError(f"{self.name} has no {marker} token: not a ChatML model")
        return ids[0]

    def prompt(self, messages: Messages) -> list[int]:
        """The ChatML prompt as token ids; contents are tokenized as plain text."""
        if not messages or messages[0]["role"] != "system":
            messages = [{"role": "system", "content": self.system}, *messages]
        ids: list[int] = []
        for m in messages + [{"role": "assistant", "content": None}]:
            ids += [self._start] + self.llm.tokenize(f"{m['role']}\n".encode(), add_bos=False,
                                                     special=False)
            if m["content"] is not None:
                ids += self.llm.tokenize(m["content"].encode(), add_bos=False, special=False)
                ids += [self._end] + self._newline
        return ids

    copies = True

    def vocabulary(self) -> Vocabulary:
        """Every token's text, for the copy mask (read once, then from the cache folder)."""
        if self._vocabulary is None:
            def piece(token: int) -> str:
                try:
                    return self.llm.detokenize([token], special=False).decode("utf-8")
                except UnicodeDecodeError:
                    return ""
            self._vocabulary = cached_vocabulary(self.cache_dir, self._vocabulary_key,
                                                 self.llm.n_vocab(), piece)
        return self._vocabulary

    scores = True

    def stream(self, messages: Messages, max_new_tokens: int, one_sentence: bool = False,
               one_line: bool = True, copy_from: Copy | None = None,
               confidence: list[float] | None = None) -> Iterator[str]:
        ids = self.prompt(messages)
        processors: list[Any] = []
        if confidence is not None:  # first: it reads the model's own scores, before any mask
            processors.append(_Confidence(confidence))
        if copy_from:
            processors.append(_CopyMask(CopySpan(copy_from, self.vocabulary(),
                                                 [self._end, self.llm.token_eos()]), len(ids)))
        if len(ids) + max_new_tokens > self.llm.n_ctx():
            raise GeneratorError(f"{self.name}: the prompt ({len(ids)} tokens) does not fit its "
                                 f"{self.llm.n_ctx()}-token context")
        with self._turn() as turn:
            llm = turn.llm
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            text = ""
            produced = 0
            # reset=True still keeps the prefix this context read last (the system turn, the
            # same excerpts for a judge's question): llama-cpp-python reads only what differs
            for token in llm.generate(ids, top_k=1, top_p=1.0, min_p=0.0, temp=0.0,
                                      repeat_penalty=1.0, reset=True,
                                      logits_processor=processors or None):
                turn.share()
                if confidence is not None and processors[0].last is not None:
                    confidence.append(processors[0].logprob(token))
                if token in (self._end, llm.token_eos()):
                    break
                piece = decoder.decode(llm.detokenize([token], special=False))
                if one_line and "\n" in piece:  # one line, like the transformers generator's stop string
                    head = piece.split("\n", 1)[0]
                    if head:
                        yield head
                    break
                if piece:
                    text += piece
                    yield piece
                produced += 1
                if produced >= max_new_tokens or (one_sentence and sentence_complete(text)):
                    break

    def yes_probability(self, messages: Messages) -> float | None:
        import numpy as np

        ids = self.prompt(messages)
        yes, no = self._answer_tokens()
        seen: list[Any] = []

        def first(input_ids: Any, scores: Any) -> Any:
            seen.append(np.asarray(scores, dtype=np.float64).copy())
            return scores

        with self._turn() as turn:
            steps = turn.llm.generate(ids, top_k=1, temp=0.0, repeat_penalty=1.0, reset=True,
                                      logits_processor=[first])
            next(steps)  # one step: the scores of the reply's first token
            steps.close()
        if not seen:
            return None
        row = np.exp(seen[0] - seen[0].max())
        p_yes, p_no = float(row[yes].sum()), float(row[no].sum())
        return p_yes / (p_yes + p_no) if p_yes + p_no > 0 else None

    def _answer_tokens(self) -> tuple[list[int], list[int]]:
        """The tokens that open a "yes" and a "no" reply, in the spellings a model writes."""
        def opening(spellings: tuple[str, ...]) -> list[int]:
            return sorted({self.llm.tokenize(w.encode(), add_bos=False, special=False)[0]
                           for w in spellings})
        return (opening(("yes", "Yes", "YES", " yes", " Yes")),
                opening(("no", "No", "NO", " no", " No")))

    @contextlib.contextmanager
    def _turn(self) -> Iterator[_Turn]:
        """A context to write with, and its share of the threads, given back afterwards."""
        llm = self._context()
        with self._threads_changed:
            self._active += 1
        turn = _Turn(self, llm)
        try:
            turn.share()
            yield turn
        finally:
            with self._threads_changed:
                self._active -= 1
                self._spare += turn.held
                self._threads_changed.notify_all()
            self._free.put(llm)

    def _context(self) -> Any:
        """A free context: one made now if every context is writing and fewer than `replicas`
        exist, else the next to be freed."""
        try:
            return self._free.get_nowait()
        except queue.Empty:
            with self._making:
                make = self._made < self.replicas
                self._made += make
            return self._make() if make else self._free.get()

    def _share(self, llm: Any, held: int) -> int:
        """This answer's threads for its next step: its fair share (threads // answers holding a
        context, at least one), taken from the spare ones or handed back to them. Called before
        the prompt and between tokens; an answer that holds none waits for one to come back."""
        with self._threads_changed:
            while True:
                share = max(1, self.threads // max(1, self._active))
                if held > share:
                    self._spare += held - share
                    self._threads_changed.notify_all()
                    new = share
                else:
                    new = held + min(share - held, self._spare)
                    self._spare -= new - held
                if new:
                    break
                self._threads_changed.wait()
        if new != held:
            import llama_cpp

            llama_cpp.llama_set_n_threads(llm._ctx.ctx, new, new)
        return new


class _Turn:
    """One answer's hold on a context and on its threads (`share` between tokens)."""

    def __init__(self, owner: LlamaCppGenerator, llm: Any):
        self.owner = owner
        self.llm = llm
        self.held = 0

    def share(self) -> None:
        self.held = self.owner._share(self.llm, self.held)


class _Confidence:
    """llama.cpp logits processor that only looks: the log-probability, under the model's own
    scores, of the token chosen next (greedy decoding: the best-scored one, unless a mask that
    runs after this one forbids it)."""

    def __init__(self, out: list[float]):
        self.out = out
        self.last: Any = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import numpy as np

        row = np.asarray(scores, dtype=np.float64)
        top = row.max()
        self.last = (row.copy(), top + np.log(np.exp(row - top).sum()))
        return scores

    def logprob(self, token: int) -> float:
        row, total = self.last
        self.last = None
        return float(row[token] - total)


class _CopyMask:
    """llama.cpp logits processor: every token but those `CopySpan` allows gets -inf."""

    def __init__(self, span: CopySpan, prompt: int):
        self.span = span
        self.seen = prompt

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import numpy as np

        for token in input_ids[self.seen:]:
            self.span.advance(int(token))
        self.seen = len(input_ids)
        masked = np.full_like(scores, -np.inf)
        allowed = self.span.allowed()
        masked[allowed] = scores[allowed]
        masked[self.span.ends] += self.span.end_boost()
        return masked


def packaged(settings: Settings) -> Generator:
    """The packaged SmolLM2 GGUF through llama.cpp (`llamacpp:smollm2`, and `smollm2`'s engine
    when llama-cpp-python is installed), in the encoding that answers fastest on this machine
    (rag/generate/weights.py; `RAG_LLAMACPP_WEIGHTS`)."""
    from .weights import resolve

    shipped = smollm2_gguf()
    gguf = resolve(shipped, settings.cache_dir, settings.threads, settings.llamacpp_weights,
                   make=LlamaCppGenerator)
    label = shipped.stem if gguf == shipped else f"{shipped.stem} as {gguf.suffixes[-2][1:]}"
    return LlamaCppGenerator(gguf, f"{label} (llama.cpp)", settings.threads,
                             replicas=replicas(gguf, settings), cache_dir=settings.cache_dir)


def replicas(gguf: Path, settings: Settings) -> int:
    """How many contexts: as set, or one per concurrent answer for a small model (a context's
    memory grows with the model; a second copy of a 7B model's state is not worth it)."""
    if settings.generator_replicas:
        return settings.generator_replicas
    small = gguf.is_file() and gguf.stat().st_size < REPLICA_MAX_BYTES
    return answers_at_once(settings) if small else 1


@GENERATORS.register("llamacpp")
def _llamacpp(name: str, settings: Settings) -> Generator:
    if name == "smollm2":
        return packaged(settings)
    if name in CATALOGUE_MODELS:
        return catalogue_model(name, settings)
    gguf = Path(name).expanduser()
    return LlamaCppGenerator(gguf, f"{gguf.stem} (llama.cpp)", settings.threads,
                             replicas=replicas(gguf, settings), cache_dir=settings.cache_dir)


def catalogue_model(name: str, settings: Settings) -> Generator:
    """An installed catalogue model (`RAG_GENERATOR=qwen2.5-coder-1.5b-instruct`): found by its
    size only, so a start costs no hashing (`rag models verify` hashes it)."""
    from .catalogue import installed, lookup
    from .gguffile import read_header

    entry = lookup(name)
    gguf = installed(entry, settings.cache_dir)
    if gguf is None:
        raise GeneratorError(f"{entry.name} is not installed: rag models install {entry.name}")
    generator = LlamaCppGenerator(gguf, f"{entry.name} (llama.cpp)", settings.threads,
                                  replicas=replicas(gguf, settings), cache_dir=settings.cache_dir,
                                  system=entry.system)
    generator.parameters = read_header(gguf).parameters(entry.tied_embeddings)  # the model card's count
    return generator


def _catalogue_factory(model: str) -> Any:
    def make(name: str, settings: Settings) -> Generator:
        return catalogue_model(model, settings)

    return make


for _model in CATALOGUE_MODELS:  # each catalogue model is a generator kind of its own
    GENERATORS.register(_model)(_catalogue_factory(_model))


def gguf_parameters(llm: Any) -> int:
    """The model's parameter count, as llama.cpp reads it from the GGUF file's tensors (the
    `general.parameter_count` metadata key is optional, so it is only the fallback)."""
    try:
        return int(llm._model.n_params())
    except Exception:  # an older llama-cpp-python: the metadata, when the file has it
        try:
            return int(llm.metadata.get("general.parameter_count", 0))
        except Exception:
            return 0
