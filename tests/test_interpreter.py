"""Tests for the interpreter's SCXML semantics (W3C SCXML 1.0, section 3 and Appendix D).

One test per rule: configurations and the exact order of exit, transition and entry
actions. Order is observed through ``log`` actions (``result.logs``), named Python actions
appending to a list, and ``result.trace``.
"""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

import statechart
from statechart.events import is_reserved_event
from statechart import (
    DefinitionMismatchError,
    Effect,
    EventlessLoopError,
    InstanceDoneError,
    PendingSend,
    Snapshot,
    UnhandledEventError,
    UnknownEventError,
    VirtualClock,
)

FILE = "machines/x/v1.yaml"


def load(text: str, **kwargs: Any) -> statechart.Machine:
    return statechart.loads("machine: x\nversion: 1\n" + textwrap.dedent(text), FILE, **kwargs)


def start(text: str, *, data: dict[str, Any] | None = None, strict: bool = False, now: float = 0.0,
          **kwargs: Any) -> statechart.Instance:
    return load(text, **kwargs).start(data=data, clock=VirtualClock(now), strict=strict, session_id="s1")


def logged(result: statechart.SendResult) -> list[Any]:
    return [value for _, value in result.logs]


def logged_all(results: list[statechart.SendResult]) -> list[Any]:
    return [value for result in results for value in logged(result)]


# -- reusable tiny machines ---------------------------------------------------------------------

NESTED = """
states:
  a:
    entry: {log: "'entry a'"}
    exit: {log: "'exit a'"}
    states:
      a1:
        entry: {log: "'entry a1'"}
        exit: {log: "'exit a1'"}
        states:
          a11:
            entry: {log: "'entry a11'"}
            exit: {log: "'exit a11'"}
            on: {GO: {target: b11, actions: {log: "'transition GO'"}}}
  b:
    entry: {log: "'entry b'"}
    exit: {log: "'exit b'"}
    states:
      b1:
        entry: {log: "'entry b1'"}
        exit: {log: "'exit b1'"}
        states:
          b11:
            entry: {log: "'entry b11'"}
            exit: {log: "'exit b11'"}
"""

PARALLEL = """
states:
  idle:
    on: {START: p}
  p:
    type: parallel
    entry: {log: "'entry p'"}
    exit: {log: "'exit p'"}
    on: {STOP: idle}
    states:
      r1:
        entry: {log: "'entry r1'"}
        exit: {log: "'exit r1'"}
        states:
          a1:
            entry: {log: "'entry a1'"}
            exit: {log: "'exit a1'"}
            on:
              E: {target: b1, actions: {log: "'t a1'"}}
              LEAVE: {target: x, actions: {log: "'t a1 LEAVE'"}}
          b1:
            entry: {log: "'entry b1'"}
            exit: {log: "'exit b1'"}
      r2:
        entry: {log: "'entry r2'"}
        exit: {log: "'exit r2'"}
        states:
          a2:
            entry: {log: "'entry a2'"}
            exit: {log: "'exit a2'"}
            on:
              E: {target: b2, actions: {log: "'t a2'"}}
              LEAVE: {target: y, actions: {log: "'t a2 LEAVE'"}}
              STOP: {target: b2, actions: {log: "'t a2 STOP'"}}
          b2:
            entry: {log: "'entry b2'"}
            exit: {log: "'exit b2'"}
  x: {}
  y: {}
"""

HISTORY = """
states:
  p:
    entry: {log: "'entry p'"}
    on: {OUT: outside}
    states:
      shallow_h: {type: history, history: shallow, target: c2, actions: {log: "'default shallow'"}}
      deep_h: {type: history, history: deep, target: c2, actions: {log: "'default deep'"}}
      c1:
        entry: {log: "'entry c1'"}
        on: {NEXT: c2}
      c2:
        entry: {log: "'entry c2'"}
        states:
          c2a:
            entry: {log: "'entry c2a'"}
            on: {NEXT: c2b}
          c2b:
            entry: {log: "'entry c2b'"}
  outside:
    on:
      BACK_SHALLOW: shallow_h
      BACK_DEEP: deep_h
"""


# -- 1. initial configuration --------------------------------------------------------------------

def test_default_initial_state_is_the_first_child_in_document_order() -> None:
    instance = start("""
    states:
      p:
        states:
          first_written: {}
          other: {}
      q: {}
    """)
    assert instance.configuration == {"p", "first_written"}
    assert instance.initial_result.trace == (
        "transition:$root:initial", "enter:p", "enter:first_written")


def test_explicit_initial_overrides_document_order_at_every_level() -> None:
    instance = start("""
    initial: q
    states:
      p: {}
      q:
        initial: q2
        states:
          q1: {}
          q2: {}
    """)
    assert instance.configuration == {"q", "q2"}
    assert instance.initial_result.trace == ("transition:$root:initial", "enter:q", "enter:q2")


def test_initial_transition_actions_run_after_parent_entry_and_before_child_entry() -> None:
    instance = start("""
    initial: {target: p, actions: {log: "'machine initial'"}}
    states:
      z: {}
      p:
        entry: {log: "'entry p'"}
        initial: {target: c2, actions: [{log: "'p initial'"}]}
        states:
          c1: {entry: {log: "'entry c1'"}}
          c2:
            entry: {log: "'entry c2'"}
            initial: {target: c22, actions: {log: "'c2 initial'"}}
            states:
              c21: {}
              c22: {entry: {log: "'entry c22'"}}
    """)
    assert instance.configuration == {"p", "c2", "c22"}
    assert logged(instance.initial_result) == [
        "machine initial", "entry p", "p initial", "entry c2", "c2 initial", "entry c22"]


# -- 2. entry and exit order ---------------------------------------------------------------------

def test_exit_children_first_then_transition_actions_then_entry_parents_first() -> None:
    instance = start(NESTED)
    assert logged(instance.initial_result) == ["entry a", "entry a1", "entry a11"]
    result = instance.send("GO")
    assert logged(result) == [
        "exit a11", "exit a1", "exit a", "transition GO", "entry b", "entry b1", "entry b11"]
    assert result.trace == (
        "exit:a11", "exit:a1", "exit:a", "transition:a11:GO:0", "enter:b", "enter:b1", "enter:b11")
    assert result.configuration_before == {"a", "a1", "a11"}
    assert result.configuration_after == instance.configuration == {"b", "b1", "b11"}


