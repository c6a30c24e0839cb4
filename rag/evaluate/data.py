"""The datasets as plain dataclasses: BEIR folders and SQuAD files, the split of XQuAD's articles
into a tune half and a held-out half, the questions spread over a file, and the constructed
unanswerables (a question with its key name or number swapped)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .metrics import Qrels

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATASETS = ROOT.parent / "shared" / "datasets"


# -- loaders ----------------------------------------------------------------------------------
@dataclass
class BeirData:
    corpus: dict[str, tuple[str, str]]
    """doc id -> (title, text)"""
    queries: dict[str, str]
    qrels: Qrels


def load_beir(folder: Path, split: str = "test") -> BeirData:
    folder = Path(folder)
    for name in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder} is not a BEIR folder: {name} is missing")
    corpus: dict[str, tuple[str, str]] = {}
    for row in _jsonl(folder / "corpus.jsonl"):
        corpus[str(row["_id"])] = (row.get("title") or "", row.get("text") or "")
    queries = {str(row["_id"]): row["text"] for row in _jsonl(folder / "queries.jsonl")}
    qrels: Qrels = {}
    with open(folder / "qrels" / f"{split}.tsv", encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or (n == 0 and not parts[2].lstrip("-").isdigit()):
                continue  # the header line
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return BeirData(corpus, queries, qrels)


@dataclass
class SquadItem:
    id: str
    question: str
    answers: list[str]
    context: str
    paragraph: str
    """Key of the paragraph: article title and position."""
    title: str


def load_squad(path: Path) -> list[SquadItem]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    items: list[SquadItem] = []
    for article in data["data"]:
        title = article.get("title", "")
        for p_no, paragraph in enumerate(article["paragraphs"]):
            key = f"{title}#{p_no}"
            for qa in paragraph["qas"]:
                golds = [a["text"] for a in qa.get("answers", [])]
                if golds:
                    items.append(SquadItem(str(qa["id"]), qa["question"], golds,
                                           paragraph["context"], key, title))
    return items


def paragraphs_of(items: Iterable[SquadItem]) -> dict[str, tuple[str, str]]:
    """Paragraph key -> (article title, text), in file order: the documents an end-to-end run
    indexes, one file each."""
    paragraphs: dict[str, tuple[str, str]] = {}
    for item in items:
        paragraphs.setdefault(item.paragraph, (item.title, item.context))
    return paragraphs


def articles_of(paragraphs: dict[str, tuple[str, str]]) -> dict[str, list[str]]:
    """Article title -> its paragraphs' texts: where `swapped_question` looks for a name or
    number of the same article that the question's own paragraph does not hold."""
    articles: dict[str, list[str]] = {}
    for title, text in paragraphs.values():
        articles.setdefault(title, []).append(text)
    return articles


HALVES = ("tune", "held-out")


def split_articles(titles: Iterable[str]) -> dict[str, str]:
    """Article title -> "tune" or "held-out": the titles sorted, alternately one and the other.
    Deterministic and by article, so nothing fitted on the tune half has seen a paragraph (or a
    question about a paragraph) of the held-out half; sorting makes it independent of file order.
    Give it every title of the file (`halves_of`): the titles of a sample alternate otherwise."""
    return {t: HALVES[n % 2] for n, t in enumerate(sorted(set(titles)))}


def halves_of(items: Iterable[SquadItem]) -> dict[str, str]:
    """The one split of a SQuAD file's articles, over all of its titles, whatever sample of its
    questions is asked. Split over the titles of a 200-question sample (40 of XQuAD's 48
    articles), 15 articles changed halves, so "held-out" figures of `rag eval qa` were partly
    measured on articles the fitted weights (fit over every title) had been tuned on."""
    return split_articles(i.title for i in items)


_NUMBER = re.compile(r"\b\d[\d,.]*\d\b|\b\d\b")


def _year(token: str) -> bool:
    return bool(re.fullmatch(r"1\d{3}|20\d{2}", token))


def swapped_question(item: SquadItem, article: list[str]) -> str | None:
    """The question with its key number or name replaced by another of the same type (a year by
    a year) from another paragraph of the same article, one its own paragraph does not hold: on
    topic and plausible, but the documents no longer answer it. None when nothing fits. The
    choice is seeded by the question id, so the set is the same every run."""
    import random
    import zlib

    from ..text import names

    own = item.context.lower()
    others = " ".join(c for c in article if c != item.context)
    rng = random.Random(zlib.crc32(item.id.encode()))
    for number in _NUMBER.findall(item.question):
        pool = sorted({n for n in _NUMBER.findall(others)
                       if n != number and n.lower() not in own and _year(n) == _year(number)})
        if pool:
            return re.sub(rf"\b{re.escape(number)}\b", rng.choice(pool), item.question, count=1)
    asked = item.question.lower()
    for name in names(item.question, sentence_starts=False):
        size = len(name.split())
        pool = sorted({n for n in names(others) if n.lower() not in own and n.lower() not in asked
                       and len(n.split()) == size and len(n) > 2})
        if pool:
            return item.question.replace(name, rng.choice(pool), 1)
    return None


def _jsonl(path: Path) -> Iterable[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _spread(items: list[SquadItem], limit: int | None) -> list[SquadItem]:
    # spread over the file: the first N would all be about one or two articles
    return items[:: max(1, len(items) // limit)][:limit] if limit else items
