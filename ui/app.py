"""The Gradio web page over `rag.Assistant`: a cited, streaming chat with a sources panel, and
a documents tab to add, open and remove documents. Started by `rag serve`.

This module is the page's layout and wiring; what the events do is in handlers.py, the HTTP
API's endpoints in api.py, the work without Gradio in service.py, the HTML in render.py.
Gradio reads `GRADIO_TEMP_DIR` when the page is built, so `launch` sets it first.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.components.api_component import Api

from rag.collections import Collections
from rag.generate import answers_at_once
from rag.users import Access, Users

from . import openai_api, render
from .api import endpoints
from .handlers import Page
from .service import MAX_K, QUEUE_SIZE, UPLOAD_HELP, Service

log = logging.getLogger(__name__)

TITLE = "Ask your documents"
EXAMPLES = [
    "Why did Putin travel to Beijing?",
    "How did Putin describe the relations between Russia and China?",
    "What did Xi say China and Russia will uphold?",
]

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


class Blocks(gr.Blocks):
    """gr.Blocks whose API endpoints take their trailing arguments' defaults when a plain HTTP
    call leaves them out, as a Python call would: a client written before `collection` was
    added to every endpoint keeps working (Gradio's own client fills them in; a raw
    `/gradio_api/call/<name>` does not)."""

    async def preprocess_data(self, block_fn, inputs, state, explicit_call=False):
        wanted = block_fn.inputs
        if len(inputs) < len(wanted) and all(isinstance(b, Api)
                                             for b in wanted[len(inputs):]):
            inputs = [*inputs, *(b.value for b in wanted[len(inputs):])]
        return await super().preprocess_data(block_fn, inputs, state, explicit_call)


def build(assistant: Any, collections: Collections | None = None, access: Access | None = None,
          service: Service | None = None):
    """The gr.Blocks page (not launched). `collections` are those the page offers (default:
    `assistant`'s and the named ones beside it), `access` who may read and change which;
    `service` (instead of those) one shared with the /v1 routes."""
    service = service or Service(assistant, collections, access)
    page = Page(service)
    settings = assistant.settings
    with Blocks(title=TITLE, delete_cache=(3600, 24 * 3600)) as demo:
        turns_state = gr.State([])
        gr.Markdown(f"## {TITLE}\nAnswers come only from the indexed documents of the chosen "
                    "collection, with citations [1], [2] to the passages they rest on. Everything "
                    "runs on this machine.")
        with gr.Row(equal_height=True):
            # filled per user when the page loads: no collection name is in the page itself
            collection = gr.Dropdown(choices=[], value=None, label="Collection", scale=3,
                                     elem_id="rag-collection", interactive=True)
            new_collection = gr.Textbox(label="New collection", placeholder="a name, e.g. course-papers",
                                        max_lines=1, scale=2, elem_id="rag-new-collection")
            create_btn = gr.Button("Create", scale=1, elem_id="rag-create", min_width=80)
        collection_status = gr.Markdown(elem_id="rag-collection-status")
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
                gr.Markdown(UPLOAD_HELP)
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

        at_once = answers_at_once(settings)  # the page's chat and its /ask API share one bound
        chat_io = dict(inputs=[question, chatbot, turns_state, k, collection],
                       outputs=[chatbot, question, turns_state, sources, source_doc],
                       api_visibility="private", concurrency_id="answer",
                       concurrency_limit=at_once, show_progress="hidden")
        question.submit(page.on_ask, **chat_io)
        send.click(page.on_ask, **chat_io)
        chatbot.example_select(page.on_example, None, question,
                               api_visibility="private", queue=False
                               ).then(page.on_ask, **chat_io)
        clear_btn.click(page.on_clear, None, [chatbot, question, turns_state, sources, source_doc,
                                      source_text], api_visibility="private", queue=False)
        chatbot.clear(page.on_clear, None, [chatbot, question, turns_state, sources, source_doc,
                                       source_text], api_visibility="private", queue=False)
        open_btn.click(page.on_open, [source_doc, collection], source_text, api_visibility="private")
        view_btn.click(page.on_open, [doc_pick, collection], doc_text, api_visibility="private")
        docs_table.select(page.on_row, None, doc_pick, api_visibility="private", queue=False)
        library = dict(concurrency_id="library", concurrency_limit=1, api_visibility="private")
        upload.upload(page.on_upload, [upload, collection],
                      [upload_status, docs_table, doc_pick, upload],
                      show_progress_on=[upload_status], **library)
        remove_btn.click(page.on_remove, [doc_pick, collection],
                         [doc_status, docs_table, doc_pick, doc_text], **library)
        switched = [chatbot, question, turns_state, sources, source_doc, source_text, docs_table,
                    doc_pick, doc_status, doc_text]
        collection.input(page.on_switch, collection, switched, api_visibility="private")
        create = dict(fn=page.on_create, inputs=new_collection,
                      outputs=[collection_status, collection, new_collection, *switched], **library)
        create_btn.click(**create)
        new_collection.submit(**create)
        demo.load(page.on_start, None, [collection, docs_table, doc_pick], api_visibility="private")

        api = endpoints(service)
        gr.api(api["ask"], api_name="ask", concurrency_id="answer",
               concurrency_limit=at_once)
        gr.api(api["rewrite"], api_name="rewrite")
        gr.api(api["documents"], api_name="documents", concurrency_limit=None)
        gr.api(api["document"], api_name="document", concurrency_limit=None)
        gr.api(api["add_documents"], api_name="add_documents", concurrency_id="library",
               concurrency_limit=1)
        gr.api(api["remove_document"], api_name="remove_document", concurrency_id="library",
               concurrency_limit=1)
        gr.api(api["collections"], api_name="collections", concurrency_limit=None)
        gr.api(api["create_collection"], api_name="create_collection", concurrency_id="library",
               concurrency_limit=1)
    demo.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)
    return demo




def temp_dir_for(settings: Any) -> Path:
    """Where Gradio keeps uploads and other temporary files: GRADIO_TEMP_DIR if set, else a
    `gradio` folder in the assistant's cache folder."""
    configured = os.environ.get("GRADIO_TEMP_DIR")
    return Path(configured) if configured else Path(settings.cache_dir) / "gradio"


def launch(assistant: Any, host: str = "127.0.0.1", port: int = 7860,
           auth: tuple[str, str] | Access | None = None, *, max_file_size: str | int | None = None,
           prevent_thread_lock: bool = False, quiet: bool = False,
           collections: Collections | None = None):
    """Build and start the page, with the OpenAI-compatible /v1 routes (ui/openai_api.py) on
    the same server; returns the Blocks (stop it with `.close()`). `auth` is one login with every
    right (USER, PASSWORD) or an `Access` over a users file."""
    if isinstance(auth, tuple):
        auth = Access(Users.single(*auth))
    folder = temp_dir_for(assistant.settings)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(folder)  # read by Gradio when blocks and app are made
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    # load the index and models before the first visitor, and fail early if the index is bad
    assistant.documents()
    _ = assistant.generator
    service = Service(assistant, collections, auth)
    demo = build(assistant, service=service)
    demo.launch(
        app_kwargs={"routes": openai_api.routes(service)},  # before Gradio's own routes
        server_name=host,
        server_port=port,
        auth=auth.login if auth else None,
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
          auth: tuple[str, str] | Access | None = None,
          collections: Collections | None = None) -> None:
    """Serve the page until interrupted (`rag serve`)."""
    if host not in ("127.0.0.1", "localhost", "::1") and not auth:
        log.warning("binding to %s without --auth: anyone who can reach this machine can use "
                    "and change the document library", host)
    demo = launch(assistant, host, port, auth, prevent_thread_lock=True, quiet=True,
                  collections=collections)
    shown = f"[{host}]" if ":" in host else host
    login = ", login required" if auth else ""
    print(f"The page is on http://{shown}:{port}/, the OpenAI-compatible API on "
          f"http://{shown}:{port}/v1 (Ctrl+C to stop{login})", flush=True)
    try:
        demo.block_thread()
    finally:
        demo.close()


def clear_temp(settings: Any) -> None:
    """Delete Gradio's temporary folder (uploads are copied into the library anyway)."""
    shutil.rmtree(temp_dir_for(settings), ignore_errors=True)


__all__ = ["build", "launch", "serve", "temp_dir_for"]
