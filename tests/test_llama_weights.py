"""The llama.cpp weights choice (rag/generate/weights.py): real copies written by llama.cpp's
quantizer, real probe answers timed, the choice cached per machine and overridable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp", reason="llama-cpp-python is installed by `make test`")

from rag.config import Settings  # noqa: E402
from rag.generate import make_generator, weights  # noqa: E402
from rag.generate.base import smollm2_gguf  # noqa: E402
from rag.generate.llamacpp import LlamaCppGenerator  # noqa: E402
from rag.generate.weights import PROBE  # noqa: E402

SOURCE = smollm2_gguf()


def _file_type(path: Path) -> int:
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=64, vocab_only=True, verbose=False)
    try:
        return int(llm.metadata["general.file_type"])
    finally:
        llm.close()


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> tuple[Path, weights.WeightsChoice]:
    cache = tmp_path_factory.mktemp("weights")
    return cache, weights.choose(SOURCE, cache, 2, encodings=("F16",), runs=1, make=LlamaCppGenerator)


def test_the_choice_is_measured_on_real_copies_and_kept(measured):
    cache, found = measured
    assert set(found.answer_ms) == {"shipped", "F16"}, found.rejected
    assert all(ms > 0 for ms in found.answer_ms.values()) and found.read_tps["F16"] > 0
    fastest = min(found.answer_ms, key=found.answer_ms.__getitem__)
    if found.weights == "F16":  # chosen only when faster than the shipped file by the margin
        assert found.answer_ms["F16"] * (1 + weights.MARGIN) <= found.answer_ms["shipped"]
        assert _file_type(Path(found.file)) == weights.FTYPES["F16"]
    else:
        assert found.weights == "shipped" and found.file == str(SOURCE)
        best = found.answer_ms[fastest]
        assert fastest == "shipped" or best * (1 + weights.MARGIN) > found.answer_ms["shipped"]
    copies = sorted(p.name for p in (cache / "gguf").iterdir())
    assert copies == ([Path(found.file).name] if found.weights != "shipped" else []), copies  # no temp files
    kept = json.loads(weights.choice_path(cache, found.key).read_text())
    assert kept["weights"] == found.weights and kept["machine"]["cpu"] == weights.cpu_info()[0]


def test_a_cached_choice_is_reused_and_another_machine_measures_again(measured, monkeypatch):
    cache, found = measured
    count = weights.measurements
    again = weights.choose(SOURCE, cache, 2, encodings=("F16",), runs=1, make=LlamaCppGenerator)
    assert weights.measurements == count and again == found
    assert Path(weights.resolve(SOURCE, cache, 2, "auto", make=LlamaCppGenerator)) == Path(found.file)
    assert weights.measurements == count
    model, flags = weights.cpu_info()
    monkeypatch.setattr(weights, "cpu_info", lambda: (model + " (another)", flags))
    assert weights.cached(cache, SOURCE, 2) is None  # another CPU: another key


def test_the_setting_overrides_the_measurement(tmp_path):
    count = weights.measurements
    settings = Settings.from_env(env={}, generator="llamacpp:smollm2", cache_dir=tmp_path,
                                 threads=2, llamacpp_weights="q8_0")
    generator = make_generator(settings)
    copy = weights.copy_path(tmp_path, SOURCE, "Q8_0")
    assert Path(generator.llm.model_path) == copy and _file_type(copy) == weights.FTYPES["Q8_0"]
    assert "Olympics" in generator.generate(PROBE, 24)
    assert weights.measurements == count  # chosen, not measured
    assert not (tmp_path / "generator-choice").exists()
    shipped = make_generator(settings.replace(llamacpp_weights="shipped"))
    assert Path(shipped.llm.model_path) == SOURCE
    with pytest.raises(ValueError, match="llamacpp_weights"):
        settings.replace(llamacpp_weights="q4_0")


def test_a_failed_quantization_leaves_no_file(tmp_path):
    target = tmp_path / "copy.gguf"
    with pytest.raises(RuntimeError, match="could not write"):
        weights.requantize(tmp_path / "missing.gguf", target, "F16", 1)
    assert list(tmp_path.iterdir()) == []


def test_a_choice_measured_on_a_busy_machine_is_measured_again_when_quiet(measured):
    cache, found = measured
    path = weights.choice_path(cache, found.key)
    kept = json.loads(path.read_text())
    try:
        path.write_text(json.dumps({**kept, "load": 1e6}))  # as if measured among many jobs
        assert weights.cached(cache, SOURCE, 2, provisional=True).provisional
        assert (weights.cached(cache, SOURCE, 2) is None) == (not weights.busy())
    finally:
        path.write_text(json.dumps(kept))
    assert weights.cached(cache, SOURCE, 2) == found
