"""Text written inside SCXML elements (<data>, <content>, <assign>, <script>) -> the literal
values and expression strings the YAML vocabulary holds.

A literal is measured before any parser sees it, so a deeply nested value is refused with
:class:`TooDeepLiteral` instead of exhausting the stack.
"""

from __future__ import annotations

import ast
import json
import math
from typing import Any

from .json_text import MAX_JSON_DEPTH, json_depth
from .scxml_parse import Element
from .yaml_loader import LocatedMap

__all__ = ["TooDeepLiteral", "dedent", "literal_source", "literal_value", "data_literal", "expression_map"]


def dedent(text: str) -> str:
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


class TooDeepLiteral(Exception):
    """Inline content nested deeper than an element may be: the importer reports it at the element."""


def _check_literal_depth(text: str) -> None:
    """Refuse literal text nested more than MAX_JSON_DEPTH deep (the limit of JSON a caller sends)
    before a recursive parser sees it; a value that deep would not load as YAML either."""
    if json_depth(text, MAX_JSON_DEPTH)[1] >= 0:
        raise TooDeepLiteral()


def literal_source(text: str) -> str:
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


def literal_value(text: str, otherwise: Any) -> Any:
    """A non-string literal's value (``7``, ``True``, ``None``, ``[1, 'a']``), else ``otherwise``."""
    kind, value = _parse_literal(text)
    if kind == "value" and not isinstance(value, str):
        return value
    return otherwise


def data_literal(element: Element, text: str) -> Any:
    """Inline <data> content: a JSON or Python literal is the value itself (as YAML writes data);
    other text is that text, as a string."""
    kind, value = _parse_literal(text)
    if kind == "python" or (kind == "text" and element.children):
        return expression_map(element, literal_source(text))
    if kind == "text":
        value = " ".join(text.split())
    if isinstance(value, dict) and set(value) == {"expr"}:  # YAML would read it as an expression
        return expression_map(element, repr(value))
    return value


def expression_map(element: Element, expression: str) -> LocatedMap:
    result = LocatedMap(element.mark)
    result["expr"] = expression
    result.key_marks["expr"] = result.value_marks["expr"] = element.mark
    return result
