"""The page's HTTP API: named endpoints (see README.md, "The page as an HTTP API") whose
signatures and docstrings Gradio publishes on the page's "Use via API" link.

Every endpoint takes a `collection` as its last argument ('' or left out: the server's own,
`default` unless `rag --collection NAME serve`), so calls written before collections existed
keep working. With a login, `request.username` says whose rights apply (rag/users.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr
from gradio.data_classes import FileData

from rag.answer.conversation import as_turns
from rag.assistant import QuestionError
from rag.collections import UnknownCollection
from rag.generate import GeneratorError

from .service import FRIENDLY_ERROR, ReadOnly, Service, api_answer, file_paths, same_collection

log = logging.getLogger(__name__)


def username(request: gr.Request | None) -> str | None:
    return getattr(request, "username", None) if request is not None else None


def endpoints(service: Service) -> dict[str, Callable[..., Any]]:
    """api name -> function, for `gr.api`."""
    settings = service.assistant.settings

    def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
        """A missing collection, or one the user may not change, is an error message for the
        client (gr.Error), never a traceback."""
        import functools

        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except (UnknownCollection, ReadOnly, QuestionError) as exc:
                raise gr.Error(str(exc), print_exception=False) from None
        return wrapped

    def ask(question: str, k: int = settings.top_k,
            history: list[dict[str, str]] | None = None, collection: str = "",
            request: gr.Request | None = None) -> Iterator[dict[str, Any]]:
        """Answer a question from the documents of `collection`, streamed. Every update is a
        dict with `answer` (the text so far), `done`, `question`, `standalone_question`,
        `collection` and `sources`; the last one (done=true) has the final answer, `refused`,
        `method` and the cited passages. `history` is the earlier turns, [{"question": ...,
        "answer": ...}], used to rewrite follow-up questions; a turn with another "collection"
        is left out."""
        standalone = question
        where = {"question": question, "collection": collection}
        try:
            where["collection"] = service.assistant_for(collection, username(request)).collection
            for kind, value in service.stream(question, k, history or [], where["collection"],
                                              username(request)):
                if kind == "rewrite":
                    standalone = value.standalone
                elif kind == "draft":
                    yield {**where, "standalone_question": standalone,
                           "answer": value, "done": False, "sources": []}
                else:
                    yield {**where, "standalone_question": standalone,
                           "done": True, **api_answer(value)}
        except (QuestionError, GeneratorError, UnknownCollection) as exc:  # the user's to act on
            yield {**where, "answer": "", "done": True, "error": str(exc)}
        except Exception:
            log.exception("answering %r failed", question)
            yield {**where, "answer": "", "done": True, "error": FRIENDLY_ERROR}

    def rewrite(question: str, history: list[dict[str, str]] | None = None,
                collection: str = "", request: gr.Request | None = None) -> dict[str, Any]:
        """The standalone question a follow-up is rewritten into before retrieval."""
        name = service.assistant_for(collection, username(request)).collection
        result = service.rewriter.rewrite(question, as_turns(same_collection(history or [], name)))
        return {"question": question, "standalone_question": result.standalone,
                "method": result.method, "collection": name}

    def collections(request: gr.Request | None = None) -> list[dict[str, Any]]:
        """The collections this user may read: name, documents, chunks, loaded."""
        return service.collections_info(username(request))

    def create_collection(name: str, request: gr.Request | None = None) -> dict[str, Any]:
        """Create an empty collection (a name of lower-case letters, digits, '-' and '_')."""
        created = service.create(name, username(request))
        return service.collections.info(created).to_dict()

    def documents(collection: str = "", request: gr.Request | None = None) -> list[dict[str, Any]]:
        """The indexed documents of `collection`: id, title, date, chunks."""
        return service.documents(collection, username(request))

    def document(doc_id: str, collection: str = "",
                 request: gr.Request | None = None) -> dict[str, Any]:
        """One document's full text (as indexed)."""
        info = {d["id"]: d for d in service.documents(collection, username(request))}.get(doc_id)
        if info is None:
            return {"id": doc_id, "error": "no such document"}
        return {**info, "text": service.document_text(doc_id, collection, username(request))}

    def add_documents(files: list[FileData], collection: str = "",
                      request: gr.Request | None = None) -> dict[str, Any]:
        """Add files (.txt, .md, .html, .pdf) to the library of `collection` and index them."""
        report = service.add(file_paths(files), collection=collection, user=username(request))
        return {"added": report.added, "updated": report.updated,
                "skipped": [{"file": s.path, "reason": s.reason} for s in report.skipped],
                "summary": report.summary()}

    def remove(doc_id: str, collection: str = "", request: gr.Request | None = None) -> dict[str, Any]:
        """Remove a document from the library and the index of `collection`."""
        return {"id": doc_id, "removed": service.remove(doc_id, collection, username(request))}

    return {"ask": ask, "rewrite": user_errors(rewrite), "documents": user_errors(documents),
            "document": user_errors(document), "add_documents": user_errors(add_documents),
            "remove_document": user_errors(remove), "collections": collections,
            "create_collection": user_errors(create_collection)}
