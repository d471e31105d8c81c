"""The durable store: every event sent to a stored instance is one atomic, idempotent, audited step.

One transaction holds the new snapshot (guarded by an optimistic revision check), one audit row
per processed event, the outbox rows for every ``emit``, the timer rows for every delayed send
(and the removal of cancelled or fired ones), the per-state entry times, and the idempotency
record. Either all of it is committed or none of it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import time
import uuid
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import attrs

from ..clock import Clock, SystemClock
from ..errors import (
    ConcurrencyError,
    DefinitionMismatchError,
    EventlessLoopError,
    IllegalSnapshotError,
    SnapshotFormatError,
    DuplicateInstanceError,
    InstanceDoneError,
    InstanceNotFoundError,
    MachineNotLoadedError,
    PayloadError,
    StatechartError,
    StoreSchemaError,
    UnhandledEventError,
    UnknownEventError,
)
from ..instance import Instance, SendResult, checked_payload
from ..migrate.chain import MigrationError
from ..interpreter import PendingSend
from ..machine import Machine, load
from ..model import ROOT, StateKind
from ..snapshot import Snapshot
from .backends import Backend, IntegrityError, RetryableError, open_backend
from .schema import SCHEMA_VERSION, UPGRADES, table_statements

__all__ = ["Store", "StoredInstance", "Receipt", "DEFAULT_RETRIES"]

DEFAULT_RETRIES = 10
#: Key of the PostgreSQL advisory lock that serializes schema creation and upgrades.
_SCHEMA_LOCK = 0x5743_4854  # "SCHT"
_COLUMNS = ("id, machine, version, definition_hash, configuration, history, data, pending, send_counter, bound, "
            "done, session_id, revision, created_at, updated_at, state_entered")


_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def _dumps(value: Any) -> str:
    try:
        return _ENCODE(value)
    except (TypeError, ValueError) as error:
        raise PayloadError(f"cannot store {type(value).__name__} value as JSON: {error}") from None


@functools.lru_cache(maxsize=4096)
def _states_text(states: frozenset[str]) -> str:
    """A configuration as stored: few distinct ones recur across millions of rows, so encode each once."""
    return _ENCODE(sorted(states))


@functools.lru_cache(maxsize=4096)
def _leaves_text(machine: Machine, states: frozenset[str]) -> str:
    model_states = machine.model.states
    return ",".join(s for s in sorted(states) if model_states[s].is_atomic)


@functools.lru_cache(maxsize=4096)
def _transitions_text(transitions: tuple[Any, ...]) -> str:
    return _ENCODE([t.id for t in transitions])


@attrs.frozen
class StoredInstance:
    """A stored instance as read from the store (a value: reading it again gives a new one)."""

    id: str
    machine: str
    version: int
    configuration: frozenset[str]
    history: dict[str, frozenset[str]]
    data: dict[str, Any]
    done: bool
    revision: int
    created_at: float
    updated_at: float
    state_entered: dict[str, float]
    pending_sends: tuple[PendingSend, ...]
    snapshot: Snapshot = attrs.field(repr=False)


@attrs.frozen
class Receipt:
    """What ``Store.send`` did; also what a repeated idempotency key returns."""

    instance_id: str
    event: str
    outcome: str  # "applied" | "unhandled" | "postponed" (a timer this worker could not fire); rejected events raise
    revision: int
    configuration_before: tuple[str, ...]
    configuration_after: tuple[str, ...]
    transitions: tuple[str, ...]
    effects: tuple[dict[str, Any], ...]
    done: bool
    replayed: bool = False

    @property
    def handled(self) -> bool:
        return self.outcome == "applied"

    def to_dict(self) -> dict[str, Any]:
        return {"instance_id": self.instance_id, "event": self.event, "outcome": self.outcome,
                "revision": self.revision, "configuration_before": list(self.configuration_before),
                "configuration_after": list(self.configuration_after), "transitions": list(self.transitions),
                "effects": list(self.effects), "done": self.done}

    @classmethod
    def from_dict(cls, document: Mapping[str, Any], *, replayed: bool = False) -> "Receipt":
        return cls(document["instance_id"], document["event"], document["outcome"], document["revision"],
                   tuple(document["configuration_before"]), tuple(document["configuration_after"]),
                   tuple(document["transitions"]), tuple(document["effects"]), document["done"], replayed)


class _Conflict(Exception):
    """The instance's revision moved between our read and our write."""


