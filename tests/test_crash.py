"""Crash safety: `rag index` killed with SIGKILL at random moments leaves an index that loads
and is exactly the previous or the new state, never a mix; a resumed run completes, reusing
what the killed runs had embedded.

The default run makes RAG_CRASH_TRIALS (8) kills; `--runslow` adds the full run of 50. Both
stop early, with what they have checked, when their time budget is spent."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag import Assistant
from rag.index import Index
from tests.conftest import ROOT

WORDS = ["harbor", "ferry", "lighthouse", "keeper", "council", "market", "bakery", "river", "bridge",
         "tower", "garden", "museum", "library", "school", "station", "festival", "orchard", "mill",
         "quarry", "canal"]
VERBS = ["opened", "closed", "moved", "grew", "expanded", "flooded", "burned", "reopened", "changed",
         "hosted"]
QUERIES = ["When did the lighthouse near the harbor open?", "Who worked on the canal by the mill?"]


def doc_text(seed: int, sentences: int = 40) -> str:
    r = random.Random(seed)
    out = []
    for _ in range(sentences):
        a, b = r.sample(WORDS, 2)
        out.append(f"The {a} near the {b} {r.choice(VERBS)} in {r.randint(1800, 2020)} after "
                   f"{r.randint(2, 90)} {r.choice(['days', 'weeks', 'years'])} of work by "
                   f"{r.choice(['Ana', 'Bo', 'Cy', 'Di', 'Ed'])} "
                   f"{r.choice(['Ruiz', 'Smith', 'Lee', 'Khan', 'Ono'])}.")
    return " ".join(out)


def write_library(folder: Path, seeds: list[int], changed: int | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        text = doc_text(seed + (1000 if seed == changed else 0))
        (folder / f"doc{seed:03d}.txt").write_text(text)


def rag_index(library: Path, index: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAG_THREADS": "1",
           "RAG_EMBEDDING_BATCH_SIZE": "4"}  # small checkpoint groups: more moments to die in
    return subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "--corpus", str(library), "--index", str(index),
         "--generator", "extractive", "index", "--quiet"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def complete(library: Path, index: Path) -> tuple[str, float]:
    start = time.monotonic()
    process = rag_index(library, index)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    return out, time.monotonic() - start


def fingerprint(index_dir: Path, embedder) -> tuple:
    """Documents with their hashes, every chunk's text, and what a search finds; no chunk ids
    (they depend on the order in which documents went in)."""
    index = Index.load(index_dir)  # raises IndexCorrupt or IndexMissing if unreadable
    docs = sorted((d.id, d.content_hash) for d in index.documents.values())
    chunks = sorted((c.doc_id, c.ordinal, c.text) for c in index.chunks.values())
    hits = [[(p.doc_id, index.chunks[p.chunk_id].ordinal) for p in index.search(v, 3)]
            for v in embedder.encode(QUERIES)]
    return docs, chunks, hits


@pytest.fixture(scope="module")
def states(tmp_path_factory, embedder):
    """A library before and after a change (one document edited, two deleted, eight added),
    the index of the old one, and the fingerprints of both states."""
    base = tmp_path_factory.mktemp("crash")
    old_lib, new_lib = base / "old", base / "new"
    write_library(old_lib, list(range(10)))
    write_library(new_lib, [s for s in range(18) if s not in (8, 9)], changed=2)
    old_index = base / "old-index"
    complete(old_lib, old_index)
    reference = base / "new-index"
    shutil.copytree(old_index, reference)
    _, seconds = complete(new_lib, reference)
    old, new = fingerprint(old_index, embedder), fingerprint(reference, embedder)
    assert old != new and len(new[0]) == 16
    return {"base": base, "new_lib": new_lib, "old_index": old_index, "old": old, "new": new,
            "seconds": seconds}


def reset(index: Path, old_index: Path) -> None:
    shutil.rmtree(index, ignore_errors=True)
    shutil.copytree(old_index, index)


def kill_trials(states, embedder, trials: int, budget: float, seed: int) -> dict[str, int]:
    """Kill `rag index` at random moments; after each kill the index must be old or new."""
    rng = random.Random(seed)
    index = states["base"] / f"trials-{seed}"
    reset(index, states["old_index"])
    seen = {"old": 0, "new": 0, "trials": 0}
    deadline = time.monotonic() + budget
    for _ in range(trials):
        if time.monotonic() > deadline:
            break
        process = rag_index(states["new_lib"], index)
        # most kills land while reading, embedding or saving; some after the run has ended
        time.sleep(rng.uniform(0.15, 1.0) * states["seconds"])
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        state = fingerprint(index, embedder)
        assert state in (states["old"], states["new"]), "the index on disk is a mix of two states"
        seen["trials"] += 1
        if state == states["new"]:
            seen["new"] += 1
            reset(index, states["old_index"])  # start the change again
        else:
            seen["old"] += 1
    # whatever the kills left, a plain run finishes the change
    complete(states["new_lib"], index)
    assert fingerprint(index, embedder) == states["new"]
    assert not (index / ".resume").exists(), "the resume area is removed once the index is saved"
    print(f"{seen['trials']} kills: {seen['old']} left the old index, {seen['new']} the new one")
    return seen


def test_kills_leave_the_old_or_the_new_index(states, embedder):
    trials = int(os.environ.get("RAG_CRASH_TRIALS", "8"))
    seen = kill_trials(states, embedder, trials, budget=240, seed=1)
    assert seen["trials"] >= min(trials, 4), seen


@pytest.mark.slow
def test_fifty_kills_leave_the_old_or_the_new_index(states, embedder):
    seen = kill_trials(states, embedder, 50, budget=3600, seed=2)
    assert seen["trials"] >= 50, seen
    assert seen["old"] and seen["new"], f"both outcomes should occur in 50 kills: {seen}"


def test_killed_run_resumes_where_it_stopped(states, embedder):
    """Killed once some documents are embedded, the next run reuses their vectors."""
    index = states["base"] / "resume"
    reset(index, states["old_index"])
    process = rag_index(states["new_lib"], index)
    deadline = time.monotonic() + 300
    while len(list((index / ".resume").glob("*/*.npy"))) < 3:
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert fingerprint(index, embedder) == states["old"]
    out, _ = complete(states["new_lib"], index)
    resumed = int(out.split(" chunks resumed")[0].rsplit(" ", 1)[-1])
    embedded = int(out.split(" chunks embedded")[0].rsplit(" ", 1)[-1])
    assert resumed >= 3 and embedded > 0, out
    assert fingerprint(index, embedder) == states["new"]


def test_interrupted_refresh_resumes_in_process(fresh: Assistant, tmp_path: Path):
    """The same through the API: a refresh stopped by an exception (Ctrl+C) keeps what it
    embedded; vectors made with other settings are not reused."""
    fresh.documents()
    before = fingerprint(fresh.settings.index_dir, fresh.embedder)
    write_library(fresh.settings.corpus_dir, [40, 41, 42, 43])

    def interrupt(done: int, total: int) -> None:
        if done >= 12:
            raise KeyboardInterrupt

    batch_size = fresh.embedder.batch_size
    fresh.embedder.batch_size = 2  # checkpoints every 8 chunks
    try:
        with pytest.raises(KeyboardInterrupt):
            fresh.refresh(interrupt)
        assert list((fresh.settings.index_dir / ".resume").glob("*/*.npy"))
        assert fingerprint(fresh.settings.index_dir, fresh.embedder) == before
        report = fresh.refresh()
    finally:
        fresh.embedder.batch_size = batch_size
    assert report.chunks_resumed >= 4 and report.chunks_embedded > 0
    assert report.chunks_resumed + report.chunks_embedded == sum(
        d.chunks for d in fresh.documents() if d.id.startswith("doc"))
    assert not (fresh.settings.index_dir / ".resume").exists()
    assert fresh.search(QUERIES[0])[0].doc_id.startswith("doc")
