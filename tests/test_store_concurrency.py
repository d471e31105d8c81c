"""Concurrent writers: several processes send to the same instances at once and no event is lost
or applied twice; a conflict that keeps happening surfaces as ConcurrencyError with nothing
written. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import statechart
from statechart import ConcurrencyError, Store, VirtualClock
from statechart.store.backends import RetryableError, open_backend

from machines import rows

MACHINE = """\
machine: counter
version: 1
initial: counting
data: {counter: 0}
states:
  counting:
    on:
      INC:
        actions:
          - {assign: {counter: "counter + 1"}}
          - {emit: {event: counted, data: {by: "event.data['by']", k: "event.data['k']"}}}
"""

# A child: opens its own store, says it is ready, waits for the go (so that all children start
# together), then sends its events round robin over the instances and reports what it sent.
CHILD = """\
import json
import sys

import statechart

url, worker, events, machine_text = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ids = sys.argv[5:]
store = statechart.Store.open(url)
store.register(statechart.loads(machine_text, "machines/counter/v1.yaml"))
print("ready", flush=True)
sys.stdin.readline()
sent = {}
for k in range(events):
    target = ids[(worker + k) % len(ids)]
    receipt = store.send(target, "INC", {"by": worker, "k": k}, actor=f"worker-{worker}")
    assert receipt.outcome == "applied", receipt
    sent[target] = sent.get(target, 0) + 1
