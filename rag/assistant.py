"""The facade: one object that owns the index, the models and the pipeline, with short verbs."""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from .config import DEFAULT_COLLECTION, Settings
from .filters import Where
from .index import Index, IndexCorrupt, IndexMissing, write_lock
from .indexing import Indexer, Progress
from .ingest import LOADERS, LoadError, load_file
from .ingest.library import SkipLog
from .ingest.resume import EmbeddingCheckpoint
from .ingest.shard import Shard
from .schema import Answer, Document, IndexReport, Passage, SkippedFile
from .store import store_class

log = logging.getLogger(__name__)

for _name, _value in {
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_name, _value)


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
"""Terminal colour and cursor codes pasted along with a question."""
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
"""Zero-width and text-direction marks: they split words without showing."""


class QuestionError(ValueError):
    """A question that cannot be asked (empty, say); the message is meant for the user."""


@dataclass
class DocumentInfo:
    id: str
    title: str
    date: str | None
    chunks: int
    path: str
    author: str | None = None


class Assistant:
    """Grounded question answering over the documents in `settings.corpus_dir`.

    >>> assistant = Assistant(corpus_dir="seeds", index_dir="index")   # doctest: +SKIP
    >>> assistant.ask("Why did Putin travel to Beijing?").text          # doctest: +SKIP
    """

    def __init__(self, settings: Settings | None = None, *, models: Assistant | None = None,
                 **overrides: Any):
        """`collection="NAME"` (a setting like the others) works on that collection's own library
        and index; `models` is another assistant whose embedder and generator this one uses, so
        several collections load the models once (rag/collections.py)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        base = settings.replace(**given) if settings else Settings.from_env(**given)
        self.settings = base.for_collection(base.collection)
        self._models = models
        self._index: Index | None = None
        self._writer = threading.RLock()  # one refresh at a time in this process
        self._data = threading.Lock()  # held while the index changes and while it is searched
        self._checked_at = 0.0
        self._generator_loading: concurrent.futures.Future | None = None

    # -- components (loaded on first use) ------------------------------------------------
    @property
    def collection(self) -> str:
        return self.settings.collection

    @cached_property
    def embedder(self):
        if self._models is not None:
            return self._models.embedder
        from .embed import Embedder, set_threads

        set_threads(self.settings.threads)
        s = self.settings
        return Embedder(s.embedding_model, s.embedding_batch_size, backend=s.embedding_backend,
                        cache_dir=s.cache_dir, precision=s.embedding_precision, threads=s.threads)

    @cached_property
    def indexer(self) -> Indexer:
        from .ingest.chunk import Chunker

        self._configure()
        chunker = Chunker.for_tokenizer(
            self.embedder.tokenizer, self.settings.chunk_size, self.settings.chunk_overlap,
            self.embedder.max_tokens,
        )
        return Indexer(self.embedder, chunker, self.settings.store, self.max_bytes,
                       store_class(self.settings.store).options(self.settings))

    def _configure(self) -> None:
        from .ingest import ocr

        ocr.configure(self.settings.ocr_languages)

    @property
    def max_bytes(self) -> int:
        return self.settings.max_document_mb * 1024 * 1024

    @property
    def shared_store(self) -> bool:
        """The index lives in a server other processes write to (Milvus), not in index_dir."""
        return store_class(self.settings.store).shared

    @cached_property
    def generator(self):
        if self._models is not None:
            return self._models.generator
        if self._generator_loading is not None:
            return self._generator_loading.result()
        from .generate import make_generator

        return make_generator(self.settings)

    def preload(self) -> None:
        """Start loading a llama.cpp generator in a background thread, for a one-shot question
        (`rag ask`): llama.cpp reads its weights in native code, the GIL released, while the
        embedding model, the index and the search take the other core."""
        if self._models is not None or self._generator_loading is not None or "generator" in vars(self):
            return
        from .generate import make_generator
        from .generate.packaged import on_llamacpp

        if not on_llamacpp(self.settings.generator):
            return  # torch's import is Python work under the GIL, and not safe beside another

        pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rag-preload")
        self._generator_loading = pool.submit(make_generator, self.settings)
        pool.shutdown(wait=False)

    @cached_property
    def retriever(self):
        from .retrieve import make_retriever

        return make_retriever(self.settings, self.embedder, lambda: self.index_data, self._data)

    @property
    def answer_style(self) -> str:
        """compact, excerpts or full (rag.generate.base.answer_style says how `auto` picks)."""
        from .generate.base import answer_style

        if self.settings.answer_style != "auto":
            return self.settings.answer_style
        generator = self.generator
        return answer_style("auto", self.settings.full_min_parameters, generator is not None,
                            bool(generator and generator.remote), generator.parameters if generator else 0,
                            bool(generator and generator.scores))[0]

    @cached_property
    def rewriter(self):
        from .answer import QuestionRewriter

        return QuestionRewriter(self.generator)

    @cached_property
    def reader(self):
        style = self.answer_style
        if style in ("full", "excerpts") and self.generator is None:
            raise ValueError(f"RAG_ANSWER_STYLE={style} needs a generator (RAG_GENERATOR)")
        if style == "full":
            from .answer.full import FullReader
            from .answer.verify import Verifier

            return FullReader(self.generator, Verifier(self.embedder, self.settings.verify_threshold),
                              self.settings.max_answer_tokens, self.settings.min_score)
        if style == "excerpts":
            from .answer.excerpts import ExcerptReader

            return ExcerptReader(self.ranker, self.generator, self.settings.excerpt_sentences)
        return self.ranker

    @cached_property
    def ranker(self):
        """The compact reader: it ranks the sentences for every style that reads them, and
        answers in the compact style itself."""
        from .answer import GroundedReader

        return GroundedReader(
            self.embedder,
            self.generator,
            min_score=self.settings.min_score,
            fallback_min_score=self.settings.fallback_min_score,
            evidence_sentences=self.settings.evidence_sentences,
            max_new_tokens=self.settings.max_new_tokens,
            ranking=self.settings.sentence_ranking,
            copy=self.settings.short_answers == "copy",
            learnt_refusal=self.settings.refusal == "learnt",
            idf=self._collection_idf,
            **self._judge(),
        )

    def _judge(self) -> dict[str, Any]:
        """The compact path's judge and its fitted threshold (`RAG_JUDGE`; none when unset)."""
        judge = self.judge_model if self.answer_style == "compact" else None
        if judge is None:
            return {}
        from .answer.judge import decision

        fitted = decision("compact-judge", judge.name)
        return {"judge": judge, "judge_threshold": fitted["threshold"] if fitted else 0.5}

    @cached_property
    def judge_model(self):
        """The model named by `RAG_JUDGE` (loaded once, shared like the generator), or None."""
        if self._models is not None:
            return self._models.judge_model
        name = self.settings.judge.strip()
        if not name:
            return None
        if name == self.settings.generator:
            return self.generator
        from .generate import make_generator

        return make_generator(self.settings.replace(generator=name))

    def _collection_idf(self, terms):
        """The terms' IDF over the indexed chunks, or None before there is an index to count in."""
        index = self._index
        if index is None:
            return None
        return index.idf(terms)

    # -- index ----------------------------------------------------------------------------
    @property
    def index_data(self) -> Index:
        """The loaded index, built or refreshed from the library first if needed."""
        if self._index is None:
            self.refresh()
        elif time.monotonic() - self._checked_at > 2.0 and self._writer.acquire(blocking=False):
            try:  # a quick look for changed files, unless an update is already running
                if self.shared_store:  # the server's document list is the truth; no folder scan
                    self._index.outdated(self.settings.index_dir)
                    self._checked_at = time.monotonic()
                else:
                    self.refresh()
            finally:
                self._writer.release()
        assert self._index is not None
        return self._index

    def _shard_dir(self, shard: Shard | None = None) -> Path:
        return self.settings.index_dir / (f"shard-{shard.number}-of-{shard.count}" if shard else "")

    def refresh(self, progress: Progress | None = None, shard: Shard | None = None,
                converted: Iterable[Document] = ()) -> IndexReport:
        """Load the index, rebuild it if damaged or built with other settings, and bring it in
        line with the library folder (new, changed and deleted files; only those of `shard`
        when given). Over a shared store, parallel workers need no lock: writes are upserts.
        `converted`: documents just read from files now in the library (not read again)."""
        corpus = self.settings.corpus_dir
        lock = contextlib.nullcontext() if self.shared_store else write_lock(self.settings.index_dir)
        with self._writer, lock:
            index = self._index
            if index is not None and index.outdated(self.settings.index_dir):
                index = None  # another process saved a newer index: start from that one
            if index is None:
                try:
                    index = self.indexer.open(self.settings.index_dir)
                except IndexMissing:
                    log.info("no index yet in %s: building it from %s",
                             self.settings.index_dir, corpus)
                except IndexCorrupt as exc:
                    log.warning("the index is damaged (%s): rebuilding it from %s", exc, corpus)
            if not corpus.is_dir() and self.collection != DEFAULT_COLLECTION:
                corpus.mkdir(parents=True, exist_ok=True)  # a named collection: made on first use
            if not corpus.is_dir():
                if index is None:
                    raise FileNotFoundError(
                        f"no index and no document folder {corpus}: create it and add documents "
                        "(rag index FILE...)"
                    )
                log.warning("document folder %s not found: using the index as it is", corpus)
                self._index, self._checked_at = index, time.monotonic()
                return IndexReport()
            # parallel shard workers keep their resume files apart (one clears only its own)
            resume_dir = self._shard_dir(shard)
            checkpoint = EmbeddingCheckpoint(resume_dir, self.indexer.config())
            skips = SkipLog(resume_dir)
            index, report = self.indexer.run(index, corpus, progress, guard=self._data,
                                             checkpoint=checkpoint, shard=shard, skips=skips,
                                             converted=converted)
            if report.changed or index.generation == 0:
                index.save(self.settings.index_dir)
                log.info("index updated: %s", report.summary())
            if self.settings.index_dir.is_dir():
                resume_dir.mkdir(exist_ok=True)
                skips.save()
            checkpoint.clear()
            self._index, self._checked_at = index, time.monotonic()
            return report

    @property
    def loaded(self) -> bool:
        return self._index is not None

    def close(self) -> None:
        """Let go of the index (memory maps, a Milvus connection) once no search or update
        holds it; the next question loads it again."""
        with self._writer, self._data:
            index, self._index = self._index, None
        close = getattr(index.store, "close", None) if index is not None else None
        if close is not None:
            close()

    def add(self, paths: Iterable[str | Path], progress: Progress | None = None) -> IndexReport:
        """Copy files (or the supported files in folders) into the library and index them.

        Files that cannot be read are reported in `report.skipped` and not copied."""
        corpus = self.settings.corpus_dir
        corpus.mkdir(parents=True, exist_ok=True)
        rejected: list[SkippedFile] = []
        converted: list[Document] = []
        self._configure()
        for path in _expand(paths):
            try:
                converted.append(load_file(path, max_bytes=self.max_bytes))
            except LoadError as exc:
                rejected.append(SkippedFile(path.name, str(exc)))
                continue
            _copy_atomic(path, corpus / safe_filename(path.name))
        self._checked_at = 0.0
        report = self.refresh(progress, converted=converted)
        report.skipped = rejected + report.skipped
        return report

    def remove(self, doc_id: str) -> bool:
        """Delete a document from the index and from the library folder."""
        with self._writer:
            index = self.index_data
            if doc_id not in index.documents:
                return False
            target = (self.settings.corpus_dir / doc_id).resolve()
            if self.settings.corpus_dir.resolve() in target.parents and target.exists():
                target.unlink()
            if self.shared_store:  # it may come from another process's library: delete it here
                with self._data:
                    index.delete(doc_id)
                return True
            self._checked_at = 0.0
            self.refresh()
            return True

    def documents(self) -> list[DocumentInfo]:
        index = self.index_data
        with self._data:
            return [
                DocumentInfo(d.id, d.title, d.date, index.chunk_count(d.id), d.path, d.author)
                for d in sorted(index.documents.values(), key=lambda d: d.id)
            ]

    def skipped(self, shard: Shard | None = None) -> list[SkippedFile]:
        """The library's files that are not indexed, and why (after bringing the index up to date)."""
        if not self.shared_store:
            self.index_data  # noqa: B018 (the scan that finds them)
        return SkipLog(self._shard_dir(shard)).items()

    def document_text(self, doc_id: str) -> str:
        index = self.index_data
        with self._data:
            return index.document_text(doc_id)

    # -- questions ------------------------------------------------------------------------
    def _question(self, question: str) -> str:
        if not isinstance(question, str) or not question.strip():
            raise QuestionError("Please type a question.")
        question = question[: 4 * self.settings.max_question_chars]  # bound the work below
        question = _ANSI.sub("", question)
        question = _INVISIBLE.sub("", question)
        question = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", " ", question).strip()
        if not question:
            raise QuestionError("Please type a question.")
        return question[: self.settings.max_question_chars]

    def search(self, query: str, k: int | None = None, where: Where | None = None) -> list[Passage]:
        return self.retriever.run(self._question(query), k or self.settings.top_k, where)

    def ask(self, question: str, k: int | None = None, where: Where | None = None,
            history: list[Any] | None = None) -> Answer:
        """`where` restricts the passages (to some documents, a date range: `rag.filters.Where`);
        `history` (earlier turns: {"question", "answer"} dicts or (question, answer) pairs) makes a
        follow-up standalone with the page's rewriter; `answer.searched` is what was searched."""
        answer: Answer | None = None
        for item in self.stream(question, k, where, history):
            if isinstance(item, Answer):
                answer = item
        assert answer is not None
        return answer

    def stream(self, question: str, k: int | None = None, where: Where | None = None,
               history: list[Any] | None = None) -> Iterator[str | Answer]:
        """Draft text pieces as they are generated, then the final Answer."""
        question = self._question(question)
        searched = self.rewriter.rewrite(question, history).standalone if history else question
        passages = self.retriever.run(searched, k or self.settings.top_k, where)
        for item in self.reader.stream(searched, passages):
            if isinstance(item, Answer):
                item.question, item.searched = question, searched
            yield item

    def as_retriever(self, k: int | None = None):
        """This assistant's retrieval as a LangChain `BaseRetriever`."""
        from .retrieve.langchain import AssistantRetriever

        return AssistantRetriever(assistant=self, k=k or self.settings.top_k)


def safe_filename(name: str) -> str:
    """A plain file name: no folders, no control characters, no leading dot, at most 160 bytes
    (file systems allow 255), and the type suffix kept so the file is still indexed."""
    name = name.replace("\\", "/").split("/")[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name)
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    stem = re.sub(r"[^\w.\- ()]+", "_", stem).strip(" .")
    suffix = re.sub(r"[^\w]+", "", suffix)[:10]
    stem = stem.encode()[:150].decode("utf-8", "ignore").rstrip(" .") or "document"
    return f"{stem}.{suffix}" if suffix else stem


def _expand(paths: Iterable[str | Path]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in LOADERS
            )
        else:
            yield path


def _copy_atomic(src: Path, dst: Path) -> None:
    if dst.exists() and src.resolve() == dst.resolve():
        return
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
