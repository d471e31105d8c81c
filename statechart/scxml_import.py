"""SCXML documents (Python datamodel) -> the located YAML vocabulary, ready for the compiler.

The importer does not interpret anything: it maps each SCXML element onto the YAML form that
means the same, keeping the element's line and column as the position of every key it
produces, so a compile error in an imported document points into the ``.scxml`` file. What
the YAML has no equivalent for (``<invoke>``, ECMAScript, the Basic HTTP I/O processor,
foreign elements) is refused with the element's name and line, never dropped.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import xml.parsers.expat
from pathlib import Path
from typing import Any

import attrs
import yaml

from .quoting import quote, quote_repr
from .json_text import MAX_JSON_DEPTH, json_depth
from .scxml_sources import MAX_SRC_BYTES, SourceRefused, read_src
from .errors import LoadError, Problem
from .yaml_loader import LocatedList, LocatedMap, Mark

__all__ = ["SCXML_NS", "STATECHART_NS", "parse_scxml", "scxml_to_document", "scxml_to_yaml", "document_to_yaml"]

SCXML_NS = "http://www.w3.org/2005/07/scxml"
#: Our extensions inside SCXML (named Python actions, emit, guards, `after` timers), for round trips.
STATECHART_NS = "https://statechart.dev/scxml"
_NAME = re.compile(r"[^a-z0-9_]+")
PLAIN_NUMBER = re.compile(r"^\s*(\d+(\.\d+)?|\.\d+)\s*$")


@attrs.define
class _Element:
    namespace: str
    tag: str
    attributes: dict[str, str]
    line: int
    column: int
    children: list["_Element"] = attrs.field(factory=list)
    text: str = ""
    markup: str = ""  # the element's inner XML, for <content> holding markup

    @property
    def mark(self) -> Mark:
        return Mark(self.line, self.column)

    def child_elements(self, tag: str) -> list["_Element"]:
        return [c for c in self.children if c.tag == tag and c.namespace == SCXML_NS]


#: How deep SCXML elements may nest (states, executable content, ...): real charts stay far below.
MAX_ELEMENT_DEPTH = 100


class _Refused(Exception):
    """Raised from an expat callback to stop parsing at a construct we do not read."""

    def __init__(self, line: int, column: int, message: str, hint: str) -> None:
        super().__init__(message)
        self.line, self.column, self.message, self.hint = line, column, message, hint


def parse_scxml(text: str | bytes, file: str) -> _Element:
    """Parse XML into elements that remember their line and column (ElementTree forgets them).

    Document type declarations are refused outright: they are the only way to declare
    entities, and entities are how an XML document reads files (external entities) or grows
    exponentially (nested internal entities). Elements nest at most :data:`MAX_ELEMENT_DEPTH`
    deep. Text is collected in chunks and joined once per element, so parsing stays linear in
    the size of the document however expat splits it.
    """
    parser = xml.parsers.expat.ParserCreate(namespace_separator="}")
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[_Element] = []
    chunks: list[list[str]] = []
    root: list[_Element] = []

    def where() -> tuple[int, int]:
        return parser.CurrentLineNumber, parser.CurrentColumnNumber + 1

    def start(name: str, attributes: dict[str, str]) -> None:
        if len(stack) >= MAX_ELEMENT_DEPTH:
            raise _Refused(*where(), f"elements nest more than {MAX_ELEMENT_DEPTH} deep",
                           "flatten the chart; real statecharts nest a handful of levels")
        namespace, _, tag = name.rpartition("}")
        element = _Element(namespace, tag, {k.rpartition("}")[2] if k.startswith(SCXML_NS) else k: v
                                            for k, v in attributes.items()},
                           *where())
        if stack:
            stack[-1].children.append(element)
        else:
            root.append(element)
        stack.append(element)
        chunks.append([])

    def end(name: str) -> None:
        stack.pop().text = "".join(chunks.pop())

    def characters(data: str) -> None:
        if chunks:
            chunks[-1].append(data)

    def doctype(name: str, system_id: str | None, public_id: str | None, has_internal_subset: bool) -> None:
        raise _Refused(*where(), "document type declarations (<!DOCTYPE>) are not accepted",
                       "remove the <!DOCTYPE ...> declaration; SCXML needs no DTD, and its entities "
                       "could read files or expand without bound")

    def entity(name: str, *args: Any) -> None:  # pragma: no cover - a DTD is refused before its entities
        raise _Refused(*where(), f"the entity declaration {quote_repr(name)} is not accepted",
                       "write the text out instead of declaring an entity")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = entity
    try:
        parser.Parse(text, True)
    except _Refused as refused:
        raise LoadError([Problem(file, refused.line, refused.column, refused.message, refused.hint)]) from None
    except xml.parsers.expat.ExpatError as error:
        raise LoadError([Problem(file, error.lineno, error.offset + 1,
                                 f"invalid XML: {xml.parsers.expat.ErrorString(error.code)}")]) from None
    return root[0]


class _Importer:
    def __init__(self, file: str, base_dir: Path, src_dir: str | os.PathLike[str] | None = None,
                 max_src_bytes: int = MAX_SRC_BYTES) -> None:
        self.file = file
        self.base_dir = base_dir
        self.src_dir = src_dir
        self.max_src_bytes = max_src_bytes
        self.problems: list[Problem] = []
        self.late_binding = False

    def problem(self, element: _Element, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(self.file, element.line, element.column, message, hint))

    def refuse(self, element: _Element, where: str) -> None:
        name = element.tag if element.namespace in (SCXML_NS, "") else f"{{{element.namespace}}}{element.tag}"
        if element.tag == "invoke":
            hint = "<invoke> is not supported yet; model the child service with send/emit and events"
        else:
            hint = "it has no equivalent in the YAML vocabulary"
        self.problem(element, f"<{quote(name)}> in {where} is not supported", hint)

    # -- helpers building located values -----------------------------------------------------
    @staticmethod
    def mapping(element: _Element, items: list[tuple[str, Any]]) -> LocatedMap:
        result = LocatedMap(element.mark)
        for key, value in items:
            result[key] = value
            result.key_marks[key] = element.mark
            result.value_marks[key] = element.mark
        return result

    @staticmethod
    def sequence(element: _Element, items: list[Any]) -> LocatedList:
        result = LocatedList(element.mark)
        for item in items:
            result.append(item)
            result.item_marks.append(getattr(item, "mark", element.mark))
        return result

    # -- document --------------------------------------------------------------------------------
    def document(self, root: _Element) -> LocatedMap | None:
        if root.tag != "scxml" or root.namespace != SCXML_NS:
            self.problem(root, f"the root element must be <scxml> in namespace {SCXML_NS}")
            return None
        datamodel = root.attributes.get("datamodel", "python")
        if datamodel not in ("python", "null"):
            self.problem(root, f"datamodel {quote_repr(datamodel)} is not supported",
                         "statechart evaluates Python expressions: use datamodel=\"python\"")
        binding = root.attributes.get("binding", "early")
        if binding not in ("early", "late"):
            self.problem(root, f"binding must be 'early' or 'late', not {quote_repr(binding)}")
        self.late_binding = binding == "late"
        stem = Path(self.file).stem
        name = root.attributes.get("name") or stem
        machine_name = _NAME.sub("_", name.lower()).strip("_") or "machine"
        if not machine_name[0].isalpha():
            machine_name = "m_" + machine_name
        version_text = root.attributes.get(f"{STATECHART_NS}}}version")
        items: list[tuple[str, Any]] = [("machine", machine_name)]
        match = re.fullmatch(r"v(\d+)", stem)
        items.append(("version", int(version_text) if version_text and version_text.isdigit()
                      else int(match.group(1)) if match else 1))
        description = root.attributes.get(f"{STATECHART_NS}}}description")
        if description is not None:
            items.append(("description", description))
        python = root.attributes.get(f"{STATECHART_NS}}}python")
        if python:
            modules = python.split()
            items.append(("python", modules[0] if len(modules) == 1 else self.sequence(root, modules)))
        if binding == "late":
            items.append(("binding", "late"))
        top_ids = {c.attributes.get("id") for c in root.children
                   if c.namespace == SCXML_NS and c.tag in ("state", "parallel", "final")}
        if "initial" in root.attributes:
            targets = root.attributes["initial"].split()
            items.append(("initial", targets[0] if len(targets) == 1 and targets[0] in top_ids
                          else self.initial_targets(root, root.attributes["initial"])))
        data: list[tuple[str, Any]] = []
        states: list[tuple[str, Any]] = []
        scripts: list[Any] = []
        for child in root.children:
            if child.namespace == STATECHART_NS and child.tag == "invariant":
                items.append(("invariant", child.attributes.get("expr", "")))
            elif child.namespace == STATECHART_NS and child.tag == "initial":
                if "initial" in root.attributes:
                    self.problem(child, "<sc:initial> and the initial attribute of <scxml> cannot both be given")
                items.append(("initial", self.initial_element(child)))
            elif child.namespace != SCXML_NS:
                self.refuse(child, "<scxml>")
            elif child.tag == "datamodel":
                data.extend(self.datamodel(child))
            elif child.tag in ("state", "parallel", "final"):
                states.append(self.state(child))
            elif child.tag == "script":
                scripts.append(self.script(child))
            else:
                self.refuse(child, "<scxml>")
        if data:
            items.append(("data", self.mapping(root, data)))
        if scripts:
            items.append(("script", self.sequence(root, scripts) if len(scripts) > 1 else scripts[0]))
        if not states:
            self.problem(root, "the document has no states")
        items.append(("states", _keyed(root, states)))
        return self.mapping(root, items)

    def initial_targets(self, element: _Element, text: str) -> Any:
        targets = text.split()
        if len(targets) == 1:
            return self.mapping(element, [("target", targets[0])])
        return self.mapping(element, [("target", self.sequence(element, targets))])

    # -- data ------------------------------------------------------------------------------------
    def datamodel(self, element: _Element) -> list[tuple[str, Any]]:
        entries = []
        for data in element.children:
            if data.namespace != SCXML_NS or data.tag != "data":
                self.refuse(data, "<datamodel>")
                continue
            data_id = data.attributes.get("id")
            if not data_id:
                self.problem(data, "<data> needs an id")
                continue
            entries.append((data_id, self.data_value(data)))
        return entries

    def data_value(self, data: _Element) -> Any:
        if "expr" in data.attributes:
            return self.mapping(data, [("expr", data.attributes["expr"])])
        try:
            if "src" in data.attributes:
                content = self.read_src(data)
                return None if content is None else _data_literal(data, content.strip())
            if data.text.strip() or data.children:
                return _data_literal(data, data.text.strip())
        except _TooDeepLiteral:
            self.too_deep(data)
        return None

    def too_deep(self, element: _Element) -> None:
        self.problem(element, f"<{element.tag}> holds a value nested more than {MAX_JSON_DEPTH} levels deep",
                     "flatten the value; machine data nests a handful of levels")

    # -- states ------------------------------------------------------------------------------------
    def state(self, element: _Element) -> tuple[str, LocatedMap]:
        state_id = element.attributes.get("id")
        if not state_id:
            self.problem(element, f"<{element.tag}> needs an id (generated ids are not supported)")
            state_id = f"_state_{element.line}_{element.column}"
        items: list[tuple[str, Any]] = []
        if element.tag == "parallel":
            items.append(("type", "parallel"))
        elif element.tag == "final":
            items.append(("type", "final"))
        entry, exit_, transitions, children, data = [], [], [], [], []
        initial = None
        done_data = None
        has_datamodel = False
        description = element.attributes.get(f"{STATECHART_NS}}}description")
        if description is not None:
            items.append(("description", description))
        for child in element.children:
            if child.namespace != SCXML_NS:
                if child.namespace == STATECHART_NS and child.tag == "invariant":
                    items.append(("invariant", child.attributes.get("expr", "")))
                    continue
                self.refuse(child, f"<{element.tag} id={quote_repr(state_id)}>")
            elif child.tag == "onentry":
                entry.append(self.block(child))
            elif child.tag == "onexit":
                exit_.append(self.block(child))
            elif child.tag == "transition" and element.tag != "final":
                transitions.append((child, self.transition(child)))
            elif child.tag in ("state", "parallel", "final", "history") and element.tag != "final":
                children.append(self.history(child) if child.tag == "history" else self.state(child))
            elif child.tag == "initial" and element.tag == "state":
                initial = self.initial_element(child)
            elif child.tag == "datamodel":
                has_datamodel = True
                data.extend(self.datamodel(child))
            elif child.tag == "donedata" and element.tag == "final":
                done_data = self.donedata(child)
            else:
                self.refuse(child, f"<{element.tag} id={quote_repr(state_id)}>")
        if "initial" in element.attributes and element.tag == "state":
            targets = element.attributes["initial"].split()
            direct = {c[0] for c in children}
            if len(targets) == 1 and targets[0] in direct:
                initial = targets[0]
            else:
                initial = self.initial_targets(element, element.attributes["initial"])
        if initial is not None:
            items.append(("initial", initial))
        if data or has_datamodel:
            items.append(("data", self.mapping(element, data)))
        if entry:
            items.append(("entry", self.blocks(element, entry)))
        if exit_:
            items.append(("exit", self.blocks(element, exit_)))
        items.extend(self.transitions(element, transitions))
        if done_data is not None:
            items.append(("done_data", done_data))
        if children:
            items.append(("states", _keyed(element, children)))
        return state_id, self.mapping(element, items)

    def history(self, element: _Element) -> tuple[str, LocatedMap]:
        state_id = element.attributes.get("id") or f"_history_{element.line}"
        items: list[tuple[str, Any]] = [("type", "history"),
                                        ("history", element.attributes.get("type", "shallow"))]
        description = element.attributes.get(f"{STATECHART_NS}}}description")
        if description is not None:
            items.append(("description", description))
        for child in element.children:
            if child.namespace == SCXML_NS and child.tag == "transition":
                targets = child.attributes.get("target", "").split()
                if targets:
                    items.append(("target", targets[0] if len(targets) == 1 else self.sequence(child, targets)))
                actions = self.block(child)
                if actions:
                    items.append(("actions", actions))
            else:
                self.refuse(child, f"<history id={quote_repr(state_id)}>")
        return state_id, self.mapping(element, items)

    def initial_element(self, element: _Element) -> LocatedMap:
        transitions = element.child_elements("transition")
        if len(transitions) != 1:
            self.problem(element, "<initial> must hold exactly one <transition>")
            return self.mapping(element, [])
        transition = transitions[0]
        targets = transition.attributes.get("target", "").split()
        items: list[tuple[str, Any]] = [("target", targets[0] if len(targets) == 1
                                         else self.sequence(transition, targets))]
        actions = self.block(transition)
        if actions:
            items.append(("actions", actions))
        return self.mapping(element, items)

    def donedata(self, element: _Element) -> Any:
        contents = element.child_elements("content")
        params = element.child_elements("param")
        if contents:
            return self.content_expression(contents[0])
        return self.mapping(element, [(p.attributes.get("name", ""), self.param_expression(p)) for p in params])

    def param_expression(self, param: _Element) -> Any:
        """A param's expression; a non-string literal (``7``, ``True``, ``None``, ``[1, 2]``) is its value,
        as YAML writes it, while a string literal stays an expression (``"'abc'"``)."""
        if "expr" in param.attributes:
            try:
                return _literal_value(param.attributes["expr"], param.attributes["expr"])
            except _TooDeepLiteral:
                self.too_deep(param)
                return "None"
        if "location" in param.attributes:
            return param.attributes["location"]
        self.problem(param, "<param> needs expr or location")
        return "None"

    def content_expression(self, content: _Element) -> str:
        if "expr" in content.attributes:
            return content.attributes["expr"]
        if content.children:
            self.problem(content, "<content> holding XML markup is not supported",
                         "use text (a Python or JSON literal) or expr")
        try:
            return _literal_source(content.text.strip())
        except _TooDeepLiteral:
            self.too_deep(content)
            return "None"

    # -- transitions --------------------------------------------------------------------------------
    def transition(self, element: _Element) -> LocatedMap:
        items: list[tuple[str, Any]] = []
        targets = element.attributes.get("target", "").split()
        if len(targets) == 1:
            items.append(("target", targets[0]))
        elif targets:
            items.append(("target", self.sequence(element, targets)))
        if "cond" in element.attributes:
            items.append(("cond", element.attributes["cond"]))
        guard = element.attributes.get(f"{STATECHART_NS}}}guard")
        if guard:
            items.append(("guard", guard))
        if element.attributes.get("type") == "internal":
            items.append(("type", "internal"))
        description = element.attributes.get(f"{STATECHART_NS}}}description")
        if description is not None:
            items.append(("description", description))
        actions = self.block(element)
        if actions:
            items.append(("actions", actions))
        return self.mapping(element, items)

    def transitions(self, state: _Element, transitions: list[tuple[_Element, LocatedMap]]) -> list[tuple[str, Any]]:
        """Group transitions under `on` and `always` when that keeps their document order (their
        priority), otherwise keep SCXML's single ordered list under `transitions`; `sc:after` and
        `sc:on_done` transitions become `after` and `on_done`, which come last, as in YAML."""
        regular: list[tuple[str | None, LocatedMap]] = []
        after: dict[str, list[LocatedMap]] = {}
        on_done: list[LocatedMap] = []
        after_key = f"{STATECHART_NS}}}after"
        on_done_key = f"{STATECHART_NS}}}on_done"
        for element, transition in transitions:
            if after_key in element.attributes:
                if on_done:
                    self.problem(element, "a <transition sc:after> must come before the sc:on_done transitions",
                                 "the YAML runs `after` transitions before `on_done` ones")
                after.setdefault(element.attributes[after_key], []).append(transition)
                continue
            if element.attributes.get(on_done_key, "false") == "true":
                on_done.append(transition)
                continue
            if after or on_done:
                self.problem(element, "this transition must come before the sc:after and sc:on_done transitions",
                             "the YAML tries `after` and `on_done` transitions after the others; keep that order")
            event = element.attributes.get("event")
            regular.append((event if event is not None and event.strip() else None, transition))
        items: list[tuple[str, Any]] = []
        evented = [(event, t) for event, t in regular if event is not None]
        eventless = [t for event, t in regular if event is None]
        groups: dict[str, list[LocatedMap]] = {}
        contiguous = True
        for event, transition in evented:
            if event in groups and list(groups)[-1] != event:
                contiguous = False
            groups.setdefault(event, []).append(transition)
        eventless_last = all(event is None for event, _ in regular[len(evented):])
        if contiguous and eventless_last:
            if groups:
                items.append(("on", self.grouped(state, groups)))
            if eventless:
                items.append(("always", self.short_list(state, eventless)))
        else:
            ordered = []
            for event, transition in regular:
                if event is None:
                    ordered.append(transition)
                    continue
                with_event = LocatedMap(transition.mark)
                with_event["event"] = event
                with_event.key_marks["event"] = with_event.value_marks["event"] = transition.mark
                for key, value in transition.items():
                    with_event[key] = value
                    with_event.key_marks[key] = transition.key_marks[key]
                    with_event.value_marks[key] = transition.value_marks[key]
                ordered.append(with_event)
            items.append(("transitions", self.sequence(state, ordered)))
        if after:
            items.append(("after", self.grouped(state, after)))
        if on_done:
            items.append(("on_done", self.short_list(state, on_done)))
        return items

    def grouped(self, state: _Element, groups: dict[str, list[LocatedMap]]) -> LocatedMap:
        """Key (event or duration) -> its transitions, each key located at its first transition."""
        result = LocatedMap(state.mark)
        for key, group in groups.items():
            result[key] = self.short_list(state, group)
            result.key_marks[key] = result.value_marks[key] = group[0].mark
        return result

    def short_list(self, state: _Element, transitions: list[LocatedMap]) -> Any:
        """One transition or a list of them, a transition with nothing but a target as its target."""
        shortened = [t["target"] if set(t) == {"target"} and isinstance(t["target"], str) else t
                     for t in transitions]
        if len(shortened) == 1:
            return shortened[0]
        result = LocatedList(state.mark)
        for item, transition in zip(shortened, transitions):
            result.append(item)
            result.item_marks.append(transition.mark)
        return result

    # -- executable content ------------------------------------------------------------------------------
    def blocks(self, element: _Element, blocks: list[LocatedList]) -> Any:
        """One <onentry>/<onexit> is an action list; several (or one empty) a list of blocks."""
        if len(blocks) == 1 and blocks[0]:
            return blocks[0]
        return self.sequence(element, blocks)

    def block(self, element: _Element) -> LocatedList:
        actions = LocatedList(element.mark)
        for child in element.children:
            action = self.action(child)
            if action is not None:
                actions.append(action)
                actions.item_marks.append(child.mark)
        return actions

    def action(self, element: _Element) -> Any:
        if element.namespace == STATECHART_NS:
            if element.tag == "call":
                return element.attributes.get("name", "")
            if element.tag in ("emit", "raise"):
                payload = self.payload(element)
                event = element.attributes.get("event", "")
                if payload is None:
                    return self.mapping(element, [(element.tag, event)])
                return self.mapping(element, [(element.tag, self.mapping(element, [("event", event),
                                                                                   ("data", payload)]))])
            self.refuse(element, "executable content")
            return None
        if element.namespace != SCXML_NS:
            self.refuse(element, "executable content")
            return None
        tag, attributes = element.tag, element.attributes
        if tag == "raise":
            return self.mapping(element, [("raise", attributes.get("event", ""))])
        if tag == "log":
            items = [(k, v) for k, v in attributes.items() if k in ("label", "expr")]
            if [k for k, _ in items] == ["expr"]:
                return self.mapping(element, [("log", attributes["expr"])])
            return self.mapping(element, [("log", self.mapping(element, items))])
        if tag == "assign":
            location = attributes.get("location", "")
            expression = attributes.get("expr")
            if expression is None:
                try:
                    expression = _literal_source(element.text.strip()) if element.text.strip() else "None"
                except _TooDeepLiteral:
                    self.too_deep(element)
                    expression = "None"
            return self.mapping(element, [("assign", self.mapping(element, [(location, expression)]))])
        if tag == "script":
            return self.mapping(element, [("script", self.script(element))])
        if tag == "cancel":
            if "sendidexpr" in attributes:
                return self.mapping(element, [("cancel", self.mapping(element, [("id_expr", attributes["sendidexpr"])]))])
            return self.mapping(element, [("cancel", attributes.get("sendid", ""))])
        if tag == "send":
            return self.mapping(element, [("send", self.send(element))])
        if tag == "if":
            return self.if_(element)
        if tag == "foreach":
            items = [(k, v) for k, v in attributes.items() if k in ("array", "item", "index")]
            actions = self.block(element)
            if actions:
                items.append(("do", actions))
            return self.mapping(element, [("foreach", self.mapping(element, items))])
        self.refuse(element, "executable content")
        return None

    def script(self, element: _Element) -> str:
        if "src" in element.attributes:
            content = self.read_src(element)
            return "" if content is None else content.strip()
        return _dedent(element.text)

    def read_src(self, element: _Element) -> str | None:
        """The text of the file an element's ``src`` names, if the caller allows reading it."""
        try:
            return read_src(element.attributes["src"], self.src_dir, self.max_src_bytes)
        except SourceRefused as refused:
            self.problem(element, f"<{element.tag}>: {refused.message}", refused.hint)
            return None

    def send(self, element: _Element) -> LocatedMap:
        attributes = element.attributes
        renames = {"event": "event", "eventexpr": "event_expr", "target": "target", "targetexpr": "target_expr",
                   "type": "type", "typeexpr": "type_expr", "id": "id", "idlocation": "id_location",
                   "delay": "delay", "delayexpr": "delay_expr"}
        items: list[tuple[str, Any]] = []
        for name, value in attributes.items():  # in document order, as the YAML keys were written
            if name == "namelist":
                items.append(("namelist", self.sequence(element, value.split())))
            elif name == "delay" and PLAIN_NUMBER.match(value):
                items.append(("delay", ast.literal_eval(value.strip())))  # YAML `delay: 30` (seconds)
            elif name in renames:
                items.append((renames[name], value))
        payload = self.payload(element)
        contents = element.child_elements("content")
        as_data = bool(contents) and contents[0].attributes.get(f"{STATECHART_NS}}}data") == "true"
        if isinstance(payload, str) and not as_data:
            items.append(("content", payload))
        elif payload is not None:
            items.append(("data", payload))
        return self.mapping(element, items)

    def payload(self, element: _Element) -> Any:
        contents = element.child_elements("content")
        params = element.child_elements("param")
        for child in element.children:
            if child.namespace == SCXML_NS and child.tag not in ("content", "param"):
                self.refuse(child, f"<{element.tag}>")
        if contents:
            return self.content_expression(contents[0])
        if params:
            return self.mapping(element, [(p.attributes.get("name", ""), self.param_expression(p)) for p in params])
        return None

    def if_(self, element: _Element) -> LocatedMap:
        branches: list[tuple[str | None, _Element, LocatedList]] = [(element.attributes.get("cond", "False"),
                                                                      element, LocatedList(element.mark))]
        for child in element.children:
            if child.namespace == SCXML_NS and child.tag == "elseif":
                branches.append((child.attributes.get("cond", "False"), child, LocatedList(child.mark)))
            elif child.namespace == SCXML_NS and child.tag == "else":
                branches.append((None, child, LocatedList(child.mark)))
            else:
                action = self.action(child)
                if action is not None:
                    branches[-1][2].append(action)
                    branches[-1][2].item_marks.append(child.mark)
        items: list[tuple[str, Any]] = [("if", branches[0][0]), ("then", branches[0][2])]
        elifs = [self.mapping(e, [("cond", c), ("then", a)]) for c, e, a in branches[1:] if c is not None]
        if elifs:
            items.append(("elif", self.sequence(element, elifs)))
        otherwise = [a for c, _, a in branches[1:] if c is None]
        if otherwise:
            items.append(("else", otherwise[0]))
        return self.mapping(element, items)


