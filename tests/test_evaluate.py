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


# -- the package and `rag eval compare` ---------------------------------------------------------
def test_the_package_keeps_the_names_benchmarks_and_tests_import():
    """rag/evaluate.py became a package: every name imported from it elsewhere still resolves."""
    import importlib
    import re

    from tests.conftest import ROOT

    sources = [p.read_text(encoding="utf-8") for folder in ("benchmarks", "tests", "rag", "ui")
               for p in (ROOT / folder).rglob("*.py")]
    imported = {name.strip().split(" as ")[0] for text in sources
                for names in re.findall(r"from rag\.evaluate import ([\w, ]+(?:as \w+)?)", text)
                for name in names.split(",")}
    used = {m for text in sources if "import evaluate as ev" in text
            for m in re.findall(r"\bev\.(\w+)\(", text)}
    assert {"_assistant", "_new_assistant", "load_beir", "write_section", "ndcg_at_k"} <= imported
    package = importlib.import_module("rag.evaluate")
    assert [n for n in sorted(imported | used) if not hasattr(package, n)] == []
    assert set(package.__all__) >= imported
    for module in ("metrics", "data", "runner", "retrieval", "qa", "seed", "report", "compare"):
        importlib.import_module(f"rag.evaluate.{module}")


def test_configurations_are_parsed_and_only_answer_settings_may_differ():
    from rag.evaluate.compare import DEFAULT_CONFIGURATIONS, Configuration, choose, percentile

    c = Configuration.parse("1.5B full=generator=qwen2.5-coder-1.5b-instruct, answer_style=full")
    assert c.label == "1.5B full"
    assert c.overrides == {"generator": "qwen2.5-coder-1.5b-instruct", "answer_style": "full"}
    assert Configuration.parse("as set=").overrides == {}
    with pytest.raises(ValueError, match="not an answer setting"):
        Configuration.parse("k8=top_k=8")  # retrieval must be the same for every configuration
    with pytest.raises(ValueError, match="unknown setting"):
        Configuration.parse("x=no_such_setting=1")
    with pytest.raises(ValueError, match="answer_style"):
        Configuration.parse("x=answer_style=long")
    with pytest.raises(ValueError, match="no label"):
        Configuration.parse("=generator=extractive")
    assert [c.label for c in DEFAULT_CONFIGURATIONS] == ["135M compact", "135M compact, 1.5B judge",
                                                         "0.5B excerpts", "1.5B excerpts"]
    assert [c.label for c in choose(DEFAULT_CONFIGURATIONS, ["1.5B excerpts"])] == ["1.5B excerpts"]
    with pytest.raises(ValueError, match="no configuration '2B'"):
        choose(DEFAULT_CONFIGURATIONS, ["2B"])
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0 and percentile([1.0] * 19 + [9.0], 95) == 1.0
    assert percentile([], 50) is None


def test_compare_help_lists_the_built_in_configurations(capsys):
    from rag.cli import main
    from rag.evaluate.compare import DEFAULT_CONFIGURATIONS

    with pytest.raises(SystemExit):
        main(["eval", "compare", "--help"])
    text = "".join(capsys.readouterr().out.split())  # argparse wraps even inside long words
    for c in DEFAULT_CONFIGURATIONS:
        assert "".join(f"'{c.label}' ({c.describe()})".split()) in text


COMPARE_SQUAD = {"version": "1.1", "data": [
    {"title": "Moon", "paragraphs": [
        {"context": "The Moon orbits the Earth once every 27.3 days. Its gravity causes the tides.",
         "qas": [{"id": "m1", "question": "How many days does the Moon take to orbit the Earth?",
                  "answers": [{"text": "27.3 days", "answer_start": 37}]}]},
        {"context": "Apollo 11 landed on the Moon in 1969. Neil Armstrong was the first to walk on it.",
         "qas": [{"id": "m2", "question": "In which year did Apollo 11 land on the Moon?",
                  "answers": [{"text": "1969", "answer_start": 32}]}]}]},
    {"title": "Insulin", "paragraphs": [
        {"context": "Insulin is made by the pancreas. It lowers the level of sugar in the blood.",
         "qas": [{"id": "i1", "question": "Which organ makes insulin?",
                  "answers": [{"text": "the pancreas", "answer_start": 19}]}]},
        {"context": "Frederick Banting discovered insulin in 1921 in Toronto, with Charles Best.",
         "qas": [{"id": "i2", "question": "Who discovered insulin in 1921?",
                  "answers": [{"text": "Frederick Banting", "answer_start": 0}]}]}]},
    {"title": "Volcano", "paragraphs": [
        {"context": "Mount Vesuvius erupted in the year 79 and buried the Roman city of Pompeii.",
         "qas": [{"id": "v1", "question": "Which city did Mount Vesuvius bury?",
                  "answers": [{"text": "Pompeii", "answer_start": 67}]}]},
        {"context": "Mount Etna in Sicily is the most active volcano in Europe; it erupted again in 2021.",
         "qas": [{"id": "v2", "question": "On which island is Mount Etna?",
                  "answers": [{"text": "Sicily", "answer_start": 14}]}]}]},
    {"title": "Nile", "paragraphs": [
        {"context": "The Nile is about 6,650 kilometres long and flows north into the Mediterranean Sea.",
         "qas": [{"id": "n1", "question": "How long is the Nile?",
                  "answers": [{"text": "about 6,650 kilometres", "answer_start": 12}]}]},
        {"context": "The Aswan High Dam on the Nile in Egypt was completed in 1970.",
         "qas": [{"id": "n2", "question": "When was the Aswan High Dam completed?",
                  "answers": [{"text": "1970", "answer_start": 57}]}]}]},
]}


