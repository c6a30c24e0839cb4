"""LangChain integration: the assistant's retrieval as a `BaseRetriever`, held to LangChain's own
standard retriever tests (`langchain-tests`, tests/test_langchain_standard.py)."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever


class AssistantRetriever(BaseRetriever):
    """Drops into any LangChain chain; metadata carries title, date, path, offsets, score.

    `k` is the number of passages, set at construction or per call (`invoke(query, k=2)`), the
    parameter LangChain's standard tests expect."""

    assistant: Any
    k: int = 4

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[LCDocument]:
        return [
            LCDocument(
                page_content=p.text,
                metadata={
                    "doc_id": p.doc_id,
                    "title": p.title,
                    "source": p.path,
                    "date": p.date,
                    "start": p.start,
                    "end": p.end,
                    "score": p.score,
                    "chunk_id": p.chunk_id,
                },
            )
            for p in self.assistant.search(query, k or self.k)
        ]
