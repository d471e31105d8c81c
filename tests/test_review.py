"""The review page: change classification, step arrows, the HTML page, the CLI, and the page in a
real headless Chromium (tests/browser.py)."""

from __future__ import annotations

import functools
import os
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import statechart
from statechart.migrate.arrows import step_arrows
from statechart.migrate.chain import load_step
from statechart.migrate.risk import RISKS, classify_changes
from statechart.render import graphviz as render_graphviz
from statechart.render.review import RISK_COLOURS, build_review, change_marks, review_html
from statechart.store import Store

from browser import chromium
from machines import run_cli

REPO = Path(__file__).resolve().parent.parent
DELIVERY = REPO / "machines/delivery"


@pytest.fixture(scope="module")
def delivery() -> dict[int, statechart.Machine]:
    return {v: statechart.load(DELIVERY / f"v{v}.yaml") for v in (1, 2, 3)}


@pytest.fixture(scope="module")
def step23() -> Any:
    return load_step(REPO / "migrations/delivery/v2_to_v3.py", "delivery")


def _machine(tmp_path: Path, name: str, text: str) -> statechart.Machine:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return statechart.load(path)


# -- the risk classes -----------------------------------------------------------------------------------
def test_delivery_v2_to_v3_changes_are_classified_most_urgent_first(delivery: dict, step23: Any) -> None:
    changes = classify_changes(delivery[2], delivery[3], step23)
    found = {(c.element, c.change, c.subject, c.risk) for c in changes}
    assert found == {
        ("transition", "changed", "preparing:FOOD_READY:0", "risky"),
        ("transition", "changed", "preparing:after 20m:0", "risky"),
        ("state", "added", "ready", "with care"),
        ("state", "added", "restaurant_delivering", "with care"),
        ("transition", "added", "ready:always:0", "safe"),
        ("transition", "added", "ready:always:1", "safe"),
        ("transition", "added", "restaurant_delivering:DELIVERED:0", "safe"),
        ("data", "added", "delivered_by", "safe"),
    }
    assert [RISKS.index(c.risk) for c in changes] == sorted(RISKS.index(c.risk) for c in changes)


V1 = """\
machine: m
version: 1
data: {n: 0}
states:
  a: {on: {GO: b, OLD: c, PING: a}}
  b: {on: {DONE: c}}
  gone: {on: {BACK: a}}
  c: {type: final}
"""

V2 = """\
machine: m
version: 2
data: {n: 0}
states:
  a: {on: {GO: d, PING: a, NEW: extra}}
  b: {entry: [{assign: {n: "n + 1"}}], after: {5m: c}, on: {DONE: c}}
  d: {on: {DONE: c}}
  extra: {type: final}
  c: {type: final}
"""


def test_each_row_of_the_compatibility_matrix(tmp_path: Path) -> None:
    old, new = _machine(tmp_path, "v1.yaml", V1), _machine(tmp_path, "v2.yaml", V2)
    risk = {(c.element, c.change, c.subject): c.risk for c in classify_changes(old, new)}
    assert risk[("state", "added", "extra")] == "safe"  # a terminal state
    assert risk[("state", "added", "d")] == "with care"  # an intermediate state
    assert risk[("state", "removed", "gone")] == "needs mapping"
    assert risk[("transition", "changed", "a:GO:0")] == "risky"  # a new target
    assert risk[("event", "added", "NEW")] == "safe"
    assert risk[("event", "removed", "OLD")] == "producers"  # once no producer sends it
    assert risk[("timer", "added", "b:after 5m:0")] == "with care"  # migrated instances in b lack it
    assert risk[("entry", "changed", "b")] == "with care"  # migrated instances in b skip it
    assert ("transition", "changed", "a:PING:0") not in risk  # unchanged


