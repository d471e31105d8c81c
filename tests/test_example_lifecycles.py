"""The example machines a team can start from: registration (an activation saga with compensation),
subscription (trial, grace, pause and resume through history) and fulfillment (parallel regions)."""

from __future__ import annotations

from pathlib import Path

import pytest

import statechart
from statechart import VirtualClock
from statechart.analysis import check_machine

MACHINES = Path(__file__).resolve().parent.parent / "machines"
HOUR, DAY = 3600.0, 86400.0


def machine(name: str) -> statechart.Machine:
    return statechart.load(MACHINES / name / "v1.yaml")


def effects(results) -> list[tuple[str, dict]]:
    return [(e.event, e.data) for r in results for e in r.effects]


@pytest.mark.parametrize("name", ["registration", "subscription", "fulfillment"])
def test_example_machine_has_no_check_findings(name):
    assert check_machine(machine(name)) == []


# -- registration -------------------------------------------------------------------------------------------
@pytest.fixture
def registration():
    clock = VirtualClock()
    instance = machine("registration").start(data={"user_id": "u-1", "email": "a@example.com"}, clock=clock)
    return instance, clock


ACTIVATING = {"activating", "profile", "provisioning", "verification", "awaiting_verification"}


def test_registration_starts_by_requesting_the_account(registration):
    instance, _ = registration
    assert instance.configuration == {"creating_account"}
    assert effects([instance.initial_result]) == [
        ("account.create_requested", {"user": "u-1", "email": "a@example.com"})]


def test_registration_provisions_profile_and_sends_verification_in_parallel(registration):
    instance, _ = registration
    result = instance.send("ACCOUNT_CREATED")
    assert instance.configuration == ACTIVATING
    assert effects([result]) == [
        ("account.created", {"user": "u-1"}),
        ("profile.provision_requested", {"user": "u-1", "attempt": 1}),
        ("verification.email_sent", {"user": "u-1", "to": "a@example.com"}),
    ]


def test_registration_activates_when_both_regions_finish(registration):
    instance, _ = registration
    instance.send("ACCOUNT_CREATED")
    first = instance.send("EMAIL_VERIFIED")
    assert instance.configuration == {"activating", "profile", "provisioning", "verification", "verified"}
    last = instance.send("PROFILE_PROVISIONED")
    assert instance.done
    assert instance.configuration == {"active"}
    assert effects([first, last]) == [
        ("email.verified", {"user": "u-1"}),
        ("profile.provisioned", {"user": "u-1"}),
        ("user.activated", {"user": "u-1", "email": "a@example.com"}),
    ]
    assert instance.pending_sends == ()


def test_registration_retries_profile_provisioning_twice_then_compensates(registration):
    instance, _ = registration
    instance.send("ACCOUNT_CREATED")
    retries = [instance.send("PROFILE_FAILED"), instance.send("PROFILE_FAILED")]
    assert effects(retries) == [("profile.provision_requested", {"user": "u-1", "attempt": 2}),
                                ("profile.provision_requested", {"user": "u-1", "attempt": 3})]
    failed = instance.send("PROFILE_FAILED")
    assert instance.configuration == {"compensating"}
    assert instance.data["failure"] == "profile_failed"
    assert effects([failed]) == [("account.delete_requested", {"user": "u-1", "reason": "profile_failed"})]
    deleted = instance.send("ACCOUNT_DELETED")
    assert instance.done and instance.configuration == {"failed"}
    assert effects([deleted]) == [("account.deleted", {"user": "u-1", "reason": "profile_failed"}),
                                  ("registration.failed", {"user": "u-1", "reason": "profile_failed"})]


def test_registration_verification_expires_after_24_hours_and_deletes_profile_and_account(registration):
    instance, clock = registration
    instance.send("ACCOUNT_CREATED")
    instance.send("PROFILE_PROVISIONED")
    assert instance.advance(24 * HOUR - 1) == []
    [expired] = instance.advance(1)
    assert expired.transitions == ("awaiting_verification:after 24h:0",)
    assert instance.configuration == {"compensating"}
    assert effects([expired]) == [
        ("verification.expired", {"user": "u-1"}),
        ("profile.delete_requested", {"user": "u-1"}),
        ("account.delete_requested", {"user": "u-1", "reason": "verification_expired"}),
    ]
    assert [p.due for p in instance.pending_sends] == [clock.now() + HOUR]


