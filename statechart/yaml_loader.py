"""YAML text -> plain values that remember where each key and value was written.

PyYAML's ``safe_load`` is unfit for machine files: it reads the key ``on`` as ``True`` and
silently keeps the last of two duplicate keys. We compose the node graph ourselves and
build :class:`LocatedMap` / :class:`LocatedList` containers that carry the line and
column of every key and value, so the compiler can point at ``file:line:col``.

Scanning and parsing are libyaml's when PyYAML was built with it (nine times faster than
the pure-Python scanner, which was most of the time a large chart took to load); composing
stays in Python, where the nesting limit is enforced, and libyaml reports the same marks.
A document libyaml refuses is parsed again by the pure-Python parser, so every error
message and position is the one PyYAML has always given.
"""

from __future__ import annotations

import datetime
from typing import Any

import attrs
import yaml
from yaml.composer import Composer
from yaml.resolver import Resolver

try:
    from yaml.cyaml import CParser
except ImportError:  # PyYAML built without libyaml: the pure-Python parser does it all
    CParser = None

from .quoting import quote_repr
from .errors import Problem

__all__ = ["Mark", "LocatedMap", "LocatedList", "parse_yaml"]


#: Tags a machine file may use, explicitly (``!!str 2``) or implicitly; anything else is refused.
_CORE_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
)
#: How many values a document may expand to through aliases ("billion laughs" stops here).
MAX_NODES = 100_000
#: How deep mappings and lists may nest (aliases included). Machines nest states a few levels and
#: data a few more; the limit keeps the recursive composer and compiler far from Python's stack limit.
MAX_DEPTH = 100


@attrs.frozen
class Mark:
    """A 1-based position; ``quoted`` tells whether a scalar's text starts one column later.

    ``segments`` locates the text of a scalar written over several lines (a ``|`` or ``>``
    block, or a folded plain or quoted scalar): ``(offset in the value, line, column)`` of
    the start of each source line, so a position inside the value can be mapped back.
    """

    line: int
    column: int
    quoted: bool = False
    segments: tuple[tuple[int, int, int], ...] = attrs.field(default=(), eq=False, repr=False)

    def at(self, offset: int) -> "Mark":
        """The position of character ``offset`` of this scalar's value, as well as it can be told."""
        for start, line, column in reversed(self.segments):
            if start <= offset:
                return Mark(line, column + offset - start)
        if self.segments:
            return Mark(self.segments[0][1], self.segments[0][2])
        return Mark(self.line, self.column + (1 if self.quoted else 0) + offset)


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


def _mark(node: yaml.Node, text: str = "") -> Mark:
    quoted = isinstance(node, yaml.ScalarNode) and node.style in ("'", '"')
    segments: tuple[tuple[int, int, int], ...] = ()
    if isinstance(node, yaml.ScalarNode) and node.end_mark.line > node.start_mark.line:
        segments = _segments(node, quoted, text)
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1, quoted, segments)


def _segments(node: yaml.ScalarNode, quoted: bool, text: str) -> tuple[tuple[int, int, int], ...]:
    """Where each source line of a multi-line scalar starts in its value (see :class:`Mark`).

    Positions are character indexes into the document's ``text`` (libyaml's marks carry no
    buffer, only the index, which counts characters as PyYAML's does)."""
    start, end = node.start_mark, node.end_mark
    if not text or not isinstance(node.value, str):
        return ()
    line_start = text.rfind("\n", 0, start.index) + 1
    lines = text[line_start : end.index].split("\n")
    value, position, result = node.value, 0, []
    for index, raw in enumerate(lines):
        if index == 0:
            if node.style in ("|", ">"):
                continue  # the header line holds only the indicator
            column = start.column + (1 if quoted else 0)
            text = raw[column:]
        else:
            text = raw.lstrip(" \t")
            column = len(raw) - len(text)
        text = text.rstrip()
        if quoted and index == len(lines) - 1 and text.endswith(node.style):
            text = text[:-1]
        if not text:
            continue
        found = value.find(text, position)
        if found < 0:
            break  # escapes or a trailing comment: the lines before are still located
        result.append((found, start.line + 1 + index, column + 1))
        position = found + len(text)
    return tuple(result)


