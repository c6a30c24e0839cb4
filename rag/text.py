"""Words, stems, stop words, sentences and names: the one copy every step uses, so that the
reader, the follow-up rewriter and the short-answer finder agree on what a word is."""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
"""Lower-cased words; hyphenated compounds stay one word ("china-russia")."""

STOP_WORDS = frozenset(
    """a an the of to in on at for by with from and or but is are was were be been being has have
    had do does did done this that these those it its their theirs them they he she his her hers
    him we our you your i me my as into about over under after before between during while since
    until than then so such which who whom whose what when where why how will would can could
    should may might shall both each other all any few more most some only own same too very just
    also there here not no up down out again further once s t said says say tell please else answer
    answers""".split()
)
"""Words that carry no content of their own. Number words ("one", "two") are not among them:
a changed figure must count as a changed word."""

QUESTION_WORDS = frozenset(
    """what who whom whose which when where why how is are was were do does did can could should
    would will has have had in on at of to for according tell list name give please and but so the
    a an""".split()
)
"""Words that shape a question rather than say what it is about."""


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def stem(word: str) -> str:
    """A crude stem, the first five letters: "traveled" and "travel" meet, and it never needs a
    dictionary. Retrieval uses a real stemmer (Snowball, rag/store/lexical.py)."""
    return word.lower().strip(".,'’")[:5]


def content_words(text: str) -> list[str]:
    """The words that carry meaning (no stop words or pronouns), lower-cased."""
    return [w for w in words(text) if w not in STOP_WORDS]


# -- sentences ----------------------------------------------------------------------------------
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])|\n\s*\n|\n(?=\s*[-*•#])")
_SENTENCE_DONE = re.compile(r"[.!?][\"'”’)\]]*$")
_NOT_AN_END = re.compile(r"(\b[A-Z]|\d|\b(?:Mr|Mrs|Ms|Dr|St|vs|etc|e\.g|i\.e))\.$")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans (start, end) in `text`; good enough for news and reports. A piece of fewer
    than two words (a list bullet, a stray number) is not a sentence."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for match in _SENTENCE_END.finditer(text):
        _add_span(text, pos, match.start(), spans)
        pos = match.end()
    _add_span(text, pos, len(text), spans)
    return spans


def _add_span(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if len(words(stripped)) >= 2:
        lead = len(piece) - len(piece.lstrip())
        spans.append((start + lead, start + lead + len(stripped)))


def sentence_complete(text: str) -> bool:
    """Does the text end a sentence? Not after "U.S.", "Dr." or "2." (abbreviations, lists)."""
    text = text.rstrip()
    return bool(_SENTENCE_DONE.search(text)) and not _NOT_AN_END.search(text)


# -- names --------------------------------------------------------------------------------------
_TOKEN = re.compile(r"[A-Za-z0-9][\w'’\-]*|[^\w\s]")
_NAME_WORD = re.compile(r"^[A-Z][\w'’\-]*$")
_POSSESSIVE = re.compile(r"['’]s?$")
CONNECTORS = frozenset({"of", "de", "von", "van", "al", "bin", "the"})
"""Lower-case words that may sit inside a name ("Duke of Normandy"), never at its end."""
PRONOUNS = frozenset({"he", "she", "him", "his", "her", "hers", "himself", "herself", "it", "its",
                       "they", "them", "their", "theirs", "themselves", "there", "this", "that",
                       "these", "those", "then"})
"""Words that point back to something named earlier."""


def name_tokens(text: str) -> list[str]:
    """Words (case kept, apostrophes and hyphens inside) and punctuation marks, as `names` reads them."""
    return _TOKEN.findall(text)


def names(text: str, sentence_starts: bool = True) -> list[str]:
    """Runs of capitalised words that are not a question word nor a pronoun: the people, places
    and things a text is about ("Putin", "Xi Jinping", "Duke of Normandy"). A possessive is
    dropped ("Xi's" -> "Xi"). With `sentence_starts=False` the first word of a sentence never
    opens a name: in a question it is the question's shape ("Describe ...", "Explain ...")."""
    tokens = name_tokens(text)
    found: list[str] = []
    run: list[str] = []

    def close() -> None:
        while run and run[-1].lower() in CONNECTORS:
            run.pop()
        if run:
            name = " ".join(run)
            if name not in found:
                found.append(name)
        run.clear()

    for i, tok in enumerate(tokens):
        first = i == 0 or tokens[i - 1] in {".", "?", "!", ":", '"'}
        word = _POSSESSIVE.sub("", tok) if _NAME_WORD.match(tok) else tok
        lower = word.lower()
        capitalised = bool(_NAME_WORD.match(word)) and len(word) > 1
        opens = not first or (sentence_starts and lower not in QUESTION_WORDS)
        if capitalised and (run or (opens and lower not in QUESTION_WORDS)):
            run.append(word)
            if word != tok:  # "Xi's plan": the name ends at the possessive
                close()
        elif run and lower in CONNECTORS:
            run.append(word)
        else:
            close()
    close()
    return [n for n in found if n.lower() not in PRONOUNS]
