"""The page's HTTP API: named endpoints (see README.md, "The page as an HTTP API") whose
signatures and docstrings Gradio publishes on the page's "Use via API" link."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from gradio.data_classes import FileData

from rag.answer.conversation import as_turns
from rag.assistant import QuestionError
from rag.generate import GeneratorError

from .service import FRIENDLY_ERROR, Service, api_answer, file_paths

log = logging.getLogger(__name__)


def endpoints(service: Service) -> dict[str, Callable[..., Any]]:
    """api name -> function, for `gr.api`."""
    assistant = service.assistant
    settings = assistant.settings

    def ask(question: str, k: int = settings.top_k,
            history: list[dict[str, str]] | None = None) -> Iterator[dict[str, Any]]:
        """Answer a question from the documents, streamed. Every update is a dict with
        `answer` (the text so far), `done`, `question`, `standalone_question` and `sources`;
        the last one (done=true) has the final answer, `refused`, `method` and the cited
        passages. `history` is the earlier turns, [{"question": ..., "answer": ...}], used to
        rewrite follow-up questions."""
        standalone = question
        try:
            for kind, value in service.stream(question, k, history or []):
                if kind == "rewrite":
                    standalone = value.standalone
                elif kind == "draft":
                    yield {"question": question, "standalone_question": standalone,
                           "answer": value, "done": False, "sources": []}
                else:
                    yield {"question": question, "standalone_question": standalone,
                           "done": True, **api_answer(value)}
        except (QuestionError, GeneratorError) as exc:  # the user's to act on: say it
            yield {"question": question, "answer": "", "done": True, "error": str(exc)}
        except Exception:
            log.exception("answering %r failed", question)
            yield {"question": question, "answer": "", "done": True, "error": FRIENDLY_ERROR}

    def rewrite(question: str, history: list[dict[str, str]] | None = None) -> dict[str, Any]:
        """The standalone question a follow-up is rewritten into before retrieval."""
        result = service.rewriter.rewrite(question, as_turns(history or []))
        return {"question": question, "standalone_question": result.standalone,
                "method": result.method}

    def documents() -> list[dict[str, Any]]:
        """The indexed documents: id, title, date, chunks."""
        return service.documents()

    def document(doc_id: str) -> dict[str, Any]:
        """One document's full text (as indexed)."""
        info = {d["id"]: d for d in service.documents()}.get(doc_id)
        if info is None:
            return {"id": doc_id, "error": "no such document"}
        return {**info, "text": assistant.document_text(doc_id)}

    def add_documents(files: list[FileData]) -> dict[str, Any]:
        """Add files (.txt, .md, .html, .pdf) to the library and index them."""
        report = service.add(file_paths(files))
        return {"added": report.added, "updated": report.updated,
                "skipped": [{"file": s.path, "reason": s.reason} for s in report.skipped],
                "summary": report.summary()}

    def remove(doc_id: str) -> dict[str, Any]:
        """Remove a document from the library and the index."""
        return {"id": doc_id, "removed": bool(assistant.remove(doc_id))}


    return {"ask": ask, "rewrite": rewrite, "documents": documents, "document": document,
            "add_documents": add_documents, "remove_document": remove}