def test_registration_compensation_repeats_the_delete_request_every_hour_until_confirmed(registration):
    instance, _ = registration
    instance.send("ACCOUNT_CREATED")
    instance.send("CANCELED_BY_USER")
    [again] = instance.advance(HOUR)
    assert instance.configuration == {"compensating"}
    assert effects([again]) == [("account.delete_requested", {"user": "u-1", "reason": "canceled_by_user"})]
    instance.send("ACCOUNT_DELETED")
    assert instance.configuration == {"failed"}
    assert instance.pending_sends == ()


def test_registration_rejected_account_fails_without_compensation(registration):
    instance, _ = registration
    result = instance.send("ACCOUNT_REJECTED", {"reason": "email_taken"})
    assert instance.done and instance.configuration == {"failed"}
    assert effects([result]) == [("registration.failed", {"user": "u-1", "reason": "email_taken"})]


def test_registration_account_service_timeout_fails_after_five_minutes(registration):
    instance, _ = registration
    [result] = instance.advance(300)
    assert result.transitions == ("creating_account:after 5m:0",)
    assert instance.configuration == {"failed"}
    assert instance.data["failure"] == "account_timeout"


# -- subscription -------------------------------------------------------------------------------------------
@pytest.fixture
def subscription():
    clock = VirtualClock()
    instance = machine("subscription").start(data={"customer": "c-1", "plan": "pro"}, clock=clock)
    return instance, clock


def test_subscription_trial_converts_after_14_days_with_a_payment_method(subscription):
    instance, _ = subscription
    instance.send("PAYMENT_METHOD_ADDED")
    assert instance.advance(14 * DAY - 1) == []
    [converted] = instance.advance(1)
    assert instance.configuration == {"subscribed", "active"}
    assert effects([converted]) == [("subscription.converted", {"customer": "c-1", "plan": "pro"}),
                                    ("subscription.active", {"customer": "c-1", "plan": "pro"})]


def test_subscription_trial_expires_after_14_days_without_a_payment_method(subscription):
    instance, _ = subscription
    [result] = instance.advance(14 * DAY)
    assert instance.done and instance.configuration == {"expired"}
    assert effects([result]) == [("subscription.expired", {"customer": "c-1"})]


@pytest.fixture
def active(subscription):
    instance, clock = subscription
    instance.send("PAYMENT_METHOD_ADDED")
    instance.advance(14 * DAY)
    return instance, clock


def test_subscription_failed_payment_enters_grace_and_cancels_after_7_days(active):
    instance, _ = active
    instance.send("PAYMENT_SUCCEEDED")
    failed = instance.send("PAYMENT_FAILED")
    assert instance.configuration == {"subscribed", "grace"}
    assert effects([failed]) == [("subscription.payment_failed", {"customer": "c-1"})]
    assert instance.advance(7 * DAY - 1) == []
    [canceled] = instance.advance(1)
    assert instance.done and instance.configuration == {"canceled"}
    assert effects([canceled]) == [("subscription.canceled", {"customer": "c-1", "paid_periods": 1})]


def test_subscription_payment_in_grace_returns_to_active_and_cancels_the_timer(active):
    instance, _ = active
    instance.send("PAYMENT_FAILED")
    instance.send("PAYMENT_SUCCEEDED")
    assert instance.configuration == {"subscribed", "active"}
    assert instance.data["paid_periods"] == 1
    assert instance.pending_sends == ()
    assert instance.advance(30 * DAY) == []


def test_subscription_resume_restores_grace_through_history(active):
    instance, _ = active
    instance.send("PAYMENT_FAILED")
    instance.send("PAUSE")
    assert instance.configuration == {"paused"}
    assert instance.pending_sends == ()
    resumed = instance.send("RESUME")
    assert instance.configuration == {"subscribed", "grace"}
    # the customer hears that the subscription resumed, not a second "payment failed"
    assert effects([resumed]) == [("subscription.resumed", {"customer": "c-1"})]


def test_subscription_resume_restores_active_through_history(active):
    instance, _ = active
    instance.send("PAUSE")
    instance.send("RESUME")
    assert instance.configuration == {"subscribed", "active"}


def test_subscription_allows_only_two_pauses(active):
    instance, _ = active
    for _ in range(2):
        instance.send("PAUSE")
        instance.send("RESUME")
    third = instance.send("PAUSE")
    assert not third.handled
    assert instance.configuration == {"subscribed", "active"}
    assert instance.data["pauses"] == 2


