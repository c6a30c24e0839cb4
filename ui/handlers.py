"""The page's event handlers: what each click, upload and question does to the components.
Gradio calls them with the components' values and shows what they return."""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from rag.assistant import QuestionError
from rag.generate import GeneratorError
from rag.schema import Answer

from . import render
from .service import FRIENDLY_ERROR, HISTORY_TURNS, Service, count_questions, file_paths

log = logging.getLogger(__name__)


class Page:
    def __init__(self, service: Service):
        self.service = service

    # -- chat ----------------------------------------------------------------------------
    def on_ask(self, message: str, chat: list, turns: list, k: float):
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
            for kind, value in self.service.stream(question, k, turns):
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
            turns.append({"question": question, "standalone": standalone,
                          "answer": "" if answer.refused else answer.text})
            docs = render.source_documents(answer)
            html = render.sources_html(answer, turn=count_questions(chat))
            yield (chat, "", turns[-HISTORY_TURNS:], html,
                   gr.update(choices=docs, value=docs[0] if docs else None))
        except (QuestionError, GeneratorError) as exc:  # the user's to act on: say it
            chat[-1] = {"role": "assistant", "content": str(exc)}
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

    def on_open(self, doc_id: str | None):
        if not doc_id:
            gr.Info("Choose a document first.")
            return gr.update(value="", label="Document")
        try:
            text = self.service.assistant.document_text(doc_id)
        except KeyError:
            gr.Warning(f"{doc_id} is no longer in the index.")
            return gr.update(value="", label="Document")
        except Exception:
            log.exception("opening %r failed", doc_id)
            gr.Warning("The document could not be opened; see the server log.")
            return gr.update(value="", label="Document")
        return gr.update(value=text, label=f"Document: {doc_id}", visible=True)

    # -- documents -----------------------------------------------------------------------
    def on_load(self):
        try:
            table = self.service.table()
        except Exception:
            log.exception("listing documents failed")
            gr.Warning("The document list could not be read; see the server log.")
            return gr.skip(), gr.skip()
        return table, gr.update(choices=[r[0] for r in table], value=None)

    def on_upload(self, files: Any, progress=gr.Progress()):  # noqa: B008 (Gradio's injection)
        paths = file_paths(files)
        if not paths:
            return gr.skip(), gr.skip(), gr.skip(), None

        def report_progress(done: int, total: int) -> None:
            progress((done, total), desc="Embedding", unit="chunks")

        try:
            progress(0, desc="Reading files")
            report = self.service.add(paths, report_progress)
            message = render.report_markdown(report)
        except Exception:
            log.exception("adding %s failed", paths)
            message = ("**The files could not be added.** The documents already indexed are "
                       "unchanged. Details are in the server log.")
        table, choices = self.on_load()
        return message, table, choices, None

    def on_remove(self, doc_id: str | None):
        if not doc_id:
            gr.Info("Choose a document to remove.")
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        try:
            removed = self.service.assistant.remove(doc_id)
            message = (f"Removed `{doc_id}`." if removed
                       else f"`{doc_id}` was not in the index.")
        except Exception:
            log.exception("removing %r failed", doc_id)
            message = "The document could not be removed; see the server log."
        table, choices = self.on_load()
        return message, table, choices, gr.update(value="", visible=False)

    def on_row(self, evt: gr.SelectData) -> Any:
        row = evt.row_value if isinstance(evt.row_value, list) else None
        return row[0] if row else gr.skip()
