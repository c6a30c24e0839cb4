"""Collections: named libraries with their own index in one process, and isolation between
them, the way users found the bugs in other tools: two collections with disjoint facts under the
same file name, the same question asked in each, on FAISS and on a real Milvus Lite server
(one server holding every collection); a question only the other collection can answer is
refused. Also BM25 statistics, unloading the least recently used, deletion, the command line
and the users file."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from rag import Settings
from tests.conftest import ROOT

MANAGER = "Who is the office manager of the Harbour Street branch?"
LIGHTHOUSE = "What colour was the lighthouse of Port Verity painted?"  # north only
ORCHARD = "How many pear trees grow in the orchard at Elm Hollow?"    # south only
PUTIN = "Why did Putin travel to Beijing?"                             # default only

# the same file names in both collections, with different facts: nothing may cross
LIBRARIES = {
    "north": {
        "notes.md": "# North office\n\nThe office manager of the Harbour Street branch is Alma "
                    "Ruiz. She has run the branch since 2011.\n",
        "harbour.md": "# Harbour\n\nThe lighthouse of Port Verity was painted teal in 1987 by "
                      "its keeper.\n",
    },
    "south": {
        "notes.md": "# South office\n\nThe office manager of the Harbour Street branch is Tomas "
                    "Brandt. He has run the branch since 2019.\n",
        "orchard.md": "# Orchard\n\nThe orchard at Elm Hollow grows 340 pear trees, planted in "
                      "1962.\n",
    },
}
MANAGERS = {"north": "Alma Ruiz", "south": "Tomas Brandt"}


def write_library(folder: Path, name: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for file, text in LIBRARIES[name].items():
        (folder / file).write_text(text, encoding="utf-8")
        paths.append(folder / file)
    return paths


def make_collections(settings: Settings, assistant, tmp: Path, max_loaded: int | None = None):
    """Collections over `settings` (the default collection: a copy of seeds/) with north and
    south filled, sharing the session's loaded models."""
    from rag import Assistant
    from rag.collections import Collections

    home = Assistant(settings)
    home.__dict__["embedder"] = assistant.embedder
    home.__dict__["generator"] = assistant.generator
    collections = Collections(home, settings, max_loaded=max_loaded)
    for name in LIBRARIES:
        collections.create(name).add(write_library(tmp / f"upload-{name}", name))
    return collections


def store_settings(settings_factory, request, kind: str, name: str, **overrides) -> Settings:
    """Settings on FAISS, or on the session's Milvus Lite server with prefixes of their own."""
    if kind == "milvus":
        overrides.update(store="milvus", milvus_uri=request.getfixturevalue("milvus_uri"),
                         milvus_collection=f"t{uuid.uuid4().hex[:10]}")
    return settings_factory(f"{name}-{kind}", **overrides)


@pytest.fixture(scope="module", params=["faiss", "milvus"])
def two(request, settings_factory, assistant, tmp_path_factory):
    collections = make_collections(store_settings(settings_factory, request, request.param, "two"), assistant,
                                   tmp_path_factory.mktemp("uploads"))
    yield collections
    collections.close()


def test_collection_names_are_safe_identifiers():
    from rag.config import collection_name

    assert collection_name(" Course-Papers_2 ") == "course-papers_2"
    for bad in ["", " ", "../x", "a/b", "a\\b", ".hidden", "-x", "x" * 65, "a b", "ünï", "a.b",
                "x\x00", None, 3]:
        with pytest.raises(ValueError, match="not a collection name"):
            collection_name(bad)
    with pytest.raises(ValueError, match="not a collection name"):
        Settings.from_env(env={}, collection="../../etc")


def test_where_collections_live(tmp_path):
    from rag.store.milvus import collection_prefix

    base = Settings.from_env(env={}, corpus_dir=tmp_path / "lib", index_dir=tmp_path / "idx",
                             collections_dir=tmp_path / "cols")
    assert base.collection == "default"
    assert base.for_collection("default") is base  # nothing changes for existing users
    papers = base.for_collection("papers")
    assert (papers.corpus_dir, papers.index_dir) == (tmp_path / "cols/papers/library",
                                                     tmp_path / "cols/papers/index")
    assert papers.for_collection("papers") == papers
    with pytest.raises(ValueError, match="default collection"):
        papers.for_collection("default")
    assert base.users_path == tmp_path / "cols/users.json"
    # over Milvus: the default keeps its names, every named collection its own pair
    assert collection_prefix("rag", "default") == "rag"
    names = {collection_prefix("rag", n) for n in ["a-b", "a_b", "default", "chunks"]}
    assert len(names) == 4 and all(n.replace("_", "").isalnum() for n in names)


