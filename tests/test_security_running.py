"""The trust boundary at run time (issue 11, running half): an attack corpus.

Machine YAML, snapshots, stored rows and everything a caller sends are data. Each case here
asserts the specific error, that nothing was written (revision, audit, outbox, timers
unchanged), and that evaluation stops quickly instead of hanging or allocating gigabytes.
"""

from __future__ import annotations

import math
import time
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import statechart
from statechart import (
    IllegalSnapshotError,
    PayloadError,
    ReservedEventError,
    SnapshotFormatError,
    StatechartError,
    Store,
)
from statechart.clock import VirtualClock

ORDER = """
machine: order
version: 1
data: {total: 0, note: null, items: []}
initial: order
states:
  order:
    initial: payment
    on:
      error.execution: failed
      SET: {actions: [{assign: {note: "event.data"}}]}
    states:
      payment:
        initial: awaiting
        states:
          awaiting: {on: {PAID: paid}}
          paid: {type: final}
        on_done: fulfillment
        after: {1h: expired}
      fulfillment:
        on: {SHIP: shipped}
      expired: {}
      shipped: {}
  failed: {type: final}
"""
START = {"order", "payment", "awaiting"}


def order() -> statechart.Machine:
    return statechart.loads(ORDER)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store.open(store_url, clock=VirtualClock()) as opened:
        opened.register(order())
        yield opened


def written(store: Store, instance_id: str) -> tuple[Any, ...]:
    """Everything a step could have written for one instance."""
    backend = store.backend

    def rows(sql: str) -> list[tuple]:
        return [tuple(r) for r in backend.execute(sql, (instance_id,)).fetchall()]

    return (
        rows("SELECT revision, configuration, data, pending FROM statechart_instances WHERE id = ?"),
        rows("SELECT COUNT(*) FROM statechart_audit WHERE instance_id = ?"),
        rows("SELECT COUNT(*) FROM statechart_outbox WHERE instance_id = ?"),
        rows("SELECT send_id, seq FROM statechart_timers WHERE instance_id = ? ORDER BY send_id"),
    )


# -- platform events from outside ---------------------------------------------------------------

RESERVED = ["done.state.payment", "error.execution", "error.communication", "done.invoke.x", "after.0.payment",
            "done", "error", "after"]


@pytest.mark.parametrize("event", RESERVED)
def test_instance_refuses_reserved_events_from_callers(event: str) -> None:
    instance = order().start(clock=VirtualClock())
    before = instance.snapshot()
    with pytest.raises(ReservedEventError) as raised:
        instance.send(event)
    assert raised.value.event == event
    assert event in str(raised.value)
    assert instance.snapshot() == before


@pytest.mark.parametrize("event", ["done.state.payment", "error.execution", "after.0.payment"])
def test_store_refuses_reserved_events_and_writes_nothing(store: Store, event: str) -> None:
    created = store.create("order", id="o-1")
    before = written(store, "o-1")
    with pytest.raises(ReservedEventError):
        store.send("o-1", event)
    with pytest.raises(ReservedEventError):
        store.send("o-1", event, idempotency_key="k-1")
    assert written(store, "o-1") == before
    assert store.load("o-1").configuration == created.configuration == START


def test_interpreter_and_timers_still_deliver_reserved_events(store: Store) -> None:
    # done.state.payment raised by the interpreter itself moves the order on
    instance = order().start(clock=VirtualClock())
    instance.send("PAID")
    assert instance.configuration == {"order", "fulfillment"}
    # the after.* timer fires through the store's timer machinery
    store.create("order", id="o-2")
    store.clock.advance(3600)  # type: ignore[attr-defined]
    receipts = store.fire_due()
    assert [r.event for r in receipts] == ["after.0.payment"]
    assert store.load("o-2").configuration == {"order", "expired"}


def test_names_that_only_start_like_reserved_ones_are_ordinary() -> None:
    machine = statechart.loads("""
    machine: m
    version: 1
    states:
      a: {on: {doneX: b, errors: b, aftermath: b}}
      b: {}
    """)
    for name in ("doneX", "errors", "aftermath"):
        instance = machine.start()
        assert instance.send(name).handled


