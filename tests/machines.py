"""Machine texts and store helpers that several test modules share (import as ``from machines import ...``;
pytest puts tests/ on ``sys.path``).

One copy each, so a change to the ticket machine or to how a test reads raw rows is made once. A machine
used by a single module stays in that module, next to the tests that explain it.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

import statechart
from statechart import Store, VirtualClock
from statechart.cli import main

__all__ = ["TICKET", "PINGER", "ticket_text", "machine", "open_store", "rows", "run_cli", "plain"]

_TICKET = """\
machine: ticket
version: {version}
initial: open
states:
  open:
    on:
      ASSIGN: assigned
      CLOSE: closed
  assigned:
    on:
      COMMENT: {{actions: [{{emit: {{event: commented, data: {{by: "event.data['by']"}}}}}}]}}
      RESOLVE: review
  review:
    type: parallel
    states:
      qa: {{initial: testing, states: {{testing: {{on: {{PASS: passed}}}}, passed: {{type: final}}}}}}
      docs: {{initial: writing, states: {{writing: {{on: {{WRITTEN: written}}}}, written: {{type: final}}}}}}
    on_done: closed
  closed: {{type: final}}
"""


def ticket_text(version: int = 1) -> str:
    """A support ticket: open -> assigned (COMMENT emits ``commented``) -> review, a parallel state of
    qa and docs whose completion closes the ticket; CLOSE closes it from open."""
    return _TICKET.format(version=version)


TICKET = ticket_text(1)

#: Emits ``pinged`` with the event's ``n`` on PING, and two events (``first``, ``second``) on TWICE.
PINGER = """\
machine: pinger
version: 1
initial: idle
states:
  idle:
    on:
      PING: {actions: [{emit: {event: pinged, data: {n: "event.data['n']"}}}]}
      TWICE: {actions: [{emit: first}, {emit: second}]}
"""

_HEADER = re.compile(r"^machine: (\S+)\nversion: (\d+)\n", re.MULTILINE)


def machine(text: str) -> statechart.Machine:
    """Load ``text`` as ``machines/<name>/v<version>.yaml``, the name and version read from its first lines."""
    found = _HEADER.search(text)
    assert found is not None, f"a shared test machine starts with 'machine:' and 'version:' lines:\n{text}"
    return statechart.loads(text, f"machines/{found.group(1)}/v{found.group(2)}.yaml")


def open_store(url: str, clock: VirtualClock, *texts: str, **options: Any) -> Store:
    """A store at ``url`` on ``clock`` with the machines of ``texts`` registered (close it, or use ``with``)."""
    store = Store.open(url, clock=clock, **options)
    store.register(*(machine(text) for text in texts))
    return store


def rows(store: Store, sql: str, params: tuple = ()) -> list[tuple]:
    """The raw rows of ``sql`` as tuples, to check what the store wrote below its API."""
    return [tuple(row) for row in store.backend.execute(sql, params).fetchall()]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``statechart ARGV`` in-process: the exit code, stdout and stderr."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def plain(value: Any) -> Any:
    """Located containers (the loader's dicts and lists that remember file:line:col) -> plain dicts and
    lists, as JSON Schema validators and equality with literals expect."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value
