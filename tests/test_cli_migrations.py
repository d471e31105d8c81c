"""The migration commands end to end through ``statechart.cli.main``, in a folder holding copies of
the project's machines/ and migrations/ (store commands on SQLite and on PostgreSQL)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Callable, Iterator

import pytest

import statechart
from statechart import Store, VirtualClock
from statechart.cli import main
from statechart.cli import migrations as migrations_cli
from statechart.migrate.skeleton import skeleton

ROOT = Path(__file__).resolve().parent.parent
Run = Callable[..., "tuple[int, str, str]"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copytree(ROOT / "machines", folder / "machines")
    shutil.copytree(ROOT / "migrations", folder / "migrations")
    monkeypatch.chdir(folder)
    monkeypatch.delenv("STATECHART_STORE", raising=False)
    return folder


@pytest.fixture
def run(project: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    """``run("diff", a, b)`` -> (exit code, stdout, stderr)."""

    def invoke(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


@pytest.fixture
def store(store_url: str, project: Path) -> Iterator[Store]:
    """The test's store with the project's machines registered (the commands open their own)."""
    with Store.open(store_url, clock=VirtualClock(1000.0)) as opened:
        opened.register(project / "machines")
        yield opened


def create_deliveries(store: Store) -> None:
    store.create("delivery", {"order_id": "o-1"}, id="d-1", version=1)
    store.create("delivery", {"order_id": "o-2"}, id="d-2", version=1)
    store.send("d-2", "RESTAURANT_ACCEPTED")
    store.create("delivery", {"order_id": "o-3"}, id="d-3", version=3)


# -- diff -------------------------------------------------------------------------------------------------
def test_diff_prints_states_transitions_and_data_that_changed(run: Run) -> None:
    assert run("diff", "machines/delivery/v2.yaml", "machines/delivery/v3.yaml") == (0, """\
machines/delivery/v2.yaml (delivery v2) -> machines/delivery/v3.yaml (delivery v3)
+ state ready
+ state restaurant_delivering
+ transition ready:always:0 (always [delivered_by == 'restaurant'] -> restaurant_delivering)
+ transition ready:always:1 (always -> dispatching)
+ transition restaurant_delivering:DELIVERED:0 (DELIVERED -> delivered)
~ transition preparing:FOOD_READY:0: target dispatching -> ready
~ transition preparing:after 20m:0: target dispatching -> ready
+ data delivered_by
""", "")


def test_diff_proposes_renamed_states(run: Run, project: Path) -> None:
    renamed = project / "renamed.yaml"
    renamed.write_text((project / "machines/delivery/v1.yaml").read_text().replace("courier_assigned", "assigned")
                       .replace("version: 1", "version: 2"))
    code, out, _ = run("diff", "machines/delivery/v1.yaml", str(renamed))
    assert code == 0
    assert out.splitlines()[1:] == [
        "+ state assigned",
        "- state courier_assigned",
        "+ transition assigned:PICKED_UP:0 (PICKED_UP -> delivering)",
        "- transition courier_assigned:PICKED_UP:0 (PICKED_UP -> delivering)",
        "~ transition dispatching:COURIER_ACCEPTED:0: target courier_assigned -> assigned",
        "? state courier_assigned looks renamed to assigned",
    ]


def test_diff_of_a_file_with_itself_says_there_is_no_difference(run: Run) -> None:
    code, out, _ = run("diff", "machines/delivery/v3.yaml", "machines/delivery/v3.yaml")
    assert (code, out.splitlines()[1:]) == (0, ["no difference in states, transitions or data"])


def test_diff_json_lists_every_kind_of_change(run: Run) -> None:
    code, out, _ = run("diff", "machines/onboarding/v1.yaml", "machines/onboarding/v2.yaml", "--json")
    assert code == 0
    assert json.loads(out) == {
        "old": {"file": "machines/onboarding/v1.yaml", "machine": "onboarding", "version": 1},
        "new": {"file": "machines/onboarding/v2.yaml", "machine": "onboarding", "version": 2},
        "states_added": [], "states_removed": [],
        "states_changed": [{"state": "welcoming", "change": "entry actions"}],
        "transitions_added": [], "transitions_removed": [], "transitions_changed": [],
        "data_added": ["channel"], "data_removed": [], "renamed": {},
    }


def test_diff_of_a_file_that_does_not_load_exits_1_with_its_problems(run: Run, project: Path) -> None:
    broken = project / "broken.yaml"
    broken.write_text("machine: delivery\nversion: 9\nstates:\n  a: {on: {GO: nowhere}}\n")
    code, out, err = run("diff", "machines/delivery/v1.yaml", str(broken))
    assert (code, out) == (1, "")
    assert err.startswith(f"FAIL {broken} does not load:\n  {broken}:4:")
    assert "nowhere" in err


def test_diff_of_a_missing_file_is_a_usage_error(run: Run) -> None:
    code, _, err = run("diff", "machines/delivery/v1.yaml", "machines/delivery/v7.yaml")
    assert code == 2
    assert "'machines/delivery/v7.yaml' does not exist" in err


# -- makemigration ----------------------------------------------------------------------------------------
def test_makemigration_writes_the_step_between_the_two_newest_versions(run: Run, project: Path) -> None:
    step = project / "migrations/delivery/v2_to_v3.py"
    step.unlink()
    assert run("makemigration", "delivery") == (0, """\