class Store:
    """Stored instances over SQLite or PostgreSQL, picked by URL.

    One Store holds one connection: use one per thread or process.
    """

    def __init__(self, backend: Backend, *, clock: Clock | None = None, retries: int = DEFAULT_RETRIES,
                 idempotency_retention: float = 7 * 86400, strict: bool = False, lazy_upgrade: bool = False,
                 migrations: str | Path = "migrations", timer_retry_delay: float = 60.0) -> None:
        if retries < 1:
            raise ValueError(f"retries must be at least 1 (one attempt), not {retries}")
        self.backend = backend
        self.clock = clock or SystemClock()
        self.retries = retries
        self.idempotency_retention = idempotency_retention
        self.strict = strict
        #: Upgrade an instance below the latest registered version when an event reaches it, through
        #: the steps in ``migrations/<machine>/`` (the eager alternative is ``statechart migrate``).
        self.lazy_upgrade = lazy_upgrade
        #: How long a timer this process cannot fire (its machine version is not registered here) waits
        #: before it is tried again; it never blocks the timers due after it.
        self.timer_retry_delay = timer_retry_delay
        self.migrations = Path(migrations)
        self._chains: dict[str, Any] = {}
        self.machines: dict[tuple[str, int], Machine] = {}
        self._ensure_schema()

    @classmethod
    def open(cls, url: str, **options: Any) -> "Store":
        """Open (and create or upgrade the schema of) the store at ``url``."""
        backend = open_backend(url)
        try:
            return cls(backend, **options)
        except BaseException:
            backend.close()
            raise

    @property
    def url(self) -> str:
        return self.backend.url

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def outbox(self) -> Any:
        """Unpublished emitted events in commit order, marking them published, and a relay loop."""
        from .outbox import Outbox

        return Outbox(self)

    def metrics(self, **options: Any) -> Any:
        """Lifecycle metrics computed from the store (see ``store/metrics.py``)."""
        from .metrics import lifecycle_metrics

        return lifecycle_metrics(self, **options)

    # -- schema ---------------------------------------------------------------------------------
    def _ensure_schema(self) -> None:
        backend = self.backend
        with backend.transaction():
            if backend.dialect == "postgresql":  # two processes opening a fresh store: one creates it
                backend.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))
            backend.execute("CREATE TABLE IF NOT EXISTS statechart_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = backend.execute("SELECT value FROM statechart_meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                for statement in table_statements(backend.dialect):
                    backend.execute(statement)
                backend.execute("INSERT INTO statechart_meta (key, value) VALUES ('schema_version', ?)",
                                (str(SCHEMA_VERSION),))
                return
            try:
                found = int(row[0])
            except ValueError:
                raise StoreSchemaError(f"the store at {self.url} records schema version {row[0]!r}, which is not "
                                       "a statechart schema version") from None
            if found > SCHEMA_VERSION:
                raise StoreSchemaError(
                    f"the store at {self.url} has schema version {found}, written by a newer release of "
                    f"statechart (this one knows up to {SCHEMA_VERSION}); upgrade statechart to use it")
            while found < SCHEMA_VERSION:
                if found not in UPGRADES:
                    raise StoreSchemaError(f"the store at {self.url} has schema version {found}, which this "
                                           f"release cannot upgrade to {SCHEMA_VERSION}")
                for statement in UPGRADES[found][backend.dialect]:
                    backend.execute(statement)
                found += 1
                backend.execute("UPDATE statechart_meta SET value = ? WHERE key = 'schema_version'", (str(found),))

    def schema_version(self) -> int:
        row = self.backend.execute("SELECT value FROM statechart_meta WHERE key = 'schema_version'").fetchone()
        return int(row[0])

    # -- machines ---------------------------------------------------------------------------------
    def register(self, *machines: Machine | str | Path) -> "Store":
        """Make machine versions known to this store: Machine objects, files, or folders of them."""
        for item in machines:
            if isinstance(item, Machine):
                self.machines[(item.name, item.version)] = item
                continue
            path = Path(item)
            files = sorted(path.glob("*/v*.yaml")) + sorted(path.glob("v*.yaml")) if path.is_dir() else [path]
            for file in files:
                machine = load(file)
                self.machines[(machine.name, machine.version)] = machine
        return self

    def machine(self, name: str, version: int | None = None) -> Machine:
        """The registered machine ``name`` at ``version`` (default: the latest registered)."""
        if version is None:
            versions = [v for (n, v) in self.machines if n == name]
            if not versions:
                raise MachineNotLoadedError(name, None, self._loaded())
            version = max(versions)
        machine = self.machines.get((name, version))
        if machine is None:
            raise MachineNotLoadedError(name, version, self._loaded())
        return machine

    def _loaded(self) -> list[str]:
        return [f"{n} v{v}" for n, v in sorted(self.machines)]

    # -- creating -------------------------------------------------------------------------------------
    def create(self, machine: str, data: Mapping[str, Any] | None = None, *, id: str | None = None,
               version: int | None = None, actor: str | None = None) -> StoredInstance:
        """Start a new instance and store it with its audit row, outbox rows and timers."""
        return self.create_many(machine, [data or {}], ids=[id] if id is not None else None, version=version,
                                actor=actor)[0]

    def create_many(self, machine: str, datas: Sequence[Mapping[str, Any] | None], *,
                    ids: Sequence[str] | None = None, version: int | None = None, actor: str | None = None,
                    batch_size: int = 1000) -> list[StoredInstance]:
        """Create many instances, a batch per transaction (each batch all or nothing)."""
        model = self.machine(machine, version)
        if ids is not None and len(ids) != len(datas):
            raise ValueError("give one id per data mapping")
        created: list[StoredInstance] = []
        for start in range(0, len(datas), batch_size):
            rows, states, audits, outbox, timers = [], [], [], [], []
            for offset, data in enumerate(datas[start:start + batch_size]):
                instance_id = ids[start + offset] if ids is not None else uuid.uuid4().hex
                now = self.clock.now()
                instance = model.start(data=dict(data or {}), clock=self.clock, session_id=instance_id)
                result = instance.initial_result
                assert result is not None
                snapshot = instance.snapshot()
                entered = {s: now for s in snapshot.configuration}
                rows.append(self._row(snapshot, instance_id, 1, now, now, entered))
                states.extend(self._state_rows(model, instance_id, snapshot.configuration, entered))
                audits.extend(self._audit_rows(instance_id, model, 1, result, actor, now, "(start)"))
                outbox.extend((instance_id, model.name, e.event, _dumps(e.data), now) for e in result.effects)
                timers.extend((instance_id, p.id, p.seq, p.event, p.due) for p in snapshot.pending_sends)
                created.append(StoredInstance(instance_id, model.name, model.version, snapshot.configuration,
                                              dict(snapshot.history), snapshot.data, snapshot.done, 1, now, now,
                                              entered, snapshot.pending_sends, snapshot))
            backend = self.backend
            try:
                with backend.transaction():
                    backend.executemany(f"INSERT INTO statechart_instances ({_COLUMNS}) VALUES "
                                        f"({', '.join('?' * 16)})", rows)
                    self._write_side_rows(states, audits, outbox, timers)
            except IntegrityError:
                duplicate = self._first_existing([row[0] for row in rows])
                raise DuplicateInstanceError(duplicate or "?") from None
        return created

    def _first_existing(self, ids: list[str]) -> str | None:
        for instance_id in ids:
            if self.backend.execute("SELECT 1 FROM statechart_instances WHERE id = ?", (instance_id,)).fetchone():
                return instance_id
        seen: set[str] = set()  # not stored yet: then the batch itself names an id twice
        for instance_id in ids:
            if instance_id in seen:
                return instance_id
            seen.add(instance_id)
        return None

    def _write_side_rows(self, states: list[tuple], audits: list[tuple], outbox: list[tuple],
                         timers: list[tuple]) -> None:
        backend = self.backend
        if states:
            backend.executemany("INSERT INTO statechart_instance_states (instance_id, state, atomic, entered_at) "
                                "VALUES (?, ?, ?, ?)", states)
        if audits:
            backend.executemany(
                "INSERT INTO statechart_audit (instance_id, machine, version, revision, event, data, transitions, "
                "configuration_before, configuration_after, from_states, to_states, actor, outcome, reason, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", audits)
        if outbox:
            backend.executemany("INSERT INTO statechart_outbox (instance_id, machine, event, data, created_at) "
                                "VALUES (?, ?, ?, ?, ?)", outbox)
        if timers:
            backend.executemany("INSERT INTO statechart_timers (instance_id, send_id, seq, event, due_at) "
                                "VALUES (?, ?, ?, ?, ?)", timers)

    # -- reading ---------------------------------------------------------------------------------------
    def load(self, instance_id: str) -> StoredInstance:
        row = self.backend.execute(f"SELECT {_COLUMNS} FROM statechart_instances WHERE id = ?",
                                   (instance_id,)).fetchone()
        if row is None:
            raise InstanceNotFoundError(instance_id)
        return self._stored(row)

    def instance(self, instance_id: str) -> Instance:
        """A live Instance restored from the stored snapshot (changes to it are not stored)."""
        stored = self.load(instance_id)
        return self._restore(self.machine(stored.machine, stored.version), stored)

    def list(self, machine: str | None = None, *, version: int | None = None, state: str | None = None,
             stuck_for: float | None = None, limit: int = 100, after: str | None = None) -> list[StoredInstance]:
        """Instances by machine, version, active state and how long they have been in it, by id
        (keyset pagination: pass the last id as ``after``)."""
        where, params = self._filters(machine, version, state, stuck_for)
        if after is not None:
            where.append("i.id > ?")
            params.append(after)
        sql = (f"SELECT {', '.join('i.' + c.strip() for c in _COLUMNS.split(','))} FROM statechart_instances i "
               f"{'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY i.id LIMIT ?")
        params.append(limit)
        return [self._stored(row) for row in self.backend.execute(sql, params).fetchall()]

    def count(self, machine: str | None = None, *, version: int | None = None, state: str | None = None,
              stuck_for: float | None = None) -> int:
        where, params = self._filters(machine, version, state, stuck_for)
        sql = f"SELECT COUNT(*) FROM statechart_instances i {'WHERE ' + ' AND '.join(where) if where else ''}"
        return int(self.backend.execute(sql, params).fetchone()[0])

    @staticmethod
    def _join(state: str | None, stuck_for: float | None) -> str:
        """Kept for callers of the old query shape: the state filters are an EXISTS now (a join
        listed an instance once per matching state: twice when two parallel leaves were stuck)."""
        return ""

    def _filters(self, machine: str | None, version: int | None, state: str | None,
                 stuck_for: float | None) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if machine is not None:
            where.append("i.machine = ?")
            params.append(machine)
        if version is not None:
            where.append("i.version = ?")
            params.append(version)
        if state is not None or stuck_for is not None:
            conditions = ["s.instance_id = i.id"]
            if state is not None:
                conditions.append("s.state = ?")
                params.append(state)
            else:  # stuck: some active non-final leaf has not changed for that long
                conditions.append("s.atomic = ?")
                params.append(True)
                finals = sorted({f"{name}:{state_id}" for (name, _), registered in self.machines.items()
                                 for state_id, body in registered.states.items() if body.kind is StateKind.FINAL})
                if finals:  # a region that finished waits for its siblings: that is not being stuck
                    conditions.append(f"(i.machine || ':' || s.state) NOT IN ({', '.join('?' * len(finals))})")
                    params.extend(finals)
            if stuck_for is not None:
                conditions.append("s.entered_at <= ?")
                params.append(self.clock.now() - stuck_for)
            where.append(f"EXISTS (SELECT 1 FROM statechart_instance_states s WHERE {' AND '.join(conditions)})")
        if stuck_for is not None:
            where.append("i.done = ?")
            params.append(False)
        return where, params

    def audit(self, instance_id: str) -> list[dict[str, Any]]:
        """The audit rows of one instance, oldest first."""
        rows = self.backend.execute(
            "SELECT id, revision, event, data, transitions, configuration_before, configuration_after, actor, "
            "outcome, reason, created_at, version FROM statechart_audit WHERE instance_id = ? ORDER BY id",
            (instance_id,)).fetchall()
        return [{"id": r[0], "revision": r[1], "event": r[2], "data": json.loads(r[3]) if r[3] else None,
                 "transitions": json.loads(r[4]), "configuration_before": json.loads(r[5]),
                 "configuration_after": json.loads(r[6]), "actor": r[7], "outcome": r[8], "reason": r[9],
                 "created_at": r[10], "version": r[11]} for r in rows]

    def delete(self, instance_id: str) -> None:
        """Remove an instance with its timers, state rows and idempotency keys (audit and outbox stay)."""
        backend = self.backend
        with backend.transaction():
            found = backend.execute("DELETE FROM statechart_instances WHERE id = ?", (instance_id,)).rowcount
            if not found:
                raise InstanceNotFoundError(instance_id)
            for table in ("statechart_instance_states", "statechart_timers", "statechart_idempotency"):
                backend.execute(f"DELETE FROM {table} WHERE instance_id = ?", (instance_id,))

    # -- sending ------------------------------------------------------------------------------------------
    def send(self, instance_id: str, event: str, data: Any = None, *, idempotency_key: str | None = None,
             actor: str | None = None) -> Receipt:
        """Run one macrostep on a stored instance and commit everything it did in one transaction.

        A concurrent writer never loses an update: a lost race is retried (up to ``retries``), then
        raises ConcurrencyError. Rejected events (strict mode, finished instances) raise after writing
        their audit row; the instance itself is unchanged.
        """
        # Reserved event names and payloads that are not JSON fail before anything is read or written.
        data = checked_payload(event, data)
        request_hash = _request_hash(event, data) if idempotency_key is not None else ""
        for attempt in range(1, self.retries + 1):
            try:
                # The first attempt reads optimistically; having lost a race once, a retry locks the
                # row as it reads it (PostgreSQL), so busy instances make progress instead of failing.
                return self._attempt(instance_id, lambda instance: instance._send(event, data), event, data,
                                     idempotency_key, request_hash, actor, lock=attempt > 1)
            except (_Conflict, RetryableError):
                if attempt < self.retries:
                    time.sleep(random.uniform(0, 0.002 * attempt))
        raise ConcurrencyError(instance_id, self.retries)

    def _attempt(self, instance_id: str, step: Any, event: str, data: Any, idempotency_key: str | None,
                 request_hash: str, actor: str | None, *, claimed_timer: tuple[str, int] | None = None,
                 lock: bool = False) -> Receipt:
        backend = self.backend
        rejected: StatechartError
        with backend.transaction():
            if idempotency_key is not None:
                replay = self._replay(instance_id, idempotency_key, request_hash)
                if replay is not None:
                    return replay
            row = backend.execute(f"SELECT {_COLUMNS} FROM statechart_instances WHERE id = ?"
                                  f"{backend.row_lock if lock else ''}", (instance_id,)).fetchone()
            if row is None:
                raise InstanceNotFoundError(instance_id)
            stored = self._stored(row)
            migrated_from = None
            if self.lazy_upgrade:
                stored, migrated_from = self._upgraded(stored)
            machine = self.machine(stored.machine, stored.version)
            instance = self._restore(machine, stored)
            now = self.clock.now()
            try:
                result = step(instance)
            except (UnknownEventError, UnhandledEventError, InstanceDoneError) as error:
                self._reject(stored, event, data, actor, str(error), now)  # committed: the audit keeps it
                rejected = error
            else:
                if result is None:  # a timer whose send is gone: just drop the timer row
                    if claimed_timer is not None:
                        backend.execute("DELETE FROM statechart_timers WHERE instance_id = ? AND send_id = ? "
                                        "AND seq = ?", (instance_id, *claimed_timer))
                    return Receipt(instance_id, event, "unhandled", stored.revision,
                                   tuple(sorted(stored.configuration)), tuple(sorted(stored.configuration)), (), (),
                                   stored.done)
                receipt = self._write(stored, machine, instance, result, actor, now, data, migrated_from)
                if idempotency_key is not None:
                    try:
                        backend.execute("INSERT INTO statechart_idempotency (instance_id, key, request_hash, "
                                        "response, created_at) VALUES (?, ?, ?, ?, ?)",
                                        (instance_id, idempotency_key, request_hash, _dumps(receipt.to_dict()), now))
                    except IntegrityError:  # the same key committed since we looked: roll back, replay it
                        raise _Conflict() from None
                return receipt
        raise rejected

    def _replay(self, instance_id: str, key: str, request_hash: str) -> Receipt | None:
        row = self.backend.execute("SELECT request_hash, response FROM statechart_idempotency "
                                   "WHERE instance_id = ? AND key = ?", (instance_id, key)).fetchone()
        if row is None:
            return None
        if row[0] != request_hash:
            from ..errors import IdempotencyConflictError

            raise IdempotencyConflictError(instance_id, key)
        return Receipt.from_dict(json.loads(row[1]), replayed=True)

    def _upgraded(self, stored: StoredInstance) -> tuple[StoredInstance, StoredInstance | None]:
        """Lazy upgrade: an instance below the latest registered version is moved through the same
        migration steps as the batch runner, inside the transaction of the event that touched it."""
        from ..migrate.chain import load_chain
        from ..migrate.runner import upgrade_snapshot

        latest = self.machine(stored.machine).version
        if stored.version >= latest:
            return stored, None
        steps = self._chains.get(stored.machine)
        if steps is None:
            steps = self._chains[stored.machine] = load_chain(stored.machine, self.migrations)
        snapshot = upgrade_snapshot(self, stored.snapshot, steps, latest, stored.id)
        entered = {s: stored.state_entered.get(s, self.clock.now()) for s in snapshot.configuration}
        upgraded = attrs.evolve(stored, version=snapshot.version, configuration=snapshot.configuration,
                                history=snapshot.history, data=snapshot.data, done=snapshot.done,
                                state_entered=entered, pending_sends=snapshot.pending_sends, snapshot=snapshot)
        return upgraded, stored

    def _write(self, stored: StoredInstance, machine: Machine, instance: Instance, result: SendResult,
               actor: str | None, now: float, data: Any, migrated_from: StoredInstance | None = None) -> Receipt:
        backend = self.backend
        snapshot = instance.snapshot()
        revision = stored.revision + 1
        entered_now = {line[6:] for line in result.trace if line.startswith("enter:")} & snapshot.configuration
        state_entered = {s: (now if s in entered_now else stored.state_entered.get(s, now))
                         for s in snapshot.configuration}
        row = self._row(snapshot, stored.id, revision, stored.created_at, now, state_entered)
        updated = backend.execute(
            "UPDATE statechart_instances SET version = ?, definition_hash = ?, configuration = ?, history = ?, "
            "data = ?, pending = ?, send_counter = ?, bound = ?, done = ?, revision = ?, updated_at = ?, "
            "state_entered = ? WHERE id = ? AND revision = ?",
            (row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9], row[10], revision, now, row[15],
             stored.id, stored.revision)).rowcount
        if updated != 1:
            raise _Conflict()
        if migrated_from is not None:
            self._write_migration_rows(migrated_from, stored, machine, revision, now)
        left = (stored.configuration - snapshot.configuration) | (entered_now & stored.configuration)
        if left:
            backend.executemany("DELETE FROM statechart_instance_states WHERE instance_id = ? AND state = ?",
                                [(stored.id, s) for s in left])
        states = self._state_rows(machine, stored.id, entered_now | (snapshot.configuration - stored.configuration),
                                  state_entered)
        audits = self._audit_rows(stored.id, machine, revision, result, actor, now, None, data)
        outbox = [(stored.id, machine.name, e.event, _dumps(e.data), now) for e in result.effects]
        gone = result.cancelled
        if gone:
            backend.executemany("DELETE FROM statechart_timers WHERE instance_id = ? AND send_id = ? AND seq = ?",
                                [(stored.id, p.id, p.seq) for p in gone])
        timers = [(stored.id, p.id, p.seq, p.event, p.due) for p in result.scheduled]
        self._write_side_rows(states, audits, outbox, timers)
        return Receipt(stored.id, result.event, "applied" if result.handled else "unhandled", revision,
                       tuple(sorted(result.configuration_before)), tuple(sorted(result.configuration_after)),
                       result.transitions, tuple({"event": e.event, "data": e.data} for e in result.effects),
                       result.done)

    def _write_migration_rows(self, old: StoredInstance, new: StoredInstance, machine: Machine, revision: int,
                              now: float) -> None:
        """The rows of a lazy upgrade: its audit row, and state and timer rows matching the upgraded
        instance (the event's own changes are then written on top of them)."""
        backend = self.backend
        before, after = sorted(old.configuration), sorted(new.configuration)
        backend.execute(
            "INSERT INTO statechart_audit (instance_id, machine, version, revision, event, data, transitions, "
            "configuration_before, configuration_after, from_states, to_states, actor, outcome, reason, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (new.id, new.machine, new.version, revision, f"(migrate v{old.version}->v{new.version})", "null", "[]",
             _dumps(before), _dumps(after), ",".join(before), ",".join(after), "lazy-upgrade", "migrated",
             f"v{old.version} -> v{new.version}", now))
        backend.execute("DELETE FROM statechart_instance_states WHERE instance_id = ?", (new.id,))
        backend.execute("DELETE FROM statechart_timers WHERE instance_id = ?", (new.id,))
        self._write_side_rows(self._state_rows(machine, new.id, new.configuration, new.state_entered), [], [],
                              [(new.id, p.id, p.seq, p.event, p.due) for p in new.pending_sends])

    def _reject(self, stored: StoredInstance, event: str, data: Any, actor: str | None, reason: str,
                now: float) -> None:
        configuration = _dumps(sorted(stored.configuration))
        leaves = ",".join(sorted(stored.configuration))
        self.backend.execute(
            "INSERT INTO statechart_audit (instance_id, machine, version, revision, event, data, transitions, "
            "configuration_before, configuration_after, from_states, to_states, actor, outcome, reason, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (stored.id, stored.machine, stored.version, stored.revision, event, _dumps(data), "[]", configuration,
             configuration, leaves, leaves, actor, "rejected", reason, now))

    # -- rows ------------------------------------------------------------------------------------------
    def _row(self, snapshot: Snapshot, instance_id: str, revision: int, created_at: float, updated_at: float,
             state_entered: Mapping[str, float]) -> tuple:
        pending = _dumps([[p.id, p.event, p.data, p.due, p.seq, p.internal_id] for p in snapshot.pending_sends]) \
            if snapshot.pending_sends else "[]"
        history = _dumps({k: sorted(v) for k, v in snapshot.history.items()}) if snapshot.history else "{}"
        return (instance_id, snapshot.machine, snapshot.version, snapshot.definition_hash,
                _states_text(snapshot.configuration), history,
                _dumps(snapshot.data), pending, snapshot.send_counter,
                _states_text(snapshot.bound_states) if snapshot.bound_states else "[]",
                snapshot.done, snapshot.session_id or instance_id, revision, created_at, updated_at,
                _dumps(dict(state_entered)))

    def _stored(self, row: Sequence[Any]) -> StoredInstance:
        """A row as a value, its field types checked (rows are data: a hand-edited or corrupted one
        must be refused by name, not misread); ``restore`` then checks it against the machine."""
        (instance_id, machine, version, definition_hash, configuration, history, data, pending, send_counter,
         bound, done, session_id, revision, created_at, updated_at, state_entered) = row
        try:
            configuration_set = frozenset(_strings(_loads(configuration), "configuration"))
            history_map = {k: frozenset(_strings(v, f"history {k!r}"))
                           for k, v in _mapping(_loads(history), "history").items()}
            data_map = _mapping(_loads(data), "data")
            pending_sends = tuple(_pending(p) for p in _list(_loads(pending), "pending"))
            bound_set = frozenset(_strings(_loads(bound), "bound"))
            entered = _mapping(_loads(state_entered), "state_entered")
        except (ValueError, TypeError, RecursionError) as error:
            reason = "a JSON column is nested too deeply" if isinstance(error, RecursionError) else str(error)
            raise IllegalSnapshotError([f"the stored row is malformed: {reason}"], machine=str(machine),
                                       instance_id=str(instance_id)) from None
        problems = []
        if done not in (0, 1) or type(done) not in (int, bool):  # SQLite stores booleans as 0 and 1
            problems.append(f"done is {done!r}; it must be true or false")
        if type(send_counter) is not int:
            problems.append(f"send_counter is {send_counter!r}; it must be a whole number")
        if problems:
            raise IllegalSnapshotError(problems, machine=str(machine), instance_id=str(instance_id))
        snapshot = Snapshot(machine, version, definition_hash, configuration_set, history_map, data_map,
                            bool(done), session_id, pending_sends, (), send_counter, bound_set)
        return StoredInstance(instance_id, machine, version, configuration_set, history_map, data_map, bool(done),
                              revision, created_at, updated_at, entered, pending_sends, snapshot)

    def _restore(self, machine: Machine, stored: StoredInstance) -> Instance:
        """``machine.restore`` of a stored row; an illegal one is refused naming the instance."""
        try:
            return machine.restore(stored.snapshot, clock=self.clock, strict=self.strict)
        except IllegalSnapshotError as error:
            raise IllegalSnapshotError(error.problems, machine=error.machine, instance_id=stored.id) from None

    @staticmethod
    def _state_rows(machine: Machine, instance_id: str, states: Iterable[str],
                    entered: Mapping[str, float]) -> list[tuple]:
        model_states = machine.model.states
        return [(instance_id, s, model_states[s].is_atomic, entered[s]) for s in states if s != ROOT]

    @staticmethod
    def _audit_rows(instance_id: str, machine: Machine, revision: int, result: SendResult, actor: str | None,
                    now: float, label: str | None, data: Any = None) -> list[tuple]:
        rows = []
        for index, macrostep in enumerate(result.macrosteps):
            event = label if label is not None else (
                macrostep.event.name if macrostep.event is not None else result.event)
            before, after = macrostep.configuration_before, macrostep.configuration_after
            if macrostep.event is not None:  # the event as delivered: a fired timer's data included
                payload = macrostep.event.data
            else:
                payload = data if index == 0 else None
            handled = macrostep.handled or label is not None
            rows.append((instance_id, machine.name, machine.version, revision, event,
                         "null" if payload is None else _dumps(payload), _transitions_text(macrostep.transitions),
                         _states_text(before), _states_text(after), _leaves_text(machine, before),
                         _leaves_text(machine, after), actor, "applied" if handled else "unhandled", None, now))
        return rows

    # -- timers ----------------------------------------------------------------------------------------
    def due_timers(self, limit: int = 100) -> list[tuple[str, str, int, str, float]]:
        """Timers due now: (instance id, send id, seq, event, due time), earliest first."""
        return [tuple(r) for r in self.backend.execute(  # type: ignore[misc]
            "SELECT instance_id, send_id, seq, event, due_at FROM statechart_timers WHERE due_at <= ? "
            "ORDER BY due_at, instance_id, seq LIMIT ?", (self.clock.now(), limit)).fetchall()]

    def fire_due(self, limit: int = 100, *, actor: str = "timer") -> list[Receipt]:
        """Fire up to ``limit`` due timers, each in its own transaction through the same atomic step as
        ``send``. Several workers may call this concurrently on PostgreSQL: a timer is claimed together
        with its instance's row with ``FOR UPDATE SKIP LOCKED``, so none fires twice, and a worker never
        waits for a sender (or another worker) that holds the instance."""
        receipts = []
        for _ in range(limit):
            receipt = self._fire_one(actor)
            if receipt is None:
                break
            receipts.append(receipt)
        return receipts

    def _fire_one(self, actor: str) -> Receipt | None:
        backend = self.backend
        for attempt in range(1, self.retries + 1):
            try:
                with backend.transaction():
                    row = backend.execute(
                        "SELECT t.instance_id, t.send_id, t.seq, t.event FROM statechart_timers t "
                        "JOIN statechart_instances i ON i.id = t.instance_id WHERE t.due_at <= ? "
                        f"ORDER BY t.due_at, t.instance_id, t.seq LIMIT 1{backend.lock_suffix}",
                        (self.clock.now(),)).fetchone()
                    if row is None:
                        return None
                    instance_id, send_id, seq, event = row
                    try:
                        return self._attempt(instance_id, lambda instance: instance.fire(send_id, seq), event, None,
                                             None, "", actor, claimed_timer=(send_id, seq))
                    except InstanceNotFoundError:
                        backend.execute("DELETE FROM statechart_timers WHERE instance_id = ?", (instance_id,))
                        return None
                    except (MachineNotLoadedError, DefinitionMismatchError, EventlessLoopError, MigrationError,
                            SnapshotFormatError) as error:
                        # This worker cannot run this instance (say, its version is not registered here):
                        # push the timer back and record why, so the timers due after it still fire.
                        return self._postpone(instance_id, send_id, seq, event, str(error), actor)
            except (_Conflict, RetryableError):
                time.sleep(random.uniform(0, 0.002 * attempt))
        return None

    def _postpone(self, instance_id: str, send_id: str, seq: int, event: str, reason: str, actor: str) -> Receipt:
        now = self.clock.now()
        self.backend.execute("UPDATE statechart_timers SET due_at = ? WHERE instance_id = ? AND send_id = ? AND seq = ?",
                             (now + self.timer_retry_delay, instance_id, send_id, seq))
        try:
            stored = self.load(instance_id)
        except IllegalSnapshotError:  # a row this worker cannot even read: the timer waits, the reason is kept
            self.backend.execute(
                "INSERT INTO statechart_audit (instance_id, machine, version, revision, event, data, transitions, "
                "configuration_before, configuration_after, from_states, to_states, actor, outcome, reason, "
                "created_at) SELECT id, machine, version, revision, ?, 'null', '[]', '[]', '[]', '', '', ?, "
                "'rejected', ?, ? FROM statechart_instances WHERE id = ?",
                (event, actor, f"timer postponed by {self.timer_retry_delay:g}s: {reason}", now, instance_id))
            return Receipt(instance_id, event, "postponed", -1, (), (), (), (), False)
        self._reject(stored, event, None, actor, f"timer postponed by {self.timer_retry_delay:g}s: {reason}", now)
        configuration = tuple(sorted(stored.configuration))
        return Receipt(instance_id, event, "postponed", stored.revision, configuration, configuration, (), (),
                       stored.done)

    def run_worker(self, *, poll_interval: float = 1.0, batch: int = 100, stop: Any = None,
                   max_idle_polls: int | None = None) -> int:
        """Fire due timers until ``stop`` (a threading.Event) is set; returns how many fired."""
        fired = idle = 0
        while stop is None or not stop.is_set():
            receipts = self.fire_due(batch)
            fired += len(receipts)
            if receipts:
                idle = 0
                continue
            idle += 1
            if max_idle_polls is not None and idle >= max_idle_polls:
                break
            self.purge_idempotency_keys()
            if stop is not None:
                stop.wait(poll_interval)
            else:
                time.sleep(poll_interval)
        return fired

    def purge_idempotency_keys(self, older_than: float | None = None) -> int:
        """Forget idempotency keys older than the retention (seconds); returns how many went."""
        cutoff = self.clock.now() - (self.idempotency_retention if older_than is None else older_than)
        with self.backend.transaction():
            return self.backend.execute("DELETE FROM statechart_idempotency WHERE created_at < ?", (cutoff,)).rowcount


def _request_hash(event: str, data: Any) -> str:
    return hashlib.sha256(_dumps([event, data]).encode()).hexdigest()


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


_DECODE = json.JSONDecoder(parse_constant=_refuse_constant).decode


def _loads(text: Any) -> Any:
    """A JSON column of a row: NaN and Infinity refused (Python's parser accepts them)."""
    if text == "[]":  # most rows have no history, timers or bound states
        return []
    if text == "{}":
        return {}
    if type(text) is not str:
        raise TypeError(f"expected JSON text, got {type(text).__name__}")
    return _DECODE(text)


def _strings(value: Any, what: str) -> list[str]:
    if type(value) is not list or not all(type(item) is str for item in value):
        raise ValueError(f"{what} must be a list of state ids")
    return value


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise ValueError(f"{what} must be a JSON object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if type(value) is not list:
        raise ValueError(f"{what} must be a JSON list")
    return value


def _pending(item: Any) -> PendingSend:
    if type(item) is not list or len(item) != 6:
        raise ValueError("a pending send must be [id, event, data, due, seq, internal_id]")
    return PendingSend(item[0], item[1], item[2], item[3], item[4], item[5])
