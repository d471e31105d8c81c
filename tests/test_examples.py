"""The example machines in machines/ load, and their lifecycles run as a team would use them."""

from __future__ import annotations

from pathlib import Path

import pytest

import statechart

ROOT = Path(__file__).resolve().parent.parent
MACHINE_FILES = sorted((ROOT / "machines").glob("*/v*.yaml"))


@pytest.mark.parametrize("path", MACHINE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_example_machine_loads_and_starts(path: Path) -> None:
    machine = statechart.load(path)
    assert machine.name == path.parent.name
    assert machine.version == int(path.stem[1:])
    instance = machine.start(clock=statechart.VirtualClock())
    assert machine.is_legal(instance.configuration) == []


@pytest.fixture
def order() -> statechart.Instance:
    return statechart.load(ROOT / "machines/order/v2.yaml").start(clock=statechart.VirtualClock())


def test_order_happy_path_reaches_done_through_parallel_fulfillment(order: statechart.Instance) -> None:
    order.send("ADD", {"price": 20})
    order.send("ADD", {"price": 5})
    assert order.data["total"] == 25
    checkout = order.send("CHECKOUT")
    assert checkout.effects == (statechart.Effect("payment.requested", {"amount": 25}),)
    assert [p.id for p in checkout.scheduled] == ["pay_timeout"]
    authorized = order.send("AUTHORIZED")
    assert [p.id for p in authorized.cancelled] == ["pay_timeout"]  # leaving payment cancels the timeout
    assert authorized.macrosteps[0].events == ("AUTHORIZED", "done.state.payment")
    assert order.configuration == {"fulfillment", "shipping", "packing", "invoicing", "open"}
    order.send("PACKED")
    order.send("PAY")
    assert not order.done
    result = order.send("DELIVERED")
    assert result.done and order.done
    assert order.configuration == {"done"}
    with pytest.raises(statechart.InstanceDoneError):
        order.send("PAY")


def test_order_checkout_of_an_empty_cart_is_refused_by_its_guard(order: statechart.Instance) -> None:
    result = order.send("CHECKOUT")
    assert not result.handled
    assert order.configuration == {"cart"}


def test_order_declined_payment_retries_then_fails(order: statechart.Instance) -> None:
    order.send("ADD", {"price": 10})
    for attempt in range(1, 3):
        order.send("CHECKOUT")
        assert order.data["retries"] == attempt
        order.send("DECLINED")
        assert order.configuration == {"cart"}
    order.send("CHECKOUT")
    assert order.data["retries"] == 3
    order.send("DECLINED")
    assert order.configuration == {"failed"}


def test_order_in_transit_turns_late_after_two_days(order: statechart.Instance) -> None:
    order.send("ADD", {"price": 10})
    order.send("CHECKOUT")
    order.send("AUTHORIZED")
    order.send("PACKED")
    assert order.advance(2 * 86400 - 1) == []
    assert "in_transit" in order.configuration
    fired = order.advance(1)
    assert [r.event for r in fired] == ["after.0.in_transit"]
    assert "late" in order.configuration
    order.send("DELIVERED")
    assert "shipped" in order.configuration


def test_order_hold_is_released_at_once_unless_on_hold(order: statechart.Instance) -> None:
    order.send("ADD", {"price": 10})
    order.send("CHECKOUT")
    order.send("AUTHORIZED")
    result = order.send("HOLD")
    assert result.trace == ("exit:open", "transition:open:HOLD:0", "enter:held",
                            "exit:held", "transition:held:always:0", "enter:open")
    on_hold = statechart.load(ROOT / "machines/order/v2.yaml").start(
        data={"on_hold": True}, clock=statechart.VirtualClock())
    on_hold.send("ADD", {"price": 10})
    on_hold.send("CHECKOUT")
    on_hold.send("AUTHORIZED")
    on_hold.send("HOLD")
    assert "held" in on_hold.configuration
