"""Property testing: event strategies, invariants, checked sends and the shrinking runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import statechart
from statechart.cli import main
from statechart.testing import (
    Advance,
    InvariantViolation,
    Send,
    check_invariants,
    checked_send,
    event_names,
    events,
    replay,
    run_property,
)

ROOT = Path(__file__).resolve().parent.parent
ORDER = str(ROOT / "machines/order/v2.yaml")

COUNTER = """machine: counter
version: 1
invariant: "n < 3"
data: {n: 0}
states:
  idle:
    on:
      INC: {actions: [{assign: {n: "n + 1"}}]}
      RESET: {actions: [{assign: {n: 0}}]}
      OPEN: busy
  busy:
    invariant: "n == 0"
    on: {CLOSE: idle}
"""

#: the counter with only its machine invariant (the busy invariant would fail first)
COUNTER_ONLY = COUNTER.replace('    invariant: "n == 0"\n', "")


def counter() -> statechart.Machine:
    return statechart.loads(COUNTER, "machines/counter/v1.yaml")


def test_event_names_leave_out_done_timer_error_and_wildcard_descriptors() -> None:
    assert event_names(statechart.load(ORDER)) == ["ADD", "AUTHORIZED", "CHECKOUT", "DECLINED", "DELIVERED",
                                                   "HOLD", "PACKED", "PAY"]


# Loaded once: compiling the machine inside the test made examples miss hypothesis's deadline on a busy machine.
_ORDER_EVENTS = event_names(statechart.load(ORDER))


@settings(max_examples=50, database=None)
@given(events(statechart.load(ORDER), {"ADD": st.fixed_dictionaries({"price": st.integers(1, 9)})}))
def test_generated_steps_use_the_machine_events_data_schema_and_its_delays(steps: list) -> None:
    for step in steps:
        if isinstance(step, Send):
            assert step.event in _ORDER_EVENTS
            if step.event == "ADD":
                assert set(step.data) == {"price"} and 1 <= step.data["price"] <= 9
            else:
                assert step.data is None
        else:
            assert isinstance(step, Advance)
            assert step.seconds in {1.0, 900.0, 1800.0, 86400.0, 172800.0}


@settings(max_examples=20, database=None)
@given(events(statechart.load(ORDER), st.just({"k": 1}), advance=False))
def test_one_strategy_gives_every_event_its_data(steps: list) -> None:
    assert all(isinstance(s, Send) and s.data == {"k": 1} for s in steps)


def test_machine_invariant_is_checked_in_every_state() -> None:
    machine = counter()
    assert check_invariants(machine, frozenset({"idle"}), {"n": 2}) is None
    assert check_invariants(machine, frozenset({"idle"}), {"n": 3}) == ("$root", "n < 3", "is false")


def test_state_invariant_applies_only_while_the_state_is_active() -> None:
    machine = counter()
    assert check_invariants(machine, frozenset({"idle"}), {"n": 1}) is None
    assert check_invariants(machine, frozenset({"busy"}), {"n": 1}) == ("busy", "n == 0", "is false")


def test_invariant_that_cannot_be_evaluated_is_a_violation() -> None:
    assert check_invariants(counter(), frozenset({"idle"}), {}) == (
        "$root", "n < 3", "could not be evaluated (NameError: name 'n' is not defined)")


def test_invariant_can_ask_which_states_are_active() -> None:
    machine = statechart.loads("""machine: m
version: 1
invariant: "In('a') or done"
data: {done: false}
states:
  a: {on: {GO: b}}
  b: {}
""", "machines/m/v1.yaml")
    assert check_invariants(machine, frozenset({"a"}), {"done": False}) is None
    assert check_invariants(machine, frozenset({"b"}), {"done": False}) == ("$root", "In('a') or done", "is false")


def test_checked_send_raises_with_state_expression_and_the_events_sent() -> None:
    instance = counter().start(clock=statechart.VirtualClock())
    checked_send(instance, "INC")
    with pytest.raises(InvariantViolation) as caught:
        checked_send(instance, "OPEN")
    assert (caught.value.state, caught.value.expression) == ("busy", "n == 0")
    assert caught.value.events == [Send("INC"), Send("OPEN")]
    assert str(caught.value) == "invariant of 'busy' 'n == 0' is false after: send('INC'), send('OPEN')"


def test_checked_send_returns_the_send_result_when_invariants_hold() -> None:
    instance = counter().start(clock=statechart.VirtualClock())
    result = checked_send(instance, "OPEN")
    assert result.transitions == ("idle:OPEN:0",)
    assert instance.configuration == frozenset({"busy"})


def test_replay_applies_sends_and_clock_advances() -> None:
    instance = replay(statechart.load(ORDER), [Send("ADD", {"price": 3}), Send("CHECKOUT"), Advance(1800.0)])
    assert instance.data["total"] == 3
    assert instance.configuration == frozenset({"payment", "authorizing"})


def test_property_runner_shrinks_a_machine_invariant_violation_to_the_minimal_sequence() -> None:
    with pytest.raises(AssertionError) as caught:
        run_property(statechart.loads(COUNTER_ONLY, "machines/counter/v1.yaml"), max_examples=300, seed=1)
    assert str(caught.value) == ("counter v1: the machine's invariant 'n < 3' is false\n"
                                 "minimal failing sequence: send('INC'), send('INC'), send('INC')")


def test_property_runner_shrinks_a_state_invariant_violation() -> None:
    machine = statechart.loads(COUNTER.replace('invariant: "n < 3"\n', ""), "machines/counter/v1.yaml")
    with pytest.raises(AssertionError) as caught:
        run_property(machine, max_examples=300, seed=2)
    assert str(caught.value) == ("counter v1: invariant of 'busy' 'n == 0' is false\n"
                                 "minimal failing sequence: send('INC'), send('OPEN')")


def test_property_runner_without_invariant_checks_passes_the_counter() -> None:
    assert run_property(counter(), max_examples=30, check_invariants=False, seed=0) == 30


def test_property_runner_reports_a_violation_reached_only_through_a_timer() -> None:
    machine = statechart.loads("""machine: timed
version: 1
data: {late: false}
invariant: "not late"
states:
  waiting:
    after: {5m: {target: expired, actions: [{assign: {late: true}}]}}
    on: {DONE: finished}
  expired: {}
  finished: {type: final}
""", "machines/timed/v1.yaml")
    with pytest.raises(AssertionError) as caught:
        run_property(machine, max_examples=300, seed=3)
    assert str(caught.value) == ("timed v1: the machine's invariant 'not late' is false\n"
                                 "minimal failing sequence: advance(300.0)")


def test_order_example_survives_the_property_run() -> None:
    data = {"ADD": st.fixed_dictionaries({"price": st.integers(1, 20)})}
    assert run_property(statechart.load(ORDER), max_examples=60, seed=0, data_strategies=data) == 60


def test_fuzz_command_prints_the_minimal_sequence_and_exits_1(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "counter" / "v1.yaml"
    file.parent.mkdir()
    file.write_text(COUNTER_ONLY)
    assert main(["fuzz", str(file), "--examples", "300", "--seed", "1"]) == 1
    assert capsys.readouterr().out == ("FAIL counter v1: the machine's invariant 'n < 3' is false\n"
                                       "minimal failing sequence: send('INC'), send('INC'), send('INC')\n")
    assert main(["fuzz", ORDER, "--examples", "20", "--seed", "0"]) == 0
    assert capsys.readouterr().out == f"ok   {ORDER}: 20 sequences, no illegal configuration or broken invariant\n"
