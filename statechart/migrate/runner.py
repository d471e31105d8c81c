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

from ..errors import IllegalSnapshotError, MachineNotLoadedError, StatechartError
from ..interpreter import PendingSend
from ..legality import snapshot_problems
from ..machine import Machine
from ..snapshot import Snapshot
from ..store.core import INSTANCE_COLUMNS, dump_json, encode_json
from ..store.faults import retrying
from ..store.quarantine import clear_failure, record_failure
from ..store.inputs import check_count, check_id, check_optional_version
from .apply import migrate_snapshot
from .chain import MigrationError, Step, load_chain

__all__ = ["MigrationSummary", "migrate", "plan", "status", "upgrade_snapshot"]

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
    #: Instances skipped because earlier runs failed them ``store.max_attempts`` times (quarantine):
    #: ``store.retry(id)`` (``statechart instances retry ID``) lets the next run try them again.
    parked: tuple[str, ...] = ()

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
                     instance_id: str, cache: dict[Any, Any] | None = None) -> Snapshot:
    """Walk one snapshot through the chain to ``to_version``."""
    by_version = {s.from_version: s for s in steps}
    while snapshot.version < to_version:
        step = by_version.get(snapshot.version)
        if step is None:
            raise MigrationError(f"no step from v{snapshot.version}")
        old = store.machine(snapshot.machine, step.from_version)
        new = store.machine(snapshot.machine, step.to_version)
        snapshot = migrate_snapshot(step, snapshot, old, new, instance_id, cache)
    return snapshot


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
    check_id(machine, "machine name")
    check_optional_version(to_version, "target version")
    check_count(batch_size, "batch size")
    target, steps = plan(store, machine, to_version, migrations)
    for version in range(min([s.from_version for s in steps], default=target), target + 1):
        store.machine(machine, version)  # every version on the way must be registered
    current = store.count(machine, version=target)
    if not steps:
        return MigrationSummary(None, machine, target, 0, current, 0, time.perf_counter() - started, dry_run, ())
    if dry_run:
        return _dry_run(store, machine, target, steps, batch_size, current, started, progress)
    # Each batch is one transaction that also moves the cursor, so a batch that failed on a
    # transient error (a dropped connection, a timeout) is simply run again; one that did commit
    # before its connection died is not repeated: its rows are at the target version now.
    attempts = getattr(store, "retries", 10)
    backend = store.backend
    run_id, cursor, total = retrying(lambda: _open_run(store, machine, target, resume), attempts,
                                     what=f"migrating {machine}", backend=backend)

    def quarantined() -> tuple[tuple[str, ...], set[str]]:
        """The instances parked by earlier runs (skipped, reported) and those with a failure on record."""
        parked = tuple(row[0] for row in _rows(store, f"SELECT i.id FROM statechart_instances i WHERE i.machine = ? "
                                                      f"AND i.version < ? AND i.id IN ({_PARKED}) ORDER BY i.id",
                                               (machine, target, True)))
        failing = {row[0] for row in _rows(store, "SELECT f.instance_id FROM statechart_failures f JOIN "
                                                  "statechart_instances i ON i.id = f.instance_id WHERE "
                                                  "f.kind = 'migration' AND i.machine = ?", (machine,))}
        return parked, failing

    parked, failing = retrying(quarantined, attempts, what=f"migrating {machine}", repeatable=True, backend=backend)
    migrated = failed = 0
    failures: list[tuple[str, str]] = []
    cache: dict[Any, Any] = {}
    texts = _Texts()
    # Pass 1 shares the work: rows another process (or an in-flight send) holds are skipped, not
    # waited for. Pass 2 sweeps from the start, waiting for locks, so a row skipped in pass 1 is
    # never left behind; it excludes the instances this run already failed.
    sweep = False
    lock = backend.lock_suffix

    def one_batch(cursor: str, lock: str) -> tuple[list[Any], int, int]:
        del failures[known_failures:]  # an attempt that rolled back recorded nothing
        with backend.transaction():
            rows = backend.execute(
                f"SELECT {INSTANCE_COLUMNS} FROM statechart_instances WHERE machine = ? AND version < ? AND id > ? "
                "AND id NOT IN (SELECT instance_id FROM statechart_migration_failures WHERE run_id = ?) "
                f"AND id NOT IN ({_PARKED}) ORDER BY id LIMIT ?{lock}",
                (machine, target, cursor, run_id, True, batch_size)).fetchall()
            if not rows:
                return rows, 0, 0
            done_here, failed_here = _migrate_batch(store, rows, steps, target, run_id, failures, cache, texts,
                                                    failing)
            last = rows[-1][0]
            backend.execute("UPDATE statechart_migration_runs SET cursor = CASE WHEN cursor < ? THEN ? ELSE cursor END, "
                            "done = done + ?, failed = failed + ?, updated_at = ? WHERE id = ?",
                            (last, last, done_here, failed_here, store.clock.now(), run_id))
        return rows, done_here, failed_here

    while True:
        batch_started = time.perf_counter()
        known_failures = len(failures)
        rows, done_here, failed_here = retrying(lambda: one_batch(cursor, lock), attempts,
                                                what=f"migrating {machine}", repeatable=True,
                                                backend=backend)
        if not rows:
            if sweep or not lock:
                break
            sweep, cursor, lock = True, "", " FOR UPDATE"
            continue
        cursor = rows[-1][0]
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
        def finish() -> None:
            with backend.transaction():
                backend.execute("UPDATE statechart_migration_runs SET finished_at = ? WHERE id = ?",
                                (store.clock.now(), run_id))

        retrying(finish, attempts, what=f"migrating {machine}", repeatable=True, backend=backend)
    return MigrationSummary(run_id, machine, target, migrated, current, failed, time.perf_counter() - started,
                            False, tuple(failures), parked=parked)