def test_rag_eval_compare_runs_each_configuration_on_the_same_questions(tmp_path: Path, capsys):
    """Two configurations that run here (no LLM; the packaged SmolLM2, compact), one whose model
    does not exist and one whose server is down: those two are skipped with their reason, the
    others fill every column."""
    import re

    from rag.cli import main
    from rag.evaluate.compare import COLUMNS, Comparison

    squad = tmp_path / "tiny.json"
    squad.write_text(json.dumps(COMPARE_SQUAD))
    questions = tmp_path / "seed.json"
    questions.write_text(json.dumps({"questions": [
        {"q": "Which city did Putin arrive in?", "expect": ["Beijing"]},
        {"q": "Who did Putin have a face-to-face meeting with?", "expect": ["Xi"]},
        {"q": "What is the capital of Australia?", "expect": []}]}))
    doc, raw = tmp_path / "EVALUATION.md", tmp_path / "compare.json"
    ev.write_section(doc, "seed", "seed results stay")
    code = main(["eval", "compare", "--squad", str(squad), "--questions", str(questions),
                 "--work", str(tmp_path / "w"), "--limit", "6", "--unanswerable-limit", "4",
                 "--config", "extractive=generator=extractive",
                 "--config", "135M compact=generator=smollm2,answer_style=compact",
                 "--config", "missing=generator=no-such-model",
                 "--config", "down=generator=openai:m,openai_base_url=http://127.0.0.1:9/v1,"
                             "generator_retries=0,generator_timeout=2",
                 "--json", str(raw), "--write", str(doc), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    cpu = next(line for line in out.splitlines() if line.startswith("CPU: "))
    assert "speed flags" in cpu and " cores, " in cpu and re.search(r"\d{4}-\d\d-\d\d\.$", cpu)
    header = next(line for line in out.splitlines() if line.startswith("| configuration |"))
    assert [c.strip() for c in header.strip("|").split("|")][1:] == list(COLUMNS)
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ")}
    for label in ("**extractive** (extractive, compact)", "**135M compact** (smollm2, compact)"):
        cells = [c.strip() for c in rows[label].strip("|").split("|")][1:]
        assert len(cells) == len(COLUMNS) and "–" not in cells, cells
        assert cells[5].endswith("/2") and cells[6].endswith("/1")  # seed: right/asked
    assert "missing (skipped)" in rows and "unknown generator 'no-such-model'" in out
    assert "retrieval is identical: hybrid" in out
    assert "<!-- eval:compare-tiny -->" in doc.read_text() and "seed results stay" in doc.read_text()

    comparison = Comparison.load(raw)
    ran = {r.label: r for r in comparison.runs}
    assert ran["missing"].skipped.startswith("ValueError") and not ran["missing"].e2e
    assert ran["down"].skipped.startswith("failed while answering: GeneratorError") and not ran["down"].e2e
    # the held-out half of the file's four articles (sorted, alternately): Moon and Volcano, split
    # over every title of the file whatever the sample; the same questions for every configuration
    for label in ("extractive", "135M compact"):
        run = ran[label]
        assert [a.id for a in run.e2e] == [a.id for a in run.rc] == ["m1", "m2", "v1", "v2"]
        assert all(a.seconds >= a.first_text_seconds > 0 for a in run.e2e)
        assert all(a.prediction or a.refused for a in run.e2e) and len(run.seed) == 3
        assert run.unanswerable and all(isinstance(u.removed_refused, bool) for u in run.unanswerable)
    assert ran["extractive"].generator == "extractive" and comparison.machine["threads"] >= 1
    # the table is rebuilt from the JSON alone
    assert main(["eval", "compare", "--from-json", str(raw)]) == 0
    rebuilt = capsys.readouterr().out
    assert rebuilt.split("```sh")[0].strip() == out.split("```sh")[0].strip()
