"""A capable model as a judge of answerability, and the decisions fitted on its judgements.

Asked to say "Unknown" when the text does not answer, small models almost never do; asked
afterwards whether an answer is stated in the text, their yes/no probabilities separate
answerable questions from unanswerable ones (AUC 0.79 for the 1.5B on XQuAD's tune half:
benchmarks/fit_excerpts.py). One forward pass over a few tokens: the judge costs the length of
its question, not a generated answer. Two uses:

- the excerpts style (excerpts.py): the model judges its own reply to the excerpts it read
  (the excerpts are already read, so only the judge's question is new), and a logistic
  regression over that judgement, the reply's token probabilities and the reader's signals
  decides;
- the compact path (`RAG_JUDGE`): a capable model judges whether the best sentence answers the
  question before the packaged SmolLM2 copies the short answer out of it, and refuses below a
  threshold fitted on the tune half.

The fitted numbers are in decisions.json beside this module, keyed by the model's catalogue
name; a model without a fit uses the judge's even odds (0.5).
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

from ..generate import Generator

DECISIONS = Path(__file__).with_name("decisions.json")
OWN_REPLY = "Is that answer stated in the excerpts? Reply yes or no."
"""The excerpts style: asked after the model's own reply, in the same conversation."""
SENTENCE = ("Excerpt: {sentence}\n\nQuestion: {question}\n"
            "Does the excerpt answer the question? Reply yes or no.")
"""The compact path: the best sentence alone, judged by a capable model."""
SIGNALS = ("min_logprob", "mean_logprob", "judge", "dense", "coverage", "literal")
"""What the excerpts style's decision reads, in the order of the fitted weights."""


def sentence_judgement(judge: Generator, question: str, sentence: str) -> float | None:
    """P(yes) that `sentence` answers `question`, by `judge` (None: it cannot say)."""
    return judge.yes_probability([{"role": "user", "content": SENTENCE.format(
        sentence=sentence, question=question)}])


def answer_probability(signals: dict[str, float], model: dict) -> float:
    """The excerpts style's fitted logistic regression: P(the documents answer | signals)."""
    z = model["bias"] + sum(w * (signals[name] - m) / s for name, w, m, s in
                            zip(SIGNALS, model["weights"], model["mean"], model["scale"]))
    return 1.0 / (1.0 + math.exp(-z))


@lru_cache(maxsize=1)
def _decisions(path: Path = DECISIONS) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def decision(kind: str, generator_name: str) -> dict | None:
    """The `kind` ("excerpts" or "compact-judge") decision fitted for this model, found by the
    catalogue name its generator's name starts with; None without one."""
    for name, fitted in _decisions().get(kind, {}).items():
        if generator_name.startswith(name):
            return fitted
    return None


def store(kind: str, model_name: str, fitted: dict, path: Path = DECISIONS) -> None:
    """Keep a fitted decision (benchmarks/fit_excerpts.py --write)."""
    decisions = json.loads(path.read_text()) if path.exists() else {}
    decisions.setdefault(kind, {})[model_name] = fitted
    path.write_text(json.dumps(decisions, indent=1) + "\n", encoding="utf-8")
    _decisions.cache_clear()
