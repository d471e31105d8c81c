"""Migration steps without a store: loading a chain, applying a step to a snapshot, proving a step
(check_step, random walks), diffing two versions and drafting a step (makemigration's skeleton)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import statechart
from statechart import Machine, VirtualClock
from statechart.interpreter import PendingSend
from statechart.migrate.apply import migrate_snapshot
from statechart.migrate.chain import InstanceView, MigrationError, Step, load_chain, load_step
from statechart.migrate.check import check_step, random_walk_check, reachable
from statechart.migrate.diff import diff_machines, rename_candidates
from statechart.migrate.skeleton import skeleton

ROOT = Path(__file__).resolve().parent.parent

SHOP_V1 = """\
machine: shop
version: 1
initial: browsing
data: {items: 0}
states:
  browsing:
    after: {30m: abandoned}
    on:
      ADD: {target: cart, actions: [{assign: {items: "items + 1"}}]}
  cart:
    initial: open
    on: {PAUSE: paused}
    states:
      hist: {type: history, history: shallow}
      open: {on: {CHECKOUT: paying}}
      paying:
        after: {5m: open}
        on: {PAID: shipped}
  paused:
    on: {RESUME: hist}
  shipped: {type: final}
  abandoned: {type: final}
"""

# v2: browsing is renamed looking (and counts its entries), the data gains a currency.
SHOP_V2 = """\
machine: shop
version: 2
initial: looking
data: {items: 0, currency: EUR, entered: 0}
states:
  looking:
    entry: [{assign: {entered: "entered + 1"}}]
    after: {30m: abandoned}
    on:
      ADD: {target: cart, actions: [{assign: {items: "items + 1"}}]}
  cart:
    initial: open
    on: {PAUSE: paused}
    states:
      hist: {type: history, history: shallow}
      open: {on: {CHECKOUT: paying}}
      paying:
        after: {5m: open}
        on: {PAID: shipped}
  paused:
    on: {RESUME: hist}
  shipped: {type: final}
  abandoned: {type: final}
"""

SHOP_STEP = """\
STATES = {
    "browsing": "looking",
    "cart": "cart",
    "paused": "paused",
    "shipped": "shipped",
    "abandoned": "abandoned",
}


def map_data(instance):
    return {**instance.data, "currency": "EUR", "entered": 0}
"""


def write_step(tmp_path: Path, body: str, machine: str = "shop", version: int = 1) -> Step:
    folder = tmp_path / "migrations" / machine
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"v{version}_to_v{version + 1}.py"
    path.write_text(textwrap.dedent(body))
    return load_step(path, machine)


def loads(text: str, version: int | None = None) -> statechart.Machine:
    if version is not None:
        text = text.replace("version: 1\n", f"version: {version}\n", 1)
    return statechart.loads(text, "test/machine.yaml")


@pytest.fixture
def v1() -> statechart.Machine:
    return loads(SHOP_V1)


@pytest.fixture
def v2() -> statechart.Machine:
    return loads(SHOP_V2)


def drive(machine: statechart.Machine, *events: str, clock: VirtualClock | None = None,
          data: dict | None = None) -> statechart.Instance:
    instance = machine.start(clock=clock or VirtualClock(), data=data)
    for event in events:
        instance.send(event)
    return instance


def leaves(machine: statechart.Machine, configuration: frozenset[str]) -> set[str]:
    return {s for s in configuration if machine.states[s].is_atomic}


# -- applying a STATES table ------------------------------------------------------------------------------
def test_states_table_moves_a_renamed_state_and_maps_the_data(tmp_path: Path, v1: Machine, v2: Machine) -> None:
    step = write_step(tmp_path, SHOP_STEP)
    migrated = migrate_snapshot(step, drive(v1).snapshot(), v1, v2, "s-1")
    assert (migrated.machine, migrated.version, migrated.definition_hash) == ("shop", 2, v2.definition_hash)
    assert migrated.configuration == {"looking"}
    assert migrated.data == {"items": 0, "currency": "EUR", "entered": 0}
    assert migrated.done is False


def test_entry_actions_do_not_run_when_an_instance_is_migrated(tmp_path: Path, v1: Machine, v2: Machine) -> None:
    step = write_step(tmp_path, SHOP_STEP)
    restored = v2.restore(migrate_snapshot(step, drive(v1).snapshot(), v1, v2, "s-1"), clock=VirtualClock())
    assert restored.data["entered"] == 0
    result = restored.send("ADD")
    assert result.configuration_after == {"cart", "open"}
    assert restored.data == {"items": 1, "currency": "EUR", "entered": 0}


def test_an_ancestor_entry_keeps_instances_in_the_same_named_descendant(tmp_path: Path, v1: Machine,
                                                                        v2: Machine) -> None:
    step = write_step(tmp_path, SHOP_STEP)
    migrated = migrate_snapshot(step, drive(v1, "ADD", "CHECKOUT").snapshot(), v1, v2, "s-1")
    assert migrated.configuration == {"cart", "paying"}


def test_an_ancestor_entry_enters_the_target_by_default_where_the_descendant_is_gone(tmp_path: Path,
                                                                                    v1: Machine) -> None:
    new = loads(SHOP_V2.replace("      paying:\n        after: {5m: open}\n        on: {PAID: shipped}\n",
                                "      review: {on: {PAID: shipped}}\n")
                .replace("CHECKOUT: paying", "CHECKOUT: review"))
    step = write_step(tmp_path, SHOP_STEP)
    migrated = migrate_snapshot(step, drive(v1, "ADD", "CHECKOUT").snapshot(), v1, new, "s-1")
    assert migrated.configuration == {"cart", "open"}
    assert migrated.pending_sends == ()  # paying's 5m timer has no state to move with


def test_an_entry_of_its_own_wins_over_the_ancestor_entry(tmp_path: Path, v1: Machine, v2: Machine) -> None:
    step = write_step(tmp_path, SHOP_STEP.replace('"cart": "cart",', '"cart": "cart", "paying": "open",'))
    migrated = migrate_snapshot(step, drive(v1, "ADD", "CHECKOUT").snapshot(), v1, v2, "s-1")
    assert migrated.configuration == {"cart", "open"}


def test_a_compound_target_is_entered_by_its_initial_state(tmp_path: Path, v1: Machine, v2: Machine) -> None:
    step = write_step(tmp_path, SHOP_STEP.replace('"browsing": "looking"', '"browsing": "cart"'))
    migrated = migrate_snapshot(step, drive(v1).snapshot(), v1, v2, "s-1")
    assert migrated.configuration == {"cart", "open"}


def test_a_final_target_finishes_the_instance_and_drops_its_timers(tmp_path: Path, v1: Machine, v2: Machine) -> None:
    step = write_step(tmp_path, SHOP_STEP.replace('"browsing": "looking"', '"browsing": "abandoned"'))
    instance = drive(v1)
    assert [p.id for p in instance.pending_sends] == ["after.0.browsing"]
    migrated = migrate_snapshot(step, instance.snapshot(), v1, v2, "s-1")
    assert (migrated.configuration, migrated.done, migrated.pending_sends) == ({"abandoned"}, True, ())


def test_a_finished_instance_stays_finished(tmp_path: Path, v1: Machine, v2: Machine) -> None:
    step = write_step(tmp_path, SHOP_STEP)
    instance = drive(v1, "ADD", "CHECKOUT", "PAID")
    assert instance.done
    migrated = migrate_snapshot(step, instance.snapshot(), v1, v2, "s-1")
    assert (migrated.configuration, migrated.done) == ({"shipped"}, True)


# -- map_state --------------------------------------------------------------------------------------------
MAP_STATE_STEP = """\
seen = []


