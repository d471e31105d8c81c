"""Lazy upgrades: an old instance moves to the latest version when an event reaches it."""

from __future__ import annotations

from pathlib import Path

import pytest

import statechart
from statechart.migrate.chain import MigrationError
from statechart.migrate.upgrader import ChainUpgrader

ROOT = Path(__file__).resolve().parent.parent


def _store(url: str, *, lazy: bool, versions: tuple[int, ...]) -> statechart.Store:
    store = statechart.Store.open(url, clock=statechart.VirtualClock(1000),
                                  upgrader=ChainUpgrader(ROOT / "migrations") if lazy else None)
    for version in versions:
        store.register(ROOT / f"machines/delivery/v{version}.yaml")
    return store


def test_an_old_instance_is_upgraded_inside_the_event_that_reaches_it(store_url: str) -> None:
    old = _store(store_url, lazy=False, versions=(1,))
    old.create("delivery", {"order_id": "o1"}, id="o1")
    old.send("o1", "RESTAURANT_ACCEPTED")
    assert old.load("o1").version == 1
    timers_before = old.due_timers(limit=10)
    old.close()

    store = _store(store_url, lazy=True, versions=(1, 2, 3))
    receipt = store.send("o1", "FOOD_READY", actor="api")
    stored = store.load("o1")
    assert stored.version == 3
    assert receipt.configuration_before == ("preparing",)
    assert stored.configuration == {"dispatching"}          # v3: preparing -> ready -> dispatching
    assert stored.data["partner"] is True and stored.data["delivered_by"] == "courier"
    audit = store.audit("o1")
    assert [row["event"] for row in audit[-2:]] == ["(migrate v1->v3)", "FOOD_READY"]
    migrations = [row for row in audit if row["outcome"] == "migrated"]
    assert len(migrations) == 1 and migrations[0]["reason"] == "v1 -> v3"
    # the batch runner's shape: the migration is a revision of its own, the event the next one
    assert [(row["revision"], row["version"]) for row in audit[-2:]] == [(3, 3), (4, 3)]
    assert migrations[0]["revision"] == receipt.revision - 1 and receipt.revision == stored.revision == 4
    # the preparing timer was cancelled by leaving the state; the dispatch timer is the only one left
    timers = store.backend.execute("SELECT send_id FROM statechart_timers WHERE instance_id = ?",
                                   ("o1",)).fetchall()
    assert [t[0] for t in timers] == ["after.0.dispatching"] and timers_before == []
    states = store.backend.execute("SELECT state FROM statechart_instance_states WHERE instance_id = ?",
                                   ("o1",)).fetchall()
    assert [s[0] for s in states] == ["dispatching"]


def test_without_lazy_upgrade_an_old_instance_stays_at_its_version(store_url: str) -> None:
    store = _store(store_url, lazy=False, versions=(1, 2, 3))
    store.create("delivery", {"order_id": "o2"}, id="o2", version=1)
    store.send("o2", "RESTAURANT_ACCEPTED")
    assert store.load("o2").version == 1


def test_a_rejected_event_on_an_old_finished_instance_is_audited_at_the_rows_version(store_url: str) -> None:
    old = _store(store_url, lazy=False, versions=(1,))
    old.create("delivery", {"order_id": "o4"}, id="o4")
    old.send("o4", "RESTAURANT_REJECTED")
    before = old.load("o4")
    assert before.done
    old.close()
    store = _store(store_url, lazy=True, versions=(1, 2, 3))
    with pytest.raises(statechart.InstanceDoneError):
        store.send("o4", "FOOD_READY", actor="api")
    stored = store.load("o4")
    assert (stored.version, stored.revision) == (1, before.revision)
    rejected = store.audit("o4")[-1]
    assert (rejected["outcome"], rejected["version"], rejected["revision"]) == ("rejected", 1, before.revision)
    assert not [row for row in store.audit("o4") if row["outcome"] == "migrated"]


def test_a_failing_lazy_upgrade_leaves_the_instance_untouched(store_url: str, tmp_path: Path) -> None:
    broken = tmp_path / "migrations" / "delivery"
    broken.mkdir(parents=True)
    (broken / "v1_to_v2.py").write_text("STATES = {'submitted': 'offered'}\n")  # forgets the other states
    store = _store(store_url, lazy=False, versions=(1,))
    store.create("delivery", {"order_id": "o3"}, id="o3")
    store.send("o3", "RESTAURANT_ACCEPTED")
    store.close()
    store = statechart.Store.open(store_url, upgrader=ChainUpgrader(tmp_path / "migrations"))
    store.register(ROOT / "machines/delivery/v1.yaml", ROOT / "machines/delivery/v2.yaml")
    revision = store.load("o3").revision
    with pytest.raises(MigrationError, match="'preparing' has no entry in STATES"):
        store.send("o3", "FOOD_READY")
    stored = store.load("o3")
    assert (stored.version, stored.revision, stored.configuration) == (1, revision, {"preparing"})


def test_a_timer_whose_lazy_upgrade_fails_is_quarantined_and_later_parked(store_url: str, tmp_path: Path) -> None:
    broken = tmp_path / "migrations" / "delivery"
    broken.mkdir(parents=True)
    (broken / "v1_to_v2.py").write_text("STATES = {'submitted': 'offered'}\n")  # forgets the other states
    clock = statechart.VirtualClock(1000)
    store = statechart.Store.open(store_url, clock=clock)
    store.register(ROOT / "machines/delivery/v1.yaml")
    store.create("delivery", {"order_id": "o5"}, id="o5")
    store.send("o5", "RESTAURANT_ACCEPTED")  # preparing, with a timer
    store.close()
    store = statechart.Store.open(store_url, clock=clock, upgrader=ChainUpgrader(tmp_path / "migrations"),
                                  max_attempts=2, retry_backoff=1)
    store.register(ROOT / "machines/delivery/v1.yaml", ROOT / "machines/delivery/v2.yaml")
    clock.advance(24 * 3600)
    assert [r.outcome for r in store.fire_due()] == ["failed"]
    clock.advance(1)
    assert [r.outcome for r in store.fire_due()] == ["failed"]
    [failure] = store.failures(parked=True)
    assert (failure.kind, failure.instance_id) == ("timer", "o5")
    assert "'preparing' has no entry in STATES" in failure.error
    stored = store.load("o5")
    assert (stored.version, stored.configuration) == (1, {"preparing"})
    store.close()


def test_the_old_lazy_upgrade_options_are_refused_naming_the_upgrader(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"no longer takes lazy_upgrade= or migrations=.*upgrader=.*ChainUpgrader"):
        statechart.Store.open(f"sqlite:///{tmp_path / 'a.db'}", lazy_upgrade=True, migrations="migrations")
    assert not (tmp_path / "a.db").exists()  # refused before anything is opened
