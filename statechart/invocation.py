"""What an invoking machine asks of its host: start a child, cancel one, deliver an event elsewhere.

The interpreter stays pure: it never starts or reaches another session itself. A macrostep
hands these commands to whoever runs the instance, in the order they happened, and that host
carries them out: the in-memory :class:`~statechart.instance.Instance` keeps its children in
memory, the store keeps each child as a stored instance of its own and delivers messages
through an inbox in the sender's transaction. One vocabulary, two hosts.
"""

from __future__ import annotations

from typing import Any, Mapping, Union

import attrs

from .events import Event

__all__ = ["ChildStart", "ChildCancel", "Message", "Command", "PARENT"]

#: The ``target`` of a :class:`Message` a child sends to the session that invoked it.
PARENT = "parent"


@attrs.frozen(slots=True)
class ChildStart:
    """Start a child session for an ``invoke`` of a state entered (and not exited) in the macrostep.

    Exactly one of ``machine`` (a name the host resolves, at ``version`` or its latest),
    ``src`` (a file the host opted in to read) or ``definition`` (an inline definition, as
    parsed data) names what to run; ``data`` is the evaluated ``params``/``namelist``, JSON
    values that override the child's initial data of the same names."""

    invokeid: str
    state: str
    machine: str | None = None
    version: int | None = None
    src: str | None = None
    definition: Any = None
    data: Mapping[str, Any] = attrs.field(factory=dict)
    autoforward: bool = False


@attrs.frozen(slots=True)
class ChildCancel:
    """Cancel the child ``invokeid``: its invoking ``state`` was exited, so the child session
    ends (its active states are exited, running their exit actions) and nothing more it
    sends reaches the parent."""

    invokeid: str
    state: str


@attrs.frozen(slots=True)
class Message:
    """An event for another session: ``target`` is :data:`PARENT`, the invokeid of one of this
    session's children, or ``#_scxml_<session id>``. ``event`` carries the sender's
    ``origin``/``origintype`` so the receiver can reply; the receiving host sets ``invokeid``
    when the event comes from one of its children."""

    target: str
    event: Event


#: One thing a macrostep asks of its host.
Command = Union[ChildStart, ChildCancel, Message]