wrote migrations/delivery/v2_to_v3.py (delivery v2 -> v3)
  12 state(s) map to themselves
  check      submitted: v3 leaves it at once (submitted:always:1): map to where it leads
  TODO       data 'delivered_by': new in v3; derive it from the old data if you can
1 TODO(s) remain; review the file, then run `statechart migrations check delivery`
""", "")
    old = statechart.load(project / "machines/delivery/v2.yaml")
    new = statechart.load(project / "machines/delivery/v3.yaml")
    assert step.read_text() == skeleton(old, new)
    assert run("migrations", "check", "delivery", "--walks", "20")[0] == 0


def test_makemigration_does_not_overwrite_a_step_without_force(run: Run, project: Path) -> None:
    step = project / "migrations/delivery/v2_to_v3.py"
    written = step.read_text()
    assert run("makemigration", "delivery") == (
        1, "", "error: migrations/delivery/v2_to_v3.py exists; review and edit it, or pass --force to write a new "
               "draft over it\n")
    assert step.read_text() == written
    code, out, _ = run("makemigration", "delivery", "--force")
    assert (code, out.splitlines()[0]) == (0, "wrote migrations/delivery/v2_to_v3.py (delivery v2 -> v3)")
    assert step.read_text() != written
    assert "STATES = {" in step.read_text()


SHOP_V1 = """\
machine: shop
version: 1
initial: browsing
states:
  browsing: {on: {ADD: cart}}
  cart: {on: {PAUSE: paused, PAY: paid}}
  paused: {on: {RESUME: cart}}
  paid: {type: final}
"""

SHOP_V2 = """\
machine: shop
version: 2
initial: looking
states:
  looking: {on: {ADD: cart}}
  cart: {on: {PAY: paid}}
  paid: {type: final}
"""


def test_makemigration_proposes_renames_and_leaves_removed_states_todo_until_decided(run: Run,
                                                                                     project: Path) -> None:
    (project / "machines/shop").mkdir()
    (project / "machines/shop/v1.yaml").write_text(SHOP_V1)
    (project / "machines/shop/v2.yaml").write_text(SHOP_V2)
    assert run("makemigration", "shop") == (0, """\
wrote migrations/shop/v1_to_v2.py (shop v1 -> v2)
  2 state(s) map to themselves
  proposed   browsing -> looking (looks renamed; confirm it)
  TODO       paused: removed in v2; decide where its instances go
1 TODO(s) remain; `statechart migrations check shop` fails until the 1 state(s) marked 'TODO' are decided
""", "")
    code, out, _ = run("migrations", "check", "shop", "--walks", "0")
    assert code == 1
    assert out == """\
shop v1 -> v2  (migrations/shop/v1_to_v2.py)
  FAIL 1 of all 4 configurations (exhaustive) cannot be migrated:
         {paused}: STATES['paused'] is still 'TODO': decide where these instances go
  skip random walks (--walks 0)
1 step(s) checked, 1 with findings
"""
    step = project / "migrations/shop/v1_to_v2.py"
    step.write_text(step.read_text().replace("'paused': 'TODO'", "'paused': 'cart'"))
    code, out, _ = run("migrations", "check", "shop", "--walks", "30")
    assert code == 0
    assert "  ok   all 4 configurations (exhaustive): each maps to a legal resting configuration of v2\n" in out


SOLO = """\
machine: solo
version: 2
initial: a
states:
  a: {on: {GO: b}}
  b: {type: final}
