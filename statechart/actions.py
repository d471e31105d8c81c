"""Executable content compiled into closures over the step context.

Each ``make_*`` function returns the callable stored in :class:`model.Action`. They are built
once at load; at run time an action is one call that reads the context the interpreter hands
it (``interpreter.ActionContext``). A failing action raises; the interpreter turns that into
``error.execution`` and skips the rest of its block, as SCXML prescribes.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import attrs

from .durations import parse_duration
from .errors import CallbackError, StatechartError
from .expressions import Expression
from .jsonvalues import MAX_INT, json_value
from .limits import charge

__all__ = [
    "Payload",
    "make_payload",
    "make_assign",
    "make_raise",
    "SendSpec",
    "make_send",
    "make_simple_send",
    "make_cancel",
    "make_log",
    "make_if",
    "make_foreach",
    "make_emit",
    "make_call",
    "run_actions",
]

Run = Callable[[Any], None]
Payload = Callable[[Any], Any]


def evaluate(expression: Expression, ctx: Any) -> Any:
    return expression.evaluate(ctx.data, ctx.event, ctx.In, ctx.system)


def _no_payload(ctx: Any) -> None:
    return None


def make_payload(spec: dict[str, Expression | Any] | Expression | None) -> Payload:
    """A payload is a mapping of key -> expression (other values are literals) or one expression."""
    if spec is None:
        return _no_payload
    if isinstance(spec, Expression):
        evaluate_one = spec.evaluate

        def single(ctx: Any) -> Any:
            return evaluate_one(ctx.data, ctx.event, ctx.In, ctx.system)

        return single
    items = tuple(spec.items())

    def mapping(ctx: Any) -> dict[str, Any]:
        data, event, in_state, system = ctx.data, ctx.event, ctx.In, ctx.system
        return {
            key: value.evaluate(data, event, in_state, system) if isinstance(value, Expression) else value
            for key, value in items
        }

    return mapping


def run_actions(actions: Sequence[Any], ctx: Any) -> None:
    for action in actions:
        action.run(ctx)


def make_assign(path: tuple[str, ...], expression: Expression, where: str = "") -> Run:
    """Assign to a data key or a dotted path; containers on the path are copied, never mutated,
    so the snapshot the step started from stays intact.

    The value must be JSON data (checked and copied in one pass): a NaN, a tuple or ``str`` itself
    would otherwise be accepted here and fail only when the snapshot is written, or come back
    changed from a round trip. ``where`` names the assign (file:line) in the error.execution."""
    evaluate_value = expression.evaluate
    key = path[0]
    label = f"the value assigned to {'.'.join(path)!r}" + (f" at {where}" if where else "")
    low, high = -MAX_INT, MAX_INT
    if len(path) == 1:

        def assign_key(ctx: Any) -> None:
            data = ctx.data
            if key not in data:
                raise KeyError(f"cannot assign to {key!r}: it is not a declared data key")
            value = evaluate_value(data, ctx.event, ctx.In, ctx.system)
            if type(value) is not int or not low <= value <= high:  # counters skip the call
                value = json_value(value, label)
            data[key] = value

        return assign_key

    def assign_path(ctx: Any) -> None:
        data = ctx.data
        value = json_value(evaluate_value(data, ctx.event, ctx.In, ctx.system), label)
        container: dict[str, Any] = data
        for depth, step in enumerate(path[:-1]):
            child = container.get(step)
            if not isinstance(child, dict):
                where = ".".join(path[: depth + 1])
                raise KeyError(f"cannot assign to {'.'.join(path)!r}: {where!r} is not a mapping")
            child = dict(child)
            container[step] = child
            container = child
        container[path[-1]] = value

    return assign_path


def make_raise(event: str, payload: Payload) -> Run:
    def raise_event(ctx: Any) -> None:
        ctx.raise_event(event, payload(ctx))

    return raise_event


@attrs.frozen
class SendSpec:
    """Everything ``<send>`` can say; a field and its ``*_expr`` twin are never both set."""

    event: str | None = None
    event_expr: Expression | None = None
    target: str | None = None
    target_expr: Expression | None = None
    type: str | None = None
    type_expr: Expression | None = None
    id: str | None = None
    id_location: str | None = None
    delay: float | None = None
    delay_expr: Expression | None = None
    namelist: tuple[str, ...] = ()
    payload: Payload | None = None
    content: Expression | None = None


#: Send types this engine delivers: its own SCXML event processor (under either name).
SCXML_SEND_TYPES = (None, "scxml", "http://www.w3.org/TR/scxml/#SCXMLEventProcessor")


def make_send(spec: SendSpec) -> Run:
    """SCXML 6.2: every expression is evaluated when the send runs; any failure is error.execution
    and nothing is sent."""

    def send(ctx: Any) -> None:
        name = spec.event if spec.event_expr is None else str(evaluate(spec.event_expr, ctx))
        kind = spec.type if spec.type_expr is None else evaluate(spec.type_expr, ctx)
        if kind not in SCXML_SEND_TYPES:
            raise ValueError(f"send type {kind!r} is not supported; only the SCXML event processor is")
        target = spec.target if spec.target_expr is None else evaluate(spec.target_expr, ctx)
        seconds = spec.delay if spec.delay_expr is None else parse_duration(evaluate(spec.delay_expr, ctx))
        if spec.content is not None:
            data = evaluate(spec.content, ctx)
        elif spec.namelist or spec.payload is not None:
            data = {}
            for data_name in spec.namelist:
                if data_name not in ctx.data:
                    raise NameError(f"namelist names {data_name!r}, which is not a data key")
                data[data_name] = ctx.data[data_name]
            if spec.payload is not None:
                data.update(spec.payload(ctx))
        else:
            data = None
        if data is not None:
            data = json_value(data, f"the data of send {name!r}")
        ctx.send_to(target, name, data, delay=seconds or 0.0, id=spec.id, id_location=spec.id_location)

    return send


def make_simple_send(event: str, delay: float | None, send_id: str | None) -> Run:
    """A send to self with no payload (what `after` compiles to)."""
    return make_send(SendSpec(event=event, delay=delay, id=send_id))


def make_cancel(send_id: str | None, send_id_expr: Expression | None) -> Run:
    def cancel(ctx: Any) -> None:
        ctx.cancel(send_id if send_id_expr is None else str(evaluate(send_id_expr, ctx)))

    return cancel


def make_log(label: str | None, expression: Expression | None) -> Run:
    def log(ctx: Any) -> None:
        ctx.log(label, None if expression is None else evaluate(expression, ctx))

    return log


def make_if(branches: tuple[tuple[Expression | None, tuple[Any, ...]], ...]) -> Run:
    def if_(ctx: Any) -> None:
        for condition, actions in branches:
            if condition is None or evaluate(condition, ctx):
                for action in actions:
                    action.run(ctx)
                return

    return if_


def make_foreach(array: Expression, item: str, index: str | None, actions: tuple[Any, ...]) -> Run:
    """SCXML 4.6: iterate over a shallow copy, so the body may change the array safely."""

    def foreach(ctx: Any) -> None:
        values = evaluate(array, ctx)
        if isinstance(values, dict):
            values = list(values.values())
        elif not isinstance(values, (list, tuple)):
            raise TypeError(f"foreach needs a list, got {type(values).__name__}")
        charge(len(values))  # foreach iterations draw on the macrostep's budget, like comprehensions
        for position, value in enumerate(list(values)):
            ctx.data[item] = json_value(value, f"foreach item {item!r}")
            if index is not None:
                ctx.data[index] = position
            for action in actions:
                action.run(ctx)

    return foreach


def make_emit(event: str, payload: Payload) -> Run:
    def emit(ctx: Any) -> None:
        data = payload(ctx)
        ctx.emit(event, None if data is None else json_value(data, f"the data of emit {event!r}"))

    return emit


def make_call(name: str, function: Callable[[Any], Any]) -> Run:
    def call(ctx: Any) -> None:
        ctx.prepare_for_python()
        try:
            function(ctx)
        except StatechartError:  # already says what and where (a stand-in that refuses to run, ...)
            raise
        except Exception as error:  # noqa: BLE001 - named and located; the block stops as SCXML says
            raise CallbackError("action", name, function, error) from error

    call.__name__ = f"call_{name}"
    return call

