"""Store faults through the ``statechart`` command: every store-using command answers a bad store URL,
an unreachable server or a bad input with one line and exit 1 (usage errors: exit 2), never a
traceback; the worker carries on after a transient failure."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

from statechart import Store, VirtualClock
from statechart.cli import store as cli_store
from statechart.errors import ConnectionLostError

from machines import run_cli

ROOT = Path(__file__).resolve().parent.parent

# Every command that opens a store, with the arguments it needs besides --store.
STORE_COMMANDS: list[list[str]] = [
    ["instances", "list"],
    ["instances", "show", "x"],
    ["instances", "create", "delivery"],
    ["instances", "delete", "x"],
    ["send", "x", "GO"],
    ["worker", "--once"],
    ["outbox", "list"],
    ["outbox", "publish", "1"],
    ["outbox", "lag"],
    ["metrics"],
    ["migrate", "delivery"],
    ["migrations", "status", "delivery"],
    ["render", "machines/delivery/v1.yaml", "-o", "out.dot", "--counts"],
]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with the example machines and migrations, as the working directory."""
    shutil.copytree(ROOT / "machines", tmp_path / "machines")
    shutil.copytree(ROOT / "migrations", tmp_path / "migrations")
    (tmp_path / "notes.db").write_text("these are notes, not a database; " * 10)
    (tmp_path / "folder").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STATECHART_STORE", raising=False)
    return tmp_path


def one_line_error(code: int, err: str, expected: str) -> None:
    assert code == 1
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert expected in err, err


BAD_STORES = [
    ("sqlite:///notes.db", "notes.db is not a SQLite database, so not a statechart store"),
    ("sqlite:///folder", "folder is a directory, not a database file"),
    ("postgresql://%zz@127.0.0.1/test", "cannot use the PostgreSQL URL"),
    ("postgresql://postgres@127.0.0.1:1/test?connect_timeout=2", "cannot connect to the database"),
    ("sqlite:///app.db?busy_timeout=forever", "busy_timeout: 'forever' is not a duration"),
    ("redis://localhost", "unsupported store URL 'redis://localhost'"),
]


@pytest.mark.parametrize("argv", STORE_COMMANDS, ids=[" ".join(a[:2]) for a in STORE_COMMANDS])
@pytest.mark.parametrize(("url", "expected"), BAD_STORES, ids=[u.split(":")[0] + str(i) for i, (u, _) in
                                                               enumerate(BAD_STORES)])
def test_every_store_command_reports_a_bad_store_in_one_line(project: Path, capsys: pytest.CaptureFixture[str],
                                                             argv: list[str], url: str, expected: str) -> None:
    code, out, err = run_cli(capsys, *argv, "--store", url)
    one_line_error(code, err, expected)
    assert (project / "notes.db").read_text().startswith("these are notes")


@pytest.mark.parametrize("argv", [
    ["instances", "list", "--limit", str(10**30)],
    ["instances", "list", "--version", str(2**40)],
    ["instances", "list", "--version", "0"],
    ["instances", "create", "delivery", "--version", str(2**63)],
    ["instances", "show", "x", "--audit", str(10**20)],
    ["outbox", "list", "--after", str(2**70)],
    ["outbox", "list", "--limit", "-1"],
    ["outbox", "publish", str(2**70)],
    ["worker", "--once", "--batch", str(10**30)],
    ["migrate", "delivery", "--to", str(2**40)],
    ["migrate", "delivery", "--batch-size", str(10**12)],
    ["render-migration", "delivery", "1", str(2**64)],
])
def test_huge_or_negative_numbers_are_usage_errors_not_tracebacks(project: Path, capsys: pytest.CaptureFixture[str],
                                                                  argv: list[str]) -> None:
    code, out, err = run_cli(capsys, *argv, "--store", "sqlite:///app.db")
    assert code == 2 and out == ""
    assert "Traceback" not in err and "is not in the range" in err


@pytest.fixture
def stored(project: Path, store_url: str) -> Iterator[str]:
    with Store.open(store_url, clock=VirtualClock(1000.0)) as store:
        store.register(project / "machines")
        store.create("delivery", {"order_id": "o1"}, id="d1", version=1)
    yield store_url