"""


def test_makemigration_of_a_machine_with_one_version_says_what_to_add(run: Run, project: Path) -> None:
    (project / "machines/solo").mkdir()
    (project / "machines/solo/v2.yaml").write_text(SOLO)
    assert run("makemigration", "solo") == (
        1, "", "error: solo has one version (v2): add machines/solo/v3.yaml first\n")


def test_makemigration_needs_consecutive_versions(run: Run, project: Path) -> None:
    (project / "machines/delivery/v3.yaml").rename(project / "machines/delivery/v4.yaml")
    assert run("makemigration", "delivery") == (
        1, "", "error: the two newest versions of delivery are v2 and v4; a step goes from one version to the "
               "next, so machines/delivery/v3.yaml is missing\n")


def test_makemigration_of_an_unknown_machine_names_the_machines_there(run: Run, project: Path) -> None:
    there = sorted(p.name for p in (project / "machines").iterdir() if p.is_dir())
    assert {"delivery", "onboarding"} <= set(there)
    assert run("makemigration", "nosuch") == (
        1, "", f"error: no machine 'nosuch' in machines/ (no machines/nosuch/v<N>.yaml files; machines there: "
               f"{', '.join(there)})\n")


def test_an_explicit_machines_folder_must_exist(run: Run) -> None:
    code, _, err = run("makemigration", "delivery", "--machines", "elsewhere")
    assert code == 2
    assert "Invalid value for '--machines': 'elsewhere' is not a folder" in err


def test_makemigration_reads_and_writes_the_folders_given(run: Run, project: Path) -> None:
    (project / "machines").rename(project / "defs")
    code, out, _ = run("makemigration", "onboarding", "--machines", "defs", "--migrations", "steps")
    assert code == 0
    assert out.splitlines()[0] == "wrote steps/onboarding/v1_to_v2.py (onboarding v1 -> v2)"
    assert (project / "steps/onboarding/v1_to_v2.py").exists()


# -- migrations check -------------------------------------------------------------------------------------
def test_check_of_the_delivery_chain_passes(run: Run) -> None:
    assert run("migrations", "check", "delivery", "--walks", "50") == (0, """\
delivery v1 -> v2  (migrations/delivery/v1_to_v2.py)
  ok   all 7 configurations (exhaustive): each maps to a legal resting configuration of v2
  ok   50 random walks: migrated mid-run, v2 kept running legally
delivery v2 -> v3  (migrations/delivery/v2_to_v3.py)
  ok   all 10 configurations (exhaustive): each maps to a legal resting configuration of v3
  ok   50 random walks: migrated mid-run, v3 kept running legally
