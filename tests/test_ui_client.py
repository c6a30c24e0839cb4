"""The web page's HTTP API, through gradio_client against the real server (in-process, on a
free loopback port), and the follow-up question rewriting behind it."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.answer.conversation import QuestionRewriter, Turn, names, needs_context

PUTIN = "Why did Putin travel to Beijing?"
STREAMED = "What did Putin say Russia and China enjoy?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ui_assistant(settings_factory, assistant, name: str):
    """An assistant on its own library copy, sharing the session's loaded models."""
    from rag import Assistant

    own = Assistant(settings_factory(name))
    own.__dict__["embedder"] = assistant.embedder
    own.__dict__["generator"] = assistant.generator
    return own


@pytest.fixture(scope="module")
def gradio_temp(tmp_path_factory, monkeypatch_module):
    folder = tmp_path_factory.mktemp("gradio-temp")
    monkeypatch_module.setenv("GRADIO_TEMP_DIR", str(folder))
    return folder


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def outside_connections():
    """Every network connection this process opens to somewhere other than loopback."""
    seen: list[object] = []
    original = socket.socket.connect

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            if host not in ("127.0.0.1", "::1", "localhost", "::ffff:127.0.0.1"):
                seen.append(address)
        return original(self, address)

    socket.socket.connect = connect
    try:
        yield seen
    finally:
        socket.socket.connect = original


@contextlib.contextmanager
def running_page(assistant) -> Iterator[str]:
    """The real page of `assistant` on a free loopback port; yields its address (no slash)."""
    from ui.app import launch

    port = free_port()
    demo = launch(assistant, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        demo.close()


@pytest.fixture(scope="module")
def server(settings_factory, assistant, gradio_temp, outside_connections):
    own = ui_assistant(settings_factory, assistant, "ui-client")
    with running_page(own) as url:
        yield own, url + "/"


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server[1], verbose=False)


def ask(client, question: str, history=None, k: int = 4) -> tuple[list[dict], dict]:
    job = client.submit(question, k, history or [], api_name="/ask")
    updates = list(job)
    final = job.outputs()[-1]
    return updates, final


# -- the API --------------------------------------------------------------------------------
def test_endpoints_have_stable_names(client):
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    for name in ["/ask", "/rewrite", "/documents", "/document", "/add_documents",
                 "/remove_document"]:
        assert name in named, sorted(named)
    assert not any(name.startswith("/on_") for name in named), "UI events must stay private"


def test_ask_streams_a_cited_answer(client):
    updates, final = ask(client, PUTIN)
    assert final["done"] is True
    assert not final["refused"]
    assert "olympics" in final["answer"].lower()
    assert "[1]" in final["answer"]
    assert 1 in final["cited"]
    first = final["sources"][0]
    assert first["doc_id"] == "2022-02-04-xi-putin-meeting.txt"
    assert first["date"] == "2022-02-04" and first["title"]
    assert first["score"] > 0 and 0 < first["relevance"] < 1  # a cosine, readable across questions
    start, end = first["highlight"]
    assert "Olympics" in first["text"][start:end]
    # A why-question's answer is the ranked sentence itself (no model call, nothing to stream);
    # a what-question is where the model's words stream as drafts before the checked answer.
    updates, final = ask(client, STREAMED)
    drafts = [u for u in updates if isinstance(u, dict) and not u.get("done")]
    assert drafts, "the answer is streamed: drafts come before the final answer"
    assert final["done"] is True and final["answer"]


def test_follow_up_question_is_rewritten_and_retrieves_the_arrival(client):
    _, first = ask(client, PUTIN)
    history = [{"question": PUTIN, "answer": first["answer"]}]
    _, final = ask(client, "When did he arrive?", history)
    assert "Putin" in final["standalone_question"]
    assert not final["refused"]
    cited = [s for s in final["sources"] if s["cited"]]
    assert cited
    start, end = cited[0]["highlight"]
    assert "Putin arrived in Beijing" in cited[0]["text"][start:end]
    rewritten = client.predict("When did he arrive?", history, api_name="/rewrite")
    assert "Putin" in rewritten["standalone_question"]


def test_question_outside_the_documents_is_refused(client):
    _, final = ask(client, "What is the capital of Australia?")
    assert final["refused"] is True
    assert "don't say" in final["answer"]


