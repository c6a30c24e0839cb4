"""The embedding precision is chosen by measurement: made once per machine key, cached, reused,
measured again on another machine, overridden by RAG_EMBEDDING_PRECISION, never a candidate
whose vectors disagree with f32; the index records the precision and re-embeds on a change.
Timings are never asserted (they depend on the machine and its load)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag.config import default_cache_dir
from rag.embed import ENCODERS, Embedder, base, choice, resolve_model
from rag.index import Index

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
LOCATION = resolve_model(MODEL)
pytestmark = pytest.mark.skipif(__import__("importlib").util.find_spec("openvino") is None,
                                reason="openvino not installed")
QUICK = [("openvino", "f32"), ("openvino", "scrambled")]
"""f32 and a deliberately wrong candidate: quick to measure (no int8 quantization, no torch)."""


class Scrambled:
    """Instant and wrong: random unit vectors. The fastest candidate by far, so only the
    cosine check keeps it from being chosen."""

    label = "scrambled"

    def __init__(self, dimension: int):
        self.dimension, self.max_tokens, self.tokenizer = dimension, 256, None
        self._rng = np.random.default_rng(0)

    def encode_batch(self, texts):
        v = self._rng.normal(size=(len(texts), self.dimension)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def encode_query(self, text):
        return self.encode_batch([text])[0]

    def calibrate(self, texts):
        return None


@ENCODERS.register("scrambled")
def _scrambled(model, location, **options):
    return Scrambled(384)


@pytest.fixture(autouse=True)
def _wrong_backend(monkeypatch):
    """`openvino:scrambled` loads the scrambled encoder (the candidate list names a backend and a
    precision; the wrong one pretends to be an OpenVINO precision)."""
    real = choice._load

    def load(backend, precision, *args, **options):
        if precision == "scrambled":
            return _scrambled(MODEL, LOCATION)
        return real(backend, precision, *args, **options)

    monkeypatch.setattr(choice, "_load", load)


@pytest.fixture()
def cache(tmp_path: Path) -> Path:
    """An empty cache folder holding (hard links to) the already exported model, so the test
    does not export it from torch again."""
    folder = tmp_path / "cache"
    folder.mkdir()
    choice._share_exports(default_cache_dir(), folder)
    return folder


def _measure(cache: Path, **options) -> choice.Choice:
    return choice.choose(MODEL, LOCATION, cache, 2, pairs=QUICK, seconds=0.2, **options)


def test_choice_is_measured_once_cached_and_reused(cache):
    before = choice.measurements
    first = _measure(cache)
    assert choice.measurements == before + 1
    saved = list((cache / "embedding-choice").glob("*.json"))
    assert len(saved) == 1
    data = json.loads(saved[0].read_text())
    assert data["machine"]["cpu"] == choice.cpu_info()[0]
    assert set(data["rates"]) == {"openvino:f32", "openvino:scrambled"}
    assert set(data["query_ms"]) == {"1", "2"}
    assert first.query_threads in (1, 2)

    again = _measure(cache)
    assert choice.measurements == before + 1  # read from the file, not measured
    assert again == first
    # the Embedder asks for the same key, so it uses the cached choice
    embedder = Embedder(MODEL, backend="auto", cache_dir=cache, threads=2)
    assert choice.measurements == before + 1
    assert embedder.precision == first.name == "openvino:f32"
    assert embedder.encoder.query_threads == first.query_threads


def test_a_candidate_that_disagrees_with_f32_is_never_chosen(cache):
    found = _measure(cache)
    assert found.name == "openvino:f32"
    assert "openvino:scrambled" in found.rejected
    assert found.cosine["openvino:scrambled"] < choice.MIN_COSINE <= found.cosine["openvino:f32"]


def test_another_machine_measures_again(cache, monkeypatch):
    first = _measure(cache)
    count = choice.measurements
    model, flags = choice.cpu_info()
    monkeypatch.setattr(choice, "cpu_info", lambda: (model + " (another)", flags))
    second = _measure(cache)
    assert choice.measurements == count + 1
    assert second.key != first.key
    assert len(list((cache / "embedding-choice").glob("*.json"))) == 2
    monkeypatch.setattr(choice, "cpu_info", lambda: (model, [*flags, "avx512_bf16"]))
    assert choice.cached(cache, MODEL, 2) is None  # other flags: another key too


def test_remeasure_measures_even_when_cached(cache):
    _measure(cache)
    count = choice.measurements
    _measure(cache, remeasure=True)
    assert choice.measurements == count + 1


def test_a_precision_given_is_used_without_measuring(cache):
    count = choice.measurements
    embedder = Embedder(MODEL, backend="openvino", cache_dir=cache, precision="f32")
    assert choice.measurements == count
    assert not (cache / "embedding-choice").exists()
    assert embedder.precision == "openvino:f32"


def test_bf16_is_a_candidate_only_where_the_cpu_has_it():
    assert ("openvino", "bf16") not in choice.candidates("auto", ["avx2", "avx512f"])
    assert ("openvino", "bf16") in choice.candidates("auto", ["avx512_bf16"])
    assert ("openvino", "bf16") in choice.candidates("openvino", ["amx_bf16"])
    assert all(b == "openvino" for b, _ in choice.candidates("openvino", []))


def test_the_index_records_its_precision_and_another_one_re_embeds(settings_factory, monkeypatch, caplog):
    from rag import Assistant

    s = settings_factory("precision", embedding_precision="f32")
    first = Assistant(s)
    assert not first.refresh().rebuilt_because
    saved = Index.load(s.index_dir)
    assert saved.config["embedding_precision"] == "openvino:f32"

    other = Assistant(replace(s, embedding_precision="int8"))
    with caplog.at_level("WARNING"):
        report = other.refresh()
    assert report.rebuilt_because and "openvino:f32" in report.rebuilt_because
    assert "openvino:int8" in report.rebuilt_because
    assert "embedded again" in caplog.text
    assert Index.load(s.index_dir).config["embedding_precision"] == "openvino:int8"

    # a pair listed as measured to mix keeps the vectors
    monkeypatch.setattr(base, "MIXABLE", frozenset({frozenset({"openvino:f32", "openvino:int8"})}))
    back = Assistant(replace(s, embedding_precision="f32"))
    assert not back.refresh().rebuilt_because
    assert Index.load(s.index_dir).config["embedding_precision"] == "openvino:int8"
