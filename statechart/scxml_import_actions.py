"""Executable content (<onentry>, <onexit>, <raise>, <send>, <if>, <foreach>, <script>, ...) -> YAML
actions."""

from __future__ import annotations

import ast
import re
from typing import Any

from .scxml_import_core import ImporterCore
from .scxml_literals import TooDeepLiteral, dedent, literal_source
from .scxml_parse import SCXML_NS, STATECHART_NS, Element
from .yaml_loader import LocatedList, LocatedMap

__all__ = ["ActionImporter", "PLAIN_NUMBER"]

PLAIN_NUMBER = re.compile(r"^\s*(\d+(\.\d+)?|\.\d+)\s*$")


class ActionImporter(ImporterCore):
    """Action blocks, verb by verb (uses ``payload``'s ``content_expression``/``param_expression`` of the
    data part, ``read_src`` and ``too_deep`` of the core)."""

    # -- executable content ------------------------------------------------------------------------------
    def blocks(self, element: Element, blocks: list[LocatedList]) -> Any:
        """One <onentry>/<onexit> is an action list; several (or one empty) a list of blocks."""
        if len(blocks) == 1 and blocks[0]:
            return blocks[0]
        return self.sequence(element, blocks)

    def block(self, element: Element) -> LocatedList:
        actions = LocatedList(element.mark)
        for child in element.children:
            action = self.action(child)
            if action is not None:
                actions.append(action)
                actions.item_marks.append(child.mark)
        return actions

    def action(self, element: Element) -> Any:
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
                    expression = literal_source(element.text.strip()) if element.text.strip() else "None"
                except TooDeepLiteral:
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

    def script(self, element: Element) -> str:
        if "src" in element.attributes:
            content = self.read_src(element)
            return "" if content is None else content.strip()
        return dedent(element.text)

    def send(self, element: Element) -> LocatedMap:
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

    def payload(self, element: Element) -> Any:
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

    def if_(self, element: Element) -> LocatedMap:
        branches: list[tuple[str | None, Element, LocatedList]] = [(element.attributes.get("cond", "False"),
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
