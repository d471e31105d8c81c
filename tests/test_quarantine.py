"""One bad instance never stops the others: poison timers, corrupt rows and failing publishers are
recorded, retried with backoff, parked, listed, counted and retried by hand, on both backends."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statechart import CorruptInstanceError, PayloadError, Store, VirtualClock
from statechart.cli import main
from statechart.store.outbox import OutboxEvent
from statechart.store.quarantine import MAX_BACKOFF, backoff

from machines import open_store, rows

MULT = """\
machine: mult
version: 1
initial: idle
data: {n: 1}
states:
  idle:
    on:
      SET: {target: waiting, actions: [{assign: {n: "event.data['n']"}}]}
      PING: {actions: [{emit: {event: pinged, data: {n: "event.data['n']"}}}]}
  waiting:
    after:
      1s:
        - {target: spinning, cond: "n > 1000"}
        - {target: done, actions: [{assign: {n: "n * 10"}}]}
  spinning: {always: spinning_too}   # a step that never settles: the poison of a huge n
  spinning_too: {always: spinning}
  done: {}
"""


def poisoned(store: Store, clock: VirtualClock) -> None:
    """'bad' loops without settling when its timer fires (it is first in due order); 'good1', 'good2' do not."""
    for instance_id, n in (("bad", 1e308), ("good1", 2), ("good2", 3)):
        store.create("mult", id=instance_id)
        store.send(instance_id, "SET", {"n": n})
        clock.advance(0.001)
    clock.advance(2)


def test_backoff_doubles_from_the_base_and_is_capped() -> None:
    assert [backoff(attempt, 30) for attempt in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff(500, 30) == MAX_BACKOFF


def test_a_poison_timer_is_retried_with_backoff_then_parked_while_the_others_fire(store_url: str,
                                                                                 clock: VirtualClock) -> None:
    with open_store(store_url, clock, MULT, max_attempts=3, retry_backoff=10) as store:
        poisoned(store, clock)
        receipts = store.fire_due()
        assert [(r.instance_id, r.outcome) for r in receipts] == [
            ("bad", "failed"), ("good1", "applied"), ("good2", "applied")]
        assert store.load("good1").data == {"n": 20} and store.load("good2").configuration == {"done"}
        assert store.load("bad").configuration == {"waiting"} and store.load("bad").revision == 2
        [failure] = store.failures()
        assert (failure.kind, failure.instance_id, failure.attempts, failure.parked) == ("timer", "bad", 1, False)
        assert failure.next_attempt_at == clock.now() + 10
        assert "did not settle after 1000 microsteps" in failure.error
        audit = store.audit("bad")[-1]
        assert (audit["outcome"], audit["revision"], audit["actor"]) == ("failed", 2, "timer")
        assert audit["reason"].startswith("timer failed (attempt 1 of 3; next attempt at")
        assert store.fire_due() == []  # backing off: not retried before its next attempt
        clock.advance(10)
        assert [r.outcome for r in store.fire_due()] == ["failed"]
        clock.advance(19)
        assert store.fire_due() == []  # the second wait is twice as long
        clock.advance(1)
        assert [r.outcome for r in store.fire_due()] == ["failed"]
        [failure] = store.failures()
        assert (failure.attempts, failure.parked) == (3, True)
        assert "parked: retry it with `statechart instances retry bad`" in store.audit("bad")[-1]["reason"]
        clock.advance(MAX_BACKOFF * 10)
        assert store.fire_due() == []  # parked: nothing retries it
        assert [i.id for i in store.list(failed=True)] == ["bad"]
        assert store.failures(parked=True) == [failure] and store.failures(parked=False) == []
        metrics = store.metrics()
        assert metrics.parked == 1
        assert [(f.kind, f.failing, f.parked) for f in metrics.failures] == [
            ("timer", 0, 1), ("outbox", 0, 0), ("migration", 0, 0)]
        assert rows(store, "SELECT COUNT(*) FROM statechart_audit WHERE instance_id = 'bad' AND outcome = 'failed'"
                    ) == [(3,)]


def test_retry_after_a_repair_fires_the_parked_timer_and_forgets_the_failure(store_url: str,
                                                                             clock: VirtualClock) -> None:
    with open_store(store_url, clock, MULT, max_attempts=1) as store:
        poisoned(store, clock)
        store.fire_due()
        assert store.failures(parked=True)[0].instance_id == "bad"
        store.backend.execute("UPDATE statechart_instances SET data = ? WHERE id = 'bad'", ('{"n": 5}',))
        assert store.retry("bad") == 1
        assert store.retry("bad") == 0
        assert [(r.instance_id, r.outcome) for r in store.fire_due()] == [("bad", "applied")]
        assert store.load("bad").data == {"n": 50}
        assert store.failures() == []


def test_a_timer_that_succeeds_after_a_failure_clears_it(store_url: str, clock: VirtualClock) -> None:
    with open_store(store_url, clock, MULT, retry_backoff=5) as store:
        poisoned(store, clock)
        store.fire_due()
        store.backend.execute("UPDATE statechart_instances SET data = ? WHERE id = 'bad'", ('{"n": 5}',))
        clock.advance(5)
        assert [r.outcome for r in store.fire_due()] == ["applied"]
        assert store.failures() == []


def test_a_corrupt_row_is_reported_by_id_and_never_stops_a_listing_a_count_or_the_worker(
        store_url: str, clock: VirtualClock) -> None:
    with open_store(store_url, clock, MULT, max_attempts=2, retry_backoff=0) as store:
        for instance_id in ("a", "b", "c"):
            store.create("mult", id=instance_id)
            store.send(instance_id, "SET", {"n": 1})
        store.backend.execute("UPDATE statechart_instances SET data = '{not json' WHERE id = 'b'")
        corrupt: list[CorruptInstanceError] = []
        assert [i.id for i in store.list(corrupt=corrupt)] == ["a", "c"]
        assert [e.instance_id for e in corrupt] == ["b"]
        assert "stored instance 'b' cannot be decoded: the stored row is malformed" in str(corrupt[0])
        assert [i.id for i in store.list()] == ["a", "c"]  # without a list to fill: logged, left out
        assert store.count() == 3 and store.count("mult", state="waiting") == 3
        with pytest.raises(CorruptInstanceError, match="'b' cannot be decoded"):
            store.load("b")
        clock.advance(2)
        receipts = store.fire_due()
        assert sorted((r.instance_id, r.outcome) for r in receipts) == [
            ("a", "applied"), ("b", "failed"), ("b", "failed"), ("c", "applied")]
        [failure] = store.failures()
        assert (failure.instance_id, failure.parked) == ("b", True)
        assert "CorruptInstanceError" not in failure.error and "cannot be decoded" in failure.error
        assert store.audit("b")[-1]["outcome"] == "failed"
        assert store.metrics().instances[0].instances == 3
        store.delete("b")  # the way out for a row nobody can repair
        assert store.failures() == [] and [i.id for i in store.list()] == ["a", "c"]


def test_a_corrupt_row_with_a_wrong_shape_is_reported_too(store_url: str, clock: VirtualClock) -> None:
    with open_store(store_url, clock, MULT) as store:
        store.create("mult", id="a")
        store.backend.execute("UPDATE statechart_instances SET pending = '[[1]]', history = '[]' WHERE id = 'a'")
        with pytest.raises(CorruptInstanceError, match="'a' cannot be decoded"):
            store.load("a")


def test_values_no_database_can_store_are_refused_as_payload_errors(store_url: str, clock: VirtualClock) -> None:
    deep: object = 1
    for _ in range(10_000):
        deep = [deep]
    with open_store(store_url, clock, MULT) as store:
        store.create("mult", id="a")
        for value in (deep, "\ud800", 10 ** 5000, float("inf")):
            with pytest.raises(PayloadError):
                store.send("a", "SET", {"n": value})
        assert store.load("a").revision == 1


# -- the CLI -------------------------------------------------------------------------------------------------
@pytest.fixture
def machines(tmp_path: Path) -> Path:
    folder = tmp_path / "machines" / "mult"
    folder.mkdir(parents=True)
    (folder / "v1.yaml").write_text(MULT)
    return folder.parent


def test_the_worker_cli_parks_a_poison_timer_exits_0_and_lists_it(store_url: str, machines: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with open_store(store_url, VirtualClock(time.time() - 60), MULT) as store:
        for instance_id, n in (("bad", 1e308), ("good", 2)):
            store.create("mult", id=instance_id)
            store.send(instance_id, "SET", {"n": n})
    options = ["--store", store_url, "--machines", str(machines)]

    def run(*argv: str) -> tuple[int, str, str]:
        code = main([*argv, *options])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, out, err = run("worker", "--once", "--max-attempts", "2", "--retry-backoff", "0s")
    assert code == 0
    assert "Traceback" not in out + err
    assert out == "fired after.0.waiting on good: applied, revision 3, now in done\n"
    assert err.count("failed after.0.waiting on bad: recorded for a retry") == 2
    assert err.endswith("1 timer(s) fired, 2 failed (quarantined)\n")
    assert run("worker", "--once") == (0, "", "0 timer(s) fired\n")  # parked: not tried again
    code, out, err = run("instances", "list", "--failed", "--json")
    [failure] = json.loads(out)
    assert (failure["instance_id"], failure["kind"], failure["attempts"], failure["parked"]) == (
        "bad", "timer", 2, True)
    code, out, err = run("instances", "list", "--failed")
    assert code == 0 and "bad" in out and "parked" in out and "statechart instances retry ID" in err
    metrics = json.loads(run("metrics", "--json")[1])
    assert metrics["failures"]["parked"] == 1
    assert "failures (quarantined work): 1 parked" in run("metrics")[1]
    assert run("instances", "retry", "bad") == (
        0, "bad: 1 failure(s) cleared; the work is tried again at the next round\n", "")
    code, _, err = run("instances", "retry", "bad")
    assert code == 1 and "has no recorded failure" in err and "Traceback" not in err
    code, _, err = run("worker", "--once", "--max-attempts", "1")
    assert code == 0 and "failed after.0.waiting on bad" in err


def test_instances_list_cli_reports_a_corrupt_row_on_stderr_and_lists_the_rest(
        store_url: str, machines: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with open_store(store_url, VirtualClock(time.time()), MULT) as store:
        for instance_id in ("a", "b", "c"):
            store.create("mult", id=instance_id)
        store.backend.execute("UPDATE statechart_instances SET configuration = 'oops' WHERE id = 'b'")
    code = main(["instances", "list", "--json", "--store", store_url, "--machines", str(machines)])
    captured = capsys.readouterr()
    assert code == 0
    assert [i["id"] for i in json.loads(captured.out)] == ["a", "c"]
    assert "error: stored instance 'b' cannot be decoded" in captured.err
    assert "Traceback" not in captured.err


# -- relays --------------------------------------------------------------------------------------------------
def test_two_relays_one_of_them_slow_deliver_each_instances_events_in_commit_order(store_url: str) -> None:
    clock = VirtualClock(1000.0)
    instances, per_instance = 6, 12
    with open_store(store_url, clock, MULT) as store:
        for i in range(instances):
            store.create("mult", id=f"i{i}")
        for n in range(per_instance):  # interleaved: i0#0, i1#0, ..., i0#1, ...
            for i in range(instances):
                store.send(f"i{i}", "PING", {"n": n})
    arrived: dict[str, list[int]] = defaultdict(list)
    by_relay: dict[str, int] = defaultdict(int)
    lock = threading.Lock()
    slow_holds_a_batch = threading.Event()
    errors: list[BaseException] = []

    def run(name: str, delay: float) -> None:
        def publish(event: OutboxEvent) -> None:
            slow_holds_a_batch.set() if delay else None
            time.sleep(delay)
            with lock:
                arrived[event.instance_id].append(event.data["n"])
                by_relay[name] += 1

        try:
            with open_store(store_url, clock, MULT) as own:
                if not delay:  # the fast relay starts while the slow one is inside its first batch
                    assert slow_holds_a_batch.wait(10)
                own.outbox.relay(publish, batch=4, poll_interval=0.005, max_idle_polls=20)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=("slow", 0.02)), threading.Thread(target=run, args=("fast", 0))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert dict(arrived) == {f"i{i}": list(range(per_instance)) for i in range(instances)}
    assert by_relay["slow"] > 0 and by_relay["fast"] > 0, dict(by_relay)  # both took part
    with open_store(store_url, clock, MULT) as store:
        assert store.outbox.count(published=False) == 0
        assert rows(store, "SELECT COUNT(*) FROM statechart_outbox_claims") == [(0,)]


def test_a_relay_in_quarantine_mode_parks_a_failing_instance_keeps_its_order_and_serves_the_others(
        store_url: str, clock: VirtualClock) -> None:
    with open_store(store_url, clock, MULT, max_attempts=2, retry_backoff=10) as store:
        for instance_id in ("a", "b"):
            store.create("mult", id=instance_id)
        for n in range(3):
            store.send("a", "PING", {"n": n})
            store.send("b", "PING", {"n": n})
        seen: list[tuple[str, int]] = []
        broken = {"a"}

        def publish(event: OutboxEvent) -> None:
            if event.instance_id in broken:
                raise ConnectionError(f"broker refuses {event.instance_id}")
            seen.append((event.instance_id, event.data["n"]))

        def relay() -> int:
            return store.outbox.relay(publish, poll_interval=0, max_idle_polls=1, on_error="quarantine")

        assert relay() == 3
        assert seen == [("b", 0), ("b", 1), ("b", 2)]
        [failure] = store.failures()
        assert (failure.kind, failure.instance_id, failure.attempts, failure.parked) == ("outbox", "a", 1, False)
        assert failure.error == "ConnectionError: broker refuses a"
        assert store.audit("a")[-1]["outcome"] == "failed" and store.audit("a")[-1]["event"] == "(publish pinged)"
        assert relay() == 0  # backing off
        clock.advance(10)
        assert relay() == 0
        assert store.failures()[0].parked
        assert store.outbox.count(published=False) == 3
        broken.clear()
        clock.advance(MAX_BACKOFF)
        assert relay() == 0  # parked until retried
        store.retry("a")
        assert relay() == 3
        assert seen[3:] == [("a", 0), ("a", 1), ("a", 2)]
        assert store.failures() == []


def test_a_relay_whose_claim_expired_is_skipped_no_more(store_url: str, clock: VirtualClock) -> None:
    """A relay that died left its claim: the instance's events wait out the lease, then flow."""
    with open_store(store_url, clock, MULT) as store:
        store.create("mult", id="a")
        store.send("a", "PING", {"n": 1})
        store.backend.execute("INSERT INTO statechart_outbox_claims (instance_id, token, expires_at) "
                              "VALUES ('a', 'dead-relay', ?)", (clock.now() + 60,))
        seen: list[int] = []
        assert store.outbox.relay(lambda e: seen.append(e.data["n"]), poll_interval=0, max_idle_polls=1) == 0
        clock.advance(60)
        assert store.outbox.relay(lambda e: seen.append(e.data["n"]), poll_interval=0, max_idle_polls=1) == 1
        assert seen == [1]


