"""Embedding backends: OpenVINO agrees with torch, falls back to torch, and never touches the network."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.embed import Embedder, resolve_model

ROOT = Path(__file__).resolve().parents[1]
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
needs_openvino = pytest.mark.skipif(
    __import__("importlib").util.find_spec("openvino") is None, reason="openvino not installed"
)


@pytest.fixture(scope="module")
def torch_embedder() -> Embedder:
    return Embedder(MODEL, backend="torch")


def f32(assistant) -> Embedder:
    return Embedder(MODEL, backend="openvino", precision="f32", cache_dir=assistant.settings.cache_dir)


@needs_openvino
def test_openvino_matches_torch_on_the_seed_chunks(assistant, torch_embedder):
    # f32 by name: `auto` is whatever measured fastest here (tests/test_embed_choice.py)
    embedder = f32(assistant)
    assert embedder.backend == "openvino (f32)"
    texts = [c.text for c in assistant.index_data.chunks.values()]
    texts += ["Why did Putin travel to Beijing?", "x"]
    cosine = (embedder.encode(texts) * torch_embedder.encode(texts)).sum(axis=1)
    assert cosine.min() >= 0.999, cosine.min()
    # the chunker counts the same tokens with either tokenizer
    for text in texts:
        assert (embedder.tokenizer(text, add_special_tokens=False)["input_ids"]
                == torch_embedder.tokenizer(text, add_special_tokens=False)["input_ids"])


@needs_openvino
def test_long_text_is_truncated_to_the_model_window(assistant, torch_embedder):
    text = "Putin arrived in Beijing for the opening ceremony. " * 200
    cosine = float(f32(assistant).encode([text])[0] @ torch_embedder.encode([text])[0])
    assert cosine >= 0.999


@needs_openvino
def test_unsupported_model_falls_back_to_torch(tmp_path: Path, torch_embedder):
    """Max pooling is not exported: `auto` uses torch, `openvino` says why it cannot."""
    model = tmp_path / "model"
    shutil.copytree(resolve_model(MODEL), model)
    pooling = model / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config.update(pooling_mode_mean_tokens=False, pooling_mode_max_tokens=True)
    pooling.write_text(json.dumps(config))
    auto = Embedder(str(model), backend="auto", cache_dir=tmp_path / "cache")
    assert auto.backend == "torch"
    assert auto.encode(["hello"]).shape == (1, torch_embedder.dimension)
    with pytest.raises(RuntimeError, match="pooling"):
        Embedder(str(model), backend="openvino", cache_dir=tmp_path / "cache")


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend"):
        Embedder(MODEL, backend="tpu")


# -- no network ----------------------------------------------------------------------------
CONVERT_AND_EMBED = """
import sys
from pathlib import Path
from rag.embed import Embedder
e = Embedder({model!r}, backend="openvino", cache_dir=Path(sys.argv[1]), precision=sys.argv[2])
e.encode(["Putin arrived in Beijing."] * 40)
print(e.backend)
"""
CONNECT = """
import socket
try:
    socket.create_connection(("192.0.2.1", 80), timeout=1)
except OSError:
    pass
"""


def _inet_connects(tmp_path: Path, code: str, *args: str) -> list[str]:
    """Run `code` with no network (`unshare -n`) under strace; the IPv4/IPv6 connects it tried."""
    trace = tmp_path / "trace"
    env = dict(os.environ, PYTHONPATH=str(ROOT), HOME=str(tmp_path))  # no consent file in HOME
    env.pop("NNCF_CI", None)
    env.pop("CI", None)
    out = subprocess.run(
        ["unshare", "-n", "strace", "-f", "-qq", "-e", "trace=connect,sendto,sendmsg", "-o", str(trace),
         sys.executable, "-c", code, *args],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return [line for line in trace.read_text().splitlines() if re.search(r"AF_INET6?\b", line)]


@needs_openvino
@pytest.mark.skipif(shutil.which("unshare") is None or shutil.which("strace") is None
                    or subprocess.run(["unshare", "-n", "true"]).returncode != 0,
                    reason="needs unshare -n (root or user namespaces) and strace")
def test_openvino_conversion_and_embedding_attempt_no_connection(tmp_path: Path):
    # the check itself sees a connection attempt made under the same conditions
    assert _inet_connects(tmp_path, CONNECT)
    # converting (a fresh cache), quantizing with nncf and embedding: not one attempt
    code = CONVERT_AND_EMBED.format(model=MODEL)
    assert _inet_connects(tmp_path, code, str(tmp_path / "cache"), "int8") == []
    assert list((tmp_path / "cache" / "openvino").glob("*int8*/model.xml"))


@needs_openvino
def test_converted_model_is_cached_and_reused(tmp_path: Path):
    first = Embedder(MODEL, backend="openvino", cache_dir=tmp_path, precision="f32")
    folders = list((tmp_path / "openvino").iterdir())
    assert len(folders) == 1 and (folders[0] / "model.bin").stat().st_size > 1_000_000
    mtime = folders[0].stat().st_mtime_ns
    second = Embedder(MODEL, backend="openvino", cache_dir=tmp_path, precision="f32")
    assert folders[0].stat().st_mtime_ns == mtime and not list(tmp_path.glob("openvino/.tmp-*"))
    a, b = first.encode(["hello world"]), second.encode(["hello world"])
    assert np.allclose(a, b)


@needs_openvino
def test_int8_vectors_do_not_change_within_a_process(tmp_path: Path):
    """A fresh int8 model is quantized at the first text it embeds, even a two-chunk corpus, so
    a later large batch (the reader's sentences, another corpus) cannot switch the model under
    an index whose vectors came before it: the same texts and questions keep their vectors."""
    embedder = Embedder(MODEL, backend="openvino", cache_dir=tmp_path, precision="int8")
    article = next((ROOT / "seeds").glob("*.txt")).read_text()
    seed = [article[:900], article[900:1800]]  # a corpus of two chunks, like the seed index
    before, question = embedder.encode(seed), embedder.encode_query("Why did Putin travel to Beijing?")
    embedder.encode([f"Sentence {n} about harbour cranes, glaciers and tram lines." for n in range(40)])
    assert np.array_equal(embedder.encode(seed), before)
    assert np.array_equal(embedder.encode_query("Why did Putin travel to Beijing?"), question)
    # and another process loads the same quantized model instead of quantizing again
    again = Embedder(MODEL, backend="openvino", cache_dir=tmp_path, precision="int8")
    assert np.allclose(again.encode(seed), before, atol=1e-5)
