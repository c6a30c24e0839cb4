"""Grounded answers about your own documents, offline.

    from rag import ask
    answer = ask("Why did Putin travel to Beijing?")
    print(answer.text)            # short answer with citation markers like [1]
    for source in answer.sources:  # the passages, best first
        print(source.title, source.date, source.score)
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .config import Settings
from .schema import Answer, Chunk, Document, IndexReport, Passage, SkippedFile

if TYPE_CHECKING:
    from .assistant import Assistant
    from .collections import Collections

__all__ = [
    "Answer", "Assistant", "Chunk", "Document", "IndexReport", "Passage", "Settings",
    "SkippedFile", "ask", "default_assistant", "default_collections",
]

_default: Collections | None = None
_default_lock = threading.Lock()


def default_collections() -> Collections:
    """The process-wide collections configured from `RAG_*` variables (created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            from .collections import Collections

            _default = Collections(settings=Settings.from_env())
        return _default


def default_assistant() -> Assistant:
    """The process-wide assistant of `RAG_COLLECTION` (default: the library in `RAG_CORPUS_DIR`)."""
    return default_collections().home


def ask(question: str, k: int | None = None, *, collection: str | None = None,
        history: list[Any] | None = None) -> Answer:
    """Answer a question from the documents in the library (`RAG_CORPUS_DIR`, default `seeds`),
    or from collection `collection` (created on first use, empty until documents are added).
    `history`: earlier turns, so a follow-up is rewritten standalone (`answer.searched`)."""
    assistant = (default_assistant() if collection is None
                 else default_collections().get(collection, create=True))
    return assistant.ask(question, k, history=history)


def __getattr__(name: str):
    if name == "Assistant":
        from .assistant import Assistant

        return Assistant
    raise AttributeError(name)
