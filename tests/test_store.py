"""The durable store's API, on SQLite and on PostgreSQL (every test runs against both backends)."""

from __future__ import annotations

import math
import threading
from collections import Counter
from typing import Any, Iterator

import attrs
import pytest

import statechart
from statechart import (
    DefinitionMismatchError,
    DuplicateInstanceError,
    IdempotencyConflictError,
    InstanceDoneError,
    InstanceNotFoundError,
    MachineNotLoadedError,
    PayloadError,
    Store,
    StoreSchemaError,
    UnhandledEventError,
    UnknownEventError,
    VirtualClock,
)
from statechart.store.backends import open_backend
from statechart.store.schema import SCHEMA_VERSION

from machines import machine, rows

TICKET_V1 = """\
machine: ticket
version: 1
initial: open
data:
  count: 0
  reminded: 0
  log: []
states:
  open:
    on:
      BUMP:
        actions:
          - {assign: {count: "count + 1"}}
          - {emit: {event: bumped, data: {count: "count"}}}
          - {emit: {event: noted, data: {note: "'bump'"}}}
      START: working
      SCHEDULE:
        actions:
          - {send: {event: T10, delay: 10s, id: t10}}
          - {send: {event: T3, delay: 3s, id: t3, data: {k: 3}}}
          - {send: {event: T7, delay: 7s, id: t7}}
      T3: {actions: [{assign: {log: "log + [event.name]"}}, {emit: {event: fired, data: {name: "event.name"}}}]}
      T7: {actions: [{assign: {log: "log + [event.name]"}}]}
      T10: {actions: [{assign: {log: "log + [event.name]"}}]}
      FINISH: closed
  working:
    initial: active
    entry: [{send: {event: REMIND, delay: 10s, id: remind}}]
    states:
      active: {on: {PAUSE: paused}}
      paused: {on: {RESUME: active}}
    on:
      REMIND: {actions: [{assign: {reminded: "reminded + 1"}}]}
      CALM: {actions: [{cancel: remind}]}
      STOP: open
  closed: {type: final}
"""

# The same machine, version 2: starts counting at 100.
TICKET_V2 = TICKET_V1.replace("version: 1", "version: 2").replace("count: 0", "count: 100")

# Version 1 again, but edited: its definition hash differs from the stored instances'.
TICKET_V1_EDITED = TICKET_V1.replace("FINISH: closed", "FINISH: closed\n      REOPEN: open")

PAIR = """\
machine: pair
version: 1
initial: both
states:
  both:
    type: parallel
    states:
      left:
        initial: l1
        states:
          l1: {on: {LEFT: l2}}
          l2: {}
      right:
        initial: r1
        states:
          r1: {on: {RIGHT: r2}}
          r2: {}
"""

ALARM = """\
machine: alarm
version: 1
initial: armed
data: {a: 0, b: 0}
states:
  armed:
    entry:
      - {send: {event: RING_A, delay: 5s, id: a}}
      - {send: {event: RING_B, delay: 7s, id: b}}
    on:
      RING_A: {actions: [{assign: {a: "a + 1"}}]}
      RING_B: {actions: [{assign: {b: "b + 1"}}]}
"""


@pytest.fixture
def store(store_url: str, clock: VirtualClock) -> Iterator[Store]:
    with Store.open(store_url, clock=clock) as opened:
        opened.register(machine(TICKET_V1), machine(TICKET_V2), machine(PAIR), machine(ALARM))
        yield opened


def outbox(store: Store, instance_id: str) -> list[tuple[str, Any]]:
    import json

    return [(event, json.loads(data)) for event, data in rows(
        store, "SELECT event, data FROM statechart_outbox WHERE instance_id = ? ORDER BY id", (instance_id,))]


def timers(store: Store, instance_id: str) -> list[tuple[str, str, float]]:
    return [(send_id, event, due) for send_id, event, due in rows(
        store, "SELECT send_id, event, due_at FROM statechart_timers WHERE instance_id = ? ORDER BY due_at",
        (instance_id,))]


def state_rows(store: Store, instance_id: str) -> dict[str, float]:
    return dict(rows(store, "SELECT state, entered_at FROM statechart_instance_states WHERE instance_id = ?",
                     (instance_id,)))


