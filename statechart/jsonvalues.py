"""JSON-compatible values: copying them, and checking that a value is one.

A step works on a copy of the data so that a failed step leaves the instance as it was; the
loader turns its located containers into plain ones; a migration checks what ``map_data``
returned; event payloads and assigned values are checked where they enter. One recursive
pass (:func:`json_value`) checks and copies at once, so a checked value costs no second walk.

What counts as JSON here is deliberately narrower than what Python's ``json`` module writes,
because the module converts silently: ``{1: "a"}`` becomes ``{"1": "a"}``, ``None`` keys
become ``"null"``, tuples become lists and NaN becomes a token other parsers refuse. Values
are: ``None``, ``bool``, ``str``, ``int`` within :data:`MAX_INT`, finite ``float``, lists and
dicts with ``str`` keys, nested at most :data:`MAX_DEPTH` deep. Anything else is refused with a
message naming the place (``data['items'][3]``).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_INT", "MAX_NODES", "MAX_STRING", "JSONValueError", "copy_json", "check_json", "json_value"]

#: Containers nested deeper than this are refused (JSON parsers and our own recursion have limits).
MAX_DEPTH = 64
#: Integers are 64-bit signed: what PostgreSQL's ``bigint``, Java and Go clients read without loss.
MAX_INT = 2**63 - 1
#: Values (list items and dict entries, counted over all levels) one value may hold.
MAX_NODES = 1_000_000
#: The longest string a value may hold (characters); an instance's data is not a blob store.
MAX_STRING = 1_000_000


class JSONValueError(ValueError):
    """A value that is not JSON data as statechart stores it; the message names where."""


def copy_json(value: Any) -> Any:
    """A deep copy of dicts and lists (subclasses become plain dict and list); scalars are shared."""
    if isinstance(value, dict):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_json(item) for item in value]
    return value


def check_json(value: Any, path: str = "data") -> None:
    """Raise :class:`JSONValueError` (a ValueError) naming where ``value`` is not JSON data."""
    json_value(value, path)


_SCALARS = (str, bool, int, float, type(None))


def json_value(value: Any, path: str = "data") -> Any:
    """``value`` checked and deep-copied in one pass; raises :class:`JSONValueError` naming the place.

    The common cases (None, a short string, a small int) return at the first test, so checking
    every assigned value and every payload stays cheap.
    """
    kind = type(value)
    if kind is str:
        if len(value) > MAX_STRING:
            raise JSONValueError(f"{path} is a string of {len(value):,} characters; the limit is {MAX_STRING:,}")
        return value
    if value is None or kind is bool:
        return value
    if kind is int:
        if -MAX_INT <= value <= MAX_INT:
            return value
        raise JSONValueError(f"{path} is an integer beyond the 64-bit range (|n| > 2**63-1)")
    return _container(value, path, 0, [MAX_NODES])


def _container(value: Any, path: str, depth: int, budget: list[int]) -> Any:
    kind = type(value)
    if kind is float:
        if math.isfinite(value):
            return value
        raise JSONValueError(f"{path} is {value}, which JSON cannot hold")
    if depth >= MAX_DEPTH and kind in (dict, list):
        raise JSONValueError(f"{path} is nested more than {MAX_DEPTH} levels deep")
    if kind is dict or kind is list:
        budget[0] -= len(value)
        if budget[0] < 0:  # shared references ([big] * 1000) would make the copy explode
            raise JSONValueError(f"{path} holds more than {MAX_NODES:,} values in all")
    if kind is dict:
        copied = {}
        for key, item in value.items():
            if type(key) is not str:
                raise JSONValueError(f"{path} has the key {_short(key)} ({type(key).__name__}); JSON keys are "
                                     "strings, and converting would merge or rename keys")
            copied[key] = _item(item, path, key, depth, budget)
        return copied
    if kind is list:
        return [_item(item, path, index, depth, budget) for index, item in enumerate(value)]
    if kind in (str, bool, int, type(None)):
        return json_value(value, path)
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        # A subclass (an IntEnum, a str subclass): store the plain value it stands for.
        plain = (str if isinstance(value, str) else int if isinstance(value, int) else float)(value)
        return json_value(plain, path) if not isinstance(plain, float) else _container(plain, path, depth, budget)
    if isinstance(value, (dict, list)):
        return _container(dict(value) if isinstance(value, dict) else list(value), path, depth, budget)
    raise JSONValueError(f"{path} is a {type(value).__name__}, which JSON cannot hold"
                         + ("; use a list" if isinstance(value, (tuple, set, frozenset)) else ""))


def _item(item: Any, path: str, key: Any, depth: int, budget: list[int]) -> Any:
    kind = type(item)
    if kind is str:
        if len(item) <= MAX_STRING:
            return item
    elif item is None or kind is bool:
        return item
    elif kind is int:
        if -MAX_INT <= item <= MAX_INT:
            return item
    return _container_or_scalar(item, f"{path}[{key!r}]", depth + 1, budget)


def _container_or_scalar(item: Any, path: str, depth: int, budget: list[int]) -> Any:
    if type(item) in (str, int):
        return json_value(item, path)
    return _container(item, path, depth, budget)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
