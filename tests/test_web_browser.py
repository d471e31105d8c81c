"""`statechart serve` in a real browser: headless Chromium clicks through the simulator, replays a
stored instance's audit trail, and checks that the store is read-only unless --allow-send.

The highlighted states are read from the SVG itself: the server tags each state's Graphviz group
with ``data-state`` and the class ``active``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

import pytest

if not os.environ.get("CI"):  # CI installs the test extra, which has Flask: there it must not skip
    pytest.importorskip("flask", reason="statechart serve needs Flask (pip install 'statechart[serve]')")

from browser import browser, live_server  # noqa: E402,F401 - browser is a fixture
from statechart import Store  # noqa: E402
from statechart.web.app import create_app  # noqa: E402
from statechart.web.catalog import load_catalog  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MACHINES = ROOT / "machines"
TIMEOUT = 20


def wait_for(driver: Any, condition: Any, message: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, TIMEOUT).until(lambda d: condition(d), message)


def active_states(driver: Any, container: str) -> set[str]:
    return set(driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0] + ' svg g.state.active'))"
        ".map(g => g.dataset.state)", f"#{container}"))


def taken(driver: Any, container: str) -> set[str]:
    return set(driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0] + ' svg g.edge.taken'))"
        ".map(g => g.dataset.transition)", f"#{container}"))


def wait_active(driver: Any, container: str, expected: set[str]) -> None:
    wait_for(driver, lambda d: active_states(d, container) == expected,
             f"expected the active states {sorted(expected)} in #{container}, "
             f"the SVG shows {sorted(active_states(driver, container))}")


def click(driver: Any, element_id: str) -> None:
    driver.find_element("id", element_id).click()


def click_event(driver: Any, name: str) -> None:
    wait_for(driver, lambda d: d.find_elements("css selector", f'#events button[data-event="{name}"]'),
             f"no enabled-event button {name}")
    driver.find_element("css selector", f'#events button[data-event="{name}"]').click()


def type_into(driver: Any, element_id: str, text: str) -> None:
    field = driver.find_element("id", element_id)
    field.clear()
    field.send_keys(text)


def open_page(driver: Any, url: str) -> None:
    driver.get(url)
    wait_for(driver, lambda d: d.find_elements("css selector", "#machine option"), "the machine list never loaded")


def choose_machine(driver: Any, name: str, version: int) -> None:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", "machine")).select_by_value(name)
    Select(driver.find_element("id", "version")).select_by_value(str(version))


def no_error(driver: Any) -> None:
    box = driver.find_element("id", "error")
    assert not box.is_displayed(), box.text


@pytest.fixture
def simulator_url() -> Iterator[str]:
    with live_server(create_app(load_catalog(MACHINES))) as url:
        yield url


@pytest.fixture
def order_store(tmp_path: Path) -> str:
    """A SQLite store with order-1: started, ADD {price: 5}, CHECKOUT, AUTHORIZED, PACKED."""
    url = f"sqlite:///{tmp_path / 'app.db'}"
    with Store.open(url) as store:
        store.register(MACHINES / "order" / "v2.yaml")
        store.create("order", id="order-1")
        store.send("order-1", "ADD", {"price": 5})
        store.send("order-1", "CHECKOUT")
        store.send("order-1", "AUTHORIZED")
        store.send("order-1", "PACKED")
    return url


FULFILLMENT = {"fulfillment", "shipping", "invoicing", "open"}


def test_clicking_through_the_order_machine_highlights_the_active_states(browser: Any, simulator_url: str) -> None:
    driver = browser
    open_page(driver, simulator_url)
    choose_machine(driver, "order", 2)
    wait_for(driver, lambda d: "order v2 \u00b7 not started" in d.find_element("id", "status-line").text,
             "the chosen machine was not drawn before starting")
    assert driver.find_elements("css selector", '#diagram svg g.state[data-state="cart"]')
    assert active_states(driver, "diagram") == set()
    click(driver, "start")
    wait_active(driver, "diagram", {"cart"})

    type_into(driver, "payload", '{"price": 5}')
    click_event(driver, "ADD")
    wait_for(driver, lambda d: '"total": 5' in d.find_element("id", "data").text, "ADD did not change total")
    type_into(driver, "payload", "")
    click_event(driver, "CHECKOUT")
    wait_active(driver, "diagram", {"payment", "authorizing"})
    assert taken(driver, "diagram") == {"cart:CHECKOUT:0"}
    timers = driver.find_element("id", "timers").text
    assert timers.splitlines()[1:] == ["TIMEOUT +30m +30m"]
    row = driver.find_element("css selector", "#timers tbody tr")
    assert row.get_attribute("title") == "send id pay_timeout"
    assert "payment.requested" in driver.find_element("id", "effects").text

    click_event(driver, "AUTHORIZED")
    wait_active(driver, "diagram", FULFILLMENT | {"packing"})
    assert taken(driver, "diagram") == {"authorizing:AUTHORIZED:0", "payment:on_done:0"}
    click_event(driver, "PACKED")
    wait_active(driver, "diagram", FULFILLMENT | {"in_transit"})

    type_into(driver, "advance-by", "1d")  # the `after: 2d` timer is not due yet
    click(driver, "advance")
    wait_for(driver, lambda d: d.find_element("id", "clock").text == "+1d", "the clock did not move by 1d")
    assert active_states(driver, "diagram") == FULFILLMENT | {"in_transit"}
    click(driver, "advance-next")  # to the timer, 1d later: in_transit -> late
    wait_active(driver, "diagram", FULFILLMENT | {"late"})
    assert driver.find_element("id", "clock").text == "+2d"

    click(driver, "back")
    wait_active(driver, "diagram", FULFILLMENT | {"in_transit"})
    assert driver.find_element("id", "clock").text == "+1d"
    click(driver, "back")
    click(driver, "back")
    wait_active(driver, "diagram", FULFILLMENT | {"packing"})
    snapshot = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(document.getElementById('snapshot-link').href).then(r => r.json()).then(done);")
    assert set(snapshot["configuration"]) == FULFILLMENT | {"packing"} and snapshot["data"]["total"] == 5
    no_error(driver)


def test_an_invalid_payload_is_reported_on_the_page_and_changes_nothing(browser: Any, simulator_url: str) -> None:
    driver = browser
    open_page(driver, simulator_url)
    choose_machine(driver, "order", 2)
    click(driver, "start")
    wait_active(driver, "diagram", {"cart"})
    type_into(driver, "payload", "{price: 5")
    click_event(driver, "ADD")
    wait_for(driver, lambda d: d.find_element("id", "error").is_displayed(), "no error shown")
    assert "not valid JSON" in driver.find_element("id", "error").text
    assert '"total": 0' in driver.find_element("id", "data").text


def open_replay(driver: Any, url: str, instance_id: str) -> None:
    open_page(driver, url)
    wait_for(driver, lambda d: d.find_element("id", "tab-replay").is_displayed(), "no Stored instances tab")
    click(driver, "tab-replay")
    selector = f'#instances button[data-instance="{instance_id}"]'
    wait_for(driver, lambda d: d.find_elements("css selector", selector), f"{instance_id} is not listed")
    driver.find_element("css selector", selector).click()
    wait_for(driver, lambda d: d.find_element("id", "replay-controls").is_displayed(), "the replay did not open")


def test_replaying_a_stored_instance_highlights_each_steps_states(browser: Any, order_store: str) -> None:
    driver = browser
    with live_server(create_app(load_catalog(MACHINES), store_url=order_store)) as url:
        open_replay(driver, url, "order-1")
        expected = [({"cart"}, "(start)"), ({"cart"}, "ADD"), ({"payment", "authorizing"}, "CHECKOUT"),
                    (FULFILLMENT | {"packing"}, "AUTHORIZED"), (FULFILLMENT | {"in_transit"}, "PACKED")]
        for index, (states, event) in enumerate(expected):
            if index:
                click(driver, "step-next")
            wait_for(driver, lambda d: d.find_element("id", "step-label").text == f"step {index + 1} of 5",
                     f"step {index + 1} never showed")
            wait_active(driver, "replay-diagram", states)
            assert driver.find_element("id", "replay-step").text.startswith(event)
            if event == "CHECKOUT":
                assert taken(driver, "replay-diagram") == {"cart:CHECKOUT:0"}
            current = driver.find_elements("css selector", "#audit tr.current")
            assert [row.get_attribute("data-step") for row in current] == [str(index)]
        assert not driver.find_element("id", "step-next").is_enabled()
        click(driver, "step-first")
        wait_active(driver, "replay-diagram", {"cart"})
        driver.find_element("css selector", '#audit tr[data-step="2"]').click()  # a row of the table
        wait_active(driver, "replay-diagram", {"payment", "authorizing"})
        no_error(driver)


def post_from_page(driver: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST as the page does (same origin, with the custom header), bypassing the hidden form."""
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {method: 'POST', headers: {'X-Statechart': '1', 'Content-Type': 'application/json'},"
        " body: arguments[1]}).then(r => r.json().then(j => done({status: r.status, body: j})))"
        ".catch(e => done({status: 0, body: String(e)}));", path, json.dumps(body))