def table_counts(store: Store) -> dict[str, int]:
    tables = ("statechart_instances", "statechart_instance_states", "statechart_audit", "statechart_outbox",
              "statechart_timers", "statechart_idempotency")
    return {table: rows(store, f"SELECT COUNT(*) FROM {table}")[0][0] for table in tables}


def everything(store: Store) -> dict[str, list[tuple]]:
    """Every row of every table the store writes, for 'nothing was written' checks."""
    tables = {"statechart_instances": "id", "statechart_instance_states": "instance_id, state",
              "statechart_audit": "id", "statechart_outbox": "id", "statechart_timers": "instance_id, send_id, seq",
              "statechart_idempotency": "instance_id, key"}
    return {table: rows(store, f"SELECT * FROM {table} ORDER BY {order}") for table, order in tables.items()}


# -- creating ---------------------------------------------------------------------------------------------

def test_create_uses_the_latest_registered_version_by_default(store: Store) -> None:
    created = store.create("ticket", id="t1")
    assert (created.machine, created.version, created.data["count"]) == ("ticket", 2, 100)
    assert store.load("t1").version == 2


def test_create_with_an_explicit_version_starts_that_version(store: Store) -> None:
    created = store.create("ticket", {"count": 5}, id="t1", version=1)
    loaded = store.load("t1")
    assert (loaded.version, loaded.data) == (1, {"count": 5, "reminded": 0, "log": []})
    assert loaded == created


def test_create_stores_the_initial_configuration_revision_one_and_a_start_audit_row(store: Store,
                                                                                    clock: VirtualClock) -> None:
    store.create("ticket", id="t1", version=1, actor="alice")
    loaded = store.load("t1")
    assert (loaded.configuration, loaded.revision, loaded.done) == (frozenset({"open"}), 1, False)
    assert (loaded.created_at, loaded.updated_at, loaded.state_entered) == (1000.0, 1000.0, {"open": 1000.0})
    [row] = store.audit("t1")
    assert {k: row[k] for k in ("revision", "event", "configuration_before", "configuration_after", "actor",
                                "outcome", "reason")} == {
        "revision": 1, "event": "(start)", "configuration_before": [], "configuration_after": ["open"],
        "actor": "alice", "outcome": "applied", "reason": None}


def test_create_keeps_the_id_the_caller_chose(store: Store) -> None:
    created = store.create("ticket", id="order-42")
    assert created.id == "order-42"
    assert store.load("order-42").id == "order-42"


def test_create_without_an_id_generates_a_distinct_one_each_time(store: Store) -> None:
    first, second = store.create("ticket"), store.create("ticket")
    assert first.id != second.id
    assert len(first.id) == 32 and int(first.id, 16) >= 0
    assert store.load(first.id).id == first.id


def test_create_with_a_taken_id_raises_duplicate_and_writes_nothing(store: Store) -> None:
    store.create("ticket", {"count": 1}, id="t1", version=1)
    before = everything(store)
    with pytest.raises(DuplicateInstanceError) as raised:
        store.create("ticket", {"count": 2}, id="t1", version=1)
    assert raised.value.instance_id == "t1"
    assert everything(store) == before
    assert store.load("t1").data["count"] == 1


def test_create_many_with_one_taken_id_writes_none_of_the_batch(store: Store) -> None:
    store.create("ticket", id="b")
    before = everything(store)
    with pytest.raises(DuplicateInstanceError) as raised:
        store.create_many("ticket", [{}, {}, {}], ids=["a", "b", "c"])
    assert raised.value.instance_id == "b"
    assert everything(store) == before


def test_create_of_an_unregistered_machine_raises_machine_not_loaded(store: Store) -> None:
    with pytest.raises(MachineNotLoadedError) as raised:
        store.create("invoice")
    assert (raised.value.machine, raised.value.version) == ("invoice", None)
    with pytest.raises(MachineNotLoadedError) as raised:
        store.create("ticket", version=3)
    assert (raised.value.machine, raised.value.version) == ("ticket", 3)
    assert table_counts(store)["statechart_instances"] == 0


def test_create_writes_the_timers_of_delayed_sends_in_the_initial_step(store: Store) -> None:
    created = store.create("alarm", id="al")
    assert timers(store, "al") == [("a", "RING_A", 1005.0), ("b", "RING_B", 1007.0)]
    assert [(p.id, p.event, p.due) for p in created.pending_sends] == [("a", "RING_A", 1005.0),
                                                                        ("b", "RING_B", 1007.0)]


