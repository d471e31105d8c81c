"""Events and SCXML event descriptors (``PAY``, ``error.*``, ``error``, ``*``)."""

from __future__ import annotations

import re
from typing import Any

import attrs

__all__ = ["Event", "normalize_descriptor", "descriptor_matches", "is_platform_descriptor", "DESCRIPTOR_PATTERN"]

#: Event name prefixes the interpreter itself raises (done events and errors).
PLATFORM_PREFIXES = ("done", "error")

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


def is_platform_descriptor(descriptor: str) -> bool:
    """Whether a (normalized) descriptor names events only the interpreter raises: ``done``,
    ``done.state.x``, ``error``, ``error.execution`` ..."""
    return any(descriptor == prefix or descriptor.startswith(prefix + ".") for prefix in PLATFORM_PREFIXES)
