"""The store commands end to end through ``statechart.cli.main``, on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

import pytest

import statechart
from statechart import Store, VirtualClock
from statechart.cli import main

from machines import TICKET

REMINDER = """\
machine: reminder
version: 1
initial: waiting
states:
  waiting: {after: {30m: due}}
  due: {on: {ACK: acked}}
  acked: {type: final}
"""

Run = Callable[..., "tuple[int, str, str]"]
D = r"\d+d(?: \d+[hms])?"  # a duration of days, as the commands print it: "20412d 5h"


@pytest.fixture
def machines(tmp_path: Path) -> Path:
    folder = tmp_path / "machines"
    for name, text in (("ticket", TICKET), ("reminder", REMINDER)):
        (folder / name).mkdir(parents=True)
        (folder / name / "v1.yaml").write_text(text)
    return folder


@pytest.fixture
def run(store_url: str, machines: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    """``run("instances", "list")`` -> (exit code, stdout, stderr), against the test's store."""

    def invoke(*argv: str, options: bool = True) -> tuple[int, str, str]:
        args = [*argv, "--store", store_url, "--machines", str(machines)] if options else list(argv)
        code = main(args)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


@pytest.fixture
def old_store(store_url: str, machines: Path):  # type: ignore[no-untyped-def]
    """The same store on a clock stopped at t=1000 (1970): what it creates is long overdue now."""
    with Store.open(store_url, clock=VirtualClock(1000.0)) as store:
        store.register(machines)
        yield store


def as_json(output: str) -> object:
    return json.loads(output)


# -- instances create ----------------------------------------------------------------------------------
def test_create_prints_the_new_instance(run: Run) -> None:
    assert run("instances", "create", "ticket", "--id", "t1") == (0, "created t1 (ticket v1) in open\n", "")


def test_create_without_id_picks_one_and_prints_json(run: Run) -> None:
    code, out, _ = run("instances", "create", "ticket", "--data", '{"owner": "ann"}', "--json")
    assert code == 0
    document = as_json(out)
    assert re.fullmatch(r"[0-9a-f]{32}", document["id"])
    assert (document["machine"], document["version"], document["state"], document["data"], document["revision"]) == (
        "ticket", 1, ["open"], {"owner": "ann"}, 1)


def test_create_records_the_actor_in_the_audit(run: Run) -> None:
    run("instances", "create", "ticket", "--id", "t1", "--actor", "ops")
    _, out, _ = run("instances", "show", "t1", "--json")
    assert [(r["event"], r["actor"]) for r in as_json(out)["audit"]] == [("(start)", "ops")]


def test_create_of_an_unknown_machine_fails_naming_the_registered_ones(run: Run) -> None:
    assert run("instances", "create", "nosuch") == (
        1, "", "error: machine nosuch is not registered with this store (registered: reminder v1, ticket v1); "
               "register machines/nosuch/vN.yaml, or migrate the instance\n")


def test_create_of_an_unknown_version_fails(run: Run) -> None:
    code, _, err = run("instances", "create", "ticket", "--version", "7")
    assert code == 1
    assert err.startswith("error: machine ticket v7 is not registered with this store (registered: reminder v1, ")


def test_create_with_a_taken_id_fails(run: Run) -> None:
    run("instances", "create", "ticket", "--id", "t1")
    assert run("instances", "create", "ticket", "--id", "t1") == (
        1, "", "error: an instance with id 't1' already exists; choose another id or omit it\n")


def test_create_with_bad_json_is_a_usage_error_and_creates_nothing(run: Run) -> None:
    code, out, err = run("instances", "create", "ticket", "--id", "t1", "--data", '{"owner": ann}')
    assert (code, out) == (2, "")
    assert "Error: Invalid value for '--data': not valid JSON: Expecting value (at character 10)" in err
    assert run("instances", "list", "--json")[1] == "[]\n"