def test_create_of_unstorable_data_raises_payload_error_and_writes_nothing(store: Store) -> None:
    with pytest.raises(PayloadError):
        store.create("ticket", {"tags": {"a", "b"}}, id="t1")
    assert table_counts(store)["statechart_instances"] == 0
    assert table_counts(store)["statechart_audit"] == 0


# -- reading ----------------------------------------------------------------------------------------------

def test_load_of_a_missing_id_raises_instance_not_found(store: Store) -> None:
    with pytest.raises(InstanceNotFoundError) as raised:
        store.load("nope")
    assert raised.value.instance_id == "nope"


def test_instance_gives_a_live_instance_restored_from_the_stored_snapshot(store: Store) -> None:
    store.create("ticket", id="t1", version=1)
    store.send("t1", "BUMP")
    live = store.instance("t1")
    assert (live.configuration, live.data["count"]) == (frozenset({"open"}), 1)
    live.send("BUMP")
    assert store.load("t1").data["count"] == 1  # changes to the live instance are not stored


def test_list_and_count_filter_by_machine_and_version(store: Store) -> None:
    store.create("ticket", id="t1", version=1)
    store.create("ticket", id="t2", version=2)
    store.create("ticket", id="t3", version=1)
    store.create("pair", id="p1")
    assert [i.id for i in store.list("ticket")] == ["t1", "t2", "t3"]
    assert [i.id for i in store.list("ticket", version=1)] == ["t1", "t3"]
    assert [i.id for i in store.list()] == ["p1", "t1", "t2", "t3"]
    assert (store.count("ticket"), store.count("ticket", version=2), store.count("pair"), store.count()) == (3, 1, 1, 4)
    assert store.count("ticket", version=7) == 0


def test_list_and_count_filter_by_active_state_including_compound_ones(store: Store) -> None:
    store.create_many("ticket", [{}, {}, {}], ids=["t1", "t2", "t3"], version=1)
    store.send("t1", "START")
    store.send("t2", "START")
    store.send("t2", "PAUSE")
    assert [i.id for i in store.list("ticket", state="working")] == ["t1", "t2"]
    assert [i.id for i in store.list("ticket", state="paused")] == ["t2"]
    assert [i.id for i in store.list("ticket", state="open")] == ["t3"]
    assert (store.count("ticket", state="working"), store.count("ticket", state="active"),
            store.count("ticket", state="closed")) == (2, 1, 0)


def test_list_stuck_for_finds_instances_whose_state_has_not_changed_for_that_long(store: Store,
                                                                                  clock: VirtualClock) -> None:
    store.create_many("ticket", [{}, {}, {}], ids=["t1", "t2", "t3"], version=1)  # open since 1000
    clock.advance(50)
    store.send("t2", "START")  # working.active since 1050
    store.send("t3", "BUMP")  # an event without a transition: t3 stays in open since 1000
    clock.advance(30)  # now 1080
    assert [i.id for i in store.list("ticket", stuck_for=60)] == ["t1", "t3"]
    assert [i.id for i in store.list("ticket", stuck_for=30)] == ["t1", "t2", "t3"]
    assert [i.id for i in store.list("ticket", state="working", stuck_for=30)] == ["t2"]
    assert store.list("ticket", state="working", stuck_for=31) == []
    assert store.count("ticket", stuck_for=60) == 2


def test_stuck_for_leaves_out_finished_instances(store: Store, clock: VirtualClock) -> None:
    store.create_many("ticket", [{}, {}], ids=["t1", "t2"], version=1)
    store.send("t1", "FINISH")
    clock.advance(100)
    assert [i.id for i in store.list("ticket", stuck_for=50)] == ["t2"]
    assert [i.id for i in store.list("ticket", state="closed")] == ["t1"]


def test_stuck_for_lists_an_instance_with_two_stuck_parallel_leaves_once(store: Store, clock: VirtualClock) -> None:
    store.create_many("pair", [{}, {}], ids=["p1", "p2"])
    clock.advance(100)
    assert [i.id for i in store.list("pair", stuck_for=50)] == ["p1", "p2"]
    assert store.count("pair", stuck_for=50) == 2


