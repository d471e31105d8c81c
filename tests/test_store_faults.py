"""Faults of the database under the store (store/faults.py, store/backends.py, store/inputs.py):
driver errors as one vocabulary with ``retryable``, reconnecting after ``pg_terminate_backend``
(the API, the timer worker, the outbox relay and the migration runner carry on), timeouts,
SQLite busy and disk full, and bad inputs rejected identically on both backends.

The shared PostgreSQL server is never restarted here (other tests use it): a restart drops every
connection with SQLSTATE 57P01, which is exactly what ``pg_terminate_backend`` does to one.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statechart import Store, VirtualClock
from statechart.errors import (
    ConcurrencyError,
    ConnectionLostError,
    DatabaseBusyError,
    DatabaseCorruptError,
    DatabaseError,
    DiskFullError,
    LockNotAvailableError,
    PayloadError,
    SerializationConflictError,
    StatementTimeoutError,
    StoreError,
    StoreInputError,
    StoreURLError,
)
from statechart.migrate import runner
from statechart.store.faults import postgres_error, retrying, sqlite_error
from statechart.store.inputs import MAX_ID_LENGTH, MAX_LIMIT

from conftest import POSTGRES_URL
from machines import machine

ROOT = Path(__file__).resolve().parent.parent

COUNTER = """\
machine: counter
version: 1
initial: counting
data: {count: 0}
states:
  counting:
    on:
      BUMP: {actions: [{assign: {count: "count + 1"}}, {emit: {event: bumped, data: {count: "count"}}}]}
      STORE: {actions: [{assign: {blob: "event.data['blob']"}}]}
"""

NAP = """\
machine: nap
version: 1
initial: sleeping
states:
  sleeping: {after: {1s: awake}}
  awake: {type: final}
"""


@pytest.fixture
def store(store_url: str, clock: VirtualClock) -> Iterator[Store]:
    with Store.open(store_url, clock=clock) as opened:
        opened.register(machine(COUNTER), machine(NAP))
        yield opened


def terminate(store: Store) -> None:
    """``pg_terminate_backend`` the store's connection, and wait until the server has let it go."""
    pid = store.backend.connection.info.backend_pid
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 10
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            assert time.monotonic() < deadline, "the terminated backend did not go away"
            time.sleep(0.01)


def audit_count(store: Store, instance_id: str) -> int:
    return int(store.backend.execute("SELECT COUNT(*) FROM statechart_audit WHERE instance_id = ?",
                                     (instance_id,)).fetchone()[0])


# -- the vocabulary -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("sqlstate", "kind", "retryable"), [
    ("08006", ConnectionLostError, True),  # connection_failure
    ("08003", ConnectionLostError, True),  # connection_does_not_exist
    ("57P01", ConnectionLostError, True),  # admin_shutdown
    ("57P02", ConnectionLostError, True),  # crash_shutdown
    ("57P03", ConnectionLostError, True),  # cannot_connect_now
    ("57014", StatementTimeoutError, True),  # query_canceled
    ("55P03", LockNotAvailableError, True),  # lock_not_available
    ("40001", SerializationConflictError, True),  # serialization_failure
    ("40P01", SerializationConflictError, True),  # deadlock_detected
    ("53100", DiskFullError, False),  # disk_full
    ("22021", DatabaseError, False),  # character_not_in_repertoire
    ("42P01", DatabaseError, False),  # undefined_table
])
def test_postgres_errors_map_by_sqlstate(sqlstate: str, kind: type, retryable: bool) -> None:
    error = postgres_error(psycopg.errors.lookup(sqlstate)("the driver's\nmessage"), "postgresql://db")
    assert type(error) is kind
    assert error.retryable is retryable
    assert error.code == sqlstate
    assert isinstance(error, StoreError)
    message = str(error)
    assert "\n" not in message and "the driver's message" in message and "postgresql://db" in message
    assert message.endswith("retrying may help" if retryable else "retrying will not help until it is fixed")


SQLSTATE_CLASSES = sorted({cls for cls in vars(psycopg.errors).values()
                           if isinstance(cls, type) and issubclass(cls, psycopg.Error) and getattr(cls, "sqlstate", None)},
                          key=lambda cls: cls.sqlstate)


def test_every_psycopg_error_class_becomes_a_one_line_store_error() -> None:
    assert len(SQLSTATE_CLASSES) > 200
    for cls in SQLSTATE_CLASSES:
        error = postgres_error(cls("first line\nDETAIL: second line"), "db")
        assert isinstance(error, DatabaseError), cls
        assert error.code == cls.sqlstate and "\n" not in str(error)
        assert error.retryable == (cls.sqlstate[:2] in ("08", "40", "53") and cls.sqlstate != "53100"
                                   or cls.sqlstate in ("57P01", "57P02", "57P03", "57014", "55P03")), cls


def test_a_dead_connection_psycopg_reports_without_sqlstate_is_a_lost_connection() -> None:
    error = postgres_error(psycopg.OperationalError("the connection is closed"), "db")
    assert isinstance(error, ConnectionLostError) and error.retryable