def _keyed(element: _Element, pairs: list[tuple[str, Any]]) -> LocatedMap:
    result = LocatedMap(element.mark)
    for key, value in pairs:
        if key in result:  # duplicate ids: keep the first; the compiler reports it by a renamed copy
            key = f"{key}__duplicate_{value.mark.line}"
        result[key] = value
        result.key_marks[key] = value.mark
        result.value_marks[key] = value.mark
    return result


def _dedent(text: str) -> str:
    """Script text as written inside <script>: without the line break after the start tag and the
    indentation before the end tag, and without the indentation its lines share. Blank lines and a
    final line break inside are kept, so exported scripts come back exactly."""
    lines = text.split("\n")
    if len(lines) > 1 and not lines[0].strip():
        lines = lines[1:]
    if len(lines) > 1 and not lines[-1].strip():
        lines = lines[:-1]
    if len(lines) == 1 and not lines[0].strip():
        return ""
    indent = min((len(line) - len(line.lstrip(" \t")) for line in lines if line.strip()), default=0)
    return "\n".join(line[indent:] if line.strip() else line[min(indent, len(line) - len(line.lstrip(" \t"))):]
                     for line in lines)


class _TooDeepLiteral(Exception):
    """Inline content nested deeper than an element may be: the importer reports it at the element."""


