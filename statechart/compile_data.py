"""Data, expressions and Python bindings of a machine: the parts of the compiler that turn values
written in the YAML into expressions, initial-data functions and bound Python callables.

Every expression is compiled once here and remembered with where it was written, so that
:meth:`DataCompiler.check_names` can report a name no data key gives a value, at the end.
"""

from __future__ import annotations

import keyword
import math
import re
from typing import Any, Callable

from . import actions as act
from .compile_core import DATA_KEY, CompilerCore, closest, describe_value, mark_in
from .durations import parse_duration
from .expressions import RESERVED_NAMES, SAFE_BUILTINS, Expression, ExpressionSyntaxError, compile_expression
from .jsonvalues import copy_json, json_value
from .python_modules import ModuleRefused, bind_module
from .quoting import quote, quote_repr
from .yaml_loader import LocatedMap, Mark

__all__ = ["DataCompiler", "PLAIN_SECONDS", "DURATION_HINT"]

PLAIN_SECONDS = re.compile(r"^\s*(\d+(\.\d+)?|\.\d+)\s*$")
DURATION_HINT = "write a number and a unit (500ms, 30s, 5m, 2h, 1d), or a number of seconds"


class DataCompiler(CompilerCore):
    """Expressions, durations, payloads, JSON values, `data` blocks and Python bindings."""

    # -- expressions -------------------------------------------------------------------
    def expression(self, text: Any, mark: Mark, what: str, *, null: bool = False) -> Expression | None:
        """Compile an expression string; a YAML number or boolean (or null, where ``null``) is the
        expression of that literal."""
        if isinstance(text, str):
            source = text
        elif isinstance(text, (bool, int)) or (isinstance(text, float) and math.isfinite(text)) or (
                text is None and null):
            source = repr(text)
        else:
            self.problem(mark, f"{what} must be an expression string, got {describe_value(text)}"
                         + (f" ({quote_repr(text)})" if isinstance(text, float) else ""))
            return None
        try:
            expression = compile_expression(source, machine_name=self.machine_name)
        except ExpressionSyntaxError as error:
            self.problem(mark_in(text, mark, error.offset), f"{what}: {error.message}", f"in {quote_repr(source)}")
            return None
        if expression.names:
            self.name_uses.append((expression, text, mark, what))
        return expression

    def check_names(self) -> None:
        """Every name an expression reads must be one the machine gives data: a misspelled name
        (``amout`` for ``amount``) is a load error here instead of a guard that is silently never
        true. SCXML documents are exempt: there an undefined name is ``error.execution`` at run time
        (SCXML 5.3, 5.9), and documents rely on it."""
        if self.runtime_location_errors:
            return
        known = sorted(self.declared)
        for expression, text, mark, what in self.name_uses:
            for name in sorted(expression.names - self.declared):
                found = re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", expression.source)
                hint = closest(name, known)
                self.problem(mark_in(text, mark, found.start() if found else 0),
                             f"{what}: unknown name {quote_repr(name)}: no data key, assign or script gives it a value",
                             hint or "declare it under `data:` with an initial value, or assign it first")

    def duration(self, value: Any, mark: Mark) -> float | None:
        """A duration as written (``30s``, ``5m``, or a number of seconds) -> seconds."""
        if isinstance(value, str) and PLAIN_SECONDS.match(value):
            value = float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value) or value < 0:
                self.problem(mark, f"{quote_repr(value)} is not a duration", "a duration is a finite number of seconds >= 0")
                return None
        try:
            return parse_duration(value)
        except ValueError:
            shown = f"{quote_repr(value)}" if isinstance(value, str) else describe_value(value)
            self.problem(mark, f"{shown} is not a duration", DURATION_HINT)
            return None

    def payload(self, spec: Any, mark: Mark, what: str) -> act.Payload:
        if spec is None:
            return act.make_payload(None)
        if isinstance(spec, LocatedMap):
            compiled: dict[str, Any] = {}
            for key, value in spec.items():
                if isinstance(value, str):
                    compiled[key] = self.expression(value, spec.value_marks[key], f"{what} {quote_repr(key)}")
                else:
                    self.check_json(value, spec.value_marks[key], f"{what} {quote_repr(key)}")
                    compiled[key] = copy_json(value)
            return act.make_payload(compiled)
        if isinstance(spec, str):
            return act.make_payload(self.expression(spec, mark, what))
        self.problem(mark, f"{what} must be a mapping of key -> expression, or one expression")
        return act.make_payload(None)

    def check_json(self, value: Any, mark: Mark, what: str) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            self.problem(mark, f"{what}: {quote_repr(value)} is not JSON-compatible", "use a finite number or null")
            return
        if isinstance(value, (str, int, float, bool)) or value is None:
            return
        if isinstance(value, list):
            for item, item_mark in zip(value, getattr(value, "item_marks", [mark] * len(value))):
                self.check_json(item, item_mark, what)
            return
        if isinstance(value, dict):
            for key, item in value.items():
                self.check_json(item, getattr(value, "value_marks", {}).get(key, mark), what)
            return
        self.problem(mark, f"{what}: {quote_repr(value)} is not JSON-compatible")  # pragma: no cover

    def data(self, spec: Any, mark: Mark) -> Callable[[Any], dict[str, Any]]:
        if not isinstance(spec, LocatedMap):
            self.problem(mark, f"`data` must be a mapping of data key -> initial value, got {describe_value(spec)}")
            return lambda ctx: ctx.data
        entries: list[tuple[str, Any, bool]] = []
        for key, value in spec.items():
            key_mark = spec.key_marks[key]
            if not DATA_KEY.match(key) or keyword.iskeyword(key):
                self.problem(key_mark, f"data key {quote_repr(key)} is not a valid name",
                             "use letters, digits and _, not starting with a digit")
            elif key in RESERVED_NAMES or key in SAFE_BUILTINS:
                self.problem(key_mark, f"data key {quote_repr(key)} would hide the built-in name {quote_repr(key)} in expressions",
                             "choose another name")
            self.declared.add(key)
            if isinstance(value, LocatedMap) and set(value) == {"expr"}:
                expression = self.expression(value["expr"], value.value_marks["expr"], f"data {quote_repr(key)}")
                entries.append((key, expression, True))
            else:
                self.check_json(value, spec.value_marks[key], f"data {quote_repr(key)}")
                entries.append((key, copy_json(value), False))

        def initial_data(ctx: Any) -> dict[str, Any]:
            """SCXML 5.3: a value that fails to evaluate leaves the key None and raises error.execution."""
            data: dict[str, Any] = ctx.data
            for key, value, computed in entries:
                if not computed:
                    data[key] = copy_json(value)
                    continue
                try:  # a computed value must be JSON data, like an assigned one
                    data[key] = json_value(value.evaluate(data, ctx.event, ctx.In, ctx.system), f"data {key!r}")
                except Exception as error:  # noqa: BLE001
                    data[key] = None
                    ctx.error(error, f"data {quote_repr(key)}")
            return data

        return initial_data

    # -- python bindings ---------------------------------------------------------------
    def load_modules(self, spec: Any, mark: Mark) -> tuple[str, ...]:
        names = [spec] if isinstance(spec, str) else spec
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            self.problem(mark, "`python` must be a module name or a list of them",
                         "a dotted module (myapp.actions) or a .py file beside the YAML (actions.py)")
            return ()
        marks = getattr(names, "item_marks", [mark] * len(names))
        for name, name_mark in zip(names, marks):
            try:
                self.modules.append(bind_module(name, self.base_dir, self.python_policy))
            except ModuleRefused as refused:
                self.problem(name_mark, refused.message, refused.hint)
            except (Exception, SystemExit) as error:  # noqa: BLE001 - any import failure is the author's to fix
                self.problem(name_mark, f"cannot import Python module {quote_repr(name)}: {quote(str(error))}",
                             "the module raised while it was imported")
        return tuple(names)

    def bound(self, name: str, table: dict[str, Callable], mark: Mark, what: str) -> Callable | None:
        function = table.get(name)
        if function is not None and not callable(function):
            self.problem(mark, f"{what} {quote_repr(name)} is bound to {type(function).__name__}, which is not callable")
            return None
        if function is None:
            for module in self.modules:
                candidate = getattr(module, name, None)
                if callable(candidate):
                    function = candidate
                    break
        if function is None:
            known = set(table) | {n for m in self.modules for n in dir(m) if not n.startswith("_")}
            hint = closest(name, known) or (
                f"pass {what}s={{{quote_repr(name)}: ...}} to statechart.load() or name a module under `python:`"
            )
            self.problem(mark, f"unknown {what} {quote_repr(name)}", hint)
        return function