def test_the_same_question_gets_each_collections_own_answer(two):
    for name, manager in MANAGERS.items():
        other = MANAGERS["south" if name == "north" else "north"]
        answer = two.get(name).ask(MANAGER)
        assert not answer.refused, (name, answer.text)
        assert manager in answer.text, (name, answer.text)
        assert other not in answer.text
        texts = " ".join(p.text for p in answer.sources)
        assert other not in texts, f"{name} retrieved a passage of the other collection"
        assert {p.doc_id for p in answer.sources} <= set(LIBRARIES[name])
        assert all(Path(p.path).parent == two.get(name).settings.corpus_dir for p in answer.sources)


@pytest.mark.parametrize("name, question", [("north", ORCHARD), ("south", LIGHTHOUSE),
                                            ("north", PUTIN), ("default", MANAGER)])
def test_a_question_only_another_collection_answers_is_refused(two, name, question):
    answer = two.get(name).ask(question)
    assert answer.refused, (name, question, answer.text)


@pytest.mark.parametrize("name, question, expected", [("north", LIGHTHOUSE, "teal"),
                                                      ("south", ORCHARD, "340"),
                                                      ("default", PUTIN, "olympics")])
def test_each_collection_answers_its_own(two, name, question, expected):
    answer = two.get(name).ask(question)
    assert not answer.refused and expected in answer.text.lower(), answer.text


def test_documents_and_counts_are_per_collection(two):
    assert two.names() == ["default", "north", "south"]
    for name in LIBRARIES:
        docs = two.get(name).documents()
        assert sorted(d.id for d in docs) == sorted(LIBRARIES[name])
        info = two.info(name)
        assert (info.documents, info.chunks) == (2, sum(d.chunks for d in docs))
    assert "North office" in two.get("north").document_text("notes.md")
    assert "South office" in two.get("south").document_text("notes.md")
    assert [d.id for d in two.get("default").documents()] == ["2022-02-04-xi-putin-meeting.txt"]


@pytest.fixture(params=["faiss", "milvus"])
def bm25_pair(request, settings_factory, assistant, tmp_path):
    settings = store_settings(settings_factory, request, request.param, "bm25")
    collections = make_collections(settings, assistant, tmp_path)
    yield collections
    collections.close()


def test_bm25_statistics_do_not_cross(bm25_pair, tmp_path):
    """Keyword scores in one collection stay exactly the same when another collection fills
    up with documents full of the query's words (a shared BM25 would change its IDF)."""
    from rag.filters import Where

    north = bm25_pair.get("north")
    query = "office manager Harbour Street branch"
    index = north.index_data
    before = index.keywords(query, 10, Where.of(None))
    flood = tmp_path / "flood"
    flood.mkdir()
    for n in range(30):
        (flood / f"memo-{n}.md").write_text(
            f"Memo {n}. The office manager of the Harbour Street branch met the branch office "
            f"staff on Harbour Street about office {n}.\n", encoding="utf-8")
    bm25_pair.get("south").add([flood])
    assert len(bm25_pair.get("south").documents()) == 32
    after = north.index_data.keywords(query, 10, Where.of(None))
    assert [cid for cid, _ in after] == [cid for cid, _ in before]
    assert [round(s, 5) for _, s in after] == [round(s, 5) for _, s in before]
    passages = north.search(query, k=4)
    assert {p.doc_id for p in passages} <= set(LIBRARIES["north"])