def test_list_pages_by_id_with_after(store: Store) -> None:
    ids = [f"t{n:02d}" for n in range(7)]
    store.create_many("ticket", [{}] * 7, ids=list(reversed(ids)))
    first = store.list("ticket", limit=3)
    second = store.list("ticket", limit=3, after=first[-1].id)
    third = store.list("ticket", limit=3, after=second[-1].id)
    assert [[i.id for i in page] for page in (first, second, third)] == [ids[:3], ids[3:6], ids[6:]]
    assert store.list("ticket", limit=3, after=third[-1].id) == []


def test_delete_removes_the_instance_its_timers_states_and_keys_but_keeps_audit_and_outbox(store: Store) -> None:
    store.create("ticket", id="t1", version=1)
    store.create("ticket", id="t2", version=1)
    store.send("t1", "BUMP", idempotency_key="k1")
    store.send("t1", "START")
    store.send("t2", "START")
    store.delete("t1")
    with pytest.raises(InstanceNotFoundError):
        store.load("t1")
    assert (timers(store, "t1"), state_rows(store, "t1")) == ([], {})
    assert rows(store, "SELECT COUNT(*) FROM statechart_idempotency WHERE instance_id = ?", ("t1",)) == [(0,)]
    assert [r["event"] for r in store.audit("t1")] == ["(start)", "BUMP", "START"]
    assert [event for event, _ in outbox(store, "t1")] == ["bumped", "noted"]
    assert timers(store, "t2") == [("remind", "REMIND", 1010.0)]  # the other instance keeps its rows
    assert [i.id for i in store.list("ticket")] == ["t2"]
    with pytest.raises(InstanceNotFoundError):
        store.delete("t1")


# -- sending ----------------------------------------------------------------------------------------------

def test_send_commits_the_new_snapshot_and_one_audit_row(store: Store, clock: VirtualClock) -> None:
    store.create("ticket", id="t1", version=1)
    clock.advance(5)
    receipt = store.send("t1", "START", {"by": "bob"}, actor="bob")
    assert receipt == statechart.Receipt("t1", "START", "applied", 2, ("open",), ("active", "working"),
                                         ("open:START:0",), (), False, False)
    loaded = store.load("t1")
    assert (loaded.configuration, loaded.revision, loaded.updated_at) == (frozenset({"working", "active"}), 2, 1005.0)
    assert [{k: r[k] for k in ("revision", "event", "data", "transitions", "configuration_before",
                               "configuration_after", "actor", "outcome", "reason", "created_at")}
            for r in store.audit("t1")][1:] == [
        {"revision": 2, "event": "START", "data": {"by": "bob"}, "transitions": ["open:START:0"],
         "configuration_before": ["open"], "configuration_after": ["active", "working"], "actor": "bob",
         "outcome": "applied", "reason": None, "created_at": 1005.0}]


def test_send_of_an_event_nothing_handles_is_audited_as_unhandled(store: Store) -> None:
    store.create("ticket", id="t1", version=1)
    receipt = store.send("t1", "PAUSE")
    assert (receipt.outcome, receipt.handled, receipt.revision, receipt.transitions) == ("unhandled", False, 2, ())
    assert [(r["event"], r["outcome"], r["revision"]) for r in store.audit("t1")] == [
        ("(start)", "applied", 1), ("PAUSE", "unhandled", 2)]
    assert store.load("t1").configuration == frozenset({"open"})


def test_send_writes_one_outbox_row_per_emit_in_emit_order(store: Store) -> None:
    store.create("ticket", id="t1", version=1)
    receipt = store.send("t1", "BUMP")
    store.send("t1", "BUMP")
    assert receipt.effects == ({"event": "bumped", "data": {"count": 1}}, {"event": "noted", "data": {"note": "bump"}})
    assert outbox(store, "t1") == [("bumped", {"count": 1}), ("noted", {"note": "bump"}),
                                   ("bumped", {"count": 2}), ("noted", {"note": "bump"})]
    assert rows(store, "SELECT DISTINCT machine, published_at FROM statechart_outbox") == [("ticket", None)]


def test_delayed_send_writes_a_timer_row_and_cancel_removes_it(store: Store, clock: VirtualClock) -> None:
    store.create("ticket", id="t1", version=1)
    clock.advance(2)
    store.send("t1", "START")
    assert timers(store, "t1") == [("remind", "REMIND", 1012.0)]
    store.send("t1", "CALM")
    assert timers(store, "t1") == []
    assert store.load("t1").pending_sends == ()