def test_a_connection_lost_during_commit_is_not_retryable_because_it_may_have_committed() -> None:
    error = postgres_error(psycopg.errors.lookup("57P01")("terminating"), "db", commit_unknown=True)
    assert isinstance(error, ConnectionLostError)
    assert error.commit_unknown and not error.retryable
    assert "may have been committed" in str(error)


@pytest.mark.parametrize(("code", "name", "kind", "retryable"), [
    (5, "SQLITE_BUSY", DatabaseBusyError, True),
    (517, "SQLITE_BUSY_SNAPSHOT", DatabaseBusyError, True),
    (6, "SQLITE_LOCKED", DatabaseBusyError, True),
    (13, "SQLITE_FULL", DiskFullError, False),
    (11, "SQLITE_CORRUPT", DatabaseCorruptError, False),
    (10, "SQLITE_IOERR", DatabaseError, False),
])
def test_sqlite_errors_map_by_result_code(code: int, name: str, kind: type, retryable: bool) -> None:
    driver = sqlite3.OperationalError("database says no")
    driver.sqlite_errorcode, driver.sqlite_errorname = code, name  # type: ignore[attr-defined]
    error = sqlite_error(driver, "app.db")
    assert type(error) is kind and error.retryable is retryable
    assert "app.db" in str(error) and name in str(error)


@pytest.mark.parametrize("code", [14, 26])  # SQLITE_CANTOPEN, SQLITE_NOTADB
def test_sqlite_errors_about_the_file_itself_are_url_errors(code: int) -> None:
    driver = sqlite3.OperationalError("nope")
    driver.sqlite_errorcode = code  # type: ignore[attr-defined]
    assert isinstance(sqlite_error(driver, "x.db"), StoreURLError)


def test_retrying_retries_only_retryable_errors_and_raises_the_last() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionLostError("gone")
        return "ok"

    assert retrying(flaky, 5, what="test", sleep=lambda _: None) == "ok" and len(calls) == 3
    calls.clear()

    def always() -> None:
        calls.append(1)
        raise StatementTimeoutError("slow")

    with pytest.raises(StatementTimeoutError):
        retrying(always, 4, what="test", sleep=lambda _: None)
    assert len(calls) == 4
    calls.clear()

    def fatal() -> None:
        calls.append(1)
        raise DiskFullError("full")

    with pytest.raises(DiskFullError):
        retrying(fatal, 4, what="test", sleep=lambda _: None)
    assert len(calls) == 1


# -- bad URLs and options -------------------------------------------------------------------------------------
def test_a_directory_is_not_a_sqlite_store(tmp_path: Path) -> None:
    with pytest.raises(StoreURLError, match="is a directory, not a database file"):
        Store.open(f"sqlite:///{tmp_path}")


def test_a_file_that_is_not_a_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some notes, long enough to fill a SQLite header " * 4)
    with pytest.raises(StoreURLError, match="is not a SQLite database, so not a statechart store"):
        Store.open(f"sqlite:///{path}")
    assert path.read_text().startswith("just some notes")


@pytest.mark.parametrize(("url", "message"), [
    ("postgresql://%zz@127.0.0.1/test", "cannot use the PostgreSQL URL .*percent-encoded"),
    ("postgresql://postgres@127.0.0.1:5432/test?nonsense=1", "cannot use the PostgreSQL URL .*nonsense"),
    ("mysql://db/app", "unsupported store URL 'mysql://db/app'"),
    ("app.db", "unsupported store URL"),
    ("sqlite://", "no database file"),
    ("sqlite:///x.db?synchronous=sometimes", "synchronous='sometimes' is not one of"),
    ("sqlite:///x.db?busy_timeout=soon", "busy_timeout: 'soon' is not a duration"),
    ("sqlite:///x.db?busy_timeout=9999d", "busy_timeout='9999d' is too long"),
    ("sqlite:///x.db?lock_timeout=1s", "lock_timeout applies to PostgreSQL stores only"),
    ("sqlite:///x.db?cache=big", "unknown option 'cache'"),
    ("postgresql://postgres@127.0.0.1:5432/test?busy_timeout=1s", "busy_timeout applies to SQLite stores only"),
    ("postgresql://postgres@127.0.0.1:5432/test?statement_timeout=-1s", "statement_timeout: '-1s' is not a duration"),
])
def test_bad_store_urls_raise_a_clear_store_url_error(url: str, message: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreURLError, match=message) as raised:
        Store.open(url)
    assert "\n" not in str(raised.value) and not raised.value.retryable


def test_an_unreachable_server_is_a_retryable_connection_error() -> None:
    with pytest.raises(ConnectionLostError, match="cannot connect to the database") as raised:
        Store.open("postgresql://postgres@127.0.0.1:1/test?connect_timeout=2")
    assert raised.value.retryable