def test_least_recently_used_collections_are_unloaded(settings_factory, assistant, tmp_path):
    from rag.collections import Collections

    collections = make_collections(settings_factory("lru"), assistant, tmp_path, max_loaded=2)
    try:
        north = collections.get("north")
        assert north.loaded and collections.home.documents()
        boxes = []
        for n in range(3):
            (tmp_path / f"c{n}.md").write_text(f"The code word of box {n} is word{n}.\n")
            boxes.append(collections.create(f"box{n}"))
            boxes[-1].add([tmp_path / f"c{n}.md"])
        # the last two used are held; the others were let go, least recently used first
        assert collections.loaded_names() == ["box1", "box2"]
        assert not north.loaded and not boxes[0].loaded and boxes[2].loaded
        assert collections.home.loaded  # the default collection stays
        assert isinstance(collections, Collections)
        answer = collections.get("box0").ask("What is the code word of box 0?")
        assert "word0" in answer.text and collections.loaded_names() == ["box2", "box0"]
        assert collections.get("north").ask(MANAGER).text.count("Alma Ruiz") == 1
        assert collections.loaded_names() == ["box0", "north"]
        assert collections.info("box2").documents == 1  # counted from its manifest, not loaded
        assert collections.loaded_names() == ["box0", "north"]
    finally:
        collections.close()


@pytest.mark.parametrize("kind", ["faiss", "milvus"])
def test_delete_a_collection(kind, settings_factory, assistant, tmp_path, request):
    collections = make_collections(store_settings(settings_factory, request, kind, "delete"),
                                   assistant, tmp_path)
    try:
        collections.home.documents()  # the default collection's pair exists on the server
        north = collections.get("north")
        options = north.indexer.store_options
        collections.delete("north")
        assert collections.names() == ["default", "south"]
        assert not (collections.root / "north").exists()
        assert "north" not in collections.loaded_names()
        if kind == "milvus":
            from pymilvus import MilvusClient

            client = MilvusClient(uri=options["uri"])
            try:
                assert not client.has_collection(f"{options['collection']}_chunks")
                assert client.has_collection(f"{options['collection'].split('_c_')[0]}_chunks")
            finally:
                client.close()
        with pytest.raises(ValueError, match="default collection"):
            collections.delete("default")
        from rag.collections import UnknownCollection

        with pytest.raises(UnknownCollection):
            collections.get("north")
        assert MANAGERS["south"] in collections.get("south").ask(MANAGER).text
    finally:
        collections.close()


# -- the command line -----------------------------------------------------------------------------
def cli_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ, RAG_CORPUS_DIR=str(settings.corpus_dir), RAG_INDEX_DIR=str(settings.index_dir),
               RAG_COLLECTIONS_DIR=str(settings.collections_dir), RAG_GENERATOR="extractive",
               RAG_STORE=settings.store)
    if settings.store == "milvus":
        env.update(RAG_MILVUS_URI=settings.milvus_uri, RAG_MILVUS_COLLECTION=settings.milvus_collection)
    return env


def rag(args: list[str], settings: Settings, stdin: str | None = None,
        timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True,
                          env=cli_env(settings), timeout=timeout, cwd=ROOT, input=stdin)


