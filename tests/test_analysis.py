"""Static analysis: each defect built into a small chart and found at its YAML location;
the example machines; shortest paths as a test plan; the check and paths commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import statechart
from statechart.analysis import Finding, check_machine, covers, explore, produced_events, shortest_paths
from statechart.cli import main

ROOT = Path(__file__).resolve().parent.parent
ORDER = str(ROOT / "machines/order/v2.yaml")
FILE = "machines/x/v1.yaml"


def findings(text: str) -> list[tuple[str, str, str]]:
    machine = statechart.loads(text, FILE)
    return [(f.kind, f"{f.location.line}:{f.location.column}", f.message) for f in check_machine(machine)]


def test_unreachable_state_is_reported_at_its_key() -> None:
    text = """machine: x
version: 1
states:
  a:
    on: {GO: b}
  b: {type: final}
  orphan:
    on: {BACK: a}
"""
    assert findings(text) == [
        ("unreachable", "7:3", "state 'orphan' can never be entered: no sequence of events leads to it "
                               "(guards ignored)"),
    ]


def test_state_reached_only_through_a_guarded_transition_is_not_unreachable() -> None:
    text = """machine: x
version: 1
data: {n: 0}
states:
  a:
    on: {GO: {target: b, cond: "n > 100"}}
  b: {type: final}
"""
    assert findings(text) == []


def test_state_passed_through_by_an_eventless_transition_counts_as_reached() -> None:
    text = """machine: x
version: 1
states:
  a:
    always: b
  b:
    on: {GO: c}
  c: {type: final}
"""
    assert findings(text) == []


def test_dead_end_is_a_non_final_state_whose_only_transitions_are_targetless() -> None:
    text = """machine: x
version: 1
states:
  a:
    on: {GO: stuck, FINISH: end}
  stuck:
    on: {POKE: {actions: [{log: "'poked'"}]}}
  end: {type: final}
"""
    assert findings(text) == [
        ("dead-end", "6:3", "state 'stuck' is not final and has no transition out of it or its ancestors: "
                            "an instance that gets here stays forever"),
    ]


def test_ancestor_transition_is_a_way_out_of_an_atomic_state() -> None:
    text = """machine: x
version: 1
states:
  p:
    initial: quiet
    on: {CANCEL: end}
    states:
      quiet: {}
  end: {type: final}
"""
    assert findings(text) == []


def test_states_that_only_lead_to_each_other_are_a_trap() -> None:
    text = """machine: x
version: 1
states:
  a:
    on: {GO: ping, FINISH: end}
  ping:
    on: {NEXT: pong}
  pong:
    on: {NEXT: ping}
  end: {type: final}
"""
    assert findings(text) == [
        ("trap", "6:3", "states 'ping', 'pong' can never reach a final state: they only lead to each other"),
    ]


def test_no_trap_is_reported_when_the_machine_has_no_final_state() -> None:
    text = """machine: x
version: 1
states:
  ping:
    on: {NEXT: pong}
  pong:
    on: {NEXT: ping}
"""
    assert findings(text) == []


def test_transition_after_an_unguarded_one_for_the_same_event_is_shadowed() -> None:
    text = """machine: x
version: 1
states:
  a:
    on:
      GO:
        - target: b
        - target: c
          cond: "True"
      STOP: [{target: b, cond: "ok"}, c]
  b: {on: {GO: a}}
  c: {on: {GO: a}}
data: {ok: true}
"""
    assert findings(text) == [
        ("shadowed", "8:11", "transition 'a:GO:1' (GO [True]) can never fire: the earlier transition 'a:GO:0' "
                             f"at {FILE}:7:11 has no guard and always wins"),
    ]


def test_prefix_descriptor_shadows_a_later_more_specific_one() -> None:
    text = """machine: x
version: 1
states:
  a:
    on:
      "error.*": b
      error.execution: c
  b: {on: {GO: a}}
  c: {on: {GO: a}}
"""
    assert findings(text) == [
        ("unreachable", "9:3", "state 'c' can never be entered: no sequence of events leads to it "
                               "(guards ignored)"),
        ("shadowed", "7:24", "transition 'a:error.execution:0' (error.execution) can never fire: the earlier "
                             f"transition 'a:error.*:0' at {FILE}:6:18 has no guard and always wins"),
    ]


def test_ancestor_transition_is_shadowed_when_every_descendant_takes_the_event_unguarded() -> None:
    text = """machine: x
version: 1
states:
  p:
    initial: one
    on:
      NEXT: q
    states:
      one: {on: {NEXT: two}}
      two: {on: {NEXT: one}}
  q: {on: {BACK: p}}
