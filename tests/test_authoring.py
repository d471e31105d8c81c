"""The mistakes authors actually make, each caught before anything runs (or, for failing Python
code, named and located when it runs), with the message the author sees."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import statechart
from statechart.analysis import check_machine
from statechart.cli import main

FILE = "machines/payment/v1.yaml"


def problems(text: str, file: str = FILE) -> list[str]:
    with pytest.raises(statechart.LoadError) as caught:
        statechart.loads(textwrap.dedent(text), file)
    return [str(p) for p in caught.value.problems]


def kinds(text: str) -> list[tuple[str, str, str]]:
    machine = statechart.loads(textwrap.dedent(text), FILE)
    return [(f.kind, f"{f.location.line}:{f.location.column}", f.message) for f in check_machine(machine)
            if f.kind in ("reentry-effect", "constant-guard", "unread-assignment")]


# -- misspelled names in expressions ---------------------------------------------------------------
def test_a_misspelled_data_name_in_a_guard_is_a_located_error_with_a_hint() -> None:
    assert problems("""\
        machine: payment
        version: 1
        data: {amount: 0}
        states:
          idle:
            on:
              PAY: {target: paid, cond: "amout > 0"}
          paid: {type: final}
        """) == [f"{FILE}:7:34: cond: unknown name 'amout': no data key, assign or script gives it a value "
                 "(did you mean 'amount'?)"]


def test_every_unknown_name_of_every_expression_is_reported_at_once() -> None:
    found = problems("""\
        machine: payment
        version: 1
        data: {amount: 0, currency: EUR}
        states:
          idle:
            entry: [{log: "ammount + fee"}]
            on:
              PAY: {target: paid, cond: "amount > 0 and curency == 'EUR'"}
          paid: {type: final}
        """)
    assert found == [
        f"{FILE}:6:20: log: unknown name 'ammount': no data key, assign or script gives it a value "
        "(did you mean 'amount'?)",
        f"{FILE}:6:30: log: unknown name 'fee': no data key, assign or script gives it a value "
        "(declare it under `data:` with an initial value, or assign it first)",
        f"{FILE}:8:49: cond: unknown name 'curency': no data key, assign or script gives it a value "
        "(did you mean 'currency'?)",
    ]


def test_names_given_by_assign_script_foreach_state_data_and_id_location_are_known() -> None:
    machine = statechart.loads(textwrap.dedent("""\
        machine: payment
        version: 1
        script: "seed = 1"
        states:
          idle:
            data: {items: [1, 2]}
            entry:
              - {assign: {total: "0"}}
              - {foreach: {array: "items", item: it, index: i, do: [{assign: {total: "total + it + i + seed"}}]}}
              - {send: {event: LATER, delay: 1m, id_location: timer_id}}
            on:
              PAY: {target: paid, cond: "total > 0 and timer_id and all(x > 0 for x in items)"}
              SHOW: {actions: [{log: "event.data['n'] + len(_sessionid)"}]}
          paid: {type: final}
        """), FILE)
    assert machine.name == "payment"


def test_scxml_documents_keep_undefined_names_as_run_time_errors(tmp_path: Path) -> None:
    document = tmp_path / "t.scxml"
    document.write_text(
        '<scxml xmlns="http://www.w3.org/2005/07/scxml" version="1.0" datamodel="python" initial="a">'
        '<state id="a"><transition cond="undeclared &gt; 0" target="b"/>'
        '<transition event="error.execution" target="failed"/></state>'
        '<final id="b"/><final id="failed"/></scxml>')
    instance = statechart.load(document).start()
    assert instance.configuration == {"failed"}  # SCXML 5.9: the failing cond raised error.execution


# -- failing guards and actions say what failed ------------------------------------------------------
@pytest.fixture
def pay_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "machines" / "pay"
    folder.mkdir(parents=True)
    (folder / "code.py").write_text(
        "def is_big(ctx):\n"
        "    total = ctx.data['amount']\n"
        "    return 100 / total > 1\n"
        "\n"
        "\n"
        "def charge(ctx):\n"
        "    raise RuntimeError('gateway down')\n")
    (folder / "v1.yaml").write_text(textwrap.dedent("""\
        machine: pay
        version: 1
        python: code.py
        data: {amount: 0}
        states:
          idle:
            on:
              PAY: {target: paid, guard: is_big}
              CHARGE: {actions: [charge]}
          paid: {type: final}
        """))
    monkeypatch.chdir(tmp_path)
    return folder / "v1.yaml"


def test_a_failing_python_guard_is_named_with_its_file_and_line(pay_project: Path) -> None:
    result = statechart.load(pay_project).start().send("PAY")
    assert not result.handled
    assert result.errors == (
        f"cond of idle:PAY:0: guard 'is_big' ({os.path.join('machines', 'pay', 'code.py')}:1) raised "
        "ZeroDivisionError at line 3: division by zero",)


def test_a_failing_python_action_is_named_with_its_file_and_line(pay_project: Path) -> None:
    result = statechart.load(pay_project).start().send("CHARGE")
    assert result.errors == (
        f"charge: action 'charge' ({os.path.join('machines', 'pay', 'code.py')}:6) raised RuntimeError at "
        "line 7: gateway down",)


def test_strict_mode_says_why_an_event_was_not_handled(pay_project: Path) -> None:
    instance = statechart.load(pay_project).start(strict=True)
    with pytest.raises(statechart.UnhandledEventError) as caught:
        instance.send("PAY")
    assert "guard 'is_big'" in str(caught.value) and "ZeroDivisionError at line 3" in str(caught.value)
    assert caught.value.errors and caught.value.errors[0].startswith("cond of idle:PAY:0: guard 'is_big'")


def test_run_strict_prints_the_underlying_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "machines" / "m"
    folder.mkdir(parents=True)
    (folder / "v1.yaml").write_text(
        "machine: m\nversion: 1\ndata: {n: 0}\nstates:\n  a: {on: {GO: {target: b, cond: 'n / 0'}}}\n  b: {}\n")
    assert main(["run", str(folder / "v1.yaml"), "-e", "GO", "--strict"]) == 1
    err = capsys.readouterr().err
    assert "event 'GO' is not handled" in err and "cond of a:GO:0: ZeroDivisionError: division by zero" in err


# -- YAML slips ------------------------------------------------------------------------------------------
def test_an_event_dedented_out_of_on_says_where_it_belongs() -> None:
    assert problems("""\
        machine: payment
        version: 1
        states:
          authorized:
            on:
              CAPTURE: captured
            VOID: voided
          captured: {type: final}
          voided: {type: final}
        """) == [f"{FILE}:7:5: unknown key 'VOID' in atomic state 'authorized' ('VOID' looks like an event: "
                 "events go under the state's `on:`, indented one level deeper than `on:` (`on: {VOID: target}`))"]


def test_a_misspelled_state_key_still_gets_the_did_you_mean_hint() -> None:
    assert problems("machine: payment\nversion: 1\nstates:\n  a: {entri: []}\n") == [
        f"{FILE}:4:7: unknown key 'entri' in atomic state 'a' (did you mean 'entry'?)"]


@pytest.mark.parametrize(("text", "message"), [
    ("machine: payment\nversion: 1\nstates:\n  a:\n    on:\n      GO: b\n     STOP: b\n  b: {}\n",
     f"{FILE}:7:6: invalid YAML: this line is indented differently from the keys above it (the keys of one "
     "mapping line up in one column: the mapping that starts at line 5 has its keys at column 5)"),
    ("machine: payment\nversion: 1\nstates:\n  a:\n\ton: {GO: b}\n  b: {}\n",
     f"{FILE}:5:1: invalid YAML: a tab indents this line (YAML indents with spaces only; replace the tab with "
     "spaces)"),
    ("machine: payment\nversion: 1\nstates:\n  a:\n    on: GO: b\n",
     f"{FILE}:5:11: invalid YAML: a second `key: value` on one line (put each key on its own line, or quote a "
     "value that contains ': ' (`cond: \"a: b\"`))"),
])
def test_yaml_slips_get_words_about_the_file_not_parser_internals(text: str, message: str) -> None:
    assert problems(text) == [message]


# -- statechart check findings ---------------------------------------------------------------------------
def test_an_emit_in_the_entry_of_a_state_history_restores_is_a_finding() -> None:
    assert kinds("""\
        machine: payment
        version: 1
        states:
          open:
            initial: normal
            on: {HOLD: held}
            states:
              back: {type: history}
              normal: {on: {DISPUTE: disputed}}
              disputed:
                entry: [{emit: chargeback.opened}, {send: {event: REMIND, delay: 1d}}]
          held: {on: {RELEASE: back}}
        """) == [("reentry-effect", "11:17", "entry of 'disputed' emits 'chargeback.opened', and history 'back' "
                  "can restore 'disputed': it runs again on every resume, so 'chargeback.opened' goes out again; "
                  "move it to the transition that first enters the state, or guard it with data")]


def test_no_reentry_finding_when_no_transition_targets_the_history_state() -> None:
    assert kinds("""\
        machine: payment
        version: 1
        states:
          open:
            initial: normal
            states:
              back: {type: history}
              normal: {entry: [{emit: opened}]}
        """) == []


def test_guards_that_no_data_can_change_are_findings() -> None:
    found = kinds("""\
        machine: payment
        version: 1
        data: {amount: 0, approved: false, status: new}
        states:
          a:
            on:
              A: {target: b, cond: "amount > 100 and amount < 10"}
              B: {target: b, cond: "approved or not approved"}
              C: {target: b, cond: "status == 'x' and status == 'y'"}
              D: {target: b, cond: "amount > 5 and amount < 5.2"}
              E: {target: b, cond: "approved"}
              F: {target: b, cond: "amount > event.data['limit']"}
          b: {type: final}
        """)
    assert found == [
        ("constant-guard", "7:10", "guard 'amount > 100 and amount < 10' of a:A:0 is never true, whatever the "
                                   "value of amount"),
        ("constant-guard", "8:10", "guard 'approved or not approved' of a:B:0 is always true, whatever the value "
                                   "of approved"),
        ("constant-guard", "9:10", "guard \"status == 'x' and status == 'y'\" of a:C:0 is never true, whatever "
                                   "the value of status"),
    ]


def test_an_assignment_nothing_reads_or_declares_is_a_finding_with_a_hint() -> None:
    assert kinds("""\
        machine: payment
        version: 1
        data: {total: 0}
        states:
          a:
            on:
              ADD: {actions: [{assign: {totl: "total + 1"}}]}
              PAY: {target: b, cond: "total > 0"}
          b: {type: final}
        """) == [("unread-assignment", "7:23", "assign to 'totl': no expression reads it and `data:` does not "
                  "declare it (did you mean 'total'?)")]


def test_the_example_machines_show_only_the_findings_they_are_meant_to() -> None:
    root = Path(__file__).resolve().parent.parent / "machines"
    found = {str(path.relative_to(root)): [f.kind for f in check_machine(statechart.load(path))]
             for path in sorted(root.glob("*/v*.yaml"))}
    assert {name: kinds_ for name, kinds_ in found.items() if kinds_} == {
        "order/v2.yaml": ["dead-end", "unhandled-event"],  # the README's abridged order: kept small on purpose
    }


# -- the schema, after pip install -----------------------------------------------------------------------
def test_schema_command_prints_and_writes_the_installed_schema(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    installed = Path(statechart.__file__).parent / "schemas" / "machine.schema.json"
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == installed.read_text()
    assert main(["schema", "--path"]) == 0
    assert Path(capsys.readouterr().out.strip()).read_text() == installed.read_text()
    assert main(["schema", "--write", str(tmp_path / ".statechart" / "machine.schema.json")]) == 0
    assert (tmp_path / ".statechart" / "machine.schema.json").read_text() == installed.read_text()
    assert main(["schema", "--snapshot"]) == 0
    assert '"snapshot' in capsys.readouterr().out.lower()


def test_the_ci_recipe_validates_with_a_yaml_1_2_loader(tmp_path: Path) -> None:
    """docs/reference.md: check-jsonschema reads `on` as a key, so valid machines pass."""
    root = Path(__file__).resolve().parent.parent
    checker = Path(sys.executable).parent / "check-jsonschema"
    schema = str(Path(statechart.__file__).parent / "schemas" / "machine.schema.json")
    machines = sorted(str(p) for p in (root / "machines").glob("*/v*.yaml"))
    good = subprocess.run([str(checker), "--schemafile", schema, *machines], capture_output=True, text=True)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = tmp_path / "v1.yaml"
    bad.write_text("machine: m\nversion: 1\nstates:\n  a: {entri: []}\n")
    failed = subprocess.run([str(checker), "--schemafile", schema, str(bad)], capture_output=True, text=True)
    assert failed.returncode == 1 and "'entri' was unexpected" in failed.stdout
