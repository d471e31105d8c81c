"""Executable content in the YAML -> :class:`model.Action` values with compiled closures.

A part of the compiler (see :mod:`.compile_core`): it shares the compiler's problem list, expression compiler and
Python bindings, and keeps the verb-by-verb rules of actions out of the structural compiler.
"""

from __future__ import annotations

from typing import Any, Callable

from .quoting import quote_repr
from . import actions as act
from .compile_core import DATA_KEY, CompilerCore, closest
from .events import DESCRIPTOR_PATTERN
from .expressions import Expression, ExpressionSyntaxError
from .model import Action, Location
from .scripts import compile_script, script_names
from .jsonvalues import copy_json
from .yaml_loader import LocatedList, LocatedMap, Mark

__all__ = ["ActionCompiler", "ACTION_VERBS", "SEND_KEYS", "IF_KEYS"]

ACTION_VERBS = ("assign", "raise", "send", "cancel", "log", "if", "foreach", "emit", "script")
SEND_KEYS = ("event", "event_expr", "target", "target_expr", "type", "type_expr", "id", "id_location", "delay",
             "delay_expr", "namelist", "data", "content")
IF_KEYS = ("if", "then", "elif", "else")


def _event_spec(body: Any) -> Any:
    """``raise: E`` and ``raise: {event: E}`` mean the same: keep one form, so the hash agrees."""
    if isinstance(body, dict) and set(body) == {"event"}:
        return body["event"]
    return copy_json(body)


