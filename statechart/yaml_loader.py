"""YAML text -> plain values that remember where each key and value was written.

PyYAML's ``safe_load`` is unfit for machine files: it reads the key ``on`` as ``True`` and
silently keeps the last of two duplicate keys. We read the parser's events ourselves and
build :class:`LocatedMap` / :class:`LocatedList` containers that carry the line and
column of every key and value, so the compiler can point at ``file:line:col``.

The events are libyaml's when PyYAML was built with it (its pure-Python scanner was most
of the time a large chart took to load); libyaml reports the same marks. A document it
refuses is read again by the pure-Python parser, so every error message and position is
the one PyYAML gives. Building from events in one loop, rather than composing PyYAML's
node graph and walking it, keeps the nesting limit free of recursion.
"""

from __future__ import annotations

import datetime
from typing import Any, NamedTuple

import yaml
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


class Mark(NamedTuple):
    """A 1-based position; ``quoted`` tells whether a scalar's text starts one column later.

    ``segments`` locates the text of a scalar written over several lines (a ``|`` or ``>``
    block, or a folded plain or quoted scalar): ``(offset in the value, line, column)`` of
    the start of each source line, so a position inside the value can be mapped back.

    A tuple rather than an attrs class: a chart makes one per key and value it holds, and
    tuple construction is several times cheaper than a frozen attrs ``__init__``.
    """

    line: int
    column: int
    quoted: bool = False
    segments: tuple[tuple[int, int, int], ...] = ()

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


def _mark(event: Any, text: str = "") -> Mark:
    """The position of a node's event (its start), with the segments of a multi-line scalar."""
    start = event.start_mark
    if type(event) is not yaml.ScalarEvent:
        return Mark(start.line + 1, start.column + 1)
    quoted = event.style == "'" or event.style == '"'
    if event.end_mark.line > start.line:
        return Mark(start.line + 1, start.column + 1, quoted, _segments(event, quoted, text))
    return Mark(start.line + 1, start.column + 1, quoted)


def _segments(event: yaml.ScalarEvent, quoted: bool, text: str) -> tuple[tuple[int, int, int], ...]:
    """Where each source line of a multi-line scalar starts in its value (see :class:`Mark`).

    Positions are character indexes into the document's ``text`` (libyaml's marks carry no
    buffer, only the index, which counts characters as PyYAML's does)."""
    start, end = event.start_mark, event.end_mark
    if not text or not isinstance(event.value, str):
        return ()
    line_start = text.rfind("\n", 0, start.index) + 1
    lines = text[line_start : end.index].split("\n")
    value, position, result = event.value, 0, []
    for index, raw in enumerate(lines):
        if index == 0:
            if event.style in ("|", ">"):
                continue  # the header line holds only the indicator
            column = start.column + (1 if quoted else 0)
            text_line = raw[column:]
        else:
            text_line = raw.lstrip(" \t")
            column = len(raw) - len(text_line)
        text_line = text_line.rstrip()
        if quoted and index == len(lines) - 1 and text_line.endswith(event.style):
            text_line = text_line[:-1]
        if not text_line:
            continue
        found = value.find(text_line, position)
        if found < 0:
            break  # escapes or a trailing comment: the lines before are still located
        result.append((found, start.line + 1 + index, column + 1))
        position = found + len(text_line)
    return tuple(result)


class _TooLarge(Exception):
    """Stops reading at a node that makes the document too large or too deep."""

    def __init__(self, mark: Mark, message: str, hint: str) -> None:
        super().__init__(message)
        self.mark, self.message, self.hint = mark, message, hint


_DEEP_HINT = "flatten the structure; machine files nest a handful of levels"
_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"


