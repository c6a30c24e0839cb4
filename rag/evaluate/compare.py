"""`rag eval compare`: the same questions answered by several answer configurations (a generator,
an answer style, ...), in one table.

Why one command: a model is chosen for how it trades answers against refusals and time, and
those figures only compare when every configuration answers the same questions over the same
index on the same machine. So only answer-step settings may differ (`ANSWER_SETTINGS`): the
SQuAD paragraphs are indexed once and the embedder is loaded once, shared by every
configuration; each configuration's generator is loaded, used for all four benchmarks (end to
end, reading comprehension, constructed unanswerables, the seed set), and freed before the next
one loads (a 1.5B model takes ~1.2 GB). The per-question results can be kept as JSON (`--json`),
to rebuild the table (`--from-json`) or to compare answers between configurations.
"""

from __future__ import annotations

import datetime
import gc
import json
import logging
import math
import os
import re
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .data import SquadItem, _spread, articles_of, halves_of, load_squad, paragraphs_of, swapped_question
from .metrics import answer_text
from .qa import gold_passage, gold_retrieved, qa_scores, refused_without_own_paragraph
from .runner import _assistant, _bar, _new_assistant
from .seed import seed_check, seed_questions

log = logging.getLogger(__name__)

ANSWER_SETTINGS = frozenset({
    "generator", "answer_style", "short_answers", "refusal", "max_answer_tokens", "max_new_tokens",
    "verify_threshold", "min_score", "fallback_min_score", "evidence_sentences", "sentence_ranking",
    "full_min_parameters", "llamacpp_weights", "generator_dtype", "generator_replicas",
    "openai_base_url", "ollama_url", "generator_timeout", "generator_retries", "judge",
    "excerpt_sentences",
})
"""Settings a configuration may change: how the retrieved passages are read and answered. The
rest (embedding, chunks, store, retrieval, threads) is the same for all, or the figures would
not compare. An API key is not among them: a configuration is printed in the report and kept
in the JSON, so a key comes from the environment (RAG_OPENAI_API_KEY)."""

SPEED_FLAGS = re.compile(r"avx|amx|vnni|bf16")
"""The CPU flags that decide how fast the models run (the ones .ci/run prints)."""

HALF_CHOICES = ("held-out", "tune", "all")


@dataclass
class Configuration:
    """A label and the answer settings it changes; the settings in force give the rest."""

    label: str
    overrides: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Configuration:
        """`LABEL=key=value,key=value`, as given to `--config` (`LABEL=`: the settings in force)."""
        label, _, rest = text.partition("=")
        label = label.strip()
        if not label:
            raise ValueError(f"configuration {text!r} has no label: write LABEL=key=value,key=value")
        overrides: dict[str, str] = {}
        for pair in (p.strip() for p in rest.split(",")):
            if not pair:
                continue
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"configuration {label!r}: {pair!r} is not key=value")
            overrides[key.strip()] = value.strip()
        config = cls(label, overrides)
        config.check()
        return config

    def check(self) -> None:
        """Only answer-step settings, with values the settings accept (a model that cannot be
        loaded is found later, and skips the configuration instead of stopping the run)."""
        from ..config import Settings

        names = {f.name for f in fields(Settings)}
        for key in self.overrides:
            if key not in names:
                raise ValueError(f"configuration {self.label!r}: unknown setting {key!r}")
            if key not in ANSWER_SETTINGS:
                allowed = ", ".join(sorted(ANSWER_SETTINGS))
                raise ValueError(f"configuration {self.label!r}: {key} is not an answer setting; only "
                                 f"these may differ between configurations: {allowed}")
        Settings.from_env(**self.overrides)

    def describe(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.overrides.items()) or "the settings in force"


DEFAULT_CONFIGURATIONS = (
    Configuration("135M compact", {"generator": "smollm2", "answer_style": "compact"}),
    Configuration("135M compact, 1.5B judge", {"generator": "smollm2", "answer_style": "compact",
                                               "judge": "qwen2.5-coder-1.5b-instruct"}),
    Configuration("0.5B excerpts", {"generator": "qwen2.5-coder-0.5b-instruct", "answer_style": "excerpts"}),
    Configuration("1.5B excerpts", {"generator": "qwen2.5-coder-1.5b-instruct", "answer_style": "excerpts"}),
)


