"""What the evaluation benchmarks share: their command line, the cached SciFact assistant, and
writing their table into docs/EVALUATION.md."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.config import Settings  # noqa: E402
from rag.evaluate import _assistant, load_beir, write_section  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs" / "EVALUATION.md"


def parser(doc: str | None, dataset: str) -> argparse.ArgumentParser:
    """A parser with the dataset path and --write; the script adds its own options."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(dataset, type=Path)
    p.add_argument("--write", action="store_true", help="write the table into docs/EVALUATION.md")
    return p


def beir_assistant(beir_dir: Path, work: Path | None) -> tuple[Any, list[str], Any, dict[str, str]]:
    """(data, judged query ids, assistant, file-to-document mapping) over the BEIR folder,
    reusing the index that `rag eval retrieval` keeps in the cache folder."""
    work = work or Settings.from_env().cache_dir / "eval" / f"beir-{beir_dir.name}"
    data = load_beir(beir_dir)
    qids = [q for q in data.qrels if q in data.queries]
    assistant, mapping = _assistant(work, data.corpus, True, None, generator="extractive")
    return data, qids, assistant, mapping


def finish(lines: list[str], command: str, key: str, write: bool) -> int:
    """Print the table with its command, and write it into its section when asked."""
    report = "\n".join([*lines, "", f"Command: `{command} --write`", ""])
    print(report)
    if write:
        write_section(DOCS, key, report)
    return 0
