"""Concurrency: gradio_client clients asking at once against a real `rag serve`, with a
document upload in the middle of the load (benchmarks/load.py does the work and the checks).

The default run is trimmed to 4 clients x 5 questions; `--runslow` runs the full 16 x 25."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def load(clients: int, per_client: int, timeout: int) -> dict:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "load.py"), "--clients", str(clients),
         "--per-client", str(per_client), "--timeout", str(timeout), "--json"],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=timeout + 600,
    )
    assert out.stdout.strip(), out.stderr[-3000:]
    figures = json.loads(out.stdout)
    assert figures["failures"] == [], figures["failures"]
    assert out.returncode == 0
    return figures


def check(figures: dict, clients: int, per_client: int) -> None:
    # every answer right, but those the mid-load upload changed (benchmarks/load.py re-asks each
    # wrong one alone afterwards: it is counted as changed only when it is wrong alone too)
    changed = figures["changed_by_upload"]
    assert figures["answered_correctly"] + len(changed) == clients * per_client
    assert len(set(changed)) < figures["usable"] / 2, changed
    upload = figures["upload"]
    assert upload["added"] == ["port-verity-notes.md"] and upload["found"], upload
    assert upload["in_flight"] > 0, "the upload happened while questions were being answered"
    assert 0 < figures["full_answer_p50"] <= figures["full_answer_p95"]
    assert 0 < figures["first_token_p50"] <= figures["full_answer_p95"]
    # the load runs over the questions answered right when alone: at least half of them, so the
    # clients ask many different prompts at once (which ones are right is tests/test_answers.py's
    # job, in process, where a miss names its question)
    assert figures["usable"] >= len(figures["missed_alone"]), figures["missed_alone"]


def test_concurrent_clients_and_an_upload_mid_load():
    figures = load(4, 5, timeout=900)
    check(figures, 4, 5)


@pytest.mark.slow
def test_sixteen_clients_times_twenty_five_questions():
    figures = load(16, 25, timeout=3000)
    check(figures, 16, 25)
