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
import logging
import random
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import attrs

from ..clock import Clock, SystemClock
from ..errors import (
    ConcurrencyError,
    DatabaseBusyError,
    DatabaseError,
    DefinitionMismatchError,
    IllegalSnapshotError,
    DuplicateInstanceError,
    InstanceDoneError,
    InstanceNotFoundError,
    LockNotAvailableError,
    MachineNotLoadedError,
    CorruptInstanceError,
    PayloadError,
    SerializationConflictError,
    StatechartError,
    StatementTimeoutError,
    StoreSchemaError,
    UnhandledEventError,
    UnknownEventError,
)
from ..instance import Instance, SendResult, checked_payload
from ..interpreter import PendingSend
from ..machine import Machine, load
from ..model import ROOT, StateKind
from ..snapshot import Snapshot
from .backends import BACKEND_OPTIONS, Backend, IntegrityError, open_backend
from .faults import backoff, retrying
from .inputs import (
    check_count,
    check_id,
    check_limit,
    check_optional_id,
    check_optional_seconds,
    check_optional_version,
)
from .quarantine import Failure, blocked_clause, clear_failure, record_failure
from .schema import SCHEMA_VERSION, UPGRADES, table_statements
from .upgrade import Upgrader

if TYPE_CHECKING:  # imported when used: most programs never read the outbox or the metrics
    from .metrics import Metrics
    from .outbox import Outbox

__all__ = ["Store", "StoredInstance", "Receipt", "PruneCounts", "encode_json", "DEFAULT_RETRIES", "DEFAULT_MAX_ATTEMPTS",
           "DEFAULT_RETRY_BACKOFF", "INSTANCE_COLUMNS", "dump_json"]

DEFAULT_RETRIES = 10
_log = logging.getLogger("statechart.store")
#: Attempts before failing work of one instance (a timer, a publish, a migration) is parked.
DEFAULT_MAX_ATTEMPTS = 5
#: Seconds before the first retry of failed work; each further failure doubles it (at most an hour).
DEFAULT_RETRY_BACKOFF = 30.0
#: What one instance's work may raise without it being the store's fault: it is quarantined (recorded,
#: retried with backoff, then parked) and the worker goes on with the other instances. Driver errors
#: (a lost connection) are not in here: they stop the worker, which is right.
INSTANCE_FAULTS: tuple[type[BaseException], ...] = (StatechartError, ValueError, TypeError, KeyError, IndexError,
                                                    AttributeError, ArithmeticError, RecursionError)
#: Transient failures that come after waiting out a configured timeout.
_WAITED = (DatabaseBusyError, LockNotAvailableError, StatementTimeoutError)
#: Key of the PostgreSQL advisory lock that serializes schema creation and upgrades.
_SCHEMA_LOCK = 0x5743_4854  # "SCHT"
#: The columns of ``statechart_instances`` in the order :meth:`Store.decode_row` reads them.
INSTANCE_COLUMNS = ("id, machine, version, definition_hash, configuration, history, data, pending, send_counter, "
                    "bound, done, session_id, revision, created_at, updated_at, state_entered")


_log = logging.getLogger("statechart.store")
#: The compact JSON of every column, without :func:`dump_json`'s checks: for values the store and
#: the runner built themselves (state ids, entry times, pending sends already checked).
encode_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_ENCODE = encode_json


def dump_json(value: Any) -> str:
    """``value`` as the compact JSON text every JSON column holds; :class:`PayloadError` (naming why)
    when no database could store it (NaN, a lone surrogate, data nested too deeply)."""
    try:
        text = _ENCODE(value)
        if not text.isascii():
            text.encode("utf-8")  # a lone surrogate ("\ud800") is no text either database can store
        return text
    except UnicodeEncodeError as error:
        raise PayloadError(f"cannot store {type(value).__name__} value: it holds a string that is not valid "
                           f"Unicode ({error.reason} at position {error.start})") from None
    except RecursionError:
        raise PayloadError(f"cannot store {type(value).__name__} value as JSON: it is nested too deeply") from None
    except (TypeError, ValueError) as error:
        raise PayloadError(f"cannot store {type(value).__name__} value as JSON: {error}") from None


