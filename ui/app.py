"""The Gradio web page over `rag.Assistant`: a cited, streaming chat with a sources panel, and
a documents tab to add, open and remove documents. Started by `rag serve`.

The page doubles as an HTTP API; the named endpoints (see README.md, "The page as an HTTP API") are

    /ask              question, k, history -> streamed answer dicts (last one has sources)
    /rewrite          question, history -> the standalone question used for retrieval
    /documents        -> the indexed documents
    /document         doc_id -> the document's text
    /add_documents    files -> what was added, updated and rejected
    /remove_document  doc_id -> whether it was removed

Gradio reads `GRADIO_TEMP_DIR` when the page is built, so `launch` sets it first.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.data_classes import FileData

from rag.assistant import QuestionError
from rag.conversation import QuestionRewriter, Turn, as_turns
from rag.generate import GeneratorError
from rag.schema import Answer

from . import render

log = logging.getLogger(__name__)

TITLE = "Ask your documents"
EXAMPLES = [
    "Why did Putin travel to Beijing?",
    "How did Putin describe the relations between Russia and China?",
    "What did Xi say China and Russia will uphold?",
]
SUPPORTED = [".txt", ".md", ".markdown", ".html", ".htm", ".pdf"]
MAX_K = 12
HISTORY_TURNS = 6
FRIENDLY_ERROR = (
    "Sorry, something went wrong while answering. Please try again; the details are in the "
    "server log."
)

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


class Service:
    """What the page and the API do, without Gradio: easy to test and to reuse."""

    def __init__(self, assistant: Any):
        self.assistant = assistant
        self._rewriter: QuestionRewriter | None = None

    @property
    def rewriter(self) -> QuestionRewriter:
        if self._rewriter is None:
            self._rewriter = QuestionRewriter(self.assistant.generator)
        return self._rewriter

    def clamp_k(self, k: Any) -> int:
        try:
            value = int(k)
        except (TypeError, ValueError):
            value = self.assistant.settings.top_k
        return max(1, min(MAX_K, value))

    def stream(self, question: str, k: Any, history: Any) -> Iterator[tuple[str, Any]]:
        """("rewrite", Rewrite), then ("draft", text so far)..., then ("answer", Answer)."""
        if not isinstance(question, str) or not question.strip():
            raise QuestionError("Please type a question.")
        turns = as_turns(history)[-HISTORY_TURNS:]
        rewrite = self.rewriter.rewrite(question, turns)
        if rewrite.changed:
            log.info("follow-up %r searched as %r (%s)", question, rewrite.standalone,
                     rewrite.method)
        yield "rewrite", rewrite
        draft = ""
        for item in self.assistant.stream(rewrite.standalone, self.clamp_k(k)):
            if isinstance(item, Answer):
                yield "answer", item
            else:
                draft += item
                yield "draft", draft

    # -- documents ---------------------------------------------------------------------
    def documents(self) -> list[dict[str, Any]]:
        # no "path" key: gradio_client would take the dicts for files to download
        return [{"id": d.id, "title": d.title, "date": d.date, "chunks": d.chunks}
                for d in self.assistant.documents()]

    def table(self) -> list[list[Any]]:
        return [[d["id"], d["title"], d["date"] or "", d["chunks"]] for d in self.documents()]

    def add(self, paths: list[str], progress: Any = None):
        from rag.assistant import safe_filename

        report = self.assistant.add([Path(p) for p in paths], progress=progress)
        # report only on the files given, not on other unreadable files in the library
        given = {Path(p).name for p in paths} | {safe_filename(Path(p).name) for p in paths}
        report.skipped = [s for s in report.skipped if Path(s.path).name in given]
        for path in paths:  # the upload copies are not needed once in the library
            _discard_upload(Path(path))
        return report


def api_answer(answer: Answer) -> dict[str, Any]:
    """An Answer as plain JSON for the API: text, flags, and the numbered sources."""
    cited = set(render.cited_numbers(answer))
    return {
        "answer": answer.text,
        "short": answer.short,
        "refused": answer.refused,
        "method": answer.method,
        "cited": sorted(cited),
        "sources": [
            {"n": n, "doc_id": p.doc_id, "title": p.title, "date": p.date, "text": p.text,
             "start": p.start, "end": p.end, "score": round(float(p.score), 4),
             "highlight": list(p.highlight) if p.highlight else None, "cited": n in cited}
            for n, p in enumerate(answer.sources, start=1)
        ],
    }


def count_questions(chat: list) -> int:
    return sum(1 for m in chat if isinstance(m, dict) and m.get("role") == "user")


def _discard_upload(path: Path) -> None:
    from gradio.utils import get_upload_folder

    try:
        root = Path(get_upload_folder()).resolve()
        path = path.resolve()
        if root in path.parents:
            path.unlink(missing_ok=True)
            if path.parent != root and not any(path.parent.iterdir()):
                path.parent.rmdir()
    except OSError:
        log.debug("could not delete upload %s", path, exc_info=True)


def _file_paths(files: Any) -> list[str]:
    if not files:
        return []
    if not isinstance(files, list | tuple):
        files = [files]
    paths = []
    for f in files:
        if isinstance(f, dict):
            f = f.get("path") or f.get("name")
        elif hasattr(f, "path"):
            f = f.path
        elif hasattr(f, "name") and not isinstance(f, str):
            f = f.name
        if f:
            paths.append(str(f))
    return paths


def build(assistant: Any):
    """The gr.Blocks page (not launched)."""
    service = Service(assistant)
    settings = assistant.settings

    # -- chat ------------------------------------------------------------------------------
    def on_ask(message: str, chat: list, turns: list, k: float):
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
            for kind, value in service.stream(question, k, turns):
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

    def on_example(evt: gr.SelectData) -> str:
        value = evt.value
        return value.get("text", "") if isinstance(value, dict) else str(value or "")

    def on_clear():
        return ([], "", [], render.SOURCES_EMPTY, gr.update(choices=[], value=None),
                gr.update(value="", visible=False))

    def on_open(doc_id: str | None):
        if not doc_id:
            gr.Info("Choose a document first.")
            return gr.update(value="", label="Document")
        try:
            text = assistant.document_text(doc_id)
        except KeyError:
            gr.Warning(f"{doc_id} is no longer in the index.")
            return gr.update(value="", label="Document")
        except Exception:
            log.exception("opening %r failed", doc_id)
            gr.Warning("The document could not be opened; see the server log.")
            return gr.update(value="", label="Document")
        return gr.update(value=text, label=f"Document: {doc_id}", visible=True)

    # -- documents -------------------------------------------------------------------------
    def on_load():
        try:
            table = service.table()
        except Exception:
            log.exception("listing documents failed")
            gr.Warning("The document list could not be read; see the server log.")
            return gr.skip(), gr.skip()
        return table, gr.update(choices=[r[0] for r in table], value=None)

    def on_upload(files: Any, progress=gr.Progress()):  # noqa: B008 (Gradio's injection)
        paths = _file_paths(files)
        if not paths:
            return gr.skip(), gr.skip(), gr.skip(), None

        def report_progress(done: int, total: int) -> None:
            progress((done, total), desc="Embedding", unit="chunks")

        try:
            progress(0, desc="Reading files")
            report = service.add(paths, report_progress)
            message = render.report_markdown(report)
        except Exception:
            log.exception("adding %s failed", paths)
            message = ("**The files could not be added.** The documents already indexed are "
                       "unchanged. Details are in the server log.")
        table, choices = on_load()
        return message, table, choices, None

    def on_remove(doc_id: str | None):
        if not doc_id:
            gr.Info("Choose a document to remove.")
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        try:
            removed = assistant.remove(doc_id)
            message = (f"Removed `{doc_id}`." if removed
                       else f"`{doc_id}` was not in the index.")
        except Exception:
            log.exception("removing %r failed", doc_id)
            message = "The document could not be removed; see the server log."
        table, choices = on_load()
        return message, table, choices, gr.update(value="", visible=False)

    def on_row(evt: gr.SelectData) -> Any:
        row = evt.row_value if isinstance(evt.row_value, list) else None
        return row[0] if row else gr.skip()

    # -- API-only endpoints ----------------------------------------------------------------
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
        report = service.add(_file_paths(files))
        return {"added": report.added, "updated": report.updated,
                "skipped": [{"file": s.path, "reason": s.reason} for s in report.skipped],
                "summary": report.summary()}

    def remove(doc_id: str) -> dict[str, Any]:
        """Remove a document from the library and the index."""
        return {"id": doc_id, "removed": bool(assistant.remove(doc_id))}

    # -- layout ----------------------------------------------------------------------------
    with gr.Blocks(title=TITLE, delete_cache=(3600, 24 * 3600)) as demo:
        turns_state = gr.State([])
        gr.Markdown(f"## {TITLE}\nAnswers come only from the indexed documents, with citations "
                    "[1], [2] to the passages they rest on. Everything runs on this machine.")
        with gr.Tabs():
            with gr.Tab("Ask", id="ask"), gr.Row(equal_height=False):
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(
                        label="Conversation", elem_id="rag-chat", height=480,
                        placeholder="**Ask a question about your documents.** "
                                    "Follow-up questions are understood in context.",
                        examples=[{"text": q} for q in EXAMPLES],
                        feedback_options=None, buttons=["copy"],
                    )
                    with gr.Row():
                        question = gr.Textbox(
                            placeholder="Type a question and press Enter",
                            show_label=False, scale=5, elem_id="rag-question",
                            max_lines=4, submit_btn=False,
                        )
                        send = gr.Button("Ask", variant="primary", scale=1,
                                         elem_id="rag-ask", min_width=80)
                    with gr.Row():
                        k = gr.Slider(1, MAX_K, value=settings.top_k, step=1,
                                      label="Passages to retrieve", elem_id="rag-k", scale=3)
                        clear_btn = gr.Button("Clear conversation", elem_id="rag-clear",
                                              scale=1, size="sm")
                with gr.Column(scale=2):
                    gr.Markdown("### Sources")
                    sources = gr.HTML(render.SOURCES_EMPTY, elem_id="rag-sources",
                                      js_on_load=None)
                    with gr.Row():
                        source_doc = gr.Dropdown(choices=[], label="Document of a source",
                                                 elem_id="rag-source-doc", scale=3)
                        open_btn = gr.Button("Open document", elem_id="rag-open",
                                             scale=1, size="sm")
                    source_text = gr.Textbox(label="Document", lines=10, max_lines=20,
                                             interactive=False, elem_id="rag-source-text",
                                             buttons=["copy"], visible=False)
            with gr.Tab("Documents", id="documents"):
                gr.Markdown("Add .txt, .md, .html or .pdf files (several at once): they are "
                            "copied into the library and indexed. Files that cannot be read "
                            "are listed with the reason; documents already indexed are kept.")
                upload = gr.File(label="Add documents", file_count="multiple",
                                 elem_id="rag-upload", height=140)
                upload_status = gr.Markdown(elem_id="rag-upload-status")
                docs_table = gr.Dataframe(
                    headers=["File", "Title", "Date", "Chunks"], datatype="str",
                    interactive=False, elem_id="rag-docs", label="Indexed documents",
                    wrap=True, column_widths=["30%", "45%", "15%", "10%"],
                )
                with gr.Row():
                    doc_pick = gr.Dropdown(choices=[], label="Document", elem_id="rag-doc-pick",
                                           scale=3)
                    view_btn = gr.Button("Open", elem_id="rag-doc-open", scale=1)
                    remove_btn = gr.Button("Remove", variant="stop", elem_id="rag-doc-remove",
                                           scale=1)
                doc_status = gr.Markdown(elem_id="rag-doc-status")
                doc_text = gr.Textbox(label="Document", lines=12, max_lines=30,
                                      interactive=False, elem_id="rag-doc-text",
                                      buttons=["copy"], visible=False)

        chat_io = dict(inputs=[question, chatbot, turns_state, k],
                       outputs=[chatbot, question, turns_state, sources, source_doc],
                       api_visibility="private", concurrency_id="answer",
                       concurrency_limit=1, show_progress="hidden")
        question.submit(on_ask, **chat_io)
        send.click(on_ask, **chat_io)
        chatbot.example_select(on_example, None, question,
                               api_visibility="private", queue=False
                               ).then(on_ask, **chat_io)
        clear_btn.click(on_clear, None, [chatbot, question, turns_state, sources, source_doc,
                                      source_text], api_visibility="private", queue=False)
        chatbot.clear(on_clear, None, [chatbot, question, turns_state, sources, source_doc,
                                       source_text], api_visibility="private", queue=False)
        open_btn.click(on_open, source_doc, source_text, api_visibility="private")
        view_btn.click(on_open, doc_pick, doc_text, api_visibility="private")
        docs_table.select(on_row, None, doc_pick, api_visibility="private", queue=False)
        library = dict(concurrency_id="library", concurrency_limit=1, api_visibility="private")
        upload.upload(on_upload, upload, [upload_status, docs_table, doc_pick, upload],
                      show_progress_on=[upload_status], **library)
        remove_btn.click(on_remove, doc_pick, [doc_status, docs_table, doc_pick, doc_text],
                         **library)
        demo.load(on_load, None, [docs_table, doc_pick], api_visibility="private")

        gr.api(ask, api_name="ask", concurrency_id="answer", concurrency_limit=1)
        gr.api(rewrite, api_name="rewrite")
        gr.api(documents, api_name="documents", concurrency_limit=None)
        gr.api(document, api_name="document", concurrency_limit=None)
        gr.api(add_documents, api_name="add_documents", concurrency_id="library",
               concurrency_limit=1)
        gr.api(remove, api_name="remove_document", concurrency_id="library",
               concurrency_limit=1)
    demo.queue(default_concurrency_limit=1, max_size=64)
    return demo


def temp_dir_for(settings: Any) -> Path:
    """Where Gradio keeps uploads and other temporary files: GRADIO_TEMP_DIR if set, else a
    `gradio` folder in the assistant's cache folder."""
    configured = os.environ.get("GRADIO_TEMP_DIR")
    return Path(configured) if configured else Path(settings.cache_dir) / "gradio"