def choose(configurations: Sequence[Configuration], only: Sequence[str] | None) -> list[Configuration]:
    """The configurations named by `--only` (all when none is), in their own order."""
    labels = [c.label for c in configurations]
    if len(set(labels)) != len(labels):
        raise ValueError(f"two configurations have the same label: {', '.join(labels)}")
    unknown = [name for name in only or () if name not in labels]
    if unknown:
        raise ValueError(f"no configuration {', '.join(map(repr, unknown))}; there are: {', '.join(labels)}")
    return [c for c in configurations if not only or c.label in only]


# -- per-question results (what --json keeps) -----------------------------------------------------
@dataclass
class Asked:
    """One SQuAD question answered end to end (e2e) or from its gold paragraph (rc)."""

    id: str
    question: str
    golds: list[str]
    answer: str
    """The answer as shown, citation markers included; the refusal's text when refused."""
    prediction: str
    """What is scored: the short answer, else the answer without citations; "" when refused."""
    refused: bool
    exact_match: float
    f1: float
    holds_gold: bool
    seconds: float
    first_text_seconds: float | None = None
    """e2e: from the question to the first text the stream shows (the answer itself when the
    stream shows nothing before it)."""
    gold_retrieved: bool | None = None
    """e2e: the question's own paragraph was among the retrieved passages."""


@dataclass
class Unanswered:
    """One constructed unanswerable: the question with its own paragraph removed, and with its
    key name or number swapped where one could be."""

    id: str
    question: str
    removed_refused: bool
    swapped: str | None = None
    swapped_refused: bool | None = None


@dataclass
class SeedAsked:
    question: str
    group: str
    """answerable, unanswerable or unanswerable (hard)"""
    right: bool
    answer: str


@dataclass
class ConfigurationRun:
    """One configuration's answers to every question, or why it has none."""

    label: str
    overrides: dict[str, str]
    skipped: str = ""
    """Why it was not measured: its generator could not be made, or failed while answering."""
    generator: str = ""
    answer_style: str = ""
    """The style it resolved to (auto gives compact or full by the model's size)."""
    e2e: list[Asked] = field(default_factory=list)
    rc: list[Asked] = field(default_factory=list)
    unanswerable: list[Unanswered] = field(default_factory=list)
    seed: list[SeedAsked] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConfigurationRun:
        run = cls(**{k: v for k, v in data.items() if k not in ("e2e", "rc", "unanswerable", "seed")})
        run.e2e = [Asked(**a) for a in data.get("e2e", [])]
        run.rc = [Asked(**a) for a in data.get("rc", [])]
        run.unanswerable = [Unanswered(**u) for u in data.get("unanswerable", [])]
        run.seed = [SeedAsked(**s) for s in data.get("seed", [])]
        return run

    def figures(self) -> dict[str, float | str | None]:
        """The table's row: shares in %, F1 0-100, seed counts right/asked, seconds."""
        unanswerable = [u.removed_refused for u in self.unanswerable]
        unanswerable += [bool(u.swapped_refused) for u in self.unanswerable if u.swapped is not None]
        seconds = [a.seconds for a in self.e2e]
        first = [a.first_text_seconds for a in self.e2e if a.first_text_seconds is not None]
        return {
            "e2e answer contains gold %": _percent(a.holds_gold for a in self.e2e),
            "e2e short-answer F1": _percent(a.f1 for a in self.e2e),
            "rc F1": _percent(a.f1 for a in self.rc),
            "unanswerables refused %": _percent(unanswerable),
            "false refusals %": _percent(a.refused for a in self.e2e),
            "seed answerable right": _right(s for s in self.seed if s.group == "answerable"),
            "seed unanswerable right": _right(s for s in self.seed if s.group != "answerable"),
            "answer p50 s": percentile(seconds, 50),
            "answer p95 s": percentile(seconds, 95),
            "first text p50 s": percentile(first, 50),
        }


def _percent(values: Iterable[float]) -> float | None:
    """100 x the mean: the share of true flags in %, or a 0-1 score (F1) on 0-100."""
    values = list(values)
    return 100.0 * sum(values) / len(values) if values else None


