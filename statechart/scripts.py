"""``script`` actions: a few Python assignment statements, compiled through the expression rules.

SCXML's ``<script>`` runs datamodel code. We accept the part of Python that stays safe and
means something for a data model: ``name = expr``, ``name += expr`` (any augmented operator),
``name[key] = expr``, and bare expressions; every right-hand side goes through the same
allow-list as any other expression. A plain name assignment may create a data key (that
is how SCXML scripts declare variables), unlike ``assign``, which only changes declared keys.
"""

from __future__ import annotations

import ast
from typing import Any, Callable

from .quoting import quote
from .jsonvalues import json_value
from .expressions import RESERVED_NAMES, SAFE_BUILTINS, Expression, ExpressionSyntaxError, compile_expression

__all__ = ["compile_script", "script_names"]

_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
              ast.Pow: "**", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>"}


class _Source:
    """Script text with its line starts computed once, so locating a node costs only its own line.

    ``ast.get_source_segment`` splits the whole source on every call, which made compiling a
    script quadratic in its length (2,000 lines took seconds); this keeps it linear.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.splitlines(keepends=True)
        self.starts: list[int] = []
        position = 0
        for line in self.lines:
            self.starts.append(position)
            position += len(line)
        self.starts.append(position)

    def offset(self, lineno: int, byte_column: int) -> int:
        """The character offset of ``(lineno, byte_column)`` (ast columns count UTF-8 bytes)."""
        index = min(max(lineno - 1, 0), len(self.lines))
        line = self.lines[index] if index < len(self.lines) else ""
        column = len(line.encode("utf-8")[:byte_column].decode("utf-8", errors="ignore"))
        return self.starts[index] + column

    def start(self, node: ast.AST) -> int:
        return self.offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]

    def segment(self, node: ast.AST) -> str:
        end_line, end_column = getattr(node, "end_lineno", None), getattr(node, "end_col_offset", None)
        if end_line is None or end_column is None:
            return ""
        return self.text[self.start(node):self.offset(end_line, end_column)]


def _offset(source: _Source, node: ast.AST) -> int:
    return source.start(node)


def _expression(source: _Source, node: ast.AST, machine_name: str) -> Expression:
    text = source.segment(node)
    try:
        return compile_expression(text, machine_name=machine_name)
    except ExpressionSyntaxError as error:
        raise ExpressionSyntaxError(error.message, _offset(source, node) + error.offset, source.text) from None


def _target_name(source: _Source, node: ast.expr) -> str:
    if not isinstance(node, ast.Name) or node.id.startswith("_") or node.id in RESERVED_NAMES \
            or node.id in SAFE_BUILTINS:
        raise ExpressionSyntaxError(
            f"cannot assign to `{quote(source.segment(node))}`; a script assigns data names",
            _offset(source, node), source.text)
    return node.id


def script_names(source: str) -> tuple[set[str], set[str]]:
    """The data names a script gives values (``name = ...``, ``name += ...``) and every name it
    reads (a superset: builtins and comprehension variables included). Empty when the script
    does not parse (compiling it reports that)."""
    try:
        tree = ast.parse(source, mode="exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set(), set()
    assigned: set[str] = set()
    for statement in tree.body:
        targets = statement.targets if isinstance(statement, ast.Assign) else (
            [statement.target] if isinstance(statement, ast.AugAssign) else [])
        assigned.update(target.id for target in targets if isinstance(target, ast.Name))
    read = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    read.update(node.target.id for node in ast.walk(tree)  # `n += 1` reads n too
                if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name))
    return assigned, read


def compile_script(source: str, *, machine_name: str = "") -> Callable[[Any], None]:
    """Compile statements into one action callable; raises ExpressionSyntaxError with an offset."""
    try:
        tree = ast.parse(source, mode="exec")
    except SyntaxError as error:
        lines = source.splitlines(keepends=True)
        offset = sum(len(line) for line in lines[: (error.lineno or 1) - 1]) + max((error.offset or 1) - 1, 0)
        raise ExpressionSyntaxError(f"invalid script syntax: {error.msg}", offset, source) from None
    except (RecursionError, MemoryError):  # the parser recurses (and allocates) per nesting level
        raise ExpressionSyntaxError("script is too deeply nested", 0, source) from None
    located = _Source(source)
    steps: list[Callable[[Any], None]] = []
    for statement in tree.body:
        steps.append(_statement(located, statement, machine_name))

    def run(ctx: Any) -> None:
        for step in steps:
            step(ctx)

    return run


def _statement(source: _Source, statement: ast.stmt, machine_name: str) -> Callable[[Any], None]:
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target = statement.targets[0]
        value = _expression(source, statement.value, machine_name)
        if isinstance(target, ast.Subscript):
            container = _expression(source, target.value, machine_name)
            key = _expression(source, target.slice, machine_name)

            def set_item(ctx: Any) -> None:
                ctx.prepare_for_python()  # nested containers are about to change in place
                args = (ctx.data, ctx.event, ctx.In, ctx.system)
                target, index = container.evaluate(*args), key.evaluate(*args)
                if isinstance(target, dict) and type(index) is not str:
                    raise TypeError(f"script: data keys are strings, not {type(index).__name__} ({index!r})")
                target[index] = json_value(value.evaluate(*args), "the value a script assigns")

            return set_item
        name = _target_name(source, target)

        def set_name(ctx: Any) -> None:
            ctx.data[name] = json_value(value.evaluate(ctx.data, ctx.event, ctx.In, ctx.system),
                                        f"the value a script assigns to {name!r}")

        return set_name
    if isinstance(statement, ast.AugAssign) and type(statement.op) in _OPERATORS:
        name = _target_name(source, statement.target)
        right = source.segment(statement.value)
        try:
            combined = compile_expression(f"{name} {_OPERATORS[type(statement.op)]} ({right})",
                                          machine_name=machine_name)
        except ExpressionSyntaxError as error:
            raise ExpressionSyntaxError(error.message, _offset(source, statement), source.text) from None

        def update(ctx: Any) -> None:
            ctx.data[name] = json_value(combined.evaluate(ctx.data, ctx.event, ctx.In, ctx.system),
                                        f"the value a script assigns to {name!r}")

        return update
    if isinstance(statement, ast.Expr):
        expression = _expression(source, statement.value, machine_name)
        return lambda ctx: expression.evaluate(ctx.data, ctx.event, ctx.In, ctx.system)
    if isinstance(statement, ast.Pass):
        return lambda ctx: None
    kind = type(statement).__name__
    raise ExpressionSyntaxError(
        f"{kind} statements are not allowed in a script; use `name = expr`, `name += expr`, "
        f"`name[key] = expr` or an expression", _offset(source, statement), source.text)
