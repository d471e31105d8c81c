"""Lifecycle metrics on a population driven through the store, with exact counts, on both backends."""

from __future__ import annotations

from typing import Iterator

import pytest

import statechart
from statechart import Store, VirtualClock
from statechart.store.metrics import EventCounts, Population, StateTime, StuckState, TransitionCount

from machines import machine, ticket_text

LAMP = """
machine: lamp
version: 1
initial: "off"
states:
  "off": {on: {TOGGLE: "on"}}
  "on": {on: {TOGGLE: "off"}}
"""

NOW = 5000.0


def ticket(version: int = 1) -> statechart.Machine:
    return machine(ticket_text(version))


@pytest.fixture
def store(store_url: str, clock: VirtualClock) -> Iterator[Store]:
    """Five tickets and a lamp, driven from t=1000 to t=1400; metrics are read at t=5000.

    t1: ASSIGN@1100, COMMENT@1200 (emits), RESOLVE@1300, PASS@1400 -> {passed (final), writing}
    t2: ASSIGN@1100, PASS@1200 (unhandled)                         -> assigned since 1100
    t3: CLOSE@1200 (done), ASSIGN@1200 (rejected)                   -> closed, done
    t4: nothing                                                     -> open since 1000
    t5: ASSIGN@1150                                                 -> assigned since 1150
    lamp l1: TOGGLE@1100                                            -> on since 1100
    """
    with Store.open(store_url, clock=clock) as opened:
        opened.register(ticket(), statechart.loads(LAMP, "machines/lamp/v1.yaml"))
        for n in range(1, 6):
            opened.create("ticket", id=f"t{n}")
        opened.create("lamp", id="l1")
        clock.set(1100)
        opened.send("t1", "ASSIGN")
        opened.send("t2", "ASSIGN")
        opened.send("l1", "TOGGLE")
        clock.set(1150)
        opened.send("t5", "ASSIGN")
        clock.set(1200)
        opened.send("t1", "COMMENT", {"by": "ann"})
        assert opened.send("t2", "PASS").outcome == "unhandled"
        opened.send("t3", "CLOSE")
        with pytest.raises(statechart.InstanceDoneError):
            opened.send("t3", "ASSIGN")
        clock.set(1300)
        opened.send("t1", "RESOLVE")
        clock.set(1400)
        opened.send("t1", "PASS")
        clock.set(NOW)
        yield opened


def test_events_are_counted_by_outcome_without_creation_steps(store: Store) -> None:
    metrics = store.metrics(machine="ticket")
    assert metrics.events == EventCounts(applied=7, unhandled=1, rejected=1)
    assert metrics.events.total == 9
    assert metrics.illegal_rate == pytest.approx(2 / 9)
    assert metrics.events_per_second is None


def test_events_of_all_machines_without_a_machine_filter(store: Store) -> None:
    assert store.metrics().events == EventCounts(applied=8, unhandled=1, rejected=1)


def test_window_counts_only_recent_events_and_gives_a_rate(store: Store) -> None:
    metrics = store.metrics(machine="ticket", window=NOW - 1150)
    assert metrics.events == EventCounts(applied=5, unhandled=1, rejected=1)
    assert metrics.events_per_second == pytest.approx(7 / 3850)
    assert metrics.transitions == (
        TransitionCount("ticket", "assigned", "testing,writing", 1),
        TransitionCount("ticket", "open", "assigned", 1),
        TransitionCount("ticket", "open", "closed", 1),
        TransitionCount("ticket", "testing,writing", "passed,writing", 1),
    )


def test_transitions_count_only_applied_steps_that_changed_the_atomic_states(store: Store) -> None:
    assert store.metrics(machine="ticket").transitions == (
        TransitionCount("ticket", "open", "assigned", 3),
        TransitionCount("ticket", "assigned", "testing,writing", 1),
        TransitionCount("ticket", "open", "closed", 1),
        TransitionCount("ticket", "testing,writing", "passed,writing", 1),
    )


def test_time_in_state_covers_active_atomic_states_of_unfinished_instances(store: Store) -> None:
    assert store.metrics(machine="ticket").time_in_state == (
        StateTime("ticket", "assigned", 2, mean_seconds=3875.0, max_seconds=3900.0),
        StateTime("ticket", "open", 1, mean_seconds=4000.0, max_seconds=4000.0),
        StateTime("ticket", "passed", 1, mean_seconds=3600.0, max_seconds=3600.0),
        StateTime("ticket", "writing", 1, mean_seconds=3700.0, max_seconds=3700.0),
    )


def test_stuck_instances_are_in_a_non_final_state_for_at_least_the_threshold(store: Store) -> None:
    metrics = store.metrics(machine="ticket", stuck_after=3700.0)
    assert metrics.stuck == (
        StuckState("ticket", "assigned", 2, ("t2", "t5"), max_seconds=3900.0),
        StuckState("ticket", "open", 1, ("t4",), max_seconds=4000.0),
        StuckState("ticket", "writing", 1, ("t1",), max_seconds=3700.0),
    )
    assert metrics.stuck_instances == 4


def test_a_final_state_waiting_for_its_parallel_sibling_is_not_stuck(store: Store) -> None:
    metrics = store.metrics(machine="ticket", stuck_after=100.0)  # passed (final) was entered 3600s ago
    assert [(s.state, s.count) for s in metrics.stuck] == [("assigned", 2), ("open", 1), ("writing", 1)]