def test_empty_question_gets_a_sentence_not_a_traceback(client):
    _, final = ask(client, "   ")
    assert final["error"] == "Please type a question."
    assert "Traceback" not in str(final)


def test_failures_are_friendly_messages(client, server, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("index exploded")

    monkeypatch.setattr(server[0], "stream", broken, raising=False)
    _, final = ask(client, PUTIN)
    assert final["error"].startswith("Sorry, something went wrong")
    assert "exploded" not in str(final) and "Traceback" not in str(final)


def test_documents_and_document_text(client):
    docs = client.predict(api_name="/documents")
    assert [d["id"] for d in docs] == ["2022-02-04-xi-putin-meeting.txt"]
    assert docs[0]["chunks"] >= 1 and docs[0]["date"] == "2022-02-04"
    doc = client.predict("2022-02-04-xi-putin-meeting.txt", api_name="/document")
    assert "Winter Olympics" in doc["text"]
    assert client.predict("nope.txt", api_name="/document")["error"] == "no such document"


def test_add_reject_and_remove_documents(client, server, tmp_path, gradio_temp):
    from gradio_client import handle_file

    good = tmp_path / "harbour-notes.md"
    good.write_text("# Harbour notes\n\nThe lighthouse of Port Verity was painted teal in 1987 "
                    "by the keeper Alma Ruiz.\n", encoding="utf-8")
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"this is not a pdf")
    result = client.predict([handle_file(str(good)), handle_file(str(bad))],
                            api_name="/add_documents")
    assert result["added"] == ["harbour-notes.md"]
    assert [s["file"] for s in result["skipped"]] == ["broken.pdf"]
    assert result["skipped"][0]["reason"]
    ids = [d["id"] for d in client.predict(api_name="/documents")]
    assert ids == ["2022-02-04-xi-putin-meeting.txt", "harbour-notes.md"]
    # uploads land in the configured temporary folder and are deleted once copied
    assert not list(gradio_temp.rglob("harbour-notes.md"))

    _, final = ask(client, "What colour was the lighthouse of Port Verity painted?")
    assert "teal" in final["answer"].lower()
    assert any(s["doc_id"] == "harbour-notes.md" for s in final["sources"] if s["cited"])

    assert client.predict("harbour-notes.md", api_name="/remove_document")["removed"] is True
    assert client.predict("harbour-notes.md", api_name="/remove_document")["removed"] is False
    ids = [d["id"] for d in client.predict(api_name="/documents")]
    assert ids == ["2022-02-04-xi-putin-meeting.txt"]
    assert not (server[0].settings.corpus_dir / "harbour-notes.md").exists()


def test_concurrent_questions_are_all_answered(client):
    jobs = [client.submit(q, 4, [], api_name="/ask") for q in
            (PUTIN, "Who did Putin have a face-to-face meeting with?")]
    finals = [job.result() for job in jobs]
    assert "olympics" in finals[0]["answer"].lower()
    assert "xi" in finals[1]["answer"].lower()


