"""Shared fixtures: the real embedding model, the real FAISS index, the real generator,
all offline. Each test that changes documents works on its own copy of the library."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
for _var in [v for v in os.environ if v.startswith("RAG_") and v != "RAG_CACHE_DIR"]:
    del os.environ[_var]  # tests define their own settings

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="run the long tests too")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow") or os.environ.get("RAG_SLOW_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="long run: use --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def settings_factory(tmp_path_factory: pytest.TempPathFactory):
    from rag import Settings

    def make(name: str, **overrides) -> Settings:
        base = tmp_path_factory.mktemp(name)
        corpus = base / "library"
        shutil.copytree(SEEDS, corpus)
        overrides.setdefault("collections_dir", base / "collections")  # never the checkout's
        return Settings.from_env(corpus_dir=corpus, index_dir=base / "index", **overrides)

    return make


@pytest.fixture(scope="session")
def assistant(settings_factory):
    """One assistant over the seed article with the default (LLM) generator, shared by the
    read-only tests."""
    from rag import Assistant

    return Assistant(settings_factory("shared"))


@pytest.fixture(scope="session")
def embedder(assistant):
    return assistant.embedder


@pytest.fixture()
def fresh(settings_factory, assistant):
    """An assistant on its own copy of the library, reusing the loaded models."""
    from rag import Assistant

    a = Assistant(settings_factory("fresh", generator="extractive"))
    a.__dict__["embedder"] = assistant.embedder
    return a


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory):
    """A real Milvus Lite server (`milvus-lite server`) on a free loopback port for the session."""
    from rag.store.milvus import lite_server

    with lite_server(tmp_path_factory.mktemp("milvus") / "data") as uri:
        yield uri


@pytest.fixture()
def backend(request):
    """(kind, constructor options) for the backend in `request.param` (parametrize indirectly):
    a fresh collection on the session's Milvus server for milvus, nothing for faiss."""
    import uuid

    kind = request.param
    if kind == "milvus":
        return kind, {"uri": request.getfixturevalue("milvus_uri"),
                      "collection": f"t{uuid.uuid4().hex[:12]}"}
    return kind, {}