@pytest.mark.parametrize(("url", "message"), [
    ("postgresql://postgres@127.0.0.1:5432/no_such_database_here", 'database "no_such_database_here" does not exist'),
    ("postgresql://no_such_role@127.0.0.1:5432/test", 'role "no_such_role" does not exist'),
    ("postgresql://postgres@127.0.0.1:5432/test?options=-cno_such_setting%3D1",
     'unrecognized configuration parameter "no_such_setting"'),
])
def test_a_server_refusing_for_good_is_a_url_error_not_a_retryable_one(url: str, message: str) -> None:
    with pytest.raises(StoreURLError, match="refused the connection: ") as raised:
        Store.open(url)
    assert message in str(raised.value) and not raised.value.retryable


def test_a_password_is_not_shown_in_errors() -> None:
    with pytest.raises(ConnectionLostError) as raised:
        Store.open("postgresql://postgres:s3cret@127.0.0.1:1/test?connect_timeout=2")
    assert "s3cret" not in str(raised.value) and "***" in str(raised.value)


@pytest.mark.parametrize(("options", "message"), [
    ({"busy_timeout": -1}, "a duration cannot be negative"),
    ({"busy_timeout": "later"}, "'later' is not a duration"),
    ({"statement_timeout": "1s"}, "statement_timeout applies to PostgreSQL stores only"),
])
def test_bad_timeout_keywords_raise_store_url_errors(options: dict[str, Any], message: str, tmp_path: Path) -> None:
    with pytest.raises(StoreURLError, match=message):
        Store.open(f"sqlite:///{tmp_path / 'x.db'}", **options)


def test_busy_timeout_is_taken_from_the_url_and_a_keyword_wins(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}?busy_timeout=250ms"
    with Store.open(url) as store:
        assert store.backend.execute("PRAGMA busy_timeout").fetchone()[0] == 250
    with Store.open(url, busy_timeout=2) as store:
        assert store.backend.execute("PRAGMA busy_timeout").fetchone()[0] == 2000
    with Store.open(f"sqlite:///{tmp_path / 'x.db'}") as store:  # the default
        assert store.backend.execute("PRAGMA busy_timeout").fetchone()[0] == 30000


def test_postgres_timeouts_are_set_on_the_connection_and_again_after_a_reconnect(postgres_url: str) -> None:
    with Store.open(f"{postgres_url}&statement_timeout=5s&lock_timeout=250ms", lock_timeout="2s") as store:
        def settings_now() -> tuple[str, str]:
            row = store.backend.execute("SELECT current_setting('statement_timeout'), "
                                        "current_setting('lock_timeout')").fetchone()
            return row[0], row[1]

        assert settings_now() == ("5s", "2s")
        assert store.backend.execute("SELECT current_schema()").fetchone()[0].startswith("t_")  # libpq options kept
        terminate(store)
        assert settings_now() == ("5s", "2s")
        assert store.backend.reconnects == 1


def test_libpq_parameters_pass_through_exactly_as_written(postgres_url: str) -> None:
    with Store.open(f"{postgres_url}&application_name=a%20b+c&statement_timeout=3s") as store:
        row = store.backend.execute("SELECT current_setting('application_name'), "
                                    "current_setting('statement_timeout')").fetchone()
        assert tuple(row) == ("a b+c", "3s")


def test_a_closed_store_says_so_instead_of_reconnecting(store: Store) -> None:
    store.close()
    with pytest.raises(StoreError, match="was closed; open it again"):
        store.load("x")


