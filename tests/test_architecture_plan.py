"""Part of the house rules (issue 13): the analysis and the migration check plan through the
interpreter's public planning interface, and machine.py and instance.py import one way.

The structural tests read the source with ``ast`` (imports inside functions and
``TYPE_CHECKING`` blocks count); the behavioural ones check that the public planning functions
give what the engine itself does, so analysis and migrations still see the real semantics.
"""

from __future__ import annotations

import ast
from pathlib import Path

from hypothesis import HealthCheck, given, settings

import statechart
from statechart.analysis import explore
from statechart.interpreter import default_entry, plan_microstep
from statechart.migrate.apply import complete_configuration, done_events as machine_done_events
from statechart.resting import done_events, passing_reason
from strategies import Chart, charts

PACKAGE = Path(statechart.__file__).parent
FILE = "machines/x/v1.yaml"


def _module_name(path: Path, root: Path = PACKAGE.parent) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, root: Path = PACKAGE.parent) -> list[tuple[str, str | None]]:
    """(module, imported name or None) for every import in the file, wherever it is written;
    ``root`` is the folder holding the package."""
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            module = node.module or ""
            if node.level:
                module = f"{base}.{module}" if module else base
            found.extend((module, alias.name) for alias in node.names)
    return found


def _package_graph() -> dict[str, set[str]]:
    """statechart module -> the statechart modules it imports (``from . import x`` resolved to x)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = graph.setdefault(name, set())
        for module, imported in _imports(path):
            if imported is not None and f"{module}.{imported}" in modules:
                targets.add(f"{module}.{imported}")
            elif module in modules and module != "statechart":
                targets.add(module)
    return graph


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    """An import chain from ``start`` to ``goal``, or None."""
    seen = {start}
    stack = [[start]]
    while stack:
        chain = stack.pop()
        for target in sorted(graph.get(chain[-1], ())):
            if target == goal:
                return chain + [target]
            if target not in seen:
                seen.add(target)
                stack.append(chain + [target])
    return None


def _private_uses(path: Path) -> list[str]:
    """Underscore names imported from another module, and underscore attributes read on anything
    but ``self``/``cls`` (a private name of another module's object)."""
    found = [f"line {node.lineno}: from {node.module} import {alias.name}"
             for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.ImportFrom)
             for alias in node.names if alias.name.startswith("_") and not alias.name.startswith("__")]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__") \
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_analysis_and_the_migration_check_use_no_private_name_of_another_module() -> None:
    for relative in ("analysis.py", "migrate/check.py"):
        assert _private_uses(PACKAGE / relative) == [], relative


def test_the_scanner_sees_private_imports_and_attributes(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from .interpreter import _PlanBuilder\n\ndef f(engine):\n    return engine._selections\n")
    assert _private_uses(sample) == ["line 1: from interpreter import _PlanBuilder", "line 4: engine._selections"]


def test_analysis_does_not_depend_on_migrate() -> None:
    graph = _package_graph()
    assert not any(target.startswith("statechart.migrate") for target in graph["statechart.analysis"])


def test_machine_and_instance_form_no_import_cycle() -> None:
    graph = _package_graph()
    assert "statechart.instance" in graph["statechart.machine"]  # the arrow that is meant to exist
    assert _reaches(graph, "statechart.instance", "statechart.machine") is None


def test_the_import_graph_sees_imports_inside_functions_and_type_checking_blocks(tmp_path: Path) -> None:
    sample = tmp_path / "statechart" / "instance.py"
    sample.parent.mkdir()
    sample.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .machine import Machine\n"
                      "def f():\n    from . import machine\n")
    imports = _imports(sample, tmp_path)
    assert ("statechart.machine", "Machine") in imports and ("statechart", "machine") in imports


# -- the planning interface behaves as the engine -----------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(charts())
def test_plan_microstep_is_the_plan_the_engine_takes(chart: Chart) -> None:
    machine = statechart.loads(chart.yaml, "machines/generated/v1.yaml")
    engine = machine.engine
    space = explore(machine, limit=300)
    for (configuration, history_key), _, edge in space.graph.edges(data=True):
        history = dict(history_key)
        transition = edge["transition"]
        planned = plan_microstep(engine, configuration, (transition,), history)
        assert planned == engine.plan(configuration, (transition,), history)


ROUTED = """machine: x
version: 1
states:
  a:
    always: b
  b:
    on: {GO: work}
  work:
    type: parallel
    states:
      left:
        states:
          l1: {on: {L: l2}}
          l2: {type: final}
      right:
        states:
          r1: {on: {R: r2}}
          r2: {type: final}
    on_done: finished
  finished: {type: final}
"""


def test_passing_reason_tells_passed_through_configurations_from_resting_ones() -> None:
    model = statechart.loads(ROUTED, FILE).model
    assert passing_reason(model, frozenset({"a"})) == "eventless"
    assert passing_reason(model, frozenset({"b"})) is None
    assert passing_reason(model, frozenset({"work", "left", "l1", "right", "r2"})) is None
    assert passing_reason(model, frozenset({"work", "left", "l2", "right", "r2"})) == "done"
    assert passing_reason(model, frozenset({"finished"})) is None


def test_done_events_and_default_entry_match_what_migrations_use() -> None:
    machine = statechart.loads(ROUTED, FILE)
    configuration = frozenset({"work", "left", "l2", "right", "r2"})
    assert done_events(machine.model, configuration) == ["work", "left", "right"]
    assert machine_done_events(machine, configuration) == done_events(machine.model, configuration)
    assert default_entry(machine.engine, ["r2"]) == frozenset({"work", "left", "l1", "right", "r2"})
    assert complete_configuration(machine, ["r2"]) == default_entry(machine.engine, ["r2"])