#: Instances whose migration is parked (one parameter: True).
_PARKED = "SELECT instance_id FROM statechart_failures WHERE kind = 'migration' AND parked = ?"


def _rows(store: Any, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in store.backend.execute(sql, params).fetchall()]




class _Texts:
    """Per-run memo of parsed and encoded state sets: a store holds few distinct configurations."""

    def __init__(self) -> None:
        self.sets: dict[str, frozenset[str]] = {}
        self.texts: dict[frozenset[str], str] = {}

    def parse(self, text: str) -> frozenset[str]:
        value = self.sets.get(text)
        if value is None:
            value = self.sets[text] = frozenset(json.loads(text))
        return value

    def encode(self, states: frozenset[str]) -> str:
        text = self.texts.get(states)
        if text is None:
            text = self.texts[states] = encode_json(sorted(states))
        return text


def _snapshot(row: Sequence[Any], texts: _Texts) -> tuple[Snapshot, dict[str, Any]]:
    (instance_id, machine, version, definition_hash, configuration, history, data, pending, send_counter, bound,
     done, session_id, _revision, _created, _updated, _entered) = row
    history_map = {} if history == "{}" else {k: frozenset(v) for k, v in json.loads(history).items()}
    pending_sends = () if pending == "[]" else tuple(PendingSend(*p) for p in json.loads(pending))
    data_map = json.loads(data)
    snapshot = Snapshot(machine, version, definition_hash, texts.parse(configuration), history_map, data_map,
                        bool(done), session_id, pending_sends, (), send_counter,
                        frozenset() if bound == "[]" else frozenset(json.loads(bound)))
    return snapshot, data_map


