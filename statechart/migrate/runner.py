"""Moving stored instances to a newer version: in batches, resumable, safe beside live traffic.

Instances are walked by id with a keyset cursor (never OFFSET) that is persisted with each
batch in ``statechart_migration_runs``; each batch is one transaction holding the new rows,
their state, timer and audit rows, and the cursor. A run killed at any moment is continued by
starting it again: committed batches are not repeated (their instances are at the new version)
and nothing past the cursor was written. An instance whose mapping fails stays at its old
version, is recorded with the reason, and the run goes on (or stops, with ``fail_fast``).
On PostgreSQL the batch is claimed ``FOR UPDATE SKIP LOCKED``, so several processes can migrate
one store together, and concurrent ``send``s wait for the batch instead of racing it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import attrs

from ..errors import MachineNotLoadedError
from ..machine import Machine
from ..snapshot import Snapshot
from .apply import migrate_snapshot
from .chain import MigrationError, Step, load_chain

__all__ = ["MigrationSummary", "migrate", "plan", "status", "upgrade_snapshot"]

_INSTANCE_COLUMNS = ("id, machine, version, definition_hash, configuration, history, data, pending, send_counter, "
                     "bound, done, session_id, revision, created_at, updated_at, state_entered")


@attrs.frozen
class MigrationSummary:
    run_id: int | None
    machine: str
    to_version: int
    migrated: int
    already_current: int
    failed: int
    seconds: float
    dry_run: bool
    failures: tuple[tuple[str, str], ...]
    changes: tuple[tuple[str, str, str], ...] = ()  # dry run: (id, from, to)

    @property
    def rate(self) -> float:
        return self.migrated / self.seconds if self.seconds else 0.0


def plan(store: Any, machine: str, to_version: int | None = None,
         migrations: str | Path = "migrations") -> tuple[int, list[Step]]:
    """The target version and the steps a run would take from the oldest stored version."""
    chain = load_chain(machine, migrations)
    target = to_version if to_version is not None else store.machine(machine).version
    row = store.backend.execute("SELECT MIN(version) FROM statechart_instances WHERE machine = ? AND version < ?",
                                (machine, target)).fetchone()
    oldest = row[0] if row and row[0] is not None else target
    steps = [s for s in chain if oldest <= s.from_version < target]
    _require_steps(machine, oldest, target, steps, migrations)
    return target, steps


def _require_steps(machine: str, oldest: int, target: int, steps: Sequence[Step], migrations: str | Path) -> None:
    have = {s.from_version for s in steps}
    missing = [v for v in range(oldest, target) if v not in have]
    if missing:
        raise MigrationError(f"no step from v{missing[0]} to v{missing[0] + 1} in {Path(migrations) / machine}/ "
                             f"(write it, or run `statechart makemigration {machine}`)")


def upgrade_snapshot(store: Any, snapshot: Snapshot, steps: Sequence[Step], to_version: int,
                     instance_id: str) -> Snapshot:
    """Walk one snapshot through the chain to ``to_version``."""
    by_version = {s.from_version: s for s in steps}
    while snapshot.version < to_version:
        step = by_version.get(snapshot.version)
        if step is None:
            raise MigrationError(f"no step from v{snapshot.version}")
        old = store.machine(snapshot.machine, step.from_version)
        new = store.machine(snapshot.machine, step.to_version)
        snapshot = migrate_snapshot(step, snapshot, old, new, instance_id)
    return snapshot


def _ensure_tables(store: Any) -> None:
    backend = store.backend
    serial = "BIGSERIAL" if backend.dialect == "postgresql" else "INTEGER"
    real = "DOUBLE PRECISION" if backend.dialect == "postgresql" else "REAL"
    with backend.transaction():
        backend.execute(f"CREATE TABLE IF NOT EXISTS statechart_migration_runs (id {serial} PRIMARY KEY, "
                        f"machine TEXT NOT NULL, to_version INTEGER NOT NULL, cursor TEXT NOT NULL, "
                        f"done INTEGER NOT NULL, failed INTEGER NOT NULL, total INTEGER NOT NULL, "
                        f"started_at {real} NOT NULL, updated_at {real} NOT NULL, finished_at {real})")
        backend.execute(f"CREATE TABLE IF NOT EXISTS statechart_migration_failures (run_id INTEGER NOT NULL, "
                        f"instance_id TEXT NOT NULL, from_version INTEGER NOT NULL, reason TEXT NOT NULL, "
                        f"created_at {real} NOT NULL, PRIMARY KEY (run_id, instance_id))")


def _open_run(store: Any, machine: str, target: int, resume: bool) -> tuple[int, str, int]:
    backend = store.backend
    now = store.clock.now()
    with backend.transaction():
        row = backend.execute("SELECT id, cursor FROM statechart_migration_runs WHERE machine = ? AND to_version = ? "
                              "AND finished_at IS NULL ORDER BY id DESC LIMIT 1", (machine, target)).fetchone()
        total = backend.execute("SELECT COUNT(*) FROM statechart_instances WHERE machine = ? AND version < ?",
                                (machine, target)).fetchone()[0]
        if row is not None and resume:
            return row[0], row[1], total
        run_id = backend.execute("INSERT INTO statechart_migration_runs (machine, to_version, cursor, done, failed, "
                                 "total, started_at, updated_at) VALUES (?, ?, '', 0, 0, ?, ?, ?) RETURNING id",
                                 (machine, target, total, now, now)).fetchone()[0]
        return run_id, "", total


def migrate(store: Any, machine: str, to_version: int | None = None, *, migrations: str | Path = "migrations",
            batch_size: int = 1000, max_rate: float | None = None, dry_run: bool = False, fail_fast: bool = False,
            resume: bool = True, progress: Callable[[int, int], None] | None = None) -> MigrationSummary:
    """Upgrade every stored instance of ``machine`` below ``to_version`` (default: the latest registered)."""
    started = time.perf_counter()
    target, steps = plan(store, machine, to_version, migrations)
    for version in range(min([s.from_version for s in steps], default=target), target + 1):
        store.machine(machine, version)  # every version on the way must be registered
    current = store.count(machine, version=target)
    if not steps:
        return MigrationSummary(None, machine, target, 0, current, 0, time.perf_counter() - started, dry_run, ())
    if dry_run:
        return _dry_run(store, machine, target, steps, batch_size, current, started, progress)
    _ensure_tables(store)
    run_id, cursor, total = _open_run(store, machine, target, resume)
    migrated = failed = 0
    failures: list[tuple[str, str]] = []
    backend = store.backend
    while True:
        batch_started = time.perf_counter()
        with backend.transaction():
            rows = backend.execute(
                f"SELECT {_INSTANCE_COLUMNS} FROM statechart_instances WHERE machine = ? AND version < ? AND id > ? "
                f"ORDER BY id LIMIT ?{backend.lock_suffix}", (machine, target, cursor, batch_size)).fetchall()
            if not rows:
                break
            done_here, failed_here = _migrate_batch(store, rows, steps, target, run_id, failures)
            cursor = rows[-1][0]
            backend.execute("UPDATE statechart_migration_runs SET cursor = CASE WHEN cursor < ? THEN ? ELSE cursor END, "
                            "done = done + ?, failed = failed + ?, updated_at = ? WHERE id = ?",
                            (cursor, cursor, done_here, failed_here, store.clock.now(), run_id))
        migrated += done_here
        failed += failed_here
        if progress is not None:
            progress(migrated + failed, total)
        if fail_fast and failed_here:
            break
        if max_rate:
            wanted = len(rows) / max_rate
            spent = time.perf_counter() - batch_started
            if wanted > spent:
                time.sleep(wanted - spent)
    if not (fail_fast and failed):
        with backend.transaction():
            backend.execute("UPDATE statechart_migration_runs SET finished_at = ? WHERE id = ?",
                            (store.clock.now(), run_id))
    return MigrationSummary(run_id, machine, target, migrated, current, failed, time.perf_counter() - started,
                            False, tuple(failures))


def _migrate_batch(store: Any, rows: Sequence[Sequence[Any]], steps: Sequence[Step], target: int, run_id: int,
                   failures: list[tuple[str, str]]) -> tuple[int, int]:
    backend = store.backend
    now = store.clock.now()
    updates, state_rows, audits, timers, failed_rows, ids = [], [], [], [], [], []
    new_machine: Machine = store.machine(rows[0][1], target)
    for row in rows:
        stored = store._stored(row)
        try:
            snapshot = upgrade_snapshot(store, stored.snapshot, steps, target, stored.id)
        except MigrationError as error:
            failures.append((stored.id, str(error)))
            failed_rows.append((run_id, stored.id, stored.version, str(error), now))
            continue
        entered = {s: stored.state_entered.get(s, now) for s in snapshot.configuration}
        new_row = store._row(snapshot, stored.id, stored.revision + 1, stored.created_at, now, entered)
        updates.append((new_row[2], new_row[3], new_row[4], new_row[5], new_row[6], new_row[7], new_row[8],
                        new_row[9], new_row[10], stored.revision + 1, now, new_row[15], stored.id, stored.revision))
        ids.append((stored.id,))
        state_rows.extend(store._state_rows(new_machine, stored.id, snapshot.configuration, entered))
        timers.extend((stored.id, p.id, p.seq, p.event, p.due) for p in snapshot.pending_sends)
        before, after = sorted(stored.configuration), sorted(snapshot.configuration)
        audits.append((stored.id, stored.machine, target, stored.revision + 1, f"(migrate v{stored.version}->v{target})",
                       "null", "[]", json.dumps(before), json.dumps(after), ",".join(before), ",".join(after), "migrate",
                       "migrated", f"v{stored.version} -> v{target}", now))
    if updates:
        backend.executemany(
            "UPDATE statechart_instances SET version = ?, definition_hash = ?, configuration = ?, history = ?, "
            "data = ?, pending = ?, send_counter = ?, bound = ?, done = ?, revision = ?, updated_at = ?, "
            "state_entered = ? WHERE id = ? AND revision = ?", updates)
        backend.executemany("DELETE FROM statechart_instance_states WHERE instance_id = ?", ids)
        backend.executemany("DELETE FROM statechart_timers WHERE instance_id = ?", ids)
        store._write_side_rows(state_rows, audits, [], timers)
    if failed_rows:
        backend.executemany("INSERT INTO statechart_migration_failures (run_id, instance_id, from_version, reason, "
                            "created_at) VALUES (?, ?, ?, ?, ?)", failed_rows)
    return len(updates), len(failed_rows)


def _dry_run(store: Any, machine: str, target: int, steps: Sequence[Step], batch_size: int, current: int,
             started: float, progress: Callable[[int, int], None] | None) -> MigrationSummary:
    cursor, migrated = "", 0
    failures: list[tuple[str, str]] = []
    changes: list[tuple[str, str, str]] = []
    total = store.count(machine) - current
    while True:
        rows = store.backend.execute(
            f"SELECT {_INSTANCE_COLUMNS} FROM statechart_instances WHERE machine = ? AND version < ? AND id > ? "
            "ORDER BY id LIMIT ?", (machine, target, cursor, batch_size)).fetchall()
        if not rows:
            break
        for row in rows:
            stored = store._stored(row)
            try:
                snapshot = upgrade_snapshot(store, stored.snapshot, steps, target, stored.id)
            except MigrationError as error:
                failures.append((stored.id, str(error)))
                continue
            migrated += 1
            if len(changes) < 1000:
                changes.append((stored.id, f"v{stored.version} {{{', '.join(sorted(stored.configuration))}}}",
                                f"v{target} {{{', '.join(sorted(snapshot.configuration))}}}"))
        cursor = rows[-1][0]
        if progress is not None:
            progress(migrated + len(failures), total)
    return MigrationSummary(None, machine, target, migrated, current, len(failures), time.perf_counter() - started,
                            True, tuple(failures), tuple(changes))


def status(store: Any, machine: str, migrations: str | Path = "migrations") -> dict[str, Any]:
    """Instances per version and per active leaf state, the chain, and what is pending."""
    backend = store.backend
    versions = {v: n for v, n in backend.execute(
        "SELECT version, COUNT(*) FROM statechart_instances WHERE machine = ? GROUP BY version ORDER BY version",
        (machine,)).fetchall()}
    states = [(v, s, n) for v, s, n in backend.execute(
        "SELECT i.version, s.state, COUNT(*) FROM statechart_instances i JOIN statechart_instance_states s "
        "ON s.instance_id = i.id WHERE i.machine = ? AND s.atomic = ? GROUP BY i.version, s.state "
        "ORDER BY i.version, s.state", (machine, True)).fetchall()]
    chain = load_chain(machine, migrations)
    try:
        latest = store.machine(machine).version
    except MachineNotLoadedError:
        latest = max(versions, default=0)
    behind = sum(n for v, n in versions.items() if v < latest)
    return {"machine": machine, "latest": latest, "versions": versions, "states": states,
            "chain": [s.name for s in chain], "behind": behind,
            "pending_steps": [s.name for s in chain if any(v <= s.from_version for v in versions if v < latest)]}
