"""OpenAI-compatible endpoints on `rag serve`, so any chat client that talks to an OpenAI-style
model (the `openai` SDK, LangChain's `ChatOpenAI`, Open WebUI, LibreChat, editors' chat panes)
can be pointed at this server and get cited, checked answers from the documents.

- `GET /v1/models`: one model per collection the caller may read (the model id is its name);
  `GET /v1/models/NAME` one of them.
- `POST /v1/chat/completions`, streamed (SSE) or not: the last user message is the question,
  the earlier user/assistant turns the history (a follow-up is rewritten as on the page). The
  reply's content is the answer with its [n] markers and a "Sources" list a chat UI shows; the
  extra field `rag` is the answer exactly as `rag ask --json` prints it (`Answer.to_dict`), with
  the structured sources.

Same logins as the page (`Authorization: Bearer USER:PASSWORD`, see rag/users.py), same rights
per collection (`Access.open`), and answers bounded like the page's Gradio queue, by a limiter of
the same size beside it (Gradio's queue takes only its own events): `answer_concurrency` at once,
at most QUEUE_SIZE waiting without holding a thread, past that 429. Errors are OpenAI-shaped:
`{"error": {"message", "type", "param", "code"}}` with 400, 401, 404, 413 or 429.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from rag.assistant import QuestionError
from rag.collections import UnknownCollection
from rag.generate import GeneratorError, answers_at_once
from rag.schema import Answer

from . import render
from .service import FRIENDLY_ERROR, HISTORY_TURNS, QUEUE_SIZE, Service

log = logging.getLogger(__name__)

SOURCES_HEADING = "**Sources**"
"""Starts the sources block appended to an answer; cut from assistant turns sent back as history."""
_END = object()


class OpenAIError(Exception):
    """An error the client gets as OpenAI's JSON shape, with its HTTP status."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.code, self.param = status, message, kind, code, param

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param,
                          "code": self.code}}

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        if self.status == 429:
            headers = {"Retry-After": "2"}
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def not_found(model: str) -> OpenAIError:
    """The same 404 for a collection that does not exist and one the caller may not read."""
    return OpenAIError(404, f"The model {model!r} does not exist or you do not have access to it: "
                       "GET /v1/models lists the collections you may read.", code="model_not_found",
                       param="model")


def sources_block(answer: Answer) -> str:
    """The cited sources as a Markdown list, for chat UIs that show only the message text."""
    cited = render.cited_numbers(answer)
    if answer.refused or not cited:
        return ""
    lines = []
    for n in cited:
        p = answer.sources[n - 1]
        date = f", {p.date}" if p.date else ""
        lines.append(f"- [{n}] {p.title}{date} ({p.doc_id})")
    return f"\n\n{SOURCES_HEADING}\n" + "\n".join(lines)