def _right(items: Iterable[SeedAsked]) -> str:
    asked = list(items)
    return f"{sum(s.right for s in asked)}/{len(asked)}"


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile: a time one of the questions actually took."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class Comparison:
    """Everything one `rag eval compare` measured: enough to rebuild its table."""

    squad: str
    half: str
    limit: int | None
    unanswerable_limit: int | None
    questions: str
    paragraphs: int
    machine: dict[str, Any]
    command: str
    runs: list[ConfigurationRun]
    retrieval: str = ""
    """The retrieval every configuration shared."""

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Comparison:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        data["runs"] = [ConfigurationRun.from_dict(r) for r in data["runs"]]
        return cls(**data)


def machine_facts(threads: int) -> dict[str, Any]:
    """The CPU model and its speed flags, the cores, the threads the models were given and the
    date: the latency columns mean nothing without them."""
    from ..machine import cpu_info

    model, flags = cpu_info()
    return {"cpu": model, "flags": [f for f in flags if SPEED_FLAGS.search(f)], "cores": os.cpu_count(),
            "threads": threads, "date": datetime.date.today().isoformat()}


# -- the run ------------------------------------------------------------------------------------
def in_half(items: list[SquadItem], half: str, split: dict[str, str]) -> list[SquadItem]:
    """The questions of one half of the file's articles (`halves_of`: the split every fit and
    `rag eval qa` use), so the held-out figures are the ones it reports."""
    if half not in HALF_CHOICES:
        raise ValueError(f"half is one of {', '.join(HALF_CHOICES)}")
    if half == "all":
        return items
    return [i for i in items if split[i.title] == half]


def compare_configurations(configurations: Sequence[Configuration], squad_file: Path, questions_file: Path,
                           seed_corpus: Path, work: Path, limit: int | None = 200, half: str = "held-out",
                           unanswerable_limit: int | None = None, progress: bool = True,
                           embedder: Any = None, command: str = "", save_to: Path | None = None,
                           **settings: Any) -> Comparison:
    """Answer the same questions with each configuration in turn. `settings`: what all share
    (the configurations' own settings go on top). `save_to`: the JSON, written again after each
    configuration, so an interrupted run keeps the configurations it finished. The SQuAD
    paragraphs are indexed in `work/squad-<name>/` and the seed library in `work/seed/`, the
    folders `rag eval qa` and `rag eval seed` use by default, so an index built by one is reused
    by the other."""
    all_items = load_squad(squad_file)
    split = halves_of(all_items)
    items = in_half(_spread(all_items, limit), half, split)
    unanswerable = in_half(_spread(all_items, unanswerable_limit or limit), half, split)
    if not items:
        raise ValueError(f"no question of the {half} half among the {limit} chosen: raise --limit")
    paragraphs = paragraphs_of(all_items)
    articles = articles_of(paragraphs)
    questions = seed_questions(questions_file)
    squad_work = work / f"squad-{Path(squad_file).stem}"
    indexed, mapping = _assistant(squad_work, paragraphs, progress, embedder,
                                  **{**settings, "generator": "extractive"})
    embedder = indexed.embedder  # loaded once, shared by every configuration
    threads = indexed.settings.threads
    retrieval = shared_retrieval(indexed)
    indexed.close()
    del indexed
    comparison = Comparison(Path(squad_file).name, half, limit, unanswerable_limit or limit,
                            Path(questions_file).name, len(paragraphs), machine_facts(threads), command, [],
                            retrieval)
    for config in configurations:
        run, generator = _run_configuration(config, {**settings, **config.overrides}, squad_work, mapping,
                                            embedder, items, unanswerable, articles, questions,
                                            seed_corpus, work / "seed", progress)
        comparison.runs.append(run)
        if save_to is not None:
            comparison.save(save_to)
        gc.collect()  # an assistant and its reader refer to each other: only a collection frees them
        if generator is not None and generator() is not None:
            log.warning("configuration %s: its generator is still referenced after the run; the next "
                        "one loads beside it", config.label)
    return comparison