2 step(s) checked, 0 with findings
""", "")


def test_check_names_each_failing_configuration_and_why(run: Run, project: Path) -> None:
    step = project / "migrations/delivery/v1_to_v2.py"
    step.write_text(step.read_text().replace('"submitted": "offered"', '"submitted": "submitted"'))
    code, out, _ = run("migrations", "check", "delivery", "--walks", "40")
    assert code == 1
    lines = out.splitlines()
    assert lines[:3] == [
        "delivery v1 -> v2  (migrations/delivery/v1_to_v2.py)",
        "  FAIL 1 of all 7 configurations (exhaustive) cannot be migrated:",
        "         {submitted}: state 'submitted' is not a resting state of delivery v2: its eventless transition "
        "submitted:always:0 would fire at once, and a migration runs no transition; map these instances to where it "
        "leads instead",
    ]
    assert re.fullmatch(r"  FAIL \d+ of 40 random walks failed:", lines[3])
    assert re.fullmatch(r"         walk \d+ \(.*\): state 'submitted' is not a resting state of delivery v2: .*",
                        lines[4])
    assert lines[-1] == "2 step(s) checked, 1 with findings"


def test_check_samples_when_told_to_enumerate_fewer_configurations(run: Run) -> None:
    code, out, _ = run("migrations", "check", "delivery", "--walks", "0", "--limit", "4")
    assert code == 0
    assert out.splitlines()[1] == ("  ok   4 sampled configurations (too many to enumerate all): each maps to a "
                                   "legal resting configuration of v2")


def test_check_finds_a_version_without_a_step(run: Run, project: Path) -> None:
    (project / "machines/delivery/v4.yaml").write_text(
        (project / "machines/delivery/v3.yaml").read_text().replace("version: 3", "version: 4"))
    code, out, _ = run("migrations", "check", "delivery", "--walks", "0")
    assert code == 1
    assert out.splitlines()[0] == ("FAIL no step from v3 to v4: write migrations/delivery/v3_to_v4.py "
                                   "(`statechart makemigration delivery` drafts it)")
    assert out.splitlines()[-1] == "2 step(s) checked, 0 with findings, 1 chain problem(s)"


def test_check_of_a_broken_chain_exits_1_with_the_reason(run: Run, project: Path) -> None:
    (project / "migrations/delivery/v2_to_v3.py").rename(project / "migrations/delivery/v3_to_v4.py")
    assert run("migrations", "check", "delivery") == (
        1, "", "error: migrations/delivery: the chain has a gap between v2 and v3\n")


def test_check_of_a_machine_needing_no_step(run: Run, project: Path) -> None:
    (project / "machines/solo").mkdir()
    (project / "machines/solo/v2.yaml").write_text(SOLO)
    assert run("migrations", "check", "solo") == (
        0, "solo has no migration steps in migrations/solo/ and none is needed (versions: v2)\n", "")


def test_check_json(run: Run, project: Path) -> None:
    step = project / "migrations/onboarding/v1_to_v2.py"
    step.write_text(step.read_text().replace('"unsubscribed": "unsubscribed",', ""))
    code, out, _ = run("migrations", "check", "onboarding", "--json", "--walks", "0")
    assert code == 1
    assert json.loads(out) == {"machine": "onboarding", "ok": False, "problems": [], "steps": [{
        "step": "onboarding v1 -> v2", "file": "migrations/onboarding/v1_to_v2.py", "from_version": 1,
        "to_version": 2, "configurations": 3, "exhaustive": True, "walks": 0, "walk_problems": [],
        "findings": [{"configuration": ["unsubscribed"], "history": {},
                      "reason": "state 'unsubscribed' has no entry in STATES (nor has any of its ancestors)"}]}]}


# -- migrations status ------------------------------------------------------------------------------------
def test_status_shows_versions_states_the_chain_and_what_is_pending(run: Run, store: Store, store_url: str) -> None:
    create_deliveries(store)
    assert run("migrations", "status", "delivery", "--store", store_url) == (0, """\
delivery: latest version v3
chain: v1 -> v2 -> v3  (2 step(s) in migrations/delivery/)
instances
  VERSION  INSTANCES
  v1               2  2 version(s) behind
  v3               1  current
states
  VERSION  STATE      INSTANCES
  v1       preparing          1
  v1       submitted          1
  v3       offered            1
pending: delivery v1 -> v2, delivery v2 -> v3; 2 instance(s) below v3: run `statechart migrate delivery`
""", "")


def test_status_check_exits_1_while_any_instance_is_behind(run: Run, store: Store, store_url: str) -> None:
    create_deliveries(store)
    code, _, err = run("migrations", "status", "delivery", "--store", store_url, "--check")
    assert (code, err) == (1, "2 instance(s) of delivery are below v3\n")
    assert run("migrate", "delivery", "--store", store_url)[0] == 0
    code, out, err = run("migrations", "status", "delivery", "--store", store_url, "--check")
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "up to date: no instance is below v3"


def test_status_json(run: Run, store: Store, store_url: str) -> None:
    create_deliveries(store)
    code, out, _ = run("migrations", "status", "delivery", "--store", store_url, "--json")
    assert code == 0
    assert json.loads(out) == {
        "machine": "delivery", "latest": 3, "versions": {"1": 2, "3": 1}, "behind": 2, "current": False,
        "chain": ["delivery v1 -> v2", "delivery v2 -> v3"],
        "pending_steps": ["delivery v1 -> v2", "delivery v2 -> v3"],
        "states": [{"version": 1, "state": "preparing", "instances": 1},
                   {"version": 1, "state": "submitted", "instances": 1},
                   {"version": 3, "state": "offered", "instances": 1}]}


def test_the_store_defaults_to_the_environment(run: Run, store: Store, store_url: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    create_deliveries(store)
    monkeypatch.setenv("STATECHART_STORE", store_url)
    code, out, _ = run("migrations", "status", "delivery", "--json")
    assert (code, json.loads(out)["behind"]) == (0, 2)


def test_the_default_store_is_statechart_db_in_the_current_folder(run: Run, project: Path) -> None:
    assert run("migrations", "status", "delivery", "--check")[0] == 0
    assert (project / "statechart.db").exists()


# -- migrate ----------------------------------------------------------------------------------------------
def test_migrate_plan_prints_the_steps_and_runs_nothing(run: Run, store: Store, store_url: str) -> None:
    create_deliveries(store)
    assert run("migrate", "delivery", "--plan", "--store", store_url) == (0, """\
