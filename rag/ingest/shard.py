"""Splitting a library between parallel `rag index --shard i/n` workers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Shard:
    """Worker `number` of `count` (1-based) takes the documents whose id hashes to it: every
    document goes to exactly one worker, whatever order the workers list the files in."""

    number: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        number, sep, count = text.partition("/")
        try:
            shard = cls(int(number), int(count))
        except ValueError:
            shard = None
        if not sep or shard is None or not 1 <= shard.number <= shard.count:
            raise ValueError(f"--shard takes I/N with 1 <= I <= N (1/4, say), not {text!r}")
        return shard

    def __call__(self, doc_id: str) -> bool:
        digest = hashlib.sha256(doc_id.encode()).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.number - 1

    def __str__(self) -> str:
        return f"{self.number}/{self.count}"