def test_exit_order_is_reverse_document_order_across_parallel_regions() -> None:
    instance = start(PARALLEL)
    instance.send("START")
    result = instance.send("STOP")
    # a2's own STOP transition (targeting inside r2) and p's STOP conflict; the descendant wins.
    assert result.transitions == ("a2:STOP:0",)
    result = instance.send("LEAVE")
    assert result.trace == (
        "exit:b2", "exit:r2", "exit:a1", "exit:r1", "exit:p", "transition:a1:LEAVE:0", "enter:x")
    assert logged(result) == ["exit b2", "exit r2", "exit a1", "exit r1", "exit p", "t a1 LEAVE"]


# -- 3. external and internal transitions -------------------------------------------------------

SELF = """
states:
  p:
    entry: {log: "'entry p'"}
    exit: {log: "'exit p'"}
    on:
      RESET: {target: p, actions: {log: "'t RESET'"}}
      EXT: {target: c2, actions: {log: "'t EXT'"}}
      INT: {target: c2, type: internal, actions: {log: "'t INT'"}}
    states:
      c1:
        entry: {log: "'entry c1'"}
        exit: {log: "'exit c1'"}
      c2:
        entry: {log: "'entry c2'"}
        exit: {log: "'exit c2'"}
"""


def test_external_self_transition_on_compound_exits_and_reenters_it() -> None:
    instance = start(SELF)
    instance.send("INT")
    assert instance.configuration == {"p", "c2"}
    result = instance.send("RESET")
    assert logged(result) == ["exit c2", "exit p", "t RESET", "entry p", "entry c1"]
    assert result.trace == ("exit:c2", "exit:p", "transition:p:RESET:0", "enter:p", "enter:c1")
    assert instance.configuration == {"p", "c1"}


def test_external_transition_to_a_descendant_exits_the_source() -> None:
    instance = start(SELF)
    result = instance.send("EXT")
    assert logged(result) == ["exit c1", "exit p", "t EXT", "entry p", "entry c2"]
    assert instance.configuration == {"p", "c2"}


def test_internal_transition_to_a_descendant_does_not_exit_the_source() -> None:
    instance = start(SELF)
    result = instance.send("INT")
    assert logged(result) == ["exit c1", "t INT", "entry c2"]
    assert result.trace == ("exit:c1", "transition:p:INT:0", "enter:c2")
    assert instance.configuration == {"p", "c2"}


def test_internal_transition_targeting_the_source_itself_acts_as_external() -> None:
    # SCXML getTransitionDomain: internal only matters when every target is a proper descendant.
    instance = start("""
    states:
      p:
        entry: {log: "'entry p'"}
        exit: {log: "'exit p'"}
        on: {AGAIN: {target: p, type: internal}}
        states:
          c1: {}
    """)
    result = instance.send("AGAIN")
    assert logged(result) == ["exit p", "entry p"]
    assert result.trace == ("exit:c1", "exit:p", "transition:p:AGAIN:0", "enter:p", "enter:c1")


# -- 4. transition selection ---------------------------------------------------------------------

def test_descendant_transition_beats_ancestor_transition_for_the_same_event() -> None:
    instance = start("""
    states:
      p:
        on: {E: from_parent}
        states:
          c:
            on: {E: from_child}
      from_parent: {}
      from_child: {}
    """)
    result = instance.send("E")
    assert result.transitions == ("c:E:0",)
    assert instance.configuration == {"from_child"}


def test_ancestor_transition_is_taken_when_the_descendant_one_is_disabled() -> None:
    instance = start("""
    data: {open: false}
    states:
      p:
        on: {E: from_parent}
        states:
          c:
            on: {E: {target: from_child, cond: "open"}}
      from_parent: {}
      from_child: {}
    """)
    result = instance.send("E")
    assert result.transitions == ("p:E:0",)
    assert instance.configuration == {"from_parent"}


def test_transitions_of_one_state_are_tried_in_document_order() -> None:
    instance = start("""
    states:
      a:
        on:
          "*": first
          E: second
      first: {}
      second: {}
    """)
    result = instance.send("E")
    assert result.transitions == ("a:*:0",)
    assert instance.configuration == {"first"}


def test_first_enabled_transition_of_a_list_is_taken() -> None:
    machine = load("""
    data: {n: 0}
    states:
      start:
        on:
          E: [{target: big, cond: "n > 1"}, {target: small}]
      big: {}
      small: {}
    """)
    low = machine.start(data={"n": 0}, clock=VirtualClock())
    assert low.send("E").transitions == ("start:E:1",)
    assert low.configuration == {"small"}
    high = machine.start(data={"n": 2}, clock=VirtualClock())
    assert high.send("E").transitions == ("start:E:0",)
    assert high.configuration == {"big"}


def test_only_the_first_enabled_targetless_transition_runs() -> None:
    instance = start("""
    data: {n: 2}
    states:
      p:
        on:
          E: {cond: "True", actions: {log: "'parent'"}}
        states:
          c:
            on:
              E: [{cond: "n > 1", actions: {log: "'big'"}}, {actions: {log: "'small'"}}]
    """)
    result = instance.send("E")
    assert result.transitions == ("c:E:0",)
    assert logged(result) == ["big"]
    assert result.trace == ("transition:c:E:0",)


def test_named_guard_receives_the_context_and_decides() -> None:
    seen = []

    def allowed(ctx: statechart.ActionContext) -> bool:
        seen.append((ctx.event.name, ctx.event.data, ctx.data["limit"], ctx.In("a")))
        return ctx.event.data["amount"] <= ctx.data["limit"]

    instance = start("""
    data: {limit: 10}
    states:
      a:
        on:
          PAY: [{target: ok, guard: allowed}, {target: refused}]
      ok: {}
      refused: {}
    """, guards={"allowed": allowed})
    result = instance.send("PAY", {"amount": 11})
    assert result.transitions == ("a:PAY:1",)
    assert seen == [("PAY", {"amount": 11}, 10, True)]


def test_cond_sees_event_data() -> None:
    machine = load("""
    states:
      a:
        on:
          PAY: [{target: ok, cond: "event.data['amount'] <= 10"}, {target: refused}]
      ok: {}
      refused: {}
    """)
    small = machine.start(clock=VirtualClock())
    small.send("PAY", {"amount": 10})
    assert small.configuration == {"ok"}
    large = machine.start(clock=VirtualClock())
    large.send("PAY", {"amount": 11})
    assert large.configuration == {"refused"}


