"""Follow-up questions: rewrite "When did he arrive?" into a question that stands alone
("When did Putin arrive?") using the conversation so far, before retrieval.

The generator is asked first; its rewrite is kept only when it passes a guard (one question,
keeps every word of the follow-up, adds only words found in the conversation, and actually
resolves the reference). Otherwise a rule-based rewrite replaces the pronoun with a name from
the previous question, and if even that is not possible the follow-up is searched together
with the names from the previous question.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..text import PRONOUNS, content_words, name_tokens, names, stem, words

log = logging.getLogger(__name__)

_FOLLOW_UP_OPENERS = re.compile(r"^\s*(and|also|what about|how about|and what about)\b", re.I)
_AUXILIARIES = {"did", "does", "do", "was", "were", "is", "are", "has", "have", "had", "will",
                "would", "can", "could", "should"}
_DEMONYM = re.compile(r"(ese|ian|ish|ican)$")

SYSTEM = (
    "Rewrite the follow-up question so that it can be understood without the conversation: "
    "replace he, she, it, they and similar words with the names they refer to. "
    "Reply with the rewritten question only."
)
EXAMPLE = (
    "Previous question: Why did Merkel visit Paris?\nFollow-up: What did she sign there?",
    "What did Merkel sign in Paris?",
)


@dataclass
class Turn:
    """One exchange of the conversation."""

    question: str
    """As the user typed it."""
    standalone: str = ""
    """As it was searched (the rewrite); empty means the same as `question`."""
    answer: str = ""

    @property
    def searched(self) -> str:
        return self.standalone or self.question


@dataclass
class Rewrite:
    question: str
    standalone: str
    method: str
    """`unchanged`, `generated` (the generator's rewrite passed the guard), `resolved` (a
    pronoun replaced by a name from the conversation) or `context` (names appended)."""

    @property
    def changed(self) -> bool:
        return self.standalone.strip() != self.question.strip()


def as_turns(history: Iterable[Any]) -> list[Turn]:
    """Turns from Turn objects, (question, answer) pairs or dicts with those keys."""
    turns: list[Turn] = []
    for item in history or []:
        if isinstance(item, Turn):
            turns.append(item)
        elif isinstance(item, dict):
            question = str(item.get("question") or "")
            if question:
                turns.append(Turn(question, str(item.get("standalone") or ""),
                                  str(item.get("answer") or "")))
        elif isinstance(item, list | tuple) and len(item) >= 1 and item[0]:
            turns.append(Turn(str(item[0]), "", str(item[1]) if len(item) > 1 and item[1] else ""))
    return turns


def needs_context(question: str) -> bool:
    """Does the question point back into the conversation (pronouns, "and ...", too short)?"""
    tokens = words(question)
    if any(t in PRONOUNS for t in tokens):
        return True
    if _FOLLOW_UP_OPENERS.match(question):
        return True
    return not content_words(question)


def _subject(question: str, candidates: list[str]) -> str | None:
    """The name right after the auxiliary ("Why did Putin ..."), else the first name."""
    if not candidates:
        return None
    tokens = name_tokens(question)
    for i, tok in enumerate(tokens[:-1]):
        if tok.lower() in _AUXILIARIES:
            rest = " ".join(tokens[i + 1:])
            for name in candidates:
                if rest.startswith(name):
                    return name
    return candidates[0]


class QuestionRewriter:
    """History + follow-up -> standalone question. `generator` may be None (rules only)."""

    def __init__(self, generator: Any | None = None, max_new_tokens: int = 24,
                 max_words: int = 40):
        self.generator = generator
        self.max_new_tokens = max_new_tokens
        self.max_words = max_words

    def rewrite(self, question: str, history: Sequence[Any]) -> Rewrite:
        question = question.strip()
        turns = as_turns(history)
        if not turns or not needs_context(question):
            return Rewrite(question, question, "unchanged")
        previous = turns[-1]
        if self.generator is not None:
            try:
                draft = self.generator.generate(self.messages(question, previous),
                                                self.max_new_tokens)
            except Exception:  # a failed rewrite must not fail the question
                log.warning("question rewrite failed; using the rules", exc_info=True)
                draft = ""
            candidate = self.check(draft, question, turns)
            if candidate:
                return Rewrite(question, candidate, "generated")
            log.debug("rewrite %r rejected for %r", draft, question)
        resolved = self.resolve(question, previous)
        if resolved:
            return Rewrite(question, resolved, "resolved")
        context = [n for n in names(previous.searched) if n.lower() not in question.lower()]
        if not context:
            context = content_words(previous.searched)[:4]
        if not context:
            return Rewrite(question, question, "unchanged")
        return Rewrite(question, f"{question.rstrip()} ({', '.join(context)})", "context")

    @staticmethod
    def messages(question: str, previous: Turn) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": EXAMPLE[0]},
            {"role": "assistant", "content": EXAMPLE[1]},
            {"role": "user",
             "content": f"Previous question: {previous.searched}\nFollow-up: {question}"},
        ]

    def check(self, draft: str, question: str, turns: list[Turn]) -> str | None:
        """The generator's rewrite if it is a plausible standalone version of the follow-up."""
        lines = [line.strip() for line in (draft or "").strip().splitlines() if line.strip()]
        if not lines:
            return None
        text = re.sub(r"^(rewritten question|question|follow-up)\s*:\s*", "", lines[0], flags=re.I)
        text = text.strip().strip('"“”').strip()
        if not text.endswith("?") or not 3 <= len(text.split()) <= self.max_words:
            return None
        lowered = text.lower()
        if lowered == question.lower():
            return None
        if any(lowered == t.searched.lower() or lowered == t.question.lower() for t in turns):
            return None  # the model repeated an earlier question instead of the follow-up
        mine = {stem(w) for w in content_words(text)}
        # every content word of the follow-up is kept ...
        if any(stem(w) not in mine for w in content_words(question)):
            return None
        # ... and every added word comes from the conversation, not from the model's memory
        known = {stem(w) for w in content_words(question)}
        for turn in turns[-3:]:
            known |= {stem(w) for w in content_words(f"{turn.searched} {turn.answer}")}
        if any(w not in known for w in mine):
            return None
        # ... and the reference is resolved: fewer pointing words, or a name was brought in
        before = sum(1 for w in words(question) if w in PRONOUNS)
        after = sum(1 for w in words(text) if w in PRONOUNS)
        brought = [n for n in names(" ".join(t.searched for t in turns[-3:]))
                   if n.lower() in lowered and n.lower() not in question.lower()]
        if after >= before and not brought:
            return None
        return text

    @staticmethod
    def resolve(question: str, previous: Turn) -> str | None:
        """Replace pronouns with names from the previous question; None if none could be."""
        asked = previous.searched
        candidates = [n for n in names(asked)
                      if n.lower() not in question.lower() and not _DEMONYM.search(n)]
        if not candidates:
            return None
        subject = _subject(asked, candidates)
        objects = [n for n in candidates if n != subject]
        pair = re.search(r"([A-Z][\w'’\-]*(?: [A-Z][\w'’\-]*)*) and ([A-Z][\w'’\-]*(?: [A-Z]"
                         r"[\w'’\-]*)*)", asked)
        group = f"{pair.group(1)} and {pair.group(2)}" if pair else next(
            (n for n in candidates if n.endswith("s")), None)
        answered = [n for n in names(previous.answer) if n not in candidates]
        if group is None and subject and answered:
            group = f"{subject} and {answered[0]}"  # "Who did Putin meet?" "Xi" -> they
        tokens = re.split(r"(\W+)", question)
        changed = False
        for i, tok in enumerate(tokens):
            low = tok.lower()
            followed = i + 2 < len(tokens) and tokens[i + 2].strip() != ""
            replacement: str | None = None
            if low in {"he", "she", "him"}:
                replacement = subject
            elif low == "his" or (low == "her" and followed):
                replacement = f"{subject}'s"
            elif low == "her":
                replacement = subject
            elif low in {"they", "them"}:
                replacement = group
            elif low == "their" and group:
                replacement = f"{group}'s"
            elif low == "it" and objects:
                replacement = objects[-1]
            elif low == "there" and objects:
                replacement = f"in {objects[-1]}"
            if replacement:
                tokens[i] = replacement
                changed = True
        if not changed:
            return None
        text = "".join(tokens)
        return text[0].upper() + text[1:]