def test_create_data_must_be_a_json_object(run: Run) -> None:
    code, _, err = run("instances", "create", "ticket", "--data", "[1, 2]")
    assert code == 2
    assert "Error: Invalid value for '--data': must be a JSON object, not list" in err


# -- send ---------------------------------------------------------------------------------------------------
def test_send_prints_the_receipt(run: Run) -> None:
    run("instances", "create", "ticket", "--id", "t1")
    run("send", "t1", "ASSIGN")
    assert run("instances", "send", "t1", "COMMENT", "--data", '{"by": "ann"}') == (0, (
        "t1  COMMENT  applied  revision 3\n"
        "  via        assigned:COMMENT:0\n"
        "  now in     assigned\n"
        '  emit       commented {"by": "ann"}\n'), "")


def test_send_shortcut_does_what_instances_send_does(run: Run) -> None:
    run("instances", "create", "ticket", "--id", "t1")
    run("instances", "create", "ticket", "--id", "t2")
    _, long, _ = run("instances", "send", "t1", "ASSIGN", "--json")
    _, short, _ = run("send", "t2", "ASSIGN", "--json")
    assert {**as_json(long), "instance_id": "t2"} == as_json(short) == {
        "instance_id": "t2", "event": "ASSIGN", "outcome": "applied", "revision": 2,
        "configuration_before": ["open"], "configuration_after": ["assigned"], "transitions": ["open:ASSIGN:0"],
        "effects": [], "done": False, "replayed": False}


def test_send_records_the_actor(run: Run) -> None:
    run("instances", "create", "ticket", "--id", "t1")
    run("send", "t1", "ASSIGN", "--actor", "api")
    _, out, _ = run("instances", "show", "t1", "--json")
    assert [(r["event"], r["actor"]) for r in as_json(out)["audit"]] == [("(start)", None), ("ASSIGN", "api")]


def test_send_with_a_used_key_replays_the_receipt_and_changes_nothing(run: Run) -> None:
    run("instances", "create", "ticket", "--id", "t1")
    run("send", "t1", "ASSIGN", "--key", "req-1")
    code, out, _ = run("send", "t1", "ASSIGN", "--key", "req-1")
    assert code == 0
    assert out.splitlines()[:2] == [
        "t1  ASSIGN  applied  revision 2",
        "  replayed   the idempotency key was used before with this request; nothing changed"]
    _, out, _ = run("send", "t1", "ASSIGN", "--key", "req-1", "--json")
    assert as_json(out)["replayed"] is True
    assert as_json(run("instances", "show", "t1", "--json")[1])["revision"] == 2


def test_send_with_a_used_key_and_another_request_is_an_idempotency_conflict(run: Run) -> None:
    run("instances", "create", "ticket", "--id", "t1")
    run("send", "t1", "ASSIGN", "--key", "req-1")
    assert run("send", "t1", "CLOSE", "--key", "req-1") == (
        1, "", "error: idempotency key 'req-1' was already used on instance 't1' with a different event or "
               "payload; use a new key for a new request\n")


def test_send_to_an_unknown_instance_fails(run: Run) -> None:
    assert run("send", "nope", "ASSIGN") == (1, "", "error: no stored instance with id 'nope'\n")
    assert run("instances", "send", "nope", "ASSIGN") == (1, "", "error: no stored instance with id 'nope'\n")


def test_send_with_bad_json_is_a_usage_error_and_changes_nothing(run: Run) -> None:
    run("instances", "create", "ticket", "--id", "t1")
    code, out, err = run("send", "t1", "ASSIGN", "--data", "{")
    assert (code, out) == (2, "")
    assert ("Error: Invalid value for '--data': not valid JSON: Expecting property name enclosed in double quotes "
            "(at character 1)") in err
    assert [r["event"] for r in as_json(run("instances", "show", "t1", "--json")[1])["audit"]] == ["(start)"]


def test_send_of_an_unhandled_event_reports_it_without_failing(run: Run) -> None:
    run("instances", "create", "ticket", "--id", "t1")
    code, out, _ = run("send", "t1", "PASS")
    assert code == 0
    assert out.splitlines()[0] == "t1  PASS  not handled  revision 2"