def test_login_and_upload_limit(server, tmp_path):
    from gradio_client import Client, handle_file

    from ui.app import launch

    port = free_port()
    demo = launch(server[0], "127.0.0.1", port, auth=("reader", "s3cret"), max_file_size="1kb",
                  prevent_thread_lock=True, quiet=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        with pytest.raises(Exception):  # noqa: B017 (gradio_client raises several kinds)
            Client(url, verbose=False)
        authed = Client(url, auth=("reader", "s3cret"), verbose=False)
        assert authed.predict(api_name="/documents")[0]["id"].endswith(".txt")
        big = tmp_path / "big.txt"
        big.write_text("Too long. " * 400, encoding="utf-8")
        with pytest.raises(ValueError, match="maximum file size"):
            authed.predict([handle_file(str(big))], api_name="/add_documents")
        assert [d["id"] for d in authed.predict(api_name="/documents")] == [
            "2022-02-04-xi-putin-meeting.txt"]
    finally:
        demo.close()


def test_temp_dir_is_configured(server, gradio_temp):
    from gradio.utils import get_upload_folder

    from ui.app import temp_dir_for

    assert Path(get_upload_folder()) == gradio_temp
    assert temp_dir_for(server[0].settings) == gradio_temp


def test_no_connection_leaves_the_machine(outside_connections):
    assert outside_connections == []


def test_answer_rendering():
    from rag.schema import Answer, Passage
    from ui import render

    passage = Passage(1, "a.txt", "A", "a.txt", "2024-01-02", "One. Two <b>bold</b>.", 0, 20,
                      0.5, highlight=(5, 21))
    answer = Answer("q", "Two bold [1] and [7].", [passage], method="generated")
    text = render.answer_markdown(answer)
    assert "[\\[1\\]](#source-1)" in text and "\\[7\\]" in text  # only real sources link
    html = render.sources_html(answer, turn=3)
    assert 'data-turn="3"' in html and 'id="source-1"' in html
    assert '<mark class="rag-support">Two &lt;b&gt;bold&lt;/b&gt;.</mark>' in html
    refused = Answer("q", "The documents don't say.", [passage], refused=True)
    assert "don't hold the answer" in render.answer_markdown(refused)
    empty = Answer("q", "The documents don't say.", [], refused=True)
    assert "No documents are indexed yet" in render.answer_markdown(empty)


# -- follow-up rewriting (no server) ----------------------------------------------------------
def test_names_and_follow_up_detection():
    assert names(PUTIN) == ["Putin", "Beijing"]
    assert names("What is the full name of the Chinese president?") == ["Chinese"]
    assert needs_context("When did he arrive?")
    assert needs_context("And Xi?")
    assert not needs_context("What is the capital of Australia?")


@pytest.mark.parametrize("previous, follow_up, expected", [
    (PUTIN, "When did he arrive?", "When did Putin arrive?"),
    (PUTIN, "What did he do there?", "What did Putin do in Beijing?"),
    ("What did Xi say China and Russia will uphold?", "What did they pledge?",
     "What did China and Russia pledge?"),
    ("Why did Merkel visit Paris?", "What did she sign there?", "What did Merkel sign in Paris?"),
])
def test_rule_based_rewrite(previous, follow_up, expected):
    result = QuestionRewriter(None).rewrite(follow_up, [Turn(previous)])
    assert result.standalone == expected and result.method == "resolved"


def test_standalone_questions_are_left_alone():
    result = QuestionRewriter(None).rewrite("Which city did Putin arrive in?", [Turn(PUTIN)])
    assert result.method == "unchanged" and not result.changed
    assert QuestionRewriter(None).rewrite("When did he arrive?", []).method == "unchanged"


class _Scripted:
    def __init__(self, reply: str):
        self.reply = reply

    def generate(self, messages, max_new_tokens):
        return self.reply


@pytest.mark.parametrize("reply", [
    "Why did Putin travel to Beijing?",                        # repeats the earlier question
    "Where was Putin attending the 2014 Winter Olympics?",    # invents words
    "When did he arrive?",                                     # resolves nothing
    "Putin arrived on Friday.",                                # an answer, not a question
    "",
])
def test_bad_generated_rewrites_fall_back_to_the_rules(reply):
    result = QuestionRewriter(_Scripted(reply)).rewrite("When did he arrive?", [Turn(PUTIN)])
    assert result.standalone == "When did Putin arrive?" and result.method == "resolved"


def test_good_generated_rewrite_is_kept():
    rewriter = QuestionRewriter(_Scripted("When did Putin arrive in Beijing?"))
    result = rewriter.rewrite("When did he arrive?", [Turn(PUTIN)])
    assert result.standalone == "When did Putin arrive in Beijing?"
    assert result.method == "generated"


def test_generator_failure_falls_back():
    class Broken:
        def generate(self, *args, **kwargs):
            raise RuntimeError("boom")

    result = QuestionRewriter(Broken()).rewrite("When did he arrive?", [Turn(PUTIN)])
    assert result.standalone == "When did Putin arrive?"


def test_readme_api_example_runs(server, tmp_path):
    """The README's gradio_client example, as written but for the server's address."""
    import re
    import subprocess
    import sys

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
                 if "gradio_client" in b)
    (tmp_path / "notes.md").write_text("# Notes\n\nThe ferry to Port Elm leaves at noon.")
    out = subprocess.run([sys.executable, "-c", block.replace("http://127.0.0.1:7860/", server[1])],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Olympics" in out.stdout