class _Builder:
    """Turns a composed node graph into located containers, collecting problems."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.text = text
        self.problems: list[Problem] = []
        self._scalars = yaml.SafeLoader("")  # only used for its scalar constructors
        self._open: set[int] = set()  # ids of the collections being built (to find alias cycles)
        self._cycles: set[int] = set()
        self._count = 0
        self._depth = 0

    def build(self, node: yaml.Node) -> Any:
        self._count += 1
        if self._count > MAX_NODES:
            raise _TooLarge(node, f"the document expands to more than {MAX_NODES} values through aliases",
                            "repeat less through YAML aliases")
        if isinstance(node, yaml.ScalarNode):
            return self._build(node)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooLarge(node, f"mappings and lists nest more than {MAX_DEPTH} deep (aliases included)",
                                "flatten the structure; machine files nest a handful of levels")
            return self._build(node)
        finally:
            self._depth -= 1

    def _build(self, node: yaml.Node) -> Any:
        if node.tag == "tag:yaml.org,2002:value":  # a plain `=`: PyYAML has no constructor for it
            return node.value
        if node.tag not in _CORE_TAGS:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!", 1)
            self._problem(node, f"the YAML tag {quote_repr(tag)} is not supported in machine files",
                          "remove the tag; machine files hold plain strings, numbers, lists and mappings")
            if isinstance(node, yaml.ScalarNode):
                return node.value
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
        if id(node) in self._open:
            if id(node) not in self._cycles:
                self._cycles.add(id(node))
                self._problem(node, "this anchored value contains an alias to itself",
                              "an alias (*name) may only repeat a value written before it, outside it")
            return None
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node)
            result = LocatedList(_mark(node))
            for item in node.value:
                result.append(self.build(item))
                result.item_marks.append(_mark(item, self.text))
            return result
        finally:
            self._open.discard(id(node))

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
                self._problem(key_node, f"duplicate key {quote_repr(key)}",
                              f"first written at line {first.line}, column {first.column}")
                continue
            result[key] = self.build(value_node)
            result.key_marks[key] = _mark(key_node, self.text)
            result.value_marks[key] = _mark(value_node, self.text)
        return result

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag == "tag:yaml.org,2002:bool" and node.value.lower() not in ("true", "false"):
            # YAML 1.1 reads yes/no/on/off as booleans; editors (YAML 1.2) read them as strings
            word = "true" if node.value.lower() in ("yes", "on") else "false"
            self._problem(node, f"{quote_repr(node.value)} is ambiguous: YAML 1.1 reads it as {word}, YAML 1.2 as a string",
                          f"write {word} for the boolean, or quote it for the string")
            return node.value
        try:
            value = self._scalars.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as error:
            tag = node.tag.rsplit(":", 1)[-1]
            self._problem(node, f"{quote_repr(node.value)} cannot be read as a YAML {tag}",
                          getattr(error, "problem", None) or str(error) or None)
            return node.value
        if isinstance(value, (datetime.date, datetime.datetime)):
            self._problem(node, f"{quote_repr(node.value)} is read by YAML as a {type(value).__name__}, "
                                "which is not JSON-compatible", "quote it to keep it a string")
            return node.value
        return value

    def _problem(self, node: yaml.Node, message: str, hint: str | None = None) -> None:
        mark = _mark(node, self.text)
        self.problems.append(Problem(self.file, mark.line, mark.column, message, hint))


class _TooLarge(Exception):
    """Stops building (or composing) at a node that makes the document too large or too deep."""

    def __init__(self, node: yaml.Node | None, message: str, hint: str, mark: Any = None) -> None:
        super().__init__(message)
        self.node, self.message, self.hint, self.mark = node, message, hint, mark


class _DepthLimited:
    """A composer that stops at :data:`MAX_DEPTH` levels of nesting: PyYAML's composer recurses
    once per level, and a hostile document could otherwise reach Python's stack limit."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH + 1:  # the document node itself is one level
                raise _TooLarge(None, f"mappings and lists nest more than {MAX_DEPTH} deep",
                                "flatten the structure; machine files nest a handful of levels",
                                self.peek_event().start_mark)
            return super().compose_node(parent, index)  # type: ignore[misc]
        finally:
            self._depth -= 1


