"""The import graph matches docs/architecture.md: arrows point down the layers, no module imports
an underscore name from another module, and no modules import each other round a loop."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "statechart"
DOC = ROOT / "docs" / "architecture.md"


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = modules()


def imports(module: str) -> list[tuple[str, str, int]]:
    """(imported module, imported name or "", line) for every import of the package, at any depth
    (inside functions too: an import there is an arrow all the same)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target != "statechart" and not target.startswith("statechart."):
                continue
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if submodule in MODULES:
                    found.append((submodule, "", node.lineno))
                else:
                    found.append((target, alias.name, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, "", node.lineno) for a in node.names if a.name.startswith("statechart")]
    return found


def layers() -> list[tuple[int, list[str]]]:
    """The table of docs/architecture.md: (layer number, module names)."""
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\| (\d+) [^|]*\| ([^|]*)\|", line)
        if match:
            rows.append((int(match[1]), re.findall(r"`([\w.]+)`", match[2])))
    return rows


def layer_of(module: str, table: list[tuple[int, list[str]]]) -> int | None:
    """The layer of the longest table name that is ``module`` or a package holding it."""
    relative = module.removeprefix("statechart").removeprefix(".") or "statechart"
    best: tuple[int, int] | None = None
    for number, names in table:
        for name in names:
            if relative == name or relative.startswith(name + "."):
                if best is None or len(name) > best[1]:
                    best = (number, len(name))
    return best[0] if best else None


def test_the_table_names_every_module_once() -> None:
    table = layers()
    assert [n for n, _ in table] == list(range(len(table)))
    names = [name for _, row in table for name in row]
    assert len(names) == len(set(names))
    unplaced = sorted(m for m in MODULES if layer_of(m, table) is None)
    assert unplaced == [], "modules docs/architecture.md does not place in a layer"


def test_every_arrow_points_down_the_layers() -> None:
    table = layers()
    upward = []
    for module in sorted(MODULES):
        here = layer_of(module, table)
        for target, _, line in imports(module):
            there = layer_of(target, table)
            if there is not None and here is not None and there > here:
                upward.append(f"{MODULES[module].relative_to(ROOT)}:{line}: {module} (layer {here}) imports "
                              f"{target} (layer {there})")
    assert upward == []


def test_no_module_imports_an_underscore_name_from_another() -> None:
    private = []
    for module in sorted(MODULES):
        for target, name, line in imports(module):
            if target != module and (name.startswith("_") or target.rsplit(".", 1)[-1].startswith("_")):
                private.append(f"{MODULES[module].relative_to(ROOT)}:{line}: {module} imports {name or target} "
                               f"from {target}")
    assert private == []


def test_no_modules_import_each_other_round_a_loop() -> None:
    graph = {m: {t for t, _, _ in imports(m) if t in MODULES and t != m} for m in MODULES}
    # An import of a package runs its __init__, which is an arrow to the package module.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    assert loops == []


def test_the_guard_sees_what_it_guards() -> None:
    """The checks above are only as good as the import reader: it must see a known arrow."""
    assert ("statechart.interpreter", "", 0) not in imports("statechart.instance")
    assert any(target == "statechart.interpreter" for target, _, _ in imports("statechart.instance"))
    assert layer_of("statechart.store.core", layers()) == 4 and layer_of("statechart.cli.store", layers()) == 9