# -- the step's arrows ----------------------------------------------------------------------------------
def test_a_compound_entry_carries_only_the_instances_no_deeper_entry_takes(tmp_path: Path, delivery: dict) -> None:
    step_file = tmp_path / "v2_to_v3.py"
    step_file.write_text(textwrap.dedent("""\
        STATES = {"submitted": "submitted", "offered": "offered", "preparing": "preparing",
                  "dispatching": "dispatching", "courier_assigned": "courier_assigned",
                  "courier_first": "courier_first", "en_route": "en_route", "delivering": "delivering",
                  "delivered": "delivered", "canceled": "canceled"}
        """))
    step = load_step(step_file, "delivery")
    # as Store.count gives them: a compound state counts every instance inside it
    counts = {"courier_first": 7, "finding_courier": 4, "en_route": 3, "offered": 2}
    arrows = {(a.old, a.new): a.instances for a in step_arrows(step, delivery[2], delivery[3], counts).arrows}
    assert arrows[("courier_first", "courier_first")] == 4  # finding_courier's, not 7 on top of en_route's 3
    assert arrows[("en_route", "en_route")] == 3
    assert step_arrows(step, delivery[2], delivery[3], counts).instances == 9
    dot = render_graphviz.render_migration_dot(delivery[2], delivery[3], step, counts=counts)
    assert 'taillabel=4' in dot and 'taillabel=7' not in dot


def test_new_states_no_arrow_reaches(delivery: dict, step23: Any) -> None:
    assert step_arrows(step23, delivery[2], delivery[3]).unreached == ("ready", "restaurant_delivering")
    step12 = load_step(REPO / "migrations/delivery/v1_to_v2.py", "delivery")
    unreached = step_arrows(step12, delivery[1], delivery[2]).unreached
    assert "courier_first" in unreached and "finding_courier" in unreached and "offered" not in unreached


@functools.cache
def _v2_v3() -> tuple[statechart.Machine, statechart.Machine, Any]:
    return (statechart.load(DELIVERY / "v2.yaml"), statechart.load(DELIVERY / "v3.yaml"),
            load_step(REPO / "migrations/delivery/v2_to_v3.py", "delivery"))


@given(st.dictionaries(st.sampled_from(["submitted", "offered", "preparing", "dispatching", "courier_assigned",
                                        "finding_courier", "en_route", "purchasing", "delivering", "delivered",
                                        "canceled"]), st.integers(0, 50)))
def test_every_stored_instance_takes_exactly_one_arrow(leaf_counts: dict[str, int]) -> None:
    old, new, step = _v2_v3()
    inside = sum(n for s, n in leaf_counts.items() if s in ("finding_courier", "en_route", "purchasing"))
    counts = {**leaf_counts, "courier_first": inside}  # the aggregate a store reports
    arrows = step_arrows(step, old, new, counts)
    assert sum(a.instances or 0 for a in arrows.arrows) == sum(leaf_counts.values()) == arrows.instances


# -- the page -------------------------------------------------------------------------------------------
def test_the_page_lists_every_change_and_needs_nothing_from_the_network(delivery: dict, step23: Any) -> None:
    review = build_review(delivery[2], delivery[3], step23, walks=20)
    page = review_html(review)
    for change in review.changes:
        assert f'id="{change.anchor}"' in page
    assert "<script" not in page.lower() and "@import" not in page and "url(" not in page
    assert not re.search(r'(?:src|href)\s*=\s*"(?:https?:)?//', page)
    assert "<!DOCTYPE svg" not in page and "<?xml" not in page
    assert page.count("<svg") == 2
    assert "def map_data(instance)" in page  # the step's source, shown, not run by the page
    assert "all 10 configurations" in page and "20 random walks" in page
    assert 'id="unreached"' in page and "<code>ready</code>" in page


def test_marks_follow_the_change_list(delivery: dict, step23: Any) -> None:
    marks = change_marks(build_review(delivery[2], delivery[3], step23, walks=0))
    assert marks.added >= {"ready", "restaurant_delivering", "ready:always:0"}
    assert set(marks.changed) == {"preparing:FOOD_READY:0", "preparing:after 20m:0"}
    dot = render_graphviz.render_dot(delivery[3], changes=marks)
    assert re.search(r'ready \[.*class="state added"', dot)
    lines = [line for line in dot.splitlines() if "preparing -> ready" in line]
    assert len(lines) == 2
    assert all('class="transition changed"' in line and f'color="{render_graphviz.CHANGED}"' in line for line in lines)


