"""<transition> elements -> YAML `on`, `always`, `transitions`, `after` and `on_done`, keeping the
document order that is their priority."""

from __future__ import annotations

from typing import Any

from .scxml_import_core import ImporterCore
from .scxml_parse import STATECHART_NS, Element
from .yaml_loader import LocatedList, LocatedMap

__all__ = ["TransitionImporter"]


class TransitionImporter(ImporterCore):
    """Transitions of a state (uses ``block`` of the executable-content part)."""

    # -- transitions --------------------------------------------------------------------------------
    def transition(self, element: Element) -> LocatedMap:
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

    def transitions(self, state: Element, transitions: list[tuple[Element, LocatedMap]]) -> list[tuple[str, Any]]:
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

    def grouped(self, state: Element, groups: dict[str, list[LocatedMap]]) -> LocatedMap:
        """Key (event or duration) -> its transitions, each key located at its first transition."""
        result = LocatedMap(state.mark)
        for key, group in groups.items():
            result[key] = self.short_list(state, group)
            result.key_marks[key] = result.value_marks[key] = group[0].mark
        return result

    def short_list(self, state: Element, transitions: list[LocatedMap]) -> Any:
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
