"""SCXML text -> elements that remember their line and column, with nothing an XML document
could use to read files or grow without bound (no DTD, no entities, a nesting limit).
"""

from __future__ import annotations

import xml.parsers.expat
from typing import Any

import attrs

from .errors import LoadError, Problem
from .quoting import quote_repr
from .yaml_loader import Mark

__all__ = ["SCXML_NS", "STATECHART_NS", "MAX_ELEMENT_DEPTH", "Element", "parse_scxml"]

SCXML_NS = "http://www.w3.org/2005/07/scxml"
#: Our extensions inside SCXML (named Python actions, emit, guards, `after` timers), for round trips.
STATECHART_NS = "https://statechart.dev/scxml"


@attrs.define
class Element:
    """One parsed XML element: its namespace, tag, attributes and where it starts."""

    namespace: str
    tag: str
    attributes: dict[str, str]
    line: int
    column: int
    children: list["Element"] = attrs.field(factory=list)
    text: str = ""
    markup: str = ""  # the element's inner XML, for <content> holding markup

    @property
    def mark(self) -> Mark:
        return Mark(self.line, self.column)

    def child_elements(self, tag: str) -> list["Element"]:
        return [c for c in self.children if c.tag == tag and c.namespace == SCXML_NS]


#: How deep SCXML elements may nest (states, executable content, ...): real charts stay far below.
MAX_ELEMENT_DEPTH = 100


class _Refused(Exception):
    """Raised from an expat callback to stop parsing at a construct we do not read."""

    def __init__(self, line: int, column: int, message: str, hint: str) -> None:
        super().__init__(message)
        self.line, self.column, self.message, self.hint = line, column, message, hint


def parse_scxml(text: str | bytes, file: str) -> Element:
    """Parse XML into elements that remember their line and column (ElementTree forgets them).

    Document type declarations are refused outright: they are the only way to declare
    entities, and entities are how an XML document reads files (external entities) or grows
    exponentially (nested internal entities). Elements nest at most :data:`MAX_ELEMENT_DEPTH`
    deep. Text is collected in chunks and joined once per element, so parsing stays linear in
    the size of the document however expat splits it.
    """
    parser = xml.parsers.expat.ParserCreate(namespace_separator="}")
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[Element] = []
    chunks: list[list[str]] = []
    root: list[Element] = []

    def where() -> tuple[int, int]:
        return parser.CurrentLineNumber, parser.CurrentColumnNumber + 1

    def start(name: str, attributes: dict[str, str]) -> None:
        if len(stack) >= MAX_ELEMENT_DEPTH:
            raise _Refused(*where(), f"elements nest more than {MAX_ELEMENT_DEPTH} deep",
                           "flatten the chart; real statecharts nest a handful of levels")
        namespace, _, tag = name.rpartition("}")
        element = Element(namespace, tag, {k.rpartition("}")[2] if k.startswith(SCXML_NS) else k: v
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