def _events(parser: Any) -> list[yaml.Event] | None:
    """The node events of the one document ``parser`` reads (None: the stream is empty).

    This is the composer's half of reading, done over events instead of building a node
    graph: nesting is bounded (:data:`MAX_DEPTH`), every alias names an anchor written
    before it, no anchor is written twice, and there is a single document. Errors are
    PyYAML's own (``ComposerError`` with its wording), so they read as they always have."""
    get = parser.get_event
    get()  # STREAM-START
    first = get()
    if isinstance(first, yaml.StreamEndEvent):
        return None
    events: list[yaml.Event] = []
    append = events.append
    anchors: dict[str, Any] = {}
    depth = 0  # the document node is at depth 1, as the composer counts
    collection_starts = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
    collection_ends = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
    while True:
        event = get()
        if isinstance(event, yaml.DocumentEndEvent):
            break
        if isinstance(event, collection_ends):
            depth -= 1
            append(event)
            continue
        if depth + 1 > MAX_DEPTH + 1:
            mark = event.start_mark
            raise _TooLarge(Mark(mark.line + 1, mark.column + 1),
                            f"mappings and lists nest more than {MAX_DEPTH} deep", _DEEP_HINT)
        anchor = event.anchor
        if isinstance(event, yaml.AliasEvent):
            if anchor not in anchors:
                raise yaml.composer.ComposerError(None, None, f"found undefined alias {anchor!r}", event.start_mark)
        elif anchor is not None:
            if anchor in anchors:
                raise yaml.composer.ComposerError(f"found duplicate anchor {anchor!r}; first occurrence",
                                                  anchors[anchor], "second occurrence", event.start_mark)
            anchors[anchor] = event.start_mark
        if isinstance(event, collection_starts):
            depth += 1
        append(event)
    following = get()
    if not isinstance(following, yaml.StreamEndEvent):
        raise yaml.composer.ComposerError("expected a single document in the stream", first.start_mark,
                                          "but found another document", following.start_mark)
    return events


class _Frame:
    """A mapping or list being built: where its items go, and what a mapping expects next."""

    __slots__ = ("value", "event", "anchor", "size", "height", "key", "drop", "hidden")

    def __init__(self, value: Any, event: Any, hidden: bool) -> None:
        self.value = value
        self.event = event
        self.anchor: str | None = event.anchor
        self.size = 1  # values built inside, itself included: what an alias to it expands to
        self.height = 1  # levels of nesting, itself included
        self.key: str | None = None  # a mapping's key whose value comes next
        self.drop = 0  # how many of the next nodes belong to a refused key (it, or its value)
        self.hidden = hidden  # read for a refused key: nothing reported, nothing kept


