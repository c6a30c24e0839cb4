"""Generators served elsewhere, through LangChain chat models: any OpenAI-compatible endpoint
(vLLM, llama.cpp server, LM Studio, Ollama's OpenAI API, OpenAI itself) and Ollama's own API.

A remote model can be down, slow or broken; the reader must never hang on it. Every call has
one deadline (`RAG_GENERATOR_TIMEOUT`) covering connection, retries and streaming, and only
failures before the first token are retried (`RAG_GENERATOR_RETRIES`): a retry after text was
shown would repeat it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from ..config import Settings
from ..text import sentence_complete
from .base import GENERATORS, Copy, Generator, GeneratorError, Messages

STOP = ["\n"]  # compact answers are one line; a full answer (one_line=False) has no stop


class ChatModelGenerator(Generator):
    """A LangChain chat model behind the Generator interface, with a deadline and bounded retries."""

    retryable: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)
    remote = True

    def __init__(self, model: Any, name: str, endpoint: str, timeout: float, retries: int):
        self.model = model
        self.name = name
        self.endpoint = endpoint
        self.timeout = timeout
        self.retries = retries

    def call_options(self, max_new_tokens: int, stop: list[str] | None = None) -> dict[str, Any]:
        """Per-call keyword arguments that cap the reply length (each API spells it its own way)."""
        return {"max_tokens": max_new_tokens}

    def stream(self, messages: Messages, max_new_tokens: int, one_sentence: bool = False,
               one_line: bool = True, copy_from: Copy | None = None) -> Iterator[str]:
        chat = [(m["role"], m["content"]) for m in messages]
        deadline = time.monotonic() + self.timeout
        pieces = self._first(chat, max_new_tokens, deadline, STOP if one_line else None)
        text = ""
        try:
            for chunk in pieces:
                piece = _content(chunk, self)
                if piece:
                    text += piece
                    yield piece
                if one_sentence and sentence_complete(text):
                    return
                if time.monotonic() > deadline:
                    raise GeneratorError(
                        f"{self.name} at {self.endpoint} was still answering after {self.timeout:g} s "
                        "(RAG_GENERATOR_TIMEOUT)"
                    )
        except GeneratorError:
            raise
        except Exception as exc:
            raise GeneratorError(f"{self.name} at {self.endpoint} failed mid-answer: {_reason(exc)}") from exc
        finally:
            close = getattr(pieces, "close", None)
            if close:
                close()  # stops the HTTP stream when the reader has seen enough

    def _first(self, chat: list[tuple[str, str]], max_new_tokens: int, deadline: float,
               stop: list[str] | None) -> Iterator[Any]:
        """The reply stream, started with retries; the first chunk is already read and put back."""
        attempt = 0
        while True:
            stream = self.model.stream(chat, stop=stop, **self.call_options(max_new_tokens, stop))
            try:
                first = next(stream)
            except StopIteration:
                return iter(())
            except Exception as exc:
                attempt += 1
                left = deadline - time.monotonic()
                if isinstance(exc, self.retryable) and attempt <= self.retries and left > 0:
                    time.sleep(min(0.5 * 2 ** (attempt - 1), left))
                    continue
                tried = f" after {attempt} attempts" if attempt > 1 else ""
                raise GeneratorError(
                    f"{self.name} at {self.endpoint} did not answer{tried}: {_reason(exc)}"
                ) from exc
            return _chain(first, stream)


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    try:
        yield first
        yield from rest
    finally:
        close = getattr(rest, "close", None)
        if close:
            close()


def _content(chunk: Any, generator: ChatModelGenerator) -> str:
    content = getattr(chunk, "content", None)
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks: keep the text ones
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    raise GeneratorError(
        f"{generator.name} at {generator.endpoint} sent a reply that is not text: {chunk!r:.200}"
    )


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text[:300]}"


class OpenAIGenerator(ChatModelGenerator):
    """`openai:<model>` with `RAG_OPENAI_BASE_URL`: any server that speaks the OpenAI chat API."""

    def __init__(self, model: str, base_url: str | None, api_key: str | None, timeout: float, retries: int):
        import os

        import httpx  # noqa: F401  imported whole now: openai's stream cleanup looks it up in
        import openai  # sys.modules and fails on a half-imported one (another thread importing)
        from langchain_openai import ChatOpenAI

        chat = ChatOpenAI(
            model=model,
            base_url=base_url,
            # local servers ignore the key, but the client insists on one
            api_key=api_key or os.environ.get("OPENAI_API_KEY") or "not-needed",
            temperature=0,
            timeout=timeout,
            max_retries=0,  # retries are ours, inside the one deadline
            streaming=True,
        )
        self.retryable = (openai.APIConnectionError, openai.InternalServerError, openai.RateLimitError)
        super().__init__(chat, model, base_url or "the OpenAI API", timeout, retries)


class OllamaGenerator(ChatModelGenerator):
    """`ollama:<model>` with `RAG_OLLAMA_URL`: Ollama's native chat API."""

    def __init__(self, model: str, base_url: str, timeout: float, retries: int):
        import httpx
        from langchain_ollama import ChatOllama

        chat = ChatOllama(model=model, base_url=base_url, temperature=0, client_kwargs={"timeout": timeout})
        self.retryable = (ConnectionError, httpx.TransportError)
        super().__init__(chat, model, base_url, timeout, retries)

    def call_options(self, max_new_tokens: int, stop: list[str] | None = None) -> dict[str, Any]:
        options: dict[str, Any] = {"num_predict": max_new_tokens, "temperature": 0}
        if stop:
            options["stop"] = stop
        return {"options": options}


@GENERATORS.register("openai")
def _openai(name: str, settings: Settings) -> Generator:
    return OpenAIGenerator(name, settings.openai_base_url or None, settings.openai_api_key or None,
                           settings.generator_timeout, settings.generator_retries)


@GENERATORS.register("ollama")
def _ollama(name: str, settings: Settings) -> Generator:
    return OllamaGenerator(name, settings.ollama_url, settings.generator_timeout,
                           settings.generator_retries)