def _migrate_batch(store: Any, rows: Sequence[Sequence[Any]], steps: Sequence[Step], target: int, run_id: int,
                   failures: list[tuple[str, str]], cache: dict[Any, Any], texts: _Texts,
                   failing: set[str]) -> tuple[int, int]:
    """One batch, written with as few statements as the changes need: the row, the audit row, and
    the state and timer rows only of instances whose configuration or timers changed."""
    backend = store.backend
    now = store.clock.now()
    updates, audits, failed_rows = [], [], []
    state_deletes, state_inserts, timer_owners, timer_inserts = [], [], [], []
    new_machine: Machine = store.machine(rows[0][1], target)
    model_states = new_machine.model.states
    definition_hash = new_machine.definition_hash
    old_machine: Machine = store.machine(rows[0][1], rows[0][2])
    old_states = old_machine.model.states
    for row in rows:
        instance_id, version, revision = row[0], row[2], row[12]
        if version != old_machine.version:
            old_machine = store.machine(row[1], version)
            old_states = old_machine.model.states
        try:
            # A stored row is data: one that describes an impossible instance is reported as a
            # failure of this instance, never migrated into something else or crashing the run.
            snapshot, data_map = _snapshot(row, texts)
            problems, _ = snapshot_problems(old_machine.legality, snapshot)
            if problems:
                raise MigrationError(f"the stored instance cannot be restored: {'; '.join(problems)}")
            migrated = upgrade_snapshot(store, snapshot, steps, target, instance_id, cache)
            data_text = row[6] if migrated.data == data_map else _storable(migrated.data)
            before, after = snapshot.configuration, migrated.configuration
            unchanged = after == before and all(old_states[s].is_atomic == model_states[s].is_atomic for s in after)
            old_entered = {} if unchanged else dict(json.loads(row[15]))  # parsed only when the states change
        except _FAULTS as error:  # one instance's fault: recorded, and the batch goes on
            reason = _reason(error, instance_id)
            failures.append((instance_id, reason))
            failed_rows.append((run_id, instance_id, version, reason, now))
            continue
        if instance_id in failing:
            clear_failure(store, "migration", instance_id)
        configuration_text = texts.encode(after)
        if unchanged:
            entered_text = row[15]
        else:
            entered = {s: old_entered.get(s, now) for s in after}
            entered_text = encode_json(entered)
            changed = {s for s in after & before if old_states[s].is_atomic != model_states[s].is_atomic}
            state_deletes.extend((instance_id, s) for s in (before - after) | changed)
            state_inserts.extend((instance_id, s, model_states[s].is_atomic, entered.get(s, now))
                                 for s in (after - before) | changed)
        if migrated.pending_sends == snapshot.pending_sends:
            pending_text = row[7]
        else:
            pending_text = encode_json([[p.id, p.event, p.data, p.due, p.seq, p.internal_id]
                                    for p in migrated.pending_sends])
            timer_owners.append((instance_id,))
            timer_inserts.extend((instance_id, p.id, p.seq, p.event, p.due) for p in migrated.pending_sends)
        history_text = row[5] if migrated.history == snapshot.history else encode_json(
            {k: sorted(v) for k, v in migrated.history.items()})
        bound_text = encode_json(sorted(migrated.bound_states)) if migrated.bound_states else "[]"
        updates.append((target, definition_hash, configuration_text, history_text, data_text, pending_text,
                        bound_text, migrated.done, revision + 1, now, entered_text, instance_id, revision))
        audits.append((instance_id, row[1], target, revision + 1, f"(migrate v{version}->v{target})", "null", "[]",
                       texts.encode(before), configuration_text,
                       ",".join(sorted(s for s in before if old_states[s].is_atomic)),
                       ",".join(sorted(s for s in after if model_states[s].is_atomic)),
                       "migrate", "migrated", f"v{version} -> v{target}", now))
    if updates:
        backend.executemany(
            "UPDATE statechart_instances SET version = ?, definition_hash = ?, configuration = ?, history = ?, "
            "data = ?, pending = ?, bound = ?, done = ?, revision = ?, updated_at = ?, state_entered = ? "
            "WHERE id = ? AND revision = ?", updates)
    if state_deletes:
        backend.executemany("DELETE FROM statechart_instance_states WHERE instance_id = ? AND state = ?",
                            state_deletes)
    if timer_owners:
        backend.executemany("DELETE FROM statechart_timers WHERE instance_id = ?", timer_owners)
    store.write_side_rows(state_inserts, audits, [], timer_inserts)
    if failed_rows:
        backend.executemany("INSERT INTO statechart_migration_failures (run_id, instance_id, from_version, reason, "
                            "created_at) VALUES (?, ?, ?, ?, ?)", failed_rows)
        for _, instance_id, version, reason, _ in failed_rows:  # quarantine: counted across runs, then parked
            failure = record_failure(store, "migration", instance_id, f"v{version} -> v{target}", reason, now)
            store.audit_failure(instance_id, f"(migrate v{version}->v{target})", "migrate", failure)
            failing.add(instance_id)
    return len(updates), len(failed_rows)


#: What migrating one instance may raise: its row cannot be decoded, a step fails, or the step's
#: result cannot be stored (a 5000-digit integer, 10k-deep data, a lone surrogate).
_FAULTS = (MigrationError, StatechartError, ValueError, TypeError, KeyError, IndexError, AttributeError,
           ArithmeticError, RecursionError)


def _storable(data: Any) -> str:
    """The data as stored; PayloadError (naming why) when no database could store it."""
    return dump_json(data)


def _reason(error: BaseException, instance_id: str) -> str:
    if isinstance(error, StatechartError):
        text = str(error)
    elif isinstance(error, RecursionError):
        text = "the instance's data is nested too deeply to migrate"
    else:
        text = f"its row cannot be decoded or migrated: {type(error).__name__}: {error}"
    return text if len(text) <= 1000 else text[:997] + "..."


def _dry_run(store: Any, machine: str, target: int, steps: Sequence[Step], batch_size: int, current: int,
             started: float, progress: Callable[[int, int], None] | None) -> MigrationSummary:
    cursor, migrated = "", 0
    failures: list[tuple[str, str]] = []
    changes: list[tuple[str, str, str]] = []
    total = sum(store.count(machine, version=v) for v in range(1, target))
    while True:
        rows = store.backend.execute(
            f"SELECT {INSTANCE_COLUMNS} FROM statechart_instances WHERE machine = ? AND version < ? AND id > ? "
            "ORDER BY id LIMIT ?", (machine, target, cursor, batch_size)).fetchall()
        if not rows:
            break
        for row in rows:
            try:
                stored = store.decode_row(row)
                problems, _ = snapshot_problems(store.machine(stored.machine, stored.version).legality,
                                                stored.snapshot)
                if problems:
                    raise IllegalSnapshotError(problems, machine=stored.machine, instance_id=stored.id)
                snapshot = upgrade_snapshot(store, stored.snapshot, steps, target, stored.id)
                _storable(snapshot.data)
            except _FAULTS as error:
                failures.append((row[0], _reason(error, row[0])))
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
            "pending_steps": [s.name for s in chain if s.to_version <= latest
                              and any(v <= s.from_version for v in versions if v < latest)]}
