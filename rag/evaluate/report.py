"""The Markdown tables of each benchmark, next to published numbers, and `write_section`, which
rewrites one benchmark's section of docs/EVALUATION.md and leaves the others alone."""

from __future__ import annotations

from pathlib import Path

from .runner import Result

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