def test_sends_to_the_store_are_refused_without_allow_send(browser: Any, order_store: str) -> None:
    driver = browser
    with live_server(create_app(load_catalog(MACHINES), store_url=order_store)) as url:
        open_replay(driver, url, "order-1")
        assert not driver.find_element("id", "instance-send").is_displayed()
        assert "--allow-send" in driver.find_element("id", "read-only-note").text
        assert not driver.find_element("id", "create-instance").is_displayed()
        refused = post_from_page(driver, "/api/instances/order-1/send", {"event": "DELIVERED"})
        assert refused["status"] == 403 and "--allow-send" in refused["body"]["error"]
        refused = post_from_page(driver, "/api/instances", {"machine": "order", "id": "order-2"})
        assert refused["status"] == 403
    with Store.open(order_store) as store:
        store.register(MACHINES / "order" / "v2.yaml")
        assert store.load("order-1").revision == 5 and len(store.audit("order-1")) == 5
        assert store.count() == 1


def test_sends_to_the_store_work_with_allow_send(browser: Any, order_store: str) -> None:
    driver = browser
    app = create_app(load_catalog(MACHINES), store_url=order_store, allow_send=True)
    with live_server(app) as url:
        open_replay(driver, url, "order-1")
        assert not driver.find_element("id", "read-only-note").is_displayed()
        type_into(driver, "instance-event", "DELIVERED")
        click(driver, "instance-send-button")
        wait_for(driver, lambda d: d.find_element("id", "step-label").text == "step 6 of 6",
                 "the new audit row never showed")
        wait_active(driver, "replay-diagram", FULFILLMENT | {"shipped"})
        assert driver.find_element("id", "replay-step").text.startswith("DELIVERED")

        from selenium.webdriver.support.ui import Select

        Select(driver.find_element("id", "create-machine")).select_by_value("order")
        type_into(driver, "create-id", "order-2")
        click(driver, "create")
        wait_for(driver, lambda d: "order-2" in d.find_element("id", "replay-title").text, "order-2 was not opened")
        wait_active(driver, "replay-diagram", {"cart"})
        no_error(driver)
    with Store.open(order_store) as store:
        store.register(MACHINES / "order" / "v2.yaml")
        stored = store.load("order-1")
        assert "shipped" in stored.configuration and stored.revision == 6
        assert store.audit("order-1")[-1]["actor"] == "statechart serve"
        assert store.load("order-2").configuration == frozenset({"cart"})
