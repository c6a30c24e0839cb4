"""Collections through the page's HTTP API (gradio_client, with logins and rights per user) and
in the page itself (headless Chromium), on FAISS and on a real Milvus Lite server: the same
question in two collections gets each one's own answer, a question only the other collection
answers is refused, a follow-up is never rewritten with another collection's conversation, and
a user never sees, reads or changes a collection without the right to."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
from test_collections import (
    LIBRARIES,
    LIGHTHOUSE,
    MANAGER,
    MANAGERS,
    ORCHARD,
    PUTIN,
    make_collections,
    store_settings,
)
from test_ui_browser import ARGS, CHROMIUM, TIMEOUT
from test_ui_client import free_port

PASSWORDS = {"alice": "alice pass 1", "bob": "bob pass 2", "carol": "carol pass 3"}


@contextlib.contextmanager
def serving(collections, access=None):
    from ui.app import launch

    port = free_port()
    demo = launch(collections.home, "127.0.0.1", port, auth=access, prevent_thread_lock=True,
                  quiet=True, collections=collections)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture(scope="module")
def gradio_temp(tmp_path_factory):
    previous = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(tmp_path_factory.mktemp("gradio-collections"))
    yield Path(os.environ["GRADIO_TEMP_DIR"])
    if previous is None:
        os.environ.pop("GRADIO_TEMP_DIR", None)
    else:
        os.environ["GRADIO_TEMP_DIR"] = previous


@pytest.fixture(scope="module", params=["faiss", "milvus"])
def server(request, settings_factory, assistant, tmp_path_factory, gradio_temp):
    """A server with the default collection and north and south, and three users: alice reads
    and changes north (and may create scratch), bob reads south and default, carol reads all."""
    from rag.users import Access, Users

    settings = store_settings(settings_factory, request, request.param, "api")
    collections = make_collections(settings, assistant, tmp_path_factory.mktemp("uploads"))
    users = Users.load(settings.users_path)
    users.add("alice", PASSWORDS["alice"], read=["north"], write=["north", "scratch"])
    users.add("bob", PASSWORDS["bob"], read=["south", "default"])
    users.add("carol", PASSWORDS["carol"], read=["*"])
    users.save()
    with serving(collections, Access(Users.load(settings.users_path))) as url:
        yield collections, url
    collections.close()


@pytest.fixture(scope="module")
def clients(server):
    from gradio_client import Client

    return {name: Client(server[1], auth=(name, password), verbose=False)
            for name, password in PASSWORDS.items()}


def ask(client, question: str, collection: str, history=None) -> dict:
    job = client.submit(question, 4, history or [], collection, api_name="/ask")
    return job.result()


def test_a_login_is_needed_and_a_wrong_password_fails(server):
    from gradio_client import Client

    with pytest.raises(Exception):  # noqa: B017 (gradio_client raises several kinds)
        Client(server[1], verbose=False)
    with pytest.raises(Exception):  # noqa: B017
        Client(server[1], auth=("alice", PASSWORDS["bob"]), verbose=False)


def test_the_same_question_gets_each_collections_answer(clients):
    for name, manager in MANAGERS.items():
        other = MANAGERS["south" if name == "north" else "north"]
        final = ask(clients["carol"], MANAGER, name)
        assert final["collection"] == name and not final["refused"], final
        assert manager in final["answer"] and other not in final["answer"]
        assert final["sources"] and all(s["doc_id"] in LIBRARIES[name] for s in final["sources"])
        assert not any(other in s["text"] for s in final["sources"])


@pytest.mark.parametrize("collection, question", [("north", ORCHARD), ("south", LIGHTHOUSE),
                                                  ("default", MANAGER), ("north", PUTIN)])
def test_questions_of_another_collection_are_refused(clients, collection, question):
    final = ask(clients["carol"], question, collection)
    assert final["refused"] is True and "don't say" in final["answer"], final


def test_calls_without_a_collection_use_the_default(clients):
    docs = clients["carol"].predict(api_name="/documents")
    assert [d["id"] for d in docs] == ["2022-02-04-xi-putin-meeting.txt"]
    job = clients["carol"].submit(PUTIN, 4, [], api_name="/ask")  # positional, as before
    final = job.result()
    assert final["collection"] == "default" and "olympics" in final["answer"].lower()


def test_a_follow_up_is_never_rewritten_with_another_collection(clients):
    first = ask(clients["carol"], MANAGER, "north")
    history = [{"question": MANAGER, "answer": first["answer"], "collection": "north"}]
    follow = "Since when has she run it?"
    same = ask(clients["carol"], follow, "north", history)
    assert "Alma Ruiz" in same["standalone_question"] or "Harbour Street" in same["standalone_question"]
    other = ask(clients["carol"], follow, "south", history)
    assert other["standalone_question"] == follow
    assert "Alma" not in other["answer"]
    rewritten = clients["carol"].predict(follow, history, "south", api_name="/rewrite")
    assert rewritten["standalone_question"] == follow and rewritten["method"] == "unchanged"


def test_users_see_only_the_collections_they_may_read(clients):
    names = {user: [c["name"] for c in client.predict(api_name="/collections")]
             for user, client in clients.items()}
    assert names["alice"] == ["north"]
    assert names["bob"] == ["default", "south"]
    assert {"default", "north", "south"} <= set(names["carol"])
    north = next(c for c in clients["alice"].predict(api_name="/collections") if c["name"] == "north")
    assert north["documents"] == 2 and north["chunks"] >= 2


@pytest.mark.parametrize("endpoint, args", [
    ("/documents", ()), ("/document", ("notes.md",)), ("/remove_document", ("notes.md",)),
])
def test_a_collection_one_may_not_read_is_like_one_that_does_not_exist(clients, server, endpoint,
                                                                       args):
    errors = []
    for collection in ("south", "nowhere"):
        with pytest.raises(Exception) as caught:  # noqa: B017 (gradio_client's AppError)
            clients["alice"].predict(*args, collection, api_name=endpoint)
        errors.append(str(caught.value).replace(collection, "NAME"))
    assert errors[0] == errors[1] and "no collection 'NAME'" in errors[0]
    assert "Tomas" not in errors[0] and "orchard" not in errors[0]
    assert sorted(d.id for d in server[0].get("south").documents()) == sorted(LIBRARIES["south"])
    final = ask(clients["alice"], MANAGER, "south")
    assert final["error"] == "no collection 'south'" and "Tomas" not in str(final)


def test_reading_is_not_changing(clients, server, tmp_path):
    from gradio_client import handle_file

    note = tmp_path / "memo.md"
    note.write_text("The south vault opens at nine.\n", encoding="utf-8")
    with pytest.raises(Exception, match="may read the collection 'south' but not change it"):
        clients["bob"].predict([handle_file(str(note))], "south", api_name="/add_documents")
    with pytest.raises(Exception, match="not change it"):
        clients["bob"].predict("notes.md", "south", api_name="/remove_document")
    assert sorted(d.id for d in server[0].get("south").documents()) == sorted(LIBRARIES["south"])
    # alice may change north: add a document, find it, remove it
    result = clients["alice"].predict([handle_file(str(note))], "north", api_name="/add_documents")
    assert result["added"] == ["memo.md"]
    assert "nine" in ask(clients["alice"], "When does the south vault open?", "north")["answer"]
    assert ask(clients["bob"], "When does the south vault open?", "south")["refused"] is True
    assert clients["alice"].predict("memo.md", "north", api_name="/remove_document")["removed"]


def test_creating_collections_needs_the_right(clients):
    with pytest.raises(Exception, match="may not create the collection 'other'"):
        clients["alice"].predict("other", api_name="/create_collection")
    with pytest.raises(Exception, match="not a collection name"):
        clients["alice"].predict("../north", api_name="/create_collection")
    created = clients["alice"].predict("scratch", api_name="/create_collection")
    assert (created["name"], created["documents"], created["chunks"]) == ("scratch", 0, 0)
    assert [c["name"] for c in clients["alice"].predict(api_name="/collections")] == ["north", "scratch"]
    assert "scratch" not in [c["name"] for c in clients["bob"].predict(api_name="/collections")]
    final = ask(clients["alice"], MANAGER, "scratch")
    assert final["refused"] is True and final["sources"] == []


# -- the page ---------------------------------------------------------------------------------
pytestmark_browser = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="needs /usr/bin/chromium (apt-get install chromium)",
)


@pytest.fixture(scope="module", params=["faiss", "milvus"])
def page(request, settings_factory, assistant, tmp_path_factory, gradio_temp):
    from playwright.sync_api import sync_playwright

    settings = store_settings(settings_factory, request, request.param, "page")
    collections = make_collections(settings, assistant, tmp_path_factory.mktemp("uploads"))
    with serving(collections) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        tab = browser.new_page(viewport={"width": 1360, "height": 940})
        tab.set_default_timeout(TIMEOUT)
        tab.goto(url, wait_until="load")
        tab.wait_for_selector("#rag-question textarea")
        try:
            yield tab
        finally:
            browser.close()
            collections.close()


def choose(tab, name: str) -> None:
    tab.click("#rag-collection input")
    tab.get_by_role("option", name=name, exact=True).click()
    tab.wait_for_function(
        "name => document.querySelector('#rag-chat').innerText.includes("
        "'Now answering from the collection ' + name)", arg=name)


def bot_answer(tab, question: str, turn: int) -> str:
    tab.fill("#rag-question textarea", question)
    tab.keyboard.press("Enter")
    tab.wait_for_selector(f'#rag-sources [data-turn="{turn}"]')
    return tab.locator("#rag-chat .message-row.bot-row").last.inner_text()


@pytestmark_browser
def test_the_page_asks_in_the_chosen_collection(page):
    tab = page
    tab.wait_for_function("document.querySelector('#rag-collection input')?.value === 'default'")
    assert "olympics" in bot_answer(tab, PUTIN, turn=1).lower()

    choose(tab, "north")
    chat = tab.inner_text("#rag-chat")
    assert "conversation starts over" in chat and "Olympics" not in chat
    answer = bot_answer(tab, MANAGER, turn=1)
    assert "Alma Ruiz" in answer and "Tomas" not in answer
    assert "notes.md" in tab.inner_text("#rag-sources .rag-cited")
    assert "Tomas" not in tab.inner_text("#rag-sources")

    choose(tab, "south")
    assert "Alma" not in tab.inner_text("#rag-chat")
    answer = bot_answer(tab, MANAGER, turn=1)
    assert "Tomas Brandt" in answer and "Alma" not in tab.inner_text("#rag-sources")
    assert "don't" in bot_answer(tab, LIGHTHOUSE, turn=2).lower()  # north's fact: refused

    # the documents tab shows the chosen collection
    tab.get_by_role("tab", name="Documents").click()
    tab.wait_for_function("document.querySelector('#rag-docs').innerText.includes('orchard.md')")
    docs = tab.inner_text("#rag-docs")
    assert "harbour.md" not in docs and "xi-putin" not in docs


@pytestmark_browser
def test_a_collection_is_created_from_the_page(page):
    tab = page
    tab.fill("#rag-new-collection input", "fresh-notes")
    tab.click("#rag-create")
    tab.wait_for_function(
        "document.querySelector('#rag-collection-status').innerText.includes('Created')")
    tab.wait_for_function("document.querySelector('#rag-collection input')?.value === 'fresh-notes'")
    assert "Now answering from the collection fresh-notes" in tab.inner_text("#rag-chat")
    tab.get_by_role("tab", name="Documents").click()
    tab.wait_for_function("!document.querySelector('#rag-docs').innerText.includes('.md')")
    tab.get_by_role("tab", name="Ask").click()
    assert "no documents" in bot_answer(tab, MANAGER, turn=1).lower()
    tab.fill("#rag-new-collection input", "../up")
    tab.click("#rag-create")
    tab.wait_for_function(
        "document.querySelector('#rag-collection-status').innerText.includes('not a collection name')")


@pytest.mark.parametrize("name", ["../south", "south/..", "/etc", "south\x00", "s" * 500, ".", "..\\south"])
def test_unsafe_collection_names_are_unknown_collections(clients, server, name):
    before = sorted(p.name for p in server[0].root.iterdir())
    with pytest.raises(Exception, match="no collection"):
        clients["carol"].predict(name, api_name="/documents")
    final = ask(clients["carol"], MANAGER, name)
    assert final["error"].startswith("no collection") and "Tomas" not in str(final)
    assert sorted(p.name for p in server[0].root.iterdir()) == before
