"""The public faces: `from rag import ask`, the `rag` command, the LangChain retriever,
configuration, and the README's Python example."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rag import Settings
from tests.conftest import ROOT


def _run(args: list[str], settings: Settings, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, RAG_CORPUS_DIR=str(settings.corpus_dir), RAG_INDEX_DIR=str(settings.index_dir))
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True, env=env,
        timeout=timeout, cwd=ROOT,
    )


def test_cli_ask_answers_and_cites(settings_factory):
    settings = settings_factory("cli")
    out = _run(["ask", "Why did Putin travel to Beijing?"], settings)
    assert out.returncode == 0, out.stderr
    assert "Olympics" in out.stdout and "[1]" in out.stdout
    assert "Sources:" in out.stdout and "2022-02-04" in out.stdout
    out = _run(["ask", "--json", "-k", "2", "What is the capital of Australia?"], settings)
    data = json.loads(out.stdout)
    assert data["refused"] is True and data["answer"] == "The documents don't say."
    assert len(data["sources"]) <= 2


def test_cli_errors_are_sentences_not_tracebacks(settings_factory, tmp_path: Path):
    settings = settings_factory("cli-errors")
    out = _run(["ask", "  "], settings)
    assert out.returncode == 2 and "Please type a question" in out.stderr
    assert "Traceback" not in out.stderr
    assert _run(["index", "--quiet"], settings).returncode == 0
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4 nonsense")
    (tmp_path / "good.md").write_text("The observatory opened to visitors in 2019.")
    out = _run(["index", "--quiet", str(tmp_path / "bad.pdf"), str(tmp_path / "good.md")], settings)
    assert out.returncode == 0, out.stderr
    assert "skipped bad.pdf: not a readable PDF" in out.stderr
    assert "1 added" in out.stdout and "1 unchanged" in out.stdout
    out = _run(["list"], settings)
    assert "good.md" in out.stdout and "2022-02-04-xi-putin-meeting.txt" in out.stdout
    out = _run(["remove", "nope.txt"], settings)
    assert out.returncode == 1 and "no document 'nope.txt'" in out.stderr
    assert "Traceback" not in out.stderr


def test_cli_help_everywhere():
    for args in ([], ["index"], ["ask"], ["search"], ["list"], ["remove"], ["serve"], ["mcp"], ["config"],
                 ["models"], ["models", "install"]):
        out = subprocess.run([sys.executable, "-m", "rag.cli", *args, "--help"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and "usage: rag" in out.stdout


def test_langchain_retriever(assistant):
    from langchain_core.retrievers import BaseRetriever

    retriever = assistant.as_retriever(k=2)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("Who attended the opening ceremony of the Winter Olympics?")
    assert 1 <= len(docs) <= 2
    meta = docs[0].metadata
    assert "Winter Olympics" in docs[0].page_content
    assert meta["date"] == "2022-02-04" and meta["score"] > 0
    assert meta["doc_id"] == "2022-02-04-xi-putin-meeting.txt"


def test_settings_from_environment():
    s = Settings.from_env(env={"RAG_TOP_K": "7", "RAG_INDEX_DIR": "/tmp/x", "RAG_MIN_SCORE": "0.5"})
    assert (s.top_k, s.index_dir, s.min_score) == (7, Path("/tmp/x"), 0.5)
    assert Settings.from_env(env={"RAG_TOP_K": "7"}, top_k=3).top_k == 3
    with pytest.raises(ValueError, match="RAG_TOP_K|top_k"):
        Settings.from_env(env={"RAG_TOP_K": "many"})
    with pytest.raises(ValueError, match="chunk_overlap"):
        Settings.from_env(env={}, chunk_size=50, chunk_overlap=60)


def test_every_setting_is_documented_in_the_readme():
    from rag.config import describe

    readme = (ROOT / "README.md").read_text()
    missing = [var for var, _, _ in describe() if f"| `{var}` |" not in readme]
    assert not missing, f"add these to the README's configuration table: {missing}"


def test_secrets_are_not_printed_by_rag_config(tmp_path):
    env = dict(os.environ, RAG_OPENAI_API_KEY="sk-very-secret")
    out = subprocess.run([sys.executable, "-m", "rag.cli", "config"], capture_output=True, text=True,
                         env=env, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "RAG_OPENAI_API_KEY=***" in out.stdout and "sk-very-secret" not in out.stdout


def test_readme_python_examples_run(settings_factory):
    """The README's examples are run as written (in a fresh interpreter, on a copy of seeds/)."""
    readme = (ROOT / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
              if "http://127.0.0.1:7860" not in b]  # examples that need `rag serve`: see
    # test_ui_client (the page's HTTP API) and test_openai_api (the OpenAI-compatible API)
    assert len(blocks) >= 2, "README has python examples"
    settings = settings_factory("readme")
    env = dict(os.environ, RAG_CORPUS_DIR=str(settings.corpus_dir), RAG_INDEX_DIR=str(settings.index_dir),
               RAG_COLLECTIONS_DIR=str(settings.collections_dir))
    out = subprocess.run([sys.executable, "-c", "\n".join(blocks)], capture_output=True, text=True,
                         env=env, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "Olympics" in out.stdout and "The documents don't say." in out.stdout

