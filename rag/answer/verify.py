"""Sentence-by-sentence verification of a full answer against the passages it cites.

A sentence is supported when one window of a passage (a sentence, or two adjacent ones) holds
it: every number, month and name it states appears there as written (a changed figure is never
supported), most of its content words are there (crudely stemmed), it negates nothing the window
affirms, and the embedding model finds the two similar above a threshold calibrated on XQuAD
claims (benchmarks/verify.py). A sentence that a passage other than the one it cites holds is
re-cited; one that no passage holds is unsupported. Sentences of a passage that address the
assistant ("ignore previous instructions") never support anything: they are data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..embed import Embedder
from ..schema import Passage, SentenceCheck
from ..text import STOP_WORDS, names, split_sentences, stem, words
from .reader import _INSTRUCTION

CITATION = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*)\]")
_MARKUP = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+|\*\*|__|^#+\s*")
_NUMBER = re.compile(r"\d+(?:[.,–-]\d+)*")
"""A number as written, a score or range ("23–16") whole: its parts alone prove nothing."""
_MONTHS = frozenset({
    "january", "february", "march", "april", "june", "july", "august", "september",
    "october", "november", "december",
})
_NUMBER_WORDS = frozenset({
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "twenty", "thirty", "forty", "fifty", "hundred", "thousand", "million", "billion",
})
_NEGATED = re.compile(r"(?:\b(?:not|never|no|without)|n't)\s+(\w+)", re.IGNORECASE)


def negations(text: str) -> set[str]:
    """What is negated: the stem of the word after each "not", "never", "n't"."""
    return {stem(w) for w in _NEGATED.findall(text)}
REFUSAL_PHRASES = re.compile(
    r"\b(?:documents?|passages?|sources?|context)\b[^.]{0,40}\b(?:do(?:es)?n[o']t|do(?:es)? not|"
    r"never)\b[^.]{0,20}\b(?:say|contain|hold|mention|answer|provide|include)", re.IGNORECASE)
"""The fixed phrase (and its usual variants) a model writes when the passages lack the answer."""


def clean(sentence: str) -> tuple[str, list[int]]:
    """The sentence without markdown and citation markers, and the numbers it cites."""
    cited: list[int] = []
    for group in CITATION.findall(sentence):
        cited += [int(n) for n in re.split(r"\s*,\s*", group) if n]
    text = CITATION.sub("", _MARKUP.sub("", sentence)).replace("**", "").strip()
    return text, sorted(set(cited))


def facts(sentence: str) -> list[str]:
    """What must appear as written: numbers, months and number words, and names."""
    found = _NUMBER.findall(sentence)
    found += [w for w in words(sentence) if w in _MONTHS or w in _NUMBER_WORDS]
    # a name opening the sentence counts too ("Medvedev arrived"), unless it is a plain word
    found += [n for n in names(sentence) if n.split()[0].lower() not in STOP_WORDS or " " in n]
    return found


def holds_facts(sentence_facts: list[str], window: str) -> bool:
    lower = window.lower()
    for fact in sentence_facts:
        if fact[0].isdigit():
            if not re.search(rf"(?<![\d.,–-]){re.escape(fact)}(?![\d]|[.,–-]\d)", window):
                return False
        elif not re.search(rf"\b{re.escape(fact.lower())}\b", lower):
            return False
    return True


def word_share(sentence: str, window: str) -> float:
    mine = {stem(w) for w in words(sentence) if w not in STOP_WORDS}
    if not mine:
        return 1.0
    return len(mine & {stem(w) for w in words(window)}) / len(mine)


@dataclass
class _Window:
    source: int
    start: int
    end: int
    text: str
    pair: bool = False


class Verifier:
    """Answer sentences + the passages -> one SentenceCheck per sentence."""

    def __init__(self, embedder: Embedder, threshold: float = 0.58, min_word_share: float = 0.6,
                 facts_in_one_sentence: bool = True):
        self.embedder = embedder
        self.facts_in_one_sentence = facts_in_one_sentence
        self.threshold = threshold
        self.min_word_share = min_word_share
        self._windows: list[_Window] = []
        self._vectors: np.ndarray | None = None
        self._key: tuple[int, ...] = ()

    def windows(self, passages: list[Passage]) -> list[_Window]:
        """Every sentence and every pair of adjacent sentences, instruction-like ones left out."""
        found: list[_Window] = []
        for n, passage in enumerate(passages, start=1):
            spans = [(s, e) for s, e in split_sentences(passage.text)
                     if not _INSTRUCTION.search(passage.text[s:e])]
            for i, (s, e) in enumerate(spans):
                found.append(_Window(n, s, e, passage.text[s:e]))
                if i + 1 < len(spans):
                    found.append(_Window(n, s, spans[i + 1][1], passage.text[s:spans[i + 1][1]], True))
        return found

    def _one_sentence_holds(self, wanted: list[str], i: int) -> bool:
        """Some single sentence of window i holds every number and date: a figure from the
        neighbouring sentence does not vouch for a claim that moved it. Names may be spread over
        the window ("Putin arrived ... After meeting Xi, he said ..."): pronouns join them."""
        wanted = [f for f in wanted if f[0].isdigit() or f.lower() in _MONTHS or f.lower() in _NUMBER_WORDS]
        if not wanted:
            return True
        window = self._windows[i]
        return any(holds_facts(wanted, w.text) for w in self._windows
                   if w.source == window.source and window.start <= w.start and w.end <= window.end
                   and (w.end - w.start) <= (window.end - window.start) and not self._is_pair(w))

    def _is_pair(self, w: _Window) -> bool:
        return w.pair

    def prepare(self, passages: list[Passage]) -> None:
        key = tuple(p.chunk_id for p in passages) + (hash(tuple(p.text for p in passages)),)
        if key == self._key and self._vectors is not None:
            return
        self._windows = self.windows(passages)
        self._vectors = (self.embedder.encode_recurring([w.text for w in self._windows])
                         if self._windows else np.zeros((0, 1)))
        self._key = key

    def score(self, text: str, windows: list[int]) -> list[tuple[float, int]]:
        """(similarity, window index) of the windows that hold the sentence's facts and words."""
        if not windows or self._vectors is None:
            return []
        wanted = facts(text)
        negated = negations(text)
        eligible = [i for i in windows
                    if holds_facts(wanted, self._windows[i].text)
                    and (not self.facts_in_one_sentence or self._one_sentence_holds(wanted, i))
                    and word_share(text, self._windows[i].text) >= self.min_word_share
                    and negated <= negations(self._windows[i].text)]
        if not eligible:
            return []
        vector = self.embedder.encode([text])[0]
        sims = self._vectors[eligible] @ vector
        return sorted(((float(s), i) for s, i in zip(sims, eligible)), reverse=True)

    def check(self, sentence: str, passages: list[Passage]) -> SentenceCheck:
        text, cited = clean(sentence)
        self.prepare(passages)
        record = SentenceCheck(text=text, cited=cited)
        if not text or not words(text):
            return record
        cited_windows = [i for i, w in enumerate(self._windows) if w.source in cited]
        other_windows = [i for i, w in enumerate(self._windows) if w.source not in cited]
        for pool in (cited_windows, other_windows):  # the cited passage first, then re-cite
            ranked = [(s, i) for s, i in self.score(text, pool) if s >= self.threshold]
            if ranked:
                best = self._windows[ranked[0][1]]
                record.supported = True
                record.sources = [best.source]
                record.spans = [(best.source, best.start, best.end)]
                return record
        return record

    def similarity(self, claim: str, passage: str) -> tuple[bool, float]:
        """For the benchmark: (facts and words held by some window, best similarity)."""
        p = Passage(0, "", "", "", None, passage, 0, len(passage), 0.0)
        self.prepare([p])
        ranked = self.score(clean(claim)[0], list(range(len(self._windows))))
        return (bool(ranked), ranked[0][0] if ranked else 0.0)

    def is_refusal(self, sentence: str) -> bool:
        return bool(REFUSAL_PHRASES.search(sentence)) or "don't say" in sentence.lower()