def _check_literal_depth(text: str) -> None:
    """Refuse literal text nested more than MAX_JSON_DEPTH deep (the limit of JSON a caller sends)
    before a recursive parser sees it; a value that deep would not load as YAML either."""
    if json_depth(text, MAX_JSON_DEPTH)[1] >= 0:
        raise _TooDeepLiteral()


def _literal_source(text: str) -> str:
    """Inline content as a Python expression: a literal stays as written, other text becomes a string."""
    _check_literal_depth(text)
    try:
        ast.literal_eval(text)
        return text
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    try:
        return repr(json.loads(text))
    except ValueError:
        return repr(" ".join(text.split()))


def _json_compatible(value: Any) -> bool:
    """What a YAML machine file can hold as a literal (mapping keys are strings there)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (str, int, bool)) or value is None:
        return True
    if isinstance(value, list):
        return all(_json_compatible(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _json_compatible(item) for key, item in value.items())
    return False


def _parse_literal(text: str) -> tuple[str, Any]:
    """("value", v) when ``text`` is a JSON or Python literal a YAML file could hold; ("python", None)
    for a Python literal it cannot (a tuple, a set, bytes); ("text", None) otherwise."""
    _check_literal_depth(text)
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(text.strip())
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        if isinstance(value, (tuple, set, frozenset)) or not _json_compatible(value):
            return "python", None
        return "value", value
    return "text", None


def _literal_value(text: str, otherwise: Any) -> Any:
    """A non-string literal's value (``7``, ``True``, ``None``, ``[1, 'a']``), else ``otherwise``."""
    kind, value = _parse_literal(text)
    if kind == "value" and not isinstance(value, str):
        return value
    return otherwise


