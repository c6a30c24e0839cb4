"""The short answer inside an answer sentence: the words that answer the question, not the
words that repeat it ("Who is the General Manager?" -> "John Elway", not the whole sentence).

No reading-comprehension model ships offline, so this is the classic typed-span heuristic:
the question's wh-word says what kind of phrase answers it (a number, a date, a name, a
place); the candidates are the runs of the sentence that the question does not already hold;
the best is the run of the right kind nearest to the question's words. Measured on XQuAD in
docs/EVALUATION.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..text import STOP_WORDS, stem


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_TOKEN = re.compile(r"[\w][\w'’.,%°$£€-]*[\w%°]|[\w%°$£€]")
_NUMBER_WORDS = _wordset(
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety "
    "hundred thousand million billion trillion dozen half twice once first second third"
)
_MONTHS = _wordset(
    "january february march april may june july august september october november december "
    "monday tuesday wednesday thursday friday saturday sunday"
)
_GLUE = _wordset("of the a an and de von van du la le in for on at to")
"""Words that may sit inside an answer phrase ("Duke of Normandy") but never at its edges."""
_KINDS = (
    ("number", re.compile(r"^(how (many|much|old|long|far|large|big|tall|high|often|fast)|what (was |is )?"
                          r"(the )?(percentage|percent|number|amount|proportion|population))\b")),
    ("date", re.compile(r"^(when|what (year|date|month|day|century|decade|time|era|period)|in (what|which) "
                        r"(year|month|century|decade))\b")),
    ("name", re.compile(r"^(who|whom|whose)\b")),
    ("place", re.compile(r"^(where|in (what|which) (city|country|state|region|place|town))\b")),
)


@dataclass(frozen=True)
class _Token:
    text: str
    start: int
    end: int
    in_question: bool


def kind_of(question: str) -> str:
    """number, date, name, place or other: what a right answer looks like."""
    q = question.strip().lower()
    q = re.sub(r"^(and|so|but|then|ok|also)\s+", "", q)
    for kind, pattern in _KINDS:
        if pattern.search(q):
            return kind
    body = re.search(r"\b(how (many|much|old|long)|when|who|where)\b", q)  # "In 2010, who ...?"
    if body:
        return kind_of(q[body.start():])
    return "other"


def _tokens(text: str, question: str) -> list[_Token]:
    asked = {stem(w) for w in _TOKEN.findall(question)}
    return [_Token(m.group(), m.start(), m.end(), stem(m.group()) in asked) for m in _TOKEN.finditer(text)]


def _runs(tokens: list[_Token]) -> list[tuple[int, int]]:
    """Maximal [i, j) runs of tokens the question does not hold, trimmed of glue at the edges."""
    runs: list[tuple[int, int]] = []
    i = 0
    while i < len(tokens):
        if tokens[i].in_question:
            i += 1
            continue
        j = i
        while j < len(tokens) and not tokens[j].in_question:
            j += 1
        a, b = i, j
        while a < b and tokens[a].text.lower() in STOP_WORDS:
            a += 1
        while b > a and tokens[b - 1].text.lower() in STOP_WORDS:
            b -= 1
        if a < b:
            runs.append((a, b))
        i = j
    return runs


def _is_number(word: str) -> bool:
    return bool(re.search(r"\d", word)) or word.lower() in _NUMBER_WORDS


def _is_date(word: str) -> bool:
    return (bool(re.fullmatch(r"(1[0-9]|20)\d\d(s|-\d\d-\d\d)?|\d{1,2}(st|nd|rd|th)?", word))
            or word.lower() in _MONTHS)


def _capitalised(word: str) -> bool:
    return word[:1].isupper() or word[:1].isdigit()


def _typed(tokens: list[_Token], a: int, b: int, kind: str) -> tuple[int, int] | None:
    """The part of run [a, b) that has the asked kind, or None."""
    if kind == "other":
        return a, b
    test = {"number": _is_number, "date": _is_date}.get(kind)
    if test is None:  # names and places: capitalised words, glue allowed inside
        test = _capitalised
    hits = [k for k in range(a, b) if test(tokens[k].text)]  # runs never start with a stop word
    if not hits:
        return None
    first = last = hits[0]
    for k in hits[1:]:  # the first group of the kind, glue words may join it
        if all(tokens[m].text.lower() in _GLUE or test(tokens[m].text) for m in range(last + 1, k)):
            last = k
        else:
            break
    if kind == "number":  # "308 points", "12 %": keep the unit word after a number
        after = tokens[last + 1].text if last + 1 < b else ""
        if after.isalpha() and after.lower() not in STOP_WORDS:
            last += 1
        if first > a and tokens[first - 1].text.lower() in ("about", "over", "nearly", "almost", "around"):
            first -= 1
    if kind == "date":
        while first > a and _is_date(tokens[first - 1].text):
            first -= 1
    return first, last + 1


def short_answer(question: str, text: str) -> str | None:
    """The phrase of `text` that answers `question`, or None when nothing in it fits."""
    tokens = _tokens(text, question)
    if not tokens:
        return None
    kind = kind_of(question)
    unit = re.search(r"\bhow (?:many|much) (\w+)", question.lower())
    anchors = [k for k, t in enumerate(tokens) if t.in_question and t.text.lower() not in STOP_WORDS]
    best: tuple[float, int, int] | None = None
    for a, b in _runs(tokens):
        typed = _typed(tokens, a, b, kind)
        if typed is None:
            continue
        a, b = typed
        distance = min((min(abs(k - a), abs(k - (b - 1))) for k in anchors), default=0)
        length = b - a
        score = -distance - 0.3 * max(0, length - 4)
        if kind == "number":
            if b < len(tokens) and unit and stem(tokens[b].text) == stem(unit.group(1)):
                score += 2.0  # "how many agreements?" -> the number right before "agreements"
            if re.search(r"\d", tokens[a].text):
                score += 0.5
        if kind == "other":
            if any(_capitalised(t.text) for t in tokens[max(a, 1):b]):
                score += 1.0  # "which party?": names answer most which/what questions
            if length == 1 and not _capitalised(tokens[a].text):
                score -= 1.0  # a lone common word is rarely the whole answer
        if best is None or score > best[0]:
            best = (score, a, b)
    if best is None:
        return None
    _, a, b = best
    return text[tokens[a].start: tokens[b - 1].end].strip(" ,;:")


_REASON = re.compile(r"\b(?:in order to|so as to|so that|because(?: of)?|due to|owing to|as a result of|"
                     r"since|to)\s+(?=\w)", re.IGNORECASE)
_CLAUSE_END = re.compile(r"[,;:.!?](?:\s|$)|\s[–—-]\s")


def asks_why(question: str) -> bool:
    return re.match(r"^\s*(?:(?:and|so|but)\s+)?(?:why\b|for what (?:reason|purpose)\b)",
                    question.lower()) is not None


def reason_clause(question: str, text: str) -> str | None:
    """For a why-question, the clause of `text` that gives the reason ("to attend the opening
    ceremony of the 2022 Winter Olympics", "because ..."), or None: a short answer must answer,
    and "Friday, Putin arrived in Beijing" is no reason. A bare "to" counts only right after the
    question's own words ("arrived in Beijing to attend"): "ready to work" is no purpose."""
    asked = {stem(w) for w in _TOKEN.findall(question)} - {stem(w) for w in STOP_WORDS}
    for match in _REASON.finditer(text):
        if match.group().strip().lower() == "to":
            before = [stem(w) for w in _TOKEN.findall(text[: match.start()])][-3:]
            if not asked.intersection(before):
                continue
        end = _CLAUSE_END.search(text, match.end())
        clause = text[match.start(): end.start() if end else len(text)].strip()
        said = [w for w in _TOKEN.findall(clause)[1:] if w.lower() not in STOP_WORDS]
        if said and any(stem(w) not in asked for w in said):
            return clause
    return None
