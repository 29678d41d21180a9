"""The code's shape: no import cycles, a runtime that knows no kinds of model, one door.

Imports are read with `ast`, at the top of a module and inside functions alike.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

MODEL_ROOMS = ("classifier.models.", "classifier.runtime")
OLD_ROOMS = ("zoo", "added", "engine", "modelfiles", "convert")


def imports_of(path: Path) -> set[str]:
    """Return the modules a file imports (for `from a import b`, both `a` and `a.b`)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def module_files() -> dict[str, Path]:
    files = {}
    for path in (ROOT / "classifier").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = path
    return files


def own_edges() -> dict[str, set[str]]:
    """Return, for each module of `classifier`, the modules of `classifier` it imports."""
    files = module_files()

    def resolve(name: str) -> str | None:
        while name:
            if name in files:
                return name
            name = name.rpartition(".")[0]
        return None

    edges: dict[str, set[str]] = {}
    for module, path in files.items():
        targets = {resolve(name) for name in imports_of(path)} - {None, module}
        # A module inside a package importing its own package's __init__ is Python's doing.
        edges[module] = {t for t in targets if not module.startswith(f"{t}.")}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while (w := stack.pop()) != v:
                group.append(w)
            group.append(v)
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_classifier_package_has_no_import_cycle():
    edges = own_edges()
    assert edges.get("classifier.models.catalog")
    assert cycles(edges) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_runtime_knows_no_kinds_of_model_nor_the_database():
    edges = own_edges()
    runtime = {m: e for m, e in edges.items() if m.startswith("classifier.runtime")}
    assert len(runtime) >= 4
    forbidden = (
        "classifier.models",
        "classifier.history",
        "classifier.teach",
        "classifier.explain",
    )
    reached = {m: sorted(t for t in e if t.startswith(forbidden)) for m, e in runtime.items()}
    assert {m: t for m, t in reached.items() if t} == {}


def test_pages_ui_and_the_command_line_reach_models_through_one_door():
    """`classifier.models` is the only model module they import (its rooms and the runtime
    are its own business); the old modules are gone."""
    files = [*(ROOT / "ui").glob("*.py"), *(ROOT / "pages").glob("*.py")]
    files += [ROOT / "streamlit_app.py", ROOT / "classifier" / "cli.py"]
    through_side_doors = {
        str(path.relative_to(ROOT)): sorted(
            name
            for name in imports_of(path)
            if name.startswith(MODEL_ROOMS) or name in {f"classifier.{old}" for old in OLD_ROOMS}
        )
        for path in files
    }
    assert {file: names for file, names in through_side_doors.items() if names} == {}
    assert not any((ROOT / "classifier" / f"{old}.py").exists() for old in OLD_ROOMS)
