"""The retrieval contract: a question in, the k best passages out, best first."""

from __future__ import annotations

from abc import ABC, abstractmethod

from ..filters import Where
from ..schema import Passage


class Retriever(ABC):
    @abstractmethod
    def run(self, query: str, k: int, where: Where | None = None) -> list[Passage]:
        """The k best passages for the query (among those `where` allows), best first."""
