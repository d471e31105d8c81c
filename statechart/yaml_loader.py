"""YAML text -> plain values that remember where each key and value was written.

PyYAML's ``safe_load`` is unfit for machine files: it reads the key ``on`` as ``True`` and
silently keeps the last of two duplicate keys. We compose the node graph ourselves and
build :class:`LocatedMap` / :class:`LocatedList` containers that carry the line and
column of every key and value, so the compiler can point at ``file:line:col``.
"""

from __future__ import annotations

import datetime
from typing import Any

import attrs
import yaml

from .errors import Problem

__all__ = ["Mark", "LocatedMap", "LocatedList", "parse_yaml"]


@attrs.frozen
class Mark:
    """A 1-based position; ``quoted`` tells whether a scalar's text starts one column later."""

    line: int
    column: int
    quoted: bool = False


class LocatedMap(dict):
    """A mapping with string keys as written, plus the position of each key and value."""

    __slots__ = ("mark", "key_marks", "value_marks")

    def __init__(self, mark: Mark) -> None:
        super().__init__()
        self.mark = mark
        self.key_marks: dict[str, Mark] = {}
        self.value_marks: dict[str, Mark] = {}


class LocatedList(list):
    """A sequence plus the position of each item."""

    __slots__ = ("mark", "item_marks")

    def __init__(self, mark: Mark) -> None:
        super().__init__()
        self.mark = mark
        self.item_marks: list[Mark] = []


def _mark(node: yaml.Node) -> Mark:
    quoted = isinstance(node, yaml.ScalarNode) and node.style in ("'", '"')
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1, quoted)


class _Builder:
    """Turns a composed node graph into located containers, collecting problems."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self._scalars = yaml.SafeLoader("")  # only used for its scalar constructors

    def build(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node)
        if isinstance(node, yaml.SequenceNode):
            result = LocatedList(_mark(node))
            for item in node.value:
                result.append(self.build(item))
                result.item_marks.append(_mark(item))
            return result
        return self._scalar(node)

    def _mapping(self, node: yaml.MappingNode) -> LocatedMap:
        result = LocatedMap(_mark(node))
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self._problem(key_node, "YAML merge keys (<<) are not supported in machine files",
                              "write the keys out")
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self._problem(key_node, "a mapping key must be a plain string")
                continue
            key = key_node.value  # the text as written: `on` stays "on", `2d` stays "2d"
            if key in result:
                first = result.key_marks[key]
                self._problem(key_node, f"duplicate key {key!r}",
                              f"first written at line {first.line}, column {first.column}")
                continue
            result[key] = self.build(value_node)
            result.key_marks[key] = _mark(key_node)
            result.value_marks[key] = _mark(value_node)
        return result

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        value = self._scalars.construct_object(node, deep=True)
        if isinstance(value, (datetime.date, datetime.datetime, bytes)):
            self._problem(node, f"{node.value!r} is read by YAML as a {type(value).__name__}, "
                                "which is not JSON-compatible", "quote it to keep it a string")
            return node.value
        return value

    def _problem(self, node: yaml.Node, message: str, hint: str | None = None) -> None:
        mark = _mark(node)
        self.problems.append(Problem(self.file, mark.line, mark.column, message, hint))


def parse_yaml(text: str, file: str) -> tuple[Any, list[Problem]]:
    """Parse one YAML document; returns the located value (or None) and the problems found."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = f"invalid YAML: {error.problem or error.context}"
        return None, [Problem(file, line, column, message)]
    except yaml.YAMLError as error:  # pragma: no cover - composer errors are always marked
        return None, [Problem(file, 1, 1, f"invalid YAML: {error}")]
    if node is None:
        return None, [Problem(file, 1, 1, "the file is empty", "a machine needs `machine`, `version` and `states`")]
    builder = _Builder(file)
    return builder.build(node), builder.problems
