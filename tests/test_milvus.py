"""The whole assistant over a real Milvus Lite server (started on loopback by the `milvus_uri`
fixture): the same answers as over FAISS, parallel `rag index --shard` workers, and separate
processes sharing one collection."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from rag import Assistant
from rag.filters import Where
from rag.ingest import load_file
from tests.conftest import ROOT

SEED_SET = json.loads((ROOT / "benchmarks" / "seed_questions.json").read_text())
QUESTIONS = [q["q"] for q in SEED_SET["questions"]]
SEED = "2022-02-04-xi-putin-meeting.txt"
TOPICS = ["harbor cranes", "glacier melt", "violin making", "bee keeping", "tram lines", "salt mines",
          "kite festivals"]


def _collection() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


def _env(milvus_uri: str, collection: str, corpus: Path, index: Path) -> dict[str, str]:
    return dict(os.environ, RAG_STORE="milvus", RAG_MILVUS_URI=milvus_uri, RAG_MILVUS_COLLECTION=collection,
                RAG_CORPUS_DIR=str(corpus), RAG_INDEX_DIR=str(index), RAG_GENERATOR="extractive")


def _rag(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True,
                         env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    return out


def _write_library(folder: Path) -> None:
    """Seven dated documents of several chunks each."""
    folder.mkdir(parents=True, exist_ok=True)
    for n, topic in enumerate(TOPICS, start=1):
        lines = [f"date 2020-0{n}-1{n}", f"# Notes on {topic}"]
        lines += [f"Paragraph {p} on {topic}: observation {p * n} was recorded by team {n} "
                  f"after {p + 2} days of work, and the {topic} report number {n}{p} followed."
                  for p in range(40)]
        (folder / f"{topic.replace(' ', '-')}.md").write_text("\n\n".join(lines))


def test_same_answers_as_faiss(settings_factory, assistant, milvus_uri):
    on_milvus = Assistant(settings_factory("on-milvus", store="milvus", milvus_uri=milvus_uri,
                                           milvus_collection=_collection()))
    on_milvus.__dict__["embedder"] = assistant.embedder
    on_milvus.__dict__["generator"] = assistant.generator
    assert on_milvus.refresh().added == [SEED]
    assert not on_milvus.refresh().changed  # nothing new: nothing embedded again
    assert [(d.id, d.title, d.date, d.chunks) for d in on_milvus.documents()] == \
        [(d.id, d.title, d.date, d.chunks) for d in assistant.documents()]
    assert on_milvus.document_text(SEED) == assistant.document_text(SEED)
    for question in QUESTIONS:
        want, got = assistant.ask(question), on_milvus.ask(question)
        assert (got.text, got.refused, got.method) == (want.text, want.refused, want.method), question
        assert [(s.doc_id, s.start, s.end, s.date) for s in got.sources] == \
            [(s.doc_id, s.start, s.end, s.date) for s in want.sources], question
        assert [s.score for s in got.sources] == pytest.approx([s.score for s in want.sources], abs=1e-4)
    question = QUESTIONS[0]
    assert on_milvus.search(question, where=Where.of(date_to="2022-02-03")) == []
    assert on_milvus.search(question, where=Where.of(date_from="2022-02-04"))[0].doc_id == SEED
    assert on_milvus.search(question, where=Where.of(["other.txt"])) == []


def test_parallel_index_workers(settings_factory, assistant, milvus_uri, tmp_path: Path):
    corpus = tmp_path / "library"
    _write_library(corpus)
    env = _env(milvus_uri, _collection(), corpus, tmp_path / "index")
    workers = [subprocess.Popen([sys.executable, "-m", "rag.cli", "index", "--shard", f"{i}/2"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i in (1, 2)]
    outputs = [w.communicate(timeout=600) for w in workers]
    for i, (w, (out, err)) in enumerate(zip(workers, outputs), start=1):
        assert w.returncode == 0, err
        assert f"worker {i}/2: embedding" in err  # its own progress bar
        assert out.startswith(f"worker {i}/2: index: ")
    added = [int(out.split("index: ")[1].split(" added")[0]) for out, _ in outputs]
    assert sum(added) == len(TOPICS) and min(added) >= 1  # each document once, both workers busy

    shared = Assistant(settings_factory("workers-check", store="milvus", milvus_uri=milvus_uri,
                                        milvus_collection=env["RAG_MILVUS_COLLECTION"]),
                       corpus_dir=corpus)
    shared.__dict__["embedder"] = assistant.embedder
    docs = shared.documents()
    assert sorted(d.id for d in docs) == sorted(p.name for p in corpus.iterdir())
    expected = shared.indexer.chunker.run([load_file(corpus / d.id, d.id) for d in docs])
    index = shared.index_data
    assert sum(d.chunks for d in docs) == len(expected) == len(index.store)  # nothing lost, no copies
    again = _rag(env, "index", "--shard", "1/2")
    assert f"0 added, 0 updated, 0 removed, {added[0]} unchanged" in again.stdout
    assert len(index.store) == len(expected)
    hits = shared.search("glacier melt observation", k=3, where=Where.of(date_from="2020-02-01",
                                                                       date_to="2020-02-28"))
    assert hits and {h.doc_id for h in hits} == {"glacier-melt.md"}


def test_processes_share_one_collection(milvus_uri, tmp_path: Path):
    """Two processes with their own library folders and index folders, over one Milvus: what one
    adds, the other lists and answers from; what the other removes is gone for the first."""
    collection = _collection()
    env_a = _env(milvus_uri, collection, tmp_path / "a-library", tmp_path / "a-index")
    env_b = _env(milvus_uri, collection, tmp_path / "b-library", tmp_path / "b-index")
    note = tmp_path / "lighthouse.txt"
    note.write_text("date 2021-07-09\nThe lighthouse keeper painted the tower red and white in 1931.")
    _rag(env_a, "index", "--quiet", str(note))
    listed = json.loads(_rag(env_b, "list", "--json").stdout)
    assert [d["id"] for d in listed] == ["lighthouse.txt"] and listed[0]["date"] == "2021-07-09"
    answer = json.loads(_rag(env_b, "ask", "--json", "What colours did the keeper paint the tower?").stdout)
    assert not answer["refused"] and answer["sources"][0]["doc_id"] == "lighthouse.txt"
    assert "red" in answer["answer"]
    filtered = json.loads(_rag(env_b, "ask", "--json", "--until", "2020-12-31",
                               "What colours did the keeper paint the tower?").stdout)
    assert filtered["refused"] and filtered["sources"] == []
    other = tmp_path / "ferry.txt"
    other.write_text("The ferry to the island leaves every hour from pier four.")
    _rag(env_b, "index", "--quiet", str(other))
    assert sorted(d["id"] for d in json.loads(_rag(env_a, "list", "--json").stdout)) == \
        ["ferry.txt", "lighthouse.txt"]
    _rag(env_a, "remove", "lighthouse.txt")
    assert [d["id"] for d in json.loads(_rag(env_b, "list", "--json").stdout)] == ["ferry.txt"]


def _serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    with open(log, "w") as fh:
        return subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--port", str(port)],
                                env=env, stdout=fh, stderr=subprocess.STDOUT)


def _wait_listening(proc: subprocess.Popen, port: int, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.5)
    raise TimeoutError(log.read_text())


def test_two_servers_see_each_others_uploads(milvus_uri, tmp_path: Path):
    """Two `rag serve` processes on different ports, stateless over one Milvus collection."""
    from gradio_client import Client, handle_file

    from rag.store.milvus import _free_port

    collection = _collection()
    servers = []
    try:
        for name in ("a", "b"):
            env = _env(milvus_uri, collection, tmp_path / f"{name}-library", tmp_path / f"{name}-index")
            env["GRADIO_TEMP_DIR"] = str(tmp_path / f"{name}-uploads")
            port = _free_port()
            servers.append((_serve(env, port, tmp_path / f"{name}.log"), port, tmp_path / f"{name}.log"))
        for proc, port, log in servers:
            _wait_listening(proc, port, log)
        a, b = (Client(f"http://127.0.0.1:{port}/", verbose=False) for _, port, _ in servers)
        note = tmp_path / "orchard.md"
        note.write_text("# Orchard\n\nThe orchard on Kestrel Hill grows forty-two kinds of pear.\n")
        assert a.predict([handle_file(str(note))], api_name="/add_documents")["added"] == ["orchard.md"]
        deadline = time.monotonic() + 30
        while "orchard.md" not in [d["id"] for d in b.predict(api_name="/documents")]:
            assert time.monotonic() < deadline, "server b never saw server a's upload"
            time.sleep(1)
        assert "forty-two kinds of pear" in b.predict("orchard.md", api_name="/document")["text"]
        job = b.submit("How many kinds of pear grow in the orchard on Kestrel Hill?", 4, [], api_name="/ask")
        final = job.result()
        assert "forty-two" in final["answer"] and final["sources"][0]["doc_id"] == "orchard.md"
    finally:
        for proc, _, _ in servers:
            proc.terminate()
            proc.wait(30)