@pytest.mark.parametrize(("argv", "expected"), [
    (["instances", "show", "i" * 1_000_000], "invalid instance id 'iiiiii"),
    (["instances", "show", "a\x00b"], "invalid instance id 'a\\x00b': must not contain NUL bytes"),
    (["send", "d1", "RESTAURANT_ACCEPTED", "--key", "k\x00"], "invalid idempotency key 'k\\x00'"),
    (["send", "d1", "NUL\x00EVENT"], "invalid event name 'NUL\\x00EVENT'"),
    (["instances", "create", "delivery", "--id", "x" * 201], "is 201 characters long; at most 200 are allowed"),
    (["instances", "list", "--machine", "\x00"], "invalid machine name '\\x00'"),
    (["instances", "list", "--after", "\x00"], "invalid cursor id (after) '\\x00'"),
    (["instances", "delete", ""], "invalid instance id '': must not be empty"),
])
def test_bad_inputs_give_the_same_one_line_error_on_both_backends(stored: str, capsys: pytest.CaptureFixture[str],
                                                                   argv: list[str], expected: str) -> None:
    code, out, err = run_cli(capsys, *argv, "--store", stored)
    one_line_error(code, err, expected)
    assert len(err) < 300
    code, out, _ = run_cli(capsys, "instances", "show", "d1", "--json", "--store", stored)
    assert code == 0 and '"revision": 1' in out  # nothing was written


def test_the_worker_reports_a_transient_failure_and_carries_on(project: Path, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    url = "sqlite:///app.db"
    reminder = "machine: nap\nversion: 1\ninitial: sleeping\nstates:\n  sleeping: {after: {1s: awake}}\n" \
               "  awake: {type: final}\n"
    (project / "machines" / "nap").mkdir()
    (project / "machines" / "nap" / "v1.yaml").write_text(reminder)
    with Store.open(url, clock=VirtualClock(1000.0)) as store:  # long overdue by now
        store.register(project / "machines")
        store.create("nap", id="n1")
    original = Store.fire_due
    failures = [ConnectionLostError("terminating connection due to administrator command", code="57P01")]

    def fire_due(self: Store, *args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return original(self, *args, **kwargs)

    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) > 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(Store, "fire_due", fire_due)
    monkeypatch.setattr(cli_store, "_sleep", sleep)
    code, out, err = run_cli(capsys, "worker", "--store", url, "--poll", "10ms")
    assert code == 0 and "Traceback" not in err
    assert err.startswith("warning: connection to the database lost [57P01]: terminating connection due "
                          "to administrator command; retrying may help; trying again in 10ms\n")
    assert out.startswith("fired ") and "on n1: applied" in out
    assert err.endswith("stopped\n1 timer(s) fired\n")


def test_the_worker_once_exits_1_on_a_transient_failure(project: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def fire_due(self: Store, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionLostError("server closed the connection unexpectedly")

    monkeypatch.setattr(Store, "fire_due", fire_due)
    code, out, err = run_cli(capsys, "worker", "--once", "--store", "sqlite:///app.db")
    one_line_error(code, err, "connection to the database lost: server closed the connection")


def test_the_worker_command_carries_on_after_its_connection_is_terminated(
        project: Path, postgres_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from test_store_faults import terminate

    (project / "machines" / "nap").mkdir()
    (project / "machines" / "nap" / "v1.yaml").write_text(
        "machine: nap\nversion: 1\ninitial: sleeping\nstates:\n  sleeping: {after: {1s: awake}}\n"
        "  awake: {type: final}\n")
    with Store.open(postgres_url, clock=VirtualClock(1000.0)) as store:  # long overdue by now
        store.register(project / "machines")
        store.create_many("nap", [{}] * 5, ids=[f"n{i}" for i in range(5)])
    original = Store._attempt
    calls: list[int] = []

    def attempt(self: Store, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) in (2, 4):  # the worker's connection dies while it holds a claimed timer
            terminate(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Store, "_attempt", attempt)
    code, out, err = run_cli(capsys, "worker", "--once", "--store", postgres_url)
    assert code == 0 and "Traceback" not in err
    assert sorted(line.split(" on ")[1].split(":")[0] for line in out.splitlines()) == [f"n{i}" for i in range(5)]
    assert err == "5 timer(s) fired\n"


def test_a_corrupt_sqlite_store_is_one_line(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from test_store_faults import corrupt

    with Store.open("sqlite:///app.db") as store:
        store.register(project / "machines")
        store.create_many("delivery", [{"order_id": "o" * 500}] * 300, version=1)
        store.backend.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    corrupt(project / "app.db")
    code, out, err = run_cli(capsys, "instances", "list", "--limit", "1000", "--store", "sqlite:///app.db")
    one_line_error(code, err, "database file is corrupt (restore it from a backup) on app.db [SQLITE_CORRUPT]")