def map_state(instance):
    seen.append(instance)
    if "paying" in instance.leaves:
        return "open" if instance.data["items"] > 1 else ["cart"]
    return {"browsing": "looking"}.get(min(instance.leaves), min(instance.leaves))
"""


def test_map_state_sees_the_old_instance_and_its_result_is_completed(tmp_path: Path, v1: Machine, v2: Machine) -> None:
    step = write_step(tmp_path, MAP_STATE_STEP)
    instance = drive(v1, "ADD", "CHECKOUT")
    migrated = migrate_snapshot(step, instance.snapshot(), v1, v2, "s-7")
    assert migrated.configuration == {"cart", "open"}  # ["cart"] entered by default
    module_seen = step.map_state.__globals__["seen"]  # type: ignore[union-attr]
    view = module_seen[-1]
    assert isinstance(view, InstanceView)
    assert (view.id, view.machine, view.version) == ("s-7", "shop", 1)
    assert (view.configuration, view.leaves, view.data) == ({"cart", "paying"}, {"paying"}, {"items": 1})


def test_map_state_may_return_a_single_id(tmp_path: Path, v1: Machine, v2: Machine) -> None:
    step = write_step(tmp_path, MAP_STATE_STEP)
    migrated = migrate_snapshot(step, drive(v1).snapshot(), v1, v2, "s-1")
    assert migrated.configuration == {"looking"}


def test_the_view_is_read_only_and_its_data_a_private_copy(tmp_path: Path, v1: Machine, v2: Machine) -> None:
    step = write_step(tmp_path, """\
        def map_state(instance):
            instance.data["items"] = 99
            return "looking"
        """)
    snapshot = drive(v1).snapshot()
    migrated = migrate_snapshot(step, snapshot, v1, v2, "s-1")
    assert snapshot.data == {"items": 0}
    assert migrated.data == {"items": 99}  # no map_data: the view's data is what the step leaves
    view = InstanceView("x", "shop", 1, frozenset({"browsing"}), {}, {}, frozenset({"browsing"}))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        view.configuration = frozenset()  # type: ignore[misc]


def test_map_state_raising_is_reported_with_its_error(tmp_path: Path, v1: Machine, v2: Machine) -> None:
    step = write_step(tmp_path, """\
        def map_state(instance):
            raise KeyError("courier")
        """)
    with pytest.raises(MigrationError) as raised:
        migrate_snapshot(step, drive(v1).snapshot(), v1, v2, "s-1")
    assert str(raised.value) == "map_state raised KeyError: 'courier'"


def test_map_state_must_return_ids(tmp_path: Path, v1: Machine, v2: Machine) -> None:
    step = write_step(tmp_path, "def map_state(instance):\n    return 7\n")
    with pytest.raises(MigrationError) as raised:
        migrate_snapshot(step, drive(v1).snapshot(), v1, v2, "s-1")
    assert str(raised.value) == "map_state must give a state id or a list of state ids, not 7"


# -- parallel states --------------------------------------------------------------------------------------
WORK_V1 = """\
machine: work
version: 1
initial: idle
states:
  idle: {on: {START: busy, SPLIT: both}}
  busy: {on: {DONE: finished}}
  both:
    type: parallel
    states:
      a: {initial: a1, states: {a1: {on: {GO: a2}}, a2: {}}}
      b: {initial: b1, states: {b1: {on: {GO: b2}}, b2: {}}}
  finished: {type: final}