plan: 2 instance(s) of delivery to v3, 1 already there
  1. delivery v1 -> v2  migrations/delivery/v1_to_v2.py  (2 at v1; STATES table + map_data, timers keep)
  2. delivery v2 -> v3  migrations/delivery/v2_to_v3.py  (0 at v2; STATES table + map_data, timers keep)
nothing was run (--plan)
""", "")
    assert [(s.id, s.version, s.revision) for s in store.list("delivery")] == [("d-1", 1, 1), ("d-2", 1, 2),
                                                                               ("d-3", 3, 1)]


def test_migrate_plan_json_and_nothing_to_do(run: Run, store: Store, store_url: str) -> None:
    create_deliveries(store)
    code, out, _ = run("migrate", "delivery", "--plan", "--json", "--store", store_url, "--to", "2")
    assert code == 0
    assert json.loads(out) == {"machine": "delivery", "to_version": 2, "below_target": 2, "already_current": 0,
                               "steps": [{"step": "delivery v1 -> v2", "file": "migrations/delivery/v1_to_v2.py",
                                          "from_version": 1, "to_version": 2, "instances": 2, "timers": "keep",
                                          "states": "STATES", "map_data": True}]}
    run("migrate", "delivery", "--store", store_url)
    assert run("migrate", "delivery", "--plan", "--store", store_url) == (
        0, "nothing to do: no instance of delivery is below v3\n", "")


def test_migrate_moves_every_instance_and_prints_a_summary(run: Run, store: Store, store_url: str) -> None:
    create_deliveries(store)
    code, out, err = run("migrate", "delivery", "--store", store_url, "--batch-size", "1")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert re.fullmatch(r"migrated 2 instance\(s\) of delivery to v3 in \d+\.\d\ds \(\d+\.\d instances/s\)", lines[0])
    assert lines[1:] == ["  already current  1", "  failed           0"]
    assert [(s.id, s.version, sorted(s.configuration)) for s in store.list("delivery")] == [
        ("d-1", 3, ["offered"]), ("d-2", 3, ["preparing"]), ("d-3", 3, ["offered"])]


def test_migrate_to_an_intermediate_version(run: Run, store: Store, store_url: str) -> None:
    create_deliveries(store)
    code, out, _ = run("migrate", "delivery", "--to", "2", "--store", store_url, "--json")
    assert code == 0
    assert (json.loads(out)["to_version"], json.loads(out)["migrated"]) == (2, 2)
    assert store.load("d-1").version == 2


def test_migrate_to_an_unknown_version_fails_naming_the_registered_ones(run: Run, store: Store,
                                                                        store_url: str) -> None:
    code, _, err = run("migrate", "delivery", "--to", "9", "--store", store_url)
    assert code == 1
    assert err.startswith("error: machine delivery v9 is not registered with this store (registered: ")
    assert "delivery v1, delivery v2, delivery v3, " in err


def test_migrate_dry_run_reports_the_changes_and_writes_nothing(run: Run, store: Store, store_url: str) -> None:
    create_deliveries(store)
    code, out, _ = run("migrate", "delivery", "--dry-run", "--store", store_url)
    assert code == 0
    lines = out.splitlines()
    assert re.fullmatch(r"dry run: would migrate 2 instance\(s\) of delivery to v3; nothing was written "
                        r"\(\d+\.\d\ds\)", lines[0])
    assert lines[1:] == ["  already current  1", "  would fail       0", "  would change:",
                         "    d-1: v1 {submitted} -> v3 {offered}", "    d-2: v1 {preparing} -> v3 {preparing}"]
    assert [(s.id, s.version, s.revision) for s in store.list("delivery")] == [("d-1", 1, 1), ("d-2", 1, 2),
                                                                               ("d-3", 3, 1)]


FAILING_STEP = """\
TABLE = {"submitted": "offered", "preparing": "preparing", "dispatching": "dispatching",
         "courier_assigned": "courier_assigned", "delivering": "delivering", "delivered": "delivered",
         "canceled": "canceled"}