def test_a_fired_timer_row_is_gone_and_its_event_audited(store: Store, clock: VirtualClock) -> None:
    store.create("ticket", id="t1", version=1)
    store.send("t1", "START")
    clock.advance(10)
    [receipt] = store.fire_due()
    assert (receipt.event, receipt.outcome, receipt.revision) == ("REMIND", "applied", 3)
    assert timers(store, "t1") == []
    loaded = store.load("t1")
    assert (loaded.data["reminded"], loaded.pending_sends) == (1, ())
    assert [(r["event"], r["actor"], r["outcome"]) for r in store.audit("t1")][-1] == ("REMIND", "timer", "applied")
    assert store.fire_due() == []


def test_send_records_when_each_active_state_was_entered(store: Store, clock: VirtualClock) -> None:
    store.create("ticket", id="t1", version=1)
    clock.advance(10)
    store.send("t1", "START")  # 1010: working, active
    clock.advance(10)
    store.send("t1", "PAUSE")  # 1020: paused; working stays entered at 1010
    expected = {"working": 1010.0, "paused": 1020.0}
    assert store.load("t1").state_entered == expected
    assert state_rows(store, "t1") == expected
    clock.advance(10)
    store.send("t1", "STOP")  # 1030: back in open
    assert store.load("t1").state_entered == state_rows(store, "t1") == {"open": 1030.0}


def test_strict_store_rejects_an_unhandled_event_with_an_audited_reason_and_no_change(store_url: str) -> None:
    with Store.open(store_url, clock=VirtualClock(), strict=True) as strict:
        strict.register(machine(TICKET_V1))
        strict.create("ticket", id="t1")
        before = strict.load("t1")
        with pytest.raises(UnhandledEventError) as raised:
            strict.send("t1", "PAUSE", {"x": 1}, actor="carol")
        assert strict.load("t1") == before
        last = strict.audit("t1")[-1]
        assert (last["event"], last["data"], last["outcome"], last["reason"], last["actor"], last["revision"]) == (
            "PAUSE", {"x": 1}, "rejected", str(raised.value), "carol", 1)
        assert (last["configuration_before"], last["configuration_after"]) == (["open"], ["open"])
        assert outbox(strict, "t1") == []


def test_strict_store_rejects_an_unknown_event_with_an_audited_reason(store_url: str) -> None:
    with Store.open(store_url, clock=VirtualClock(), strict=True) as strict:
        strict.register(machine(TICKET_V1))
        strict.create("ticket", id="t1")
        with pytest.raises(UnknownEventError) as raised:
            strict.send("t1", "TELEPORT")
        assert [(r["event"], r["outcome"], r["reason"]) for r in strict.audit("t1")][1:] == [
            ("TELEPORT", "rejected", str(raised.value))]
        assert strict.load("t1").revision == 1


def test_an_event_for_a_finished_instance_is_rejected_and_audited(store: Store) -> None:
    store.create("ticket", id="t1", version=1)
    receipt = store.send("t1", "FINISH")
    assert (receipt.done, receipt.configuration_after) == (True, ("closed",))
    before = store.load("t1")
    with pytest.raises(InstanceDoneError) as raised:
        store.send("t1", "BUMP")
    assert store.load("t1") == before
    assert [(r["event"], r["outcome"], r["reason"], r["revision"]) for r in store.audit("t1")][-1] == (
        "BUMP", "rejected", str(raised.value), 2)
    assert outbox(store, "t1") == []


def test_send_to_a_missing_instance_raises_instance_not_found(store: Store) -> None:
    with pytest.raises(InstanceNotFoundError) as raised:
        store.send("ghost", "BUMP")
    assert raised.value.instance_id == "ghost"
    assert table_counts(store)["statechart_audit"] == 0


@pytest.mark.parametrize("payload", [{"tags": {"a"}}, {"x": math.nan}, object(), {"deep": [1, {"inf": math.inf}]}],
                         ids=["set", "nan", "object", "nested-infinity"])
def test_send_of_a_payload_json_cannot_hold_raises_payload_error_and_writes_nothing(store: Store,
                                                                                     payload: Any) -> None:
    store.create("ticket", id="t1", version=1)
    before = everything(store)
    with pytest.raises(PayloadError):
        store.send("t1", "BUMP", payload, idempotency_key="k")
    assert everything(store) == before


