"""Sends per second to stored instances, and the time to create 100,000 instances.

For each backend (SQLite file in WAL mode; PostgreSQL when reachable) this measures:

* ``Store.send`` from one process, and from two processes at once (disjoint instances);
* a bare baseline in the same run: the least a durable transactional send must do with the same
  driver (BEGIN; SELECT the row; UPDATE it; INSERT one audit row; COMMIT), without our code;
* ``Store.create_many`` of 100,000 instances, against a bare ``executemany`` of the same rows.

    python benchmarks/store_speed.py [--sends 3000] [--create 100000] [--runs 3] [--postgres URL]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import statechart

MACHINE = """
machine: counter
version: 1
data: {n: 0}
states:
  active:
    on:
      TICK: {actions: [{assign: {n: "n + 1"}}]}
      STOP: stopped
  stopped: {type: final}
"""


def _store(url: str) -> statechart.Store:
    store = statechart.Store.open(url)
    store.register(statechart.loads(MACHINE, "machines/counter/v1.yaml"))
    return store


def _send_worker(url: str, ids: list[str], sends: int, queue: "multiprocessing.Queue[float]") -> None:
    store = _store(url)
    started = time.perf_counter()
    for index in range(sends):
        store.send(ids[index % len(ids)], "TICK")
    queue.put(time.perf_counter() - started)
    store.close()


def sends_per_second(url: str, sends: int, processes: int) -> float:
    store = _store(url)
    ids = [f"b{uuid.uuid4().hex[:10]}" for _ in range(100 * processes)]
    store.create_many("counter", [{}] * len(ids), ids=ids)
    store.close()
    queue: "multiprocessing.Queue[float]" = multiprocessing.Queue()
    chunks = [ids[i::processes] for i in range(processes)]
    workers = [multiprocessing.Process(target=_send_worker, args=(url, chunk, sends, queue)) for chunk in chunks]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = max(queue.get() for _ in workers)  # the slowest worker's own clock: no process start-up
    return processes * sends / elapsed


def bare_sends_per_second(url: str, sends: int) -> float:
    """The floor: one durable transaction per event with the same driver and no statechart code."""
    store = _store(url)
    backend = store.backend
    ids = [f"r{uuid.uuid4().hex[:10]}" for _ in range(100)]
    store.create_many("counter", [{}] * len(ids), ids=ids)
    started = time.perf_counter()
    for index in range(sends):
        instance_id = ids[index % len(ids)]
        with backend.transaction():
            row = backend.execute("SELECT revision, data FROM statechart_instances WHERE id = ?",
                                  (instance_id,)).fetchone()
            backend.execute("UPDATE statechart_instances SET data = ?, revision = ? WHERE id = ? AND revision = ?",
                            (row[1], row[0] + 1, instance_id, row[0]))
            backend.execute(
                "INSERT INTO statechart_audit (instance_id, machine, version, revision, event, data, transitions, "
                "configuration_before, configuration_after, from_states, to_states, actor, outcome, reason, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (instance_id, "counter", 1, row[0] + 1, "TICK", "null", "[]", "[]", "[]", "", "", None, "applied",
                 None, time.time()))
    elapsed = time.perf_counter() - started
    store.close()
    return sends / elapsed


def create_seconds(url: str, count: int) -> tuple[float, float]:
    store = _store(url)
    ids = [f"c{uuid.uuid4().hex}" for _ in range(count)]
    started = time.perf_counter()
    store.create_many("counter", [{}] * count, ids=ids, batch_size=1000)
    ours = time.perf_counter() - started
    backend = store.backend
    rows = [(f"x{uuid.uuid4().hex}", "counter", 1, "h", '["active"]', "{}", '{"n":0}', "[]", 0, "[]", False,
             "s", 1, 0.0, 0.0, "{}") for _ in range(count)]
    started = time.perf_counter()
    for start in range(0, count, 1000):
        with backend.transaction():
            backend.executemany(
                "INSERT INTO statechart_instances (id, machine, version, definition_hash, configuration, history, "
                "data, pending, send_counter, bound, done, session_id, revision, created_at, updated_at, "
                "state_entered) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows[start:start + 1000])
    bare = time.perf_counter() - started
    store.close()
    return ours, bare


def _postgres_fresh(url: str) -> str:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


def _drop_postgres(url: str, fresh: str) -> None:
    import psycopg

    schema = fresh.rsplit("%3D", 1)[1]
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA {schema} CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=3000, help="sends per process per run")
    parser.add_argument("--create", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", default=os.environ.get("STATECHART_TEST_POSTGRES_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        backends = [("sqlite", lambda: f"sqlite:///{Path(folder) / uuid.uuid4().hex}.db", lambda url: None)]
        try:
            import psycopg

            psycopg.connect(args.postgres, connect_timeout=3).close()
            backends.append(("postgresql", lambda: _postgres_fresh(args.postgres),
                             lambda url: _drop_postgres(args.postgres, url)))
        except Exception as error:  # noqa: BLE001
            print(f"postgresql: skipped ({error})")
        print(f"medians of {args.runs} runs; {args.sends} sends per process per run")
        for name, fresh, drop in backends:
            figures: dict[str, list[float]] = {"one": [], "two": [], "bare": [], "create": [], "create_bare": []}
            for _ in range(args.runs):
                url = fresh()
                figures["one"].append(sends_per_second(url, args.sends, 1))
                figures["two"].append(sends_per_second(url, args.sends, 2))
                figures["bare"].append(bare_sends_per_second(url, args.sends))
                drop(url)
            url = fresh()
            ours, bare = create_seconds(url, args.create)
            drop(url)
            one, two, floor = (statistics.median(figures[k]) for k in ("one", "two", "bare"))
            print(f"{name}: Store.send, 1 process:   {one:8,.0f} sends/s")
            print(f"{name}: Store.send, 2 processes: {two:8,.0f} sends/s")
            print(f"{name}: bare transaction floor:  {floor:8,.0f} sends/s (Store.send at {one / floor:.0%} of it)")
            print(f"{name}: create {args.create:,} instances: {ours:6.1f} s ({args.create / ours:,.0f}/s); "
                  f"bare insert {bare:5.1f} s")


if __name__ == "__main__":
    main()
