"""<state>, <parallel>, <final>, <history> and <initial> -> YAML states."""

from __future__ import annotations

from typing import Any

from .quoting import quote_repr
from .scxml_import_core import ImporterCore, keyed
from .scxml_parse import SCXML_NS, STATECHART_NS, Element
from .yaml_loader import LocatedMap

__all__ = ["StateImporter"]


class StateImporter(ImporterCore):
    """States and their initial transitions (uses ``block``/``blocks`` of the executable-content part,
    ``transition``/``transitions`` of the transition part, ``datamodel``/``donedata`` of the data part)."""

    # -- states ------------------------------------------------------------------------------------
    def state(self, element: Element) -> tuple[str, LocatedMap]:
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
            items.append(("states", keyed(element, children)))
        return state_id, self.mapping(element, items)

    def history(self, element: Element) -> tuple[str, LocatedMap]:
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

    def initial_element(self, element: Element) -> LocatedMap:
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

    def initial_targets(self, element: Element, text: str) -> Any:
        targets = text.split()
        if len(targets) == 1:
            return self.mapping(element, [("target", targets[0])])
        return self.mapping(element, [("target", self.sequence(element, targets))])