# -- 5. event descriptors ------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("descriptor", "event", "matches"),
    [
        ("error.*", "error.execution", True),
        ("error", "error.execution", True),
        ("error.", "error.execution", True),
        ("error.execution", "error.execution", True),
        ("error.execution", "error", False),
        ("err", "error", False),
        ("err", "error.execution", False),
        ("error.*", "errors", False),
        ("*", "anything.at.all", True),
        ("A B", "A", True),
        ("A B", "B", True),
        ("A B", "C", False),
        ("A B", "AB", False),
    ],
)
def test_event_descriptor_matching(descriptor: str, event: str, matches: bool) -> None:
    instance = start(f"""
    states:
      a:
        on: {{"{descriptor}": {{target: hit}}}}
      hit: {{}}
    """)
    # Callers may not send reserved names (done.*, error.*); the matching rule is the same for the
    # interpreter's own deliveries, so those go through the unchecked internal path.
    result = instance._send(event, None) if is_reserved_event(event) else instance.send(event)
    assert result.handled is matches
    assert instance.configuration == ({"hit"} if matches else {"a"})


# -- 6. parallel states ------------------------------------------------------------------------

def test_entering_a_parallel_enters_every_region_in_document_order() -> None:
    instance = start(PARALLEL)
    result = instance.send("START")
    assert result.trace == (
        "exit:idle", "transition:idle:START:0",
        "enter:p", "enter:r1", "enter:a1", "enter:r2", "enter:a2")
    assert logged(result) == ["entry p", "entry r1", "entry a1", "entry r2", "entry a2"]
    assert instance.configuration == {"p", "r1", "a1", "r2", "a2"}


def test_one_event_takes_a_transition_in_each_region_in_document_order() -> None:
    instance = start(PARALLEL)
    instance.send("START")
    result = instance.send("E")
    assert result.transitions == ("a1:E:0", "a2:E:0")
    assert logged(result) == ["exit a2", "exit a1", "t a1", "t a2", "entry b1", "entry b2"]
    assert result.trace == (
        "exit:a2", "exit:a1", "transition:a1:E:0", "transition:a2:E:0", "enter:b1", "enter:b2")
    assert instance.configuration == {"p", "r1", "b1", "r2", "b2"}


def test_conflicting_transitions_from_sibling_regions_the_earlier_in_document_order_wins() -> None:
    instance = start(PARALLEL)
    instance.send("START")
    result = instance.send("LEAVE")
    assert result.transitions == ("a1:LEAVE:0",)
    assert logged(result)[-1] == "t a1 LEAVE"
    assert instance.configuration == {"x"}


CONFLICT = """
states:
  p:
    type: parallel
    on: {E: {target: out, actions: {log: "'t p'"}}}
    states:
      r1:
        states:
          a1: {on: {E: {target: b1, actions: {log: "'t a1'"}}}}
          b1: {}
      r2:
        states:
          a2: {}
  q:
    type: parallel
    on: {E: {target: out, actions: {log: "'t q'"}}}
    states:
      s1:
        states:
          c1: {}
      s2:
        states:
          c2: {on: {E: {target: d2, actions: {log: "'t c2'"}}}}
          d2: {}
  out: {}
"""


def test_conflict_descendant_transition_preempts_a_later_ancestor_transition() -> None:
    # Selection gives [a1:E (for a1), p:E (for a2)]; their exit sets overlap and a1 is inside p.
    instance = start(CONFLICT)
    result = instance.send("E")
    assert result.transitions == ("a1:E:0",)
    assert logged(result) == ["t a1"]
    assert instance.configuration == {"p", "r1", "b1", "r2", "a2"}


def test_conflict_descendant_transition_removes_an_earlier_ancestor_transition() -> None:
    # Selection gives [q:E (for c1), c2:E (for c2)]: the later, inner one removes the earlier.
    instance = start("initial: q\n" + CONFLICT)
    result = instance.send("E")
    assert result.transitions == ("c2:E:0",)
    assert logged(result) == ["t c2"]
    assert instance.configuration == {"q", "s1", "c1", "s2", "d2"}


def test_ancestor_transition_shared_by_two_regions_is_taken_once() -> None:
    instance = start(PARALLEL)
    instance.send("START")
    instance.send("E")
    result = instance.send("STOP")
    assert result.transitions == ("p:STOP:0",)
    assert logged(result) == ["exit b2", "exit r2", "exit b1", "exit r1", "exit p"]
    assert instance.configuration == {"idle"}


def test_transition_between_regions_exits_and_reenters_the_whole_parallel() -> None:
    # findLCCA skips parallel states, so the domain is the root: p is exited and re-entered,
    # r1 by its default initial state and r2 at the target.
    instance = start("""
    states:
      p:
        type: parallel
        entry: {log: "'entry p'"}
        exit: {log: "'exit p'"}
        states:
          r1:
            states:
              a1: {on: {NEXT: b1}}
              b1: {on: {CROSS: b2}}
          r2:
            states:
              a2: {}
              b2: {}
    """)
    instance.send("NEXT")
    result = instance.send("CROSS")
    assert result.trace == ("exit:a2", "exit:r2", "exit:b1", "exit:r1", "exit:p", "transition:b1:CROSS:0",
                            "enter:p", "enter:r1", "enter:a1", "enter:r2", "enter:b2")
    assert logged(result) == ["exit p", "entry p"]
    assert instance.configuration == {"p", "r1", "a1", "r2", "b2"}


# -- 7. eventless transitions and the internal queue -------------------------------------------

def test_eventless_transitions_chain_to_completion_before_the_next_event() -> None:
    instance = start("""
    data: {n: 0}
    states:
      a: {on: {GO: b}}
      b: {always: {target: c, actions: {assign: {n: "n + 1"}}}}
      c: {always: {target: d, cond: "n == 1", actions: {log: "'c to d'"}}}
      d: {on: {GO: a}}
    """)
    result = instance.send("GO")
    assert result.transitions == ("a:GO:0", "b:always:0", "c:always:0")
    assert [len(step.microsteps) for step in result.macrosteps] == [3]
    assert logged(result) == ["c to d"]
    assert instance.configuration == {"d"}


def test_initial_step_runs_eventless_transitions() -> None:
    instance = start("""
    states:
      a: {always: b}
      b: {}
    """)
    assert instance.configuration == {"b"}
    assert instance.initial_result.transitions == ("$root:initial", "a:always:0")


def test_internal_events_are_processed_in_order_each_after_eventless_transitions_settle() -> None:
    # If I2 were taken before d's eventless transition, d would not handle it and we would end in e.
    instance = start("""
    states:
      a:
        on:
          GO: {target: b, actions: [{raise: I1}, {raise: I2}, {log: "'raised'"}]}
      b: {always: c, on: {I1: wrong}}
      c: {on: {I1: d, I2: wrong}}
      d: {always: e}
      e: {on: {I2: f}}
      f: {}
      wrong: {}
    """)
    result = instance.send("GO")
    assert result.transitions == ("a:GO:0", "b:always:0", "c:I1:0", "d:always:0", "e:I2:0")
    assert len(result.macrosteps) == 1
    assert result.macrosteps[0].events == ("GO", "I1", "I2")
    assert instance.configuration == {"f"}


