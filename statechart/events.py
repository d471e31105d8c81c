"""Events and SCXML event descriptors (``PAY``, ``error.*``, ``error``, ``*``)."""

from __future__ import annotations

import re
from typing import Any

import attrs

__all__ = ["Event", "normalize_descriptor", "descriptor_matches", "DESCRIPTOR_PATTERN", "RESERVED_PREFIXES",
           "is_reserved_event"]

#: One token of an event descriptor as authors may write it.
DESCRIPTOR_PATTERN = re.compile(r"^(\*|\.\*|[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*(\.\*?)?)$")


@attrs.frozen(slots=True)
class Event:
    """An event as expressions see it (``event.name``, ``event.data``; SCXML's ``_event`` fields)."""

    name: str
    data: Any = None
    type: str = "external"  # "external", "internal" (raise, done.*) or "platform" (error.*)
    sendid: str | None = None
    origin: str | None = None
    origintype: str | None = None
    invokeid: str | None = None


def normalize_descriptor(token: str) -> str:
    """``error.*`` and ``error.`` both mean the prefix ``error``; ``*`` stays ``*``."""
    if token in ("*", ".*"):
        return "*"
    if token.endswith(".*"):
        return token[:-2]
    return token.rstrip(".")


def descriptor_matches(descriptor: str, name: str) -> bool:
    """SCXML 3.12.1: a descriptor matches a name equal to it or starting with it plus a dot."""
    return (
        descriptor == "*"
        or descriptor == name
        or (name.startswith(descriptor) and name[len(descriptor) : len(descriptor) + 1] == ".")
    )


#: First words of the event names the interpreter raises itself: state completion (``done.state.X``),
#: failures (``error.execution``, ``error.communication``) and ``after`` timers (``after.0.X``).
RESERVED_PREFIXES: frozenset[str] = frozenset({"done", "error", "after"})


def is_reserved_event(name: str) -> bool:
    """Whether ``name`` belongs to the interpreter: a caller sending it could fake a completion
    (``done.state.payment`` skips the payment), a failure, or a timer that has not fallen due."""
    head = name.split(".", 1)[0]
    return head in RESERVED_PREFIXES
