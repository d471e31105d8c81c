"""A migration step that fails for some instances (huge, deep or unstorable data, a corrupt row) is
recorded per instance; the rest of the batch migrates; reruns count attempts, then skip the parked
ones with a clear report, and finish once the step is fixed. On both backends, API and CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import statechart
from statechart import Store, VirtualClock
from statechart.cli import main
from statechart.migrate.runner import migrate

V1 = """\
machine: box
version: 1
initial: open
data: {kind: plain}
states:
  open: {on: {CLOSE: closed}}
  closed: {}
"""
V2 = V1.replace("version: 1", "version: 2")

STEP = '''\
STATES = {"open": "open", "closed": "closed"}


def map_data(instance):
    kind = instance.data["kind"]
    if kind == "huge":
        return {"kind": kind, "n": 10 ** 5000}
    if kind == "deep":
        value = 1
        for _ in range(10_000):
            value = [value]
        return {"kind": kind, "deep": value}
    if kind == "surrogate":
        return {"kind": kind, "s": "\\ud800"}
    return {**instance.data, "migrated": True}
'''
FIXED_STEP = '''\
STATES = {"open": "open", "closed": "closed"}


def map_data(instance):
    return {**instance.data, "migrated": True}
'''
KINDS = {"b-1": "plain", "b-2": "huge", "b-3": "plain", "b-4": "deep", "b-5": "surrogate", "b-6": "plain",
         "b-7": "corrupt"}
BAD = ["b-2", "b-4", "b-5", "b-7"]


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    machines = tmp_path / "machines" / "box"
    machines.mkdir(parents=True)
    (machines / "v1.yaml").write_text(V1)
    (machines / "v2.yaml").write_text(V2)
    migrations = tmp_path / "migrations" / "box"
    migrations.mkdir(parents=True)
    (migrations / "v1_to_v2.py").write_text(STEP)
    return machines.parent, migrations.parent


def seeded(store_url: str, machines: Path, **options: object) -> Store:
    store = Store.open(store_url, clock=VirtualClock(1000), **options)
    store.register(machines)
    for instance_id, kind in KINDS.items():
        store.create("box", {"kind": kind if kind != "corrupt" else "plain"}, id=instance_id, version=1)
    store.backend.execute("UPDATE statechart_instances SET history = '{{{' WHERE id = 'b-7'")
    return store


def test_failing_map_data_is_recorded_per_instance_and_the_batch_migrates(store_url: str,
                                                                            folders: tuple[Path, Path]) -> None:
    machines, migrations = folders
    with seeded(store_url, machines) as store:
        summary = migrate(store, "box", migrations=migrations, batch_size=3)
        assert (summary.migrated, summary.failed) == (3, 4)
        reasons = dict(summary.failures)
        assert sorted(reasons) == BAD
        # map_data's result is checked as JSON where it is returned: the step and the instance are named
        for bad in ("b-2", "b-4"):
            assert reasons[bad].startswith("map_data of box v1 -> v2 (") and f"for instance {bad!r}" in reasons[bad]
        assert "integer beyond the 64-bit range" in reasons["b-2"]
        assert "surrogates not allowed" in reasons["b-5"]  # a Python string, refused where it is stored
        assert "cannot be decoded" in reasons["b-7"]
        assert {i: store.backend.execute("SELECT version FROM statechart_instances WHERE id = ?", (i,)).fetchone()[0]
                for i in KINDS} == {"b-1": 2, "b-2": 1, "b-3": 2, "b-4": 1, "b-5": 1, "b-6": 2, "b-7": 1}
        assert store.load("b-1").data == {"kind": "plain", "migrated": True}
        assert [(f.instance_id, f.kind, f.attempts, f.parked) for f in store.failures()] == [
            (i, "migration", 1, False) for i in BAD]
        assert store.audit("b-2")[-1]["outcome"] == "failed"
        assert store.metrics().failures[2].failing == 4


def test_reruns_park_the_instances_that_keep_failing_then_skip_them_and_finish_once_fixed(
        store_url: str, folders: tuple[Path, Path]) -> None:
    machines, migrations = folders
    with seeded(store_url, machines, max_attempts=2) as store:
        first = migrate(store, "box", migrations=migrations)
        second = migrate(store, "box", migrations=migrations)
        assert (first.failed, second.failed, second.migrated) == (4, 4, 0)
        assert [f.instance_id for f in store.failures(parked=True)] == BAD
        third = migrate(store, "box", migrations=migrations)
        assert (third.migrated, third.failed, third.parked) == (0, 0, tuple(BAD))  # skipped, and said so
        (migrations / "box" / "v1_to_v2.py").write_text(FIXED_STEP)
        store.backend.execute("UPDATE statechart_instances SET history = '{}' WHERE id = 'b-7'")  # repaired
        assert migrate(store, "box", migrations=migrations).parked == tuple(BAD)  # still parked: not retried
        for instance_id in BAD:
            store.retry(instance_id)
        fixed = migrate(store, "box", migrations=migrations)
        assert (fixed.migrated, fixed.failed, fixed.parked) == (4, 0, ())
        assert store.count("box", version=2) == 7
        assert store.failures() == []


def test_a_rerun_after_fixing_the_step_migrates_the_failed_ones_and_forgets_their_failures(
        store_url: str, folders: tuple[Path, Path]) -> None:
    machines, migrations = folders
    with seeded(store_url, machines) as store:
        store.delete("b-7")
        migrate(store, "box", migrations=migrations)
        (migrations / "box" / "v1_to_v2.py").write_text(FIXED_STEP)
        summary = migrate(store, "box", migrations=migrations)
        assert (summary.migrated, summary.failed) == (3, 0)
        assert store.failures() == []


def test_the_migrate_cli_reports_failures_and_parked_instances_without_a_traceback(
        store_url: str, folders: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    machines, migrations = folders
    seeded(store_url, machines, max_attempts=1).close()
    options = ["--store", store_url, "--machines", str(machines), "--migrations", str(migrations)]
    code = main(["migrate", "box", *options])
    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.out + captured.err
    assert "migrated 3 instance(s) of box to v2" in captured.out
    assert "b-2: " in captured.out and "b-7: " in captured.out
    code = main(["migrate", "box", "--json", *options])
    document = json.loads(capsys.readouterr().out)
    assert code == 1 and document["failed"] == 4  # max_attempts is the store default (5) in the CLI
    listed = main(["instances", "list", "--failed", "--json", "--store", store_url, "--machines", str(machines)])
    failures = json.loads(capsys.readouterr().out)
    assert listed == 0 and [(f["instance_id"], f["kind"], f["attempts"]) for f in failures] == [
        (i, "migration", 2) for i in BAD]
