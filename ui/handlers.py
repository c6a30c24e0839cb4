"""The page's event handlers: what each click, upload and question does to the components.
Gradio calls them with the components' values and shows what they return."""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from rag.assistant import QuestionError
from rag.collections import UnknownCollection
from rag.generate import GeneratorError
from rag.schema import Answer

from . import render
from .api import username
from .service import FRIENDLY_ERROR, HISTORY_TURNS, ReadOnly, Service, count_questions, file_paths

log = logging.getLogger(__name__)


NO_COLLECTION = ("That collection is not available (there is none of that name you may read): "
                 "choose one above.")


SWITCH_OUTPUTS = 10
"""on_switch's outputs: chat, question, turns, sources, source doc and text, documents table,
document pick, document status and text."""


class Page:
    def __init__(self, service: Service):
        self.service = service

    # -- chat ----------------------------------------------------------------------------
    def on_ask(self, message: str, chat: list, turns: list, k: float, collection: str | None,
               request: gr.Request):
        user = username(request)
        chat = list(chat or [])
        turns = list(turns or [])
        question = (message or "").strip()
        if not question:
            gr.Warning("Please type a question.")
            yield chat, "", turns, gr.skip(), gr.skip()
            return
        chat.append({"role": "user", "content": render.escape_markdown(question)})
        chat.append({"role": "assistant", "content": "…"})
        yield chat, "", turns, gr.skip(), gr.skip()
        try:
            answer: Answer | None = None
            standalone = question
            if not collection:
                raise UnknownCollection("")
            for kind, value in self.service.stream(question, k, turns, collection, user):
                if kind == "rewrite":
                    standalone = value.standalone
                    if value.changed:
                        chat.insert(len(chat) - 1, {
                            "role": "assistant",
                            "content": render.escape_markdown(value.standalone),
                            "metadata": {"title": "Follow-up question rewritten (click to see)",
                                         "status": "done"},
                        })
                elif kind == "draft":
                    chat[-1] = {"role": "assistant", "content": render.draft_markdown(value)}
                    yield chat, "", turns, gr.skip(), gr.skip()
                else:
                    answer = value
            assert answer is not None
            chat[-1] = {"role": "assistant", "content": render.answer_markdown(answer)}
            turns.append({"question": question, "standalone": standalone, "collection": collection,
                          "answer": "" if answer.refused else answer.text})
            docs = render.source_documents(answer)
            html = render.sources_html(answer, turn=count_questions(chat))
            yield (chat, "", turns[-HISTORY_TURNS:], html,
                   gr.update(choices=docs, value=docs[0] if docs else None))
        except (QuestionError, GeneratorError) as exc:  # the user's to act on: say it
            chat[-1] = {"role": "assistant", "content": str(exc)}
            yield chat, "", turns, gr.skip(), gr.skip()
        except UnknownCollection:
            chat[-1] = {"role": "assistant", "content": NO_COLLECTION}
            yield chat, "", turns, gr.skip(), gr.skip()
        except Exception:
            log.exception("answering %r failed", question)
            chat[-1] = {"role": "assistant", "content": FRIENDLY_ERROR}
            yield chat, "", turns, gr.skip(), gr.skip()

    def on_example(self, evt: gr.SelectData) -> str:
        value = evt.value
        return value.get("text", "") if isinstance(value, dict) else str(value or "")

    def on_clear(self):
        return ([], "", [], render.SOURCES_EMPTY, gr.update(choices=[], value=None),
                gr.update(value="", visible=False))

    # -- collections ---------------------------------------------------------------------
    def on_start(self, request: gr.Request):
        """A new page: the collections this user may read, on the server's own if allowed."""
        user = username(request)
        try:
            names = self.service.collection_names(user)
            first = self.service.first_collection(user)
        except Exception:
            log.exception("listing collections failed")
            gr.Warning("The collections could not be read; see the server log.")
            return gr.skip(), gr.skip(), gr.skip()
        table, choices = self.on_load(first, request)
        return gr.update(choices=names, value=first), table, choices

    def on_switch(self, collection: str | None, request: gr.Request):
        """Another collection: the conversation starts over (and says so), the documents tab
        shows that collection."""
        table, choices = self.on_load(collection, request)
        notice = ([{"role": "assistant", "content": "Now answering from the collection "
                    f"**{render.escape_markdown(collection)}**: the conversation starts over."}]
                  if collection else [])
        return (notice, "", [], render.SOURCES_EMPTY, gr.update(choices=[], value=None),
                gr.update(value="", visible=False), table, choices, "",
                gr.update(value="", visible=False))

    def on_create(self, name: str, request: gr.Request):
        """Create a collection and switch to it (outputs: status, picker, name box, then those
        of on_switch)."""
        user = username(request)
        try:
            created = self.service.create(name, user)
        except (QuestionError, ReadOnly) as exc:
            return (str(exc), gr.skip(), gr.skip(), *[gr.skip()] * SWITCH_OUTPUTS)
        except Exception:
            log.exception("creating collection %r failed", name)
            return ("The collection could not be created; see the server log.", gr.skip(),
                    gr.skip(), *[gr.skip()] * SWITCH_OUTPUTS)
        names = self.service.collection_names(user)
        return (f"Created the collection `{created}`: add documents to it in the Documents tab.",
                gr.update(choices=names, value=created), "", *self.on_switch(created, request))

    def on_open(self, doc_id: str | None, collection: str | None, request: gr.Request):
        if not doc_id:
            gr.Info("Choose a document first.")
            return gr.update(value="", label="Document")
        try:
            text = self.service.document_text(doc_id, collection, username(request))
        except (KeyError, UnknownCollection):
            gr.Warning(f"{doc_id} is no longer in the index.")
            return gr.update(value="", label="Document")
        except Exception:
            log.exception("opening %r failed", doc_id)
            gr.Warning("The document could not be opened; see the server log.")
            return gr.update(value="", label="Document")
        return gr.update(value=text, label=f"Document: {doc_id}", visible=True)

    # -- documents -----------------------------------------------------------------------
    def on_load(self, collection: str | None, request: gr.Request):
        if not collection:
            return [], gr.update(choices=[], value=None)
        try:
            table = self.service.table(collection, username(request))
        except UnknownCollection:
            gr.Warning(NO_COLLECTION)
            return [], gr.update(choices=[], value=None)
        except Exception:
            log.exception("listing documents failed")
            gr.Warning("The document list could not be read; see the server log.")
            return gr.skip(), gr.skip()
        return table, gr.update(choices=[r[0] for r in table], value=None)

    def on_upload(self, files: Any, collection: str | None, request: gr.Request,
                  progress=gr.Progress()):  # noqa: B008 (Gradio's injection)
        paths = file_paths(files)
        if not paths:
            return gr.skip(), gr.skip(), gr.skip(), None

        def report_progress(done: int, total: int) -> None:
            progress((done, total), desc="Embedding", unit="chunks")

        try:
            progress(0, desc="Reading files")
            report = self.service.add(paths, report_progress, collection, username(request))
            message = render.report_markdown(report)
        except ReadOnly as exc:
            message = str(exc)
        except UnknownCollection:
            message = NO_COLLECTION
        except Exception:
            log.exception("adding %s failed", paths)
            message = ("**The files could not be added.** The documents already indexed are "
                       "unchanged. Details are in the server log.")
        table, choices = self.on_load(collection, request)
        return message, table, choices, None

    def on_remove(self, doc_id: str | None, collection: str | None, request: gr.Request):
        if not doc_id:
            gr.Info("Choose a document to remove.")
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        try:
            removed = self.service.remove(doc_id, collection, username(request))
            message = (f"Removed `{doc_id}`." if removed
                       else f"`{doc_id}` was not in the index.")
        except ReadOnly as exc:
            message = str(exc)
        except UnknownCollection:
            message = NO_COLLECTION
        except Exception:
            log.exception("removing %r failed", doc_id)
            message = "The document could not be removed; see the server log."
        table, choices = self.on_load(collection, request)
        return message, table, choices, gr.update(value="", visible=False)

    def on_row(self, evt: gr.SelectData) -> Any:
        row = evt.row_value if isinstance(evt.row_value, list) else None
        return row[0] if row else gr.skip()