"""
    assert findings(text) == [
        ("unreachable", "11:3", "state 'q' can never be entered: no sequence of events leads to it "
                                "(guards ignored)"),
        ("shadowed", "7:13", "transition 'p:NEXT:0' (NEXT) can never fire: in every state inside 'p' an "
                             f"unguarded transition takes the event first ('one:NEXT:0' at {FILE}:9:24, "
                             f"'two:NEXT:0' at {FILE}:10:24)"),
    ]


def test_ancestor_transition_is_live_when_one_descendant_guards_the_event() -> None:
    text = """machine: x
version: 1
states:
  p:
    initial: one
    on:
      NEXT: q
    states:
      one: {on: {NEXT: two}}
      two: {on: {NEXT: {target: one, cond: "False"}}}
  q: {type: final}
"""
    assert findings(text) == []


def test_raised_and_sent_events_nobody_handles_are_reported_at_the_action() -> None:
    text = """machine: x
version: 1
states:
  a:
    entry: [{raise: READY}]
    on:
      GO: {target: b, actions: [{send: {event: PING, delay: 5s}}, {raise: {event: READY, data: {n: 1}}}]}
      READY: a
  b:
    exit:
      - if: "True"
        then: [{raise: ORPHAN}]
    on: {DONE: end}
  end: {type: final}
"""
    assert findings(text) == [
        ("unhandled-event", "7:33", "event 'PING' is sent by the machine but no transition handles it"),
        ("unhandled-event", "11:9", "event 'ORPHAN' is raised by the machine but no transition handles it"),
    ]


def test_events_handled_but_never_produced_inside_are_external_and_fine() -> None:
    machine = statechart.loads("""machine: x
version: 1
states:
  a: {on: {EXTERNAL: b}}
  b: {type: final}
""", FILE)
    assert produced_events(machine) == []
    assert check_machine(machine) == []


def test_parallel_with_a_region_that_cannot_finish_never_sends_its_done_event() -> None:
    text = """machine: x
version: 1
states:
  work:
    type: parallel
    states:
      left:
        states:
          l1: {on: {L: l2}}
          l2: {type: final}
      right:
        states:
          r1: {on: {R: r2}}
          r2: {on: {R: r1}}
    on_done: finished
  finished: {type: final}
"""
    assert findings(text) == [
        ("unreachable", "16:3", "state 'finished' can never be entered: no sequence of events leads to it "
                                "(guards ignored)"),
        ("unfinishable-parallel", "4:3", "parallel state 'work' can never finish: region 'right' has no "
                                         "reachable final state, so done.state.work never comes"),
    ]


def test_parallel_whose_regions_run_forever_by_design_is_not_reported() -> None:
    text = """machine: x
version: 1
states:
  app:
    type: parallel
    states:
      sound: {states: {loud: {on: {MUTE: muted}}, muted: {on: {MUTE: loud}}}}
      light: {states: {dark: {on: {FLIP: lit}}, lit: {on: {FLIP: dark}}}}