# -- inputs ---------------------------------------------------------------------------------------------------
LONG = "x" * (MAX_ID_LENGTH + 1)
BAD_CALLS: list[tuple[str, Callable[[Store], Any], str]] = [
    ("int id", lambda s: s.load(7), "invalid instance id 7: must be a string, not int"),
    ("empty id", lambda s: s.load(""), "invalid instance id '': must not be empty"),
    ("NUL id", lambda s: s.load("a\x00b"), "invalid instance id 'a\\x00b': must not contain NUL bytes"),
    ("1 MB id", lambda s: s.send("i" * 1_000_000, "BUMP"), "characters long; at most 200 are allowed"),
    ("long id", lambda s: s.create("counter", id=LONG), "is 201 characters long"),
    ("NUL id on create", lambda s: s.create("counter", id="\x00"), "must not contain NUL bytes"),
    ("id in create_many", lambda s: s.create_many("counter", [{}, {}], ids=["ok", 2]), "must be a string, not int"),
    ("int key", lambda s: s.send("c1", "BUMP", idempotency_key=42), "invalid idempotency key 42: must be a string"),
    ("NUL key", lambda s: s.send("c1", "BUMP", idempotency_key="k\x00"), "idempotency key 'k\\x00': must not"),
    ("NUL event", lambda s: s.send("c1", "BU\x00MP"), "invalid event name"),
    ("surrogate id", lambda s: s.load("a\ud800"), "must be valid Unicode text (it holds a lone surrogate)"),
    ("surrogate key", lambda s: s.send("c1", "BUMP", idempotency_key="\udfff"), "invalid idempotency key"),
    ("NUL actor", lambda s: s.send("c1", "BUMP", actor="\x00"), "invalid actor"),
    ("negative limit", lambda s: s.list(limit=-1), "invalid limit -1: must be between 0 and 1,000,000"),
    ("huge limit", lambda s: s.list(limit=10**30), "must be between 0 and 1,000,000"),
    ("float limit", lambda s: s.list(limit=2.5), "invalid limit 2.5: must be an integer, not float"),
    ("bool limit", lambda s: s.list(limit=True), "must be an integer, not bool"),
    ("NUL cursor", lambda s: s.list(after="\x00"), "invalid cursor id"),
    ("zero version", lambda s: s.list(version=0), "invalid version 0: must be between 1 and 2147483647"),
    ("huge version", lambda s: s.count("counter", version=2**63), "must be between 1 and 2147483647"),
    ("str version", lambda s: s.count(version="1"), "must be an integer, not str"),
    ("NUL machine", lambda s: s.count("coun\x00ter"), "invalid machine name"),
    ("NUL state", lambda s: s.count(state="\x00"), "invalid state id"),
    ("negative stuck", lambda s: s.count(stuck_for=-5), "invalid stuck_for -5"),
    ("machine version", lambda s: s.machine("counter", -1), "invalid version -1"),
    ("create version", lambda s: s.create("counter", version=2**40), "invalid version 1099511627776"),
    ("due timers", lambda s: s.due_timers(-1), "invalid limit -1"),
    ("fire due", lambda s: s.fire_due(MAX_LIMIT + 1), "invalid limit 1000001"),
    ("audit", lambda s: s.audit(None), "must be a string, not NoneType"),
    ("delete", lambda s: s.delete(""), "must not be empty"),
    ("outbox limit", lambda s: s.outbox.pending(-1), "invalid limit -1"),
    ("outbox after", lambda s: s.outbox.pending(after_id=2**64), "invalid after id"),
    ("outbox ids", lambda s: s.outbox.events(["1"]), "invalid outbox id '1': must be an integer, not str"),
    ("outbox mark", lambda s: s.outbox.mark_published([-1]), "invalid outbox id -1"),
    ("relay batch", lambda s: s.outbox.relay(print, batch=0, max_idle_polls=1), "invalid batch 0"),
    ("migrate batch", lambda s: runner.migrate(s, "counter", batch_size=0), "invalid batch size 0"),
    ("migrate to", lambda s: runner.migrate(s, "counter", to_version=2**31), "invalid target version"),
]


@pytest.mark.parametrize(("call", "message"), [(c, m) for _, c, m in BAD_CALLS], ids=[n for n, _, _ in BAD_CALLS])
def test_bad_inputs_raise_the_same_store_input_error_on_both_backends(store: Store, call: Callable[[Store], Any],
                                                                      message: str) -> None:
    store.create("counter", id="c1")
    before = [tuple(r) for r in store.backend.execute("SELECT * FROM statechart_instances").fetchall()]
    audit_before = audit_count(store, "c1")
    with pytest.raises(StoreInputError) as raised:
        call(store)
    assert message in str(raised.value)
    assert isinstance(raised.value, ValueError) and not raised.value.retryable
    assert len(str(raised.value)) < 200  # a 1 MB value is not echoed back
    assert [tuple(r) for r in store.backend.execute("SELECT * FROM statechart_instances").fetchall()] == before
    assert audit_count(store, "c1") == audit_before


def test_limit_zero_lists_nothing_on_both_backends(store: Store) -> None:
    store.create("counter", id="c1")
    assert store.list(limit=0) == [] and store.outbox.pending(0) == [] and store.due_timers(0) == []


@pytest.mark.parametrize("data", [{"note": "\ud800"}, ["ok", {"k\udfff": 1}]])
def test_payloads_with_lone_surrogates_are_payload_errors_on_both_backends(store: Store, data: Any) -> None:
    store.create("counter", id="c1")
    with pytest.raises(PayloadError, match="not valid Unicode"):
        store.send("c1", "STORE", data)
    with pytest.raises(PayloadError, match="not valid Unicode"):
        store.create("counter", data if isinstance(data, dict) else {"x": data}, id="c2")
    assert [i.id for i in store.list()] == ["c1"] and store.load("c1").revision == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(instance_id=st.text(st.one_of(st.characters(codec=None, exclude_categories=()),
                                     st.sampled_from(["\x00", "\ud800", "é", "'", "%", "?", "\\"])),
                           min_size=0, max_size=MAX_ID_LENGTH + 5))
def test_any_text_id_is_either_refused_up_front_or_stored_and_read_back_exactly(store: Store,
                                                                                instance_id: str) -> None:
    valid = (0 < len(instance_id) <= MAX_ID_LENGTH and "\x00" not in instance_id
             and not any(0xD800 <= ord(c) <= 0xDFFF for c in instance_id))
    if not valid:
        with pytest.raises(StoreInputError):
            store.create("counter", id=instance_id)
        return
    store.create("counter", id=instance_id)
    try:
        assert store.load(instance_id).id == instance_id
        assert store.send(instance_id, "BUMP", idempotency_key=instance_id).revision == 2
        assert [i.id for i in store.list("counter", limit=MAX_LIMIT) if i.id == instance_id] == [instance_id]
    finally:
        store.delete(instance_id)


