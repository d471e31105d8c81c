"""`statechart demo`: a populated store, a migration to the latest versions, diagrams, and directions."""

from __future__ import annotations

import tempfile

import pytest

from statechart import Store
from statechart.cli import main
from statechart.demo import run_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    lines: list[str] = []
    result = run_demo(folder, instances=300, echo=lines.append)
    return result, "\n".join(lines)


def test_demo_stores_every_instance_it_created(demo):
    result, _ = demo
    assert sum(result.instances.values()) == 300
    with Store.open(result.store_url) as store:
        assert store.count() == 300
        for name, created in result.instances.items():
            assert store.count(name) == created > 0


def test_demo_spreads_delivery_over_several_states_and_leaves_pending_timers(demo):
    result, _ = demo
    with Store.open(result.store_url) as store:
        states = {s for i in store.list("delivery", limit=1000) for s in i.configuration}
        assert {"delivered", "canceled"} <= states
        assert len(states) >= 4
    assert result.events > 0
    assert result.timers_fired > 0
    assert result.pending_timers > 0


def test_demo_migrates_delivery_and_onboarding_to_their_latest_versions(demo):
    result, _ = demo
    with Store.open(result.store_url) as store:
        assert store.count("delivery") == store.count("delivery", version=3)
        assert store.count("onboarding") == store.count("onboarding", version=2)
    by_machine = {s.machine: s for s in result.migrations}
    assert by_machine["delivery"].migrated == result.instances["delivery"]
    assert by_machine["onboarding"].migrated == result.instances["onboarding"]
    assert by_machine["delivery"].failed == by_machine["onboarding"].failed == 0


def test_demo_renders_three_svg_diagrams_with_dot(demo):
    result, _ = demo
    assert not result.dot_missing
    assert set(result.files) == {"chart", "instance", "migration"}
    for path in result.files.values():
        assert path.parent == result.folder
        assert path.suffix == ".svg"
        assert path.read_text().lstrip().startswith(("<?xml", "<svg"))
    assert "offered" in result.files["chart"].read_text()
    assert "v1" in result.files["migration"].read_text()


def test_demo_output_names_the_files_and_the_next_command(demo):
    result, output = demo
    for path in result.files.values():
        assert str(path) in output
    assert f"statechart instances list --machine delivery --state dispatching --store {result.store_url}" in output
    assert "delivery -> v3:" in output and "onboarding -> v2:" in output
    assert "3. Lifecycle metrics" in output


def test_demo_uses_a_fresh_database_when_the_folder_already_has_one(tmp_path):
    first = run_demo(tmp_path, instances=20, echo=lambda line: None)
    second = run_demo(tmp_path, instances=20, echo=lambda line: None)
    assert first.database.name == "demo.db"
    assert second.database.name == "demo-1.db"
    with Store.open(second.store_url) as store:
        assert store.count() == 20


def test_demo_defaults_to_a_statechart_demo_folder_then_a_temporary_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "temp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temp"))
    first = run_demo(None, instances=10, echo=lambda line: None)
    second = run_demo(None, instances=10, echo=lambda line: None)
    assert first.folder == tmp_path / "statechart-demo"
    assert second.folder != first.folder
    assert second.folder.parent == tmp_path / "temp"
    assert second.folder.name.startswith("statechart-demo-")


def test_demo_command_runs_end_to_end(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--folder", "tmp", "--instances", "200"]) == 0
    output = capsys.readouterr().out
    assert (tmp_path / "tmp" / "demo.db").exists()
    assert (tmp_path / "tmp" / "delivery-v3.svg").exists()
    assert "Done in" in output