"""

WORK_V2 = """\
machine: work
version: 2
initial: idle
states:
  idle: {on: {START: both}}
  both:
    type: parallel
    states:
      a: {initial: a1, states: {a1: {on: {GO: a2}}, a2: {}}}
      b: {initial: b1, states: {b1: {on: {GO: b_done}}, b_done: {}}}
      c: {initial: c1, states: {c1: {on: {GO: c2}}, c2: {}}}
  finished: {type: final}
"""


def test_one_old_state_can_map_to_states_in_several_parallel_regions(tmp_path: Path) -> None:
    old, new = loads(WORK_V1), loads(WORK_V2)
    step = write_step(tmp_path, """\
        STATES = {"idle": "idle", "busy": ["a2", "b_done"], "both": "both", "b2": "b_done", "finished": "finished"}
        """, "work")
    migrated = migrate_snapshot(step, drive(old, "START").snapshot(), old, new, "w-1")
    assert migrated.configuration == {"both", "a", "a2", "b", "b_done", "c", "c1"}
    assert new.is_legal(migrated.configuration) == []


def test_every_leaf_of_a_parallel_state_is_mapped(tmp_path: Path) -> None:
    old, new = loads(WORK_V1), loads(WORK_V2)
    step = write_step(tmp_path, """\
        STATES = {"idle": "idle", "busy": "both", "both": "both", "b2": "b_done", "finished": "finished"}
        """, "work")
    migrated = migrate_snapshot(step, drive(old, "SPLIT", "GO").snapshot(), old, new, "w-1")
    assert migrated.configuration == {"both", "a", "a2", "b", "b_done", "c", "c1"}


# -- history ----------------------------------------------------------------------------------------------
def test_shallow_history_values_are_mapped(tmp_path: Path, v1: Machine, v2: Machine) -> None:
    step = write_step(tmp_path, SHOP_STEP)
    instance = drive(v1, "ADD", "CHECKOUT", "PAUSE")
    assert instance.history == {"hist": {"paying"}}
    migrated = migrate_snapshot(step, instance.snapshot(), v1, v2, "s-1")
    assert (migrated.configuration, migrated.history) == ({"paused"}, {"hist": {"paying"}})
    restored = v2.restore(migrated, clock=VirtualClock())
    assert restored.send("RESUME").configuration_after == {"cart", "paying"}


def test_a_renamed_state_is_renamed_in_history_too(tmp_path: Path, v1: Machine) -> None:
    new = loads(SHOP_V2.replace("paying", "payment"))
    step = write_step(tmp_path, SHOP_STEP.replace('"cart": "cart",', '"cart": "cart", "paying": "payment",'))
    migrated = migrate_snapshot(step, drive(v1, "ADD", "CHECKOUT", "PAUSE").snapshot(), v1, new, "s-1")
    assert migrated.history == {"hist": {"payment"}}


def test_history_must_stay_inside_its_parent(tmp_path: Path, v1: Machine, v2: Machine) -> None:
    step = write_step(tmp_path, SHOP_STEP.replace('"cart": "cart",', '"cart": "cart", "paying": "paused",'))
    with pytest.raises(MigrationError) as raised:
        migrate_snapshot(step, drive(v1, "ADD", "CHECKOUT", "PAUSE").snapshot(), v1, v2, "s-1")
    assert str(raised.value) == "history 'hist' would remember ['paused'], outside its parent 'cart'"


DEEP_V1 = """\
machine: deep
version: 1
initial: job
states:
  job:
    initial: phase
    on: {HOLD: held}
    states:
      jh: {type: history, history: deep}
      phase:
        initial: p1
        states:
          p1: {on: {NEXT: p2}}
          p2: {on: {NEXT: p3}}
          p3: {}
  held: {on: {GO: jh}}
