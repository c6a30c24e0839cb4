"""`rag eval`: the metrics against hand-computed values (and ranx, in the long run), and the
runners on small BEIR and SQuAD files with the real model and index."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from rag import evaluate as ev

# -- metrics ----------------------------------------------------------------------------------


def test_ndcg_graded_linear_gain_like_trec_eval():
    qrels = {"a": 2, "b": 1, "z": 0}
    run = {"x": 0.9, "b": 0.8, "a": 0.7, "z": 0.6}
    dcg = 1 / math.log2(3) + 2 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert ev.ndcg_at_k(qrels, run, 10) == pytest.approx(dcg / idcg)
    assert ev.ndcg_at_k(qrels, {"a": 1.0, "b": 0.5}, 10) == pytest.approx(1.0)
    assert ev.ndcg_at_k(qrels, {"x": 1.0}, 10) == 0.0
    # only the first k count
    assert ev.ndcg_at_k({"a": 1}, {f"d{i}": 1 - i / 100 for i in range(10)} | {"a": 0.0}, 10) == 0.0


def test_recall_and_mrr():
    qrels = {"a": 1, "b": 1, "c": 0}
    run = {"x": 0.9, "c": 0.8, "a": 0.7}
    assert ev.recall_at_k(qrels, run, 100) == 0.5
    assert ev.mrr_at_k(qrels, run, 10) == pytest.approx(1 / 3)
    assert ev.mrr_at_k(qrels, run, 2) == 0.0
    metrics = ev.retrieval_metrics({"q1": qrels, "q2": {"b": 1}, "q3": {"c": 0}}, {"q1": run})
    # q3 has no relevant document: not counted; q2 has no run: zero
    assert metrics["recall@100"] == pytest.approx(0.25)
    assert metrics["mrr@10"] == pytest.approx(1 / 6)


def test_ties_are_broken_by_document_id_descending_like_trec_eval():
    assert ev.mrr_at_k({"a": 1}, {"a": 0.5, "b": 0.5}, 10) == 0.5
    assert ev.mrr_at_k({"b": 1}, {"a": 0.5, "b": 0.5}, 10) == 1.0


def _random_run(seed: int = 0):
    rng = random.Random(seed)
    qrels, run = {}, {}
    for q in range(30):
        qrels[f"q{q}"] = {f"d{rng.randrange(200)}": rng.choice([1, 2]) for _ in range(rng.randint(1, 4))}
        run[f"q{q}"] = {f"d{d}": round(rng.random(), 3) for d in rng.sample(range(200), 150)}
    return qrels, run


@pytest.mark.slow
def test_retrieval_metrics_match_ranx():
    ranx = pytest.importorskip("ranx")  # heavy (numba); not in the test extra
    qrels, run = _random_run()
    theirs = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), ["ndcg@10", "recall@100", "mrr@10"])
    mine = ev.retrieval_metrics(qrels, run)
    for name, value in theirs.items():
        assert mine[name] == pytest.approx(float(value), abs=1e-9), name


def test_squad_normalisation_and_scores_as_the_official_script():
    assert ev.normalize_answer("The  Eiffel-Tower, in Paris!") == "eiffeltower in paris"
    assert ev.exact_match_score("the Denver Broncos", "Denver Broncos.")
    assert not ev.exact_match_score("Denver", "Denver Broncos")
    assert ev.f1_score("Denver", "Denver Broncos") == pytest.approx(2 / 3)
    assert ev.f1_score("", "Denver Broncos") == 0.0
    scores = ev.squad_scores({"1": "Broncos", "2": "in 1990"}, {"1": ["Denver Broncos", "Broncos"],
                                                                "2": ["1990"], "3": ["x"]})
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)


def test_write_section_keeps_the_other_sections(tmp_path: Path):
    doc = tmp_path / "EVAL.md"
    ev.write_section(doc, "a", "first A")
    ev.write_section(doc, "b", "only B")
    ev.write_section(doc, "a", "second A")
    text = doc.read_text()
    assert text.startswith("# Evaluation")
    assert "second A" in text and "only B" in text and "first A" not in text
    assert text.index("second A") < text.index("only B")


# -- runners on small files, real model and index ---------------------------------------------
CORPUS = {
    "d1": ("Photosynthesis", "Plants convert sunlight, water and carbon dioxide into glucose and oxygen."),
    "d2": ("Volcanoes", "Magma rises through the crust and erupts as lava, ash and volcanic gases."),
    "d3": ("Insulin", "The pancreas releases insulin, a hormone that lowers blood sugar levels."),
    "d4": ("Tides", "The gravitational pull of the moon causes the ocean tides on Earth."),
}
QUERIES = {"q1": "How do plants make sugar from light?", "q2": "What hormone reduces blood glucose?",
           "q3": "Why does the sea level rise and fall each day?"}
QRELS = {"q1": {"d1": 1}, "q2": {"d3": 2}, "q3": {"d4": 1}}


@pytest.fixture()
def beir(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": t, "text": x}) + "\n" for k, (t, x) in CORPUS.items()))
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": k, "text": q}) + "\n" for k, q in QUERIES.items()))
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, r in QRELS.items()
                                                 for d, s in r.items()))
    return folder


SQUAD = {"version": "1.1", "data": [
    {"title": "Moon", "paragraphs": [
        {"context": "The Moon orbits the Earth once every 27.3 days. Its gravity causes the tides.",
         "qas": [{"id": "m1", "question": "How many days does the Moon take to orbit the Earth?",
                  "answers": [{"text": "27.3 days", "answer_start": 37}]}]}]},
    {"title": "Insulin", "paragraphs": [
        {"context": "Insulin is made by the pancreas. It lowers the level of sugar in the blood.",
         "qas": [{"id": "i1", "question": "Which organ makes insulin?",
                  "answers": [{"text": "the pancreas", "answer_start": 19}]}]}]},
]}


def test_retrieval_on_a_small_beir_folder(beir: Path, tmp_path: Path, embedder):
    result = ev.evaluate_retrieval(beir, tmp_path / "work", progress=False, embedder=embedder)
    assert result.details["queries"] == 3 and result.details["documents"] == 4
    assert result.metrics["ndcg@10"] > 0.7 and result.metrics["recall@100"] == 1.0
    report = ev.retrieval_report(result, "rag eval retrieval --beir tiny")
    assert "| **this project" in report and "rag eval retrieval --beir tiny" in report
    # the second run reuses the index: nothing is embedded again
    again = ev.evaluate_retrieval(beir, tmp_path / "work", progress=False, embedder=embedder)
    assert again.metrics == result.metrics and again.details["index_seconds"] < 5


@pytest.mark.parametrize("mode", ["rc", "e2e"])
def test_qa_on_a_small_squad_file(mode: str, tmp_path: Path, embedder):
    squad = tmp_path / "tiny.json"
    squad.write_text(json.dumps(SQUAD))
    result = ev.evaluate_qa(squad, tmp_path / "work", mode, progress=False, embedder=embedder,
                            generator="extractive")
    assert result.details["questions"] == 2
    # "how many" gets its short answer (27.3), "which organ" the whole sentence: partial credit
    both = result.details["halves"]["all"]
    assert 0 < both["f1"] < 100 and both["refused"] == 0
    # the sentence answers hold the gold text even where the short answer is not exact
    assert both["answer holds gold"] == 100.0
    # one article per half, each question in exactly one
    halves = result.details["halves"]
    assert halves["tune"]["questions"] == halves["held-out"]["questions"] == 1
    if mode == "e2e":
        assert both["gold paragraph in top 4"] == 100.0
    assert "| **this project" in ev.qa_report(result, "rag eval qa")


def test_split_and_constructed_unanswerables():
    split = ev.split_articles(["b", "a", "c", "a"])
    assert split == {"a": "tune", "b": "held-out", "c": "tune"}
    assert ev.contains_gold("It is made by the pancreas.", ["the pancreas"])
    assert not ev.contains_gold("It is made by the pancreatic duct.", ["pancreas"])
    item = ev.SquadItem("q1", "What did Tesla build in 1891?", ["coil"],
                        "In 1891 Tesla built the Tesla coil in New York.", "T#0", "Tesla")
    article = [item.context, "Tesla moved to Colorado Springs in 1899 and to Paris later."]
    assert ev.swapped_question(item, article) == "What did Tesla build in 1899?"
    named = ev.SquadItem("q2", "Where did Edison live?", ["Menlo Park"],
                         "Edison lived at Menlo Park.", "T#1", "Tesla")
    swapped = ev.swapped_question(named, article + [named.context])
    assert swapped in ("Where did Tesla live?", "Where did Paris live?")
    assert ev.swapped_question(named, [named.context]) is None


def test_unanswerable_on_a_small_squad_file(tmp_path: Path, embedder):
    squad = tmp_path / "tiny.json"
    squad.write_text(json.dumps(SQUAD))
    result = ev.evaluate_unanswerable(squad, tmp_path / "work", progress=False, embedder=embedder,
                                      generator="extractive")
    both = result.details["halves"]["all"]
    # with its paragraph gone, neither question has an answer left: both refused
    assert both["refused: own paragraph removed"] == 100.0
    assert both["false refusals (answerable)"] == 0.0
    assert "refused (all unanswerables)" in ev.unanswerable_report(result, "rag eval qa --unanswerable")


def test_rag_eval_command_writes_its_section(beir: Path, tmp_path: Path, capsys):
    from rag.cli import main

    doc = tmp_path / "EVALUATION.md"
    ev.write_section(doc, "seed", "seed results stay")
    code = main(["eval", "retrieval", "--beir", str(beir), "--work", str(tmp_path / "w"),
                 "--write", str(doc), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "ndcg@10" in out and "rag eval retrieval --beir" in out
    text = doc.read_text()
    assert "seed results stay" in text and "<!-- eval:retrieval-tiny -->" in text
