"""Checked mode: invariants of the machine and of active states hold after every macrostep."""

from __future__ import annotations

import pytest

import statechart

ACCOUNT = """
machine: account
version: 1
invariant: "balance >= 0"
data: {balance: 0}
states:
  open:
    invariant: "balance < 100"
    after: {1h: frozen}
    on:
      DEPOSIT: {actions: [{assign: {balance: "balance + event.data['amount']"}}]}
      WITHDRAW: {actions: [{assign: {balance: "balance - event.data['amount']"}}]}
      CLOSE: closed
  frozen:
    entry: [{assign: {balance: "balance - 1000"}}]
  closed:
    invariant: "balance == 0"
"""


@pytest.fixture
def account() -> statechart.Machine:
    return statechart.loads(ACCOUNT, "machines/account/v1.yaml")


def test_a_violated_machine_invariant_rejects_the_step_and_names_the_events(account: statechart.Machine) -> None:
    instance = account.start(checked=True)
    instance.send("DEPOSIT", {"amount": 50})
    with pytest.raises(statechart.InvariantViolationError) as raised:
        instance.send("WITHDRAW", {"amount": 80})
    assert raised.value.state == "$root"
    assert raised.value.expression == "balance >= 0"
    assert raised.value.events == ("(start)", "DEPOSIT", "WITHDRAW")
    assert instance.data == {"balance": 50} and instance.configuration == {"open"}


def test_a_state_invariant_applies_only_while_the_state_is_active(account: statechart.Machine) -> None:
    instance = account.start(checked=True)
    instance.send("DEPOSIT", {"amount": 60})
    with pytest.raises(statechart.InvariantViolationError, match="the invariant of 'open' `balance < 100`"):
        instance.send("DEPOSIT", {"amount": 60})
    with pytest.raises(statechart.InvariantViolationError, match="'closed' `balance == 0` is false"):
        instance.send("CLOSE")
    instance.send("WITHDRAW", {"amount": 60})
    instance.send("CLOSE")
    assert instance.configuration == {"closed"}
    assert instance.events_sent == ["(start)", "DEPOSIT", "WITHDRAW", "CLOSE"]


def test_timers_fired_in_checked_mode_are_checked_too(account: statechart.Machine) -> None:
    instance = account.start(checked=True, clock=statechart.VirtualClock())
    with pytest.raises(statechart.InvariantViolationError) as raised:
        instance.advance(3600)
    assert raised.value.events == ("(start)", "after.0.open")
    assert instance.configuration == {"open"}


def test_without_checked_mode_invariants_are_not_evaluated(account: statechart.Machine) -> None:
    instance = account.start()
    instance.send("WITHDRAW", {"amount": 5})
    assert instance.data == {"balance": -5}


def test_an_invariant_that_cannot_be_evaluated_is_a_violation() -> None:
    machine = statechart.loads("machine: m\nversion: 1\ndata: {missing: null}\ninvariant: \"missing > 0\"\n"
                               "states:\n  a: {}\n",
                               "machines/m/v1.yaml")
    with pytest.raises(statechart.InvariantViolationError, match="could not be evaluated"):
        machine.start(checked=True)