def test_subscription_plan_change_keeps_the_state(active):
    instance, _ = active
    result = instance.send("PLAN_CHANGED", {"plan": "team"})
    assert result.handled and result.configuration_after == result.configuration_before
    assert instance.data["plan"] == "team"


# -- fulfillment --------------------------------------------------------------------------------------------
@pytest.fixture
def fulfillment():
    clock = VirtualClock()
    instance = machine("fulfillment").start(data={"order_id": "F-1", "amount": 42}, clock=clock)
    return instance, clock


def test_fulfillment_starts_all_three_regions(fulfillment):
    instance, _ = fulfillment
    assert instance.configuration == {"processing", "payment", "authorizing", "inventory", "reserving",
                                      "shipping", "booking"}
    assert effects([instance.initial_result]) == [
        ("payment.authorize_requested", {"order": "F-1", "amount": 42}),
        ("inventory.reserve_requested", {"order": "F-1"}),
        ("shipping.booking_requested", {"order": "F-1"}),
    ]


def test_fulfillment_completes_when_every_region_is_final_in_any_order(fulfillment):
    instance, _ = fulfillment
    instance.send("SHIPMENT_BOOKED", {"tracking": "TRK1"})
    instance.send("STOCK_RESERVED")
    assert instance.configuration == {"processing", "payment", "authorizing", "inventory", "reserved",
                                      "shipping", "booked"}
    last = instance.send("PAYMENT_AUTHORIZED")
    assert last.transitions == ("authorizing:PAYMENT_AUTHORIZED:0", "processing:on_done:0")
    assert instance.done and instance.configuration == {"completed"}
    assert effects([last]) == [("order.fulfilled", {"order": "F-1", "tracking": "TRK1"})]
    assert instance.pending_sends == ()


def test_fulfillment_out_of_stock_refunds_the_payment_only(fulfillment):
    instance, _ = fulfillment
    instance.send("PAYMENT_AUTHORIZED")
    result = instance.send("OUT_OF_STOCK")
    assert result.transitions == ("reserving:OUT_OF_STOCK:0", "canceling:always:0")
    assert instance.done and instance.configuration == {"canceled"}
    assert effects([result]) == [("payment.refund_requested", {"order": "F-1", "amount": 42}),
                                 ("order.canceled", {"order": "F-1", "reason": "out_of_stock"})]


def test_fulfillment_no_carrier_compensates_payment_and_inventory(fulfillment):
    instance, _ = fulfillment
    instance.send("PAYMENT_AUTHORIZED")
    instance.send("STOCK_RESERVED")
    result = instance.send("NO_CARRIER")
    assert instance.configuration == {"canceled"}
    assert effects([result]) == [("payment.refund_requested", {"order": "F-1", "amount": 42}),
                                 ("inventory.release_requested", {"order": "F-1"}),
                                 ("order.canceled", {"order": "F-1", "reason": "no_carrier"})]


def test_fulfillment_customer_cancel_releases_stock_and_cancels_the_booking(fulfillment):
    instance, _ = fulfillment
    instance.send("STOCK_RESERVED")
    instance.send("SHIPMENT_BOOKED", {"tracking": "TRK9"})
    result = instance.send("CUSTOMER_CANCELED")
    assert effects([result]) == [("inventory.release_requested", {"order": "F-1"}),
                                 ("shipping.booking_cancel_requested", {"order": "F-1", "tracking": "TRK9"}),
                                 ("order.canceled", {"order": "F-1", "reason": "customer_canceled"})]


def test_fulfillment_payment_times_out_after_15_minutes(fulfillment):
    instance, _ = fulfillment
    instance.send("STOCK_RESERVED")
    assert instance.advance(899) == []
    [result] = instance.advance(1)
    assert result.transitions == ("authorizing:after 15m:0", "canceling:always:0")
    assert instance.configuration == {"canceled"}
    assert effects([result]) == [("inventory.release_requested", {"order": "F-1"}),
                                 ("order.canceled", {"order": "F-1", "reason": "payment_timeout"})]


def test_fulfillment_payment_authorized_cancels_the_payment_timeout(fulfillment):
    instance, _ = fulfillment
    instance.send("PAYMENT_AUTHORIZED")
    assert instance.pending_sends == ()
    assert instance.advance(3600) == []
