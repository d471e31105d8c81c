"""Diagrams: DOT checked structurally (parsed back), real SVG through `dot`, Mermaid, and the CLI."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path
from typing import Any

import graphviz
import pytest

import statechart
from statechart.migrate.chain import load_chain, load_step
from statechart.model import ROOT, StateKind
from statechart.render import render_dot, render_mermaid, render_migration_dot
from statechart.render import graphviz as render_graphviz

from machines import run_cli

REPO = Path(__file__).resolve().parent.parent
ORDER = REPO / "machines/order/v2.yaml"
MACHINE_FILES = sorted((REPO / "machines").glob("*/v*.yaml"))


# -- a small parser for the DOT the graphviz package writes (one statement per line) -----------------
_ATTR = re.compile(r'([\w]+)=("(?:[^"\\]|\\.)*"|<[^>]*>|[^\s\]]+)')
_ID = r'("(?:[^"\\]|\\.)*"|[^\s\[\]{}"]+)'
_EDGE = re.compile(rf"^{_ID} -> {_ID}(?: \[(.*)\])?$")
_NODE = re.compile(rf"^{_ID}(?: \[(.*)\])?$")


def _unquote(text: str) -> str:
    if text.startswith('"') and text.endswith('"'):
        return text[1:-1].replace('\\"', '"')
    return text


def _attrs(text: str | None) -> dict[str, str]:
    return {k: _unquote(v) for k, v in _ATTR.findall(text or "")}


class Dot:
    """Clusters (name -> attrs and parent cluster), nodes (name -> attrs and cluster), edges."""

    def __init__(self, source: str) -> None:
        self.clusters: dict[str, dict[str, Any]] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        self.edges: list[dict[str, Any]] = []
        self.hidden: list[dict[str, Any]] = []  # style=invis edges, which only steer the layout
        self.graph: dict[str, str] = {}
        stack: list[str] = []
        for raw in source.splitlines()[1:]:
            line = raw.strip()
            if line.startswith("subgraph "):
                name = line.split()[1]
                self.clusters[name] = {"parent": stack[-1] if stack else None, "attrs": {}}
                stack.append(name)
            elif line == "}":
                if stack:
                    stack.pop()
            elif line.startswith(("node [", "edge [")):
                continue
            elif " -> " in line:
                match = _EDGE.match(line)
                assert match, line
                edge = {"tail": _unquote(match.group(1)), "head": _unquote(match.group(2)),
                        "attrs": _attrs(match.group(3)), "cluster": stack[-1] if stack else None}
                (self.hidden if edge["attrs"].get("style") == "invis" else self.edges).append(edge)
            elif "=" in line.split("[")[0] and not line.startswith('"'):
                target = self.clusters[stack[-1]]["attrs"] if stack else self.graph
                target.update(_attrs(line))
            else:
                match = _NODE.match(line)
                assert match, line
                self.nodes[_unquote(match.group(1))] = {"attrs": _attrs(match.group(2)),
                                                       "cluster": stack[-1] if stack else None}

    def edge(self, tooltip: str) -> dict[str, Any]:
        found = [e for e in self.edges if e["attrs"].get("tooltip") == tooltip]
        assert len(found) == 1, (tooltip, found)
        return found[0]

    def label(self, edge_or_node: dict[str, Any]) -> str:
        attrs = edge_or_node["attrs"]
        return attrs.get("label", attrs.get("xlabel", ""))


@pytest.fixture(scope="module")
def order() -> statechart.Machine:
    return statechart.load(ORDER)


@pytest.fixture(scope="module")
def order_dot(order: statechart.Machine) -> Dot:
    return Dot(render_dot(order))


# -- structure ----------------------------------------------------------------------------------------
def test_compound_and_parallel_states_are_nested_clusters_with_their_names(order_dot: Dot) -> None:
    clusters = order_dot.clusters
    assert set(clusters) == {"cluster_payment", "cluster_fulfillment", "cluster_shipping", "cluster_invoicing"}
    assert clusters["cluster_shipping"]["parent"] == "cluster_fulfillment"
    assert clusters["cluster_invoicing"]["parent"] == "cluster_fulfillment"
    assert clusters["cluster_payment"]["parent"] is None
    assert clusters["cluster_payment"]["attrs"]["label"].startswith("payment\\l")
    assert clusters["cluster_fulfillment"]["attrs"]["label"] == "fulfillment \u2225"
    assert order_dot.nodes["packing"]["cluster"] == "cluster_shipping"
    assert order_dot.nodes["authorizing"]["cluster"] == "cluster_payment"


def test_parallel_regions_have_dashed_borders_and_other_clusters_do_not(order_dot: Dot) -> None:
    styles = {name: c["attrs"]["style"] for name, c in order_dot.clusters.items()}
    assert "dashed" in styles["cluster_shipping"] and "dashed" in styles["cluster_invoicing"]
    assert "dashed" not in styles["cluster_payment"] and "dashed" not in styles["cluster_fulfillment"]


def test_final_states_are_double_circles_and_history_is_a_circle_labelled_h_star(order_dot: Dot) -> None:
    for final in ("captured", "shipped", "paid", "done"):
        assert order_dot.nodes[final]["attrs"]["shape"] == "doublecircle"
    hist = order_dot.nodes["hist"]["attrs"]
    assert (hist["shape"], hist["label"]) == ("circle", "H*")
    default = [e for e in order_dot.edges if e["tail"] == "hist"]
    assert [(e["head"], e["attrs"]["style"]) for e in default] == [("open", "dotted")]


def test_shallow_history_is_labelled_h() -> None:
    machine = statechart.loads(
        "machine: h\nversion: 1\nstates:\n  a:\n    initial: x\n    states:\n"
        "      past: {type: history, history: shallow, target: x}\n      x: {}\n", "machines/h/v1.yaml")
    assert Dot(render_dot(machine)).nodes["past"]["attrs"]["label"] == "H"


def test_initial_markers_are_filled_points_pointing_at_the_initial_child(order_dot: Dot) -> None:
    for marker, child in (("__initial__", "cart"), ("payment__initial", "authorizing"),
                          ("shipping__initial", "packing"), ("invoicing__initial", "open")):
        assert order_dot.nodes[marker]["attrs"]["shape"] == "point"
        assert [e["head"] for e in order_dot.edges if e["tail"] == marker] == [child]


def test_every_targeted_transition_is_one_edge_with_event_guard_label(order_dot: Dot) -> None:
    assert order_dot.label(order_dot.edge("cart:CHECKOUT:0")) == "CHECKOUT [total > 0]"
    assert order_dot.label(order_dot.edge("authorizing:DECLINED:0")) == "DECLINED [retries < 3]"
    assert order_dot.label(order_dot.edge("cart:error.*:0")) == "error.*"
    assert order_dot.label(order_dot.edge("payment:on_done:0")) == "on_done"
    edge = order_dot.edge("open:PAY:0")
    assert (edge["tail"], edge["head"]) == ("open", "paid")


def test_edges_to_and_from_compound_states_end_at_the_cluster_border(order_dot: Dot) -> None:
    checkout = order_dot.edge("cart:CHECKOUT:0")
    assert (checkout["head"], checkout["attrs"]["lhead"]) == ("payment__anchor", "cluster_payment")
    assert "ltail" not in checkout["attrs"]
    done = order_dot.edge("payment:on_done:0")
    assert (done["tail"], done["attrs"]["ltail"]) == ("payment__anchor", "cluster_payment")
    assert (done["head"], done["attrs"]["lhead"]) == ("fulfillment__anchor", "cluster_fulfillment")
    assert order_dot.nodes["payment__anchor"]["attrs"]["style"] == "invis"
    assert order_dot.nodes["payment__anchor"]["cluster"] == "cluster_payment"
    assert order_dot.graph["compound"] == "true"


def test_eventless_edges_are_dashed_italic_and_delayed_ones_carry_a_clock(order_dot: Dot) -> None:
    eventless = order_dot.edge("held:always:0")
    assert order_dot.label(eventless) == "[not on_hold]"
    assert eventless["attrs"]["style"] == "dashed" and eventless["attrs"]["fontname"].endswith("Oblique")
    delayed = order_dot.edge("in_transit:after 2d:0")
    assert order_dot.label(delayed) == "\u25f7 after 2d"
    assert delayed["attrs"]["style"] == "dashed"


def test_synthetic_timer_actions_are_not_drawn(order_dot: Dot) -> None:
    assert order_dot.nodes["in_transit"]["attrs"]["label"] == "in_transit"
    assert "after.0" not in render_dot(statechart.load(ORDER))


def test_actions_are_shown_on_edges_and_states_and_hidden_with_actions_false() -> None:
    machine = statechart.load(REPO / "machines/delivery/v3.yaml")
    shown, hidden = Dot(render_dot(machine)), Dot(render_dot(machine, actions=False))
    assert shown.label(shown.edge("dispatching:COURIER_ACCEPTED:0")) == \
        "COURIER_ACCEPTED\\n/ courier = event.data['courier']"
    assert hidden.label(hidden.edge("dispatching:COURIER_ACCEPTED:0")) == "COURIER_ACCEPTED"
    assert "entry / emit restaurant.order_offered" in shown.nodes["offered"]["attrs"]["label"]
    assert hidden.nodes["offered"]["attrs"]["label"] == "offered"


def test_targetless_transitions_are_listed_inside_their_state(order_dot: Dot) -> None:
    assert order_dot.nodes["cart"]["attrs"]["label"] == "cart\\nADD / total = total + event.data['price']\\l"
    assert not [e for e in order_dot.edges if e["attrs"].get("tooltip") == "cart:ADD:0"]


def test_configuration_fills_the_active_states_and_data_becomes_a_note(order: statechart.Machine) -> None:
    instance = order.start()
    instance.send("ADD", {"price": 5})
    instance.send("CHECKOUT")
    dot = Dot(render_dot(order, configuration=instance.configuration, data=instance.data))
    assert dot.nodes["authorizing"]["attrs"]["fillcolor"] == render_graphviz.ACTIVE_FILL
    assert dot.clusters["cluster_payment"]["attrs"]["fillcolor"] == render_graphviz.ACTIVE_CLUSTER_FILL
    assert dot.nodes["cart"]["attrs"]["fillcolor"] == "white"
    note = dot.nodes["__data__"]["attrs"]
    assert note["shape"] == "note"
    assert note["label"] == "data\\ltotal = 5\\lretries = 1\\lon_hold = false\\l"


def test_counts_colour_states_as_a_heat_map_with_the_count_in_the_label(order: statechart.Machine) -> None:
    dot = Dot(render_dot(order, counts={"cart": 10, "authorizing": 5, "failed": 0}))
    assert dot.nodes["cart"]["attrs"]["label"].startswith("cart (10)")
    assert dot.nodes["authorizing"]["attrs"]["label"].startswith("authorizing (5)")
    fills = {s: dot.nodes[s]["attrs"]["fillcolor"] for s in ("cart", "authorizing", "failed", "late")}
    assert fills["failed"] == fills["late"] == "#ffffff"
    assert len({fills["cart"], fills["authorizing"], fills["failed"]}) == 3
    assert dot.nodes["cart"]["attrs"]["fontcolor"] == "white"


def test_focus_draws_the_subtree_with_a_breadcrumb_and_outside_states_collapsed(order: statechart.Machine) -> None:
    dot = Dot(render_dot(order, focus="invoicing"))
    assert dot.graph["label"] == "order v2 \u203a fulfillment \u203a invoicing"
    assert set(dot.clusters) == {"cluster_invoicing"}
    assert {"open", "held", "paid", "hist"} <= set(dot.nodes)
    assert "cart" not in dot.nodes and "packing" not in dot.nodes
    machine = statechart.load(REPO / "machines/delivery/v3.yaml")
    dot = Dot(render_dot(machine, focus="courier_first"))
    outside = dot.nodes["outside__canceled"]["attrs"]
    assert outside["label"] == "canceled" and "dashed" in outside["style"]
    assert dot.edge("purchasing:ITEMS_UNAVAILABLE:0")["head"] == "outside__canceled"
    incoming = dot.edge("submitted:always:1")
    assert (incoming["tail"], incoming["head"]) == ("outside__submitted", "courier_first__anchor")


def test_depth_collapses_compound_states_below_it(order: statechart.Machine) -> None:
    dot = Dot(render_dot(order, focus="fulfillment", depth=1))
    assert set(dot.clusters) == {"cluster_fulfillment"}
    assert dot.nodes["shipping"]["attrs"]["peripheries"] == "2"
    assert "packing" not in dot.nodes
    whole = Dot(render_dot(order, depth=1))
    assert set(whole.clusters) == set()
    assert whole.edge("cart:CHECKOUT:0")["head"] == "payment"
    assert whole.edge("authorizing:DECLINED:0")["tail"] == "payment"


def test_an_unknown_focus_state_is_an_error(order: statechart.Machine) -> None:
    with pytest.raises(statechart.StatechartError, match="no state 'nowhere' in order v2"):
        render_dot(order, focus="nowhere")


@pytest.mark.parametrize("path", MACHINE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_state_and_transition_of_every_machine_appears(path: Path) -> None:
    machine = statechart.load(path)
    dot = Dot(render_dot(machine))
    drawn = set(dot.nodes) | {name.removeprefix("cluster_") for name in dot.clusters}
    for state in machine.model.states.values():
        if state.id != ROOT:
            assert state.id in drawn
        for t in state.transitions:
            if t.targetless:
                label = (dot.clusters[f"cluster_{state.id}"]["attrs"]["label"]
                         if f"cluster_{state.id}" in dot.clusters else dot.nodes[state.id]["attrs"]["label"])
                assert render_graphviz.edge_label(t) in label
            elif t.targets == (state.id,):  # a self-loop: a line of its state's one loop
                loop = [e for e in dot.edges if e["tail"] == e["head"] == state.id]
                assert len(loop) == 1 and t.id in loop[0]["attrs"]["tooltip"].split("; ")
            else:
                assert len([e for e in dot.edges if e["attrs"].get("tooltip") == t.id]) == len(t.targets)
    mermaid = render_mermaid(machine)
    for state in machine.model.states.values():
        if state.id != ROOT and state.kind is not StateKind.HISTORY:
            assert re.search(rf"\b{re.escape(state.id)}\b", mermaid)


# -- real Graphviz -------------------------------------------------------------------------------------
def test_svg_rendering_runs_dot_and_contains_the_state_names(order: statechart.Machine, tmp_path: Path) -> None:
    out = render_graphviz.render_file(render_dot(order), tmp_path / "order.svg")
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    for name in ("cart", "payment", "authorizing", "fulfillment", "in_transit", "H*", "done"):
        assert f">{name}" in svg, name


def test_migration_svg_renders(tmp_path: Path) -> None:
    old, new = statechart.load(REPO / "machines/delivery/v1.yaml"), statechart.load(REPO / "machines/delivery/v2.yaml")
    step = load_chain("delivery", REPO / "migrations")[0]
    svg = render_graphviz.render_file(render_migration_dot(old, new, step), tmp_path / "m.svg").read_text()
    assert ">v1<" in svg and ">v2<" in svg and ">courier_first (no arrow)<" in svg


# -- migrations ------------------------------------------------------------------------------------------
def test_migration_draws_both_versions_and_one_arrow_per_table_entry() -> None:
    old, new = statechart.load(REPO / "machines/delivery/v1.yaml"), statechart.load(REPO / "machines/delivery/v2.yaml")
    step = load_step(REPO / "migrations/delivery/v1_to_v2.py", "delivery")
    dot = Dot(render_migration_dot(old, new, step, counts={"submitted": 3}))
    assert dot.nodes["old__submitted"]["cluster"] == "cluster_old"
    assert dot.nodes["new__finding_courier"]["cluster"] == "cluster_new__courier_first"
    arrows = {(e["tail"], e["head"]): e["attrs"] for e in dot.edges}
    assert len(arrows) == len(step.states)
    assert arrows[("old__submitted", "new__offered")]["taillabel"] == "3"
    assert "taillabel" not in arrows[("old__preparing", "new__preparing")]
    assert dot.nodes["old__submitted"]["attrs"]["label"] == "submitted (3)"


def test_old_states_without_a_mapping_are_red(tmp_path: Path) -> None:
    step_file = tmp_path / "v1_to_v2.py"
    step_file.write_text("STATES = {'submitted': 'offered', 'canceled': 'canceled'}\n")
    old, new = statechart.load(REPO / "machines/delivery/v1.yaml"), statechart.load(REPO / "machines/delivery/v2.yaml")
    dot = Dot(render_migration_dot(old, new, load_step(step_file, "delivery")))
    assert dot.nodes["old__preparing"]["attrs"]["color"] == "#c0392b"
    assert "color" not in dot.nodes["old__submitted"]["attrs"]


def test_a_map_state_step_draws_dashed_identity_arrows(tmp_path: Path) -> None:
    step_file = tmp_path / "v1_to_v2.py"
    step_file.write_text("def map_state(instance):\n    return ['offered']\n")
    # drawn backwards (v2 over v1) so that some old states have no same-named new state
    old, new = statechart.load(REPO / "machines/delivery/v2.yaml"), statechart.load(REPO / "machines/delivery/v1.yaml")
    dot = Dot(render_migration_dot(old, new, load_step(step_file, "delivery")))
    ids = set(old.model.states) & set(new.model.states) - {ROOT}
    assert {(e["tail"], e["head"]) for e in dot.edges} == {(f"old__{s}", f"new__{s}") for s in ids}
    assert all(e["attrs"]["style"] == "dashed" and e["attrs"]["label"] == "map_state" for e in dot.edges)
    missing = set(old.model.states) - set(new.model.states) - {ROOT}
    assert missing == {"offered", "courier_first", "finding_courier", "en_route", "purchasing"}
    red = {s for s in missing if (dot.nodes.get(f"old__{s}") or dot.clusters[f"cluster_old__{s}"])["attrs"]
           .get("color") == "#c0392b"}
    assert red == missing


# -- Mermaid ------------------------------------------------------------------------------------------------
def test_mermaid_for_the_order_machine_has_the_key_constructs(order: statechart.Machine) -> None:
    lines = [line.strip() for line in render_mermaid(order).splitlines()]
    assert lines[:3] == ["%% order v2", "stateDiagram-v2", "[*] --> cart"]
    for expected in ("state payment {", "state fulfillment {", "state shipping {", "state invoicing {", "--",
                     "[*] --> authorizing", "captured --> [*]", "done --> [*]", 'state "H*" as hist',
                     "hist --> open : default", "cart --> payment : CHECKOUT [total #gt; 0]", 'state "cart" as cart',
                     "in_transit --> late : after 2d", "held --> open : always [not on_hold]",
                     "payment --> fulfillment : on_done", "cart : ADD"):
        assert expected in lines, expected
    # the region separator sits between the two regions of fulfillment
    assert lines.index("state shipping {") < lines.index("--") < lines.index("state invoicing {")
    # a transition inside payment is written inside its block, one leaving it at the top level
    assert lines.index("authorizing --> captured : AUTHORIZED") < lines.index("state fulfillment {")
    assert lines.index("authorizing --> cart : DECLINED [retries #lt; 3]") > lines.index("failed")
    assert lines.count("{") == 0 and sum(line.endswith("{") for line in lines) == sum(line == "}" for line in lines)


def test_mermaid_shows_actions_only_when_asked(order: statechart.Machine) -> None:
    assert "entry / start_payment" not in render_mermaid(order)
    text = render_mermaid(order, actions=True)
    assert "    payment : entry / start_payment" in text
    assert "cart : ADD / total = total + event.data['price']" in text


# -- the command line -------------------------------------------------------------------------------------
def test_cli_renders_svg_dot_and_mermaid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("o.svg", "o.dot", "o.mmd", "o.png"):
        code, out, _ = run_cli(capsys, "render", str(ORDER), "-o", str(tmp_path / name))
        assert (code, out) == (0, f"wrote {tmp_path / name}\n")
    assert ">authorizing</text>" in (tmp_path / "o.svg").read_text()
    assert (tmp_path / "o.dot").read_text().startswith("digraph order {")
    assert (tmp_path / "o.mmd").read_text().splitlines()[1] == "stateDiagram-v2"
    assert (tmp_path / "o.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_no_actions_focus_and_depth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "f.dot"
    code, _, _ = run_cli(capsys, "render", str(ORDER), "-o", str(out), "--no-actions", "--focus", "fulfillment",
                     "--depth", "1")
    assert code == 0
    dot = Dot(out.read_text())
    assert set(dot.clusters) == {"cluster_fulfillment"} and "start_payment" not in out.read_text()


def test_cli_highlights_a_snapshot(order: statechart.Machine, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    instance = order.start()
    instance.send("ADD", {"price": 7})
    (tmp_path / "snap.json").write_text(instance.snapshot().to_json())
    code, _, _ = run_cli(capsys, "render", str(ORDER), "-o", str(tmp_path / "s.dot"), "--snapshot",
                     str(tmp_path / "snap.json"))
    assert code == 0
    dot = Dot((tmp_path / "s.dot").read_text())
    assert dot.nodes["cart"]["attrs"]["fillcolor"] == render_graphviz.ACTIVE_FILL
    assert "total = 7\\l" in dot.nodes["__data__"]["attrs"]["label"]


def test_cli_highlights_a_stored_instance_and_draws_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'app.db'}"
    store = statechart.Store.open(url)
    store.register(ORDER)
    for n in range(3):
        store.create("order", {}, id=f"o{n}")
    store.send("o0", "ADD", {"price": 5})
    store.send("o0", "CHECKOUT")
    store.close()
    code, _, err = run_cli(capsys, "render", str(ORDER), "-o", "i.dot", "--instance", "o0", "--store", url)
    assert (code, err) == (0, "")
    dot = Dot(Path("i.dot").read_text())
    assert dot.nodes["authorizing"]["attrs"]["fillcolor"] == render_graphviz.ACTIVE_FILL
    revision = statechart.Store.open(url).load("o0").revision
    assert dot.graph["label"] == f"order v2 \u2014 instance o0, revision {revision}"
    assert "send TIMEOUT  in 30m" in dot.nodes["__timers__"]["attrs"]["label"]  # authorizing's pending timer
    code, _, _ = run_cli(capsys, "render", str(ORDER), "-o", "c.dot", "--counts", "--store", url)
    assert code == 0
    dot = Dot(Path("c.dot").read_text())
    assert dot.nodes["cart"]["attrs"]["label"].startswith("cart (2)")
    assert dot.nodes["authorizing"]["attrs"]["label"].startswith("authorizing (1)")


def test_cli_render_migration_from_the_project_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(REPO / "machines", tmp_path / "machines")
    shutil.copytree(REPO / "migrations", tmp_path / "migrations")
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(capsys, "render-migration", "delivery", "1", "2", "-o", "m.svg")
    assert (code, out) == (0, "wrote m.svg\n")
    assert ">offered</text>" in Path("m.svg").read_text()
    code, _, err = run_cli(capsys, "render-migration", "delivery", "1", "3", "-o", "m.svg")
    assert code == 2 and "a step goes from one version to the next: 1 2" in err


def test_cli_rejects_an_unknown_output_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "render", str(ORDER), "-o", str(tmp_path / "o.txt"))
    assert code == 2 and "the output must end in .svg, .png, .pdf, .dot or .mmd" in err


def test_without_dot_svg_fails_with_the_install_hint_but_dot_and_mermaid_work(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_graphviz.shutil, "which", lambda name: None)
    code, out, err = run_cli(capsys, "render", str(ORDER), "-o", str(tmp_path / "o.svg"))
    assert (code, out) == (1, "")
    assert err.startswith("error: ")
    assert "install Graphviz (apt-get install graphviz / brew install graphviz)" in err
    assert not (tmp_path / "o.svg").exists()
    for name in ("o.dot", "o.mmd"):
        assert run_cli(capsys, "render", str(ORDER), "-o", str(tmp_path / name))[0] == 0


def test_a_missing_executable_reported_by_graphviz_gives_the_same_hint(
        order: statechart.Machine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def pipe(self: Any, format: str) -> bytes:
        raise graphviz.ExecutableNotFound(("dot",))

    monkeypatch.setattr(graphviz.Source, "pipe", pipe)
    with pytest.raises(render_graphviz.GraphvizMissingError, match=r"install Graphviz \(apt-get install graphviz"):
        render_graphviz.render_file(render_dot(order), tmp_path / "o.png")


# -- fixes found in design review (issue 16) ----------------------------------------------------------------
def _svg(dot_text: str) -> str:
    """The SVG text with character references resolved (dot writes ``-`` as ``&#45;``)."""
    return html.unescape(render_graphviz.render_svg(dot_text))


def _text_x(svg: str, text: str) -> float:
    match = re.search(rf'<text[^>]*\bx="([-\d.]+)"[^>]*>{re.escape(text)}</text>', svg)
    assert match, text
    return float(match.group(1))


def test_heat_map_scales_over_atomic_states_and_outlines_compound_ones(order: statechart.Machine) -> None:
    counts = {"fulfillment": 40, "shipping": 20, "packing": 20, "invoicing": 20, "open": 10, "cart": 5}
    dot = Dot(render_dot(order, counts=counts))
    top = render_graphviz._heat(20, 20)[0]
    assert dot.nodes["packing"]["attrs"]["fillcolor"] == top  # the hottest leaf gets the darkest colour
    assert dot.nodes["open"]["attrs"]["fillcolor"] == render_graphviz._heat(10, 20)[0]
    assert dot.nodes["packing"]["attrs"]["fontcolor"] == "white"  # contrast on a dark fill
    fulfillment = dot.clusters["cluster_fulfillment"]["attrs"]
    assert fulfillment["fillcolor"] == "white" and fulfillment["label"].startswith("fulfillment \u2225 (40)")
    assert fulfillment["color"] == top and fulfillment["penwidth"] == "2.5"  # outlined by its total
    assert dot.clusters["cluster_payment"]["attrs"]["color"] == "#444444"  # nobody inside: no outline
    legend = next(line for line in render_dot(order, counts=counts).splitlines() if line.strip().startswith("__legend__"))
    assert "instances per state" in legend and f'bgcolor="{top}"' in legend and ">20<" in legend
    svg = _svg(render_dot(order, counts=counts))
    assert "instances per state" in svg and f'fill="{top}"' in svg


def test_long_action_lists_wrap_instead_of_being_cut(tmp_path: Path) -> None:
    path = tmp_path / "v1.yaml"
    path.write_text("machine: m\nversion: 1\ndata: {n: 0}\nstates:\n  a:\n    on:\n      GO:\n        target: b\n"
                    "        actions:\n          - assign: {n: 'n + 1000000'}\n          - assign: {n: 'n * 2000000'}\n"
                    "          - emit: {event: order.really_important_event}\n  b: {type: final}\n")
    machine = statechart.load(path)
    dot = Dot(render_dot(machine))
    edge = dot.edge("a:GO:0")
    label = edge["attrs"]["label"]
    assert "\u2026" not in label and "order.really_important_event" in label
    assert all(len(line) <= render_graphviz.LABEL_WIDTH + 2 for line in label.split("\\n"))
    assert edge["attrs"]["labeltooltip"] == ("GO / n = n + 1000000; n = n * 2000000; "
                                            "emit order.really_important_event")
    assert "order.really_important_event" in _svg(render_dot(machine))


def test_self_loops_share_one_loop_whose_label_lines_do_not_overlap() -> None:
    machine = statechart.load(REPO / "machines/delivery/v3.yaml")
    dot = Dot(render_dot(machine))
    loops = [e for e in dot.edges if e["tail"] == e["head"] == "dispatching"]
    assert len(loops) == 1
    assert loops[0]["attrs"]["tooltip"] == ("dispatching:COURIER_DECLINED:0; dispatching:after 2m:0")
    svg = render_graphviz.render_svg(render_dot(machine))
    group = re.search(r'<g id="loop:dispatching".*?(?=<!--)', svg, re.S)
    assert group
    lines = re.findall(r'<text[^>]*\by="([-\d.]+)"[^>]*>([^<]*)</text>', group.group(0))
    assert [html.unescape(text) for _, text in lines] == ["COURIER_DECLINED [courier_attempts < 5]",
                                                          "\u25f7 after 2m [courier_attempts < 5]"]
    assert float(lines[1][0]) - float(lines[0][0]) >= 10  # one line below the other, at 10pt


def test_parallel_regions_are_drawn_left_to_right_in_document_order(order: statechart.Machine) -> None:
    svg = _svg(render_dot(order))
    assert _text_x(svg, "shipping") < _text_x(svg, "invoicing")
    fulfillment = statechart.load(REPO / "machines/fulfillment/v1.yaml")
    regions = [s for s in fulfillment.model.states.values() if s.parent in
               {p.id for p in fulfillment.model.states.values() if p.kind is StateKind.PARALLEL}]
    svg = _svg(render_dot(fulfillment))
    by_parent: dict[str, list[float]] = {}
    for region in regions:
        if region.kind in (StateKind.COMPOUND, StateKind.PARALLEL):
            by_parent.setdefault(region.parent, []).append(_text_x(svg, region.id))
    assert by_parent and all(xs == sorted(xs) for xs in by_parent.values())


def test_instance_drawing_names_the_instance_and_its_revision_and_lists_pending_timers(
        order: statechart.Machine) -> None:
    from statechart.interpreter import PendingSend

    pending = [PendingSend("after.0.in_transit", "after.0.in_transit", None, 1000.0 + 3600, 1),
               PendingSend("remind", "remind", None, 1000.0 + 90, 2)]
    text = render_dot(order, configuration={"fulfillment", "shipping", "in_transit", "invoicing", "open"},
                      data={"total": 5}, instance="order-7", revision=4, pending=pending, now=1000.0)
    dot = Dot(text)
    assert dot.graph["label"].startswith("order v2 \u2014 instance order-7, revision 4")
    timers = dot.nodes["__timers__"]["attrs"]["label"]
    assert timers.index("send remind  in 1m 30s") < timers.index("\u25f7 after 2d of in_transit  in 1h")
    svg = _svg(text)
    assert "instance order-7, revision 4" in svg and "pending timers" in svg


def test_migration_drawing_keeps_its_layout_whatever_the_counts() -> None:
    import subprocess

    old, new = statechart.load(REPO / "machines/delivery/v2.yaml"), statechart.load(REPO / "machines/delivery/v3.yaml")
    step = load_step(REPO / "migrations/delivery/v2_to_v3.py", "delivery")

    def columns(dot_text: str) -> tuple[list[str], list[str]]:
        plain = subprocess.run(["dot", "-Tplain"], input=dot_text, capture_output=True, text=True, check=True).stdout
        nodes = sorted((line.split() for line in plain.splitlines() if line.startswith("node ")),
                       key=lambda n: -float(n[3]))
        return ([n[1] for n in nodes if n[1].startswith("old__")], [n[1] for n in nodes if n[1].startswith("new__")])

    bare = columns(render_migration_dot(old, new, step))
    assert bare == columns(render_migration_dot(old, new, step, counts={"offered": 50, "courier_first": 7,
                                                                         "finding_courier": 7, "delivered": 900}))
    new_column = [n.removeprefix("new__").removesuffix("__anchor") for n in bare[1] if n != "new__top"]
    documented = [s for s in new.model.states if s in new_column]
    assert new_column == documented  # the new version reads top to bottom in document order
    dot = Dot(render_migration_dot(old, new, step))
    for state in ("ready", "restaurant_delivering"):  # unreached new states are marked
        attrs = dot.nodes[f"new__{state}"]["attrs"]
        assert attrs["color"] == render_graphviz.UNREACHED and attrs["label"] == f"{state} (no arrow)"
    assert "color" not in dot.nodes["new__offered"]["attrs"]


def test_the_machine_description_is_shown_under_the_title() -> None:
    machine = statechart.load(REPO / "machines/delivery/v3.yaml")
    dot = Dot(render_dot(machine))
    assert dot.graph["label"].startswith("delivery v3\\nPartner orders delivered by our couriers")
    assert "Partner orders delivered by our couriers" in _svg(render_dot(machine))
    ready = dot.nodes["ready"]["attrs"]["tooltip"]
    assert ready == "ready: Food is ready; who carries it depends on the restaurant."


def test_machine_text_written_like_html_stays_text(tmp_path: Path) -> None:
    path = tmp_path / "v1.yaml"
    path.write_text("machine: m\nversion: 1\ndescription: '<b>bold</b>'\nstates:\n"
                    "  a: {description: '<i>x</i>', on: {GO: b}}\n  b: {type: final}\n")
    svg = _svg(render_dot(statechart.load(path)))
    raw = render_graphviz.render_svg(render_dot(statechart.load(path)))
    assert "&lt;b&gt;bold&lt;/b&gt;" in raw and "<b>" not in raw and "<b>bold</b>" in svg