# -- reconnecting (PostgreSQL) ---------------------------------------------------------------------------------
@pytest.fixture
def pg_store(postgres_url: str, clock: VirtualClock) -> Iterator[Store]:
    with Store.open(postgres_url, clock=clock) as opened:
        opened.register(machine(COUNTER), machine(NAP))
        yield opened


def test_the_api_reads_and_writes_again_after_its_connection_was_terminated(pg_store: Store) -> None:
    pg_store.create("counter", id="c1")
    terminate(pg_store)
    assert pg_store.load("c1").revision == 1  # a read outside a transaction reconnects at once
    terminate(pg_store)
    assert pg_store.send("c1", "BUMP").revision == 2  # the write's first attempt fails, its retry reconnects
    terminate(pg_store)
    pg_store.create("counter", id="c2")  # create_many's transaction reconnects before it begins: no error
    assert [i.id for i in pg_store.list()] == ["c1", "c2"]
    assert pg_store.backend.reconnects >= 3


def test_a_transaction_whose_connection_dies_fails_retryably_and_leaves_nothing(pg_store: Store) -> None:
    pg_store.create("counter", id="c1")
    backend = pg_store.backend
    with pytest.raises(ConnectionLostError) as raised:
        with backend.transaction():
            backend.execute("UPDATE statechart_instances SET revision = 99 WHERE id = ?", ("c1",))
            terminate(pg_store)
            backend.execute("SELECT 1")
    assert raised.value.retryable and raised.value.code == "57P01"
    assert "connection to the database lost" in str(raised.value)
    assert pg_store.load("c1").revision == 1  # rolled back; and the store is usable again


def test_send_whose_connection_dies_mid_transaction_is_retried_and_applied_once(pg_store: Store,
                                                                                 monkeypatch: pytest.MonkeyPatch
                                                                                 ) -> None:
    pg_store.create("counter", id="c1")
    original = pg_store._write
    deaths: list[int] = []

    def dying_write(*args: Any, **kwargs: Any) -> Any:
        if len(deaths) < 2:  # the first two attempts lose their connection before writing
            deaths.append(1)
            terminate(pg_store)
        return original(*args, **kwargs)

    monkeypatch.setattr(pg_store, "_write", dying_write)
    receipt = pg_store.send("c1", "BUMP")
    assert len(deaths) == 2
    assert (receipt.revision, receipt.outcome) == (2, "applied")
    assert pg_store.load("c1").data["count"] == 1
    assert audit_count(pg_store, "c1") == 2  # (start) and one BUMP
    assert pg_store.outbox.count() == 1


def die_before_commit(store: Store, monkeypatch: pytest.MonkeyPatch, after_sql: str) -> list[int]:
    """Terminate the store's connection right after the statement starting with ``after_sql``, the
    last of the transaction, so that its COMMIT is what finds the connection dead (once)."""
    deaths: list[int] = []
    for name in ("execute", "executemany"):
        run = getattr(store.backend, name)

        def run_then_die(sql: str, params: Any = (), run: Any = run) -> Any:
            result = run(sql, params)
            if sql.startswith(after_sql) and not deaths:
                deaths.append(1)
                terminate(store)
            return result

        monkeypatch.setattr(store.backend, name, run_then_die)
    return deaths


