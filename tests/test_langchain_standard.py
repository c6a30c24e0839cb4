"""LangChain's own standard retriever tests (`langchain-tests`' RetrieversIntegrationTests), run
against `Assistant.as_retriever()` over the real index: the suite every LangChain integration is
expected to pass. Nothing is skipped or overridden (its own `test_no_overrides_DO_NOT_OVERRIDE`
checks that)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests

from rag.retrieve.langchain import AssistantRetriever

NOTE = ("# Harbour notes\n\nThe lighthouse of Port Verity was painted teal in 1987 by its keeper, "
        "Alma Ruiz. The harbour office opens at eight.\n")


@pytest.fixture(scope="module")
def library_assistant(settings_factory, assistant, tmp_path_factory):
    """The seed article and one more note: three passages or more, so k=3 can be met."""
    from rag import Assistant

    own = Assistant(settings_factory("langchain-standard", generator="extractive"))
    own.__dict__["embedder"] = assistant.embedder
    note = tmp_path_factory.mktemp("langchain-note") / "harbour-notes.md"
    note.write_text(NOTE, encoding="utf-8")
    own.add([note])
    assert sum(d.chunks for d in own.documents()) >= 3
    return own


class TestAssistantRetriever(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _library(self, library_assistant) -> None:
        self.rag_assistant = library_assistant

    @property
    def retriever_constructor(self) -> type[AssistantRetriever]:
        return AssistantRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"assistant": self.rag_assistant, "k": 2}

    @property
    def retriever_query_example(self) -> str:
        return "Who attended the opening ceremony of the Winter Olympics?"


def test_the_standard_retriever_is_the_assistants(library_assistant):
    """What the standard suite ran against is the assistant's own retrieval, not a stand-in."""
    retriever = library_assistant.as_retriever(k=3)
    assert isinstance(retriever, AssistantRetriever)
    docs = retriever.invoke("Who painted the lighthouse of Port Verity?", k=1)
    assert len(docs) == 1 and docs[0].metadata["doc_id"] == "harbour-notes.md"
    assert docs[0].page_content == library_assistant.search(
        "Who painted the lighthouse of Port Verity?", 1)[0].text
