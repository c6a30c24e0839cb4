"""Evaluation: retrieval on BEIR-layout data, question answering on SQuAD-format data, and the
project's own seed question set. Used by `rag eval`; results go into docs/EVALUATION.md.

One module per concern, so a benchmark script takes what it needs without the rest:
metrics.py (retrieval metrics, the official SQuAD v1.1 EM/F1), data.py (loaders, the article
halves, constructed unanswerables), runner.py (the work folder and its assistant), one runner
per benchmark (retrieval.py, qa.py, seed.py), compare.py (answer configurations side by side:
`rag eval compare`) and report.py (tables, `write_section`). The names are re-exported here:
`from rag.evaluate import ...` keeps working for benchmarks/ and tests/.
"""

from __future__ import annotations

from .compare import (
    DEFAULT_CONFIGURATIONS,
    Comparison,
    Configuration,
    ConfigurationRun,
    compare_configurations,
    compare_report,
)
from .data import (
    DEFAULT_DATASETS,
    HALVES,
    ROOT,
    BeirData,
    SquadItem,
    _jsonl,
    _spread,
    articles_of,
    halves_of,
    load_beir,
    load_squad,
    paragraphs_of,
    split_articles,
    swapped_question,
)
from .metrics import (
    _CITATIONS,
    Qrels,
    Run,
    answer_text,
    contains_gold,
    exact_match_score,
    f1_score,
    metric_max_over_ground_truths,
    mrr_at_k,
    ndcg_at_k,
    normalize_answer,
    recall_at_k,
    retrieval_metrics,
    squad_scores,
)
from .qa import _halves, evaluate_qa, evaluate_unanswerable
from .report import (
    HEADER,
    PUBLISHED_QA,
    PUBLISHED_RETRIEVAL,
    qa_report,
    retrieval_report,
    seed_report,
    table,
    unanswerable_report,
    write_section,
)
from .retrieval import evaluate_retrieval, retrieval_label
from .runner import Result, _assistant, _bar, _new_assistant, _write_corpus
from .seed import evaluate_seed

__all__ = [
    "DEFAULT_CONFIGURATIONS", "DEFAULT_DATASETS", "HALVES", "HEADER", "PUBLISHED_QA",
    "PUBLISHED_RETRIEVAL", "ROOT", "BeirData", "Comparison", "Configuration", "ConfigurationRun",
    "Qrels", "Result", "Run", "SquadItem", "answer_text", "articles_of",
    "compare_configurations", "compare_report",
    "contains_gold", "evaluate_qa", "evaluate_retrieval", "evaluate_seed", "evaluate_unanswerable",
    "exact_match_score", "f1_score", "load_beir", "load_squad", "metric_max_over_ground_truths",
    "mrr_at_k", "ndcg_at_k", "normalize_answer", "paragraphs_of", "qa_report",
    "recall_at_k", "retrieval_label",
    "retrieval_metrics", "retrieval_report", "seed_report", "split_articles", "halves_of", "squad_scores",
    "swapped_question", "table", "unanswerable_report", "write_section",
    # private, but imported by scripts in benchmarks/
    "_CITATIONS", "_assistant", "_bar", "_halves", "_jsonl", "_new_assistant", "_spread",
    "_write_corpus",
]