class _Builder:
    """Turns a document's events into located containers, collecting problems.

    An alias repeats a copy of the value built for its anchor; copies count towards
    :data:`MAX_NODES` and :data:`MAX_DEPTH` as they are made, so "billion laughs" stops at
    the limit instead of being expanded. A refused key (a duplicate, ``<<``, a mapping) and
    its value are read without a word about what is inside them, and dropped."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.text = text
        self.problems: list[Problem] = []
        self._scalars = yaml.SafeLoader("")  # only used for its scalar constructors
        self._resolver = Resolver()
        self._anchors: dict[str, tuple[Any, int, int]] = {}  # an anchor's value, size and height
        self._open: dict[str, Mark] = {}  # anchors of the collections being built (alias cycles)
        self._cycles: set[str] = set()
        self._stack: list[_Frame] = []
        self._hidden = 0  # open frames read for refused keys
        self._count = 0
        self._root: Any = None

    def build(self, events: list[yaml.Event]) -> Any:
        ends = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
        for event in events:
            if isinstance(event, ends):
                self._close()
                continue
            parent = self._stack[-1] if self._stack else None
            hidden = False
            if parent is not None and type(parent.value) is LocatedMap:
                if parent.drop:
                    hidden = True
                elif parent.key is None:
                    if self._key(parent, event):
                        continue
                    hidden = True  # a collection as a key: read it, drop it
            if isinstance(event, yaml.ScalarEvent):
                self._hidden += hidden
                value = self._scalar(event)
                self._hidden -= hidden
                if event.anchor is not None:
                    self._anchors[event.anchor] = (value, 1, 0)
                self._place(value, event, 1, 0, hidden)
            elif isinstance(event, yaml.AliasEvent):
                self._alias(event, hidden)
            else:
                self._start(event, hidden)
        return self._root

    # -- collections --------------------------------------------------------------------------
    def _start(self, event: Any, hidden: bool) -> None:
        mapping = isinstance(event, yaml.MappingStartEvent)
        mark = _mark(event)
        if not (hidden or self._hidden):
            self._count_value(mark)
        tag = event.tag
        if tag is not None and tag != "!" and tag not in _CORE_TAGS:
            self._hidden += hidden
            self._unsupported_tag(event, tag)
            self._hidden -= hidden
        self._check_depth(mark, len(self._stack) + 1)
        frame = _Frame(LocatedMap(mark) if mapping else LocatedList(mark), event, hidden)
        if frame.anchor is not None:
            self._open[frame.anchor] = mark
        self._hidden += hidden
        self._stack.append(frame)

    def _close(self) -> None:
        frame = self._stack.pop()
        self._hidden -= frame.hidden
        if frame.anchor is not None:
            del self._open[frame.anchor]
            self._anchors[frame.anchor] = (frame.value, frame.size, frame.height)
        self._place(frame.value, frame.event, frame.size, frame.height, frame.hidden)

    def _key(self, frame: _Frame, event: Any) -> bool:
        """Take ``event`` as ``frame``'s next key; False when it is a collection (read, then dropped).

        A key is the text as written (``on`` stays "on", ``2d`` stays "2d"), once per mapping."""
        mapping: LocatedMap = frame.value
        if not isinstance(event, yaml.ScalarEvent):
            self._problem(event, "a mapping key must be a plain string")
            frame.drop = 1 if isinstance(event, yaml.AliasEvent) else 2  # (the key itself, then) its value
            return isinstance(event, yaml.AliasEvent)
        key = event.value
        if event.tag is None and event.implicit[0] and key == "<<":
            self._problem(event, "YAML merge keys (<<) are not supported in machine files", "write the keys out")
            frame.drop = 1
        elif key in mapping:
            first = mapping.key_marks[key]
            self._problem(event, f"duplicate key {quote_repr(key)}",
                          f"first written at line {first.line}, column {first.column}")
            frame.drop = 1
        else:
            frame.key = key
            mapping.key_marks[key] = _mark(event, self.text)
        return True

    def _place(self, value: Any, event: Any, size: int, height: int, hidden: bool) -> None:
        """Put a finished value where it belongs: the document, a list, or a mapping's key."""
        if not self._stack:
            self._root = value
            return
        parent = self._stack[-1]
        parent.size += size
        parent.height = max(parent.height, height + 1)
        if hidden:
            parent.drop -= 1
        elif type(parent.value) is LocatedList:
            parent.value.append(value)
            parent.value.item_marks.append(_mark(event, self.text))
        else:
            key = parent.key
            parent.value[key] = value
            parent.value.value_marks[key] = _mark(event, self.text)
            parent.key = None

    # -- aliases ----------------------------------------------------------------------------------
    def _alias(self, event: Any, hidden: bool) -> None:
        anchor = event.anchor
        if hidden or self._hidden:
            self._place(None, event, 0, 0, hidden)
            return
        if anchor in self._open:
            if anchor not in self._cycles:
                self._cycles.add(anchor)
                mark = self._open[anchor]
                self.problems.append(Problem(self.file, mark.line, mark.column,
                                             "this anchored value contains an alias to itself",
                                             "an alias (*name) may only repeat a value written before it, outside it"))
            self._count_value(_mark(event))
            self._place(None, event, 1, 0, hidden)
            return
        value, size, height = self._anchors[anchor]
        self._place(self._copy(value, len(self._stack)), event, size, height, hidden)

    def _copy(self, value: Any, depth: int) -> Any:
        """A fresh copy of an anchored value, counted and depth-checked as if written out again."""
        kind = type(value)
        if kind is LocatedMap or kind is LocatedList:
            self._count_value(value.mark)
            self._check_depth(value.mark, depth + 1)
            if kind is LocatedMap:
                mapping = LocatedMap(value.mark)
                for key, item in value.items():
                    mapping[key] = self._copy(item, depth + 1)
                mapping.key_marks.update(value.key_marks)
                mapping.value_marks.update(value.value_marks)
                return mapping
            items = LocatedList(value.mark)
            items.extend(self._copy(item, depth + 1) for item in value)
            items.item_marks.extend(value.item_marks)
            return items
        self._count_value(None)
        return value

    @staticmethod
    def _check_depth(mark: Mark, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise _TooLarge(mark, f"mappings and lists nest more than {MAX_DEPTH} deep (aliases included)",
                            _DEEP_HINT)

    def _count_value(self, mark: Mark | None) -> None:
        self._count += 1
        if self._count > MAX_NODES:
            raise _TooLarge(mark or Mark(1, 1), f"the document expands to more than {MAX_NODES} values through "
                            "aliases", "repeat less through YAML aliases")

    # -- scalars ----------------------------------------------------------------------------------
    def _scalar(self, event: Any) -> Any:
        if not self._hidden:
            self._count_value(None)
        tag = event.tag
        if tag is None or tag == "!":
            tag = self._resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag == _STR or tag == "tag:yaml.org,2002:value":  # `=` has no constructor: kept as text
            return event.value
        if tag not in _CORE_TAGS:
            self._unsupported_tag(event, tag)
            return event.value
        if tag == "tag:yaml.org,2002:bool" and event.value.lower() not in ("true", "false"):
            # YAML 1.1 reads yes/no/on/off as booleans; editors (YAML 1.2) read them as strings
            word = "true" if event.value.lower() in ("yes", "on") else "false"
            self._problem(event, f"{quote_repr(event.value)} is ambiguous: YAML 1.1 reads it as {word}, YAML 1.2 "
                                 "as a string", f"write {word} for the boolean, or quote it for the string")
            return event.value
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            value = self._scalars.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as error:
            self._problem(event, f"{quote_repr(event.value)} cannot be read as a YAML {tag.rsplit(':', 1)[-1]}",
                          getattr(error, "problem", None) or str(error) or None)
            return event.value
        if isinstance(value, (datetime.date, datetime.datetime)):
            self._problem(event, f"{quote_repr(event.value)} is read by YAML as a {type(value).__name__}, "
                                 "which is not JSON-compatible", "quote it to keep it a string")
            return event.value
        return value

    def _unsupported_tag(self, event: Any, tag: str) -> None:
        shown = tag.replace("tag:yaml.org,2002:", "!!", 1)
        self._problem(event, f"the YAML tag {quote_repr(shown)} is not supported in machine files",
                      "remove the tag; machine files hold plain strings, numbers, lists and mappings")

    def _problem(self, event: Any, message: str, hint: str | None = None) -> None:
        if self._hidden:
            return
        mark = _mark(event, self.text)
        self.problems.append(Problem(self.file, mark.line, mark.column, message, hint))


def _read_events(text: str) -> list[yaml.Event] | None:
    """The document's events: libyaml's when it is there and accepts the text, else PyYAML's,
    whose errors (raised from here) are the ones :func:`parse_yaml` explains."""
    if CParser is not None:
        try:
            return _events(CParser(text))
        except yaml.YAMLError:
            pass  # read again below for PyYAML's own message and position
    return _events(yaml.SafeLoader(text))


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
        events = _read_events(text)
    except _TooLarge as error:
        return None, [Problem(file, error.mark.line, error.mark.column, error.message, error.hint)]
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
    if events is None:
        return None, [Problem(file, 1, 1, "the file is empty", "a machine needs `machine`, `version` and `states`")]
    builder = _Builder(file, text)
    try:
        return builder.build(events), builder.problems
    except _TooLarge as error:
        return None, builder.problems + [Problem(file, error.mark.line, error.mark.column, error.message, error.hint)]