"""
    assert findings(text) == []


@pytest.mark.parametrize("file", sorted(str(p.relative_to(ROOT)) for p in (ROOT / "machines").rglob("v*.yaml")
                                        if "order" not in p.parts))
def test_example_machines_have_no_findings(file: str) -> None:
    assert check_machine(statechart.load(ROOT / file)) == []


def test_order_example_has_a_dead_failed_state_and_an_unhandled_timeout() -> None:
    # Both are real: `failed` is not `type: final`, so a failed order never ends, and the
    # 30-minute TIMEOUT that `authorizing` schedules is handled by no transition.
    machine = statechart.load(ORDER)
    assert [(f.kind, str(f.location), f.subject) for f in check_machine(machine)] == [
        ("dead-end", f"{ORDER}:44:3", "failed"),
        ("unhandled-event", f"{ORDER}:21:17", "TIMEOUT"),
    ]


def test_order_paths_are_the_shortest_event_sequences() -> None:
    paths = shortest_paths(statechart.load(ORDER))
    assert {state: list(path) for state, path in paths.items()} == {
        "cart": [],
        "payment": ["CHECKOUT"],
        "authorizing": ["CHECKOUT"],
        "captured": ["CHECKOUT", "AUTHORIZED"],
        "fulfillment": ["CHECKOUT", "AUTHORIZED"],
        "shipping": ["CHECKOUT", "AUTHORIZED"],
        "packing": ["CHECKOUT", "AUTHORIZED"],
        "in_transit": ["CHECKOUT", "AUTHORIZED", "PACKED"],
        "late": ["CHECKOUT", "AUTHORIZED", "PACKED", "after 2d"],
        "shipped": ["CHECKOUT", "AUTHORIZED", "PACKED", "DELIVERED"],
        "invoicing": ["CHECKOUT", "AUTHORIZED"],
        "open": ["CHECKOUT", "AUTHORIZED"],
        "held": ["CHECKOUT", "AUTHORIZED", "HOLD"],
        "paid": ["CHECKOUT", "AUTHORIZED", "PAY"],
        "failed": ["error"],
        "done": ["CHECKOUT", "AUTHORIZED", "PACKED", "DELIVERED", "PAY"],
    }


def test_order_path_reports_its_guards_and_the_transitions_taken() -> None:
    path = shortest_paths(statechart.load(ORDER), to="shipped")["shipped"]
    assert path.guards == (("cart:CHECKOUT:0", "total > 0"),)
    assert path.transitions == ("cart:CHECKOUT:0", "authorizing:AUTHORIZED:0", "payment:on_done:0",
                                "packing:PACKED:0", "in_transit:DELIVERED:0")
    assert path.transient is False


def test_state_left_by_a_done_transition_in_the_same_step_is_transient() -> None:
    assert shortest_paths(statechart.load(ORDER), to="captured")["captured"].transient is True


def test_order_path_replays_on_a_real_instance_once_its_guard_holds() -> None:
    machine = statechart.load(ORDER)
    clock = statechart.VirtualClock()
    instance = machine.start(data={"total": 5}, clock=clock)
    for step in shortest_paths(machine, to="late")["late"]:
        if step.startswith("after "):
            instance.advance(2 * 86400)
        else:
            instance.send(step)
    assert sorted(instance.active_leaves()) == ["late", "open"]


def test_paths_to_an_unknown_state_raise_key_error() -> None:
    with pytest.raises(KeyError, match="order has no state 'nowhere'"):
        shortest_paths(statechart.load(ORDER), to="nowhere")


def test_explore_history_restores_are_distinct_nodes() -> None:
    machine = statechart.loads("""machine: x
version: 1
states:
  p:
    initial: one
    states:
      h: {type: history}
      one: {on: {NEXT: two}}
      two: {}
    on: {OUT: away}
  away: {on: {BACK: p.h}}
""", FILE)
    space = explore(machine)
    assert space.exhaustive
    assert sorted(sorted(c) for c in {node[0] for node in space.graph}) == [
        ["away"], ["one", "p"], ["p", "two"]]
    assert shortest_paths(machine, space=space)["two"] == ["NEXT"]


def test_covers_follows_descriptor_prefix_rules() -> None:
    assert covers("*", "A") and covers("error", "error.execution") and covers("A", "A")
    assert not covers("error.execution", "error") and not covers("A", "*") and not covers("AB", "A")
    assert covers(None, None) and not covers(None, "A") and not covers("*", None)


def test_check_command_prints_located_findings_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", ORDER])
    out = capsys.readouterr().out
    assert code == 1
    assert out.splitlines() == [
        f"{ORDER}:44:3: dead-end: state 'failed' is not final and has no transition out of it or its ancestors: "
        "an instance that gets here stays forever",
        f"{ORDER}:21:17: unhandled-event: event 'TIMEOUT' is sent by the machine but no transition handles it",
    ]


def test_check_command_json_and_clean_machine(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", ORDER, "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert [(d["kind"], d["line"], d["column"], d["subject"]) for d in document] == [
        ("dead-end", 44, 3, "failed"), ("unhandled-event", 21, 17, "TIMEOUT")]
    clean = str(ROOT / "machines/delivery/v3.yaml")
    assert main(["check", clean]) == 0
    assert capsys.readouterr().out == f"ok   {clean}: no findings\n"


def test_paths_command_prints_guards_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["paths", ORDER, "--to", "late"]) == 0
    assert capsys.readouterr().out == "late: CHECKOUT AUTHORIZED PACKED after 2d  [if total > 0 (cart:CHECKOUT:0)]\n"
    assert main(["paths", ORDER, "--to", "failed", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "failed": {"events": ["error"], "transitions": ["cart:error.*:0"], "guards": [], "transient": False}}


def test_paths_command_rejects_an_unknown_state(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["paths", ORDER, "--to", "nowhere"]) == 2
    assert "order has no state 'nowhere'" in capsys.readouterr().err


def test_finding_string_is_file_line_column_kind_message() -> None:
    finding = Finding("dead-end", "m", statechart.load(ORDER).model.states["failed"].location, "failed")
    assert str(finding) == f"{ORDER}:44:3: dead-end: m"


def test_truncated_search_falls_back_to_the_state_graph_without_false_alarms() -> None:
    machine = statechart.load(ORDER)
    assert [(f.kind, f.subject) for f in check_machine(machine, limit=3)] == [
        ("truncated", "order"), ("dead-end", "failed"), ("unhandled-event", "TIMEOUT")]
