"""The importer's common ground: the problem list, refusing what has no YAML equivalent, reading
``src`` files, and building located values that keep each element's line and column.

The importer is split by the kind of element it maps (states, transitions, executable content,
data); each part is a mixin over :class:`ImporterCore` and calls the others' public methods
through ``self``; ``scxml_import._Importer`` puts them together.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import Problem
from .json_text import MAX_JSON_DEPTH
from .quoting import quote
from .scxml_parse import SCXML_NS, Element
from .scxml_sources import MAX_SRC_BYTES, SourceRefused, read_src
from .yaml_loader import LocatedList, LocatedMap

__all__ = ["ImporterCore", "keyed"]


class ImporterCore:
    """The problems found so far, and the options the whole import shares."""

    def __init__(self, file: str, base_dir: Path, src_dir: str | os.PathLike[str] | None = None,
                 max_src_bytes: int = MAX_SRC_BYTES) -> None:
        self.file = file
        self.base_dir = base_dir
        self.src_dir = src_dir
        self.max_src_bytes = max_src_bytes
        self.problems: list[Problem] = []
        self.late_binding = False

    def problem(self, element: Element, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(self.file, element.line, element.column, message, hint))

    def refuse(self, element: Element, where: str) -> None:
        name = element.tag if element.namespace in (SCXML_NS, "") else f"{{{element.namespace}}}{element.tag}"
        if element.tag == "invoke":
            hint = "<invoke> is not supported yet; model the child service with send/emit and events"
        else:
            hint = "it has no equivalent in the YAML vocabulary"
        self.problem(element, f"<{quote(name)}> in {where} is not supported", hint)

    # -- helpers building located values -----------------------------------------------------
    @staticmethod
    def mapping(element: Element, items: list[tuple[str, Any]]) -> LocatedMap:
        """Keys and values, all located at ``element``: compile errors point at the element."""
        result = LocatedMap(element.mark)
        for key, value in items:
            result[key] = value
            result.key_marks[key] = element.mark
            result.value_marks[key] = element.mark
        return result

    @staticmethod
    def sequence(element: Element, items: list[Any]) -> LocatedList:
        result = LocatedList(element.mark)
        for item in items:
            result.append(item)
            result.item_marks.append(getattr(item, "mark", element.mark))
        return result

    def too_deep(self, element: Element) -> None:
        """A literal nested deeper than a caller's JSON may be is reported at its element."""
        self.problem(element, f"<{element.tag}> holds a value nested more than {MAX_JSON_DEPTH} levels deep",
                     "flatten the value; machine data nests a handful of levels")

    def read_src(self, element: Element) -> str | None:
        """The text of the file an element's ``src`` names, if the caller allows reading it."""
        try:
            return read_src(element.attributes["src"], self.src_dir, self.max_src_bytes)
        except SourceRefused as refused:
            self.problem(element, f"<{element.tag}>: {refused.message}", refused.hint)
            return None


def keyed(element: Element, pairs: list[tuple[str, Any]]) -> LocatedMap:
    """State id -> state, located at each state's element."""
    result = LocatedMap(element.mark)
    for key, value in pairs:
        if key in result:  # duplicate ids: keep the first; the compiler reports it by a renamed copy
            key = f"{key}__duplicate_{value.mark.line}"
        result[key] = value
        result.key_marks[key] = value.mark
        result.value_marks[key] = value.mark
    return result