@pytest.mark.parametrize("kind", ["faiss", "milvus"])
def test_cli_collections(kind, settings_factory, tmp_path, request):
    settings = store_settings(settings_factory, request, kind, "cli-collections")
    for name in LIBRARIES:
        out = rag(["--collection", name, "index", "--quiet",
                   *map(str, write_library(tmp_path / name, name))], settings)
        assert out.returncode == 0, out.stderr
        assert "2 added" in out.stdout
    for name, manager in MANAGERS.items():
        out = rag(["--collection", name, "ask", "--json", MANAGER], settings)
        assert out.returncode == 0, out.stderr
        data = json.loads(out.stdout)
        assert manager in data["answer"] and not data["refused"]
        assert all(manager.split()[0] in s["text"] for s in data["sources"] if "manager" in s["text"])
    out = rag(["--collection", "north", "ask", "--json", ORCHARD], settings)
    assert json.loads(out.stdout)["refused"] is True
    out = rag(["ask", "--json", MANAGER], settings)  # the default collection: seeds only
    assert json.loads(out.stdout)["refused"] is True
    out = rag(["--collection", "south", "list"], settings)
    assert "orchard.md" in out.stdout and "harbour.md" not in out.stdout
    out = rag(["--collection", "south", "remove", "orchard.md"], settings)
    assert out.returncode == 0, out.stderr
    out = rag(["collections", "--json"], settings)
    counts = {c["name"]: (c["documents"], c["chunks"]) for c in json.loads(out.stdout)}
    assert set(counts) == {"default", "north", "south"}
    assert counts["north"][0] == 2 and counts["south"][0] == 1 and counts["default"][0] == 1
    assert "north\t2 documents" in rag(["collections"], settings).stdout
    # deleting asks for the name; anything else keeps the collection
    out = rag(["collections", "delete", "north"], settings, stdin="yes\n")
    assert out.returncode == 1 and "not deleted" in out.stderr
    assert (settings.collections_dir / "north").is_dir()
    out = rag(["collections", "delete", "north"], settings, stdin="north\n")
    assert out.returncode == 0 and "deleted collection north" in out.stdout, out.stderr
    assert not (settings.collections_dir / "north").exists()
    # unknown and unsafe names are one sentence, and create nothing
    out = rag(["--collection", "north", "ask", MANAGER], settings)
    assert out.returncode == 1 and "no collection 'north'" in out.stderr
    out = rag(["--collection", "../escape", "list"], settings)
    assert out.returncode == 1 and "not a collection name" in out.stderr
    assert "Traceback" not in out.stderr
    out = rag(["--collection", "north", "--corpus", "x", "list"], settings)
    assert out.returncode == 1 and "--corpus" in out.stderr
    assert sorted(p.name for p in settings.collections_dir.iterdir()) == ["south"]
    # rag.ask(..., collection=) and Assistant(collection=) from Python
    code = ("from rag import ask, Assistant\n"
            f"print(ask({MANAGER!r}, collection='south').text)\n"
            f"print(Assistant(collection='south').ask({ORCHARD!r}).refused)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=cli_env(settings), timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"The office manager of the Harbour Street branch is "
                                       f"{MANAGERS['south']}. [1]", "True"]


# -- users and rights -----------------------------------------------------------------------------
def test_users_file_keeps_hashes_only(tmp_path):
    from rag.users import Access, Users

    path = tmp_path / "users.json"
    users = Users.load(path)
    users.add("alice", "correct horse", read=["north"], write=["north,scratch"])
    users.add("bob", "battery staple", read=["south"])
    users.save()
    raw = path.read_text()
    assert "correct horse" not in raw and "battery staple" not in raw
    assert json.loads(raw)["users"]["alice"]["password"].startswith("$argon2id$")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    access = Access(Users.load(path))
    assert access.login("alice", "correct horse")
    assert not access.login("alice", "battery staple") and not access.login("mallory", "x")
    assert access.readable("alice", ["default", "north", "south", "scratch"]) == ["north", "scratch"]
    assert access.readable("bob", ["default", "north", "south"]) == ["south"]
    assert access.can_write("alice", "scratch") and not access.can_write("bob", "south")
    assert not access.can_read(None, "north")
    # a change to the file is seen without a restart
    users.add("bob", "new password", read=["*"])
    users.save()
    assert access.login("bob", "new password") and not access.login("bob", "battery staple")
    assert access.can_read("bob", "north")
    path.write_text('{"users": {"eve": {"password": "plain"}}}')
    with pytest.raises(ValueError, match="no Argon2 password hash"):
        access.login("eve", "plain")
    assert Access().can_write(None, "anything")  # without --auth, everyone may do everything


def test_cli_help_for_collections_and_users():
    for args in (["collections"], ["users"]):
        out = subprocess.run([sys.executable, "-m", "rag.cli", *args, "--help"], capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0 and "usage: rag" in out.stdout


def test_cli_users(settings_factory):
    settings = settings_factory("cli-users")
    out = rag(["users", "add", "alice", "--read", "north", "--write", "scratch", "--password-stdin"],
              settings, stdin="s3cret pass\n")
    assert out.returncode == 0, out.stderr
    path = settings.collections_dir / "users.json"
    assert "s3cret" not in path.read_text() and "$argon2id$" in path.read_text()
    assert "alice\tread: north\twrite: scratch" in rag(["users", "list"], settings).stdout
    out = rag(["users", "add", "bob", "--read", "../x", "--password-stdin"], settings, stdin="pw\n")
    assert out.returncode == 1 and "not a collection name" in out.stderr
    out = rag(["users", "remove", "alice"], settings)
    assert out.returncode == 0 and rag(["users", "list"], settings).stdout == ""