def test_removed_states_and_transitions_are_ghosted_where_they_were(delivery: dict, tmp_path: Path) -> None:
    # reviewed backwards: v2 -> v1 removes courier_first (with its children) and offered
    step_file = tmp_path / "v2_to_v3.py"
    step_file.write_text("def map_state(instance):\n    return ['submitted']\n")
    review = build_review(delivery[2], delivery[1], load_step(step_file, "delivery"), walks=0)
    dot = render_graphviz.render_dot(delivery[1], changes=change_marks(review))
    assert re.search(r'ghost__courier_first \[.*class="state removed"', dot)
    assert "ghost__finding_courier" not in dot  # inside the ghost of its removed parent
    assert re.search(r'submitted -> ghost__offered \[.*class="transition removed"', dot)
    svg = render_graphviz.render_svg(dot)
    assert 'class="node state removed"' in svg and 'class="edge transition removed"' in svg


def test_machine_text_is_escaped_on_the_page(tmp_path: Path) -> None:
    hostile = '<script>alert(1)</script>'
    old = _machine(tmp_path, "v1.yaml", "machine: x\nversion: 1\nstates:\n  a: {on: {GO: b}}\n  b: {type: final}\n")
    new = _machine(tmp_path, "v2.yaml", f"machine: x\nversion: 2\ndescription: '{hostile}'\nstates:\n"
                   "  a: {on: {GO: b}}\n  b: {type: final}\n")
    step_file = tmp_path / "v1_to_v2.py"
    step_file.write_text("STATES = {'a': 'a', 'b': 'b'}\n")
    page = review_html(build_review(old, new, load_step(step_file, "x"), walks=0))
    assert hostile not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# -- the CLI ----------------------------------------------------------------------------------------------
def _populate(store: Store) -> dict[str, int]:
    """Delivery v2 instances spread over its states; returns how many are where."""
    plans = {"offered": [], "preparing": ["RESTAURANT_ACCEPTED"], "courier_assigned":
             ["RESTAURANT_ACCEPTED", "FOOD_READY", ("COURIER_ACCEPTED", {"courier": "c1"})],
             "en_route": [("COURIER_ACCEPTED", {"courier": "c2"})], "finding_courier": []}
    spread = {"offered": 3, "preparing": 2, "courier_assigned": 1, "en_route": 2, "finding_courier": 1}
    n = 0
    for state, how_many in spread.items():
        for _ in range(how_many):
            n += 1
            store.create("delivery", {"order_id": f"o{n}", "partner": state not in ("en_route", "finding_courier")},
                         id=f"d{n}", version=2)
            for event in plans[state]:
                name, data = (event, None) if isinstance(event, str) else event
                store.send(f"d{n}", name, data)
    return spread


