"""Constrained decoding that copies: the model may only write a span of the given texts, word
for word, so a short answer is always a literal phrase of the evidence and never a paraphrase.

Why: a 135M model asked for "a few words" paraphrases ("chart a new future" for "chart the
future") and a word check cannot tell a paraphrase from a changed claim. With the mask, each
step's choice is among the tokens that continue some span of the evidence (from the start of
a word, the first letter in either case), plus the end of the reply once a word is complete;
the model still decides which span, greedily.

The mask works on text, not on the evidence's own token ids: the model may spell the same
span with other tokens ("Beijing" as one piece or two), and every spelling is allowed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..machine import write_atomic
from .base import Copy

log = logging.getLogger(__name__)

__all__ = ["Copy", "CopySpan", "Vocabulary", "cached_vocabulary"]


@dataclass
class Vocabulary:
    """The text of every token id of a tokenizer, indexed by that text (built once per model)."""

    pieces: list[str]
    by_piece: dict[str, list[int]] = field(default_factory=dict)
    longest: int = 1

    def __post_init__(self) -> None:
        for token, piece in enumerate(self.pieces):
            if piece and "\ufffd" not in piece:  # part of a multi-byte character: never matched
                self.by_piece.setdefault(piece, []).append(token)
        self.longest = max((len(p) for p in self.by_piece), default=1)


VOCABULARY_FORMAT = 1


def cached_vocabulary(cache_dir: Path | None, name: str, size: int,
                      piece: Callable[[int], str]) -> Vocabulary:
    """The model's vocabulary, kept as JSON in the cache folder under `name` and used again while
    it still matches (its size and a sample of pieces asked afresh). Why: asking a tokenizer for
    49,152 pieces one by one took 0.22 s with llama.cpp on an AVX2 EPYC, all of it in the first
    answer of a cold `rag ask`; reading them back 0.03 s."""
    sample = sorted({0, size // 3, 2 * size // 3, size - 1}) if size else []
    digest = hashlib.sha1(name.encode()).hexdigest()[:16]
    path = cache_dir / "vocabulary" / f"{digest}.json" if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            kept = json.loads(path.read_text(encoding="utf-8"))
            pieces = kept["pieces"]
            if (kept.get("format") == VOCABULARY_FORMAT and kept.get("name") == name
                    and len(pieces) == size and all(pieces[i] == piece(i) for i in sample)):
                return Vocabulary(pieces)
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            pass  # unreadable or stale: asked again and written anew
    pieces = [piece(t) for t in range(size)]
    if path is not None:
        try:
            write_atomic(path, json.dumps({"format": VOCABULARY_FORMAT, "name": name,
                                           "pieces": pieces}))
        except OSError as exc:  # a read-only cache costs the next process 0.2 s, nothing more
            log.info("vocabulary not cached in %s: %s", path.parent, exc)
    return Vocabulary(pieces)


def _starts(text: str) -> list[int]:
    """Where the words of `text` begin."""
    return [i for i, c in enumerate(text) if c.isalnum() and (i == 0 or not text[i - 1].isalnum())]


def _word(text: str, i: int) -> str:
    j = i
    while j < len(text) and text[j].isalnum():
        j += 1
    return text[i:j]


class CopySpan:
    """The tokens allowed next so that the reply stays a copy of a span of `texts`."""

    def __init__(self, copy: Copy, vocabulary: Vocabulary, ends: Sequence[int]):
        self.texts = [" ".join(t.split()) for t in copy.texts if t.strip()]
        skip = {w.lower() for w in copy.skip}
        self.starts = [[i for i in _starts(text) if _word(text, i).lower() not in skip]
                       for text in self.texts]
        """Where a copy may begin: any word but those in `skip` (the question's own words and
        function words: a span that opens with them restates the question)."""
        self.vocabulary = vocabulary
        self.ends = list(ends)
        self.bonus = copy.end_bonus
        self.words = 0
        self.states: list[tuple[int, int]] = []
        """(text, position) pairs the reply so far ends at; empty until a word is written."""
        self.started = False

    def allowed(self) -> list[int]:
        """Token ids that keep the reply a copy; the end tokens once it ends on a word's end."""
        by_piece, longest = self.vocabulary.by_piece, self.vocabulary.longest
        found: set[int] = set()
        if not self.started:
            for t, text in enumerate(self.texts):
                for i in self.starts[t]:
                    rest = text[i:i + longest]
                    for variant in {rest, rest[:1].upper() + rest[1:], rest[:1].lower() + rest[1:]}:
                        for head in (variant, " " + variant):
                            for k in range(1, len(head) + 1):
                                found.update(by_piece.get(head[:k], ()))
            return sorted(found) or list(self.ends)  # no word may open a copy: an empty reply
        ended = False
        for t, j in self.states:
            text = self.texts[t]
            rest = text[j:j + longest]
            for k in range(1, len(rest) + 1):
                found.update(by_piece.get(rest[:k], ()))
            ended = ended or j == len(text) or not text[j].isalnum()
        if ended or not found:
            found.update(self.ends)
        return sorted(found)

    def advance(self, token: int) -> None:
        """Follow the token the model chose."""
        piece = self.vocabulary.pieces[token] if 0 <= token < len(self.vocabulary.pieces) else ""
        if not self.started:
            head = piece.lstrip(" ")
            if not head:
                return
            self.started = True
            self.words = 1
            self.states = [(t, i + len(head)) for t, text in enumerate(self.texts) for i in self.starts[t]
                           if text[i:i + len(head)].lower() == head.lower()
                           and text[i + 1:i + len(head)] == head[1:]]
            return
        self.states = [(t, j + len(piece)) for t, j in self.states if self.texts[t].startswith(piece, j)]
        self.words += piece.startswith(" ")

    def end_boost(self) -> float:
        """What the end tokens' logits get added at this step (`Copy.end_bonus` per word)."""
        return self.bonus * self.words