class _PureLoader(_DepthLimited, yaml.SafeLoader):
    """PyYAML's pure-Python safe loader with the nesting limit: the reference for every error."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0


if CParser is not None:
    class _FastLoader(_DepthLimited, Composer, CParser, Resolver):  # type: ignore[misc]
        """libyaml's scanner and parser under PyYAML's Python composer and resolver (the same
        nodes, tags and marks as :class:`_PureLoader`, several times faster)."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            Resolver.__init__(self)
            self._depth = 0


def _compose(text: str) -> yaml.Node | None:
    """The node graph of ``text``: libyaml's parse when it is there and accepts the text, else
    PyYAML's, whose errors (raised from here) are the ones :func:`parse_yaml` explains."""
    if CParser is not None:
        try:
            return yaml.compose(text, Loader=_FastLoader)
        except yaml.YAMLError:
            pass  # parse again below for PyYAML's own message and position
    return yaml.compose(text, Loader=_PureLoader)


def _explained(error: yaml.MarkedYAMLError) -> tuple[str, str | None]:
    """PyYAML's message for the slips authors make most, in words about their file."""
    problem, context = error.problem or "", error.context or ""
    start = error.context_mark
    if problem.startswith("found character '\\t'") or problem.startswith("found character '\t'"):
        return ("invalid YAML: a tab indents this line",
                "YAML indents with spaces only; replace the tab with spaces")
    if problem.startswith("expected <block end>") and "block mapping" in context and start is not None:
        return ("invalid YAML: this line is indented differently from the keys above it",
                f"the keys of one mapping line up in one column: the mapping that starts at line "
                f"{start.line + 1} has its keys at column {start.column + 1}")
    if problem.startswith("expected <block end>") and start is not None:
        return ("invalid YAML: this line is indented differently from the lines above it",
                f"the items of one list line up in one column: the list that starts at line {start.line + 1} "
                f"has its items at column {start.column + 1}")
    if problem == "mapping values are not allowed here":
        return ("invalid YAML: a second `key: value` on one line",
                "put each key on its own line, or quote a value that contains ': ' (`cond: \"a: b\"`)")
    if problem.startswith("could not find expected ':'"):
        return ("invalid YAML: a line without `key: value` inside a mapping",
                "add the colon (`KEY: value`), or close the quote or bracket opened above")
    hint = f"{context} at line {start.line + 1}" if (context and problem and start) else None
    return f"invalid YAML: {problem or context}", hint


def parse_yaml(text: str, file: str) -> tuple[Any, list[Problem]]:
    """Parse one YAML document; returns the located value (or None) and the problems found."""
    try:
        node = _compose(text)
    except _TooLarge as error:
        mark = error.mark
        return None, [Problem(file, mark.line + 1, mark.column + 1, error.message, error.hint)]
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        if error.problem == "but found another document":
            return None, [Problem(file, line, column, "invalid YAML: a machine file holds one YAML document",
                                  "remove the `---` and what follows, or move it to its own file")]
        message, hint = _explained(error)
        return None, [Problem(file, line, column, message, hint)]
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        column = error.position - (text.rfind("\n", 0, error.position) + 1) + 1
        character = chr(error.character) if isinstance(error.character, int) else error.character
        return None, [Problem(file, line, column, f"invalid YAML: the character {quote_repr(character)} is not allowed",
                              "machine files are UTF-8 text without control characters")]
    except yaml.YAMLError as error:  # pragma: no cover - other errors are marked
        return None, [Problem(file, 1, 1, f"invalid YAML: {error}")]
    if node is None:
        return None, [Problem(file, 1, 1, "the file is empty", "a machine needs `machine`, `version` and `states`")]
    builder = _Builder(file, text)
    try:
        return builder.build(node), builder.problems
    except _TooLarge as error:
        mark = _mark(error.node, text)
        return None, builder.problems + [Problem(file, mark.line, mark.column, error.message, error.hint)]

