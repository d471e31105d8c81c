"""The statechart command: exit codes, messages without tracebacks, JSON output."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from machines import run_cli

ROOT = Path(__file__).resolve().parent.parent
ORDER = str(ROOT / "machines/order/v2.yaml")


def test_validate_prints_one_line_per_good_machine(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "validate", str(ROOT / "machines"))
    assert code == 0
    assert f"ok   {ORDER}  (order v2: 17 states, 15 transitions)" in out


def test_validate_reports_every_problem_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "v1.yaml"
    bad.write_text("machine: shop\nversion: 2\nstates:\n  a: {on: {GO: nowhere}}\n")
    code, out, _ = run_cli(capsys, "validate", str(bad), ORDER)
    assert code == 1
    assert f"FAIL {bad}" in out
    assert f"{bad}:2:10: version 2 disagrees with the file name 'v1.yaml'" in out
    assert f"{bad}:4:16: target 'nowhere' does not exist" in out
    assert "1 of 2 machine file(s) failed" in out


def test_validate_of_a_missing_path_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "validate", "no/such/folder")
    assert code == 2
    assert "does not exist" in err


def test_run_json_has_configuration_data_done_and_steps(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "run", ORDER, "--event", 'ADD={"price": 5}', "-e", "CHECKOUT", "-e", "AUTHORIZED",
                       "-e", "PACKED", "--fast-forward", "--json")
    assert code == 0
    document = json.loads(out)
    assert document["configuration"] == ["fulfillment", "invoicing", "late", "open", "shipping"]
    assert document["data"] == {"total": 5, "retries": 1, "on_hold": False}
    assert document["done"] is False
    assert [s["event"] for s in document["steps"]] == [
        "(start)", "ADD", "CHECKOUT", "AUTHORIZED", "PACKED", "after.0.in_transit (delayed, t=172800s)"]
    assert document["steps"][2]["effects"] == [{"event": "payment.requested", "data": {"amount": 5}}]
    assert document["steps"][1]["transitions"] == ["cart:ADD:0"]


def test_run_with_data_overrides_initial_data(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "run", ORDER, "--data", '{"total": 7}', "-e", "CHECKOUT", "--json")
    assert code == 0
    assert json.loads(out)["configuration"] == ["authorizing", "payment"]


def test_run_bad_event_json_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "run", ORDER, "-e", 'ADD={"price"')
    assert code == 2
    assert "the data of event 'ADD' is not valid JSON" in err


def test_run_strict_unhandled_event_fails_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "run", ORDER, "--strict", "-e", "PAY")
    assert code == 1
    assert "error: event 'PAY' is not handled in configuration {cart}" in err
    code, _, err = run_cli(capsys, "run", ORDER, "--strict", "-e", "CHEKOUT")
    assert code == 1
    assert "did you mean 'CHECKOUT'?" in err


def test_run_of_a_bad_file_shows_problems_not_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "m.yaml"
    bad.write_text("machine: m\nversion: 1\nstates:\n  a: {typ: final}\n")
    completed = subprocess.run([sys.executable, "-m", "statechart.cli", "run", str(bad)],
                               capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    assert f"{bad}:4:7: unknown key 'typ' in atomic state 'a' (did you mean 'type'?)" in completed.stderr


def test_run_interactive_session_reads_events_from_a_pipe_without_prompts() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "statechart.cli", "run", ORDER, "--interactive"],
        input='ADD {"price": 3}\nADD={"price": 2}\nNOPE\n:advance 5m\nCHECKOUT\n:quit\n', capture_output=True,
        text=True)
    assert completed.returncode == 0, completed.stderr
    assert "event>" not in completed.stdout and "enabled:" not in completed.stdout
    assert "NOPE  not handled" in completed.stdout
    assert "now in     authorizing" in completed.stdout
    assert "final  authorizing" in completed.stdout
    assert '"total": 5' in completed.stdout  # both spellings of event data were applied


def test_run_at_a_terminal_prompts_with_the_events_a_caller_can_send() -> None:
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: the command on a pseudo-terminal, as a person types at it
        os.execvp(sys.executable, [sys.executable, "-m", "statechart.cli", "run", ORDER])
    os.write(fd, b'ADD {"price": 3}\n:quit\n')
    output = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.waitpid(pid, 0)
    text = re.sub(r"\x1b\[[0-9;]*m", "", output.decode())  # colours: a terminal gets them
    assert "event> " in text
    assert "enabled: ADD, CHECKOUT\r\n" in text  # the order machine's `error.*` handler is not offered
    assert "final  cart" in text and '"total": 3' in text


def test_run_says_that_piped_input_needs_the_interactive_flag() -> None:
    completed = subprocess.run([sys.executable, "-m", "statechart.cli", "run", ORDER], input="CHECKOUT\n",
                               capture_output=True, text=True)
    assert completed.returncode == 0
    assert "standard input is not read without -i" in completed.stderr
    assert "final  cart" in completed.stdout


def test_run_events_accept_name_equals_json_and_name_blank_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "run", ORDER, "-e", 'ADD={"price": 3}', "-e", 'ADD {"price": 4}', "--json")
    assert code == 0
    assert json.loads(out)["data"]["total"] == 7
    code, _, err = run_cli(capsys, "run", ORDER, "-e", "ADD=")
    assert code == 2 and "nothing after '='" in err


def test_help_of_every_command_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("validate", "run"):
        code, out, _ = run_cli(capsys, command, "--help")
        assert code == 0
        assert "Example:" in out