# -- schema ----------------------------------------------------------------------------------------------------
def test_a_store_written_by_schema_version_2_is_upgraded_in_place(store_url: str) -> None:
    from statechart.store.backends import open_backend
    from statechart.store.schema import _MIGRATION_TABLES, _TABLES, SCHEMA_VERSION, _statements

    backend = open_backend(store_url)
    with backend.transaction():
        backend.execute("CREATE TABLE statechart_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        for statement in _statements(_TABLES, backend.dialect) + _statements(_MIGRATION_TABLES, backend.dialect):
            backend.execute(statement)
        backend.execute("INSERT INTO statechart_meta (key, value) VALUES ('schema_version', '2')")
        backend.execute("INSERT INTO statechart_outbox (instance_id, machine, event, data, created_at) "
                        "VALUES ('i1', 'mult', 'kept', 'null', 1.0)")
    backend.close()
    with open_store(store_url, VirtualClock(5.0), MULT) as store:
        assert store.schema_version() == SCHEMA_VERSION == 4
        assert rows(store, "SELECT COUNT(*) FROM statechart_failures") == [(0,)]
        seen: list[str] = []
        assert store.outbox.relay(lambda e: seen.append(e.event), poll_interval=0, max_idle_polls=1) == 1
        assert seen == ["kept"]


def test_a_parked_instance_with_a_long_backlog_does_not_starve_the_instances_behind_it(
        store_url: str, clock: VirtualClock) -> None:
    with open_store(store_url, clock, MULT, max_attempts=1) as store:
        for instance_id in ("a", "b"):
            store.create("mult", id=instance_id)
        for n in range(30):  # far more than a relay looks at in one round
            store.send("a", "PING", {"n": n})
        store.send("b", "PING", {"n": 0})
        seen: list[tuple[str, int]] = []

        def publish(event: OutboxEvent) -> None:
            if event.instance_id == "a":
                raise ConnectionError("no route for a")
            seen.append((event.instance_id, event.data["n"]))

        store.outbox.relay(publish, batch=2, poll_interval=0, max_idle_polls=2, on_error="quarantine")
        assert store.failures(parked=True)[0].instance_id == "a"
        assert seen == [("b", 0)]
        assert store.outbox.count(published=False) == 30


@given(attempts=st.lists(st.integers(min_value=1, max_value=10_000), min_size=2, max_size=20),
       base=st.floats(min_value=0, max_value=10_000, allow_nan=False))
def test_backoff_never_shrinks_with_more_attempts_and_never_exceeds_the_cap(attempts: list[int],
                                                                            base: float) -> None:
    waits = [backoff(attempt, base) for attempt in sorted(attempts)]
    assert waits == sorted(waits)
    assert all(0 <= wait <= MAX_BACKOFF for wait in waits)


def test_workers_sharing_a_store_fire_every_healthy_timer_once_and_park_the_poison_one(store_url: str) -> None:
    clock = VirtualClock(1000.0)
    count = 40
    with open_store(store_url, clock, MULT) as store:
        store.create_many("mult", [{}] * count, ids=[f"h{n:02}" for n in range(count)])
        for n in range(count):
            store.send(f"h{n:02}", "SET", {"n": n})
        store.create("mult", id="bad")
        store.send("bad", "SET", {"n": 1e308})
    clock.advance(2)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with open_store(store_url, clock, MULT, max_attempts=3, retry_backoff=0) as mine:
                mine.run_worker(poll_interval=0.01, batch=10, max_idle_polls=3)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(2 if store_url.startswith("postgresql") else 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with open_store(store_url, clock, MULT) as check:
        fired = rows(check, "SELECT instance_id, COUNT(*) FROM statechart_audit WHERE outcome = 'applied' "
                            "AND event = 'after.0.waiting' GROUP BY instance_id")
        assert sorted(fired) == [(f"h{n:02}", 1) for n in range(count)]
        assert {i.id: i.data["n"] for i in check.list(limit=100) if i.id != "bad"} == {
            f"h{n:02}": n * 10 for n in range(count)}
        [failure] = check.failures()
        assert (failure.instance_id, failure.parked) == ("bad", True)
        assert rows(check, "SELECT COUNT(*) FROM statechart_timers") == [(1,)]  # the parked one waits


def test_a_relay_forgets_an_instances_failure_once_its_events_go_through(store_url: str,
                                                                         clock: VirtualClock) -> None:
    with open_store(store_url, clock, MULT, retry_backoff=10) as store:
        store.create("mult", id="a")
        store.send("a", "PING", {"n": 0})
        attempts: list[int] = []

        def flaky(event: OutboxEvent) -> None:
            attempts.append(event.id)
            if len(attempts) == 1:
                raise TimeoutError("broker slow")

        relay = lambda: store.outbox.relay(flaky, poll_interval=0, max_idle_polls=1, on_error="quarantine")  # noqa: E731
        assert relay() == 0 and store.failures()[0].attempts == 1
        clock.advance(10)
        assert relay() == 1
        assert store.failures() == [] and len(attempts) == 2


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=20)


@given(_JSONISH)
def test_a_value_is_either_stored_faithfully_or_refused_with_a_payload_error(value: object) -> None:
    from statechart.store.core import _dumps

    try:
        text = _dumps(value)
    except PayloadError:
        return
    text.encode("utf-8")  # storable in any database
    assert json.loads(text) == value