print(json.dumps(sent), flush=True)
"""

WORKERS = 4
EVENTS = 60
INSTANCES = ["c1", "c2", "c3"]

CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(Path(statechart.__file__).resolve().parents[1]), *filter(None, [os.environ.get("PYTHONPATH")])])}


def counter_machine() -> statechart.Machine:
    return statechart.loads(MACHINE, "machines/counter/v1.yaml")


def everything(store: Store) -> dict[str, list[tuple]]:
    tables = {"statechart_instances": "id", "statechart_instance_states": "instance_id, state",
              "statechart_audit": "id", "statechart_outbox": "id", "statechart_timers": "instance_id, send_id, seq",
              "statechart_idempotency": "instance_id, key"}
    return {table: rows(store, f"SELECT * FROM {table} ORDER BY {order}") for table, order in tables.items()}


def test_processes_sending_to_the_same_instances_lose_no_event(store_url: str, tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    with Store.open(store_url) as store:
        store.register(counter_machine())
        store.create_many("counter", [{}] * len(INSTANCES), ids=INSTANCES)
        children = [subprocess.Popen([sys.executable, str(script), store_url, str(worker), str(EVENTS), MACHINE,
                                      *INSTANCES], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=CHILD_ENV)
                    for worker in range(WORKERS)]
        reports: list[dict[str, int]] = []
        try:
            for child in children:
                assert child.stdout is not None
                line = child.stdout.readline()
                assert line == "ready\n", f"child did not start: {line!r} {child.stderr.read()}"
            for child in children:  # all at once
                assert child.stdin is not None
                child.stdin.write("go\n")
                child.stdin.flush()
            for child in children:
                out, err = child.communicate(timeout=120)
                assert child.returncode == 0, err
                reports.append(json.loads(out))
        finally:
            for child in children:
                if child.poll() is None:
                    child.kill()
                    child.wait()

        sent: Counter[str] = Counter()
        for report in reports:
            sent.update(report)
        assert sum(sent.values()) == WORKERS * EVENTS
        for instance_id in INSTANCES:
            total = sent[instance_id]
            stored = store.load(instance_id)
            assert (stored.data["counter"], stored.revision) == (total, 1 + total), instance_id
            events = store.audit(instance_id)[1:]
            assert len(events) == total, instance_id
            assert [row["revision"] for row in events] == list(range(2, total + 2)), instance_id
            assert {row["outcome"] for row in events} == {"applied"}, instance_id
            # every (worker, k) pair arrived exactly once, and each worker's events in its order
            delivered = [(row["data"]["by"], row["data"]["k"]) for row in events]
            assert len(set(delivered)) == total, instance_id
            for worker in range(WORKERS):
                mine = [k for by, k in delivered if by == worker]
                assert mine == sorted(mine) and len(mine) == reports[worker].get(instance_id, 0), instance_id
            published = [json.loads(data) for (data,) in rows(
                store, "SELECT data FROM statechart_outbox WHERE instance_id = ? ORDER BY id", (instance_id,))]
            assert [(d["by"], d["k"]) for d in published] == delivered, instance_id


def _competing_writer(store: Store, instance_id: str, calls: list[int]) -> None:
    """Make the instance's revision move between every read and write of ``store.send``: the
    machine lookup runs after the instance row is read and before the new one is written."""
    lookup = store.machine

    def machine_with_competitor(name: str, version: int | None = None) -> statechart.Machine:
        calls.append(1)
        store.backend.execute("UPDATE statechart_instances SET revision = revision + 1 WHERE id = ?", (instance_id,))
        return lookup(name, version)

    store.machine = machine_with_competitor  # type: ignore[method-assign]


def test_a_conflict_that_keeps_happening_raises_concurrency_error_and_writes_nothing(store_url: str) -> None:
    with Store.open(store_url, clock=VirtualClock(), retries=3) as store:
        store.register(counter_machine())
        store.create("counter", id="c1")
        before = everything(store)
        calls: list[int] = []
        _competing_writer(store, "c1", calls)
        with pytest.raises(ConcurrencyError) as raised:
            store.send("c1", "INC", {"by": 0, "k": 0}, idempotency_key="once")
        assert (raised.value.instance_id, raised.value.attempts) == ("c1", 3)
        assert len(calls) == 3  # one attempt per retry, each lost
        assert everything(store) == before


def test_with_one_retry_a_single_lost_race_raises_concurrency_error(store_url: str) -> None:
    with Store.open(store_url, clock=VirtualClock(), retries=1) as store:
        store.register(counter_machine())
        store.create("counter", id="c1")
        before = everything(store)
        calls: list[int] = []
        _competing_writer(store, "c1", calls)
        with pytest.raises(ConcurrencyError) as raised:
            store.send("c1", "INC", {"by": 0, "k": 0})
        assert (raised.value.attempts, len(calls)) == (1, 1)
        assert everything(store) == before


def _interleave_once(store: Store, competitor: Store, instance_id: str) -> list[Any]:
    """The first time ``store`` has read the instance, ``competitor`` commits an event to it."""
    lookup = store.machine
    receipts: list[Any] = []

    def machine_after_competitor(name: str, version: int | None = None) -> statechart.Machine:
        if not receipts:
            receipts.append(competitor.send(instance_id, "INC", {"by": 9, "k": 0}, actor="competitor"))
        return lookup(name, version)

    store.machine = machine_after_competitor  # type: ignore[method-assign]
    return receipts


def test_postgres_a_real_competing_writer_makes_a_single_attempt_fail_without_writing(postgres_url: str) -> None:
    with Store.open(postgres_url, retries=1) as store, Store.open(postgres_url) as competitor:
        store.register(counter_machine())
        competitor.register(counter_machine())
        store.create("counter", id="c1")
        receipts = _interleave_once(store, competitor, "c1")
        with pytest.raises(ConcurrencyError):
            store.send("c1", "INC", {"by": 0, "k": 0}, actor="loser")
        assert [r.revision for r in receipts] == [2]
        stored = store.load("c1")
        assert (stored.data["counter"], stored.revision) == (1, 2)
        assert [(r["actor"], r["revision"]) for r in store.audit("c1")] == [(None, 1), ("competitor", 2)]
        assert rows(store, "SELECT COUNT(*) FROM statechart_outbox") == [(1,)]


def test_postgres_a_lost_race_is_retried_on_the_competitors_result(postgres_url: str) -> None:
    with Store.open(postgres_url, retries=2) as store, Store.open(postgres_url) as competitor:
        store.register(counter_machine())
        competitor.register(counter_machine())
        store.create("counter", id="c1")
        _interleave_once(store, competitor, "c1")
        receipt = store.send("c1", "INC", {"by": 0, "k": 0}, actor="second")
        assert (receipt.revision, receipt.outcome) == (3, "applied")
        stored = store.load("c1")
        assert (stored.data["counter"], stored.revision) == (2, 3)
        assert [(r["actor"], r["revision"]) for r in store.audit("c1")] == [
            (None, 1), ("competitor", 2), ("second", 3)]


def test_a_send_aborted_by_the_database_as_a_deadlock_is_retried(store_url: str) -> None:
    with Store.open(store_url, clock=VirtualClock()) as store:
        store.register(counter_machine())
        store.create("counter", id="c1")
        execute = store.backend.execute
        aborted: list[str] = []

        def execute_with_one_deadlock(sql: str, params: Any = ()) -> Any:
            if sql.startswith("UPDATE statechart_instances") and not aborted:
                aborted.append(sql)
                raise RetryableError("deadlock detected")
            return execute(sql, params)

        store.backend.execute = execute_with_one_deadlock  # type: ignore[method-assign]
        receipt = store.send("c1", "INC", {"by": 0, "k": 0})
        assert (len(aborted), receipt.revision) == (1, 2)
        assert [(r["event"], r["revision"]) for r in store.audit("c1")] == [("(start)", 1), ("INC", 2)]
        assert rows(store, "SELECT COUNT(*) FROM statechart_outbox") == [(1,)]


def test_postgres_deadlocks_surface_as_retryable_errors(postgres_url: str) -> None:
    first, second = open_backend(postgres_url), open_backend(postgres_url)
    try:
        first.execute("CREATE TABLE pair (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        first.execute("INSERT INTO pair (id, n) VALUES (1, 0), (2, 0)")
        holding = threading.Barrier(2)
        outcomes: dict[str, BaseException | None] = {}

        def cross(name: str, backend: Any, mine: int, theirs: int) -> None:
            try:
                with backend.transaction():
                    backend.execute("UPDATE pair SET n = n + 1 WHERE id = ?", (mine,))
                    holding.wait(timeout=10)
                    backend.execute("UPDATE pair SET n = n + 1 WHERE id = ?", (theirs,))
                outcomes[name] = None
            except BaseException as error:  # noqa: BLE001 - inspected below
                outcomes[name] = error

        threads = [threading.Thread(target=cross, args=("first", first, 1, 2)),
                   threading.Thread(target=cross, args=("second", second, 2, 1))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(type(error).__name__ for error in outcomes.values()) == ["NoneType",
                                                                                "SerializationConflictError"]
        deadlock = next(error for error in outcomes.values() if error is not None)
        assert isinstance(deadlock, RetryableError) and deadlock.retryable and deadlock.code == "40P01"
    finally:
        first.close()
        second.close()


def test_postgres_a_timer_worker_skips_an_instance_a_sender_holds_instead_of_waiting(postgres_url: str) -> None:
    clock = VirtualClock()
    ticking = statechart.loads(TICKING, "machines/ticking/v1.yaml")
    with Store.open(postgres_url, clock=clock) as sender, Store.open(postgres_url, clock=clock) as worker:
        sender.register(ticking)
        worker.register(ticking)
        sender.create("ticking", id="held")
        clock.advance(1)
        sender.create("ticking", id="free")  # its timer falls due a second later than held's
        clock.advance(10)
        fired: list[list[str]] = []
        with sender.backend.transaction():  # a sender in the middle of its step on "held"
            sender.backend.execute("SELECT id FROM statechart_instances WHERE id = ? FOR UPDATE", ("held",))
            thread = threading.Thread(target=lambda: fired.append([r.instance_id for r in worker.fire_due()]))
            thread.start()
            thread.join(timeout=20)
            waiting = thread.is_alive()
        thread.join()
        assert not waiting, "the worker waited for the sender's lock"
        assert fired == [["free"]]
        assert [r.instance_id for r in worker.fire_due()] == ["held"]


TICKING = """\
machine: ticking
version: 1
initial: waiting
states:
  waiting: {after: {5s: rang}}
  rang: {}
"""


def test_postgres_a_key_committed_by_another_writer_after_our_lookup_is_replayed_not_reapplied(
        postgres_url: str) -> None:
    with Store.open(postgres_url) as store, Store.open(postgres_url) as competitor:
        store.register(counter_machine())
        competitor.register(counter_machine())
        store.create("counter", id="c1")
        lookup = store._replay
        theirs: list[Any] = []

        def replay_then_competitor(instance_id: str, key: str, request_hash: str) -> Any:
            found = lookup(instance_id, key, request_hash)
            if not theirs:  # the same request, committed by another process just after we looked
                theirs.append(competitor.send("c1", "INC", {"by": 1, "k": 1}, idempotency_key="req"))
            return found

        store._replay = replay_then_competitor  # type: ignore[method-assign]
        receipt = store.send("c1", "INC", {"by": 1, "k": 1}, idempotency_key="req")
        assert receipt.replayed and receipt.revision == theirs[0].revision == 2
        stored = store.load("c1")
        assert (stored.data["counter"], stored.revision) == (1, 2)
        assert len(store.audit("c1")) == 2