def message_text(content: Any, where: str) -> str:
    """A message's text: a string, or OpenAI's list of parts ({"type": "text", "text"})."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict):
                raise OpenAIError(400, f"{where}: each content part must be an object", param="messages")
            if part.get("type") == "text":
                if not isinstance(part.get("text"), str):
                    raise OpenAIError(400, f"{where}: a text part needs a string `text`", param="messages")
                texts.append(part["text"])
        return "\n".join(texts)
    raise OpenAIError(400, f"{where}: content must be a string or a list of parts", param="messages")


def conversation(messages: Any) -> tuple[str, list[dict[str, str]]]:
    """(question, history) from chat messages: the last message is the user's question; each
    earlier user message with the assistant reply after it is a turn (our sources block cut)."""
    if not isinstance(messages, list) or not messages:
        raise OpenAIError(400, "`messages` must be a non-empty list of {role, content}", param="messages")
    turns: list[dict[str, str]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise OpenAIError(400, f"messages[{i}] must be an object with a `role`", param="messages")
        text = message_text(message.get("content"), f"messages[{i}]")
        if message["role"] == "user":
            turns.append({"question": text, "answer": ""})
        elif message["role"] == "assistant" and turns and not turns[-1]["answer"]:
            turns[-1]["answer"] = text.split(f"\n\n{SOURCES_HEADING}\n")[0].strip()
    if messages[-1].get("role") != "user":
        raise OpenAIError(400, "the last message must be the user's question", param="messages")
    question = turns.pop()["question"]
    if not question.strip():
        raise OpenAIError(400, "Please type a question: the last user message is empty.", param="messages")
    return question, [t for t in turns if t["question"].strip()][-HISTORY_TURNS:]


class ChatDoor:
    """The /v1 endpoints over the page's Service."""

    def __init__(self, service: Service):
        self.service = service
        self.settings = service.assistant.settings
        self.at_once = answers_at_once(self.settings)
        """Questions answered at once (the page's queue has the same bound)."""
        self.pending = 0
        """Chat requests admitted and not finished: answering (answer_concurrency) or waiting."""
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        if self._limiter is None:  # made in the server's event loop
            self._limiter = anyio.CapacityLimiter(self.at_once)
        return self._limiter

    async def user(self, request: Request) -> str | None:
        """The logged-in user (None without --auth); 401 without a valid login."""
        access = self.service.access
        if not access.enabled:
            return None
        user = await anyio.to_thread.run_sync(access.authenticate, request.headers.get("authorization"))
        if user is None:
            raise OpenAIError(401, "A login is needed: send `Authorization: Bearer USER:PASSWORD` (the "
                                   "API key is USER:PASSWORD, as on the page).", code="invalid_api_key")
        return user

    async def body(self, request: Request) -> dict[str, Any]:
        """The JSON object of the request, read up to max_request_kb (413 past it)."""
        limit = self.settings.max_request_kb * 1024
        too_big = OpenAIError(413, f"The request body is larger than {self.settings.max_request_kb} KiB.",
                              code="request_too_large")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_big
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                raise too_big
        try:
            body = json.loads(bytes(data))
        except (ValueError, RecursionError):
            raise OpenAIError(400, "The request body is not valid JSON.", code="invalid_json") from None
        if not isinstance(body, dict):
            raise OpenAIError(400, "The request body must be a JSON object.", code="invalid_json")
        return body

    # -- endpoints ----------------------------------------------------------------------------
    async def models(self, request: Request) -> Response:
        try:
            user = await self.user(request)
        except OpenAIError as exc:
            return exc.response()
        names = await anyio.to_thread.run_sync(self.service.collection_names, user)
        return JSONResponse({"object": "list", "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "rag"} for name in names]})

    async def model(self, request: Request) -> Response:
        """One model (collection) the caller may read, or 404 as for a chat with it."""
        try:
            user = await self.user(request)
            name = request.path_params["model"]
            try:
                collection = self.service.assistant_for(name, user).collection
            except UnknownCollection as exc:
                raise not_found(exc.name) from None
        except OpenAIError as exc:
            return exc.response()
        return JSONResponse({"id": collection, "object": "model", "created": 0, "owned_by": "rag"})

    async def chat(self, request: Request) -> Response:
        try:
            user = await self.user(request)
            body = await self.body(request)
            model = body.get("model") or ""
            if not isinstance(model, str):
                raise OpenAIError(400, "`model` must be a collection name (GET /v1/models lists them)",
                                  param="model")
            question, history = conversation(body.get("messages"))
            stream = body.get("stream", False)
            if not isinstance(stream, bool):
                raise OpenAIError(400, "`stream` must be true or false", param="stream")
            if body.get("n", 1) not in (1, None):
                raise OpenAIError(400, "only one choice is made (n=1)", param="n")
            try:
                assistant = self.service.assistant_for(model, user)
            except UnknownCollection as exc:
                raise not_found(exc.name) from None
            if self.pending >= self.at_once + QUEUE_SIZE:
                raise OpenAIError(429, f"The server is busy: {self.pending} questions are being answered "
                                  "or waiting. Try again in a few seconds.", kind="rate_limit_error",
                                  code="queue_full")
        except OpenAIError as exc:
            return exc.response()
        ask = (question, body.get("k"), history, assistant.collection, user)
        reply = Reply(assistant.collection)
        if stream:
            full = assistant.answer_style == "full"
            return StreamingResponse(self._events(reply, ask, full), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.pending += 1
        try:
            async with self.limiter:
                answer = await anyio.to_thread.run_sync(self._answer, ask)
        except OpenAIError as exc:
            return exc.response()
        finally:
            self.pending -= 1
        return JSONResponse(reply.completion(answer))

    def _answer(self, ask: tuple) -> Answer:
        for kind, value in self._guarded(self.service.stream(*ask)):
            if kind == "answer":
                return value
        raise RuntimeError("the answer stream ended without an answer")

    def _guarded(self, items):
        """The service's stream, its failures as OpenAIError (the details to the log)."""
        try:
            yield from items
        except QuestionError as exc:
            raise OpenAIError(400, str(exc), param="messages") from None
        except GeneratorError as exc:
            raise OpenAIError(502, str(exc), kind="server_error", code="generator_failed") from None
        except Exception:
            log.exception("answering through /v1 failed")
            raise OpenAIError(500, FRIENDLY_ERROR, kind="server_error") from None

    async def _events(self, reply: Reply, ask: tuple, full: bool) -> AsyncIterator[str]:
        """SSE: a role chunk, then only checked text (the full style's checked sentences as they
        come; a compact answer, checked as a whole, at once), the sources, and a last chunk with
        finish_reason and the `rag` answer; then [DONE]. Waits its turn like the page's queue."""
        self.pending += 1
        try:
            yield reply.event({"role": "assistant", "content": ""})
            async with self.limiter:
                items = self._guarded(self.service.stream(*ask))
                sent = ""
                while True:
                    item = await anyio.to_thread.run_sync(next, items, _END)
                    if item is _END:
                        raise OpenAIError(500, FRIENDLY_ERROR, kind="server_error")
                    kind, value = item
                    if kind == "draft" and full:
                        checked = value.rstrip()
                        if checked.startswith(sent) and len(checked) > len(sent):
                            yield reply.event({"content": checked[len(sent):]})
                            sent = checked
                    elif kind == "answer":
                        break
            text = value.text
            rest = text[len(sent):] if text.startswith(sent) else "\n\n" + text
            for piece in _pieces(rest):
                yield reply.event({"content": piece})
            if sources_block(value):
                yield reply.event({"content": sources_block(value)})
            yield reply.event({}, finish="stop", rag=value.to_dict())
        except OpenAIError as exc:
            yield f"data: {json.dumps(exc.body())}\n\n"
        finally:
            self.pending -= 1
        yield "data: [DONE]\n\n"


class Reply:
    """One chat completion's identity and its JSON shapes."""

    def __init__(self, model: str):
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model

    def completion(self, answer: Answer) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None, "message": {
                    "role": "assistant", "content": answer.text + sources_block(answer)}}],
                "rag": answer.to_dict()}

    def event(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        chunk = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                 "model": self.model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
                 **extra}
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"