def map_state(instance):
    if instance.data["order_id"] == "o-2":
        raise ValueError("no courier zone for this address")
    return [TABLE[leaf] for leaf in instance.leaves]


def map_data(instance):
    return {**instance.data, "partner": True, "purchase_total": None}
"""


def test_migrate_with_failing_instances_exits_1_with_the_first_reasons(run: Run, store: Store, store_url: str,
                                                                       project: Path) -> None:
    create_deliveries(store)
    (project / "migrations/delivery/v1_to_v2.py").write_text(FAILING_STEP)
    code, out, _ = run("migrate", "delivery", "--store", store_url)
    assert code == 1
    assert out.splitlines()[1:] == [
        "  already current  1",
        "  failed           1",
        "    d-2: map_state raised ValueError: no courier zone for this address",
        "failed instances stay at their old version; fix the step and run the migration again",
    ]
    assert (store.load("d-1").version, store.load("d-2").version) == (3, 1)
    code, out, _ = run("migrate", "delivery", "--store", store_url, "--json")
    assert code == 1
    document = json.loads(out)
    assert (document["migrated"], document["failed"], document["failures"]) == (
        0, 1, [{"id": "d-2", "reason": "map_state raised ValueError: no courier zone for this address"}])


def test_migrate_fail_fast_says_it_stopped_early(run: Run, store: Store, store_url: str, project: Path) -> None:
    create_deliveries(store)
    store.create("delivery", {"order_id": "o-4"}, id="d-4", version=1)
    (project / "migrations/delivery/v1_to_v2.py").write_text(FAILING_STEP)
    code, out, _ = run("migrate", "delivery", "--store", store_url, "--batch-size", "1", "--fail-fast")
    assert code == 1
    assert out.splitlines()[-1] == ("failed instances stay at their old version; fix the step and run the migration "
                                    "again (stopped early: --fail-fast)")
    assert [store.load(i).version for i in ("d-1", "d-2", "d-4")] == [3, 1, 1]


def test_migrate_shows_a_progress_bar_with_rate_and_eta_on_a_terminal(run: Run, store: Store, store_url: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    create_deliveries(store)
    monkeypatch.setattr(migrations_cli, "_is_terminal", lambda stream: True)
    monkeypatch.setattr("click._termui_impl.isatty", lambda stream: True)  # click hides bars off a terminal
    code, out, err = run("migrate", "delivery", "--store", store_url, "--batch-size", "1")
    assert code == 0
    assert "migrating delivery" in err
    assert "2/2" in err and "100%" in err
    assert re.search(r"\d+ instances/s", err)
    assert out.startswith("migrated 2 instance(s)")


def test_migrate_draws_no_progress_bar_off_a_terminal(run: Run, store: Store, store_url: str) -> None:
    create_deliveries(store)
    assert run("migrate", "delivery", "--store", store_url)[2] == ""


@pytest.mark.parametrize(("argv", "message"), [
    (["--batch-size", "0"], "Invalid value for '--batch-size': 0 is not in the range 1<=x<=1000000."),
    (["--max-rate", "0"], "Invalid value for '--max-rate': 0.0 is not in the range x>0."),
    (["--migrations", "nowhere"], "Invalid value for '--migrations': 'nowhere' is not a folder"),
])
def test_migrate_usage_errors_exit_2(run: Run, store_url: str, argv: list[str], message: str) -> None:
    code, out, err = run("migrate", "delivery", "--store", store_url, *argv)
    assert (code, out) == (2, "")
    assert message in err


def test_migrate_without_a_step_says_which_is_missing(run: Run, store: Store, store_url: str, project: Path) -> None:
    create_deliveries(store)
    (project / "migrations/delivery/v2_to_v3.py").unlink()
    assert run("migrate", "delivery", "--store", store_url) == (
        1, "", "error: no step from v2 to v3 in migrations/delivery/ (write it, or run `statechart makemigration "
               "delivery`)\n")


@pytest.mark.parametrize("command", [["diff"], ["makemigration"], ["migrations"], ["migrations", "check"],
                                     ["migrations", "status"], ["migrate"]])
def test_help_of_every_migration_command_has_an_example(run: Run, command: list[str]) -> None:
    code, out, _ = run(*command, "--help")
    assert code == 0
    assert "Example:" in out
