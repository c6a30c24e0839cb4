"""The OpenAI-compatible endpoints of `rag serve` (/v1/models, /v1/chat/completions), against the
real server started as a subprocess with logins from a users file, through the real `openai`
client (streaming and not) and LangChain's `ChatOpenAI` in a chain; the real index over the seed
article (and test_collections.py's north and south) and the default generator.

Also: the answer's `rag` field is `rag ask --json`'s JSON, follow-ups are rewritten, a user sees
and asks only the collections they may read, errors are OpenAI-shaped (400, 401, 404, 413), and
100 requests at once are each answered or told the queue is full while the server keeps serving
and nothing is written."""

from __future__ import annotations

import json
import re

import anyio
import httpx
import pytest

from tests.conftest import ROOT
from tests.servers import (
    PASSWORDS,
    PUTIN,
    SEED_DOC,
    cli_json,
    disk_state,
    free_port,
    make_library,
    served,
)

MANAGER = "Who is the office manager of the Harbour Street branch?"
ALICE = f"alice:{PASSWORDS['alice']}"
BOB = f"bob:{PASSWORDS['bob']}"


@pytest.fixture(scope="module")
def server(settings_factory, assistant, tmp_path_factory):
    settings, env = make_library(settings_factory, assistant, tmp_path_factory.mktemp("v1-uploads"), "v1")
    port = free_port()
    log = tmp_path_factory.mktemp("v1") / "server.log"
    with served(["serve", "--port", str(port), "--auth", str(settings.users_path)], env, port, log) as proc:
        yield f"http://127.0.0.1:{port}/v1", proc, settings, env


def client(server, key: str = ALICE, **options):
    from openai import OpenAI

    return OpenAI(base_url=server[0], api_key=key, **options)


def post(server, body, key: str | None = ALICE, **options) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if isinstance(body, dict):
        return httpx.post(f"{server[0]}/chat/completions", json=body, headers=headers, timeout=120, **options)
    return httpx.post(f"{server[0]}/chat/completions", content=body,
                      headers={**headers, "Content-Type": "application/json"}, timeout=120, **options)


def openai_error(response: httpx.Response, status: int) -> dict:
    """The response is OpenAI's error shape with this status; returns its `error`."""
    assert response.status_code == status, (response.status_code, response.text)
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"], error
    return error


def ask(question: str, model: str = "default", **body) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": question}], **body}


# -- the openai client -------------------------------------------------------------------------
def test_models_are_the_collections_one_may_read(server):
    assert [m.id for m in client(server).models.list()] == ["default", "north", "south"]
    assert [m.id for m in client(server, BOB).models.list()] == ["north"]
    assert client(server, BOB).models.retrieve("north").id == "north"
    for model in ("south", "nowhere", "..%2Fetc"):
        response = httpx.get(f"{server[0]}/models/{model}", headers={"Authorization": f"Bearer {BOB}"})
        assert openai_error(response, 404)["code"] == "model_not_found"
    basic = httpx.get(f"{server[0]}/models", auth=("bob", PASSWORDS["bob"]), timeout=30)
    assert [m["id"] for m in basic.json()["data"]] == ["north"]  # HTTP Basic is the same login
    for key in (None, "alice:wrong", "nobody:s3cret", "alice"):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = httpx.get(f"{server[0]}/models", headers=headers, timeout=30)
        assert openai_error(response, 401)["code"] == "invalid_api_key"
        assert response.headers["www-authenticate"] == "Bearer"


def test_the_openai_client_streams_a_cited_answer(server):
    stream = client(server).chat.completions.create(
        model="default", stream=True, messages=[{"role": "user", "content": PUTIN}])
    pieces, last = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if chunk.choices and chunk.choices[0].finish_reason:
            last = chunk
    text = "".join(pieces)
    assert len(pieces) > 2, "the answer comes in pieces"
    assert "olympics" in text.lower() and "[1]" in text
    answer, sources = text.split("\n\n**Sources**\n")
    assert sources.startswith(f"- [1] Xi Putin Meeting, 2022-02-04 ({SEED_DOC})")
    assert last is not None and last.choices[0].finish_reason == "stop"
    rag = last.model_extra["rag"]
    assert rag["answer"] == answer and not rag["refused"]
    assert rag["sources"][0]["doc_id"] == SEED_DOC and rag["sources"][0]["date"] == "2022-02-04"
    assert rag == cli_json(server[3], "ask", "--json", PUTIN)  # one JSON shape for every door