def test_send_to_an_instance_whose_version_is_not_registered_raises_machine_not_loaded(store_url: str) -> None:
    with Store.open(store_url, clock=VirtualClock()) as first:
        first.register(machine(TICKET_V1))
        first.create("ticket", id="t1")
    with Store.open(store_url, clock=VirtualClock()) as second:
        second.register(machine(TICKET_V2))
        before = everything(second)
        with pytest.raises(MachineNotLoadedError) as raised:
            second.send("t1", "BUMP")
        assert (raised.value.machine, raised.value.version, raised.value.loaded) == ("ticket", 1, ("ticket v2",))
        assert everything(second) == before


def test_send_under_a_changed_definition_of_the_same_version_raises_mismatch(store_url: str) -> None:
    with Store.open(store_url, clock=VirtualClock()) as first:
        first.register(machine(TICKET_V1))
        first.create("ticket", id="t1")
    with Store.open(store_url, clock=VirtualClock()) as second:
        second.register(machine(TICKET_V1_EDITED))
        before = everything(second)
        with pytest.raises(DefinitionMismatchError):
            second.send("t1", "BUMP")
        assert everything(second) == before


# -- idempotency ----------------------------------------------------------------------------------------

def test_a_repeated_idempotency_key_returns_the_stored_receipt_and_writes_nothing(store: Store,
                                                                                   clock: VirtualClock) -> None:
    store.create("ticket", id="t1", version=1)
    first = store.send("t1", "BUMP", {"n": 1}, idempotency_key="req-1")
    after_first = everything(store)
    clock.advance(5)
    again = store.send("t1", "BUMP", {"n": 1}, idempotency_key="req-1")
    assert again.replayed and not first.replayed
    assert again == attrs.evolve(first, replayed=True)
    assert everything(store) == after_first
    assert store.load("t1").data["count"] == 1


def test_the_same_key_with_another_payload_raises_idempotency_conflict(store: Store) -> None:
    store.create("ticket", id="t1", version=1)
    store.send("t1", "BUMP", {"n": 1}, idempotency_key="req-1")
    before = everything(store)
    with pytest.raises(IdempotencyConflictError) as raised:
        store.send("t1", "BUMP", {"n": 2}, idempotency_key="req-1")
    assert (raised.value.instance_id, raised.value.key) == ("t1", "req-1")
    with pytest.raises(IdempotencyConflictError):
        store.send("t1", "START", {"n": 1}, idempotency_key="req-1")
    assert everything(store) == before


def test_idempotency_keys_are_per_instance(store: Store) -> None:
    store.create_many("ticket", [{}, {}], ids=["t1", "t2"], version=1)
    store.send("t1", "BUMP", idempotency_key="same")
    receipt = store.send("t2", "START", idempotency_key="same")
    assert (receipt.instance_id, receipt.outcome, receipt.replayed) == ("t2", "applied", False)


def test_purge_forgets_keys_older_than_the_retention(store_url: str) -> None:
    clock = VirtualClock()
    with Store.open(store_url, clock=clock, idempotency_retention=60) as store:
        store.register(machine(TICKET_V1))
        store.create("ticket", id="t1")
        store.send("t1", "BUMP", idempotency_key="old")
        clock.advance(40)
        store.send("t1", "BUMP", idempotency_key="new")
        clock.advance(30)  # "old" is 70 s old, "new" 30 s
        assert store.purge_idempotency_keys() == 1
        assert store.send("t1", "BUMP", idempotency_key="new").replayed
        fresh = store.send("t1", "BUMP", {"other": True}, idempotency_key="old")
        assert (fresh.replayed, fresh.outcome) == (False, "applied")
        assert store.load("t1").data["count"] == 3


# -- schema -----------------------------------------------------------------------------------------------

def test_a_fresh_store_records_its_schema_version(store: Store) -> None:
    assert store.schema_version() == SCHEMA_VERSION
    assert rows(store, "SELECT key, value FROM statechart_meta") == [("schema_version", str(SCHEMA_VERSION))]


def test_reopening_a_store_keeps_its_instances(store_url: str) -> None:
    with Store.open(store_url, clock=VirtualClock()) as first:
        first.register(machine(TICKET_V1))
        first.create("ticket", id="t1")
        first.send("t1", "BUMP")
        stored = first.load("t1")
    with Store.open(store_url, clock=VirtualClock()) as second:
        second.register(machine(TICKET_V1))
        assert second.schema_version() == SCHEMA_VERSION
        assert second.load("t1") == stored
        assert second.send("t1", "BUMP").revision == 3