def test_a_connection_lost_at_commit_is_reported_as_possibly_committed(pg_store: Store,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    pg_store.create("counter", id="c1")
    deaths = die_before_commit(pg_store, monkeypatch, "INSERT INTO statechart_outbox")  # BUMP's last write
    with pytest.raises(ConnectionLostError) as raised:
        pg_store.send("c1", "BUMP")  # no key: repeating it could apply the event twice
    assert deaths == [1]
    assert raised.value.commit_unknown and not raised.value.retryable
    assert "it may have been committed: check before repeating, or use an idempotency key" in str(raised.value)
    assert pg_store.load("c1").revision == 1  # (here it was not)


def test_a_keyed_send_whose_commit_was_lost_is_retried_and_applied_once(pg_store: Store,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    pg_store.create("counter", id="c1")
    deaths = die_before_commit(pg_store, monkeypatch, "INSERT INTO statechart_idempotency")
    receipt = pg_store.send("c1", "BUMP", idempotency_key="req-1")
    assert deaths == [1]
    assert (receipt.revision, receipt.replayed) == (2, False)
    assert pg_store.send("c1", "BUMP", idempotency_key="req-1").replayed
    assert pg_store.load("c1").data["count"] == 1 and audit_count(pg_store, "c1") == 2


def test_create_whose_connection_dies_mid_transaction_is_written_again_once(pg_store: Store,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    original = pg_store.write_side_rows
    deaths: list[int] = []

    def dying(*args: Any, **kwargs: Any) -> Any:
        if not deaths:
            deaths.append(1)
            terminate(pg_store)
        return original(*args, **kwargs)

    monkeypatch.setattr(pg_store, "write_side_rows", dying)
    pg_store.create_many("counter", [{}, {}], ids=["c1", "c2"])
    assert deaths == [1]
    assert [i.id for i in pg_store.list()] == ["c1", "c2"]
    assert audit_count(pg_store, "c1") == audit_count(pg_store, "c2") == 1


def test_inside_an_enclosing_transaction_a_failed_step_is_not_retried_on_its_own(pg_store: Store) -> None:
    calls: list[int] = []

    def step() -> None:
        calls.append(1)
        raise ConnectionLostError("gone")

    with pg_store.backend.transaction():
        with pytest.raises(ConnectionLostError):
            retrying(step, 5, what="test", backend=pg_store.backend, sleep=lambda _: None)
    assert calls == [1]
    with pytest.raises(ConnectionLostError):
        retrying(step, 5, what="test", backend=pg_store.backend, sleep=lambda _: None)
    assert len(calls) == 6


def test_a_postgres_url_gets_a_connect_timeout_unless_it_has_one(postgres_url: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    with Store.open(postgres_url) as store:
        assert store.backend.connection.info.get_parameters()["connect_timeout"] == "10"
    with Store.open(f"{postgres_url}&connect_timeout=3") as store:
        assert store.backend.connection.info.get_parameters()["connect_timeout"] == "3"


def test_the_timer_worker_survives_terminations_and_fires_every_timer_once(pg_store: Store, clock: VirtualClock,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    count = 40
    pg_store.create_many("nap", [{}] * count, ids=[f"n{i:02d}" for i in range(count)])
    clock.advance(5)
    original = pg_store._attempt
    calls: list[int] = []

    def attempt(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) in (3, 11, 12, 25):  # inside the claiming transaction, twice in a row once
            terminate(pg_store)
        return original(*args, **kwargs)

    monkeypatch.setattr(pg_store, "_attempt", attempt)
    terminate(pg_store)  # and once while idle, before the worker starts
    fired = pg_store.run_worker(poll_interval=0, max_idle_polls=1)
    assert fired == count
    assert pg_store.backend.reconnects >= 4
    timer_rows = pg_store.backend.execute(
        "SELECT instance_id, COUNT(*) FROM statechart_audit WHERE actor = 'timer' GROUP BY instance_id").fetchall()
    assert sorted(tuple(r) for r in timer_rows) == [(f"n{i:02d}", 1) for i in range(count)]
    assert pg_store.backend.execute("SELECT COUNT(*) FROM statechart_timers").fetchone()[0] == 0
    assert {i.id for i in pg_store.list("nap", state="awake", limit=count)} == {f"n{i:02d}" for i in range(count)}


def test_run_worker_waits_out_a_transient_failure_and_carries_on(store: Store, clock: VirtualClock,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    store.create("nap", id="n1")
    clock.advance(5)
    original = store.fire_due
    failures = [ConnectionLostError("server restarting", code="57P03"), DatabaseBusyError("locked")]

    def fire_due(limit: int = 100, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop(0)
        return original(limit, **kwargs)

    monkeypatch.setattr(store, "fire_due", fire_due)
    assert store.run_worker(poll_interval=0, max_idle_polls=3) == 1
    assert store.load("n1").configuration == {"awake"}


def test_run_worker_stops_on_an_error_retrying_cannot_fix(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    def fire_due(limit: int = 100, **kwargs: Any) -> Any:
        raise DiskFullError("disk full")

    monkeypatch.setattr(store, "fire_due", fire_due)
    with pytest.raises(DiskFullError):
        store.run_worker(poll_interval=0, max_idle_polls=3)


def test_the_outbox_relay_survives_a_termination_and_delivers_everything(pg_store: Store,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    pg_store.create("counter", id="c1")
    for _ in range(6):
        pg_store.send("c1", "BUMP")
    seen: list[int] = []

    def publish(event: Any) -> None:
        seen.append(event.data["count"])
        if len(seen) == 3:  # the relay's connection dies while it hands a batch over
            terminate(pg_store)

    reconnects = pg_store.backend.reconnects
    delivered = pg_store.outbox.relay(publish, batch=4, poll_interval=0, max_idle_polls=1)
    assert pg_store.outbox.count(published=False) == 0
    # The relay holds no transaction while the handler runs (it leases the instance instead), so
    # it marks the batch on a new connection: nothing came twice, and nothing was lost.
    assert seen == [1, 2, 3, 4, 5, 6]
    assert delivered == 6
    assert pg_store.backend.reconnects > reconnects


def test_a_migration_run_survives_terminations_and_migrates_every_instance_once(
        postgres_url: str, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    with Store.open(postgres_url, clock=clock) as store:
        store.register(ROOT / "machines")
        count = 30
        store.create_many("delivery", [{"order_id": f"o{i}"} for i in range(count)],
                          ids=[f"d{i:02d}" for i in range(count)], version=1)
        original = runner._migrate_batch
        batches: list[int] = []

        def dying_batch(*args: Any, **kwargs: Any) -> Any:
            batches.append(1)
            if len(batches) in (2, 5):  # inside the batch's transaction
                terminate(store)
            return original(*args, **kwargs)

        def progress(done: int, total: int) -> None:
            if done == 15:  # between batches, while idle
                terminate(store)

        monkeypatch.setattr(runner, "_migrate_batch", dying_batch)
        summary = runner.migrate(store, "delivery", migrations=ROOT / "migrations", batch_size=5, progress=progress)
        assert (summary.migrated, summary.failed) == (count, 0)
        assert store.count("delivery", version=3) == count
        rows = store.backend.execute("SELECT instance_id, COUNT(*) FROM statechart_audit WHERE actor = 'migrate' "
                                     "GROUP BY instance_id").fetchall()
        assert sorted(tuple(r) for r in rows) == [(f"d{i:02d}", 1) for i in range(count)]
        assert store.backend.execute("SELECT done, failed, finished_at IS NOT NULL FROM statechart_migration_runs"
                                     ).fetchall() == [(count, 0, True)]
        assert store.backend.reconnects >= 3


# -- timeouts (PostgreSQL) -------------------------------------------------------------------------------------
def hold_row_lock(url: str, instance_id: str) -> psycopg.Connection:
    holder = psycopg.connect(url)
    holder.execute("SELECT id FROM statechart_instances WHERE id = %s FOR UPDATE", (instance_id,))
    return holder


def test_a_held_row_lock_gives_a_retryable_lock_not_available_error(postgres_url: str, clock: VirtualClock) -> None:
    with Store.open(postgres_url, clock=clock, lock_timeout="100ms") as store:
        store.register(machine(COUNTER))
        store.create("counter", id="c1")
        holder = hold_row_lock(postgres_url, "c1")
        try:
            started = time.monotonic()
            with pytest.raises(LockNotAvailableError) as raised:
                store.send("c1", "BUMP")
            assert 0.2 <= time.monotonic() - started < 5  # waited lock_timeout twice: one retry, not ten
            assert raised.value.retryable and raised.value.code == "55P03"
            assert str(raised.value).startswith("lock not available on postgresql://")
            assert str(raised.value).endswith("retrying may help")
        finally:
            holder.rollback()
            holder.close()
        assert store.send("c1", "BUMP").revision == 2  # once released, the same call succeeds
        assert audit_count(store, "c1") == 2


def test_a_statement_over_statement_timeout_gives_a_retryable_timeout_error(postgres_url: str,
                                                                           clock: VirtualClock) -> None:
    with Store.open(f"{postgres_url}&statement_timeout=100ms", clock=clock, retries=2) as store:
        store.register(machine(COUNTER))
        store.create("counter", id="c1")
        with pytest.raises(StatementTimeoutError) as raised:
            store.backend.execute("SELECT pg_sleep(2)")
        assert raised.value.retryable and raised.value.code == "57014"
        holder = hold_row_lock(postgres_url, "c1")
        try:
            with pytest.raises(StatementTimeoutError, match="^statement timed out on postgresql://"):
                store.send("c1", "BUMP")
        finally:
            holder.rollback()
            holder.close()
        assert store.load("c1").revision == 1
        assert store.send("c1", "BUMP").revision == 2


# -- SQLite: busy and full -------------------------------------------------------------------------------------
def test_sqlite_busy_gives_a_retryable_error_after_busy_timeout_and_succeeds_once_released(
        tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "store.db"
    with Store.open(f"sqlite:///{path}?busy_timeout=50ms", clock=clock) as store:  # the default 10 retries
        store.register(machine(COUNTER))
        store.create("counter", id="c1")
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            started = time.monotonic()
            with pytest.raises(DatabaseBusyError) as raised:
                store.send("c1", "BUMP")
            assert 0.1 <= time.monotonic() - started < 5  # not the old hard-coded 30 s; tried twice, not 10 times
            assert raised.value.retryable and raised.value.code == "SQLITE_BUSY"
            assert "database is locked" in str(raised.value) and str(raised.value).endswith("retrying may help")
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert store.send("c1", "BUMP").revision == 2


def test_send_waits_out_a_short_sqlite_lock_by_retrying(tmp_path: Path, clock: VirtualClock) -> None:
    import threading

    path = tmp_path / "store.db"
    with Store.open(f"sqlite:///{path}", clock=clock, busy_timeout=0.5) as store:
        store.register(machine(COUNTER))
        store.create("counter", id="c1")
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        releaser = threading.Timer(0.7, lambda: other.execute("ROLLBACK"))
        releaser.start()
        try:
            assert store.send("c1", "BUMP").revision == 2  # busy once, then through on the retry
        finally:
            releaser.join()
            other.close()


def corrupt(path: Path) -> None:
    """Overwrite the start of every other page after the first few (the schema survives)."""
    data = bytearray(path.read_bytes())
    for offset in range(3 * 4096, len(data) - 4096, 2 * 4096):
        data[offset:offset + 200] = b"\xff" * 200
    path.write_bytes(bytes(data))


def test_a_corrupt_sqlite_file_gives_a_clear_error_that_retrying_cannot_fix(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with Store.open(f"sqlite:///{path}") as store:
        store.register(machine(COUNTER))
        store.create_many("counter", [{"pad": "x" * 500}] * 300)
        store.backend.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    corrupt(path)
    with pytest.raises(DatabaseCorruptError) as raised:
        with Store.open(f"sqlite:///{path}") as store:
            store.list(limit=1000)  # the rows are read at fetch time: still inside the seam
    assert not raised.value.retryable and raised.value.code == "SQLITE_CORRUPT"
    assert str(raised.value) == (f"database file is corrupt (restore it from a backup) on {path} [SQLITE_CORRUPT]: "
                                 "database disk image is malformed; retrying will not help until it is fixed")


def test_sqlite_disk_full_is_a_clear_error_and_leaves_the_database_intact(tmp_path: Path,
                                                                        clock: VirtualClock) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'store.db'}", clock=clock) as store:
        store.register(machine(COUNTER))
        store.create("counter", id="c1")
        store.send("c1", "BUMP")
        before = store.load("c1")
        connection = store.backend.connection
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(DiskFullError) as raised:
            store.send("c1", "STORE", {"blob": "x" * 200_000})
        assert not raised.value.retryable and raised.value.code == "SQLITE_FULL"
        assert str(raised.value).startswith("database or disk is full on ")
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert store.load("c1") == before
        assert audit_count(store, "c1") == 2
        connection.execute("PRAGMA max_page_count = 1073741823")
        assert store.send("c1", "STORE", {"blob": "x" * 200_000}).revision == before.revision + 1


# -- the invariant under injected transient failures ----------------------------------------------------------
TRANSIENT = [ConnectionLostError, DatabaseBusyError, StatementTimeoutError, LockNotAvailableError,
             SerializationConflictError]


class FailingStatements:
    """Makes the store's statements number ``at`` (counted from install) raise a transient error
    before they run, as a dropped connection or a busy database would."""

    def __init__(self, store: Store, failures: dict[int, type[DatabaseError]]) -> None:
        self.failures = failures
        self.count = 0
        backend = store.backend
        self.execute, self.executemany = backend.execute, backend.executemany
        backend.execute = self._execute  # type: ignore[method-assign]
        backend.executemany = self._executemany  # type: ignore[method-assign]
        self.backend = backend

    def _maybe_fail(self) -> None:
        self.count += 1
        kind = self.failures.get(self.count)
        if kind is not None:
            raise kind("injected")

    def _execute(self, sql: str, params: Any = ()) -> Any:
        self._maybe_fail()
        return self.execute(sql, params)

    def _executemany(self, sql: str, rows: Any) -> None:
        self._maybe_fail()
        return self.executemany(sql, rows)

    def remove(self) -> None:
        self.backend.execute, self.backend.executemany = self.execute, self.executemany  # type: ignore


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(failures=st.dictionaries(st.integers(1, 12), st.sampled_from(TRANSIENT), max_size=5),
       keyed=st.booleans())
def test_a_send_under_transient_failures_is_applied_exactly_once_or_not_at_all(store: Store, failures: dict,
                                                                              keyed: bool) -> None:
    store.retries = 4
    instance_id = f"c{store.count()}"
    store.create("counter", id=instance_id)
    outbox_before = store.outbox.count()
    injected = FailingStatements(store, failures)
    try:
        receipt = store.send(instance_id, "BUMP", idempotency_key="k" if keyed else None)
    except (DatabaseError, ConcurrencyError) as error:
        assert error.retryable  # the injected ones (or lost "races"), after the retry budget
        applied = False
    else:
        assert receipt.revision == 2
        applied = True
    finally:
        injected.remove()
    stored = store.load(instance_id)
    assert (stored.revision, stored.data["count"]) == ((2, 1) if applied else (1, 0))
    assert audit_count(store, instance_id) == (2 if applied else 1)
    assert store.outbox.count() == outbox_before + applied


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(failures=st.dictionaries(st.integers(1, 60), st.sampled_from(TRANSIENT), max_size=8))
def test_the_worker_under_transient_failures_fires_every_timer_exactly_once(store: Store, clock: VirtualClock,
                                                                            failures: dict) -> None:
    store.retries = 3
    first = store.count()
    ids = [f"n{first + i}" for i in range(4)]
    store.create_many("nap", [{}] * 4, ids=ids)
    clock.advance(5)
    injected = FailingStatements(store, failures)
    try:
        store.run_worker(poll_interval=0, max_idle_polls=12)
    finally:
        injected.remove()
    store.run_worker(poll_interval=0, max_idle_polls=1)  # whatever the failures left due
    fired = dict(store.backend.execute(
        "SELECT instance_id, COUNT(*) FROM statechart_audit WHERE actor = 'timer' GROUP BY instance_id").fetchall())
    assert all(fired[i] == 1 for i in ids)
    assert store.backend.execute("SELECT COUNT(*) FROM statechart_timers").fetchone()[0] == 0