def test_a_follow_up_is_rewritten_and_a_refusal_has_no_sources(server):
    first = client(server).chat.completions.create(model="default", messages=[
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": PUTIN}])
    content = first.choices[0].message.content
    assert first.choices[0].finish_reason == "stop" and "**Sources**" in content
    follow = client(server).chat.completions.create(model="default", messages=[
        {"role": "user", "content": PUTIN},
        {"role": "assistant", "content": content},          # as a chat UI sends it back
        {"role": "user", "content": [{"type": "text", "text": "When did he arrive?"}]}])
    rag = follow.model_extra["rag"]
    assert "Putin" in rag["searched"] and not rag["refused"]
    cited = [s for s in rag["sources"] if s["highlight"]]
    assert cited and "Putin arrived in Beijing" in cited[0]["text"]
    refused = client(server).chat.completions.create(**ask("What is the capital of Australia?"))
    assert refused.choices[0].message.content == "The documents don't say."
    assert refused.model_extra["rag"]["refused"] is True


def test_chat_openai_in_a_langchain_chain(server):
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=server[0], api_key=ALICE, model="north", max_retries=0)
    chain = ChatPromptTemplate.from_messages([("user", "{question}")]) | llm | StrOutputParser()
    streamed = list(chain.stream({"question": MANAGER}))
    assert len(streamed) > 2
    text = "".join(streamed)
    assert "Alma Ruiz" in text and "[1]" in text and "(notes.md)" in text and "Tomas" not in text
    assert chain.invoke({"question": MANAGER}) == text  # streamed or not, the same answer


# -- rights and errors ----------------------------------------------------------------------------
def test_a_collection_one_may_not_read_is_not_there(server):
    import openai

    bob = client(server, BOB, max_retries=0)
    assert "Alma Ruiz" in bob.chat.completions.create(**ask(MANAGER, "north")).choices[0].message.content
    errors = []
    for model in ("south", "nowhere", "default"):
        with pytest.raises(openai.NotFoundError) as caught:
            bob.chat.completions.create(**ask(MANAGER, model))
        assert caught.value.body["code"] == "model_not_found" and caught.value.body["param"] == "model"
        errors.append(caught.value.body["message"].replace(repr(model), "NAME"))
    assert errors[0] == errors[1] == errors[2] and "Tomas" not in errors[0]
    with pytest.raises(openai.NotFoundError):
        bob.chat.completions.create(**ask(MANAGER, "south"), stream=True)
    with pytest.raises(openai.AuthenticationError):
        client(server, "bob:wrong", max_retries=0).chat.completions.create(**ask(MANAGER, "north"))


def test_bad_requests_get_openai_shaped_errors(server):
    settings = server[2]
    before = disk_state(settings)
    assert openai_error(post(server, ask(PUTIN), key=None), 401)["code"] == "invalid_api_key"
    assert openai_error(post(server, b"{not json"), 400)["code"] == "invalid_json"
    assert openai_error(post(server, b"[" * 100_000), 400)["code"] == "invalid_json"
    assert openai_error(post(server, b'"a string"'), 400)["code"] == "invalid_json"
    assert openai_error(post(server, b"\xff\xfe"), 400)["code"] == "invalid_json"
    assert openai_error(post(server, ask("   ")), 400)["message"].startswith("Please type a question")
    assert openai_error(post(server, ask("", stream=True)), 400)["param"] == "messages"
    for messages in (None, [], "hello", [{"content": "no role"}], [{"role": "user", "content": 5}],
                     [{"role": "user", "content": PUTIN}, {"role": "assistant", "content": "x"}]):
        error = openai_error(post(server, {"model": "default", "messages": messages}), 400)
        assert error["param"] == "messages"
    assert openai_error(post(server, {**ask(PUTIN), "model": 7}), 400)["param"] == "model"
    assert openai_error(post(server, {**ask(PUTIN), "stream": "yes"}), 400)["param"] == "stream"
    assert openai_error(post(server, {**ask(PUTIN), "n": 3}), 400)["param"] == "n"
    for model in ("../etc", "/etc/passwd", "..", "default/../north", "NORTH\x00"):
        assert openai_error(post(server, ask(PUTIN, model)), 404)["code"] == "model_not_found"
    for method, path in (("POST", "/embeddings"), ("POST", "/completions"), ("GET", "/chat/completions")):
        response = httpx.request(method, server[0] + path, headers={"Authorization": f"Bearer {ALICE}"})
        assert "POST /v1/chat/completions" in openai_error(response, 404)["message"]
    huge = ask("x" * 1_200_000)
    assert openai_error(post(server, huge), 413)["code"] == "request_too_large"

    def chunked():  # no Content-Length: the limit holds while reading
        yield b'{"model": "default", "messages": [{"role": "user", "content": "'
        for _ in range(300):
            yield b"y" * 8192
        yield b'"}]}'

    assert openai_error(post(server, chunked()), 413)["code"] == "request_too_large"
    # the server still answers, and nothing was created or changed on disk
    assert "olympics" in post(server, ask(PUTIN)).json()["choices"][0]["message"]["content"].lower()
    assert disk_state(settings) == before
    assert not any(p.name in ("etc", "..") for p in settings.collections_dir.iterdir())


def test_a_hundred_requests_at_once(server):
    """Each gets an answer or a clear 'busy' (429); the server keeps serving; nothing is written."""
    url, proc, settings, _ = server
    before = disk_state(settings)
    statuses: list[int] = []
    bodies: list[dict] = []

    async def one(http, i: int) -> None:
        question = PUTIN if i % 10 == 0 else "What is the capital of Australia?"
        response = await http.post(f"{url}/chat/completions", json=ask(question, stream=i % 3 == 0),
                                   headers={"Authorization": f"Bearer {ALICE}"})
        statuses.append(response.status_code)
        if response.status_code == 200 and i % 3 == 0:
            events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
            assert events[-1] == "[DONE]", response.text
            bodies.append(json.loads(events[-2]))
        else:
            bodies.append(response.json())

    async def burst() -> None:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        async with httpx.AsyncClient(timeout=300, limits=limits) as http, anyio.create_task_group() as group:
            for i in range(100):
                group.start_soon(one, http, i)

    anyio.run(burst)
    assert len(statuses) == 100 and set(statuses) <= {200, 429}, sorted(set(statuses))
    assert statuses.count(200) >= 60  # 2 answering and 64 waiting are taken in
    for status, body in zip(statuses, bodies):
        if status == 429:
            assert body["error"]["code"] == "queue_full" and "busy" in body["error"]["message"]
        else:
            assert body["choices"][0]["finish_reason"] == "stop" and body["rag"]["answer"], body
    assert proc.poll() is None
    answer = client(server).chat.completions.create(**ask(PUTIN))
    assert "olympics" in answer.choices[0].message.content.lower()
    assert disk_state(settings) == before


def test_without_auth_no_key_is_needed(settings_factory, assistant, tmp_path, monkeypatch):
    """`rag serve` without --auth (loopback): the /v1 routes answer whatever key is sent."""
    from test_ui_client import running_page, ui_assistant

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))  # launch() sets it; undone after

    with running_page(ui_assistant(settings_factory, assistant, "v1-open")) as url:
        models = httpx.get(f"{url}/v1/models", timeout=30).json()
        assert [m["id"] for m in models["data"]] == ["default"]
        answer = client((f"{url}/v1",), key="rag").chat.completions.create(**ask(PUTIN))
        assert "olympics" in answer.choices[0].message.content.lower()
        response = httpx.post(f"{url}/v1/chat/completions", json=ask(PUTIN, "north"), timeout=60)
        assert openai_error(response, 404)["code"] == "model_not_found"


def test_the_page_is_still_there(server):
    from gradio_client import Client

    page = Client(server[0].removesuffix("v1"), auth=tuple(ALICE.split(":")), verbose=False)
    final = page.submit(PUTIN, 4, [], api_name="/ask").result()
    assert "olympics" in final["answer"].lower()


# -- README ---------------------------------------------------------------------------------------
def test_readme_openai_examples_run(server, tmp_path):
    """The README's OpenAI-compatible API examples (the openai client, ChatOpenAI), as written but
    for the server's address."""
    import subprocess
    import sys

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## OpenAI-compatible API")[1].split("\n## ")[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 2 and "ChatOpenAI" in blocks[1]
    code = "\n".join(blocks).replace("http://127.0.0.1:7860/v1", server[0])
    assert ALICE in code
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "['default', 'north', 'south']" in out.stdout
    assert out.stdout.count("Olympics") >= 2 and "**Sources**" in out.stdout
    assert "When did Putin arrive" in out.stdout