def _tables(backend: Any) -> list[str]:
    if backend.dialect == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY name"
    else:
        sql = ("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() UNION ALL "
               "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1")
    return [row[0] for row in backend.execute(sql).fetchall()]


def test_a_store_with_a_newer_schema_is_refused_and_left_untouched(store_url: str) -> None:
    backend = open_backend(store_url)
    with backend.transaction():  # what a newer release might have made of the database
        backend.execute("CREATE TABLE statechart_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        backend.execute("INSERT INTO statechart_meta (key, value) VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION + 1),))
        backend.execute("CREATE TABLE statechart_things (id TEXT PRIMARY KEY)")
        backend.execute("INSERT INTO statechart_things (id) VALUES ('x')")
    tables = _tables(backend)
    with pytest.raises(StoreSchemaError) as raised:
        Store.open(store_url)
    assert f"schema version {SCHEMA_VERSION + 1}" in str(raised.value)
    assert _tables(backend) == tables
    assert [tuple(r) for r in backend.execute("SELECT key, value FROM statechart_meta").fetchall()] == [
        ("schema_version", str(SCHEMA_VERSION + 1))]
    assert [tuple(r) for r in backend.execute("SELECT id FROM statechart_things").fetchall()] == [("x",)]
    backend.close()


# -- timers -----------------------------------------------------------------------------------------------

def test_fire_due_fires_due_timers_in_due_order_through_the_atomic_step(store: Store, clock: VirtualClock) -> None:
    store.create("ticket", id="t1", version=1)
    store.send("t1", "SCHEDULE")
    assert [t[1] for t in timers(store, "t1")] == ["T3", "T7", "T10"]
    clock.advance(5)
    assert [(r.event, r.revision) for r in store.fire_due()] == [("T3", 3)]
    assert [t[1] for t in timers(store, "t1")] == ["T7", "T10"]
    clock.advance(10)
    assert [t[3] for t in store.due_timers()] == ["T7", "T10"]
    assert [(r.event, r.revision) for r in store.fire_due()] == [("T7", 4), ("T10", 5)]
    loaded = store.load("t1")
    assert (loaded.data["log"], loaded.revision, loaded.pending_sends) == (["T3", "T7", "T10"], 5, ())
    assert [(r["event"], r["data"], r["actor"]) for r in store.audit("t1")][2:] == [
        ("T3", {"k": 3}, "timer"), ("T7", None, "timer"), ("T10", None, "timer")]
    assert outbox(store, "t1") == [("fired", {"name": "T3"})]
    assert timers(store, "t1") == [] and store.due_timers() == []


def test_fire_due_orders_timers_across_instances_by_due_time(store: Store, clock: VirtualClock) -> None:
    store.create("ticket", id="b", version=1)
    store.send("b", "SCHEDULE")  # due 1003, 1007, 1010
    clock.advance(1)
    store.create("ticket", id="a", version=1)
    store.send("a", "SCHEDULE")  # due 1004, 1008, 1011
    clock.advance(20)
    assert [(r.instance_id, r.event) for r in store.fire_due(limit=4)] == [
        ("b", "T3"), ("a", "T3"), ("b", "T7"), ("a", "T7")]
    assert [(r.instance_id, r.event) for r in store.fire_due()] == [("b", "T10"), ("a", "T10")]


def test_fire_due_leaves_timers_that_are_not_due_yet(store: Store, clock: VirtualClock) -> None:
    store.create("alarm", id="al")
    clock.advance(4.5)
    assert store.fire_due() == [] and store.due_timers() == []
    clock.advance(0.5)
    assert [r.event for r in store.fire_due()] == ["RING_A"]
    assert timers(store, "al") == [("b", "RING_B", 1007.0)]


