"""The shape of the code: no import cycles among the modules of rag/ and ui/, backends grouped by
family with a registry each, and every built-in backend name resolving to its own module."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from tests.conftest import ROOT

FAMILIES = ("ingest", "embed", "store", "retrieve", "answer", "generate")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Project modules this file imports, at any depth (function-level imports count too),
    except under `if TYPE_CHECKING:`."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            targets = []
        for target in targets:
            if target in modules and target != name:
                found.add(target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _graph() -> dict[str, set[str]]:
    files = [p for folder in ("rag", "ui") for p in (ROOT / folder).rglob("*.py")]
    modules = {_module_name(p) for p in files}
    return {_module_name(p): _imports(p, modules) for p in files}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_no_import_cycles():
    graph = _graph()
    assert {"rag.assistant", "rag.answer.reader", "ui.app"} <= set(graph)  # the scan sees the tree
    assert "rag.store.base" in graph["rag.store.faiss"]  # ... and relative imports
    assert _cycles(graph) == []


def test_the_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_backends_are_grouped_by_family():
    packages = [f for f in FAMILIES if (ROOT / "rag" / f / "__init__.py").is_file()]
    assert packages == list(FAMILIES)


def _registries():
    from rag.embed.base import ENCODERS
    from rag.generate.base import GENERATORS
    from rag.ingest.base import LOADERS
    from rag.store.base import STORES

    return {"store": STORES, "embedding backend": ENCODERS, "generator": GENERATORS,
            "file type": LOADERS}


@pytest.mark.parametrize("family", ["store", "embedding backend", "generator", "file type"])
def test_every_built_in_name_is_registered_by_its_module(family):
    registry = _registries()[family]
    for name, module in registry._modules.items():
        entry = registry.get(name)
        assert entry.__module__ == module, (name, entry.__module__)
        importlib.import_module(module)  # registering twice is harmless
        assert registry.get(name) is entry
    with pytest.raises(ValueError, match=f"unknown {family}"):
        registry.get("no-such-backend")


def test_a_base_module_does_not_import_its_backends():
    graph = _graph()
    for family in ("store", "embed", "generate", "ingest"):
        base = f"rag.{family}.base"
        backends = {m for m in graph if m.startswith(f"rag.{family}.")} - {base}
        assert not graph[base] & backends, (base, graph[base] & backends)


def test_the_architecture_examples_register_backends(tmp_path):
    """docs/ARCHITECTURE.md's "adding a backend" examples, run as written, in a fresh process."""
    import re
    import subprocess
    import sys

    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "ARCHITECTURE.md").read_text(), re.DOTALL)
    assert len(blocks) == 4
    check = """
from pathlib import Path
from rag import Settings
from rag.generate import make_generator
from rag.ingest import load_file
assert STORES.get("mine") is MyStore and ENCODERS.get("mine") is my_encoder
assert make_generator(Settings.from_env(env={}, generator="mine:x")).generate([], 8) == "Beijing [1]."
Path(TMP, "server.log").write_text("The server restarted at noon.")
doc = load_file(Path(TMP, "server.log"))
print(doc.title, "|", doc.text)
"""
    code = "\n".join(blocks) + f"\nTMP = {str(tmp_path)!r}\n" + check
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "server | The server restarted at noon."