class ActionCompiler(CompilerCore):
    """Actions, verb by verb (uses ``expression``, ``duration``, ``payload`` and ``bound`` of
    :class:`compile_data.DataCompiler`)."""

    def action_list(self, spec: Any, mark: Mark, what: str) -> tuple[Action, ...]:
        if spec is None:
            return ()
        if isinstance(spec, LocatedList):
            items = list(zip(spec, spec.item_marks))
        else:
            items = [(spec, mark)]
        result: list[Action] = []
        for item, item_mark in items:
            action = self.action(item, item_mark, what)
            if isinstance(action, tuple):
                result.extend(action)
            elif action is not None:
                result.append(action)
        return tuple(result)

    def action(self, spec: Any, mark: Mark, what: str) -> Action | None:
        location = self.location(mark)
        if isinstance(spec, str):
            function = self.bound(spec, self.actions, mark, "action")
            if function is None:
                return None
            return Action("call", spec, act.make_call(spec, function), spec, location)
        if not isinstance(spec, LocatedMap):
            self.problem(mark, f"an action in {what} must be a Python action name or a mapping with one verb",
                         f"verbs: {', '.join(ACTION_VERBS)}")
            return None
        verbs = [k for k in spec if k in ACTION_VERBS]
        if "if" in spec:
            self.unknown_keys(spec, IF_KEYS, "an `if` action")
            return self.if_action(spec, location, what)
        if len(verbs) != 1:
            if not spec:
                self.problem(mark, f"an empty action in {what}", f"write one of: {', '.join(ACTION_VERBS)}")
            if not verbs:
                for key in spec:
                    self.problem(spec.key_marks[key], f"unknown action {quote_repr(key)} in {what}",
                                 closest(key, ACTION_VERBS) or f"verbs: {', '.join(ACTION_VERBS)}")
            else:
                self.problem(mark, f"an action has exactly one verb, found {', '.join(verbs)}",
                             "write each as its own list item")
            return None
        verb = verbs[0]
        self.unknown_keys(spec, (verb,), f"a `{verb}` action")
        body, body_mark = spec[verb], spec.value_marks[verb]
        builder = getattr(self, f"{verb}_action")
        return builder(body, body_mark, location, what)

    def assign_action(self, body: Any, mark: Mark, location: Location, what: str) -> Action | None:
        if not isinstance(body, LocatedMap) or not body:
            self.problem(mark, "`assign` takes a mapping of data key (or dotted path) -> expression")
            return None
        parts = []
        for key, value in body.items():
            path = tuple(key.split("."))
            if not all(DATA_KEY.match(p) for p in path):
                self.problem(body.key_marks[key], f"{quote_repr(key)} is not a data key or dotted path")
                continue
            self.declared.add(path[0])
            expression = self.expression(value, body.value_marks[key], f"assign to {quote_repr(key)}", null=True)
            if expression is not None:
                parts.append(Action("assign", f"{key} = {expression.source}", act.make_assign(path, expression, str(location)),
                                    {"assign": {key: expression.source}}, location))
        if len(parts) != len(body):
            return None
        return tuple(parts)  # one action per location, as SCXML writes one <assign> each

    def raise_action(self, body: Any, mark: Mark, location: Location, what: str) -> Action | None:
        event, payload = self.event_and_payload(body, mark, "raise")
        if event is None:
            return None
        return Action("raise", f"raise {event}", act.make_raise(event, payload), {"raise": _event_spec(body)},
                      location)

    def emit_action(self, body: Any, mark: Mark, location: Location, what: str) -> Action | None:
        event, payload = self.event_and_payload(body, mark, "emit")
        if event is None:
            return None
        return Action("emit", f"emit {event}", act.make_emit(event, payload), {"emit": _event_spec(body)},
                      location)

    def event_and_payload(self, body: Any, mark: Mark, verb: str) -> tuple[str | None, act.Payload]:
        if isinstance(body, str):
            return self.event_name(body, mark, verb), act.make_payload(None)
        if isinstance(body, LocatedMap):
            self.unknown_keys(body, ("event", "data"), f"a `{verb}` action")
            if "event" not in body:
                self.problem(mark, f"`{verb}` needs an `event`")
                return None, act.make_payload(None)
            event = self.event_name(body["event"], body.value_marks["event"], verb)
            payload = self.payload(body.get("data"), body.value_marks.get("data", mark), f"{verb} data")
            return event, payload
        self.problem(mark, f"`{verb}` takes an event name or a mapping with `event` and `data`")
        return None, act.make_payload(None)

    def event_name(self, name: Any, mark: Mark, verb: str) -> str | None:
        if not isinstance(name, str) or not DESCRIPTOR_PATTERN.match(name) or "*" in name or name.endswith("."):
            self.problem(mark, f"{quote_repr(name)} is not a valid event name for `{verb}`",
                         "event names are dotted words such as PAY or order.paid")
            return None
        return name

    def send_action(self, body: Any, mark: Mark, location: Location, what: str) -> Action | None:
        if not isinstance(body, LocatedMap):
            self.problem(mark, "`send` takes a mapping with `event` and optional `delay`, `id`, `data`")
            return None
        self.unknown_keys(body, SEND_KEYS, "a `send` action")
        fields: dict[str, Any] = {}
        for plain, computed in (("event", "event_expr"), ("target", "target_expr"), ("type", "type_expr"),
                                ("delay", "delay_expr"), ("id", "id_location")):
            if plain in body and computed in body:
                self.problem(body.key_marks[computed], f"`send` takes `{plain}` or `{computed}`, not both")
        if "event" not in body and "event_expr" not in body:
            self.problem(mark, "`send` needs an `event` (or an `event_expr` computing it)")
            return None
        if "event" in body:
            fields["event"] = self.event_name(body["event"], body.value_marks["event"], "send")
            if fields["event"] is None:
                return None
        for key in ("event_expr", "target_expr", "type_expr", "delay_expr", "content"):
            if key in body:
                fields[key] = self.expression(body[key], body.value_marks[key], f"send {key}")
        for key in ("target", "type", "id", "id_location"):
            if key in body:
                if not isinstance(body[key], str):
                    self.problem(body.value_marks[key], f"send `{key}` must be a string")
                else:
                    fields[key] = body[key]
        if "id_location" in fields and not DATA_KEY.match(fields["id_location"]):
            self.problem(body.value_marks["id_location"], "send `id_location` must be a data key")
        elif "id_location" in fields:
            self.declared.add(fields["id_location"])
        if "delay" in body:
            fields["delay"] = self.duration(body["delay"], body.value_marks["delay"])
        if "namelist" in body:
            names = body["namelist"]
            if not isinstance(names, list) or not all(isinstance(n, str) and DATA_KEY.match(n) for n in names):
                self.problem(body.value_marks["namelist"], "send `namelist` must be a list of data keys")
            else:
                fields["namelist"] = tuple(names)
        if "namelist" in body and "content" in body:
            self.problem(body.key_marks["namelist"], "`send` takes `namelist` or `content`, not both",
                         "`content` is the whole payload; put named values in `data` instead")
        if "data" in body:
            if "content" in body:
                self.problem(body.key_marks["content"], "`send` takes `data` or `content`, not both",
                             "`data` builds a mapping of named values; `content` is the whole payload")
            fields["payload"] = self.payload(body["data"], body.value_marks["data"], "send data")
        event_text = fields.get("event") or f"({body.get('event_expr')})"
        text = f"send {event_text}" + (f" after {body['delay']}" if fields.get("delay") else "")
        return Action("send", text, act.make_send(act.SendSpec(**fields)), {"send": copy_json(body)}, location)

    def cancel_action(self, body: Any, mark: Mark, location: Location, what: str) -> Action | None:
        if isinstance(body, LocatedMap) and set(body) == {"id_expr"}:
            expression = self.expression(body["id_expr"], body.value_marks["id_expr"], "cancel id_expr")
            return Action("cancel", f"cancel ({body['id_expr']})", act.make_cancel(None, expression),
                          {"cancel": copy_json(body)}, location)
        if not isinstance(body, str):
            self.problem(mark, "`cancel` takes the id of a send, or `{id_expr: <expression>}`")
            return None
        return Action("cancel", f"cancel {body}", act.make_cancel(body, None), {"cancel": body}, location)

    def script_action(self, body: Any, mark: Mark, location: Location, what: str) -> Action | None:
        if isinstance(body, list) and all(isinstance(item, str) for item in body):
            body = "\n".join(body)
        if not isinstance(body, str):
            self.problem(mark, "`script` takes Python statements as a string")
            return None
        assigned, read = script_names(body)
        self.declared.update(assigned)
        self.script_reads.update(read)
        try:
            run = compile_script(body, machine_name=self.machine_name)
        except ExpressionSyntaxError as error:
            line = mark.line + body.count("\n", 0, error.offset)
            self.problem(Mark(line, mark.column), f"script: {error.message}", f"in {quote_repr(body)}")
            return None
        return Action("script", f"script {body.splitlines()[0] if body else ''}", run, {"script": body}, location)

    def log_action(self, body: Any, mark: Mark, location: Location, what: str) -> Action | None:
        label, expression = None, None
        if isinstance(body, LocatedMap):
            self.unknown_keys(body, ("label", "expr"), "a `log` action")
            label = body.get("label")
            if label is not None and not isinstance(label, str):
                self.problem(body.value_marks["label"], "a log `label` must be a string")
            if "expr" in body:
                expression = self.expression(body["expr"], body.value_marks["expr"], "log expr")
        else:
            expression = self.expression(body, mark, "log")
        return Action("log", f"log {label or ''} {expression.source if expression else ''}".strip(),
                      act.make_log(label, expression), {"log": copy_json(body)}, location)

    def if_action(self, spec: LocatedMap, location: Location, what: str) -> Action | None:
        branches: list[tuple[Expression | None, tuple[Action, ...]]] = []
        condition = self.expression(spec["if"], spec.value_marks["if"], "if")
        if "then" not in spec:
            self.problem(spec.key_marks["if"], "`if` needs a `then` list of actions")
        branches.append((condition, self.action_list(spec.get("then"), spec.value_marks.get("then", spec.mark), what)))
        elifs = spec.get("elif") or []
        if not isinstance(elifs, list):
            self.problem(spec.value_marks["elif"], "`elif` takes a list of {cond, then} mappings")
            elifs = []
        for item, item_mark in zip(elifs, getattr(elifs, "item_marks", [])):
            if not isinstance(item, LocatedMap) or "cond" not in item:
                self.problem(item_mark, "each `elif` needs `cond` and `then`")
                continue
            self.unknown_keys(item, ("cond", "then"), "an `elif` branch")
            branches.append((self.expression(item["cond"], item.value_marks["cond"], "elif cond"),
                             self.action_list(item.get("then"), item.value_marks.get("then", item_mark), what)))
        if "else" in spec:
            branches.append((None, self.action_list(spec["else"], spec.value_marks["else"], what)))
        return Action("if", f"if {spec['if']}", act.make_if(tuple(branches)), copy_json(spec), location)

    def foreach_action(self, body: Any, mark: Mark, location: Location, what: str) -> Action | None:
        if not isinstance(body, LocatedMap):
            self.problem(mark, "`foreach` takes a mapping with `array`, `item`, optional `index`, and `do`")
            return None
        self.unknown_keys(body, ("array", "item", "index", "do"), "a `foreach` action")
        for required in ("array", "item"):
            if required not in body:
                self.problem(mark, f"`foreach` needs `{required}`")
                return None
        self.declared.update(body[key] for key in ("item", "index") if isinstance(body.get(key), str))
        array = self.expression(body["array"], body.value_marks["array"], "foreach array")
        invalid = [key for key in ("item", "index")
                   if key in body and (not isinstance(body[key], str) or not DATA_KEY.match(body[key]))]
        actions = self.action_list(body.get("do"), body.value_marks.get("do", mark), what)
        if invalid and self.runtime_location_errors:
            # SCXML 4.6 makes an invalid item or index an error.execution when the foreach runs.
            message = f"foreach `{invalid[0]}` {quote_repr(body[invalid[0]])} is not a valid data location"
            return Action("foreach", f"foreach {body['item']}", _failing(message), {"foreach": copy_json(body)},
                          location)
        for key in invalid:
            self.problem(body.value_marks[key], f"foreach `{key}` must be a data key")
        if array is None:
            return None
        return Action("foreach", f"foreach {body['item']} in {array.source}",
                      act.make_foreach(array, body["item"], body.get("index"), actions), {"foreach": copy_json(body)},
                      location)


def _failing(message: str) -> Callable[[Any], None]:
    def fail(ctx: Any) -> None:
        raise ValueError(message)

    return fail
