"""JSON text from a user (CLI ``--data``, ``-e NAME=JSON``), parsed with a nesting limit.

``json.loads`` recurses once per level: ten thousand ``[`` end in a RecursionError traceback.
The depth is measured first, in one linear pass that skips string contents, so a too-deep
document is refused with a sentence before the parser sees it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import StatechartError

__all__ = ["MAX_JSON_DEPTH", "JSONTextError", "parse_json_text", "json_depth"]

#: How deep arrays and objects may nest in JSON a user passes; event data is rarely deeper than 5.
MAX_JSON_DEPTH = 64

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class JSONTextError(StatechartError, ValueError):
    """JSON text that is invalid or nests too deeply; ``position`` is a 0-based character offset."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


def json_depth(text: str, limit: int) -> tuple[int, int]:
    """(the deepest nesting of ``text``, the offset where it first exceeds ``limit`` or -1)."""
    deepest = depth = 0
    for match in _BRACKET.finditer(_STRING.sub(lambda m: " " * len(m.group()), text)):
        depth += 1 if match.group() in "[{" else -1
        if depth > deepest:
            deepest = depth
            if depth > limit:
                return deepest, match.start()
    return deepest, -1


def parse_json_text(text: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads(text)``, refusing documents nested more than ``max_depth`` deep."""
    _, position = json_depth(text, max_depth)
    if position >= 0:
        raise JSONTextError(f"nested more than {max_depth} levels deep", position)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise JSONTextError(error.msg, error.pos) from None
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise JSONTextError(f"nested more than {max_depth} levels deep", 0) from None
