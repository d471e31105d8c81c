"""Instances migrated per second, against a bare loop measured in the same run.

Populates a store with N instances of ``onboarding`` v1 (spread over its resting states, with
their timers), then runs the real runner (``statechart.migrate.runner.migrate``: every check,
audit rows, state and timer rows, the persisted cursor) to v2. The baseline, on a copy of the
same rows: a bare loop that reads rows by keyset in batches of 1,000, decodes the JSON, maps a
state table and a data field, and writes them back, one transaction per batch. Memory is
sampled to show that it stays flat as the count grows.

    python benchmarks/migrate_speed.py [--count 1000000] [--postgres URL] [--processes 1 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import tempfile
import time
import uuid
from pathlib import Path

import statechart
from statechart.migrate.runner import migrate

ROOT = Path(__file__).resolve().parent.parent
STATES = {"welcoming": "welcoming", "waiting": "waiting", "dripping": "dripping", "completed": "completed",
          "unsubscribed": "unsubscribed"}


def _store(url: str) -> statechart.Store:
    store = statechart.Store.open(url)
    store.register(ROOT / "machines")
    return store


def populate(url: str, count: int) -> None:
    """Real rows for real instances: one in three finished, the rest waiting with a timer."""
    store = _store(url)
    v1 = store.machine("onboarding", 1)
    waiting = v1.start(data={"email": "a@b.c"}, clock=statechart.VirtualClock()).snapshot()
    template = store._row(waiting, "x", 1, 0.0, 0.0, {"waiting": 0.0})
    backend = store.backend
    for start in range(0, count, 10_000):
        rows, states, timers = [], [], []
        for index in range(start, min(count, start + 10_000)):
            instance_id = f"i{index:08d}"
            finished = index % 3 == 0
            configuration = '["completed"]' if finished else template[4]
            pending = "[]" if finished else template[7]
            rows.append((instance_id, *template[1:4], configuration, template[5],
                         json.dumps({"email": f"user{index}@example.com"}), pending, *template[8:10], finished,
                         instance_id, 1, 0.0, 0.0, '{"completed":0.0}' if finished else template[15]))
            states.append((instance_id, "completed" if finished else "waiting", True, 0.0))
            if not finished:
                timers.append((instance_id, "after.0.waiting", 1, "after.0.waiting", 86400.0))
        with backend.transaction():
            backend.executemany(f"INSERT INTO statechart_instances VALUES ({', '.join('?' * 16)})", rows)
            backend.executemany("INSERT INTO statechart_instance_states VALUES (?, ?, ?, ?)", states)
            backend.executemany("INSERT INTO statechart_timers VALUES (?, ?, ?, ?, ?)", timers)
    store.close()


def bare_loop(url: str) -> float:
    store = _store(url)
    backend = store.backend
    cursor, moved, started = "", 0, time.perf_counter()
    while True:
        with backend.transaction():
            rows = backend.execute("SELECT id, configuration, data FROM statechart_instances WHERE machine = ? "
                                   "AND version < ? AND id > ? ORDER BY id LIMIT 1000",
                                   ("onboarding", 2, cursor)).fetchall()
            if not rows:
                break
            updates = []
            for instance_id, configuration, data in rows:
                mapped = [STATES[s] for s in json.loads(configuration)]
                values = json.loads(data)
                values["channel"] = "organic"
                updates.append((2, json.dumps(mapped), json.dumps(values), instance_id))
            backend.executemany("UPDATE statechart_instances SET version = ?, configuration = ?, data = ? "
                                "WHERE id = ?", updates)
            cursor = rows[-1][0]
            moved += len(rows)
    elapsed = time.perf_counter() - started
    store.close()
    return moved / elapsed


def _runner(url: str, queue: "multiprocessing.Queue[tuple[int, float, int]]") -> None:
    store = _store(url)
    started = time.perf_counter()
    summary = migrate(store, "onboarding", 2, migrations=ROOT / "migrations", resume=False)
    queue.put((summary.migrated, time.perf_counter() - started,
               resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
    store.close()


def real_runner(url: str, processes: int) -> tuple[float, int]:
    queue: "multiprocessing.Queue[tuple[int, float, int]]" = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_runner, args=(url, queue)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    results = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
    migrated = sum(r[0] for r in results)
    elapsed = max(r[1] for r in results)
    return migrated / elapsed, max(r[2] for r in results)


def _drop(postgres: str | None, url: str) -> None:
    """Remove a benchmark's PostgreSQL schema (SQLite files go with the temporary folder)."""
    if postgres and url.startswith("postgresql") and "%3D" in url:
        import psycopg

        with psycopg.connect(postgres, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {url.rsplit('%3D', 1)[1]} CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=None, help="also measure PostgreSQL at this URL")
    parser.add_argument("--processes", type=int, nargs="+", default=[1])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        targets = [("sqlite", lambda: f"sqlite:///{Path(folder) / uuid.uuid4().hex}.db")]
        if args.postgres:
            import psycopg

            def fresh() -> str:
                schema = f"bench_{uuid.uuid4().hex[:8]}"
                with psycopg.connect(args.postgres, autocommit=True) as connection:
                    connection.execute(f"CREATE SCHEMA {schema}")
                return f"{args.postgres}{'&' if '?' in args.postgres else '?'}options=-csearch_path%3D{schema}"

            targets.append(("postgresql", fresh))
        for name, fresh_url in targets:
            baseline_url = fresh_url()
            populate(baseline_url, args.count)
            bare = bare_loop(baseline_url)
            _drop(args.postgres, baseline_url)
            for processes in args.processes:
                url = fresh_url()
                populate(url, args.count)
                rate, peak = real_runner(url, processes)
                _drop(args.postgres, url)
                print(f"{name}: {args.count:,} instances, {processes} process(es): runner {rate:,.0f}/s, "
                      f"bare loop {bare:,.0f}/s, ratio {rate / bare:.2f}, peak RSS {peak / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
