"""What loads and writes files: no pickle on any load path, index files only inside the index
folder, library files only inside the library."""

from __future__ import annotations

import re
from pathlib import Path

from rag import Assistant
from tests.conftest import ROOT


def test_no_pickle_on_load_paths():
    """Index, BM25 and checkpoint arrays are JSON, FAISS and .npy read with allow_pickle=False;
    model weights are safetensors."""
    risky = re.compile(r"\bimport pickle\b|\bpickle\.|\bjoblib\b|\bshelve\b|\bmarshal\.loads|"
                       r"torch\.load\(|allow_pickle\s*=\s*True")
    found = []
    for path in sorted((ROOT / "rag").glob("*.py")) + sorted((ROOT / "ui").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        found += [f"{path.name}: {m.group(0)}" for m in risky.finditer(text)]
        for call in re.findall(r"np\.load\([^)]*\)", text):
            if "allow_pickle=False" not in call:
                found.append(f"{path.name}: {call}")
    assert found == []


def _files(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime for p in folder.rglob("*") if p.is_file()}


def test_index_files_stay_inside_the_index_folder(fresh: Assistant, tmp_path: Path):
    base = fresh.settings.corpus_dir.parent
    index_dir = fresh.settings.index_dir
    before = _files(base)
    (tmp_path / "tide.txt").write_text("High tide at Port Elm is at 6:40 in the morning.")
    fresh.add([tmp_path / "tide.txt"])
    fresh.remove("tide.txt")
    fresh.refresh()
    after = _files(base)
    changed = {name for name in set(before) | set(after) if before.get(name) != after.get(name)}
    outside = [n for n in changed if not (base / n).is_relative_to(index_dir)
               and n != f"{fresh.settings.corpus_dir.name}/tide.txt"]
    assert outside == []
    assert any((base / n).is_relative_to(index_dir) for n in changed)
    assert not [p for p in index_dir.iterdir() if p.name.startswith(".tmp-")]