def test_unhandled_internal_event_is_dropped_and_the_next_one_processed() -> None:
    instance = start("""
    states:
      a:
        on:
          GO: {actions: [{raise: NOBODY}, {raise: {event: SOMEBODY, data: {k: 1}}}]}
          SOMEBODY: {target: b, actions: {log: "event.data['k']"}}
      b: {}
    """)
    result = instance.send("GO")
    assert result.macrosteps[0].events == ("GO", "NOBODY", "SOMEBODY")
    assert result.transitions == ("a:GO:0", "a:SOMEBODY:0")
    assert logged(result) == [1]
    assert instance.configuration == {"b"}


def test_internal_events_come_before_zero_delay_sends() -> None:
    instance = start("""
    states:
      a:
        on:
          GO: {target: b, actions: [{send: {event: EXT}}, {raise: INT}]}
      b: {on: {INT: {target: c, actions: {log: "'INT'"}}, EXT: wrong}}
      c: {on: {EXT: {target: d, actions: {log: "'EXT'"}}}}
      d: {}
      wrong: {}
    """)
    result = instance.send("GO")
    assert [step.events for step in result.macrosteps] == [("GO", "INT"), ("EXT",)]
    assert logged(result) == ["INT", "EXT"]
    assert instance.configuration == {"d"}


# -- 8. history ------------------------------------------------------------------------------------

def test_shallow_history_restores_the_child_and_then_its_default_initial() -> None:
    instance = start(HISTORY)
    instance.send("NEXT")
    instance.send("NEXT")
    assert instance.configuration == {"p", "c2", "c2b"}
    instance.send("OUT")
    assert instance.history["shallow_h"] == {"c2"}
    result = instance.send("BACK_SHALLOW")
    assert logged(result) == ["entry p", "entry c2", "entry c2a"]
    assert instance.configuration == {"p", "c2", "c2a"}


def test_deep_history_restores_the_exact_nested_leaf() -> None:
    instance = start(HISTORY)
    instance.send("NEXT")
    instance.send("NEXT")
    instance.send("OUT")
    assert instance.history["deep_h"] == {"c2b"}
    result = instance.send("BACK_DEEP")
    assert logged(result) == ["entry p", "entry c2", "entry c2b"]
    assert result.trace == ("exit:outside", "transition:outside:BACK_DEEP:0",
                            "enter:p", "enter:c2", "enter:c2b")
    assert instance.configuration == {"p", "c2", "c2b"}


def test_history_default_target_and_actions_when_nothing_is_stored() -> None:
    instance = start("initial: outside\n" + HISTORY)
    assert instance.history == {}
    result = instance.send("BACK_SHALLOW")
    assert logged(result) == ["entry p", "default shallow", "entry c2", "entry c2a"]
    assert instance.configuration == {"p", "c2", "c2a"}
    instance.send("OUT")
    result = instance.send("BACK_SHALLOW")
    assert logged(result) == ["entry p", "entry c2", "entry c2a"]


def test_deep_history_default_actions_when_nothing_is_stored() -> None:
    instance = start("initial: outside\n" + HISTORY)
    result = instance.send("BACK_DEEP")
    assert logged(result) == ["entry p", "default deep", "entry c2", "entry c2a"]


def test_deep_history_restores_nested_parallel_states() -> None:
    instance = start("""
    states:
      p:
        on: {OUT: outside}
        states:
          h: {type: history, history: deep}
          q:
            type: parallel
            states:
              r1:
                states:
                  x1: {on: {N1: y1}}
                  y1: {}
              r2:
                states:
                  x2: {}
                  y2:
                    states:
                      y2a: {on: {N2: y2b}}
                      y2b: {}
              r3:
                states:
                  x3: {}
      outside:
        on: {BACK: h}
    """)
    instance.send("N1")
    assert instance.configuration == {"p", "q", "r1", "y1", "r2", "x2", "r3", "x3"}
    instance.send("OUT")
    assert instance.history["h"] == {"y1", "x2", "x3"}
    result = instance.send("BACK")
    assert result.trace == ("exit:outside", "transition:outside:BACK:0", "enter:p", "enter:q",
                            "enter:r1", "enter:y1", "enter:r2", "enter:x2", "enter:r3", "enter:x3")
    assert instance.configuration == {"p", "q", "r1", "y1", "r2", "x2", "r3", "x3"}


def test_deep_history_restores_leaves_below_a_compound_inside_a_parallel() -> None:
    instance = start("""
    states:
      p:
        on: {OUT: outside}
        states:
          h: {type: history, history: deep}
          q:
            type: parallel
            states:
              r1:
                states:
                  x1: {}
              r2:
                states:
                  x2: {on: {N2: y2}}
                  y2:
                    states:
                      y2a: {on: {N2: y2b}}
                      y2b: {}
      outside:
        on: {BACK: h}
    """)
    instance.send("N2")
    instance.send("N2")
    instance.send("OUT")
    assert instance.history["h"] == {"x1", "y2b"}
    instance.send("BACK")
    assert instance.configuration == {"p", "q", "r1", "x1", "r2", "y2", "y2b"}


HISTORY_FROM_INSIDE = """
states:
  p:
    entry: {log: "'entry p'"}
    exit: {log: "'exit p'"}
    on: {OUT: outside}
    states:
      h: {type: history, history: deep, target: c2b}
      c1: {on: {NEXT: c2}}
      c2:
        entry: {log: "'entry c2'"}
        exit: {log: "'exit c2'"}
        after: {1m: c1}
        states:
          c2a:
            entry: {log: "'entry c2a'"}
            exit: {log: "'exit c2a'"}
            on: {RESUME: h}
          c2b:
            entry: {log: "'entry c2b'"}
  outside: {on: {BACK: h}}
"""


def test_history_target_from_inside_its_parent_exits_what_it_reenters() -> None:
    # The default target c2b shares the ancestor c2 with the source c2a; entering the history
    # enters c2 again, so c2 must be exited first (Appendix D, taken literally, entered c2
    # twice: its entry actions and its `after` timer ran again without its exit).
    instance = start(HISTORY_FROM_INSIDE)
    instance.send("NEXT")
    result = instance.send("RESUME")
    assert result.trace == ("exit:c2a", "exit:c2", "transition:c2a:RESUME:0", "enter:c2", "enter:c2b")
    assert logged(result) == ["exit c2a", "exit c2", "entry c2", "entry c2b"]
    assert instance.configuration == {"p", "c2", "c2b"}
    assert [(p.id, p.due) for p in instance.pending_sends] == [("after.0.c2", 60.0)]