"""


def test_deep_history_values_are_mapped_and_completed(tmp_path: Path) -> None:
    old = loads(DEEP_V1)
    new = loads(DEEP_V1.replace("p2", "step_two").replace("p3: {}", "p3: {initial: p3a, states: {p3a: {}, p3b: {}}}"),
                version=2)
    step = write_step(tmp_path, 'STATES = {"job": "job", "held": "held", "p2": "step_two"}\n', "deep")
    instance = drive(old, "NEXT", "HOLD")
    assert instance.history == {"jh": {"p2"}}
    migrated = migrate_snapshot(step, instance.snapshot(), old, new, "j-1")
    assert migrated.history == {"jh": {"step_two"}}
    assert new.restore(migrated, clock=VirtualClock()).send("GO").configuration_after == {"job", "phase", "step_two"}
    # a remembered state that is now compound is remembered with its default leaf
    instance = drive(old, "NEXT", "NEXT", "HOLD")
    migrated = migrate_snapshot(step, instance.snapshot(), old, new, "j-2")
    assert migrated.history == {"jh": {"p3a"}}


def test_a_history_the_new_version_lacks_is_forgotten(tmp_path: Path) -> None:
    old = loads(DEEP_V1)
    new = loads(DEEP_V1.replace("      jh: {type: history, history: deep}\n", "").replace("GO: jh", "GO: job"), 2)
    step = write_step(tmp_path, 'STATES = {"job": "job", "held": "held"}\n', "deep")
    migrated = migrate_snapshot(step, drive(old, "NEXT", "HOLD").snapshot(), old, new, "j-1")
    assert (migrated.configuration, migrated.history) == ({"held"}, {})


# -- data -------------------------------------------------------------------------------------------------
def test_without_map_data_the_data_is_kept(tmp_path: Path, v1: Machine, v2: Machine) -> None:
    step = write_step(tmp_path, SHOP_STEP.split("\n\ndef map_data")[0])
    migrated = migrate_snapshot(step, drive(v1, "ADD").snapshot(), v1, v2, "s-1")
    assert migrated.data == {"items": 1}


@pytest.mark.parametrize(("returned", "message"), [
    ("{'when': {1, 2}}", "data['when'] is a set, which JSON cannot hold; use a list"),
    ("{'ratio': float('nan')}", "data['ratio'] is nan, which JSON cannot hold"),
    ("{1: 'x'}", "data has the key 1 (int); JSON keys are strings, and converting would merge or rename keys"),
    ("{'big': 10**20}", "data['big'] is an integer beyond the 64-bit range (|n| > 2**63-1)"),
    ("{'pair': (1, 2)}", "data['pair'] is a tuple, which JSON cannot hold; use a list"),
    ("[1, 2]", "map_data must return a mapping of data, not list"),
])
def test_map_data_must_return_json_data(tmp_path: Path, v1: Machine, v2: Machine, returned: str, message: str) -> None:
    step = write_step(tmp_path, SHOP_STEP.split("\n\ndef map_data")[0] + f"\n\ndef map_data(instance):\n"
                                                                          f"    return {returned}\n")
    with pytest.raises(MigrationError) as raised:
        migrate_snapshot(step, drive(v1).snapshot(), v1, v2, "s-1")
    if returned.startswith("["):
        assert str(raised.value) == message
    else:  # the step and the instance are named, then where in the data
        assert str(raised.value).startswith(f"map_data of {step.name} ({step.path}) returned data that is not "
                                            "JSON for instance 's-1': ")
        assert str(raised.value).endswith(message)


def test_map_data_raising_is_reported(tmp_path: Path, v1: Machine, v2: Machine) -> None:
    step = write_step(tmp_path, SHOP_STEP.replace('"currency": "EUR"', '"currency": instance.data["currency"]'))
    with pytest.raises(MigrationError) as raised:
        migrate_snapshot(step, drive(v1).snapshot(), v1, v2, "s-1")
    assert str(raised.value) == "map_data raised KeyError: 'currency'"


# -- timers -----------------------------------------------------------------------------------------------
def test_keep_moves_an_after_timer_with_its_renamed_state_and_keeps_its_due_time(tmp_path: Path, v1: Machine,
                                                                                 v2: Machine) -> None:
    step = write_step(tmp_path, SHOP_STEP)
    clock = VirtualClock(1000.0)
    instance = drive(v1, clock=clock)
    clock.advance(600)
    migrated = migrate_snapshot(step, instance.snapshot(), v1, v2, "s-1")
    assert migrated.pending_sends == (PendingSend("after.0.looking", "after.0.looking", None, 2800.0, 1),)
    restored = v2.restore(migrated, clock=clock)
    assert restored.advance(1199) == []
    assert [r.configuration_after for r in restored.advance(1)] == [{"abandoned"}]


def test_keep_keeps_the_after_timer_of_a_nested_state(tmp_path: Path, v1: Machine, v2: Machine) -> None:
    step = write_step(tmp_path, SHOP_STEP)
    instance = drive(v1, "ADD", "CHECKOUT", clock=VirtualClock(50.0))
    migrated = migrate_snapshot(step, instance.snapshot(), v1, v2, "s-1")
    assert [(p.id, p.due) for p in migrated.pending_sends] == [("after.0.paying", 350.0)]


def test_keep_drops_an_after_timer_whose_new_state_has_no_such_entry(tmp_path: Path, v1: Machine) -> None:
    new = loads(SHOP_V2.replace("    after: {30m: abandoned}\n    on:\n      ADD", "    on:\n      ADD"))
    step = write_step(tmp_path, SHOP_STEP)
    migrated = migrate_snapshot(step, drive(v1).snapshot(), v1, new, "s-1")
    assert (migrated.configuration, migrated.pending_sends) == ({"looking"}, ())


def test_keep_drops_an_after_timer_whose_state_maps_elsewhere(tmp_path: Path, v1: Machine, v2: Machine) -> None:
    step = write_step(tmp_path, SHOP_STEP.replace('"browsing": "looking"', '"browsing": "paused"'))
    migrated = migrate_snapshot(step, drive(v1).snapshot(), v1, v2, "s-1")
    assert (migrated.configuration, migrated.pending_sends) == ({"paused"}, ())


REMINDER_V1 = """\
machine: reminder
version: 1
initial: waiting
states:
  waiting:
    entry: [{send: {event: REMIND, delay: 1h, id: remind}}]
    after: {1d: expired}
    on: {REMIND: reminded}
  reminded: {}
  expired: {type: final}
