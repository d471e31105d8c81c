"""`statechart serve` on the command line: the Flask extra, user errors without tracebacks, the
non-loopback warning, and a real server process answering on its port."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from statechart.cli.serve import is_loopback

from machines import run_cli

ROOT = Path(__file__).resolve().parent.parent
MACHINES = str(ROOT / "machines")


class FakeServer:
    """Stands in for the Werkzeug server so the command returns instead of serving forever."""

    port = 8765
    served = False

    def serve_forever(self) -> None:
        FakeServer.served = True

    def server_close(self) -> None:
        pass


@pytest.fixture
def fake_server(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    pytest.importorskip("flask")
    calls: list[dict[str, Any]] = []

    def threaded_server(app: Any, host: str, port: int) -> FakeServer:
        calls.append({"app": app, "host": host, "port": port})
        return FakeServer()

    monkeypatch.setattr("statechart.web.app.threaded_server", threaded_server)
    FakeServer.served = False
    return calls


def test_without_flask_serve_names_the_extra_in_one_line(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "flask", None)  # import flask -> ImportError
    code, out, err = run_cli(capsys, "serve", MACHINES)
    assert code == 1 and out == ""
    assert err.strip() == "Error: statechart serve needs Flask: pip install 'statechart[serve]'"


def test_serve_binds_loopback_by_default_and_says_where(fake_server: list[dict[str, Any]],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "serve", MACHINES)
    assert code == 0 and FakeServer.served
    assert fake_server[0]["host"] == "127.0.0.1" and fake_server[0]["port"] == 8765
    assert "open http://127.0.0.1:8765/" in out and "warning" not in err


def test_a_non_loopback_host_is_warned_about(fake_server: list[dict[str, Any]],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "serve", MACHINES, "--host", "0.0.0.0")
    assert code == 0 and fake_server[0]["host"] == "0.0.0.0"
    assert "warning: listening on 0.0.0.0, not loopback" in err and "no login" in err


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.1.2.3", True), ("localhost", True),
                                            ("::1", True), ("[::1]", True), ("0.0.0.0", False),
                                            ("192.168.1.5", False), ("example.com", False)])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_user_errors_exit_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("flask")
    code, _, err = run_cli(capsys, "serve", str(tmp_path / "nope"))
    assert code == 1 and "no such folder" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "serve", str(tmp_path))
    assert code == 1 and "no machine files" in err
    code, _, err = run_cli(capsys, "serve", MACHINES, "--allow-send")
    assert code == 2 and "--allow-send writes to a store: give it with --store URL" in err
    missing = tmp_path / "missing.db"
    code, _, err = run_cli(capsys, "serve", MACHINES, "--store", f"sqlite:///{missing}")
    assert code == 1 and "no SQLite store at" in err and "never creates one" in err
    assert not missing.exists()
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    code, _, err = run_cli(capsys, "serve", MACHINES, "--store", f"sqlite:///{empty}")
    assert code == 1 and "holds no statechart store" in err
    assert sqlite3.connect(empty).execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)
    code, _, err = run_cli(capsys, "serve", MACHINES, "--store", "mysql://x")
    assert code == 1 and "unsupported store URL" in err


def test_an_empty_postgresql_database_is_not_turned_into_a_store(postgres_url: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("flask")
    import psycopg

    code, _, err = run_cli(capsys, "serve", MACHINES, "--store", postgres_url)
    assert code == 1 and "holds no statechart store" in err
    with psycopg.connect(postgres_url) as connection:
        tables = connection.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = "
                                    "current_schema()").fetchone()
    assert tables == (0,)


def test_a_port_in_use_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("flask")
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run_cli(capsys, "serve", MACHINES, "--port", str(port))
    assert code == 1 and f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err


def test_the_served_process_answers_and_stops(tmp_path: Path) -> None:
    pytest.importorskip("flask")
    command = [sys.executable, "-m", "statechart.cli", "serve", MACHINES, "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert process.stdout is not None
        line = ""
        deadline = time.monotonic() + 60
        while "open http://" not in line and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
        assert "open http://127.0.0.1:" in line, process.stderr.read() if process.poll() is not None else line
        base = line.split()[1].rstrip("/")
        with urllib.request.urlopen(base + "/api/machines", timeout=30) as response:
            names = [m["name"] for m in json.load(response)["machines"]]
        assert "order" in names
        request = urllib.request.Request(base + "/api/sessions", data=b'{"machine": "order"}', method="POST",
                                         headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 403
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert process.returncode is not None