def _data_literal(element: _Element, text: str) -> Any:
    """Inline <data> content: a JSON or Python literal is the value itself (as YAML writes data);
    other text is that text, as a string."""
    kind, value = _parse_literal(text)
    if kind == "python" or (kind == "text" and element.children):
        return _expression_map(element, _literal_source(text))
    if kind == "text":
        value = " ".join(text.split())
    if isinstance(value, dict) and set(value) == {"expr"}:  # YAML would read it as an expression
        return _expression_map(element, repr(value))
    return value


def _expression_map(element: _Element, expression: str) -> LocatedMap:
    result = LocatedMap(element.mark)
    result["expr"] = expression
    result.key_marks["expr"] = result.value_marks["expr"] = element.mark
    return result


def scxml_to_document(text: str | bytes, file: str, base_dir: Path | None = None, *,
                      src_dir: str | os.PathLike[str] | None = None,
                      max_src_bytes: int = MAX_SRC_BYTES) -> tuple[LocatedMap | None, list[Problem]]:
    """Parse an SCXML document into the located YAML vocabulary, with the problems found.

    ``src`` attributes are read only from inside ``src_dir`` (see :mod:`.scxml_sources`)."""
    root = parse_scxml(text, file)
    importer = _Importer(file, base_dir or Path(file).parent, src_dir, max_src_bytes)
    document = importer.document(root)
    return document, importer.problems


