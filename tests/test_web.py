"""The JSON API of `statechart serve` through Flask's test client: sessions, the virtual clock,
step back, the diagram's marked states, the store read-only unless --allow-send, and the guards
(custom header on POSTs, loopback Host, body size, JSON, machines chosen by name only)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

if not os.environ.get("CI"):  # CI installs the test extra, which has Flask: there it must not skip
    pytest.importorskip("flask", reason="statechart serve needs Flask (pip install 'statechart[serve]')")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from statechart import Store, loads  # noqa: E402
from statechart.web.app import MAX_BODY_BYTES, create_app  # noqa: E402
from statechart.web.catalog import load_catalog  # noqa: E402
from statechart.web.diagram import DiagramCache, mark_states  # noqa: E402
from statechart.web.simulator import MAX_TIMERS_PER_ADVANCE, Session, SimulatorError  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MACHINES = ROOT / "machines"
HEADERS = {"X-Statechart": "1"}
FULFILLMENT = {"fulfillment", "shipping", "invoicing", "open"}


def active(svg: str) -> set[str]:
    return set(re.findall(r'<g id="[^"]*" class="[^"]*\bactive\b[^"]*" data-state="([^"]+)"', svg))


def marked(svg: str) -> set[str]:
    return set(re.findall(r'data-state="([^"]+)"', svg))


@pytest.fixture(scope="module")
def catalog() -> Any:
    return load_catalog(MACHINES)


@pytest.fixture
def client(catalog: Any) -> Any:
    return create_app(catalog).test_client()


def post(client: Any, path: str, body: Any = None, **kwargs: Any) -> Any:
    return client.post(path, json=body if body is not None else {}, headers=HEADERS, **kwargs)


def start(client: Any, machine: str = "order", version: int | None = 2, data: Any = None) -> dict[str, Any]:
    response = post(client, "/api/sessions", {"machine": machine, "version": version, "data": data})
    assert response.status_code == 201, response.json
    return response.json


# -- machines ------------------------------------------------------------------------------------------
def test_machines_lists_every_loaded_version(client: Any) -> None:
    listed = client.get("/api/machines").json
    versions = {m["name"]: m["versions"] for m in listed["machines"]}
    assert versions["order"] == [2] and versions["delivery"] == [1, 2, 3]
    assert listed["problems"] == []


def test_a_machine_file_that_does_not_load_is_reported_and_the_rest_served(tmp_path: Path) -> None:
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "v1.yaml").write_text("machine: good\nversion: 1\ninitial: a\nstates: {a: {}}\n")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "v1.yaml").write_text("machine: bad\nversion: 1\ninitial: a\n"
                                              "states: {a: {on: {GO: nowhere}}}\n")
    listed = create_app(load_catalog(tmp_path)).test_client().get("/api/machines").json
    assert [m["name"] for m in listed["machines"]] == ["good"]
    assert len(listed["problems"]) == 1 and "bad" in listed["problems"][0] and "nowhere" in listed["problems"][0]


def test_an_idle_diagram_marks_every_state_and_none_active(client: Any, catalog: Any) -> None:
    svg = client.get("/api/machines/order/2").json["svg"]
    machine = catalog.get("order", 2)
    assert marked(svg) == set(machine.states) and active(svg) == set()
    drawn = {t.id for state in machine.model.states.values() for t in state.transitions if not t.targetless}
    assert set(re.findall(r'class="edge transition" data-transition="([^"]+)"', svg)) == drawn
    assert svg.lstrip().startswith("<svg")  # no XML prologue: it goes inside the page


@pytest.mark.parametrize("path", ["/api/machines/..%2F..%2Fetc/1", "/api/machines/order/3",
                                  "/api/machines/passwd/1", "/api/machines/order/-1"])
def test_machines_are_chosen_by_name_and_version_never_by_path(client: Any, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404


def test_a_session_on_an_unknown_machine_names_what_is_loaded(client: Any) -> None:
    response = post(client, "/api/sessions", {"machine": "../machines/order/v2"})
    assert response.status_code == 404
    assert "no machine '../machines/order/v2'" in response.json["error"] and "order" in response.json["error"]


# -- sessions --------------------------------------------------------------------------------------------
def test_clicking_through_the_order_machine(client: Any) -> None:
    view = start(client)
    sid = view["id"]
    assert active(view["svg"]) == {"cart"} and view["enabled_events"] == ["ADD", "CHECKOUT"]
    view = post(client, f"/api/sessions/{sid}/send", {"event": "ADD", "data": {"price": 5}}).json
    assert view["data"]["total"] == 5 and view["last"]["transitions"] == ["cart:ADD:0"]
    view = post(client, f"/api/sessions/{sid}/send", {"event": "CHECKOUT"}).json
    assert active(view["svg"]) == {"payment", "authorizing"}
    assert [(p["event"], p["id"], p["due"]) for p in view["pending"]] == [("TIMEOUT", "pay_timeout", 1800.0)]
    assert view["last"]["effects"] == [{"event": "payment.requested", "data": {"amount": 5}}]
    view = post(client, f"/api/sessions/{sid}/send", {"event": "AUTHORIZED"}).json
    assert active(view["svg"]) == FULFILLMENT | {"packing"} and view["pending"] == []
    assert view["depth"] == 3


def test_the_snapshot_download_restores_the_session(client: Any, catalog: Any) -> None:
    sid = start(client)["id"]
    post(client, f"/api/sessions/{sid}/send", {"event": "ADD", "data": {"price": 4}})
    post(client, f"/api/sessions/{sid}/send", {"event": "CHECKOUT"})
    response = client.get(f"/api/sessions/{sid}/snapshot")
    assert response.headers["Content-Disposition"] == 'attachment; filename="order-v2-snapshot.json"'
    restored = catalog.get("order", 2).restore(response.get_data(as_text=True))
    assert restored.configuration == {"payment", "authorizing"} and restored.data["total"] == 4
    assert [p.id for p in restored.pending_sends] == ["pay_timeout"]


def test_a_single_machine_file_can_be_served() -> None:
    catalog = load_catalog(MACHINES / "order" / "v2.yaml")
    assert list(catalog.machines) == [("order", 2)]
    assert create_app(catalog).test_client().get("/api/machines").json["machines"][0]["name"] == "order"


def test_an_unhandled_event_is_reported_and_changes_nothing(client: Any) -> None:
    sid = start(client)["id"]
    view = post(client, f"/api/sessions/{sid}/send", {"event": "PAY"}).json
    assert view["last"]["handled"] is False and view["configuration"] == ["cart"]


def test_advancing_the_clock_fires_timers_in_order(client: Any) -> None:
    sid = start(client)["id"]
    for event, data in (("ADD", {"price": 1}), ("CHECKOUT", None), ("AUTHORIZED", None), ("PACKED", None)):
        post(client, f"/api/sessions/{sid}/send", {"event": event, "data": data})
    view = post(client, f"/api/sessions/{sid}/advance", {"by": "1d"}).json
    assert view["clock"] == 86400 and active(view["svg"]) == FULFILLMENT | {"in_transit"}
    assert view["last"]["label"] == "+1d: no timer due"
    view = post(client, f"/api/sessions/{sid}/advance", {"next": True}).json
    assert view["clock"] == 2 * 86400 and active(view["svg"]) == FULFILLMENT | {"late"}
    assert view["last"]["timers_fired"] == ["after.0.in_transit"]
    view = post(client, f"/api/sessions/{sid}/back").json
    assert view["clock"] == 86400 and active(view["svg"]) == FULFILLMENT | {"in_transit"}


def test_advance_refuses_bad_durations_and_a_next_without_timers(client: Any) -> None:
    sid = start(client)["id"]
    for body, words in (({"by": "soon"}, "not a duration"), ({"by": -5}, "negative"), ({}, "say how far"),
                        ({"next": True}, "no timer is pending"), ({"by": "1000000d"}, "at most")):
        response = post(client, f"/api/sessions/{sid}/advance", body)
        assert response.status_code in (400, 422) and words in response.json["error"], (body, response.json)
    assert client.get(f"/api/sessions/{sid}").json["clock"] == 0


def test_step_back_to_the_start_and_no_further(client: Any) -> None:
    sid = start(client)["id"]
    post(client, f"/api/sessions/{sid}/send", {"event": "ADD", "data": {"price": 2}})
    view = post(client, f"/api/sessions/{sid}/back").json
    assert view["data"]["total"] == 0 and view["depth"] == 0 and view["last"]["kind"] == "start"
    response = post(client, f"/api/sessions/{sid}/back")
    assert response.status_code == 422 and "nothing to step back to" in response.json["error"]


def test_a_step_that_fails_leaves_the_session_as_it_was(client: Any) -> None:
    sid = start(client)["id"]
    response = post(client, f"/api/sessions/{sid}/send", {"event": ""})
    assert response.status_code == 422 and "event name" in response.json["error"]
    view = client.get(f"/api/sessions/{sid}").json
    assert view["depth"] == 0 and view["configuration"] == ["cart"]


def test_initial_data_must_be_a_json_object(client: Any) -> None:
    assert start(client, data={"total": 7})["data"]["total"] == 7
    response = post(client, "/api/sessions", {"machine": "order", "data": [1, 2]})
    assert response.status_code == 422 and "JSON object" in response.json["error"]


def test_an_unknown_session_says_how_to_recover(client: Any) -> None:
    response = client.get("/api/sessions/nope")
    assert response.status_code == 404 and "start a new one" in response.json["error"]


def test_an_after_loop_stops_after_the_timer_cap() -> None:
    machine = loads("machine: ticker\nversion: 1\ninitial: a\ndata: {n: 0}\n"
                    "states:\n  a: {after: {1s: {target: a, actions: [{assign: {n: 'n + 1'}}]}}}\n")
    session = Session("s", machine)
    step = session.advance("365d")
    assert len(step.timers_fired) == MAX_TIMERS_PER_ADVANCE and "stopped after" in step.label
    assert session.instance.data["n"] == MAX_TIMERS_PER_ADVANCE and session.clock.now() == MAX_TIMERS_PER_ADVANCE


def test_the_undo_stack_and_the_session_registry_are_bounded(catalog: Any) -> None:
    from statechart.web.simulator import Sessions

    sessions = Sessions(limit=3, history_limit=5)
    created = [sessions.create(catalog.get("order")) for _ in range(5)]
    assert len(sessions) == 3
    with pytest.raises(SimulatorError, match="expired"):
        sessions.get(created[0].id)
    session = created[-1]
    for _ in range(20):
        session.send("ADD", {"price": 1})
    assert session.depth == 5


@settings(max_examples=25)
@given(st.lists(st.sampled_from(["ADD", "CHECKOUT", "AUTHORIZED", "DECLINED", "PACKED", "PAY", "DELIVERED",
                                 "ADVANCE"]), max_size=12))
def test_stepping_back_through_any_run_restores_every_earlier_snapshot(events: list[str]) -> None:
    machine = load_catalog(MACHINES).get("order")
    session = Session("s", machine)
    seen = [(session.instance.snapshot(), session.clock.now())]
    for event in events:
        if session.instance.done:
            break
        if event == "ADVANCE":
            session.advance("1d")
        else:
            session.send(event, {"price": 3} if event == "ADD" else None)
        seen.append((session.instance.snapshot(), session.clock.now()))
    for snapshot, moment in reversed(seen[:-1]):
        session.back()
        assert (session.instance.snapshot(), session.clock.now()) == (snapshot, moment)
    with pytest.raises(SimulatorError):
        session.back()


# -- diagrams --------------------------------------------------------------------------------------------
def test_the_diagram_cache_draws_each_configuration_once(catalog: Any) -> None:
    cache = DiagramCache(size=2)
    machine = catalog.get("order")
    first = cache.svg(machine, {"cart"})
    assert cache.svg(machine, ["cart"]) is first and (cache.hits, cache.misses) == (1, 1)
    cache.svg(machine, {"failed"})
    cache.svg(machine, {"done"})
    cache.svg(machine, {"cart"})
    assert cache.misses == 4  # the oldest entry was dropped


def test_mark_states_tags_nodes_and_clusters_and_leaves_other_groups() -> None:
    svg = ('<?xml version="1.0"?>\n<svg>\n<g id="clust1" class="cluster">\n<title>cluster_pay&#45;ment</title>\n</g>\n'
           '<g id="node1" class="node">\n<title>cart</title>\n</g>\n<g id="node2" class="node">\n'
           '<title>pay&#45;ment__anchor</title>\n</g>\n<g id="edge1" class="edge">\n<title>a&#45;&gt;b</title>\n</g>\n'
           '</svg>')
    out = mark_states(svg, ["pay-ment", "cart"], ["pay-ment"], ["a:GO:0"])
    assert out.startswith("<svg")
    assert '<g id="clust1" class="cluster state active" data-state="pay-ment">' in out
    assert '<g id="node1" class="node state" data-state="cart">' in out
    assert '<g id="node2" class="node">' in out and '<g id="edge1" class="edge">' in out
    edge = ('<g id="edge2" class="edge">\n<title>a&#45;&gt;b</title>\n<g id="a_edge2"><a xlink:title="a:GO:0">\n'
            '<path d="M0,0"/></a>\n</g>\n</g>')
    assert mark_states(edge, [], [], ["a:GO:0"]).startswith(
        '<g id="edge2" class="edge transition" data-transition="a:GO:0">\n<title>a&#45;&gt;b</title>')
    assert mark_states(edge, [], [], ["b:GO:0"]) == edge  # a tooltip that is no transition id


@pytest.fixture(scope="module")
def order_svg(catalog: Any) -> str:
    import graphviz

    from statechart.render import render_dot

    return graphviz.Source(render_dot(catalog.get("order", 2))).pipe(format="svg").decode()


@settings(max_examples=50)
@given(data=st.data())
def test_marked_active_states_are_exactly_the_configuration(order_svg: str, catalog: Any, data: Any) -> None:
    states = sorted(catalog.get("order", 2).states)
    configuration = data.draw(st.sets(st.sampled_from(states)))
    out = mark_states(order_svg, states, configuration)
    assert active(out) == configuration and marked(out) == set(states)


# -- guards ------------------------------------------------------------------------------------------------
def test_a_post_without_the_custom_header_is_refused(client: Any) -> None:
    response = client.post("/api/sessions", json={"machine": "order"})
    assert response.status_code == 403 and "X-Statechart: 1" in response.json["error"]
    form = client.post("/api/sessions", data={"machine": "order"}, headers={"X-Statechart": "yes"})
    assert form.status_code == 403


def test_requests_to_a_non_loopback_host_name_are_refused(catalog: Any) -> None:
    client = create_app(catalog).test_client()
    assert client.get("/api/machines", headers={"Host": "evil.example:8765"}).status_code == 403
    assert client.get("/api/machines", headers={"Host": "127.0.0.1:8765"}).status_code == 200
    assert client.get("/api/machines", headers={"Host": "[::1]:8765"}).status_code == 200
    exposed = create_app(catalog, loopback_only=False).test_client()
    assert exposed.get("/api/machines", headers={"Host": "statecharts.internal:8765"}).status_code == 200


def test_bodies_are_limited_and_must_be_a_json_object(client: Any) -> None:
    sid = start(client)["id"]
    big = json.dumps({"event": "ADD", "data": {"price": 1, "pad": "x" * MAX_BODY_BYTES}})
    response = client.post(f"/api/sessions/{sid}/send", data=big, headers=HEADERS, content_type="application/json")
    assert response.status_code == 413 and "KiB" in response.json["error"]
    for raw, words in (("{oops", "not valid JSON"), ("[1]", "JSON object"), ("[" * 20000 + "]" * 20000, "JSON")):
        response = client.post(f"/api/sessions/{sid}/send", data=raw, headers=HEADERS,
                               content_type="application/json")
        assert response.status_code == 400 and words in response.json["error"], raw[:20]
    assert client.get(f"/api/sessions/{sid}").json["depth"] == 0


def test_an_unexpected_error_is_json_for_the_page(catalog: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client = create_app(catalog).test_client()
    sid = start(client)["id"]

    def broken(self: Any, event: str, data: Any = None) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(Session, "send", broken)
    response = post(client, f"/api/sessions/{sid}/send", {"event": "ADD"})
    assert response.status_code == 500 and response.json["error"].startswith("unexpected KeyError: 'boom'")


def test_every_response_forbids_inline_scripts_and_framing(client: Any) -> None:
    for response in (client.get("/"), client.get("/api/machines"), client.get("/static/app.js")):
        assert response.status_code == 200
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"
    page = client.get("/").get_data(as_text=True)
    assert "<script src=\"/static/app.js\"" in page and "http://" not in page and "https://" not in page


def test_without_a_store_the_instance_routes_say_how_to_get_one(client: Any) -> None:
    response = client.get("/api/instances")
    assert response.status_code == 404 and "--store" in response.json["error"]
    assert client.get("/api/config").json == {"folder": str(MACHINES), "store": False, "allow_send": False,
                                              "problems": []}


# -- stored instances (both backends) ------------------------------------------------------------------------
@pytest.fixture
def stored(store_url: str) -> str:
    with Store.open(store_url) as store:
        store.register(MACHINES / "order" / "v2.yaml")
        store.create("order", id="order-1")
        for event, data in (("ADD", {"price": 5}), ("CHECKOUT", None), ("AUTHORIZED", None)):
            store.send("order-1", event, data)
    return store_url


def test_the_audit_trail_replays_step_by_step(stored: str, catalog: Any) -> None:
    client = create_app(catalog, store_url=stored).test_client()
    assert [i["id"] for i in client.get("/api/instances").json["instances"]] == ["order-1"]
    assert client.get("/api/instances?machine=delivery").json["instances"] == []
    trail = client.get("/api/instances/order-1/audit").json
    assert [s["event"] for s in trail["steps"]] == ["(start)", "ADD", "CHECKOUT", "AUTHORIZED"]
    expected = [{"cart"}, {"cart"}, {"payment", "authorizing"}, FULFILLMENT | {"packing"}]
    for index, states in enumerate(expected):
        step = client.get(f"/api/instances/order-1/audit/{index}").json
        assert active(step["svg"]) == states and set(step["configuration_after"]) == states
        assert step["count"] == 4
    assert client.get("/api/instances/order-1/audit/4").status_code == 404
    instance = client.get("/api/instances/order-1").json
    assert instance["revision"] == 4 and active(instance["svg"]) == FULFILLMENT | {"packing"}
    missing = client.get("/api/instances/nope/audit")
    assert missing.status_code == 404 and "nope" in missing.json["error"]


def test_the_store_is_read_only_without_allow_send(stored: str, catalog: Any) -> None:
    client = create_app(catalog, store_url=stored).test_client()
    response = post(client, "/api/instances/order-1/send", {"event": "PACKED"})
    assert response.status_code == 403 and "--allow-send" in response.json["error"]
    assert post(client, "/api/instances", {"machine": "order", "id": "order-2"}).status_code == 403
    with Store.open(stored) as store:
        assert store.load("order-1").revision == 4 and store.count() == 1


def test_allow_send_sends_and_creates(stored: str, catalog: Any) -> None:
    client = create_app(catalog, store_url=stored, allow_send=True).test_client()
    response = post(client, "/api/instances/order-1/send", {"event": "PACKED"})
    assert response.status_code == 200, response.json
    assert response.json["receipt"]["outcome"] == "applied"
    assert "in_transit" in response.json["instance"]["configuration"]
    created = post(client, "/api/instances", {"machine": "order", "id": "order-2", "data": {"total": 3}})
    assert created.status_code == 201 and created.json["data"]["total"] == 3
    duplicate = post(client, "/api/instances", {"machine": "order", "id": "order-2"})
    assert duplicate.status_code == 422 and "order-2" in duplicate.json["error"]
    assert post(client, "/api/instances", {"machine": "nope"}).status_code == 404
    with Store.open(stored) as store:
        assert store.load("order-1").revision == 5 and store.count() == 2
        assert store.audit("order-1")[-1]["actor"] == "statechart serve"
