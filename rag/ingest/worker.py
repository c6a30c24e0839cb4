"""Conversions that parse archives, XML, PDF or images run in a worker process with a CPU-time
and a memory limit, so a file that sends a library into a loop or eats memory costs one
skipped file with a reason, never a hung or killed indexing run.

The zip check (archive.py) and the libraries' own limits stop every hostile file of the tests
in milliseconds; the worker bounds what the tests did not think of (docs/FORMATS.md measures
what it costs). One worker serves the process, one file at a time, and exits when it has been
idle for a minute or when this process ends (its stdin closes). Requests and replies are JSON
lines (and the file's bytes), never pickle: the worker returns text, not objects.

Run as `python -m rag.ingest.worker`; `convert` below is the client. A loader of your own marked
`@isolated` runs there too: the worker imports its module (with this process's sys.path)."""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import logging
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .base import Loader, LoadError
from .blocks import described

log = logging.getLogger(__name__)

CPU_SECONDS = 60.0
"""CPU time one conversion may take, plus CPU_SECONDS_PER_MB of its file: a 200-page Word file
takes 0.3 s, a 5,000-row workbook about 1 s; OCR runs in tesseract, a process of its own."""
CPU_SECONDS_PER_MB = 10.0
MEMORY_BYTES = 3 << 30
"""Address space of the worker: the 1.5 GB python-docx reached on a zip bomb (before the zip
check refused it) fits, an unbounded one does not."""
IDLE_SECONDS = 60.0
ISOLATE = True
"""False runs every loader in this process (no limits), e.g. where no worker can be started."""


def convert(loader: Loader, path: Path, data: bytes, limit: int) -> tuple[str, dict[str, str]]:
    """(text, metadata) from `loader`: in the worker when the loader is marked isolated."""
    if not (ISOLATE and getattr(loader, "isolated", False)):
        return loader(path, data, limit)
    return _WORKER.convert(loader, path, data, limit)


def cpu_budget(size: int) -> float:
    return CPU_SECONDS + CPU_SECONDS_PER_MB * size / (1 << 20)