def test_cli_run_of_a_reserved_event_is_a_message_not_a_traceback(tmp_path: Any,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from statechart.cli import main

    file = tmp_path / "order.yaml"
    file.write_text(ORDER)
    assert main(["run", str(file), "-e", "done.state.payment"]) == 1
    err = capsys.readouterr().err
    assert "cannot be sent from outside" in err and "Traceback" not in err


def test_cli_store_send_of_a_reserved_event_writes_nothing(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from statechart.cli import main

    folder = tmp_path / "machines" / "order"
    folder.mkdir(parents=True)
    (folder / "v1.yaml").write_text(ORDER)
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with Store.open(url) as opened:
        opened.register(order()).create("order", id="o-1")
        before = written(opened, "o-1")
    code = main(["send", "o-1", "error.execution", "--store", url, "--machines", str(tmp_path / "machines")])
    assert code == 1
    assert "cannot be sent from outside" in capsys.readouterr().err
    with Store.open(url) as opened:
        assert written(opened, "o-1") == before


# -- payloads and assigned values ------------------------------------------------------------------

BAD_PAYLOADS = [
    ({1: "a", "1": "b"}, "has the key 1 (int)"),
    ({None: 1}, "has the key None"),
    ({"x": float("nan")}, "is nan"),
    ({"x": float("inf")}, "is inf"),
    ({"x": 10**5000}, "beyond the 64-bit range"),
    ({"x": (1, 2)}, "is a tuple"),
    ({"x": {1, 2}}, "is a set"),
    ({"x": str}, "is a type"),
    ({"x": b"raw"}, "is a bytes"),
]


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(("payload", "message"), [*BAD_PAYLOADS, (nested(10_000), "nested more than 64")])
def test_instance_send_refuses_payloads_that_are_not_json(payload: Any, message: str) -> None:
    instance = order().start(clock=VirtualClock())
    before = instance.snapshot()
    with pytest.raises(PayloadError) as raised:
        instance.send("SET", payload)
    assert message in str(raised.value)
    assert "event data" in str(raised.value)
    assert instance.snapshot() == before


@pytest.mark.parametrize(("payload", "message"), [*BAD_PAYLOADS, (nested(10_000), "nested more than 64")])
def test_store_send_refuses_payloads_that_are_not_json_and_writes_nothing(store: Store, payload: Any,
                                                                          message: str) -> None:
    store.create("order", id="o-1")
    before = written(store, "o-1")
    with pytest.raises(PayloadError) as raised:
        store.send("o-1", "SET", payload)
    assert message in str(raised.value)
    assert written(store, "o-1") == before


def test_payloads_are_copied_so_the_caller_cannot_change_the_instance_later() -> None:
    instance = order().start(clock=VirtualClock())
    payload = {"a": [1]}
    instance.send("SET", payload)
    payload["a"].append(2)
    assert instance.data["note"] == {"a": [1]}


def test_start_data_that_is_not_json_is_refused() -> None:
    with pytest.raises(PayloadError, match="start data"):
        order().start({"total": float("nan")})


ASSIGNED = [
    ("float('nan')", "is nan"),
    ("10 ** 30", "beyond the 64-bit range"),
    ("(1, 2)", "is a tuple"),
    ("str", "is a type"),
    ("{1: 'a'}", "has the key 1 (int)"),
    ("{'a': {1, 2}}", "is a set"),
]


@pytest.mark.parametrize(("expression", "message"), ASSIGNED)
def test_assign_of_a_value_that_is_not_json_is_error_execution_with_its_location(expression: str,
                                                                                  message: str) -> None:
    machine = statechart.loads(f"""
machine: m
version: 1
data: {{x: 0}}
states:
  top:
    on:
      error.execution: failed
    states:
      a:
        on:
          GO: {{target: b, actions: [{{assign: {{x: "{expression}"}}}}]}}
      b: {{}}
  failed: {{}}
""", "m.yaml")
    instance = machine.start()
    result = instance.send("GO")
    assert instance.configuration == {"failed"}
    assert instance.data == {"x": 0}
    assert len(result.errors) == 1
    assert message in result.errors[0]
    assert "the value assigned to 'x' at m.yaml:" in result.errors[0]
    machine.restore(instance.snapshot().to_json())  # what is left round-trips


def test_script_assignments_are_checked_like_assign() -> None:
    machine = statechart.loads("""
machine: m
version: 1
data: {x: 0, d: {}}
states:
  a:
    on:
      GO: {target: b, actions: [{script: "x = (1, 2)"}]}
      SUB: {target: b, actions: [{script: "d[1] = 2"}]}
  b: {}
""")
    for event, message in (("GO", "is a tuple"), ("SUB", "data keys are strings")):
        instance = machine.start()
        result = instance.send(event)
        assert message in result.errors[0]
        assert instance.data == {"x": 0, "d": {}}


def test_emit_and_send_payloads_are_checked_before_they_reach_the_outbox() -> None:
    machine = statechart.loads("""
machine: m
version: 1
states:
  a:
    on:
      EMIT: {target: b, actions: [{emit: {event: out, data: {v: "float('inf')"}}}]}
      SEND: {target: b, actions: [{send: {event: later, delay: 1s, data: {v: "(1,)"}}}]}
  b: {}
""")
    instance = machine.start()
    result = instance.send("EMIT")
    assert result.effects == () and "is inf" in result.errors[0]
    instance = machine.start()
    result = instance.send("SEND")
    assert instance.pending_sends == () and "is a tuple" in result.errors[0]
