"""Metadata filters on retrieval: restrict the passages to some documents or a date range."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Where:
    """Passages must come from one of `doc_ids` (None: any) and carry a date within
    [`date_from`, `date_to`] (ISO dates, inclusive; a bound excludes undated documents)."""

    doc_ids: tuple[str, ...] | None = None
    date_from: str | None = None
    date_to: str | None = None

    def __post_init__(self) -> None:
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if value is not None and not _DATE.fullmatch(value):
                raise ValueError(f"{name} must be a date YYYY-MM-DD, not {value!r}")

    @classmethod
    def of(cls, doc_ids: Iterable[str] | None = None, date_from: str | None = None,
           date_to: str | None = None) -> Where | None:
        """A filter, or None when nothing restricts the search."""
        ids = tuple(doc_ids) if doc_ids is not None else None
        if ids is None and not date_from and not date_to:
            return None
        return cls(ids, date_from or None, date_to or None)

    def matches(self, doc_id: str, date: str | None) -> bool:
        if self.doc_ids is not None and doc_id not in self.doc_ids:
            return False
        if (self.date_from or self.date_to) and not date:
            return False
        if self.date_from and date < self.date_from:
            return False
        return not (self.date_to and date > self.date_to)
