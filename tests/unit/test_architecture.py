"""The package's shape, checked from its source: no import cycles, nothing below the facade imports it,
modules of a readable size, and the two halves kept apart."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "milvus_backup_lib"
#: The manifest codec carries the whole milvus-backup JSON contract in one place.
SIZE_EXCEPTIONS = {"manifest.codec"}
MAX_LINES = 450


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(path: Path) -> set[str]:
    """The package modules ``path`` imports when it is imported (``if TYPE_CHECKING`` blocks aside)."""
    found: set[str] = set()

    def target(name: str) -> None:
        if name == "milvus_backup_lib" or name.startswith("milvus_backup_lib."):
            found.add(name.removeprefix("milvus_backup_lib").lstrip("."))

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and _is_type_checking(node):
                visit(node.orelse)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    target(alias.name)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:  # ``from pkg import submodule`` imports the submodule
                    sub = f"{node.module}.{alias.name}".removeprefix("milvus_backup_lib").lstrip(".")
                    if sub in MODULES:
                        found.add(sub)
                    else:
                        target(node.module)
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)
                if isinstance(node, ast.Try):
                    for handler in node.handlers:
                        visit(handler.body)

    visit(ast.parse(path.read_text()).body)
    return found - {_module_name(path)}


GRAPH = {name: _runtime_imports(path) for name, path in MODULES.items()}


def test_the_graph_is_read() -> None:
    assert "client" in GRAPH[""] and "milvus.protocol" in GRAPH["backup.runner"]


def test_no_import_cycles() -> None:
    # A cycle is a path from a module back to itself through module-level imports. Explicit imports of
    # a package (its __init__) count; the implicit run of parent packages' __init__ does not.
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt] if nxt in path else [*path, nxt])
            elif state.get(nxt) is None:
                walk(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(GRAPH):
        if state.get(module) is None:
            walk(module, [module])
    assert cycles == []


def test_nothing_below_the_facade_imports_it() -> None:
    importers = {m for m, deps in GRAPH.items() if "client" in deps}
    assert importers <= {"", "cli.commands", "cli"}, importers


def test_the_halves_keep_to_their_side() -> None:
    """Data flows cluster -> backup -> repository and repository -> restore -> cluster."""
    for module, deps in GRAPH.items():
        if module.startswith(("milvus", "storage", "manifest", "repository")):
            assert not {d for d in deps if d.startswith(("backup", "restore", "client", "cli"))}, module
        if module.startswith("restore"):
            assert not {d for d in deps if d.startswith("backup") and d != "backup.copier"}, module
        if module.startswith("backup"):
            assert not {d for d in deps if d.startswith("restore")}, module
    assert not any(
        d.startswith("testing") for m, deps in GRAPH.items() if not m.startswith("testing") for d in deps
    )


@pytest.mark.parametrize("module", sorted(set(MODULES) - SIZE_EXCEPTIONS))
def test_modules_stay_readable(module: str) -> None:
    lines = MODULES[module].read_text().count("\n")
    assert lines <= MAX_LINES, f"{module}: {lines} lines"


def test_the_facade_only_wires() -> None:
    assert MODULES["client"].read_text().count("\n") < 250


def test_test_modules_have_unique_basenames() -> None:
    """pytest imports test modules by basename (no packages under tests/): two files of one name in
    tests/unit and tests/integration make the whole run fail at collection."""
    root = Path(__file__).resolve().parents[1]
    names = [p.name for p in root.rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