_dumps = dump_json


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
    #: "applied" | "unhandled" | "postponed" (a timer this worker could not fire) | "failed" (a timer whose
    #: step raised: quarantined, see ``Store.failures``); rejected events raise.
    outcome: str
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
                 idempotency_retention: float = 7 * 86400, strict: bool = False, upgrader: Upgrader | None = None,
                 timer_retry_delay: float = 60.0,
                 max_attempts: int = DEFAULT_MAX_ATTEMPTS, retry_backoff: float = DEFAULT_RETRY_BACKOFF) -> None:
        if retries < 1:
            raise ValueError(f"retries must be at least 1 (one attempt), not {retries}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
        if not retry_backoff >= 0:
            raise ValueError(f"retry_backoff must be a number of seconds >= 0, not {retry_backoff}")
        self.backend = backend
        self.clock = clock or SystemClock()
        self.retries = retries
        self.idempotency_retention = idempotency_retention
        self.strict = strict
        #: Upgrades an instance below the latest registered version when an event reaches it (``None``:
        #: no lazy upgrades). ``statechart.migrate.upgrader.ChainUpgrader("migrations")`` walks the steps
        #: of ``migrations/<machine>/``; the eager alternative is ``statechart migrate``.
        self.upgrader = upgrader
        #: How long a timer this process cannot fire (its machine version is not registered here) waits
        #: before it is tried again; it never blocks the timers due after it.
        self.timer_retry_delay = timer_retry_delay
        #: Failing work of one instance is retried after ``retry_backoff`` seconds, doubling each time,
        #: and parked after ``max_attempts`` attempts (see ``store/quarantine.py``).
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        self.machines: dict[tuple[str, int], Machine] = {}
        retrying(self._ensure_schema, self.retries, what=f"opening the store at {self.backend.url}")

    @classmethod
    def open(cls, url: str, **options: Any) -> "Store":
        """Open (and create or upgrade the schema of) the store at ``url``.

        ``busy_timeout`` (SQLite), ``statement_timeout`` and ``lock_timeout`` (PostgreSQL), as
        seconds or a duration such as ``"500ms"``, override the same options of the URL query.
        """
        removed = sorted({"lazy_upgrade", "migrations"} & set(options))
        if removed:  # the store no longer knows of migration folders: it sits below statechart.migrate
            raise TypeError(f"Store.open() no longer takes {' or '.join(n + '=' for n in removed)}; for lazy upgrades pass "
                            "upgrader=statechart.migrate.upgrader.ChainUpgrader(\"migrations\")")
        backend_names = {name for names in BACKEND_OPTIONS.values() for name in names}
        backend = open_backend(url, **{name: options.pop(name) for name in list(options) if name in backend_names})
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
    def outbox(self) -> Outbox:
        """Unpublished emitted events in commit order, marking them published, and a relay loop."""
        from .outbox import Outbox

        return Outbox(self)

    def metrics(self, **options: Any) -> Metrics:
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
        check_id(name, "machine name")
        check_optional_version(version)
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
        check_optional_id(actor, "actor")
        check_count(batch_size, "batch size")
        if ids is not None:
            for instance_id in ids:
                check_id(instance_id)
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
                rows.append(self.encode_row(snapshot, instance_id, 1, now, now, entered))
                states.extend(self._state_rows(model, instance_id, snapshot.configuration, entered))
                audits.extend(self._audit_rows(instance_id, model, 1, result, actor, now, "(start)"))
                outbox.extend((instance_id, model.name, e.event, _dumps(e.data), now) for e in result.effects)
                timers.extend((instance_id, p.id, p.seq, p.event, p.due) for p in snapshot.pending_sends)
                created.append(StoredInstance(instance_id, model.name, model.version, snapshot.configuration,
                                              dict(snapshot.history), snapshot.data, snapshot.done, 1, now, now,
                                              entered, snapshot.pending_sends, snapshot))
            backend = self.backend

            def write_batch() -> None:
                with backend.transaction():
                    backend.executemany(f"INSERT INTO statechart_instances ({INSTANCE_COLUMNS}) VALUES "
                                        f"({', '.join('?' * 16)})", rows)
                    self.write_side_rows(states, audits, outbox, timers)

            try:  # a transient failure rolled the batch back: write it again
                retrying(write_batch, self.retries, what="creating instances", backend=backend)
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

    def write_side_rows(self, states: list[tuple], audits: list[tuple], outbox: list[tuple],
                        timers: list[tuple]) -> None:
        """Insert the rows that go with instance rows (state, audit, outbox and timer rows, as tuples
        in the column order of their tables), inside the caller's transaction; the migration runner
        writes its batches through this too, so each table has one writer."""
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
        check_id(instance_id)
        row = self.backend.execute(f"SELECT {INSTANCE_COLUMNS} FROM statechart_instances WHERE id = ?",
                                   (instance_id,)).fetchone()
        if row is None:
            raise InstanceNotFoundError(instance_id)
        return self.decode_row(row)

    def instance(self, instance_id: str) -> Instance:
        """A live Instance restored from the stored snapshot (changes to it are not stored)."""
        stored = self.load(instance_id)
        return self._restore(self.machine(stored.machine, stored.version), stored)

    def list(self, machine: str | None = None, *, version: int | None = None, state: str | None = None,
             stuck_for: float | None = None, limit: int = 100, after: str | None = None,
             failed: bool = False, corrupt: list[CorruptInstanceError] | None = None) -> list[StoredInstance]:
        """Instances by machine, version, active state and how long they have been in it, by id
        (keyset pagination: pass the last id as ``after``); ``failed=True``: only instances with
        recorded failures (see :meth:`failures`).

        A row that cannot be decoded is left out of the list, logged, and appended to ``corrupt`` (a
        list you pass) as a :class:`CorruptInstanceError` naming it; it still counts toward ``limit``,
        so paging on goes past it."""
        check_limit(limit)
        check_optional_id(after, "cursor id (after)")
        where, params = self._filters(machine, version, state, stuck_for)
        if failed:
            where.append("EXISTS (SELECT 1 FROM statechart_failures f WHERE f.instance_id = i.id)")
        if after is not None:
            where.append("i.id > ?")
            params.append(after)
        columns = ", ".join("i." + c.strip() for c in INSTANCE_COLUMNS.split(","))
        sql = (f"SELECT {columns} FROM statechart_instances i "
               f"{'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY i.id LIMIT ?")
        params.append(limit)
        found = []
        for row in self.backend.execute(sql, params).fetchall():
            try:
                found.append(self.decode_row(row))
            except CorruptInstanceError as error:  # one bad row never hides the others
                _log.warning("%s", error)
                if corrupt is not None:
                    corrupt.append(error)
        return found

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
        check_optional_id(machine, "machine name")
        check_optional_version(version)
        check_optional_id(state, "state id")
        check_optional_seconds(stuck_for, "stuck_for")
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
        check_id(instance_id)
        rows = self.backend.execute(
            "SELECT id, revision, event, data, transitions, configuration_before, configuration_after, actor, "
            "outcome, reason, created_at, version FROM statechart_audit WHERE instance_id = ? ORDER BY id",
            (instance_id,)).fetchall()
        return [{"id": r[0], "revision": r[1], "event": r[2], "data": json.loads(r[3]) if r[3] else None,
                 "transitions": json.loads(r[4]), "configuration_before": json.loads(r[5]),
                 "configuration_after": json.loads(r[6]), "actor": r[7], "outcome": r[8], "reason": r[9],
                 "created_at": r[10], "version": r[11]} for r in rows]

    def delete(self, instance_id: str) -> None:
        """Remove an instance with its timers, state rows, idempotency keys and timer or migration
        failures (its audit rows and outbox events stay)."""
        check_id(instance_id)
        backend = self.backend

        def delete_rows() -> None:
            with backend.transaction():
                found = backend.execute("DELETE FROM statechart_instances WHERE id = ?", (instance_id,)).rowcount
                if not found:
                    raise InstanceNotFoundError(instance_id)
                for table in ("statechart_instance_states", "statechart_timers", "statechart_idempotency"):
                    backend.execute(f"DELETE FROM {table} WHERE instance_id = ?", (instance_id,))
                # Its timer and migration failures went with it; its outbox events stay, and so does the
                # quarantine of their publishing.
                backend.execute("DELETE FROM statechart_failures WHERE instance_id = ? AND kind <> 'outbox'",
                                (instance_id,))

        retrying(delete_rows, self.retries, what=f"deleting {instance_id}", backend=backend)

    # -- sending ------------------------------------------------------------------------------------------
    def send(self, instance_id: str, event: str, data: Any = None, *, idempotency_key: str | None = None,
             actor: str | None = None) -> Receipt:
        """Run one macrostep on a stored instance and commit everything it did in one transaction.

        A concurrent writer never loses an update: a lost race is retried (up to ``retries``), then
        raises ConcurrencyError. Rejected events (strict mode, finished instances) raise after writing
        their audit row; the instance itself is unchanged.
        """
        check_id(instance_id)
        check_id(event, "event name")
        check_optional_id(idempotency_key, "idempotency key")
        check_optional_id(actor, "actor")
        # Reserved event names and payloads that are not JSON fail before anything is read or written.
        data = checked_payload(event, data)
        request_hash = _request_hash(event, data) if idempotency_key is not None else ""
        transient: DatabaseError | None = None
        waited = 0
        for attempt in range(1, self.retries + 1):
            try:
                # The first attempt reads optimistically; having lost a race once, a retry locks the
                # row as it reads it (PostgreSQL), so busy instances make progress instead of failing.
                return self._attempt(instance_id, lambda instance: instance._send(event, data), event, data,
                                     idempotency_key, request_hash, actor, lock=attempt > 1)
            except (_Conflict, SerializationConflictError):
                transient = None
                if attempt < self.retries:
                    time.sleep(random.uniform(0, 0.002 * attempt))
            except DatabaseError as error:
                # A transient failure (a dropped connection, a timeout, a busy database) rolled the
                # transaction back: nothing was written, so the step runs again. A connection lost
                # during COMMIT may have committed: only a keyed send can tell (its retry replays).
                if not (error.retryable or (error.commit_unknown and idempotency_key is not None)):
                    raise
                # A failure that already waited out a timeout the host chose (busy_timeout,
                # lock_timeout, statement_timeout) is tried once more, not `retries` times: a call
                # takes about twice that timeout at most, not ten times.
                waited += isinstance(error, _WAITED)
                if waited >= 2:
                    raise
                transient = error
                if attempt < self.retries:
                    time.sleep(backoff(attempt))
        if transient is not None:
            raise transient
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
            row = backend.execute(f"SELECT {INSTANCE_COLUMNS} FROM statechart_instances WHERE id = ?"
                                  f"{backend.row_lock if lock else ''}", (instance_id,)).fetchone()
            if row is None:
                raise InstanceNotFoundError(instance_id)
            stored = self.decode_row(row)
            migrated_from = None
            if self.upgrader is not None:
                stored, migrated_from = self._upgraded(self.upgrader, stored)
            machine = self.machine(stored.machine, stored.version)
            instance = self._restore(machine, stored)
            now = self.clock.now()
            try:
                result = step(instance)
            except (UnknownEventError, UnhandledEventError, InstanceDoneError) as error:
                # Committed: the audit keeps it, at the version and revision of the row as it stays (a
                # lazy upgrade is written only with an event that is applied).
                self._reject(migrated_from or stored, event, data, actor, str(error), now)
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

    def _upgraded(self, upgrader: Upgrader, stored: StoredInstance) -> tuple[StoredInstance, StoredInstance | None]:
        """Lazy upgrade: an instance below the latest registered version is moved by the upgrader
        (the same migration steps as the batch runner), inside the transaction of the event that
        touched it."""
        latest = self.machine(stored.machine).version
        if stored.version >= latest:
            return stored, None
        snapshot = upgrader.upgrade(self, stored.snapshot, latest, stored.id)
        entered = {s: stored.state_entered.get(s, self.clock.now()) for s in snapshot.configuration}
        upgraded = attrs.evolve(stored, version=snapshot.version, configuration=snapshot.configuration,
                                history=snapshot.history, data=snapshot.data, done=snapshot.done,
                                state_entered=entered, pending_sends=snapshot.pending_sends, snapshot=snapshot)
        return upgraded, stored

    def _write(self, stored: StoredInstance, machine: Machine, instance: Instance, result: SendResult,
               actor: str | None, now: float, data: Any, migrated_from: StoredInstance | None = None) -> Receipt:
        backend = self.backend
        snapshot = instance.snapshot()
        # A lazy upgrade is a step of its own, as in a migration run: its audit row takes the next
        # revision, the event's rows the one after it.
        revision = stored.revision + (2 if migrated_from is not None else 1)
        entered_now = {line[6:] for line in result.trace if line.startswith("enter:")} & snapshot.configuration
        state_entered = {s: (now if s in entered_now else stored.state_entered.get(s, now))
                         for s in snapshot.configuration}
        row = self.encode_row(snapshot, stored.id, revision, stored.created_at, now, state_entered)
        updated = backend.execute(
            "UPDATE statechart_instances SET version = ?, definition_hash = ?, configuration = ?, history = ?, "
            "data = ?, pending = ?, send_counter = ?, bound = ?, done = ?, revision = ?, updated_at = ?, "
            "state_entered = ? WHERE id = ? AND revision = ?",
            (row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9], row[10], revision, now, row[15],
             stored.id, stored.revision)).rowcount
        if updated != 1:
            raise _Conflict()
        if migrated_from is not None:
            self._write_migration_rows(migrated_from, stored, machine, revision - 1, now)
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
        self.write_side_rows(states, audits, outbox, timers)
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
        self.write_side_rows(self._state_rows(machine, new.id, new.configuration, new.state_entered), [], [],
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
    def encode_row(self, snapshot: Snapshot, instance_id: str, revision: int, created_at: float,
                   updated_at: float, state_entered: Mapping[str, float]) -> tuple:
        """The ``statechart_instances`` row of a snapshot, in :data:`INSTANCE_COLUMNS` order
        (the inverse of :meth:`decode_row`); :class:`PayloadError` when its data cannot be stored."""
        pending = _dumps([[p.id, p.event, p.data, p.due, p.seq, p.internal_id] for p in snapshot.pending_sends]) \
            if snapshot.pending_sends else "[]"
        history = _dumps({k: sorted(v) for k, v in snapshot.history.items()}) if snapshot.history else "{}"
        return (instance_id, snapshot.machine, snapshot.version, snapshot.definition_hash,
                _states_text(snapshot.configuration), history,
                _dumps(snapshot.data), pending, snapshot.send_counter,
                _states_text(snapshot.bound_states) if snapshot.bound_states else "[]",
                snapshot.done, snapshot.session_id or instance_id, revision, created_at, updated_at,
                _dumps(dict(state_entered)))

    def decode_row(self, row: Sequence[Any]) -> StoredInstance:
        """The instance of one row; :class:`CorruptInstanceError` (naming it) when the row cannot be
        decoded or its fields have the wrong types (rows are data: a hand-edited or corrupted one is
        refused by name, not misread); ``restore`` then checks it against the machine."""
        try:
            return self._decode(row)
        except IllegalSnapshotError as error:
            raise CorruptInstanceError(str(row[0]), "; ".join(error.problems)[:300], machine=error.machine) from None
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as error:
            detail = f"{type(error).__name__}: {error}"
            raise CorruptInstanceError(str(row[0]), detail[:300]) from None

    def _decode(self, row: Sequence[Any]) -> StoredInstance:
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
        check_limit(limit)
        return [tuple(r) for r in self.backend.execute(  # type: ignore[misc]
            "SELECT instance_id, send_id, seq, event, due_at FROM statechart_timers WHERE due_at <= ? "
            "ORDER BY due_at, instance_id, seq LIMIT ?", (self.clock.now(), limit)).fetchall()]

    def fire_due(self, limit: int = 100, *, actor: str = "timer") -> list[Receipt]:
        """Fire up to ``limit`` due timers, each in its own transaction through the same atomic step as
        ``send``. Several workers may call this concurrently on PostgreSQL: a timer is claimed together
        with its instance's row with ``FOR UPDATE SKIP LOCKED``, so none fires twice, and a worker never
        waits for a sender (or another worker) that holds the instance."""
        check_limit(limit)
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
            claimed: tuple[str, str, int, str] | None = None
            try:
                with backend.transaction():
                    now = self.clock.now()
                    row = backend.execute(
                        "SELECT t.instance_id, t.send_id, t.seq, t.event, EXISTS (SELECT 1 FROM statechart_failures f "
                        "WHERE f.kind = 'timer' AND f.instance_id = t.instance_id) FROM statechart_timers t "
                        "JOIN statechart_instances i ON i.id = t.instance_id WHERE t.due_at <= ? "
                        f"AND NOT {blocked_clause('timer', 't.instance_id')} "
                        f"ORDER BY t.due_at, t.instance_id, t.seq LIMIT 1{backend.lock_suffix}",
                        (now, True, now)).fetchone()
                    if row is None:
                        return None
                    instance_id, send_id, seq, event, failed_before = row
                    claimed = (instance_id, send_id, seq, event)
                    try:
                        receipt = self._attempt(instance_id, lambda instance: instance.fire(send_id, seq), event,
                                                None, None, "", actor, claimed_timer=(send_id, seq))
                        if failed_before:  # it failed before and fired now: forget the failure
                            clear_failure(self, "timer", instance_id)
                        return receipt
                    except InstanceNotFoundError:
                        backend.execute("DELETE FROM statechart_timers WHERE instance_id = ?", (instance_id,))
                        return None
                    except (MachineNotLoadedError, DefinitionMismatchError) as error:
                        # This worker cannot run this instance (say, its version is not registered here; another
                        # worker may): push the timer back and record why, so the timers due after it still
                        # fire. Faults of the instance itself (a failing lazy upgrade, an eventless loop, data
                        # that cannot be stored) are quarantined below instead: counted, then parked.
                        return self._postpone(instance_id, send_id, seq, event, str(error), actor)
            except (_Conflict, SerializationConflictError):
                time.sleep(random.uniform(0, 0.002 * attempt))
            except DatabaseError as error:
                # Safe to run again even when the COMMIT's fate is unknown: a committed firing
                # deleted its timer row, so the retry claims the next timer instead.
                if not (error.retryable or error.commit_unknown) or attempt >= self.retries:
                    raise
                time.sleep(backoff(attempt))
            except INSTANCE_FAULTS as error:
                if claimed is None:
                    raise
                # The step was rolled back; record the failure in a transaction of its own.
                return self._quarantine_timer(*claimed, error, actor)
        return None

    def _quarantine_timer(self, instance_id: str, send_id: str, seq: int, event: str, error: BaseException,
                          actor: str) -> Receipt:
        """A timer whose step raised: an audit row with the error and a failure row with the next
        attempt (or parked), so the timers of other instances fire meanwhile."""
        backend = self.backend
        reason = _reason(error)
        with backend.transaction():
            still_due = backend.execute(f"SELECT 1 FROM statechart_timers WHERE instance_id = ? AND send_id = ? "
                                        f"AND seq = ?{backend.lock_suffix}", (instance_id, send_id, seq)).fetchone()
            now = self.clock.now()
            if still_due is not None:  # else another worker fired it (or failed it) meanwhile
                failure = record_failure(self, "timer", instance_id, f"{event} (send {send_id}#{seq})", reason, now)
                self.audit_failure(instance_id, event, actor, failure)
            head = backend.execute("SELECT revision, done FROM statechart_instances WHERE id = ?",
                                   (instance_id,)).fetchone()
        _log.warning("timer %s on instance %r failed: %s", event, instance_id, reason)
        revision, done = (int(head[0]), bool(head[1])) if head else (0, False)
        return Receipt(instance_id, event, "failed", revision, (), (), (), (), done)

    def audit_failure(self, instance_id: str, event: str, actor: str | None, failure: Failure) -> None:
        """An audit row (outcome ``failed``) for failed work; read from the raw row, which may be corrupt."""
        head = self.backend.execute("SELECT machine, version, revision, configuration FROM statechart_instances "
                                    "WHERE id = ?", (instance_id,)).fetchone()
        if head is None:
            return
        machine, version, revision, configuration = head
        try:
            states = sorted(json.loads(configuration))
        except (ValueError, TypeError):
            states = []
        text, leaves = _dumps(states), ",".join(states)
        when = ("parked: retry it with `statechart instances retry " + instance_id + "`" if failure.parked
                else f"next attempt at {failure.next_attempt_at:.3f}")
        self.backend.execute(
            "INSERT INTO statechart_audit (instance_id, machine, version, revision, event, data, transitions, "
            "configuration_before, configuration_after, from_states, to_states, actor, outcome, reason, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (instance_id, machine, version, revision, event, "null", "[]", text, text, leaves, leaves, actor,
             "failed", f"{failure.kind} failed (attempt {failure.attempts} of {self.max_attempts}; {when}): "
             f"{failure.error}", failure.last_failed_at))

    # -- quarantine --------------------------------------------------------------------------------------
    def failures(self, *, kind: str | None = None, parked: bool | None = None, instance_id: str | None = None,
                 limit: int = 100, after: str | None = None) -> list[Failure]:
        """Recorded failures (timers, outbox publishes, migrations), by instance id: ``parked=True``
        for the ones nothing retries any more until :meth:`retry`."""
        from .quarantine import failures

        return failures(self, kind=kind, parked=parked, instance_id=instance_id, limit=limit, after=after)

    def retry(self, instance_id: str, kind: str | None = None) -> int:
        """Forget the failures of one instance (of ``kind``, default all) so that its work is tried again
        at once, with a fresh attempt count; returns how many failure rows went."""
        with self.backend.transaction():
            if kind is None:
                return int(self.backend.execute("DELETE FROM statechart_failures WHERE instance_id = ?",
                                                (instance_id,)).rowcount)
            return int(self.backend.execute("DELETE FROM statechart_failures WHERE instance_id = ? AND kind = ?",
                                            (instance_id, kind)).rowcount)

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
        """Fire due timers until ``stop`` (a threading.Event) is set; returns how many fired.

        A transient database failure (the connection dropped, a timeout, a busy database) is
        logged and the worker waits ``poll_interval`` and carries on, connecting again if need be;
        any other error stops it."""
        fired = idle = 0
        while stop is None or not stop.is_set():
            try:
                receipts = self.fire_due(batch)
            except DatabaseError as error:
                if not (error.retryable or error.commit_unknown):
                    raise
                _log.warning("timer worker: %s; trying again in %gs", error, poll_interval)
                receipts = []
            fired += len(receipts)
            if receipts:
                idle = 0
                continue
            idle += 1
            if max_idle_polls is not None and idle >= max_idle_polls:
                break
            try:
                self.purge_idempotency_keys()
            except DatabaseError as error:
                if not error.retryable:
                    raise
                _log.warning("timer worker: purging idempotency keys failed: %s", error)
            if stop is not None:
                stop.wait(poll_interval)
            else:
                time.sleep(poll_interval)
        return fired

    def prune(self, *, audit_older_than: float | None = None, outbox_published_older_than: float | None = None,
              idempotency_older_than: float | None = None, batch_size: int = 1000) -> PruneCounts:
        """Delete audit rows, *published* outbox rows and idempotency keys older than the given ages
        (seconds; None leaves that table alone). Rows go in batches of ``batch_size``, each its own
        short transaction, so a large prune never holds locks for long and live traffic goes on;
        an unpublished outbox row is never deleted, however old. Returns the counts per table."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        ages = {"audit": audit_older_than, "outbox": outbox_published_older_than,
                "idempotency": idempotency_older_than}
        for name, age in ages.items():
            if age is not None and not age >= 0:
                raise ValueError(f"the age of {name} rows to prune must be seconds >= 0, not {age!r}")
        now = self.clock.now()
        counts: dict[str, int] = {}
        for name, age in ages.items():
            if age is None:
                continue
            table, key, condition = _PRUNABLE[name]
            deleted = 0
            while True:
                with self.backend.transaction():
                    gone = self.backend.execute(
                        f"DELETE FROM {table} WHERE ({key}) IN (SELECT {key} FROM {table} WHERE {condition} "
                        f"LIMIT ?)", (now - age, batch_size)).rowcount
                deleted += gone
                if gone < batch_size:
                    break
            counts[name] = deleted
        return PruneCounts(**counts)

    def purge_idempotency_keys(self, older_than: float | None = None) -> int:
        """Forget idempotency keys older than the retention (seconds); returns how many went."""
        cutoff = self.clock.now() - (self.idempotency_retention if older_than is None else older_than)

        def purge() -> int:
            with self.backend.transaction():
                return self.backend.execute("DELETE FROM statechart_idempotency WHERE created_at < ?",
                                            (cutoff,)).rowcount

        return retrying(purge, self.retries, what="purging idempotency keys", repeatable=True,
                        backend=self.backend)


@attrs.frozen
class PruneCounts:
    """Rows ``Store.prune`` deleted, per table."""

    audit: int = 0
    outbox: int = 0
    idempotency: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"audit": self.audit, "outbox": self.outbox, "idempotency": self.idempotency}


#: What prune deletes: (table, the rows' key, the condition on age).
_PRUNABLE = {
    "audit": ("statechart_audit", "id", "created_at < ?"),
    "outbox": ("statechart_outbox", "id", "published_at IS NOT NULL AND published_at < ?"),
    "idempotency": ("statechart_idempotency", "instance_id, key", "created_at < ?"),
}


def _reason(error: BaseException) -> str:
    """An error as one bounded line for a failure row (a 10k-deep value must not make a 10 MB reason)."""
    text = str(error) if isinstance(error, StatechartError) else f"{type(error).__name__}: {error}"
    return text if len(text) <= 1000 else text[:997] + "..."


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