def test_cli_review_counts_the_stored_instances_on_each_arrow(store_url: str, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    store = Store.open(store_url)
    try:
        store.register(DELIVERY / "v2.yaml", DELIVERY / "v3.yaml")
        spread = _populate(store)
    finally:
        store.close()
    out_file = tmp_path / "review.html"
    code, out, err = run_cli(capsys, "review", "delivery", "--from", "2", "--store", store_url, "-o", str(out_file),
                         "--machines", str(REPO / "machines"), "--migrations", str(REPO / "migrations"),
                         "--walks", "10")
    assert (code, err) == (0, "")
    assert out.startswith(f"wrote {out_file}: 8 changes (2 risky or needing a mapping), step check ok")
    page = out_file.read_text()
    assert f"{sum(spread.values())} stored instances of v2" in page
    rows = dict(re.findall(r"<tr><td><code>(\w+)</code></td><td><code>\w+</code></td><td>(\d+)</td></tr>", page))
    assert rows["offered"] == "3" and rows["preparing"] == "2" and rows["courier_first"] == "3"
    assert "secret" not in page


@pytest.mark.parametrize("argv, message", [
    (["--from", "7"], "no machines/delivery/v7.yaml (versions of delivery: v1, v2, v3)"),
    (["--migrations", "{tmp}"], "no migration step {tmp}/delivery/v2_to_v3.py: write it"),
    (["--store", "nosuch://x"], "unsupported store URL 'nosuch://x'"),
])
def test_cli_user_errors_are_one_line_without_a_traceback(argv: list[str], message: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, out, err = run_cli(capsys, "review", "delivery", "-o", str(tmp_path / "r.html"), *argv)
    assert code == 1 and "Traceback" not in err
    assert message.replace("{tmp}", str(tmp_path)) in err
    assert not (tmp_path / "r.html").exists()


def test_cli_review_refuses_a_step_that_skips_a_version(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    code, _, err = run_cli(capsys, "review", "delivery", "--from", "1", "--to", "3", "-o", str(tmp_path / "r.html"))
    assert code == 2 and "--from 1 --to 2" in err


# -- in a real browser -----------------------------------------------------------------------------------
def _rgb(colour: str) -> str:
    colour = colour.lstrip("#")
    return "rgba({}, {}, {}, 1)".format(*(int(colour[i:i + 2], 16) for i in (0, 2, 4)))


def test_the_page_in_headless_chromium_lists_and_colours_every_change(tmp_path: Path, delivery: dict,
                                                                      step23: Any) -> None:
    counts = {"offered": 3, "preparing": 2, "courier_first": 3, "finding_courier": 1, "en_route": 2}
    review = build_review(delivery[2], delivery[3], step23, counts=counts, walks=10)
    page = tmp_path / "review.html"
    page.write_text(review_html(review), encoding="utf-8")
    from selenium.webdriver.common.by import By

    with chromium(1400, 1000) as browser:
        browser.get(page.as_uri())
        assert browser.title == "Review delivery: v2 \u2192 v3"
        colour = {"added": _rgb(render_graphviz.ADDED), "changed": _rgb(render_graphviz.CHANGED),
                  "removed": _rgb(render_graphviz.REMOVED)}
        for change in review.changes:  # listed, with its risk badge and its mark coloured
            row = browser.find_element(By.ID, change.anchor)
            assert row.is_displayed()
            mark = row.find_element(By.CSS_SELECTOR, ".mark")
            assert mark.text == change.change and mark.value_of_css_property("color") == colour[change.change]
            badge = row.find_element(By.CSS_SELECTOR, ".risk")
            fg, bg = RISK_COLOURS[change.risk]
            assert badge.text == change.risk and badge.value_of_css_property("background-color") == _rgb(bg)
        drawing = browser.find_element(By.ID, "version-drawing")
        for state in ("ready", "restaurant_delivering"):  # added states: green outline and fill in the SVG
            shape = drawing.find_element(By.CSS_SELECTOR, f'g[id="state:{state}"] path, g[id="state:{state}"] polygon')
            assert shape.get_attribute("stroke") == render_graphviz.ADDED
            assert shape.get_attribute("fill") == render_graphviz.ADDED_FILL
        changed = drawing.find_elements(By.CSS_SELECTOR, "g.edge.transition.changed path")
        assert len(changed) == 2 and all(p.get_attribute("stroke") == render_graphviz.CHANGED for p in changed)
        added = drawing.find_elements(By.CSS_SELECTOR, "g.edge.transition.added path")
        assert len(added) == 3 and all(p.get_attribute("stroke") == render_graphviz.ADDED for p in added)
        assert drawing.size["width"] > 600 and drawing.size["height"] > 300  # laid out, not collapsed
        unreached = browser.find_element(By.ID, "unreached").text
        assert "ready" in unreached and "restaurant_delivering" in unreached
        assert browser.find_element(By.ID, "stored-total").text.startswith("8 stored instances of v2")
        assert browser.find_element(By.ID, "check-configurations").value_of_css_property("color") == _rgb("#1a7f37")
        shot = Path(os.environ.get("STATECHART_SCREENSHOTS", tmp_path)) / "review.png"
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 20_000


def test_timers_compiled_from_after_are_not_reported_as_changed_exit_actions(delivery: dict) -> None:
    # v1's `submitted` had `after: 10m` (a compiled timer-cancel exit action); v2's has none
    changes = classify_changes(delivery[1], delivery[2])
    assert not [c for c in changes if (c.element, c.subject, c.change) == ("state", "submitted", "changed")]
    assert ("transition", "removed", "submitted:after 10m:0") in {(c.element, c.change, c.subject) for c in changes}