def test_send_strict_fails_on_an_unknown_event(run: Run) -> None:
    run("instances", "create", "ticket", "--id", "t1")
    assert run("send", "t1", "ASIGN", "--strict") == (
        1, "", "error: machine 'ticket' has no transition for event 'ASIGN'; did you mean 'ASSIGN'?\n")


def test_send_to_a_finished_instance_fails(run: Run) -> None:
    run("instances", "create", "ticket", "--id", "t1")
    assert run("send", "t1", "CLOSE")[1].splitlines()[0] == "t1  CLOSE  applied  revision 2  (done)"
    assert run("send", "t1", "ASSIGN") == (
        1, "", "error: cannot process 'ASSIGN': the instance has finished in {closed}\n")


# -- instances list / show / delete ---------------------------------------------------------------------
def test_list_prints_a_table_by_id(run: Run) -> None:
    run("instances", "create", "ticket", "--id", "t2")
    run("instances", "create", "ticket", "--id", "t1")
    run("send", "t1", "ASSIGN")
    code, out, _ = run("instances", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "ID  MACHINE    STATE     REVISION  UPDATED"
    assert re.fullmatch(r"t1  ticket v1  assigned         2  .+ ago", lines[1])
    assert re.fullmatch(r"t2  ticket v1  open             1  .+ ago", lines[2])
    assert len(lines) == 3


def test_list_filters_by_machine_version_state_and_pages(run: Run) -> None:
    for instance_id in ("t1", "t2", "t3"):
        run("instances", "create", "ticket", "--id", instance_id)
    run("instances", "create", "reminder", "--id", "r1")
    run("send", "t2", "ASSIGN")

    def ids(*options: str) -> list[str]:
        code, out, _ = run("instances", "list", "--json", *options)
        assert code == 0
        return [i["id"] for i in as_json(out)]

    assert ids() == ["r1", "t1", "t2", "t3"]
    assert ids("--machine", "ticket") == ["t1", "t2", "t3"]
    assert ids("--machine", "ticket", "--version", "2") == []
    assert ids("--state", "open") == ["t1", "t3"]
    assert ids("--limit", "2") == ["r1", "t1"]
    assert ids("--limit", "2", "--after", "t1") == ["t2", "t3"]


def test_list_stuck_for_shows_instances_long_in_a_state_once_each(run: Run, old_store: Store) -> None:
    old_store.create("ticket", id="old-1")
    old_store.create("ticket", id="old-2")
    old_store.send("old-2", "ASSIGN")
    old_store.send("old-2", "RESOLVE")  # two atomic states: testing and writing
    run("instances", "create", "ticket", "--id", "new-1")
    code, out, _ = run("instances", "list", "--stuck-for", "2h", "--json")
    assert code == 0
    assert [(i["id"], i["state"]) for i in as_json(out)] == [
        ("old-1", ["open"]), ("old-2", ["testing", "writing"])]


def test_list_with_a_bad_duration_is_a_usage_error(run: Run) -> None:
    code, _, err = run("instances", "list", "--stuck-for", "2 hours")
    assert code == 2
    assert ("Invalid value for '--stuck-for': '2 hours' is not a duration; write a number and a unit: "
            "500ms, 30s, 5m, 2h or 1d") in err


def test_show_prints_state_data_timers_and_audit(run: Run, old_store: Store) -> None:
    old_store.create("reminder", id="r1", data={"note": "call"})
    code, out, _ = run("instances", "show", "r1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "r1  reminder v1, revision 1"
    assert re.fullmatch(rf"  state     waiting  \(for {D}\)", lines[1])
    assert lines[2:6] == ["  config    waiting", '  data      {"note": "call"}', "  created   1970-01-01 00:16:40Z",
                          "  updated   1970-01-01 00:16:40Z"]
    assert lines[6:9] == ["timers", "  EVENT            ID               DUE",
                          "  after.0.waiting  after.0.waiting  1970-01-01 00:46:40Z (due)"]
    assert lines[9:] == ["audit", "  REV  EVENT    OUTCOME  TO       ACTOR  AT",
                         "    1  (start)  applied  waiting  -      1970-01-01 00:16:40Z"]


def test_show_json_has_configuration_data_revision_timers_and_audit(run: Run, old_store: Store) -> None:
    old_store.create("ticket", id="t1")
    for event in ("ASSIGN", "RESOLVE", "PASS"):
        old_store.send("t1", event)
    old_store.create("reminder", id="r1")
    _, out, _ = run("instances", "show", "t1", "--json", "--audit", "2")
    document = as_json(out)
    assert (document["state"], document["configuration"], document["revision"], document["done"]) == (
        ["passed", "writing"], ["docs", "passed", "qa", "review", "writing"], 4, False)
    assert [(r["revision"], r["event"]) for r in document["audit"]] == [(3, "RESOLVE"), (4, "PASS")]
    assert document["audit_total"] == 4
    assert document["pending_timers"] == []
    _, out, _ = run("instances", "show", "r1", "--json")
    assert as_json(out)["pending_timers"] == [
        {"id": "after.0.waiting", "event": "after.0.waiting", "data": None, "due": 2800.0}]


def test_show_of_an_unknown_instance_fails(run: Run) -> None:
    assert run("instances", "show", "nope") == (1, "", "error: no stored instance with id 'nope'\n")


def test_delete_removes_the_instance(run: Run) -> None:
    run("instances", "create", "ticket", "--id", "t1")
    assert run("instances", "delete", "t1") == (0, "deleted t1\n", "")
    assert run("instances", "show", "t1") == (1, "", "error: no stored instance with id 't1'\n")
    assert run("instances", "delete", "t1") == (1, "", "error: no stored instance with id 't1'\n")


# -- worker -------------------------------------------------------------------------------------------------
def test_worker_once_fires_the_due_timers_and_exits(run: Run, old_store: Store) -> None:
    old_store.create("reminder", id="r1")  # due at t=2800, long ago
    run("instances", "create", "reminder", "--id", "r2")  # due in 30 minutes
    assert run("worker", "--once") == (
        0, "fired after.0.waiting on r1: applied, revision 2, now in due\n", "1 timer(s) fired\n")
    assert as_json(run("instances", "show", "r1", "--json")[1])["state"] == ["due"]
    assert as_json(run("instances", "show", "r2", "--json")[1])["state"] == ["waiting"]
    assert run("worker", "--once") == (0, "", "0 timer(s) fired\n")


def test_worker_stops_cleanly_on_ctrl_c(run: Run, old_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    old_store.create("reminder", id="r1")
    waits: list[float] = []

    def interrupted(seconds: float) -> None:
        waits.append(seconds)
        raise KeyboardInterrupt

    monkeypatch.setattr("statechart.cli.store._sleep", interrupted)
    assert run("worker", "--poll", "250ms") == (
        0, "fired after.0.waiting on r1: applied, revision 2, now in due\n", "stopped\n1 timer(s) fired\n")
    assert waits == [0.25]


def test_worker_with_a_bad_poll_interval_is_a_usage_error(run: Run) -> None:
    code, _, err = run("worker", "--poll", "soon")
    assert code == 2
    assert "Invalid value for '--poll': 'soon' is not a duration" in err


# -- outbox -------------------------------------------------------------------------------------------------
def test_outbox_list_publish_and_lag(run: Run) -> None:
    run("instances", "create", "ticket", "--id", "t1")
    run("send", "t1", "ASSIGN")
    run("send", "t1", "COMMENT", "--data", '{"by": "ann"}')
    run("send", "t1", "COMMENT", "--data", '{"by": "bob"}')
    code, out, _ = run("outbox", "list", "--json")
    assert code == 0
    events = as_json(out)
    assert [(e["instance_id"], e["machine"], e["event"], e["data"], e["published_at"]) for e in events] == [
        ("t1", "ticket", "commented", {"by": "ann"}, None), ("t1", "ticket", "commented", {"by": "bob"}, None)]
    first, second = (str(e["id"]) for e in events)
    assert as_json(run("outbox", "lag", "--json")[1])["unpublished"] == 2
    assert run("outbox", "publish", first) == (0, "marked 1 event(s) published\n", "")
    assert run("outbox", "publish", first, second) == (0, "marked 1 event(s) published; 1 already were\n", "")
    assert run("outbox", "list", "--json")[1] == "[]\n"
    assert as_json(run("outbox", "lag", "--json")[1]) == {"lag_seconds": 0.0, "unpublished": 0}
    assert run("outbox", "lag") == (0, "lag 0s (0.000s), 0 unpublished\n", "")


def test_outbox_list_prints_a_table(run: Run) -> None:
    run("instances", "create", "ticket", "--id", "t1")
    run("send", "t1", "ASSIGN")
    run("send", "t1", "COMMENT", "--data", '{"by": "ann"}')
    lines = run("outbox", "list")[1].splitlines()
    assert lines[0] == "ID  INSTANCE  MACHINE  EVENT      DATA           WAITING"
    assert re.fullmatch(r" *\d+  t1        ticket   commented  \{\"by\": \"ann\"\}  .+", lines[1])


def test_outbox_publish_of_an_unknown_id_marks_nothing(run: Run) -> None:
    run("instances", "create", "ticket", "--id", "t1")
    run("send", "t1", "ASSIGN")
    run("send", "t1", "COMMENT", "--data", '{"by": "ann"}')
    (event,) = as_json(run("outbox", "list", "--json")[1])
    assert run("outbox", "publish", str(event["id"]), "999999") == (
        1, "", "error: no outbox event with id 999999; nothing was marked\n")
    assert len(as_json(run("outbox", "list", "--json")[1])) == 1


def test_outbox_publish_needs_integer_ids(run: Run) -> None:
    code, _, err = run("outbox", "publish", "first")
    assert code == 2
    assert "'first' is not a valid integer" in err


# -- metrics ------------------------------------------------------------------------------------------------
@pytest.fixture
def population(old_store: Store) -> Store:
    for n in range(1, 4):
        old_store.create("ticket", id=f"t{n}")
    old_store.send("t1", "ASSIGN")
    old_store.send("t2", "ASSIGN")
    old_store.send("t2", "PASS")  # unhandled
    old_store.send("t3", "CLOSE")
    with pytest.raises(statechart.InstanceDoneError):
        old_store.send("t3", "ASSIGN")  # rejected
    old_store.create("reminder", id="r1")
    return old_store


def test_metrics_json(run: Run, population: Store) -> None:
    code, out, _ = run("metrics", "--machine", "ticket", "--json")
    assert code == 0
    document = as_json(out)
    assert document["instances"] == [{"machine": "ticket", "version": 1, "instances": 3, "active": 2, "done": 1}]
    assert document["events"] == {"applied": 3, "unhandled": 1, "rejected": 1, "total": 5, "illegal": 2,
                                  "illegal_rate": 0.4, "per_second": None}
    assert document["transitions"] == [{"machine": "ticket", "from": "open", "to": "assigned", "count": 2},
                                       {"machine": "ticket", "from": "open", "to": "closed", "count": 1}]
    assert [(s["state"], s["count"]) for s in document["time_in_state"]] == [("assigned", 2)]
    assert document["stuck"]["instances"] == 2
    assert [(s["state"], s["oldest"]) for s in document["stuck"]["states"]] == [("assigned", ["t1", "t2"])]
    assert document["stuck_after_seconds"] == 3600.0


def test_metrics_window_and_stuck_after_options(run: Run, population: Store) -> None:
    document = as_json(run("metrics", "--window", "1h", "--stuck-after", "1d", "--json")[1])
    assert (document["window_seconds"], document["stuck_after_seconds"]) == (3600.0, 86400.0)
    assert document["events"]["total"] == 0  # everything happened in 1970
    assert document["stuck"]["instances"] == 3  # t1, t2 and the reminder


def test_metrics_prints_aligned_tables(run: Run, population: Store) -> None:
    code, out, _ = run("metrics", "--stuck-after", "2h")
    assert code == 0
    lines = out.splitlines()
    assert lines[:4] == ["instances",
                         "  MACHINE   VERSION  INSTANCES  ACTIVE  DONE",
                         "  reminder        1          1       1     0",
                         "  ticket          1          3       2     1"]
    assert lines[4:6] == ["events (all time)",
                          "  5 events: 3 applied, 1 unhandled, 1 rejected; illegal rate 40.0%"]
    assert lines[6:10] == ["transitions",
                           "  MACHINE  FROM  TO        COUNT",
                           "  ticket   open  assigned      2",
                           "  ticket   open  closed        1"]
    assert lines[10] == "time in state"
    assert re.fullmatch(r"  MACHINE   STATE     INSTANCES  MEAN +MAX", lines[11])
    assert re.fullmatch(rf"  reminder  waiting           1  {D} +{D}", lines[12])
    assert re.fullmatch(rf"  ticket    assigned          2  {D} +{D}", lines[13])
    assert lines[14] == "stuck (in a non-final state for 2h or more): 3 instance(s)"
    assert re.fullmatch(r"  MACHINE   STATE     INSTANCES  LONGEST +OLDEST", lines[15])
    assert re.fullmatch(rf"  ticket    assigned          2  {D} +t1, t2", lines[16])
    assert re.fullmatch(rf"  reminder  waiting           1  {D} +r1", lines[17])
    assert lines[18:] == ["outbox", "  0 unpublished, lag 0s", "failures (quarantined work): 0 parked",
                          "  KIND       FAILING  PARKED", "  timer            0       0",
                          "  outbox           0       0", "  migration        0       0"]


def test_metrics_of_an_empty_store_says_none(run: Run) -> None:
    out = run("metrics", "--window", "30m")[1]
    assert "events (last 30m)\n  0 events, 0/s: 0 applied, 0 unhandled, 0 rejected; illegal rate 0.0%\n" in out
    assert "transitions\n  (none)\n" in out


# -- --store and --machines ---------------------------------------------------------------------------------
def test_store_url_comes_from_the_environment(run: Run, store_url: str, machines: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATECHART_STORE", store_url)
    assert run("instances", "create", "ticket", "--id", "t1", "--machines", str(machines), options=False)[0] == 0
    assert as_json(run("instances", "list", "--json")[1])[0]["id"] == "t1"


def test_an_explicit_missing_machines_folder_is_a_usage_error(run: Run, store_url: str, tmp_path: Path) -> None:
    code, _, err = run("instances", "create", "ticket", "--store", store_url, "--machines",
                       str(tmp_path / "nowhere"), options=False)
    assert code == 2
    assert "Invalid value for '--machines': " in err and "does not exist" in err


def test_defaults_are_statechart_db_and_machines_in_the_current_directory(
        machines: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("STATECHART_STORE", raising=False)
    monkeypatch.chdir(machines.parent)
    assert main(["instances", "create", "ticket", "--id", "t1"]) == 0
    assert capsys.readouterr().out == "created t1 (ticket v1) in open\n"
    assert (machines.parent / "statechart.db").is_file()
    with Store.open(f"sqlite:///{machines.parent / 'statechart.db'}") as store:
        assert store.load("t1").configuration == frozenset({"open"})


def test_without_a_machines_folder_a_command_needing_a_machine_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("STATECHART_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["instances", "create", "ticket"]) == 1
    assert capsys.readouterr().err == (
        "error: machine ticket is not registered with this store (registered: none); "
        "register machines/ticket/vN.yaml, or migrate the instance\n")
