"""Grounded answers about your own documents, offline.

    from rag import ask
    answer = ask("Why did Putin travel to Beijing?")
    print(answer.text)            # short answer with citation markers like [1]
    for source in answer.sources:  # the passages, best first
        print(source.title, source.date, source.score)
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from .config import Settings
from .schema import Answer, Chunk, Document, IndexReport, Passage, SkippedFile

if TYPE_CHECKING:
    from .assistant import Assistant

__all__ = [
    "Answer", "Assistant", "Chunk", "Document", "IndexReport", "Passage", "Settings",
    "SkippedFile", "ask", "default_assistant",
]

_default: Assistant | None = None
_default_lock = threading.Lock()


def default_assistant() -> Assistant:
    """The process-wide assistant configured from `RAG_*` variables (created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            from .assistant import Assistant

            _default = Assistant()
        return _default


def ask(question: str, k: int | None = None) -> Answer:
    """Answer a question from the documents in the library (`RAG_CORPUS_DIR`, default `seeds`)."""
    return default_assistant().ask(question, k)


def __getattr__(name: str):
    if name == "Assistant":
        from .assistant import Assistant

        return Assistant
    raise AttributeError(name)
