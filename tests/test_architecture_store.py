"""The store's arrows: it never imports the migrations package (which sits above it), and its core,
metrics, outbox and quarantine modules form no import cycle. Read from the source with ``ast``, so an
import inside a function or under ``TYPE_CHECKING`` counts as much as one at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "statechart"
STORE = PACKAGE / "store"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module the source of ``module`` imports, absolute, anywhere in it (``from . import x``
    counts both the package and ``package.x``, as either may be the module)."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def imported_modules(path: Path) -> set[str]:
    return imports_of(path.read_text(encoding="utf-8"), _module_name(path), is_package=path.name == "__init__.py")


def test_the_scan_sees_imports_inside_functions_and_under_type_checking() -> None:
    source = ("from typing import TYPE_CHECKING\n"
              "if TYPE_CHECKING:\n    from .core import Store\n"
              "def f():\n    from ..migrate.chain import load_chain\n    import statechart.migrate.runner\n"
              "from . import outbox\n")
    found = imports_of(source, "statechart.store.metrics")
    assert {"statechart.store.core", "statechart.migrate.chain", "statechart.migrate.runner",
            "statechart.store.outbox"} <= found
    assert "statechart.store.core" in imports_of("from .core import Store\n", "statechart.store", is_package=True)


@pytest.mark.parametrize("path", sorted(STORE.glob("*.py")), ids=lambda p: p.name)
def test_no_store_module_imports_the_migrations_package(path: Path) -> None:
    offending = sorted(m for m in imported_modules(path)
                       if m == "statechart.migrate" or m.startswith("statechart.migrate."))
    assert offending == [], f"{path.name} imports {offending}: the store sits below statechart.migrate"


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path of names, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_cycle_and_accepts_a_tree() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_store_modules_form_no_import_cycle() -> None:
    modules = {_module_name(p): p for p in STORE.glob("*.py")}
    graph = {name: {m for m in imported_modules(path) if m in modules and m != name}
             for name, path in modules.items()}
    assert {"statechart.store.core", "statechart.store.metrics", "statechart.store.outbox"} <= set(graph)
    assert _cycle(graph) is None, f"import cycle in statechart/store: {' -> '.join(_cycle(graph) or [])}"


def test_core_reaches_metrics_and_outbox_but_they_do_not_reach_back() -> None:
    core = imported_modules(STORE / "core.py")
    assert {"statechart.store.metrics", "statechart.store.outbox"} <= core
    for name in ("metrics.py", "outbox.py", "quarantine.py", "upgrade.py"):
        assert "statechart.store.core" not in imported_modules(STORE / name), name