def test_stored_history_target_from_inside_its_parent_exits_what_it_reenters() -> None:
    instance = start(HISTORY_FROM_INSIDE)
    instance.send("NEXT")
    instance.send("OUT")
    assert instance.history["h"] == {"c2a"}
    instance.send("BACK")
    result = instance.send("RESUME")  # c2a -> h, which restores c2a itself
    assert result.trace == ("exit:c2a", "exit:c2", "transition:c2a:RESUME:0", "enter:c2", "enter:c2a")
    assert instance.configuration == {"p", "c2", "c2a"}


def test_history_is_per_instance_even_though_plans_are_cached_per_machine() -> None:
    machine = load(HISTORY)
    deep_in_c2b = machine.start(clock=VirtualClock())
    deep_in_c2a = machine.start(clock=VirtualClock())
    for event in ("NEXT", "NEXT", "OUT"):
        deep_in_c2b.send(event)
    for event in ("NEXT", "OUT"):
        deep_in_c2a.send(event)
    deep_in_c2b.send("BACK_DEEP")
    deep_in_c2a.send("BACK_DEEP")
    assert deep_in_c2b.configuration == {"p", "c2", "c2b"}
    assert deep_in_c2a.configuration == {"p", "c2", "c2a"}
    for instance in (deep_in_c2b, deep_in_c2a):
        instance.send("OUT")
    fresh = machine.start(clock=VirtualClock())
    fresh.send("OUT")
    assert fresh.history == {"shallow_h": {"c1"}, "deep_h": {"c1"}}
    assert logged(fresh.send("BACK_DEEP")) == ["entry p", "entry c1"]
    assert fresh.configuration == {"p", "c1"}


# -- 9. final states and done events ------------------------------------------------------------

def test_entering_a_final_child_raises_done_state_with_done_data() -> None:
    instance = start("""
    data: {total: 7, got: null}
    states:
      pay:
        on_done: {target: after, actions: {assign: {got: "event.data"}}}
        states:
          authorizing: {on: {OK: captured}}
          captured: {type: final, done_data: {amount: "total", fixed: 1}}
      after: {}
    """)
    result = instance.send("OK")
    assert result.macrosteps[0].events == ("OK", "done.state.pay")
    assert result.transitions == ("authorizing:OK:0", "pay:on_done:0")
    assert instance.data["got"] == {"amount": 7, "fixed": 1}
    assert instance.configuration == {"after"}


PARALLEL_DONE = """
states:
  p:
    type: parallel
    on_done: {target: finished, actions: {log: "'p done'"}}
    states:
      r1:
        on_done: {actions: {log: "'r1 done'"}}
        states:
          w1: {on: {F1: f1}}
          f1: {type: final}
      r2:
        on_done: {actions: {log: "'r2 done'"}}
        states:
          w2: {on: {F2: f2}}
          f2: {type: final}
  finished: {}
"""


def test_parallel_done_event_only_when_every_region_is_final() -> None:
    instance = start(PARALLEL_DONE)
    first = instance.send("F1")
    assert first.macrosteps[0].events == ("F1", "done.state.r1")
    assert logged(first) == ["r1 done"]
    assert instance.configuration == {"p", "r1", "f1", "r2", "w2"}
    second = instance.send("F2")
    assert second.macrosteps[0].events == ("F2", "done.state.r2", "done.state.p")
    assert logged(second) == ["r2 done", "p done"]
    assert second.transitions == ("w2:F2:0", "r2:on_done:0", "p:on_done:0")
    assert instance.configuration == {"finished"}


def test_top_level_final_ends_the_instance_and_runs_remaining_exit_actions() -> None:
    instance = start("""
    states:
      a:
        exit: {log: "'exit a'"}
        on: {END: {target: end, actions: {log: "'t END'"}}}
      end:
        type: final
        entry: {log: "'entry end'"}
        exit: {log: "'exit end'"}
    """)
    result = instance.send("END")
    assert result.done is True
    assert instance.done is True
    assert logged(result) == ["exit a", "t END", "entry end", "exit end"]
    assert instance.configuration == {"end"}
    with pytest.raises(InstanceDoneError, match=r"cannot process 'END': the instance has finished in \{end\}"):
        instance.send("END")
    assert instance.configuration == {"end"}


def test_top_level_final_reached_inside_a_macrostep_runs_exit_actions_of_all_active_states() -> None:
    instance = start("""
    states:
      p:
        exit: {log: "'exit p'"}
        states:
          c:
            exit: {log: "'exit c'"}
            on: {GO: {actions: {raise: FINISH}}}
        on: {FINISH: end}
      end:
        type: final
        exit: {log: "'exit end'"}
    """)
    result = instance.send("GO")
    assert result.macrosteps[0].events == ("GO", "FINISH")
    assert logged(result) == ["exit c", "exit p", "exit end"]
    assert result.done is True


# -- 10. error.execution -------------------------------------------------------------------------

def test_failing_action_skips_the_rest_of_its_block_and_raises_error_execution() -> None:
    instance = start("""
    data: {x: 0}
    states:
      a:
        exit: {log: "'exit a'"}
        on:
          GO:
            target: b
            actions: [{log: "'t1'"}, {assign: {x: "1/0"}}, {log: "'t2'"}]
      b:
        entry: [{log: "'entry b'"}]
        on: {"error.*": {target: c, actions: {log: "event.name"}}}
      c: {}
    """)
    result = instance.send("GO")
    assert logged(result) == ["exit a", "t1", "entry b", "error.execution"]
    assert result.macrosteps[0].events == ("GO", "error.execution")
    assert result.transitions == ("a:GO:0", "b:error.*:0")
    assert len(result.errors) == 1
    assert "ZeroDivisionError: division by zero" in result.errors[0]
    assert instance.data["x"] == 0
    assert instance.configuration == {"c"}


def test_failing_python_action_aborts_its_block_but_later_blocks_still_run() -> None:
    calls = []

    def boom(ctx: statechart.ActionContext) -> None:
        calls.append("boom")
        raise ValueError("bad input")

    def note(ctx: statechart.ActionContext) -> None:
        calls.append("note")

    instance = start("""
    states:
      a:
        exit: [boom, note]
        on: {GO: {target: b, actions: [note, boom, note]}}
      b:
        entry: [note]
    """, actions={"boom": boom, "note": note})
    result = instance.send("GO")
    assert calls == ["boom", "note", "boom", "note"]
    line = boom.__code__.co_firstlineno  # the action is named, with where it is and the line that raised
    assert len(result.errors) == 2 and result.errors[0] == result.errors[1]
    assert result.errors[0].startswith("boom: action 'boom' (")
    assert result.errors[0].endswith(f"test_interpreter.py:{line}) raised ValueError at line {line + 2}: bad input")
    assert result.macrosteps[0].events == ("GO", "error.execution", "error.execution")
    assert instance.configuration == {"b"}