def shared_retrieval(assistant: Any) -> str:
    """What every configuration's retrieval is: the retriever, the chunks, the passages read."""
    s = assistant.settings
    kind = getattr(assistant.retriever, "label", None) or f"dense {s.embedding_model.rsplit('/', 1)[-1]}"
    return f"{kind}, chunks {s.chunk_size}/{s.chunk_overlap} tokens, top {s.top_k} passages"


def _run_configuration(config: Configuration, settings: dict[str, Any], squad_work: Path,
                       mapping: dict[str, str], embedder: Any, items: list[SquadItem],
                       unanswerable: list[SquadItem], articles: dict[str, list[str]],
                       questions: list[dict[str, Any]], seed_corpus: Path, seed_work: Path,
                       progress: bool) -> tuple[ConfigurationRun, Any]:
    """One configuration's run, and a weak reference to its generator (to check it was freed)."""
    from ..assistant import Assistant

    run = ConfigurationRun(config.label, dict(config.overrides))
    try:
        assistant = _new_assistant(squad_work / "corpus", squad_work / "index", embedder, **settings)
        assistant.reader  # noqa: B018 (loads the generator and builds the reader now)
    except Exception as exc:  # a model that is not installed: skipped, the others still run
        run.skipped = f"{type(exc).__name__}: {exc}".strip()
        log.warning("configuration %s (%s) skipped: %s", config.label, config.describe(), run.skipped)
        return run, None
    generator = assistant.generator
    ref = weakref.ref(generator) if generator is not None else None
    del generator
    run.generator, run.answer_style = assistant.settings.generator, assistant.answer_style
    # reading comprehension as `rag eval qa --mode rc` reads: no index loaded (so no collection
    # IDF), the same models
    reader_alone = Assistant(assistant.settings, models=assistant)
    seed = Assistant(assistant.settings.replace(corpus_dir=seed_corpus, index_dir=seed_work / "index"),
                     models=assistant)
    try:
        _answer(run, assistant, reader_alone, seed, mapping, items, unanswerable, articles, questions,
                progress)
    except Exception as exc:  # one configuration failing half-way loses neither the others' figures
        run.skipped = f"failed while answering: {type(exc).__name__}: {exc}".strip()
        run.e2e, run.rc, run.unanswerable, run.seed = [], [], [], []
        log.warning("configuration %s (%s): %s", config.label, config.describe(), run.skipped,
                    exc_info=log.isEnabledFor(logging.DEBUG))
    for a in (seed, reader_alone, assistant):
        a.close()
    return run, ref


def _answer(run: ConfigurationRun, assistant: Any, reader_alone: Any, seed: Any, mapping: dict[str, str],
            items: list[SquadItem], unanswerable: list[SquadItem], articles: dict[str, list[str]],
            questions: list[dict[str, Any]], progress: bool) -> None:
    """Every question of the four benchmarks, answered by one configuration's assistants."""
    label = run.label
    for item in _progress(items, progress, f"{label}: end to end"):
        run.e2e.append(_end_to_end(assistant, item, mapping))
    for item in _progress(items, progress, f"{label}: gold paragraph"):
        started = time.perf_counter()
        answer = reader_alone.reader.run(item.question, [gold_passage(item)])
        run.rc.append(_asked(item, answer, time.perf_counter() - started))
    for item in _progress(unanswerable, progress, f"{label}: unanswerable"):
        asked = Unanswered(item.id, item.question, refused_without_own_paragraph(assistant, mapping, item))
        asked.swapped = swapped_question(item, articles[item.title])
        if asked.swapped is not None:
            asked.swapped_refused = assistant.ask(asked.swapped).refused
        run.unanswerable.append(asked)
    for q in _progress(questions, progress, f"{label}: seed set"):
        answer = seed.ask(q["q"])
        group, right = seed_check(q, answer)
        run.seed.append(SeedAsked(q["q"], group, bool(right), answer.text))


def _progress(items: Sequence[Any], progress: bool, desc: str) -> Iterator[Any]:
    bar = _bar(progress, len(items), desc)
    try:
        for item in items:
            yield item
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()