"""


def test_keep_keeps_an_authors_delayed_send_with_its_id_and_due_time(tmp_path: Path) -> None:
    old, new = loads(REMINDER_V1), loads(REMINDER_V1, 2)
    step = write_step(tmp_path, 'STATES = {"waiting": "waiting", "reminded": "reminded", "expired": "expired"}\n',
                      "reminder")
    instance = drive(old, clock=VirtualClock(10.0))
    migrated = migrate_snapshot(step, instance.snapshot(), old, new, "r-1")
    assert sorted((p.id, p.event, p.due, p.seq) for p in migrated.pending_sends) == [
        ("after.0.waiting", "after.0.waiting", 86410.0, 2), ("remind", "REMIND", 3610.0, 1)]
    assert migrated.send_counter == instance.snapshot().send_counter


def test_cancel_drops_every_pending_send(tmp_path: Path) -> None:
    old, new = loads(REMINDER_V1), loads(REMINDER_V1, 2)
    step = write_step(tmp_path, 'STATES = {"waiting": "waiting", "reminded": "reminded", "expired": "expired"}\n'
                                'TIMERS = "cancel"\n', "reminder")
    migrated = migrate_snapshot(step, drive(old).snapshot(), old, new, "r-1")
    assert (migrated.configuration, migrated.pending_sends) == ({"waiting"}, ())


# -- refusals ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("states", "events", "message"), [
    ('{"browsing": "looking", "cart": "cart", "shipped": "shipped", "abandoned": "abandoned"}', ("ADD", "PAUSE"),
     "state 'paused' has no entry in STATES (nor has any of its ancestors)"),
    ('{"browsing": "TODO", "cart": "cart", "paused": "paused", "shipped": "shipped", "abandoned": "abandoned"}', (),
     "STATES['browsing'] is still 'TODO': decide where these instances go"),
    ('{"browsing": "looking", "cart": "TODO", "paused": "paused"}', ("ADD", "CHECKOUT"),
     "STATES['cart'] (the entry covering 'paying') is still 'TODO': decide where these instances go"),
    ('{"browsing": "nowhere"}', (), "the mapping names 'nowhere', which shop v2 does not have"),
    ('{"browsing": "hist"}', (), "the mapping names history state 'hist'; name the state to be in"),
    ('{"browsing": ["open", "paying"]}', (),
     "the mapped configuration ['cart', 'open', 'paying'] is not legal in shop v2: "
     "compound 'cart' has 2 active children (open, paying)"),
    ('{"browsing": ["looking", "paused"]}', (),
     "the mapped configuration ['looking', 'paused'] is not legal in shop v2: "
     "compound 'machine' has 2 active children (looking, paused)"),
])
def test_a_mapping_that_cannot_be_applied_is_refused_saying_why(tmp_path: Path, v1: Machine, v2: Machine, states: str,
                                                               events: tuple[str, ...], message: str) -> None:
    step = write_step(tmp_path, f"STATES = {states}\n")
    with pytest.raises(MigrationError) as raised:
        migrate_snapshot(step, drive(v1, *events).snapshot(), v1, v2, "s-1")
    assert str(raised.value) == message


PASS_THROUGH_V2 = SHOP_V2.replace("""  looking:
    entry: [{assign: {entered: "entered + 1"}}]
""", """  looking:
    entry: [{assign: {entered: "entered + 1"}}]
    always: {target: cart, cond: "items > 0"}