def scxml_to_yaml(text: str | bytes, file: str, base_dir: Path | None = None, *, machine: str | None = None,
                  version: int | None = None, src_dir: str | os.PathLike[str] | None = None,
                  max_src_bytes: int = MAX_SRC_BYTES) -> str:
    """An SCXML document as a YAML machine file (``machine``/``version`` override the document's).

    Raises :class:`LoadError` with every problem (unsupported elements with their line) and
    writes nothing when the document cannot be imported."""
    document, problems = scxml_to_document(text, file, base_dir, src_dir=src_dir, max_src_bytes=max_src_bytes)
    if problems or document is None:
        raise LoadError(problems)
    if machine is not None:
        document["machine"] = machine
    if version is not None:
        document["version"] = version
    return document_to_yaml(document)


# -- writing YAML ----------------------------------------------------------------------------------------
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_PLAIN_VALUE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.\-]*|\d+(\.\d+)?(ms|s|m|h|d))$")
_STR_TAG = "tag:yaml.org,2002:str"
_YAML_11 = yaml.resolver.Resolver()  # how other readers (and our loader, for values) see a plain scalar


class _YamlDumper(yaml.SafeDumper):
    """Block style, lists indented under their key, no aliases; `on` written plain as a key."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        # The machine loader reads keys as written; string values that YAML 1.1 reads as booleans
        # are quoted by _represent_str, and booleans are written true/false.
        if kind is yaml.ScalarNode and isinstance(value, str) and value.lower() in ("on", "off", "yes", "no"):
            return _STR_TAG
        return super().resolve(kind, value, implicit)


class _Key(str):
    """A mapping key: the loader reads keys as written, so `on` and `2d` stay plain."""


def _represent_str(dumper: Any, value: str) -> yaml.ScalarNode:
    if isinstance(value, _Key):
        if _PLAIN_KEY.match(value):
            return dumper.represent_scalar(_STR_TAG, str(value), style="")
    elif _PLAIN_VALUE.match(value) and _YAML_11.resolve(yaml.ScalarNode, value, (True, False)) == _STR_TAG:
        return dumper.represent_scalar(_STR_TAG, value, style="")
    elif "\n" in value.strip("\n"):
        return dumper.represent_scalar(_STR_TAG, value, style="|")
    quote = "'" if '"' in value and "'" not in value and value.isprintable() else '"'
    return dumper.represent_scalar(_STR_TAG, str(value), style=quote)


def _represent_mapping(dumper: yaml.SafeDumper, value: dict) -> yaml.MappingNode:
    return dumper.represent_mapping("tag:yaml.org,2002:map", [(_Key(k), v) for k, v in value.items()])


_YamlDumper.add_representer(str, _represent_str)
_YamlDumper.add_representer(_Key, _represent_str)
_YamlDumper.add_representer(dict, _represent_mapping)
_YamlDumper.add_representer(LocatedMap, _represent_mapping)
_YamlDumper.add_representer(LocatedList, yaml.SafeDumper.represent_list)


def document_to_yaml(document: Any) -> str:
    """A machine document (plain or located values) as readable YAML: block style, the keys in the
    document's order, expressions quoted and never folded, scripts as ``|`` blocks."""
    return yaml.dump(document, Dumper=_YamlDumper, sort_keys=False, default_flow_style=False, allow_unicode=True,
                     width=1_000_000)