def _end_to_end(assistant: Any, item: SquadItem, mapping: dict[str, str]) -> Asked:
    """Ask through `Assistant.stream`, as the page does, timing the first text it shows."""
    from ..schema import Answer

    started = time.perf_counter()
    first: float | None = None
    answer: Answer | None = None
    for piece in assistant.stream(item.question):
        if isinstance(piece, Answer):
            answer = piece
        elif first is None and piece.strip():
            first = time.perf_counter() - started
    seconds = time.perf_counter() - started
    assert answer is not None
    asked = _asked(item, answer, seconds)
    asked.first_text_seconds = seconds if first is None else first
    asked.gold_retrieved = gold_retrieved(item, answer, mapping)
    return asked


def _asked(item: SquadItem, answer: Any, seconds: float) -> Asked:
    scores = qa_scores(item, answer)
    return Asked(item.id, item.question, list(item.answers), answer.text, answer_text(answer),
                 bool(answer.refused), scores["exact_match"], scores["f1"], bool(scores["answer holds gold"]),
                 seconds)


# -- the table --------------------------------------------------------------------------------------
COLUMNS = ("e2e answer contains gold %", "e2e short-answer F1", "rc F1", "unanswerables refused %",
           "false refusals %", "seed answerable right", "seed unanswerable right", "answer p50 s",
           "answer p95 s", "first text p50 s")


def machine_line(machine: dict[str, Any]) -> str:
    flags = " ".join(machine["flags"]) or "none of avx, amx, vnni, bf16"
    threads = machine["threads"]
    return (f"CPU: {machine['cpu']} (speed flags: {flags}); {machine['cores']} cores, "
            f"{threads} thread{'s' if threads != 1 else ''} for the models; {machine['date']}.")


def _cell(column: str, value: float | str | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    return f"{value:.2f}" if column.endswith(" s") else f"{value:.1f}"


def _name(run: ConfigurationRun) -> str:
    if run.skipped:
        return f"{run.label} (skipped)"
    model = run.generator.rsplit("/", 1)[-1]  # a GGUF path: its file name
    return f"**{run.label}** ({model}, {run.answer_style})"


def compare_report(comparison: Comparison) -> str:
    c = comparison
    lines = ["| configuration | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for run in c.runs:
        figures = run.figures() if not run.skipped else {}
        lines.append(f"| {_name(run)} | " + " | ".join(_cell(k, figures.get(k)) for k in COLUMNS) + " |")
    ran = [r for r in c.runs if not r.skipped]
    e2e = len(ran[0].e2e) if ran else 0
    unanswerable = ran[0].unanswerable if ran else []
    swapped = sum(u.swapped is not None for u in unanswerable)
    seed = ran[0].seed if ran else []
    answerable = sum(s.group == "answerable" for s in seed)
    half = "all the questions" if c.half == "all" else f"the questions of the {c.half} half of the articles"
    retrieval = f": {c.retrieval}" if c.retrieval else ""
    skipped = [f"- {r.label} ({Configuration(r.label, r.overrides).describe()}): {r.skipped}"
               for r in c.runs if r.skipped]
    return "\n".join([
        f"### Answer configurations compared: {c.squad}, constructed unanswerables, seed set",
        "",
        machine_line(c.machine),
        "",
        "Every configuration answers the same questions over the same index (only the answer "
        f"settings differ; retrieval is identical{retrieval}). Of {c.limit or 'all'} questions spread "
        f"over {c.squad}, {half}: {e2e} asked end to end over the {c.paragraphs} indexed paragraphs (e2e) "
        f"and read from their gold paragraph alone (rc); of {c.unanswerable_limit or 'all'}, "
        f"{len(unanswerable)} asked with their own paragraph removed and {swapped} with a name or "
        f"number swapped (unanswerables refused, over the {len(unanswerable) + swapped}); the seed set "
        f"{c.questions}: {answerable} answerable, {len(seed) - answerable} unanswerable (right/asked). "
        "Contains gold: the answer's text holds a gold answer; F1: SQuAD v1.1 F1 of the short answer "
        "(else the answer without citations); false refusals: e2e questions (all answerable) "
        "refused. Seconds per e2e question (nearest-rank percentiles): to the final answer, and to "
        "the first text the stream shows (the full style's first verified sentence; the answer "
        "itself when nothing shows before it).",
        "",
        *lines,
        *(["", "Skipped:", *skipped] if skipped else []),
        "",
        f"```sh\n{c.command}\n```",
        "",
    ])