def test_failing_cond_counts_as_false_and_raises_error_execution() -> None:
    instance = start("""
    states:
      a:
        on:
          GO: [{target: b, cond: "1/0 > 0"}, {target: c}]
      b: {}
      c:
        on: {error.execution: {target: d, actions: {log: "event.data['message']"}}}
      d: {}
    """)
    result = instance.send("GO")
    assert result.transitions == ("a:GO:1", "c:error.execution:0")
    assert result.errors == ("cond of a:GO:0: ZeroDivisionError: division by zero",)
    assert logged(result) == ["cond of a:GO:0: ZeroDivisionError: division by zero"]
    assert instance.configuration == {"d"}


def test_assigning_an_undeclared_data_key_is_an_error() -> None:
    instance = start("""
    data: {x: 0}
    states:
      a:
        on:
          GO: {actions: [{assign: {nope: "1"}}, {assign: {x: "1"}}]}
    """)
    result = instance.send("GO")
    assert len(result.errors) == 1
    assert "cannot assign to 'nope': it is not a declared data key" in result.errors[0]
    assert result.macrosteps[0].events == ("GO", "error.execution")
    assert instance.data == {"x": 0}


# -- 11. In() -------------------------------------------------------------------------------------

def test_in_predicate_sees_the_current_configuration() -> None:
    instance = start("""
    states:
      p:
        type: parallel
        states:
          r1:
            states:
              a1: {on: {GO: b1}}
              b1: {}
          r2:
            states:
              a2:
                on:
                  CHECK: [{target: seen, cond: "In('b1')"}, {target: unseen}]
                always: {target: seen, cond: "In('b1') and In('p')"}
              seen: {}
              unseen: {on: {BACK: a2}}
    """)
    instance.send("CHECK")
    assert instance.configuration == {"p", "r1", "a1", "r2", "unseen"}
    instance.send("BACK")
    result = instance.send("GO")
    # the eventless transition sees b1 in the same macrostep
    assert result.transitions == ("a1:GO:0", "a2:always:0")
    assert instance.configuration == {"p", "r1", "b1", "r2", "seen"}


def test_in_during_actions_sees_the_configuration_at_that_point() -> None:
    instance = start("""
    states:
      a:
        exit: {log: "In('a')"}
        on: {GO: {target: b, actions: {log: "In('a') or In('b')"}}}
      b:
        entry: {log: "In('b')"}
    """)
    result = instance.send("GO")
    assert logged(result) == [True, False, True]


# -- 12. eventless loops -----------------------------------------------------------------------

def test_eventless_loop_raises_and_leaves_the_instance_unchanged() -> None:
    instance = start("""
    data: {n: 0}
    states:
      idle:
        entry: {send: {event: TICK, delay: 5s, id: tick}}
        on: {GO: {target: a, actions: {cancel: tick}}}
      a: {always: {target: b, actions: {assign: {n: "n + 1"}}}}
      b: {always: a}
    """)
    before_pending = instance.pending_sends
    with pytest.raises(EventlessLoopError) as caught:
        instance.send("GO")
    error = caught.value
    assert set(error.states) == {"a", "b"}
    assert set(error.transitions) == {"a:always:0", "b:always:0"}
    assert error.event == "GO"
    assert error.limit == 1000
    assert str(error).startswith("processing GO did not settle after 1000 microsteps; the loop goes through states ")
    assert "a:always:0" in str(error) and "b:always:0" in str(error)
    assert str(error).endswith("The instance was left as it was before the event.")
    assert instance.configuration == {"idle"}
    assert instance.data == {"n": 0}
    assert instance.pending_sends == before_pending
    assert [p.id for p in before_pending] == ["tick"]


def test_eventless_cond_that_keeps_raising_stops_with_eventless_loop_error() -> None:
    # Each evaluation of the failing cond queues error.execution, which nothing handles, after
    # which the eventless transitions are evaluated again: the macrostep never settles.
    instance = start("""
    data: {x: 0}
    states:
      idle: {on: {GO: a}}
      a: {always: {target: b, cond: "1 / x > 0"}}
      b: {}
    """)
    with pytest.raises(EventlessLoopError) as caught:
        instance.send("GO")
    assert caught.value.event == "GO"
    assert caught.value.transitions == ("a:always:0",)
    assert caught.value.states == ("a",)
    assert instance.configuration == {"idle"}


def test_zero_delay_sends_that_never_stop_raise_and_leave_the_instance_unchanged() -> None:
    instance = start("""
    data: {n: 0}
    states:
      a:
        on:
          GO: {target: b, actions: {send: {event: PING}}}
      b:
        on:
          PING: {actions: [{assign: {n: "n + 1"}}, {send: {event: PING}}]}
    """)
    with pytest.raises(EventlessLoopError) as caught:
        instance.send("GO")
    assert caught.value.event == "GO"
    assert caught.value.transitions == ("b:PING:0",)
    assert caught.value.states == ("b",)
    assert instance.configuration == {"a"}
    assert instance.data == {"n": 0}
    assert instance.pending_sends == ()


# -- 13. unhandled events and strict mode -------------------------------------------------------

STRICT = """
data: {n: 0}
states:
  a:
    on: {CHECKOUT: {target: b, actions: {assign: {n: "n + 1"}}}}
  b:
    on: {BACK: a}
"""


def test_unhandled_event_changes_nothing() -> None:
    instance = start(STRICT)
    instance.send("CHECKOUT")
    result = instance.send("CHECKOUT")
    assert result.handled is False
    assert result.transitions == ()
    assert result.trace == ()
    assert result.configuration_before == result.configuration_after == {"b"}
    assert instance.data == {"n": 1}


def test_strict_mode_rejects_an_unknown_event_with_a_suggestion() -> None:
    instance = start(STRICT, strict=True)
    with pytest.raises(UnknownEventError) as caught:
        instance.send("CHEKOUT")
    assert str(caught.value) == "machine 'x' has no transition for event 'CHEKOUT'; did you mean 'CHECKOUT'?"
    assert instance.configuration == {"a"}
    assert instance.data == {"n": 0}


def test_strict_mode_rejects_a_known_event_that_is_not_enabled() -> None:
    instance = start(STRICT, strict=True)
    with pytest.raises(UnhandledEventError) as caught:
        instance.send("BACK")
    assert str(caught.value) == "event 'BACK' is not handled in configuration {a}; nothing was changed"
    assert instance.configuration == {"a"}
    assert instance.send("CHECKOUT").handled is True
    assert instance.data == {"n": 1}