def test_stuck_threshold_leaves_out_recently_entered_states(store: Store) -> None:
    metrics = store.metrics(machine="ticket", stuck_after=3870.0)
    assert [(s.state, s.oldest) for s in metrics.stuck] == [("assigned", ("t2",)), ("open", ("t4",))]
    assert metrics.stuck_instances == 2


def test_stuck_names_only_the_oldest_few_ids(store: Store) -> None:
    assert store.metrics(machine="ticket", oldest=1).stuck[0] == StuckState(
        "ticket", "assigned", 2, ("t2",), max_seconds=3900.0)


def test_an_instance_stuck_in_two_parallel_states_counts_once(store: Store, clock: VirtualClock) -> None:
    store.send("t2", "RESOLVE")  # t2 -> {testing, writing} at t=5000
    clock.advance(7200)
    metrics = store.metrics(machine="ticket")
    assert [(s.state, s.oldest) for s in metrics.stuck] == [
        ("writing", ("t1", "t2")), ("assigned", ("t5",)), ("open", ("t4",)), ("testing", ("t2",))]
    assert metrics.stuck_instances == 4


def test_outbox_lag_and_unpublished_count(store: Store) -> None:
    metrics = store.metrics(machine="ticket")
    assert (metrics.outbox_lag, metrics.outbox_unpublished) == (3800.0, 1)
    assert store.metrics(machine="lamp").outbox_unpublished == 0
    store.outbox.mark_published([e.id for e in store.outbox.pending()])
    assert (store.metrics().outbox_lag, store.metrics().outbox_unpublished) == (0.0, 0)


def test_instances_are_counted_per_machine_and_version(store: Store) -> None:
    store.register(ticket(2))
    store.create("ticket", id="t6")
    store.create("ticket", id="t7", version=1)
    assert store.metrics().instances == (
        Population("lamp", 1, instances=1, done=0),
        Population("ticket", 1, instances=6, done=1),
        Population("ticket", 2, instances=1, done=0),
    )
    assert [p.active for p in store.metrics(machine="ticket").instances] == [5, 1]


def test_machine_filter_keeps_other_machines_out(store: Store) -> None:
    metrics = store.metrics(machine="lamp")
    assert metrics.events == EventCounts(applied=1)
    assert metrics.transitions == (TransitionCount("lamp", "off", "on", 1),)
    assert metrics.time_in_state == (StateTime("lamp", "on", 1, 3900.0, 3900.0),)
    assert metrics.instances == (Population("lamp", 1, 1, 0),)


def test_now_can_be_given(store: Store) -> None:
    metrics = store.metrics(machine="lamp", now=2100.0, stuck_after=1000.0)
    assert metrics.now == 2100.0
    assert metrics.time_in_state == (StateTime("lamp", "on", 1, 1000.0, 1000.0),)
    assert metrics.stuck == (StuckState("lamp", "on", 1, ("l1",), 1000.0),)


def test_empty_store_has_zero_metrics(store_url: str) -> None:
    with Store.open(store_url, clock=VirtualClock(10.0)) as empty:
        metrics = empty.metrics()
    assert metrics.to_dict() == {
        "now": 10.0, "machine": None, "window_seconds": None, "stuck_after_seconds": 3600.0, "instances": [],
        "events": {"applied": 0, "unhandled": 0, "rejected": 0, "total": 0, "illegal": 0, "illegal_rate": 0.0,
                   "per_second": None},
        "transitions": [], "time_in_state": [], "stuck": {"instances": 0, "states": []},
        "outbox": {"lag_seconds": 0.0, "unpublished": 0},
        "failures": {"parked": 0, "kinds": [{"kind": kind, "failing": 0, "parked": 0}
                                            for kind in ("timer", "outbox", "migration")]}}


def test_to_dict_is_plain_json(store: Store) -> None:
    document = store.metrics(machine="lamp", window=3900.0).to_dict()
    assert document == {
        "now": NOW, "machine": "lamp", "window_seconds": 3900.0, "stuck_after_seconds": 3600.0,
        "instances": [{"machine": "lamp", "version": 1, "instances": 1, "active": 1, "done": 0}],
        "events": {"applied": 1, "unhandled": 0, "rejected": 0, "total": 1, "illegal": 0, "illegal_rate": 0.0,
                   "per_second": 1 / 3900.0},
        "transitions": [{"machine": "lamp", "from": "off", "to": "on", "count": 1}],
        "time_in_state": [{"machine": "lamp", "state": "on", "count": 1, "mean_seconds": 3900.0,
                           "max_seconds": 3900.0}],
        "stuck": {"instances": 1, "states": [{"machine": "lamp", "state": "on", "count": 1, "oldest": ["l1"],
                                               "max_seconds": 3900.0}]},
        "outbox": {"lag_seconds": 0.0, "unpublished": 0},
        "failures": {"parked": 0, "kinds": [{"kind": kind, "failing": 0, "parked": 0}
                                            for kind in ("timer", "outbox", "migration")]}}


def test_window_must_be_positive(store: Store) -> None:
    with pytest.raises(ValueError, match="window must be a positive number of seconds"):
        store.metrics(window=0)