""")


def test_a_mapping_onto_a_state_an_eventless_transition_leaves_at_once_is_refused(tmp_path: Path, v1: Machine) -> None:
    new = loads(PASS_THROUGH_V2)
    step = write_step(tmp_path, SHOP_STEP.replace('"paused": "paused"', '"paused": "looking"'))
    with pytest.raises(MigrationError) as raised:
        migrate_snapshot(step, drive(v1, "ADD", "PAUSE").snapshot(), v1, new, "s-1")
    assert str(raised.value) == (
        "state 'looking' is not a resting state of shop v2: its eventless transition looking:always:0 would fire "
        "at once, and a migration runs no transition; map these instances to where it leads instead")


def test_a_conditional_eventless_transition_is_judged_on_the_mapped_data(tmp_path: Path, v1: Machine) -> None:
    new = loads(PASS_THROUGH_V2)
    step = write_step(tmp_path, SHOP_STEP)
    migrated = migrate_snapshot(step, drive(v1).snapshot(), v1, new, "s-1")  # items == 0: looking is at rest
    assert migrated.configuration == {"looking"}


def test_a_mapping_onto_a_finished_region_whose_done_event_is_taken_is_refused(tmp_path: Path) -> None:
    old = loads(DEEP_V1)
    new = loads(DEEP_V1.replace("          p3: {}", "          p3: {type: final}").replace(
        "        initial: p1\n", "        initial: p1\n        on_done: held\n"), 2)
    step = write_step(tmp_path, 'STATES = {"job": "job", "held": "held", "p2": "p3"}\n', "deep")
    with pytest.raises(MigrationError) as raised:
        migrate_snapshot(step, drive(old, "NEXT").snapshot(), old, new, "j-1")
    assert str(raised.value) == (
        "'phase' is complete in ['job', 'p3', 'phase']: entering it raises done.state.phase, which "
        "phase:on_done:0 would take at once, and a migration raises no event; map these instances to where it "
        "leads instead")


def test_a_snapshot_naming_states_the_old_version_lacks_is_refused(tmp_path: Path, v1: Machine, v2: Machine) -> None:
    step = write_step(tmp_path, SHOP_STEP)
    snapshot = attrs.evolve(drive(v1).snapshot(), configuration=frozenset({"window_shopping"}))
    with pytest.raises(MigrationError) as raised:
        migrate_snapshot(step, snapshot, v1, v2, "s-1")
    assert str(raised.value) == ("the instance is in states that shop v1 does not have: window_shopping "
                                 "(was it stored under another definition of it?)")


def test_a_step_moves_only_instances_of_its_from_version(tmp_path: Path, v1: Machine, v2: Machine) -> None:
    step = write_step(tmp_path, SHOP_STEP)
    snapshot = attrs.evolve(drive(v1).snapshot(), version=2)
    with pytest.raises(MigrationError) as raised:
        migrate_snapshot(step, snapshot, v1, v2, "s-1")
    assert str(raised.value) == "shop v1 -> v2 cannot move a v2 instance"


# -- check_step -------------------------------------------------------------------------------------------
def test_reachable_lists_resting_configurations_only() -> None:
    onboarding = statechart.load(ROOT / "machines/onboarding/v1.yaml")
    pairs, exhaustive = reachable(onboarding)
    assert exhaustive
    assert sorted(sorted(c) for c, _ in pairs) == [["completed"], ["unsubscribed"], ["waiting"]]


def test_reachable_includes_the_history_an_instance_may_hold(v1: Machine) -> None:
    pairs, _ = reachable(v1)
    paused = sorted(sorted(h["hist"]) for c, h in pairs if c == {"paused"})
    assert paused == [["open"], ["paying"]]


@pytest.mark.parametrize(("name", "counts"), [("delivery", [7, 10]), ("onboarding", [3])])
def test_the_example_chains_pass_the_check(name: str, counts: list[int]) -> None:
    chain = load_chain(name, ROOT / "migrations")
    assert [s.from_version for s in chain] == list(range(1, len(counts) + 1))
    for step, count in zip(chain, counts):
        old = statechart.load(ROOT / f"machines/{name}/v{step.from_version}.yaml")
        new = statechart.load(ROOT / f"machines/{name}/v{step.to_version}.yaml")
        report = check_step(step, old, new)
        assert (report.configurations, report.exhaustive, report.findings) == (count, True, ())
        assert random_walk_check(step, old, new, walks=50) == []


def test_check_names_a_configuration_with_no_mapping(tmp_path: Path, v1: Machine, v2: Machine) -> None:
    step = write_step(tmp_path, SHOP_STEP.replace('    "paused": "paused",\n', ""))
    report = check_step(step, v1, v2)
    assert not report.ok
    assert [str(f) for f in report.findings] == [
        "{paused} with history hist={open}: state 'paused' has no entry in STATES (nor has any of its ancestors)",
        "{paused} with history hist={paying}: state 'paused' has no entry in STATES (nor has any of its ancestors)",
    ]


def test_check_names_configurations_still_marked_todo(tmp_path: Path, v1: Machine, v2: Machine) -> None:
    step = write_step(tmp_path, SHOP_STEP.replace('"browsing": "looking"', '"browsing": "TODO"'))
    report = check_step(step, v1, v2)
    assert [str(f) for f in report.findings] == [
        "{browsing}: STATES['browsing'] is still 'TODO': decide where these instances go"]


def test_check_names_a_configuration_mapped_onto_a_passing_state(tmp_path: Path, v1: Machine) -> None:
    new = loads(PASS_THROUGH_V2.replace('cond: "items > 0"', 'cond: "True"'))
    step = write_step(tmp_path, SHOP_STEP)
    report = check_step(step, v1, new)
    assert [f.configuration for f in report.findings] == [("browsing",)]
    assert "state 'looking' is not a resting state of shop v2" in report.findings[0].reason


def test_check_names_a_configuration_mapped_illegally(tmp_path: Path) -> None:
    old, new = loads(WORK_V1), loads(WORK_V2)
    step = write_step(tmp_path, 'STATES = {"idle": "idle", "busy": ["a1", "a2"], "both": "both", "b2": "b_done", '
                                '"finished": "finished"}\n', "work")
    report = check_step(step, old, new)
    assert [str(f) for f in report.findings] == [
        "{busy}: the mapped configuration ['a', 'a1', 'a2', 'b', 'b1', 'both', 'c', 'c1'] is not legal in work v2: "
        "compound 'a' has 2 active children (a1, a2)"]


def test_check_samples_charts_too_large_to_enumerate(tmp_path: Path, v1: Machine, v2: Machine) -> None:
    step = write_step(tmp_path, SHOP_STEP)
    report = check_step(step, v1, v2, limit=3, samples=2)
    assert (report.configurations, report.exhaustive, report.ok) == (2, False, True)


def test_random_walks_find_what_only_running_instances_reach(tmp_path: Path, v1: Machine, v2: Machine) -> None:
    step = write_step(tmp_path, SHOP_STEP.replace('return {**instance.data', 'assert instance.data["items"] < 1, '
                                                  '"too many items"\n    return {**instance.data'))
    assert check_step(step, v1, v2).ok  # the enumeration sees the initial data only
    problems = random_walk_check(step, v1, v2, walks=100, seed=3)
    assert problems
    assert all(p.endswith("map_data raised AssertionError: too many items") for p in problems)
    assert problems[0].startswith("walk ")


# -- chains -----------------------------------------------------------------------------------------------
def test_a_chain_is_its_steps_in_version_order(tmp_path: Path) -> None:
    write_step(tmp_path, SHOP_STEP, version=2)
    write_step(tmp_path, SHOP_STEP, version=1)
    (tmp_path / "migrations/shop/_helpers.py").write_text("raise RuntimeError('not a step')\n")
    chain = load_chain("shop", tmp_path / "migrations")
    assert [(s.from_version, s.to_version, s.name, s.timers) for s in chain] == [
        (1, 2, "shop v1 -> v2", "keep"), (2, 3, "shop v2 -> v3", "keep")]


def test_a_machine_without_a_folder_has_an_empty_chain(tmp_path: Path) -> None:
    assert load_chain("nothing", tmp_path) == []


def test_a_gap_in_the_chain_is_an_error(tmp_path: Path) -> None:
    write_step(tmp_path, SHOP_STEP, version=1)
    write_step(tmp_path, SHOP_STEP, version=3)
    with pytest.raises(MigrationError) as raised:
        load_chain("shop", tmp_path / "migrations")
    assert str(raised.value) == f"{tmp_path / 'migrations/shop'}: the chain has a gap between v2 and v3"


@pytest.mark.parametrize(("name", "message"), [
    ("v1_to_v3.py", "a step goes from one version to the next (v1_to_v2.py)"),
    ("v1-to-v2.py", "a step file is named v<N>_to_v<N+1>.py"),
    ("v1_to_v2_old.py", "a step file is named v<N>_to_v<N+1>.py"),
])
def test_a_badly_named_step_file_is_an_error(tmp_path: Path, name: str, message: str) -> None:
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / name).write_text(SHOP_STEP)
    with pytest.raises(MigrationError) as raised:
        load_chain("shop", tmp_path)
    assert str(raised.value) == f"{folder / name}: {message}"


def test_two_steps_from_one_version_are_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "v1_to_v2.py").write_text(SHOP_STEP)
    (folder / "v01_to_v02.py").write_text(SHOP_STEP)
    with pytest.raises(MigrationError) as raised:
        load_chain("shop", tmp_path)
    assert str(raised.value) == f"{folder}: two steps from v1: v01_to_v02.py and v1_to_v2.py"


@pytest.mark.parametrize(("body", "message"), [
    ("STATES = {'a': 'b'}\n\ndef map_state(instance):\n    return 'b'\n", "define map_state or STATES, not both"),
    ("TIMERS = 'keep'\n", "define map_state(instance) or a STATES = {old: new} table"),
    ("STATES = [('a', 'b')]\n", "STATES must be a mapping of old state id -> new id or list of ids"),
    ("STATES = {'a': 3}\n", "STATES['a'] must be a state id or a list of state ids, not 3"),
    ("STATES = {'a': []}\n", "STATES['a'] must be a state id or a list of state ids, not []"),
    ("map_state = 'a'\n", "map_state must be a function of the old instance"),
    ("STATES = {}\nmap_data = {}\n", "map_data must be a function of the old instance"),
    ("STATES = {}\nTIMERS = 'drop'\n", "TIMERS must be 'keep' or 'cancel', not 'drop'"),
    ("import no_such_module_here\n",
     "importing the step failed: ModuleNotFoundError: No module named 'no_such_module_here'"),
    ("STATES = {\n", "importing the step failed: SyntaxError: '{' was never closed (v1_to_v2.py, line 1)"),
])
def test_a_step_that_cannot_be_used_is_an_error_naming_its_file(tmp_path: Path, body: str, message: str) -> None:
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "v1_to_v2.py").write_text(body)
    with pytest.raises(MigrationError) as raised:
        load_chain("shop", tmp_path)
    assert str(raised.value) == f"{folder / 'v1_to_v2.py'}: {message}"


# -- diff and skeleton ------------------------------------------------------------------------------------
def test_diff_lists_states_transitions_and_data_added_removed_and_changed() -> None:
    old = statechart.load(ROOT / "machines/delivery/v2.yaml")
    new = statechart.load(ROOT / "machines/delivery/v3.yaml")
    assert diff_machines(old, new).lines() == [
        "+ state ready",
        "+ state restaurant_delivering",
        "+ transition ready:always:0 (always [delivered_by == 'restaurant'] -> restaurant_delivering)",
        "+ transition ready:always:1 (always -> dispatching)",
        "+ transition restaurant_delivering:DELIVERED:0 (DELIVERED -> delivered)",
        "~ transition preparing:FOOD_READY:0: target dispatching -> ready",
        "~ transition preparing:after 20m:0: target dispatching -> ready",
        "+ data delivered_by",
    ]


def test_diff_of_a_machine_with_itself_is_empty(v1: Machine) -> None:
    assert diff_machines(v1, v1).empty
    assert diff_machines(v1, v1).lines() == []


def test_diff_reports_removed_states_and_changed_kinds(v1: Machine) -> None:
    new = loads(SHOP_V1.replace("  paused:\n    on: {RESUME: hist}\n", "").replace("PAUSE: paused", "PAUSE: shipped")
                .replace("  abandoned: {type: final}", "  abandoned: {}"), 2)
    assert diff_machines(v1, new).lines() == [
        "- state paused",
        "~ state abandoned: final -> atomic",
        "- transition paused:RESUME:0 (RESUME -> hist)",
        "~ transition cart:PAUSE:0: target paused -> shipped",
    ]


def test_a_renamed_state_is_proposed_as_a_rename(v1: Machine, v2: Machine) -> None:
    assert rename_candidates(v1, v2) == {"browsing": "looking"}


def test_a_state_replaced_by_something_else_is_not_proposed(v1: Machine) -> None:
    new = loads(SHOP_V2.replace("  looking:\n    entry: [{assign: {entered: \"entered + 1\"}}]\n"
                                "    after: {30m: abandoned}\n"
                                "    on:\n      ADD: {target: cart, actions: [{assign: {items: \"items + 1\"}}]}\n",
                                "  welcome: {on: {GO: cart}}\n").replace("initial: looking", "initial: welcome"))
    assert rename_candidates(v1, new) == {}


def test_skeleton_maps_unchanged_states_to_themselves_proposes_renames_and_leaves_removed_ones_todo(
        tmp_path: Path, v1: Machine) -> None:
    new = loads(SHOP_V2.replace("  paused:\n    on: {RESUME: hist}\n", "").replace("PAUSE: paused", "PAUSE: looking"))
    text = skeleton(v1, new)
    assert text.splitlines()[6:15] == [
        "STATES = {",
        "    'browsing': 'looking',  # proposed: looks renamed; check it",
        "    'cart': 'cart',",
        "    'open': 'open',",
        "    'paying': 'paying',",
        "    'paused': 'TODO',  # removed in v2: decide where it goes",
        "    'shipped': 'shipped',",
        "    'abandoned': 'abandoned',",
        "}",
    ]
    assert "    data['currency'] = 'EUR'  # TODO: derive from the old data if you can" in text
    assert "    data['entered'] = 0  # TODO: derive from the old data if you can" in text
    path = tmp_path / "migrations/shop/v1_to_v2.py"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    report = check_step(load_step(path, "shop"), v1, new)
    assert [str(f) for f in report.findings] == [
        "{paused} with history hist={open}: STATES['paused'] is still 'TODO': decide where these instances go",
        "{paused} with history hist={paying}: STATES['paused'] is still 'TODO': decide where these instances go",
    ]
    path.write_text(text.replace("'paused': 'TODO'", "'paused': 'cart'"))
    assert check_step(load_step(path, "shop"), v1, new).ok


def test_skeleton_of_the_delivery_versions_flags_the_state_v2_passes_through() -> None:
    old = statechart.load(ROOT / "machines/delivery/v1.yaml")
    new = statechart.load(ROOT / "machines/delivery/v2.yaml")
    text = skeleton(old, new)
    assert ("    'submitted': 'submitted',  # v2 leaves it at once (submitted:always:1): map to where it leads"
            in text.splitlines())
    assert "    data['partner'] = True  # TODO: derive from the old data if you can" in text


def test_skeleton_without_data_changes_has_no_map_data(v1: Machine) -> None:
    text = skeleton(v1, loads(SHOP_V1, 2))
    assert "def map_data" not in text
    assert "'TODO'" not in text
    assert 'TIMERS = "keep"' in text


# -- property: random instances of the examples migrate and keep running ---------------------------------
EXAMPLES = {
    ("delivery", 1): ["RESTAURANT_ACCEPTED", "RESTAURANT_REJECTED", "CUSTOMER_CANCELED", "FOOD_READY",
                      "COURIER_ACCEPTED", "COURIER_DECLINED", "PICKED_UP", "DELIVERED"],
    ("delivery", 2): ["RESTAURANT_ACCEPTED", "RESTAURANT_REJECTED", "CUSTOMER_CANCELED", "FOOD_READY",
                      "COURIER_ACCEPTED", "COURIER_DECLINED", "PICKED_UP", "DELIVERED", "ARRIVED_AT_RESTAURANT",
                      "PURCHASED", "ITEMS_UNAVAILABLE"],
    ("onboarding", 1): ["UNSUBSCRIBED"],
}
MACHINES = {(name, version): statechart.load(ROOT / f"machines/{name}/v{version}.yaml")
            for name, version in [("delivery", 1), ("delivery", 2), ("delivery", 3), ("onboarding", 1),
                                  ("onboarding", 2)]}
CHAINS = {name: load_chain(name, ROOT / "migrations") for name in ("delivery", "onboarding")}
ACTIONS = st.one_of(st.tuples(st.just("send"), st.integers(0, 10)),
                    st.tuples(st.just("advance"), st.sampled_from([30.0, 120.0, 600.0, 1200.0, 86400.0])))


def _act(instance: statechart.Instance, events: list[str], action: tuple[str, object]) -> None:
    kind, value = action
    if kind == "advance":
        instance.advance(value)  # type: ignore[arg-type]
    else:
        event = events[value % len(events)]  # type: ignore[operator]
        instance.send(event, {"courier": "c-7", "total": 12.5})


@settings(max_examples=300)
@given(start=st.sampled_from(sorted(EXAMPLES)), before=st.lists(ACTIONS, max_size=12),
       partner=st.booleans(), after=st.lists(ACTIONS, max_size=12))
def test_random_instances_of_the_examples_migrate_to_the_latest_version_and_keep_running_legally(
        start: tuple[str, int], before: list, partner: bool, after: list) -> None:  # type: ignore[type-arg]
    name = start[0]
    clock = VirtualClock(1000.0)
    data = {"delivery": {"order_id": "o-1"}, "onboarding": {"email": "a+ref@x.io"}}[name]
    if start == ("delivery", 2):
        data["partner"] = partner
    instance = MACHINES[start].start(clock=clock, data=data)
    for action in before:
        if instance.done:
            break
        _act(instance, EXAMPLES[start], action)
    snapshot = instance.snapshot()
    old_after_timers = {p.id.split(".", 2)[2]: p.due for p in snapshot.pending_sends if p.id.startswith("after.")}
    for step in CHAINS[name]:
        if step.from_version < snapshot.version:
            continue
        old, new = MACHINES[(name, step.from_version)], MACHINES[(name, step.to_version)]
        assert step.states is not None
        expected_leaves = {step.states.get(s, s) for s in leaves(old, snapshot.configuration)}
        snapshot = migrate_snapshot(step, snapshot, old, new, "p-1")
        assert leaves(new, snapshot.configuration) == expected_leaves
    latest = MACHINES[(name, max(v for n, v in MACHINES if n == name))]
    assert snapshot.version == latest.version
    assert latest.is_legal(snapshot.configuration) == []
    new_after_timers = {p.id.split(".", 2)[2]: p.due for p in snapshot.pending_sends}
    renamed = {"submitted": "offered"} if start == ("delivery", 1) else {}
    assert new_after_timers == {renamed.get(s, s): due for s, due in old_after_timers.items()}
    continued = latest.restore(snapshot, clock=clock)
    assert continued.done == instance.done
    events = sorted({e for (n, _), es in EXAMPLES.items() if n == name for e in es})
    for action in after:
        if continued.done:
            break
        _act(continued, events, action)
        assert latest.is_legal(continued.configuration) == []


def test_check_names_a_configuration_mapped_to_a_state_the_new_version_lacks(tmp_path: Path, v1: Machine,
                                                                            v2: Machine) -> None:
    step = write_step(tmp_path, SHOP_STEP.replace('"abandoned": "abandoned"', '"abandoned": "given_up"'))
    report = check_step(step, v1, v2)
    assert [str(f) for f in report.findings] == [
        "{abandoned}: the mapping names 'given_up', which shop v2 does not have"]
