"""Remote generators through LangChain chat models.

The OpenAI-compatible path runs against a real llama.cpp server (llama-cpp-python[server])
serving the packaged SmolLM2 GGUF on 127.0.0.1. Failure modes (down, silent, garbage, server
errors) run against real loopback sockets that misbehave on purpose, for both backends."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rag import Assistant
from rag.generate import GeneratorError, make_generator, smollm2_gguf
from tests.test_answers import ANSWERABLE, UNANSWERABLE
from tests.test_ui_client import free_port

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in a few words."}]
TIMEOUT = 3.0


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on a free loopback port; stopped afterwards."""
    if importlib.util.find_spec("llama_cpp") is None:
        if os.environ.get("CI"):
            pytest.fail("llama-cpp-python[server] is missing: `make test` builds it")
        pytest.skip("llama-cpp-python[server] is not installed (make llama-server)")
    port = free_port()
    log = (tmp_path_factory.mktemp("llama") / "server.log").open("w+")  # a pipe would fill and stall it
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf()),
         "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
         "--n_threads", "1", "--n_ctx", "2048"],  # 2 threads spin against each other on 2 busy cores
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"llama.cpp server did not start: {log.read()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_openai_backend_streams_from_a_real_server(settings_factory, llama_server):
    settings = settings_factory("oai", generator="openai:smollm2", openai_base_url=llama_server)
    generator = make_generator(settings)
    pieces = list(generator.stream(QUESTION, 24))
    assert len(pieces) > 1, "the reply arrives in pieces, not at once"
    assert "paris" in "".join(pieces).lower()
    first_sentence = generator.generate(
        [{"role": "user", "content": "Write three sentences about Paris."}], 64, one_sentence=True
    )
    assert first_sentence.rstrip().endswith((".", "!", "?")) and first_sentence.count(". ") == 0


def test_assistant_answers_through_the_openai_backend(settings_factory, assistant, llama_server):
    a = Assistant(settings_factory("oai-assistant", generator="openai:smollm2", openai_base_url=llama_server,
                                   answer_style="compact",  # auto would pick full for a chat backend
                                   generator_timeout=120))  # a shared CI machine can be slow
    a.__dict__["embedder"] = assistant.embedder
    right = 0
    for item in ANSWERABLE[:6]:
        answer = a.ask(item["q"])
        right += any(e.lower() in answer.text.lower() for e in item["expect"]) and "[1]" in answer.text
    assert right >= 5, "the remote model answers the seed questions as the in-process one does"
    methods = {a.ask(item["q"]).method for item in ANSWERABLE[:6]}
    assert "generated" in methods, "the remote model's words are used, not only the fallback"
    assert a.ask(UNANSWERABLE[0]["q"]).refused
    streamed = list(a.stream(ANSWERABLE[0]["q"]))
    assert len(streamed) > 2 and all(isinstance(p, str) for p in streamed[:-1])


# ---- failure modes, each on a real loopback socket ----------------------------------------

class _Misbehaving(BaseHTTPRequestHandler):
    mode = "garbage"
    hits = 0

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        type(self).hits += 1
        self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.mode == "error":
            self.send_response(500)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "model crashed"}}')
        elif self.mode == "silent":
            time.sleep(TIMEOUT * 3)  # accepts, then never answers in time
        else:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b"<html>this is not the API you are looking for</html>")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def misbehaving() -> Iterator[tuple[str, type[_Misbehaving]]]:
    handler = type("Handler", (_Misbehaving,), {"hits": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


BACKENDS = {
    "openai": lambda url: {"generator": "openai:m", "openai_base_url": f"{url}/v1"},
    "ollama": lambda url: {"generator": "ollama:m", "ollama_url": url},
}


def _generator(settings_factory, backend: str, url: str, retries: int = 2):
    settings = settings_factory(backend, generator_timeout=TIMEOUT, generator_retries=retries,
                                **BACKENDS[backend](url))
    return make_generator(settings)


def dead_url() -> str:
    """A loopback port that was free a moment ago: nothing listens there."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _fails_within_timeout(generator) -> GeneratorError:
    start = time.monotonic()
    with pytest.raises(GeneratorError) as caught:
        generator.generate(QUESTION, 24)
    # a bound against hanging, generous for a noisy machine: the deadline plus one backoff
    assert time.monotonic() - start < TIMEOUT + 3
    assert generator.endpoint.split("/v1")[0] in str(caught.value)
    return caught.value


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_server_that_is_down_gives_a_clear_error(settings_factory, backend):
    error = _fails_within_timeout(_generator(settings_factory, backend, dead_url()))
    assert "did not answer after 3 attempts" in str(error)


@pytest.mark.parametrize("mode", ["silent", "garbage"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_silence_and_garbage_are_errors_not_retried(settings_factory, backend, mode, misbehaving):
    """A silent server times out (no retry once the deadline is spent); a malformed reply is an
    error, not an answer, and is not retried either."""
    url, handler = misbehaving
    handler.mode = mode
    _fails_within_timeout(_generator(settings_factory, backend, url))
    assert handler.hits == 1


@pytest.mark.parametrize("retries", [0, 2])
def test_server_errors_are_retried_a_bounded_number_of_times(settings_factory, misbehaving, retries):
    url, handler = misbehaving
    handler.mode = "error"
    error = _fails_within_timeout(_generator(settings_factory, "openai", url, retries=retries))
    assert handler.hits == retries + 1
    assert "model crashed" in str(error)


def test_the_cli_reports_a_dead_generator(tmp_path, settings_factory):
    url = f"{dead_url()}/v1"
    settings = settings_factory("cli-dead")
    env = {**os.environ, "RAG_GENERATOR": "openai:m", "RAG_OPENAI_BASE_URL": url,
           "RAG_GENERATOR_TIMEOUT": str(TIMEOUT), "RAG_CORPUS_DIR": str(settings.corpus_dir),
           "RAG_INDEX_DIR": str(settings.index_dir)}
    run = subprocess.run([sys.executable, "-m", "rag.cli", "ask", "Why did Putin travel to Beijing?"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    assert f"m at {url} did not answer" in run.stderr
    assert "Traceback" not in run.stderr


def test_full_style_end_to_end_on_a_real_server(settings_factory, llama_server):
    """RAG_ANSWER_STYLE=full with SmolLM2 behind llama.cpp's OpenAI API: several sentences are
    streamed in, each one verified; whatever the small model writes, nothing unchecked is shown."""
    settings = settings_factory("oai-full", generator="openai:smollm2", openai_base_url=llama_server,
                                answer_style="full", max_answer_tokens=96, generator_timeout=240)
    assistant = Assistant(settings)
    items = list(assistant.stream("Why did Putin travel to Beijing?"))
    answer = items[-1]
    shown = "".join(p for p in items[:-1] if isinstance(p, str))
    assert answer.method in ("full", "refusal")
    assert answer.sentences, "the model's sentences were checked one by one"
    for record in answer.sentences:
        assert (record.text.rstrip(".!?") in shown) == record.supported or answer.refused
        if record.supported:
            n, start, end = record.spans[0]
            assert answer.sources[n - 1].text[start:end]