class Worker:
    """The client side: starts the worker process when needed and talks to it."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._lines: queue.Queue[bytes] = queue.Queue()
        self._lock = threading.Lock()
        self._used = 0.0

    def convert(self, loader: Loader, path: Path, data: bytes, limit: int) -> tuple[str, dict[str, str]]:
        from .ocr import languages

        cpu = cpu_budget(len(data))
        request = {"module": loader.__module__, "name": loader.__qualname__, "path": str(path),
                   "size": len(data), "limit": limit, "cpu": cpu, "ocr_languages": languages()}
        with self._lock:
            proc = self._ready()
            try:
                assert proc.stdin is not None
                proc.stdin.write(json.dumps(request).encode() + b"\n")
                proc.stdin.write(data)
                proc.stdin.flush()
            except (BrokenPipeError, OSError):  # it had just exited: once more with a new one
                self._stop()
                proc = self._ready()
                assert proc.stdin is not None
                proc.stdin.write(json.dumps(request).encode() + b"\n" + data)
                proc.stdin.flush()
            try:
                return self._reply(proc, cpu)
            finally:
                self._used = time.monotonic()

    def _ready(self) -> subprocess.Popen[bytes]:
        proc = self._proc
        stale = time.monotonic() - self._used > IDLE_SECONDS - 10
        if proc is not None and (proc.poll() is not None or stale):
            self._stop()  # exited, or about to exit on its own idle timeout
            proc = None
        if proc is None:
            paths = [p for p in sys.path if p and os.path.isdir(p)]
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMP_THREAD_LIMIT": "1"}
            debug = log.isEnabledFor(logging.DEBUG)
            proc = subprocess.Popen([sys.executable, "-m", "rag.ingest.worker"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=None if debug else subprocess.DEVNULL,
                                    env=env, close_fds=True)
            self._proc = proc
            self._used = time.monotonic()
            # replies are read on a thread: a select() on the pipe would miss lines that the
            # reader already holds in its buffer
            self._lines = queue.Queue()
            threading.Thread(target=_pump, args=(proc.stdout, self._lines), daemon=True,
                             name="rag-convert-replies").start()
        return proc

    def _reply(self, proc: subprocess.Popen[bytes], cpu: float) -> tuple[str, dict[str, str]]:
        assert proc.stdout is not None
        deadline = time.monotonic() + 3 * cpu + 60  # a worker that waits on something, not computes
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self._stop()
                raise LoadError(f"reading it took longer than {3 * cpu + 60:.0f} s and was stopped") from None
            if not line:
                raise LoadError(self._death())
            message = json.loads(line)
            if "log" in message:
                level, name, text = message["log"]
                logging.getLogger(name).log(int(level), "%s", text)
            elif "error" in message:
                raise LoadError(message["error"])
            else:
                return message["text"], message["meta"]

    def _death(self) -> str:
        """Why the worker stopped in the middle of a file, for the skip message."""
        proc = self._proc
        self._proc = None
        code = proc.wait() if proc is not None else None
        if code == -signal.SIGXCPU:
            return "reading it took more than its CPU time limit and was stopped (a hostile or broken file?)"
        if code == -signal.SIGKILL:
            return "the converter was killed (out of memory?)"
        if code is not None and code < 0:
            return f"the converter crashed ({signal.Signals(-code).name})"
        return f"the converter stopped unexpectedly (exit code {code})"

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin:
                proc.stdin.close()
            proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()

    def close(self) -> None:
        with self._lock:
            self._stop()


def _pump(stream: Any, lines: queue.Queue[bytes]) -> None:
    """Every line the worker writes, then b"" when it has gone."""
    for line in iter(stream.readline, b""):
        lines.put(line)
    lines.put(b"")


_WORKER = Worker()
atexit.register(_WORKER.close)


# -- the worker process ---------------------------------------------------------------------------
def main() -> int:
    import resource

    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # what a library prints goes to stderr, not into the replies
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    lock = threading.Lock()

    def send(message: dict[str, Any]) -> None:
        with lock:
            replies.write(json.dumps(message, ensure_ascii=False) + "\n")
            replies.flush()

    class Forward(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            send({"log": [record.levelno, record.name, record.getMessage()]})

    rag_log = logging.getLogger("rag")
    rag_log.addHandler(Forward(logging.INFO))
    rag_log.setLevel(logging.INFO)
    rag_log.propagate = False
    stdin = sys.stdin.buffer
    while True:
        if not select.select([stdin], [], [], IDLE_SECONDS)[0]:
            return 0
        line = stdin.readline()
        if not line:
            return 0
        request = json.loads(line)
        data = stdin.read(request["size"])
        if len(data) != request["size"]:
            return 0
        _limit_cpu(request["cpu"])
        send(_run(request, data))


def _limit_cpu(seconds: float) -> None:
    """SIGXCPU (which ends the process) once this conversion has used `seconds` of CPU."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime + seconds) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _run(request: dict[str, Any], data: bytes) -> dict[str, Any]:
    from .ocr import configure

    try:
        configure(request.get("ocr_languages"))
        loader = getattr(importlib.import_module(request["module"]), request["name"])
        text, meta = loader(Path(request["path"]), data, int(request["limit"]))
        return {"text": text, "meta": {str(k): str(v) for k, v in meta.items()}}
    except LoadError as exc:
        return {"error": str(exc)}
    except MemoryError:
        return {"error": f"reading it needs more than {MEMORY_BYTES >> 30} GiB of memory (a hostile file?)"}
    except Exception as exc:  # a converter bug or a library failing in a way nobody mapped
        logging.getLogger(__name__).debug("conversion failed", exc_info=True)
        return {"error": f"the converter failed ({described(exc)})"}


if __name__ == "__main__":
    sys.exit(main())
