"""Evaluation: retrieval on BEIR-layout data, question answering on SQuAD-format data, and the
project's own seed question set. Used by `rag eval`; results go into docs/EVALUATION.md.

Metrics are computed the standard way and checked against `ranx` in the tests:

- nDCG@10 as pytrec_eval / BEIR: linear gain (the graded qrels score), log2 discount, ideal
  ranking from the judged relevant documents; Recall@100 and MRR@10 over documents judged
  relevant (score > 0); the mean is over the queries that have judgments.
- Exact match and F1 as the official SQuAD v1.1 script: lower case, punctuation and articles
  removed, whitespace collapsed; the best score over the gold answers, averaged, times 100.
"""

from __future__ import annotations

import json
import math
import re
import string
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Run = dict[str, dict[str, float]]
"""query id -> {doc id: score}"""
Qrels = dict[str, dict[str, int]]
"""query id -> {doc id: graded relevance}"""

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATASETS = ROOT.parent / "shared" / "datasets"


# -- retrieval metrics ------------------------------------------------------------------------
def _ranked(scores: dict[str, float]) -> list[str]:
    # trec_eval order: score descending, ties by document id descending
    return [d for d, _ in sorted(scores.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)]


def ndcg_at_k(qrels: dict[str, int], scores: dict[str, float], k: int = 10) -> float:
    ranked = _ranked(scores)[:k]
    dcg = sum(qrels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked) if qrels.get(d, 0) > 0)
    ideal = sorted((r for r in qrels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(qrels: dict[str, int], scores: dict[str, float], k: int = 100) -> float:
    relevant = {d for d, r in qrels.items() if r > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(_ranked(scores)[:k])) / len(relevant)


def mrr_at_k(qrels: dict[str, int], scores: dict[str, float], k: int = 10) -> float:
    for i, d in enumerate(_ranked(scores)[:k]):
        if qrels.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def retrieval_metrics(qrels: Qrels, run: Run) -> dict[str, float]:
    """Mean nDCG@10, Recall@100 and MRR@10 over the queries with relevant judgments."""
    queries = [q for q, judged in qrels.items() if any(r > 0 for r in judged.values())]
    if not queries:
        raise ValueError("no query has a relevant document in the qrels")
    totals = {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
    for q in queries:
        scores = run.get(q, {})
        totals["ndcg@10"] += ndcg_at_k(qrels[q], scores, 10)
        totals["recall@100"] += recall_at_k(qrels[q], scores, 100)
        totals["mrr@10"] += mrr_at_k(qrels[q], scores, 10)
    return {name: value / len(queries) for name, value in totals.items()}


# -- SQuAD v1.1 metrics (the official evaluation script) ----------------------------------------
def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace."""

    def remove_articles(text: str) -> str:
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text: str) -> str:
        return " ".join(text.split())

    def remove_punc(text: str) -> str:
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def f1_score(prediction: str, ground_truth: str) -> float:
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(prediction_tokens)
    recall = num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def exact_match_score(prediction: str, ground_truth: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def metric_max_over_ground_truths(metric: Callable[[str, str], Any], prediction: str,
                                  ground_truths: Iterable[str]) -> float:
    return max(float(metric(prediction, gt)) for gt in ground_truths)


def squad_scores(predictions: dict[str, str], answers: dict[str, list[str]]) -> dict[str, float]:
    """EM and F1 (0-100) over the questions in `answers`; a missing prediction scores 0."""
    em = f1 = 0.0
    for qid, golds in answers.items():
        pred = predictions.get(qid, "")
        em += metric_max_over_ground_truths(exact_match_score, pred, golds)
        f1 += metric_max_over_ground_truths(f1_score, pred, golds)
    n = len(answers)
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f1 / n}


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


HALVES = ("tune", "held-out")


def split_articles(titles: Iterable[str]) -> dict[str, str]:
    """Article title -> "tune" or "held-out": the titles sorted, alternately one and the other.
    Deterministic and by article, so nothing fitted on the tune half has seen a paragraph (or a
    question about a paragraph) of the held-out half; sorting makes it independent of file order."""
    return {t: HALVES[n % 2] for n, t in enumerate(sorted(set(titles)))}


def contains_gold(answer: str, golds: Iterable[str]) -> bool:
    """Does the answer hold one of the gold answers (both SQuAD-normalised)? What a reader of a
    sentence answer sees, where EM/F1 punish the sentence's other words."""
    text = f" {normalize_answer(answer)} "
    return any(f" {normalize_answer(g)} " in text for g in golds if normalize_answer(g))


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


# -- runners ----------------------------------------------------------------------------------
@dataclass
class Result:
    name: str
    metrics: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)


def _file_name(key: str, used: set[str]) -> str:
    from ..assistant import safe_filename

    base = safe_filename(key.replace("#", "-p")) or "doc"
    name, n = base, 1
    while name.lower() in used:
        n += 1
        name = f"{base}-{n}"
    used.add(name.lower())
    return name + ".txt"


def _write_corpus(folder: Path, docs: dict[str, tuple[str, str]]) -> dict[str, str]:
    """Each document as `<name>.txt` with its title as the first line; returns file -> doc id.
    Files already there with the same content are left alone (the index is reused)."""
    folder.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    mapping: dict[str, str] = {}
    for doc_id, (title, text) in docs.items():
        name = _file_name(doc_id, used)
        mapping[name] = doc_id
        body = f"{title}\n\n{text}\n" if title else f"{text}\n"
        path = folder / name
        if not path.exists() or path.read_text(encoding="utf-8") != body:
            path.write_text(body, encoding="utf-8")
    for stale in folder.glob("*.txt"):
        if stale.name not in mapping:
            stale.unlink()
    return mapping


def _new_assistant(corpus: Path, index: Path, embedder: Any = None, **settings: Any):
    from ..assistant import Assistant
    from ..config import Settings

    assistant = Assistant(Settings.from_env(corpus_dir=corpus, index_dir=index, **settings))
    if embedder is not None:  # an already loaded model (the tests share one)
        assistant.__dict__["embedder"] = embedder
    return assistant


def _assistant(work: Path, docs: dict[str, tuple[str, str]], progress: bool = True,
               embedder: Any = None, **settings: Any):
    mapping = _write_corpus(work / "corpus", docs)
    assistant = _new_assistant(work / "corpus", work / "index", embedder, **settings)
    bar = None

    def show(done: int, total: int) -> None:
        nonlocal bar
        if not progress:
            return
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="chunk", desc="embedding")
        bar.update(done - bar.n)

    try:
        assistant.refresh(show)
    finally:
        if bar is not None:
            bar.close()
    return assistant, mapping


def evaluate_retrieval(beir_dir: Path, work: Path, limit: int | None = None, depth: int = 100,
                       progress: bool = True, embedder: Any = None, compare: bool = False,
                       **settings: Any) -> Result:
    """Index the BEIR corpus with the assistant's own pipeline, retrieve for each judged query,
    and score documents by their best chunk. With `compare`, dense and hybrid variants are
    measured too, on the same index (the first row is the configured retrieval)."""
    from ..retrieve import DenseRetriever, HybridRetriever

    data = load_beir(beir_dir)
    qids = [q for q in data.qrels if q in data.queries]
    if limit:
        qids = qids[:limit]
    qrels = {q: data.qrels[q] for q in qids}
    started = time.perf_counter()
    settings.setdefault("generator", "extractive")  # not used: retrieval only
    assistant, mapping = _assistant(work, data.corpus, progress, embedder, **settings)
    index = assistant.index_data
    indexed = time.perf_counter() - started

    def measure(retriever: Any) -> tuple[dict[str, float], float]:
        run: Run = {}
        started = time.perf_counter()
        for qid in qids:
            scores: dict[str, float] = {}
            for p in retriever.run(data.queries[qid], depth * 3):
                doc = mapping.get(p.doc_id, p.doc_id)
                scores[doc] = max(scores.get(doc, float("-inf")), p.score)
            run[qid] = dict(sorted(scores.items(), key=lambda kv: -kv[1])[:depth])
        return retrieval_metrics(qrels, run), time.perf_counter() - started

    metrics, searched = measure(assistant.retriever)
    variants = [(retrieval_label(assistant), metrics)]
    if compare:
        emb, get = assistant.embedder, (lambda: index)
        others = [DenseRetriever(emb, get), HybridRetriever(emb, get, fusion="rrf")]
        others += [HybridRetriever(emb, get, fusion="convex", dense_weight=w) for w in (0.3, 0.5, 0.7)]
        for retriever in others:
            label = retrieval_label(assistant, retriever)
            if label != variants[0][0]:
                variants.append((label, measure(retriever)[0]))
    return Result(
        Path(beir_dir).name,
        metrics,
        {"queries": len(qids), "documents": len(data.corpus), "index_seconds": indexed,
         "search_seconds": searched, "retrieval": variants[0][0], "variants": variants,
         "chunks": len(index.chunks)},
    )


def retrieval_label(assistant: Any, retriever: Any = None) -> str:
    s = assistant.settings
    model = s.embedding_model.rsplit("/", 1)[-1]
    kind = getattr(retriever or assistant.retriever, "label", None) or f"dense {model}"
    return f"{kind}, chunks {s.chunk_size}/{s.chunk_overlap} tokens, best chunk per document"


_CITATIONS = re.compile(r"\s*\[\d+\]")


def answer_text(answer: Any) -> str:
    """What is scored: the short answer where there is one, else the answer without citation
    markers; a refusal is an empty answer."""
    if answer.refused:
        return ""
    return answer.short or _CITATIONS.sub("", answer.text).strip()


def _spread(items: list[SquadItem], limit: int | None) -> list[SquadItem]:
    # spread over the file: the first N would all be about one or two articles
    return items[:: max(1, len(items) // limit)][:limit] if limit else items


def _halves(items: list[SquadItem], per_item: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean of each per-question measure over the tune half, the held-out half and all."""
    split = split_articles(i.title for i in items)
    groups: dict[str, list[str]] = {"tune": [], "held-out": [], "all": []}
    for item in items:
        groups[split[item.title]].append(item.id)
        groups["all"].append(item.id)
    out: dict[str, dict[str, float]] = {}
    for name, ids in groups.items():
        if ids:
            keys = per_item[ids[0]].keys()
            out[name] = {k: 100.0 * sum(per_item[i][k] for i in ids) / len(ids) for k in keys}
            out[name]["questions"] = len(ids)
    return out


def evaluate_qa(squad_file: Path, work: Path, mode: str = "rc", limit: int | None = None,
                progress: bool = True, embedder: Any = None, **settings: Any) -> Result:
    """SQuAD EM/F1, and the share of answers holding the gold text, on the tune half and the
    held-out half of the articles (`split_articles`). `rc`: the reader gets the gold paragraph
    as its only passage. `e2e`: every paragraph is indexed and the assistant retrieves and
    answers."""
    from ..schema import Passage

    if mode not in ("rc", "e2e"):
        raise ValueError("mode is rc or e2e")
    items = _spread(load_squad(squad_file), limit)
    paragraphs = {}
    for item in load_squad(squad_file):
        paragraphs.setdefault(item.paragraph, (item.title, item.context))
    if mode == "e2e":
        assistant, mapping = _assistant(work, paragraphs, progress, embedder, **settings)
    else:  # no index: the reader alone
        assistant, mapping = _new_assistant(work / "corpus", work / "index", embedder, **settings), {}
    predictions: dict[str, str] = {}
    per_item: dict[str, dict[str, float]] = {}
    times: list[float] = []
    bar = _bar(progress, len(items), f"answering ({mode})")
    for item in items:
        started = time.perf_counter()
        if mode == "rc":
            passage = Passage(0, item.paragraph, item.title, "", None, item.context, 0,
                              len(item.context), 1.0)
            answer = assistant.reader.run(item.question, [passage])
        else:
            answer = assistant.ask(item.question)
        times.append(time.perf_counter() - started)
        predictions[item.id] = answer_text(answer)
        full = "" if answer.refused else _CITATIONS.sub("", answer.text)
        pred = predictions[item.id]
        scores = {"exact_match": metric_max_over_ground_truths(exact_match_score, pred, item.answers),
                  "f1": metric_max_over_ground_truths(f1_score, pred, item.answers),
                  "answer holds gold": float(contains_gold(full, item.answers)),
                  "refused": float(answer.refused)}
        if mode == "e2e":
            scores[f"gold paragraph in top {assistant.settings.top_k}"] = float(
                any(mapping.get(p.doc_id) == item.paragraph for p in answer.sources))
        per_item[item.id] = scores
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    halves = _halves(items, per_item)
    times.sort()
    return Result(
        Path(squad_file).name,
        {k: v for k, v in halves["held-out" if "held-out" in halves else "all"].items() if k != "questions"},
        {"questions": len(items), "paragraphs": len(paragraphs), "mode": mode, "halves": halves,
         "generator": assistant.settings.generator, "median_seconds": times[len(times) // 2],
         "predictions": predictions},
    )


def _bar(progress: bool, total: int, desc: str) -> Any:
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="question", desc=desc)


def evaluate_unanswerable(squad_file: Path, work: Path, limit: int | None = None, progress: bool = True,
                          embedder: Any = None, **settings: Any) -> Result:
    """Refusal of constructed unanswerables, end to end over every paragraph: each question
    asked (1) as it is (it should be answered: a refusal is a false refusal), (2) with its own
    paragraph taken out of the results (its chunks are dropped from a deeper search, as if it
    were not indexed: on topic, no answer), and (3) with its key name or number swapped
    (`swapped_question`). Reported on both halves of the articles."""
    items = _spread(load_squad(squad_file), limit)
    paragraphs: dict[str, tuple[str, str]] = {}
    articles: dict[str, list[str]] = {}
    for item in load_squad(squad_file):
        if item.paragraph not in paragraphs:
            paragraphs[item.paragraph] = (item.title, item.context)
            articles.setdefault(item.title, []).append(item.context)
    assistant, mapping = _assistant(work, paragraphs, progress, embedder, **settings)
    k = assistant.settings.top_k
    per_item: dict[str, dict[str, float]] = {}
    swapped_counts = Counter()
    examples: list[tuple[str, str, bool]] = []
    times: list[float] = []
    bar = _bar(progress, len(items), "answering (unanswerable)")
    for item in items:
        started = time.perf_counter()
        answered = assistant.ask(item.question)
        times.append(time.perf_counter() - started)
        deeper = assistant.retriever.run(item.question, 3 * k)
        without = [p for p in deeper if mapping.get(p.doc_id) != item.paragraph][:k]
        removed = assistant.reader.run(item.question, without)
        row = {"false refusals (answerable)": float(answered.refused),
               "refused: own paragraph removed": float(removed.refused)}
        swapped = swapped_question(item, articles[item.title])
        if swapped is not None:
            result = assistant.ask(swapped)
            row["refused: name or number swapped"] = float(result.refused)
            swapped_counts[item.id] = 1
            if len(examples) < 5:
                examples.append((item.question, swapped, result.refused))
        per_item[item.id] = row
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    halves: dict[str, dict[str, float]] = {}
    split = split_articles(i.title for i in items)
    for name in ("tune", "held-out", "all"):
        ids = [i.id for i in items if name == "all" or split[i.title] == name]
        if not ids:
            continue
        rows = [per_item[i] for i in ids]
        swaps = [r["refused: name or number swapped"] for r in rows if "refused: name or number swapped" in r]
        unanswerable = [r["refused: own paragraph removed"] for r in rows] + swaps

        def share(key: str, rows: list[dict[str, float]] = rows) -> float:
            return 100.0 * sum(r[key] for r in rows) / len(rows)

        halves[name] = {
            "refused (all unanswerables)": 100.0 * sum(unanswerable) / len(unanswerable),
            "refused: own paragraph removed": share("refused: own paragraph removed"),
            "refused: name or number swapped": 100.0 * sum(swaps) / len(swaps) if swaps else float("nan"),
            "false refusals (answerable)": share("false refusals (answerable)"),
            "questions": len(ids), "swapped": len(swaps),
        }
    times.sort()
    return Result(Path(squad_file).name,
                  {k: v for k, v in halves["held-out" if "held-out" in halves else "all"].items()
                   if k not in ("questions", "swapped")},
                  {"questions": len(items), "paragraphs": len(paragraphs), "mode": "unanswerable",
                   "halves": halves, "generator": assistant.settings.generator,
                   "median_seconds": times[len(times) // 2], "examples": examples})


def evaluate_seed(questions_file: Path, corpus: Path, work: Path, embedder: Any = None,
                  **settings: Any) -> Result:
    """The project's question set: answerable questions are right when the answer contains one
    of the expected phrases; unanswerable ones must be refused ('hard' ones counted apart)."""
    questions = json.loads(Path(questions_file).read_text(encoding="utf-8"))["questions"]
    assistant = _new_assistant(corpus, work / "index", embedder, **settings)
    counts = Counter()
    misses: list[str] = []
    answers: dict[str, str] = {}
    for item in questions:
        answer = assistant.ask(item["q"])
        answers[item["q"]] = answer_text(answer)
        if item["expect"]:
            ok = not answer.refused and any(e.lower() in answer.text.lower() for e in item["expect"])
            group = "answerable"
        else:
            ok = answer.refused
            group = "unanswerable (hard)" if item.get("hard") else "unanswerable"
        counts[group] += 1
        counts[group + " ok"] += ok
        if not ok:
            misses.append(item["q"])
    metrics = {g: 100.0 * counts[g + " ok"] / counts[g]
               for g in ("answerable", "unanswerable", "unanswerable (hard)") if counts[g]}
    return Result(Path(questions_file).name, metrics,
                  {"counts": dict(counts), "misses": misses, "generator": assistant.settings.generator,
                   "answers": answers})


# -- the report -------------------------------------------------------------------------------
PUBLISHED_RETRIEVAL = {
    "scifact": [
        ("BM25 (BEIR paper)", {"ndcg@10": 0.665, "recall@100": 0.886}),
        ("all-MiniLM-L6-v2 dense (public reports)", {"ndcg@10": 0.645, "recall@100": 0.925}),
        ("BM25 + MiniLM hybrid (two public reports)", {"ndcg@10": 0.713}),
    ],
}
PUBLISHED_QA = {
    "xquad.en.json": [
        ("multilingual BERT, gold paragraph (XQuAD paper)", {"f1": 83.5, "exact_match": 72.2}),
        ("XLM-R Large, gold paragraph", {"f1": 86.5, "exact_match": 75.7}),
        ("BERT-Large, gold paragraph", {"f1": 87.9, "exact_match": 77.1}),
    ],
}


def _fmt(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def table(rows: list[tuple[str, dict[str, float]]], columns: list[str], digits: int) -> str:
    lines = ["| system | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for label, metrics in rows:
        lines.append(f"| {label} | " + " | ".join(_fmt(metrics.get(c), digits) for c in columns) + " |")
    return "\n".join(lines)


def retrieval_report(result: Result, command: str) -> str:
    d = result.details
    rows = [(f"**this project (defaults)**: {d['retrieval']}", result.metrics)]
    rows += [(f"this project: {label}", m) for label, m in d.get("variants", [])[1:]]
    rows += PUBLISHED_RETRIEVAL.get(result.name.lower(), [])
    return (
        f"### Retrieval: {result.name} (BEIR layout)\n\n"
        f"{d['queries']} judged queries, {d['documents']} documents ({d['chunks']} chunks); "
        f"index ready in {d['index_seconds']:.0f} s (reused from the work folder when unchanged), "
        f"search {1000 * d['search_seconds'] / max(1, d['queries']):.0f} ms per query.\n\n"
        + table(rows, ["ndcg@10", "recall@100", "mrr@10"], 3)
        + f"\n\n```sh\n{command}\n```\n"
    )


def qa_report(result: Result, command: str) -> str:
    d = result.details
    if d["mode"] == "unanswerable":
        return unanswerable_report(result, command)
    mode = ("reading comprehension (gold paragraph given to the reader)" if d["mode"] == "rc"
            else f"end to end ({d['paragraphs']} paragraphs indexed, the assistant retrieves and answers)")
    columns = ["questions", "exact_match", "f1", "answer holds gold", "refused"]
    columns += [k for k in result.metrics if k.startswith("gold")]
    rows = [(f"**this project, {name} half**: generator {d['generator']}" if name != "all"
             else f"this project, all: generator {d['generator']}", m)
            for name, m in d["halves"].items()]
    if d["mode"] == "rc":
        rows += PUBLISHED_QA.get(result.name, [])
    return (
        f"### Question answering: {result.name}, {mode}\n\n"
        f"{d['questions']} questions; SQuAD v1.1 exact match and F1 (0-100) of the short answer "
        "(else the answer without citation markers), and the share of answers whose text holds "
        "the gold answer; a refusal scores 0. The articles are split in two by title (sorted, "
        "alternately): weights are fitted on the tune half only, the held-out half is the figure "
        f"to quote. Median {d['median_seconds']:.2f} s per question.\n\n"
        + table(rows, columns, 1)
        + f"\n\n```sh\n{command}\n```\n"
    )


def unanswerable_report(result: Result, command: str) -> str:
    d = result.details
    columns = ["questions", "swapped", "refused (all unanswerables)", "refused: own paragraph removed",
               "refused: name or number swapped", "false refusals (answerable)"]
    rows = [(f"**{name} half**" if name != "all" else "all", m) for name, m in d["halves"].items()]
    examples = "\n".join(f"- “{q}” → “{s}”: {'refused' if r else 'answered'}" for q, s, r in d["examples"])
    return (
        f"### Refusal of constructed unanswerables: {result.name}, end to end\n\n"
        f"{d['questions']} questions over {d['paragraphs']} indexed paragraphs, generator "
        f"{d['generator']}. Each is asked as it is (a refusal is a false refusal), with its own "
        "paragraph removed from the results, and, where the question has a name or number "
        "that another paragraph of its article can replace, with that swapped in (“swapped” "
        f"counts those). Median {d['median_seconds']:.2f} s per question.\n\n"
        + table(rows, columns, 1)
        + f"\n\nSwapped questions, first few:\n{examples}\n\n```sh\n{command}\n```\n"
    )


def seed_report(result: Result, command: str) -> str:
    c = result.details["counts"]
    lines = [f"### The seed question set ({result.name})\n",
             f"Generator {result.details['generator']}; share of questions handled right.\n",
             "| questions | count | right |", "|---|---|---|"]
    for group, value in result.metrics.items():
        lines.append(f"| {group} | {c[group]} | {value:.0f} % ({c[group + ' ok']}) |")
    if result.details["misses"]:
        lines.append("\nMissed: " + "; ".join(f"“{q}”" for q in result.details["misses"]))
    lines.append(f"\n```sh\n{command}\n```\n")
    return "\n".join(lines)


HEADER = """# Evaluation

Measured by `rag eval` on public data, next to published numbers. Each section below is
written by the command shown under it (running one benchmark leaves the others alone).
The datasets are read from `../shared/datasets/` (see its README); they are not part of
this repository.
"""


def write_section(path: Path, key: str, body: str, prefix: str = "eval", header: str = HEADER) -> None:
    """Replace (or append) the part of `path` between the markers `<!-- prefix:key -->`, so
    each benchmark rewrites its own section and leaves the others alone."""
    start, end = f"<!-- {prefix}:{key} -->", f"<!-- /{prefix}:{key} -->"
    text = path.read_text(encoding="utf-8") if path.exists() else header
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