def test_workers_share_due_timers_and_none_fires_twice(store_url: str) -> None:
    clock = VirtualClock()
    alarm = machine(ALARM)
    count = 150  # two timers each: 300 timers
    with Store.open(store_url, clock=clock) as setup:
        setup.register(alarm)
        setup.create_many("alarm", [{}] * count, ids=[f"al{n:03d}" for n in range(count)])
    clock.advance(10)
    workers = 4 if store_url.startswith("postgresql") else 1
    fired: list[int] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with Store.open(store_url, clock=clock) as mine:
                mine.register(alarm)
                fired.append(mine.run_worker(poll_interval=0.01, batch=25, max_idle_polls=3))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(fired) == 2 * count
    with Store.open(store_url, clock=clock) as check:
        per_timer = Counter((instance_id, event) for instance_id, event in rows(
            check, "SELECT instance_id, event FROM statechart_audit WHERE event <> '(start)'"))
        assert len(per_timer) == 2 * count
        assert set(per_timer.values()) == {1}
        assert rows(check, "SELECT COUNT(*) FROM statechart_timers") == [(0,)]
        assert {(i.data["a"], i.data["b"], i.revision) for i in check.list("alarm", limit=count)} == {(1, 1, 3)}


def test_a_store_written_by_schema_version_1_is_upgraded_in_place(store_url: str) -> None:
    """A database from the first release (no migration tables) opens, gains them, keeps its rows."""
    from statechart.store.backends import open_backend
    from statechart.store.schema import _TABLES, _statements

    backend = open_backend(store_url)
    with backend.transaction():
        backend.execute("CREATE TABLE statechart_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        for statement in _statements(_TABLES, backend.dialect):
            backend.execute(statement)
        backend.execute("INSERT INTO statechart_meta (key, value) VALUES ('schema_version', '1')")
        backend.execute("INSERT INTO statechart_outbox (instance_id, machine, event, data, created_at) "
                        "VALUES ('i1', 'm', 'kept', 'null', 1.0)")
    backend.close()
    with Store.open(store_url) as store:
        assert store.schema_version() == SCHEMA_VERSION == 4  # through 2 and 3
        assert rows(store, "SELECT event FROM statechart_outbox") == [("kept",)]
        assert rows(store, "SELECT COUNT(*) FROM statechart_migration_runs") == [(0,)]


def test_a_timer_this_worker_cannot_fire_is_postponed_and_does_not_block_later_ones(store_url: str) -> None:
    clock = statechart.VirtualClock(0)
    machine_v1 = statechart.loads(
        "machine: pinger\nversion: 1\nstates:\n  a: {after: {1s: b}}\n  b: {}\n", "machines/pinger/v1.yaml")
    other = statechart.loads(
        "machine: other\nversion: 1\nstates:\n  a: {after: {2s: b}}\n  b: {}\n", "machines/other/v1.yaml")
    with Store.open(store_url, clock=clock) as writer:
        writer.register(machine_v1, other)
        writer.create("pinger", id="p")
        writer.create("other", id="o")
    clock.advance(5)
    with Store.open(store_url, clock=clock, timer_retry_delay=30) as worker:
        worker.register(other)  # this worker does not know pinger
        receipts = worker.fire_due()
        assert [(r.instance_id, r.outcome) for r in receipts] == [("p", "postponed"), ("o", "applied")]
        assert worker.load("o").configuration == {"b"}
        assert worker.load("p").configuration == {"a"}
        assert worker.due_timers() == []
        postponed = rows(worker, "SELECT due_at FROM statechart_timers WHERE instance_id = 'p'")
        assert postponed == [(35.0,)]
        assert worker.audit("p")[-1]["outcome"] == "rejected"
        assert "not registered" in worker.audit("p")[-1]["reason"]


def test_a_finished_region_waiting_for_its_sibling_is_not_stuck(store_url: str) -> None:
    clock = statechart.VirtualClock(0)
    machine = statechart.loads("""
machine: pair
version: 1
states:
  both:
    type: parallel
    states:
      left: {states: {l1: {on: {L: l2}}, l2: {type: final}}}
      right: {states: {r1: {on: {R: r2}}, r2: {type: final}}}
""", "machines/pair/v1.yaml")
    with Store.open(store_url, clock=clock) as store:
        store.register(machine)
        store.create("pair", id="waiting-on-right")
        store.send("waiting-on-right", "L")
        clock.advance(7200)
        stuck = store.list("pair", stuck_for=3600)
        assert [s.id for s in stuck] == ["waiting-on-right"]          # r1 is stuck ...
        store.send("waiting-on-right", "R")
        assert store.count("pair", stuck_for=0) == 0                    # ... l2 and r2 are final, not stuck
        store.create("pair", id="fresh")
        store.send("fresh", "L")
        clock.advance(7200)
        assert [s.id for s in store.list("pair", stuck_for=3600)] == ["fresh"]   # only r1, not the final l2