# -- 14. delayed sends and after ---------------------------------------------------------------

def test_delayed_send_is_scheduled_at_now_plus_delay() -> None:
    instance = start("""
    states:
      a:
        on:
          ARM: {actions: {send: {event: PING, delay: 5s, id: t1, data: {k: "1 + 1"}}}}
          PING: {target: b, actions: {log: "event.data['k']"}}
      b: {}
    """, now=100.0)
    result = instance.send("ARM")
    assert result.scheduled == (PendingSend("t1", "PING", {"k": 2}, 105.0, 1, False),)
    assert instance.next_due == 105.0
    assert instance.advance(4.5) == []
    assert instance.configuration == {"a"}
    fired = instance.advance(0.5)
    assert [r.event for r in fired] == ["PING"]
    assert logged_all(fired) == [2]
    assert fired[0].cancelled == (PendingSend("t1", "PING", {"k": 2}, 105.0, 1, False),)
    assert instance.configuration == {"b"}
    assert instance.pending_sends == ()


def test_advance_fires_delayed_sends_in_due_order() -> None:
    instance = start("""
    states:
      a:
        entry:
          - {send: {event: T10, delay: 10s}}
          - {send: {event: T3, delay: 3s}}
          - {send: {event: T7, delay: 7s}}
        on:
          "*": {actions: {log: "event.name"}}
    """)
    assert [p.event for p in instance.pending_sends] == ["T3", "T7", "T10"]
    fired = instance.advance(20)
    assert [r.event for r in fired] == ["T3", "T7", "T10"]
    assert logged_all(fired) == ["T3", "T7", "T10"]
    assert instance.clock.now() == 20


def test_after_fires_once_its_delay_has_passed() -> None:
    instance = start("""
    states:
      a: {after: {5s: b}}
      b: {}
    """)
    assert [(p.id, p.due) for p in instance.pending_sends] == [("after.0.a", 5.0)]
    assert instance.advance(4.999) == []
    fired = instance.advance(0.001)
    assert [r.transitions for r in fired] == [("a:after 5s:0",)]
    assert instance.configuration == {"b"}


def test_leaving_a_state_cancels_its_after_timer() -> None:
    instance = start("""
    states:
      a:
        after: {5s: b}
        on: {LEAVE: c}
      b: {}
      c: {}
    """)
    result = instance.send("LEAVE")
    assert [p.id for p in result.cancelled] == ["after.0.a"]
    assert instance.pending_sends == ()
    assert instance.advance(10) == []
    assert instance.configuration == {"c"}


def test_reentering_a_state_restarts_its_after_timer() -> None:
    instance = start("""
    states:
      a:
        after: {5s: b}
        on: {AGAIN: a}
      b: {}
    """)
    instance.advance(3)
    instance.send("AGAIN")
    assert [(p.id, p.due) for p in instance.pending_sends] == [("after.0.a", 8.0)]
    assert instance.advance(4) == []
    assert [r.event for r in instance.advance(1)] == ["after.0.a"]
    assert instance.configuration == {"b"}


def test_cancel_by_id_withdraws_a_pending_send() -> None:
    instance = start("""
    states:
      a:
        entry: [{send: {event: PING, delay: 5s, id: ping}}, {send: {event: PONG, delay: 6s}}]
        on:
          STOP: {actions: {cancel: ping}}
          PING: hit
          PONG: pong
      hit: {}
      pong: {}
    """)
    result = instance.send("STOP")
    assert [p.id for p in result.cancelled] == ["ping"]
    fired = instance.advance(10)
    assert [r.event for r in fired] == ["PONG"]
    assert instance.configuration == {"pong"}


def test_zero_delay_send_is_its_own_macrostep_before_send_returns() -> None:
    instance = start("""
    states:
      a:
        on:
          GO: {target: b, actions: [{send: {event: NEXT, data: {k: 1}}}, {log: "'after send'"}]}
      b:
        entry: {log: "'entry b'"}
        on: {NEXT: {target: c, actions: {log: "event.data['k']"}}}
      c: {}
    """)
    result = instance.send("GO")
    assert len(result.macrosteps) == 2
    assert [step.events for step in result.macrosteps] == [("GO",), ("NEXT",)]
    assert logged(result) == ["after send", "entry b", 1]
    assert result.transitions == ("a:GO:0", "b:NEXT:0")
    assert instance.configuration == {"c"}
    assert instance.pending_sends == ()


def test_after_with_two_durations_fires_the_shorter_first() -> None:
    instance = start("""
    states:
      a:
        after:
          10s: {actions: {log: "'ten'"}}
          2s: {actions: {log: "'two'"}}
    """)
    fired = instance.advance(20)
    assert [r.transitions for r in fired] == [("a:after 2s:0",), ("a:after 10s:0",)]
    assert logged_all(fired) == ["two", "ten"]


def test_after_with_two_durations_the_shorter_one_leaving_cancels_the_longer() -> None:
    instance = start("""
    states:
      a:
        after:
          10s: late
          2s: early
      early: {}
      late: {}
    """)
    fired = instance.advance(20)
    assert [r.transitions for r in fired] == [("a:after 2s:0",)]
    assert instance.configuration == {"early"}
    assert {p.id for p in fired[0].cancelled} == {"after.0.a", "after.1.a"}


# -- 15. effects, Python actions and data ---------------------------------------------------------

def test_emitted_effects_are_returned_in_order_and_never_delivered() -> None:
    instance = start("""
    data: {total: 3}
    states:
      a:
        exit: {emit: a.left}
        on:
          GO: {target: b, actions: {emit: {event: GO, data: {total: "total", fixed: true}}}}
      b:
        entry: {emit: {event: b.entered, data: "total * 2"}}
        on: {GO: wrong}
      wrong: {}
    """)
    result = instance.send("GO")
    assert result.effects == (
        Effect("a.left", None), Effect("GO", {"total": 3, "fixed": True}), Effect("b.entered", 6))
    assert len(result.macrosteps) == 1
    assert instance.configuration == {"b"}


