"""A compiled machine -> an SCXML 1.0 document (Python datamodel), readable and re-importable.

The exporter writes from the compiled model (``model.py``): states in document order, each
transition as compiled, and executable content from the parsed YAML form every
:class:`model.Action` keeps in ``spec``. What SCXML cannot say is written in our extension
namespace (``sc:``, :data:`scxml_parse.STATECHART_NS`), so that importing the document again
(``scxml_import``) gives back an equal model: named Python actions and guards, ``emit``, a
``raise`` carrying data, ``after`` and ``on_done`` transitions, invariants, descriptions, the
machine version and its Python modules. The ``timer`` sends that ``after`` adds to a state's
entry and exit are not written: importing the ``sc:after`` transition creates them again.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

import attrs

from .model import ROOT, Action, MachineModel, State, StateKind, Transition
from .scxml_parse import SCXML_NS, STATECHART_NS

__all__ = ["export_scxml"]

#: Action verbs the compiler adds for `after`; they are implied by the `sc:after` transitions.
TIMER_VERBS = ("timer", "timer-cancel")
#: ``send`` keys written as attributes, with their SCXML names.
SEND_ATTRIBUTES = {"event": "event", "event_expr": "eventexpr", "target": "target", "target_expr": "targetexpr",
                   "type": "type", "type_expr": "typeexpr", "id": "id", "id_location": "idlocation",
                   "delay": "delay", "delay_expr": "delayexpr", "namelist": "namelist"}
INDENT = "  "
_XML_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@attrs.define
class _Node:
    """One element to write: a tag (``sc:`` prefixed for extensions), attributes in order, and
    either child elements or text."""

    tag: str
    attributes: list[tuple[str, str]] = attrs.field(factory=list)
    children: list["_Node"] = attrs.field(factory=list)
    text: str | None = None
    block_text: bool = False  # text written on its own indented lines (scripts)


def export_scxml(machine: Any) -> str:
    """The SCXML document of ``machine`` (a :class:`statechart.Machine` or its ``.model``)."""
    model: MachineModel = getattr(machine, "model", machine)
    if not isinstance(model, MachineModel):
        raise TypeError(f"export_scxml takes a Machine or a MachineModel, not {type(machine).__name__}")
    return _Exporter(model).document()


class _Exporter:
    def __init__(self, model: MachineModel) -> None:
        self.model = model
        self.states = model.states

    # -- the document ----------------------------------------------------------------------------
    def document(self) -> str:
        model, root = self.model, self.states[ROOT]
        attributes = [("xmlns", SCXML_NS), ("xmlns:sc", STATECHART_NS), ("version", "1.0"),
                      ("datamodel", "python"), ("name", model.name)]
        initial_node = None
        if root.initial is not None and (root.initial.actions or not self.is_default_initial(root)):
            if root.initial.actions:
                initial_node = _Node("sc:initial", children=[self.initial_transition(root.initial)])
            else:
                attributes.append(("initial", " ".join(root.initial.targets)))
        if model.late_binding:
            attributes.append(("binding", "late"))
        attributes.append(("sc:version", str(model.version)))
        if model.python_modules:
            attributes.append(("sc:python", " ".join(model.python_modules)))
        if model.description is not None:
            attributes.append(("sc:description", model.description))
        node = _Node("scxml", attributes)
        if root.invariant is not None:
            node.children.append(_Node("sc:invariant", [("expr", root.invariant)]))
        if model.data_spec:
            node.children.append(self.datamodel(model.data_spec))
        if model.script is not None:
            node.children.append(_script(model.script))
        if initial_node is not None:
            node.children.append(initial_node)
        node.children.extend(self.state(self.states[child]) for child in root.children)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + "\n".join(_render(node, 0)) + "\n"

    def is_default_initial(self, state: State) -> bool:
        """True when the initial transition enters the first proper child, as SCXML does by default."""
        proper = [c for c in state.children if self.states[c].kind is not StateKind.HISTORY]
        return state.initial is not None and state.initial.targets == tuple(proper[:1])

    def datamodel(self, data: dict[str, Any]) -> _Node:
        node = _Node("datamodel")
        for key, value in data.items():
            element = _Node("data", [("id", key)])
            if isinstance(value, dict) and set(value) == {"expr"}:
                element.attributes.append(("expr", _expression(value["expr"])))
            elif value is not None:
                element.text = json.dumps(value, ensure_ascii=False)
            node.children.append(element)
        return node

    # -- states -----------------------------------------------------------------------------------
    def state(self, state: State) -> _Node:
        if state.kind is StateKind.HISTORY:
            return self.history(state)
        tag = {StateKind.PARALLEL: "parallel", StateKind.FINAL: "final"}.get(state.kind, "state")
        node = _Node(tag, [("id", state.id)])
        initial_node = None
        if state.kind is StateKind.COMPOUND and state.initial is not None:
            if state.initial.actions:
                initial_node = _Node("initial", children=[self.initial_transition(state.initial)])
            elif not self.is_default_initial(state):
                node.attributes.append(("initial", " ".join(state.initial.targets)))
        if state.description is not None:
            node.attributes.append(("sc:description", state.description))
        if state.invariant is not None:
            node.children.append(_Node("sc:invariant", [("expr", state.invariant)]))
        if initial_node is not None:
            node.children.append(initial_node)
        if state.data_spec is not None:
            node.children.append(self.datamodel(state.data_spec))
        for tag_name, blocks in (("onentry", state.entry), ("onexit", state.exit)):
            for block in blocks:
                actions = [a for a in block if a.verb not in TIMER_VERBS]
                if actions or not block:
                    node.children.append(_Node(tag_name, children=_compiled_actions(actions)))
        node.children.extend(self.transition(t) for t in state.transitions)
        node.children.extend(self.state(self.states[child]) for child in state.children)
        if state.kind is StateKind.FINAL and state.done_data_spec is not None:
            node.children.append(_Node("donedata", children=_payload(state.done_data_spec)))
        return node

    def history(self, state: State) -> _Node:
        node = _Node("history", [("id", state.id)])
        if state.history_deep:
            node.attributes.append(("type", "deep"))
        if state.description is not None:
            node.attributes.append(("sc:description", state.description))
        if state.initial is not None:
            node.children.append(self.initial_transition(state.initial))
        return node

    def initial_transition(self, transition: Transition) -> _Node:
        return _Node("transition", [("target", " ".join(transition.targets))],
                     children=_compiled_actions(transition.actions))

    def transition(self, transition: Transition) -> _Node:
        label = _label(transition)
        attributes: list[tuple[str, str]] = []
        if transition.events:
            attributes.append(("event", label if transition.delay is None and not _is_on_done(transition)
                               else " ".join(transition.events)))
        if transition.cond_text is not None:
            attributes.append(("cond", _expression(transition.cond_text)))
        if transition.guard_name is not None:
            attributes.append(("sc:guard", transition.guard_name))
        if transition.targets:
            attributes.append(("target", " ".join(transition.targets)))
        if transition.internal:
            attributes.append(("type", "internal"))
        if transition.delay is not None:
            attributes.append(("sc:after", label[len("after "):]))
        elif _is_on_done(transition):
            attributes.append(("sc:on_done", "true"))
        if transition.description is not None:
            attributes.append(("sc:description", transition.description))
        return _Node("transition", attributes, children=_compiled_actions(transition.actions))


def _label(transition: Transition) -> str:
    """The label of a transition id ``<state>:<label>:<n>``: the event key as written, ``always``,
    ``after <duration>`` or ``on_done``."""
    return transition.id[len(transition.source) + 1 : transition.id.rindex(":")]


def _is_on_done(transition: Transition) -> bool:
    return _label(transition) == "on_done" and transition.events == (f"done.state.{transition.source}",)


# -- executable content --------------------------------------------------------------------------------
def _compiled_actions(actions: Iterable[Action]) -> list[_Node]:
    nodes: list[_Node] = []
    for action in actions:
        nodes.extend(_actions(action.spec))
    return nodes


def _action_list(spec: Any) -> list[_Node]:
    """A YAML action list (or a single action, as the compiler also accepts) -> elements."""
    if spec is None:
        return []
    nodes: list[_Node] = []
    for item in spec if isinstance(spec, list) else [spec]:
        nodes.extend(_actions(item))
    return nodes


def _actions(spec: Any) -> list[_Node]:
    """One action in its YAML form -> its element(s); an `assign` of several keys gives one each."""
    if isinstance(spec, str):
        return [_Node("sc:call", [("name", spec)])]
    if not isinstance(spec, dict):
        raise ValueError(f"cannot export the action {spec!r}")
    if "if" in spec:
        node = _Node("if", [("cond", _expression(spec["if"]))], children=_action_list(spec.get("then")))
        for branch in spec.get("elif") or []:
            node.children.append(_Node("elseif", [("cond", _expression(branch["cond"]))]))
            node.children.extend(_action_list(branch.get("then")))
        if "else" in spec:
            node.children.append(_Node("else"))
            node.children.extend(_action_list(spec["else"]))
        return [node]
    (verb, body), = spec.items()
    if verb == "assign":
        return [_Node("assign", [("location", key), ("expr", _expression(value))]) for key, value in body.items()]
    if verb in ("raise", "emit"):
        if isinstance(body, str):
            return [_Node("raise" if verb == "raise" else "sc:emit", [("event", body)])]
        if verb == "raise" and body.get("data") is None:
            return [_Node("raise", [("event", body["event"])])]
        return [_Node(f"sc:{verb}", [("event", body["event"])], children=_payload(body.get("data")))]
    if verb == "send":
        node = _Node("send")
        for key, value in body.items():
            if key == "namelist":
                node.attributes.append(("namelist", " ".join(value)))
            elif key in SEND_ATTRIBUTES:
                node.attributes.append((SEND_ATTRIBUTES[key], value if isinstance(value, str) else _literal(value)))
        if "data" in body:
            node.children.extend(_payload(body["data"], send=True))
        if "content" in body:
            node.children.append(_Node("content", [("expr", _expression(body["content"]))]))
        return [node]
    if verb == "cancel":
        if isinstance(body, dict):
            return [_Node("cancel", [("sendidexpr", _expression(body["id_expr"]))])]
        return [_Node("cancel", [("sendid", body)])]
    if verb == "log":
        if isinstance(body, dict):
            return [_Node("log", [(key, value if key == "label" else _expression(value))
                                  for key, value in body.items() if value is not None])]
        return [_Node("log", [("expr", _expression(body))])]
    if verb == "foreach":
        node = _Node("foreach", [(key, _expression(value) if key == "array" else value)
                                 for key, value in body.items() if key != "do"])
        node.children = _action_list(body.get("do"))
        return [node]
    if verb == "script":
        return [_script("\n".join(body) if isinstance(body, list) else body)]
    raise ValueError(f"cannot export the action {spec!r}")  # pragma: no cover - the compiler knows no other


def _payload(spec: Any, *, send: bool = False) -> list[_Node]:
    """Event data: a mapping becomes one <param> per key; one expression becomes <content expr>.

    ``send`` marks the expression form as `data` (merged with the namelist) rather than `content`."""
    if spec is None:
        return []
    if isinstance(spec, dict) and spec:
        return [_Node("param", [("name", key), ("expr", value if isinstance(value, str) else _literal(value))])
                for key, value in spec.items()]
    node = _Node("content", [("expr", _expression(spec) if spec != {} else "{}")])
    if send:
        node.attributes.append(("sc:data", "true"))
    return [node]


def _script(text: str) -> _Node:
    return _Node("script", text=text, block_text="\n" in text or text != text.strip())


def _expression(value: Any) -> str:
    return value if isinstance(value, str) else _literal(value)


def _literal(value: Any) -> str:
    """A YAML literal as the Python expression that evaluates to it."""
    return repr(value)


# -- writing XML ------------------------------------------------------------------------------------------
def _escape_text(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    return _check_characters(text)


def _escape_attribute(text: str) -> str:
    """Quoted attribute text; tabs and line breaks as character references, so that XML's
    attribute-value normalization keeps them."""
    text = (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("\t", "&#9;").replace("\n", "&#10;").replace("\r", "&#13;"))
    return '"' + _check_characters(text) + '"'


def _check_characters(text: str) -> str:
    bad = _XML_CHARACTERS.search(text)
    if bad:
        raise ValueError(f"the character {bad.group()!r} cannot be written in XML 1.0")
    return text


def _render(node: _Node, depth: int) -> list[str]:
    indent = INDENT * depth
    head = node.tag + "".join(f" {name}={_escape_attribute(value)}" for name, value in node.attributes)
    if node.text is not None and node.block_text:
        inner = INDENT * (depth + 1)
        lines = [inner + line if line else "" for line in node.text.split("\n")]
        return [f"{indent}<{head}>", *(_escape_text(line) for line in lines), f"{indent}</{node.tag}>"]
    if node.text is not None and node.text != "":
        return [f"{indent}<{head}>{_escape_text(node.text)}</{node.tag}>"]
    if not node.children:
        return [f"{indent}<{head}/>"]
    lines = [f"{indent}<{head}>"]
    for child in node.children:
        lines.extend(_render(child, depth + 1))
    lines.append(f"{indent}</{node.tag}>")
    return lines
