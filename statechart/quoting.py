"""Quoting user text inside error messages, cut to a readable length.

An error message that repeats what the user wrote is the fastest way to the mistake, but a
machine file, an SCXML document or a payload may hold a 200 KB expression: repeated whole it
buries the message (and a log). Every message that quotes input goes through :func:`quote`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["QUOTE_LIMIT", "quote", "quote_repr"]

#: How many characters of user text an error message repeats.
QUOTE_LIMIT = 80


def quote(text: Any, limit: int = QUOTE_LIMIT) -> str:
    """``text`` as it is when short, else its first ``limit`` characters, an ellipsis and the length.

    >>> quote("total > 0")
    'total > 0'
    >>> quote("x" * 100, limit=10)
    'xxxxxxxxxx… (100 characters)'
    """
    text = text if isinstance(text, str) else str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def quote_repr(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` cut like :func:`quote`: for messages that show a value with its quotes.

    The repr of a huge or deeply nested container is not built in full: it is cut as soon as
    it passes the limit, so quoting costs at most a little more than ``limit`` characters.
    """
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}… ({len(value)} characters)"
    try:
        text = repr(value)
    except RecursionError:
        return f"<{type(value).__name__} nested too deeply to show>"
    return quote(text, limit)
