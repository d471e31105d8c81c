"""The transactional outbox: commit order, marking, lag, and at-least-once relaying, on both backends."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from statechart import Store, VirtualClock
from statechart.store.outbox import Outbox, OutboxEvent

from machines import PINGER, open_store

@pytest.fixture
def store(store_url: str, clock: VirtualClock):  # type: ignore[no-untyped-def]
    with open_store(store_url, clock, PINGER) as opened:
        opened.create("pinger", id="a")
        opened.create("pinger", id="b")
        yield opened


def ping(store: Store, instance_id: str, n: int) -> None:
    store.send(instance_id, "PING", {"n": n})


def test_store_outbox_is_an_outbox_of_that_store(store: Store) -> None:
    assert isinstance(store.outbox, Outbox)
    assert store.outbox.store is store


def test_pending_lists_unpublished_events_in_commit_order(store: Store, clock: VirtualClock) -> None:
    ping(store, "a", 1)
    clock.advance(5)
    ping(store, "b", 2)
    store.send("a", "TWICE")
    events = store.outbox.pending()
    assert [(e.instance_id, e.event, e.data) for e in events] == [
        ("a", "pinged", {"n": 1}), ("b", "pinged", {"n": 2}), ("a", "first", None), ("a", "second", None)]
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert len({e.id for e in events}) == 4
    assert events[0] == OutboxEvent(events[0].id, "a", "pinger", "pinged", {"n": 1}, 1000.0, None)
    assert [e.created_at for e in events] == [1000.0, 1005.0, 1005.0, 1005.0]


def test_pending_pages_with_limit_and_after_id(store: Store) -> None:
    for n in range(5):
        ping(store, "a", n)
    first = store.outbox.pending(limit=2)
    assert [e.data["n"] for e in first] == [0, 1]
    rest = store.outbox.pending(limit=10, after_id=first[-1].id)
    assert [e.data["n"] for e in rest] == [2, 3, 4]


def test_mark_published_removes_events_from_pending(store: Store, clock: VirtualClock) -> None:
    for n in range(3):
        ping(store, "a", n)
    ids = [e.id for e in store.outbox.pending()]
    clock.advance(60)
    assert store.outbox.mark_published([ids[0], ids[2]]) == 2
    assert [e.id for e in store.outbox.pending()] == [ids[1]]
    assert [e.published_at for e in store.outbox.events(ids)] == [1060.0, None, 1060.0]


def test_mark_published_is_idempotent(store: Store, clock: VirtualClock) -> None:
    ping(store, "a", 1)
    (event,) = store.outbox.pending()
    assert store.outbox.mark_published([event.id]) == 1
    clock.advance(10)
    assert store.outbox.mark_published([event.id, event.id]) == 0
    assert store.outbox.events([event.id])[0].published_at == 1000.0
    assert store.outbox.mark_published([]) == 0


def test_mark_published_ignores_unknown_ids(store: Store) -> None:
    ping(store, "a", 1)
    (event,) = store.outbox.pending()
    assert store.outbox.mark_published([event.id + 1000]) == 0
    assert store.outbox.pending() == [event]


def test_count_by_published_state(store: Store) -> None:
    for n in range(3):
        ping(store, "a", n)
    store.outbox.mark_published([store.outbox.pending()[0].id])
    assert (store.outbox.count(), store.outbox.count(published=True), store.outbox.count(published=False)) == (3, 1, 2)


def test_lag_is_the_age_of_the_oldest_unpublished_event(store: Store, clock: VirtualClock) -> None:
    assert store.outbox.lag() == 0.0
    ping(store, "a", 1)
    clock.advance(30)
    ping(store, "b", 2)
    clock.advance(15)
    assert store.outbox.lag() == 45.0
    first, second = store.outbox.pending()
    store.outbox.mark_published([first.id])
    assert store.outbox.lag() == 15.0
    assert store.outbox.lag(now=1100.0) == 70.0
    store.outbox.mark_published([second.id])
    assert store.outbox.lag() == 0.0


def test_relay_hands_events_over_in_commit_order_and_marks_them(store: Store) -> None:
    for n in range(5):
        ping(store, "a" if n % 2 else "b", n)
    seen: list[int] = []
    delivered = store.outbox.relay(lambda event: seen.append(event.data["n"]), batch=2, poll_interval=0,
                                   max_idle_polls=1)
    assert delivered == 5
    assert seen == [0, 1, 2, 3, 4]
    assert store.outbox.count(published=False) == 0


def test_relay_marks_an_event_only_after_the_handler_returned(store: Store) -> None:
    ping(store, "a", 1)
    unpublished_while_handling: list[int] = []

    def handler(event: OutboxEvent) -> None:
        with Store.open(store.url) as other:
            unpublished_while_handling.append(other.outbox.count(published=False))

    store.outbox.relay(handler, poll_interval=0, max_idle_polls=1)
    assert unpublished_while_handling == [1]
    assert store.outbox.count(published=False) == 0


def test_relay_failure_delivers_the_event_again_and_marks_nothing_after_it(store: Store) -> None:
    for n in range(4):
        ping(store, "a", n)
    seen: list[int] = []
    failed: list[int] = []

    def handler(event: OutboxEvent) -> None:
        seen.append(event.data["n"])
        if event.data["n"] == 1 and not failed:
            failed.append(1)
            raise ConnectionError("broker down")

    with pytest.raises(ConnectionError, match="broker down"):
        store.outbox.relay(handler, batch=10, poll_interval=0, max_idle_polls=1)
    assert seen == [0, 1]
    assert [e.data["n"] for e in store.outbox.pending()] == [1, 2, 3]
    assert store.outbox.relay(handler, batch=10, poll_interval=0, max_idle_polls=1) == 3
    assert seen == [0, 1, 1, 2, 3]
    assert store.outbox.count(published=False) == 0


def test_relay_on_error_retry_logs_and_delivers_the_event_again(store: Store,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    for n in range(3):
        ping(store, "a", n)
    seen: list[int] = []

    def handler(event: OutboxEvent) -> None:
        seen.append(event.data["n"])
        if seen == [0, 1]:
            raise ConnectionError("broker down")

    with caplog.at_level(logging.WARNING, logger="statechart.outbox"):
        delivered = store.outbox.relay(handler, poll_interval=0, max_idle_polls=1, on_error="retry")
    assert delivered == 3
    assert seen == [0, 1, 1, 2]
    assert store.outbox.count(published=False) == 0
    assert [r.getMessage() for r in caplog.records] == [
        "outbox relay: the handler raised ConnectionError: broker down; retrying in 0s"]


def test_relay_stops_when_the_stop_event_is_set(store: Store) -> None:
    for n in range(3):
        ping(store, "a", n)
    stop = threading.Event()
    seen: list[int] = []

    def handler(event: OutboxEvent) -> None:
        seen.append(event.data["n"])
        stop.set()

    assert store.outbox.relay(handler, batch=1, poll_interval=0, stop=stop) == 1
    assert seen == [0]
    assert [e.data["n"] for e in store.outbox.pending()] == [1, 2]


def test_relay_with_stop_already_set_hands_nothing_over(store: Store) -> None:
    ping(store, "a", 1)
    stop = threading.Event()
    stop.set()
    assert store.outbox.relay(lambda event: None, stop=stop) == 0
    assert store.outbox.count(published=False) == 1


def test_relay_rejects_an_unknown_error_policy(store: Store) -> None:
    with pytest.raises(ValueError, match="on_error must be 'stop', 'retry' or 'quarantine', not 'ignore'"):
        store.outbox.relay(lambda event: None, on_error="ignore")


def test_two_relays_never_hold_the_same_event_at_once_on_postgresql(postgres_url: str) -> None:
    clock = VirtualClock(1000.0)
    with open_store(postgres_url, clock, PINGER) as store:
        store.create("pinger", id="a")
        for n in range(60):
            ping(store, "a", n)
        ids = [e.id for e in store.outbox.pending(limit=100)]
    lock = threading.Lock()
    in_flight: set[int] = set()
    overlaps: list[int] = []
    deliveries: list[tuple[str, int]] = []
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(name: str) -> None:
        def handler(event: OutboxEvent) -> None:
            with lock:
                if event.id in in_flight:
                    overlaps.append(event.id)
                in_flight.add(event.id)
                deliveries.append((name, event.id))
            time.sleep(0.001)  # widen the window in which the other relay could take the same event
            with lock:
                in_flight.discard(event.id)

        try:
            with open_store(postgres_url, clock, PINGER) as own:
                start.wait()
                own.outbox.relay(handler, batch=3, poll_interval=0.01, max_idle_polls=3)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(name,)) for name in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert overlaps == []
    assert sorted(event_id for _, event_id in deliveries) == ids
    with open_store(postgres_url, clock, PINGER) as store:
        assert store.outbox.count(published=False) == 0
