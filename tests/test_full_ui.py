"""The full answer style through the page: `/ask` with gradio_client, and the page in Chromium,
against the replaying OpenAI-compatible server (tests/replay_server.py)."""

from __future__ import annotations

import os

import pytest
from test_ui_browser import ARGS, CHROMIUM, TIMEOUT
from test_ui_client import running_page

from tests.test_full_answers import full, replay  # noqa: F401  (fixtures)

QUESTION = "Why did Putin travel to Beijing, and what did he and Xi say about relations?"


@pytest.fixture(scope="module")
def page_url(full, tmp_path_factory):  # noqa: F811
    previous = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(tmp_path_factory.mktemp("gradio-full"))
    try:
        with running_page(full) as url:
            yield url
    finally:
        if previous is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = previous


def test_api_final_update_has_sentence_records(page_url):
    from gradio_client import Client

    job = Client(page_url + "/", verbose=False).submit(QUESTION, 4, [], api_name="/ask")
    updates = list(job)
    final = job.outputs()[-1]
    assert final["done"] and not final["refused"]
    assert [s["supported"] for s in final["sentences"]] == [True, True, True, False]
    assert "400 billion" not in final["answer"]
    assert not any("400 billion" in str(u.get("answer", "")) for u in updates if isinstance(u, dict))
    assert sum(len(s["highlights"]) for s in final["sources"]) >= 2


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs /usr/bin/chromium")
def test_page_highlights_every_span_and_shows_the_dropped_sentence(page_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 940})
            page.set_default_timeout(TIMEOUT)
            page.goto(page_url + "/", wait_until="load")
            page.wait_for_function(  # the page has chosen its collection: questions can go out
                "document.querySelector('#rag-collection input')?.value === 'default'")
            page.fill("#rag-question textarea", QUESTION)
            page.keyboard.press("Enter")
            try:
                page.wait_for_selector('#rag-sources [data-turn="1"]')
            except Exception:
                page.screenshot(path="/tmp/wt12-fail.png")
                raise AssertionError(page.inner_text("#rag-chat")[-2000:]) from None
            bot = page.locator("#rag-chat .message-row.bot-row").last
            assert "Winter Olympics" in bot.inner_text()
            dropped = bot.locator("details.rag-dropped")
            assert "not found in the sources" in dropped.locator("summary").inner_text()
            assert not dropped.locator("li").first.is_visible(), "collapsed until opened"
            dropped.locator("summary").click()
            assert "400 billion" in dropped.locator("li").first.inner_text()
            marks = page.locator("#rag-sources mark.rag-support")
            assert marks.count() >= 2, "every supporting span is highlighted, not just one"
        finally:
            browser.close()


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs /usr/bin/chromium")
def test_a_waiting_question_shows_its_place_in_the_queue(settings_factory, assistant, tmp_path, monkeypatch):
    """One answer at a time (RAG_ANSWER_CONCURRENCY=1), a slow model writing one: a question
    asked from the page meanwhile waits, and the page says where it is in the queue."""
    from gradio_client import Client
    from playwright.sync_api import sync_playwright

    from rag import Assistant
    from tests.replay_server import ReplayServer

    slow = ReplayServer(delay=0.15).start()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    try:
        own = Assistant(settings_factory("queue", generator="openai:replay", openai_base_url=slow.url,
                                         answer_concurrency=1))
        own.__dict__["embedder"] = assistant.embedder
        with running_page(own) as url, sync_playwright() as p:
            job = Client(url + "/", verbose=False).submit(QUESTION, 4, [], api_name="/ask")
            next(iter(job))  # the first answer holds the one place
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = browser.new_page()
                page.set_default_timeout(TIMEOUT)
                page.goto(url + "/", wait_until="load")
                page.wait_for_function(
                    "document.querySelector('#rag-collection input')?.value === 'default'")
                page.fill("#rag-question textarea", "When did Putin arrive in Beijing?")
                page.keyboard.press("Enter")
                page.wait_for_function(  # Gradio's status line on the chat
                    "/queue: 1\\/\\d+/.test(document.querySelector('#rag-chat').innerText)")
                job.result()
                page.wait_for_selector('#rag-sources [data-turn="1"]')  # then it is answered
            finally:
                browser.close()
    finally:
        slow.shutdown()
        slow.server_close()
