"""A process killed at any point of ``Store.send`` leaves every instance fully before or fully after
the event: a real child process sends a stream of events and is killed with SIGKILL at random
moments, and every instance's row must then agree with its audit log, outbox, timers, state rows
and idempotency keys. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import statechart
from statechart import Store
from statechart.model import ROOT

from machines import rows

MACHINE = """\
machine: crashy
version: 1
initial: idle
data: {counter: 0}
states:
  idle:
    on:
      TICK:
        target: busy
        actions:
          - {assign: {counter: "counter + 1"}}
          - {emit: {event: ticked, data: {counter: "counter"}}}
          - {send: {event: EXPIRE, delay: 1h, id: expire}}
  busy:
    on:
      TICK:
        target: idle
        actions:
          - {assign: {counter: "counter + 1"}}
          - {emit: {event: ticked, data: {counter: "counter"}}}
          - {cancel: expire}
"""

# The child: opens the store, creates instances now and then, and sends TICK (handled) and NOISE
# (unhandled) events with idempotency keys to random instances until it is killed. Every statement
# is followed by a short pause (slow I/O, as it were), so that most of the child's time is spent
# inside a transaction, between two of its statements: that is where a kill can do harm.
CHILD = """\
import random
import sys
import time

import statechart

url, seed, round_no, machine_text = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = random.Random(seed)
store = statechart.Store.open(url)
store.register(statechart.loads(machine_text, "machines/crashy/v1.yaml"))


def slowed(call):
    def slow(*args, **kwargs):
        result = call(*args, **kwargs)
        time.sleep(rng.uniform(0, 0.004))
        return result
    return slow


store.backend.execute = slowed(store.backend.execute)
store.backend.executemany = slowed(store.backend.executemany)
ids = [i.id for i in store.list("crashy", limit=10_000)]
print("ready", flush=True)
n = 0
while True:
    n += 1
    if len(ids) < 4 or rng.random() < 0.05:
        new = [f"r{round_no}-{n}-{k}" for k in range(rng.randint(1, 3))]
        store.create_many("crashy", [{}] * len(new), ids=new)
        ids.extend(new)
        continue
    event = "TICK" if rng.random() < 0.8 else "NOISE"
    store.send(rng.choice(ids), event, {"n": n}, idempotency_key=f"{round_no}-{n}")
"""

ROUNDS = 6

# The child imports the same statechart as these tests, wherever it is installed or checked out.
CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(Path(statechart.__file__).resolve().parents[1]), *filter(None, [os.environ.get("PYTHONPATH")])])}


def check_every_instance(store: Store, context: str) -> int:
    """Every instance is consistent with its side rows; returns how many events were applied."""
    instances = {i.id: i for i in store.list("crashy", limit=100_000)}
    audits: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for instance_id, revision, event, outcome, after in rows(
            store, "SELECT instance_id, revision, event, outcome, configuration_after FROM statechart_audit "
                   "ORDER BY id"):
        audits[instance_id].append({"revision": revision, "event": event, "outcome": outcome,
                                    "configuration_after": json.loads(after)})
    outbox: dict[str, list[int]] = defaultdict(list)
    for instance_id, data in rows(store, "SELECT instance_id, data FROM statechart_outbox ORDER BY id"):
        outbox[instance_id].append(json.loads(data)["counter"])
    timers: dict[str, set[tuple]] = defaultdict(set)
    for instance_id, send_id, seq, event, due in rows(
            store, "SELECT instance_id, send_id, seq, event, due_at FROM statechart_timers"):
        timers[instance_id].add((send_id, seq, event, due))
    states: dict[str, set[str]] = defaultdict(set)
    for instance_id, state in rows(store, "SELECT instance_id, state FROM statechart_instance_states"):
        states[instance_id].add(state)
    keys: dict[str, int] = defaultdict(int)
    for instance_id, count in rows(store, "SELECT instance_id, COUNT(*) FROM statechart_idempotency "
                                          "GROUP BY instance_id"):
        keys[instance_id] = count

    for table, by_instance in (("audit", audits), ("outbox", outbox), ("timers", timers), ("states", states),
                               ("idempotency", keys)):
        orphans = set(by_instance) - set(instances)
        assert not orphans, f"{context}: {table} rows of instances that do not exist: {sorted(orphans)[:5]}"

    applied_total = 0
    for instance_id, stored in instances.items():
        where = f"{context}, instance {instance_id}"
        log = audits[instance_id]
        assert log and log[0]["event"] == "(start)" and log[0]["revision"] == 1, f"{where}: {log[:1]}"
        events = log[1:]
        assert all(row["outcome"] in ("applied", "unhandled") for row in events), where
        assert [row["revision"] for row in events] == list(range(2, len(events) + 2)), where
        applied = [row for row in events if row["outcome"] == "applied"]
        assert all(row["event"] == "TICK" for row in applied), where
        assert stored.revision == 1 + len(events), where
        assert stored.data == {"counter": len(applied)}, where
        assert sorted(stored.configuration) == log[-1]["configuration_after"], where
        assert outbox[instance_id] == list(range(1, len(applied) + 1)), where
        pending = {(p.id, p.seq, p.event, p.due) for p in stored.pending_sends}
        assert timers[instance_id] == pending, where
        assert len(pending) == (1 if stored.configuration == frozenset({"busy"}) else 0), where
        assert states[instance_id] == set(stored.configuration) - {ROOT}, where
        assert keys[instance_id] == len(events), where
        applied_total += len(applied)
    return applied_total


def test_a_killed_sender_leaves_every_instance_before_or_after_each_event(store_url: str, tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    with Store.open(store_url) as store:  # create the schema before the first child runs
        store.register(statechart.loads(MACHINE, "machines/crashy/v1.yaml"))
        applied = 0
        for round_no in range(ROUNDS):
            context = f"seed {seed}, round {round_no}"
            child = subprocess.Popen([sys.executable, str(script), store_url, str(rng.randrange(1 << 30)),
                                      str(round_no), MACHINE], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=CHILD_ENV)
            try:
                assert child.stdout is not None
                line = child.stdout.readline()
                assert line == "ready\n", f"{context}: child did not start: {line!r} {child.stderr.read()}"
                time.sleep(rng.uniform(0.05, 0.6))
                alive = child.poll() is None
                child.send_signal(signal.SIGKILL)
                child.wait(timeout=10)
                assert alive, f"{context}: the child stopped by itself: {child.stderr.read()}"
                assert child.returncode == -signal.SIGKILL, context
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait()
                child.stdout.close()
                child.stderr.close()
            now_applied = check_every_instance(store, context)
            assert now_applied >= applied, context
            applied = now_applied
        assert applied > 0, f"seed {seed}: no event was applied in {ROUNDS} rounds"