def launch(assistant: Any, host: str = "127.0.0.1", port: int = 7860,
           auth: tuple[str, str] | None = None, *, max_file_size: str | int | None = None,
           prevent_thread_lock: bool = False, quiet: bool = False):
    """Build and start the page; returns the Blocks (stop it with `.close()`)."""
    folder = temp_dir_for(assistant.settings)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(folder)  # read by Gradio when blocks and app are made
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    # load the index and models before the first visitor, and fail early if the index is bad
    assistant.documents()
    _ = assistant.generator
    demo = build(assistant)
    demo.launch(
        server_name=host,
        server_port=port,
        auth=auth,
        auth_message="Log in to ask your documents." if auth else None,
        max_file_size=max_file_size or assistant.settings.upload_max_size,
        prevent_thread_lock=prevent_thread_lock,
        show_error=False,
        share=False,
        inbrowser=False,
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        enable_monitoring=False,
        footer_links=["api", "settings"],
        quiet=quiet,
        theme="default",
        css=render.CSS,
        head=render.HEAD,
    )
    return demo


def serve(assistant: Any, host: str = "127.0.0.1", port: int = 7860,
          auth: tuple[str, str] | None = None) -> None:
    """Serve the page until interrupted (`rag serve`)."""
    if host not in ("127.0.0.1", "localhost", "::1") and not auth:
        log.warning("binding to %s without --auth: anyone who can reach this machine can use "
                    "and change the document library", host)
    demo = launch(assistant, host, port, auth, prevent_thread_lock=True, quiet=True)
    shown = f"[{host}]" if ":" in host else host
    login = ", login required" if auth else ""
    print(f"The page is on http://{shown}:{port}/ (Ctrl+C to stop{login})", flush=True)
    try:
        demo.block_thread()
    finally:
        demo.close()


def clear_temp(settings: Any) -> None:
    """Delete Gradio's temporary folder (uploads are copied into the library anyway)."""
    shutil.rmtree(temp_dir_for(settings), ignore_errors=True)


__all__ = ["Service", "Turn", "build", "launch", "serve", "temp_dir_for"]