def _pieces(text: str, words: int = 4) -> list[str]:
    """Text in pieces of a few words (spaces kept), as a model's stream would come."""
    parts = text.split(" ")
    return [" ".join(parts[i:i + words]) + (" " if i + words < len(parts) else "")
            for i in range(0, len(parts), words)] if text else []


def routes(service: Service) -> list[Any]:
    """The /v1 routes, for the FastAPI app Gradio builds (`launch(app_kwargs={"routes": ...})`)."""
    door = ChatDoor(service)
    router = APIRouter()
    router.add_api_route("/v1/models", door.models, methods=["GET"], include_in_schema=False)
    router.add_api_route("/v1/models/{model:path}", door.model, methods=["GET"], include_in_schema=False)
    router.add_api_route("/v1/chat/completions", door.chat, methods=["POST"], include_in_schema=False)
    router.add_api_route("/v1/{rest:path}", unknown, include_in_schema=False,
                         methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    return router.routes


async def unknown(request: Request) -> Response:
    """Any other /v1 path or method (embeddings, completions, GET on chat): an OpenAI-shaped 404
    that says what there is, rather than the page's own 'Not Found'."""
    return OpenAIError(404, f"No {request.method} {request.url.path} here: this server has GET "
                       "/v1/models and POST /v1/chat/completions.", code="unknown_url").response()
