"""What the benchmark runners share: the work folder (each document written as a file, the
assistant's own pipeline indexing it, reused by later runs), progress bars and the Result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Result:
    name: str
    metrics: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)


def _file_name(key: str, used: set[str]) -> str:
    from ..assistant import safe_filename

    base = safe_filename(key.replace("#", "-p")) or "doc"
    name, n = base, 1
    while name.lower() in used:
        n += 1
        name = f"{base}-{n}"
    used.add(name.lower())
    return name + ".txt"


def _write_corpus(folder: Path, docs: dict[str, tuple[str, str]]) -> dict[str, str]:
    """Each document as `<name>.txt` with its title as the first line; returns file -> doc id.
    Files already there with the same content are left alone (the index is reused)."""
    folder.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    mapping: dict[str, str] = {}
    for doc_id, (title, text) in docs.items():
        name = _file_name(doc_id, used)
        mapping[name] = doc_id
        body = f"{title}\n\n{text}\n" if title else f"{text}\n"
        path = folder / name
        if not path.exists() or path.read_text(encoding="utf-8") != body:
            path.write_text(body, encoding="utf-8")
    for stale in folder.glob("*.txt"):
        if stale.name not in mapping:
            stale.unlink()
    return mapping


def _new_assistant(corpus: Path, index: Path, embedder: Any = None, **settings: Any):
    from ..assistant import Assistant
    from ..config import Settings

    assistant = Assistant(Settings.from_env(corpus_dir=corpus, index_dir=index, **settings))
    if embedder is not None:  # an already loaded model (the tests share one)
        assistant.__dict__["embedder"] = embedder
    return assistant


def _assistant(work: Path, docs: dict[str, tuple[str, str]], progress: bool = True,
               embedder: Any = None, **settings: Any):
    mapping = _write_corpus(work / "corpus", docs)
    assistant = _new_assistant(work / "corpus", work / "index", embedder, **settings)
    bar = None

    def show(done: int, total: int) -> None:
        nonlocal bar
        if not progress:
            return
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="chunk", desc="embedding")
        bar.update(done - bar.n)

    try:
        assistant.refresh(show)
    finally:
        if bar is not None:
            bar.close()
    return assistant, mapping


def _bar(progress: bool, total: int, desc: str) -> Any:
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="question", desc=desc)