def test_python_actions_change_data_raise_events_and_emit_through_the_context() -> None:
    def work(ctx: statechart.ActionContext) -> None:
        ctx.data["items"].append(ctx.event.data["item"])
        ctx.data["count"] += 1
        ctx.raise_event("ADDED", {"count": ctx.data["count"]})
        ctx.emit("item.added", {"item": ctx.event.data["item"]})
        ctx.send("LATER", {"n": 1}, delay=30, id="later")

    instance = start("""
    data: {items: [], count: 0, last: null}
    states:
      a:
        on:
          ADD: {actions: work}
          ADDED: {actions: {assign: {last: "event.data['count']"}}}
    """, actions={"work": work})
    before = instance.snapshot()
    result = instance.send("ADD", {"item": "pen"})
    assert instance.data == {"items": ["pen"], "count": 1, "last": 1}
    assert before.data == {"items": [], "count": 0, "last": None}
    assert result.macrosteps[0].events == ("ADD", "ADDED")
    assert result.effects == (Effect("item.added", {"item": "pen"}),)
    assert result.scheduled == (PendingSend("later", "LATER", {"n": 1}, 30.0, 1, False),)


def test_foreach_and_if_elif_else() -> None:
    instance = start("""
    data: {lines: [5, 50, 500], line: null, i: null, total: 0}
    states:
      a:
        on:
          SUM:
            actions:
              - foreach:
                  array: "lines"
                  item: line
                  index: i
                  do:
                    - assign: {total: "total + line"}
                    - if: "line > 100"
                      then: [{log: "'big ' + str(i)"}]
                      elif:
                        - {cond: "line > 10", then: [{log: "'medium ' + str(i)"}]}
                      else: [{log: "'small ' + str(i)"}]
    """)
    result = instance.send("SUM")
    assert logged(result) == ["small 0", "medium 1", "big 2"]
    assert instance.data["total"] == 555
    assert instance.data["line"] == 500 and instance.data["i"] == 2


def test_assign_to_a_dotted_path_does_not_mutate_the_previous_snapshot() -> None:
    instance = start("""
    data: {address: {city: null, geo: {lat: 0}}}
    states:
      a:
        on:
          MOVE: {actions: {assign: {address.city: "event.data", address.geo.lat: "1"}}}
    """)
    data_before = instance.data
    snapshot = instance.snapshot()
    instance.send("MOVE", "Paris")
    assert instance.data == {"address": {"city": "Paris", "geo": {"lat": 1}}}
    assert data_before == {"address": {"city": None, "geo": {"lat": 0}}}
    assert snapshot.data == {"address": {"city": None, "geo": {"lat": 0}}}


def test_assign_to_a_path_through_a_non_mapping_is_an_error() -> None:
    instance = start("""
    data: {address: 3}
    states:
      a:
        on:
          MOVE: {actions: {assign: {address.city: "'Paris'"}}}
    """)
    result = instance.send("MOVE")
    assert len(result.errors) == 1
    assert "cannot assign to 'address.city': 'address' is not a mapping" in result.errors[0]
    assert instance.data == {"address": 3}


# -- 16. snapshots ---------------------------------------------------------------------------------

SNAPSHOT_MACHINE = """
data: {n: 0}
states:
  idle:
    entry: [{log: "'entry idle'"}, count]
    on: {GO: work}
  work:
    entry: [{log: "'entry work'"}, count, {send: {event: NUDGE, delay: 10s, id: nudge}}]
    after:
      30s: idle
      5s: {actions: [{assign: {n: "n + 1"}}, {emit: {event: tick, data: "n"}}]}
    exit: {log: "'exit work'"}
    on:
      NUDGE: {actions: {log: "'nudged'"}}
      LEAVE: idle
      DONE: end
  end: {type: final}
"""


def _counting() -> tuple[dict[str, Any], list[str]]:
    calls: list[str] = []

    def count(ctx: statechart.ActionContext) -> None:
        calls.append("count")

    return {"count": count}, calls


def _summary(results: list[statechart.SendResult]) -> list[tuple]:
    return [(r.event, r.handled, r.transitions, r.trace, r.logs, r.effects, r.errors, r.done,
             r.configuration_after, r.scheduled, r.cancelled) for r in results]


def test_restoring_a_snapshot_runs_no_action() -> None:
    actions, calls = _counting()
    machine = load(SNAPSHOT_MACHINE, actions=actions)
    instance = machine.start(clock=VirtualClock())
    instance.send("GO")
    assert calls == ["count", "count"]
    restored = machine.restore(instance.snapshot(), clock=VirtualClock())
    assert calls == ["count", "count"]
    assert restored.configuration == instance.configuration == {"work"}
    assert restored.data == instance.data
    assert restored.pending_sends == instance.pending_sends
    assert restored.session_id == instance.session_id


def test_continuing_a_restored_snapshot_equals_continuing_the_original() -> None:
    actions, _ = _counting()
    machine = load(SNAPSHOT_MACHINE, actions=actions)
    original = machine.start(clock=VirtualClock(), session_id="s1")
    original.send("GO")
    original.advance(2)
    snapshot = original.snapshot()
    assert [p.id for p in snapshot.pending_sends] == ["after.1.work", "nudge", "after.0.work"]
    restored = machine.restore(Snapshot.from_json(snapshot.to_json()), clock=VirtualClock(2))

    def scenario(instance: statechart.Instance) -> list[tuple]:
        results = [instance.send("NUDGE")]
        results.append(instance.send("LEAVE"))  # cancels both `after` timers, not the nudge
        results += instance.advance(10)  # the nudge fires at t=10 in idle: unhandled
        results.append(instance.send("GO"))  # t=12
        results += instance.advance(6)  # the 5s tick at t=17
        results += instance.advance(30)  # the nudge at t=22, back to idle at t=42
        results.append(instance.send("GO"))
        results.append(instance.send("DONE"))
        return _summary(results) + [(instance.configuration, instance.data, instance.history,
                                     instance.pending_sends, instance.done)]

    assert scenario(restored) == scenario(original)
    assert original.done is True


def test_restoring_into_a_changed_definition_is_refused() -> None:
    actions, _ = _counting()
    instance = load(SNAPSHOT_MACHINE, actions=actions).start(clock=VirtualClock())
    changed = load(SNAPSHOT_MACHINE.replace("DONE: end", "FINISH: end"), actions=actions)
    with pytest.raises(DefinitionMismatchError, match="migration"):
        changed.restore(instance.snapshot(), clock=VirtualClock())


def test_snapshot_json_round_trip() -> None:
    machine = load(HISTORY)
    instance = machine.start(clock=VirtualClock())
    instance.send("NEXT")
    instance.send("OUT")
    snapshot = instance.snapshot()
    again = Snapshot.from_json(snapshot.to_json())
    assert again == snapshot
    assert again.history == {"shallow_h": frozenset({"c2"}), "deep_h": frozenset({"c2a"})}
    restored = machine.restore(snapshot.to_json(), clock=VirtualClock())
    assert restored.configuration == {"outside"}
    assert logged(restored.send("BACK_DEEP")) == ["entry p", "entry c2", "entry c2a"]
