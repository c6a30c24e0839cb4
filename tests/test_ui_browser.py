"""The web page in a real headless Chromium (Playwright's Python package, the system's
/usr/bin/chromium): ask and read a cited answer, follow up, open sources, upload a document,
ask about it, remove it, and never fetch anything from outside 127.0.0.1.

Set UI_SCREENSHOT=docs/screenshot.png to save the answered page there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_ui_client import PUTIN, running_page, ui_assistant

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT = 90_000  # ms: the first answer may wait for a busy CPU

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),  # in CI a missing browser fails
    reason="needs /usr/bin/chromium (apt-get install chromium)",
)


@pytest.fixture(scope="module")
def server(settings_factory, assistant, tmp_path_factory):
    own = ui_assistant(settings_factory, assistant, "ui-browser")
    previous = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(tmp_path_factory.mktemp("gradio-browser"))
    try:
        with running_page(own) as url:
            yield own, url
    finally:
        if previous is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = previous


@pytest.fixture(scope="module")
def browser_page(server):
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 940})
        page.set_default_timeout(TIMEOUT)
        page.on("request", lambda request: requests.append(request.url))
        page.goto(server[1] + "/", wait_until="load")
        page.wait_for_selector("#rag-question textarea")
        try:
            yield page, requests
        finally:
            browser.close()


def ask(page, question: str | None, turn: int) -> str:
    """Type a question (None: it was asked already), wait for its final answer; return the
    last bot message's text."""
    if question is not None:
        page.fill("#rag-question textarea", question)
        page.keyboard.press("Enter")
    page.wait_for_selector(f'#rag-sources [data-turn="{turn}"]')
    return page.locator("#rag-chat .message-row.bot-row").last.inner_text()


def test_empty_page_offers_example_questions(browser_page):
    page, _ = browser_page
    assert page.get_by_text(PUTIN).first.is_visible()
    assert "Sources of the latest answer appear here" in page.inner_text("#rag-sources")


def test_example_question_is_answered_with_citation_and_sources(browser_page):
    page, _ = browser_page
    page.get_by_text(PUTIN).first.click()  # an example question on the empty page
    answer = ask(page, None, turn=1)
    assert "olympics" in answer.lower()
    assert "[1]" in answer
    card = page.locator("#source-1")
    assert "Xi putin meeting".lower() in card.inner_text().lower()
    assert "2022-02-04" in card.inner_text()
    assert "relevance 0." in card.inner_text()  # the closest sentence's cosine, not a min-max
    assert "Olympics" in card.locator("mark.rag-support").inner_text()
    # clicking the citation opens and shows its passage
    page.evaluate("document.getElementById('source-1').open = false")
    page.locator('#rag-chat a[href="#source-1"]').last.click()
    page.wait_for_function("document.getElementById('source-1').open === true")
    assert card.locator(".rag-passage").is_visible()
    # the whole document can be opened
    page.click("#rag-open")
    page.wait_for_function(
        "document.querySelector('#rag-source-text textarea')?.value?.includes('Winter Olympics')")
    shot = os.environ.get("UI_SCREENSHOT")
    if shot:
        page.locator("#source-1").scroll_into_view_if_needed()
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=shot)


def test_follow_up_is_rewritten_visibly(browser_page):
    page, _ = browser_page
    answer = ask(page, "When did he arrive?", turn=2)
    assert answer.strip()
    toggle = page.get_by_text("Follow-up question rewritten").last
    toggle.click()
    page.wait_for_function(
        "[...document.querySelectorAll('#rag-chat .message-row')]"
        ".some(r => r.innerText.includes('Putin arrive'))")
    assert "Putin arrived in Beijing" in page.inner_text("#rag-sources mark.rag-support")


def test_upload_ask_and_remove_a_document(browser_page, tmp_path):
    page, _ = browser_page
    note = tmp_path / "harbour-notes.md"
    note.write_text("# Harbour notes\n\nThe lighthouse of Port Verity was painted teal in 1987 "
                    "by the keeper Alma Ruiz.\n", encoding="utf-8")
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"this is not a pdf")

    page.get_by_role("tab", name="Documents").click()
    page.wait_for_selector("#rag-docs")
    page.set_input_files("#rag-upload input[type=file]", [str(note), str(bad)])
    page.wait_for_function(
        "document.querySelector('#rag-upload-status').innerText.includes('Added')")
    status = page.inner_text("#rag-upload-status")
    assert "harbour-notes.md" in status
    assert "broken.pdf" in status  # rejected, with the reason
    page.wait_for_function("document.querySelector('#rag-docs').innerText.includes('harbour')")
    assert "2022-02-04-xi-putin-meeting.txt" in page.inner_text("#rag-docs")

    page.get_by_role("tab", name="Ask").click()
    answer = ask(page, "What colour was the lighthouse of Port Verity painted?", turn=3)
    assert "teal" in answer.lower()
    assert "harbour-notes.md" in page.inner_text("#rag-sources .rag-cited")

    page.get_by_role("tab", name="Documents").click()
    page.locator("#rag-docs").get_by_text("harbour-notes.md").first.click()  # picks the row
    page.wait_for_function(
        "document.querySelector('#rag-doc-pick input')?.value === 'harbour-notes.md'")
    page.click("#rag-doc-open")
    page.wait_for_function(
        "document.querySelector('#rag-doc-text textarea')?.value?.includes('Port Verity')")
    page.click("#rag-doc-remove")
    page.wait_for_function("document.querySelector('#rag-doc-status').innerText.includes('Removed')")
    page.wait_for_function("!document.querySelector('#rag-docs').innerText.includes('harbour')")
    assert "2022-02-04-xi-putin-meeting.txt" in page.inner_text("#rag-docs")


def test_errors_are_friendly_messages(browser_page, server, monkeypatch):
    page, _ = browser_page

    def broken(*args, **kwargs):
        raise RuntimeError("index exploded")

    monkeypatch.setattr(server[0], "stream", broken, raising=False)
    page.get_by_role("tab", name="Ask").click()
    page.fill("#rag-question textarea", "Why did Xi meet Putin?")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "document.querySelector('#rag-chat').innerText.includes('something went wrong')")
    assert "exploded" not in page.inner_text("body")
    assert "Traceback" not in page.content()
    # "Clear conversation" starts over
    page.click("#rag-clear")
    page.wait_for_function("!document.querySelector('#rag-chat').innerText.includes('went wrong')")
    assert "Sources of the latest answer appear here" in page.inner_text("#rag-sources")


def test_nothing_is_fetched_from_outside(browser_page, server):
    page, requests = browser_page
    assert requests
    outside = [u for u in requests
               if not u.startswith(server[1] + "/") and not u.startswith("data:")
               and not u.startswith("blob:")]
    assert outside == []
    assert "Traceback" not in page.content()
