"""The review page of a new machine version: one self-contained HTML file a reviewer reads top
to bottom before a version (and its migration step) ships.

    review = build_review(old, new, step, counts=None)   # a frozen value: everything the page shows
    html = review_html(review)                           # inline SVG and CSS; opens offline

Sections: the new version drawn with the changes marked (added green, removed red and ghosted
where they were, changed amber); the change list classified by risk for in-flight instances
(:mod:`statechart.migrate.risk`); the migration step (its table or ``map_state`` source, its
``map_data`` source, what ``migrations check`` proved, the arrows with the instances that take
each and the new states no arrow reaches); the analysis findings of both versions with the new
ones highlighted; the shortest event paths to the new states.

Everything from a machine file (names, descriptions, guards, action texts) is data and is
escaped; the page has no script, no external font, style sheet or image: nothing is fetched
when it is opened. The step file is host code and is shown as source, never run here (the
check runs its functions, as ``migrations check`` does).
"""

from __future__ import annotations

import html
import inspect
import re
from typing import Any, Mapping

import attrs

from ..analysis import Finding as AnalysisFinding
from ..analysis import Path as EventPath
from ..analysis import check_machine, shortest_paths
from ..machine import Machine
from ..migrate.arrows import StepArrows, step_arrows
from ..migrate.chain import Step
from ..migrate.check import CheckReport, check_step, random_walk_check
from ..migrate.risk import RISKS, Change, classify_changes
from ..model import ROOT, StateKind
from .graphviz import (ADDED, ADDED_FILL, CHANGED, CHANGED_FILL, REMOVED, REMOVED_FILL, UNREACHED, ChangeMarks,
                       render_dot, render_migration_dot, render_svg)

__all__ = ["Review", "build_review", "change_marks", "review_html", "RISK_COLOURS"]

#: Badge colours of the risk classes (text, background).
RISK_COLOURS = {"needs mapping": ("#ffffff", "#c0392b"), "risky": ("#ffffff", "#d9480f"),
                "producers": ("#1f2328", "#ffd8a8"), "with care": ("#1f2328", "#ffec99"),
                "safe": ("#ffffff", "#2f9e44")}
_MARK_COLOURS = {"added": ADDED, "removed": REMOVED, "changed": CHANGED}


@attrs.frozen
class Review:
    """Everything the review page shows, computed once (the page itself is only formatting)."""

    old: Machine
    new: Machine
    step: Step
    changes: tuple[Change, ...]
    arrows: StepArrows
    check: CheckReport
    walks: int
    walk_problems: tuple[str, ...]
    findings_old: tuple[AnalysisFinding, ...]
    findings_new: tuple[AnalysisFinding, ...]
    paths: Mapping[str, EventPath | None]  # added state -> shortest path (None: unreachable)
    counts: Mapping[str, int] | None  # stored instances of the old version per state, when a store was read
    source: str | None = None  # where the counts came from, for the page (never a password)

    @property
    def new_findings(self) -> tuple[AnalysisFinding, ...]:
        """Findings of the new version that the old one did not have (same kind and subject)."""
        seen = {(f.kind, f.subject) for f in self.findings_old}
        return tuple(f for f in self.findings_new if (f.kind, f.subject) not in seen)


def build_review(old: Machine, new: Machine, step: Step, *, counts: Mapping[str, int] | None = None,
                 walks: int = 100, seed: int = 0, source: str | None = None) -> Review:
    """Compare ``old`` and ``new``, prove ``step`` and analyse both versions.

    ``counts`` (old state id -> stored instances in it, as ``Store.count(state=...)`` gives them)
    put numbers on the migration arrows; ``walks`` random walks migrate real instances mid-run."""
    changes = tuple(classify_changes(old, new, step))
    report = check_step(step, old, new, seed=seed)
    problems = tuple(random_walk_check(step, old, new, walks=walks, seed=seed)) if walks else ()
    added = [s for s in new.model.states.values()
             if s.id not in old.model.states and s.id != ROOT and s.kind is not StateKind.HISTORY]
    found = shortest_paths(new) if added else {}
    return Review(old, new, step, changes, step_arrows(step, old, new, counts), report, walks, problems,
                  tuple(check_machine(old)), tuple(check_machine(new)), {s.id: found.get(s.id) for s in added},
                  dict(counts) if counts is not None else None, source)


def change_marks(review: Review) -> ChangeMarks:
    """The marks of the drawing: what the change list says, per state and transition."""
    added: set[str] = set()
    changed: dict[str, str] = {}
    for change in review.changes:
        if change.element in ("state", "transition", "timer") and change.change == "added":
            added.add(change.subject)
        elif change.element in ("state", "transition", "timer", "entry") and change.change == "changed":
            changed[change.subject] = "; ".join(filter(None, (changed.get(change.subject), change.why)))
    old, new = review.old.model, review.new.model
    removed_states = tuple(s for s in old.states.values()
                           if s.id not in new.states and s.id != ROOT and s.kind is not StateKind.HISTORY)
    new_ids = {t.id for s in new.states.values() for t in s.transitions}
    removed_transitions = tuple(t for s in old.states.values() for t in s.transitions if t.id not in new_ids)
    return ChangeMarks(frozenset(added), changed, removed_states, removed_transitions)


# -- HTML --------------------------------------------------------------------------------------------------
def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


_PROLOG = re.compile(r"^.*?(?=<svg)", re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)


def _inline(svg: str, element_id: str) -> str:
    """An SVG document as an element of the page: no XML prolog, no DOCTYPE (which names a DTD on
    the web), no comments; an id to link to."""
    svg = _COMMENT.sub("", _PROLOG.sub("", svg, count=1))
    return svg.replace("<svg ", f'<svg id="{element_id}" role="img" ', 1)


_CSS = f"""
:root {{ color-scheme: light; }}
body {{ font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: #1f2328;
       margin: 0 auto; max-width: 1200px; padding: 24px 32px 64px; background: #ffffff; }}
h1 {{ font-size: 26px; margin: 0 0 4px; }} h2 {{ font-size: 20px; margin: 36px 0 8px; border-bottom: 1px solid #d0d7de;
       padding-bottom: 4px; }} h3 {{ font-size: 16px; margin: 20px 0 6px; }}
.lede {{ color: #57606a; margin: 0 0 12px; }}
.summary span {{ display: inline-block; margin: 0 8px 6px 0; }}
.risk {{ display: inline-block; border-radius: 10px; padding: 1px 9px; font-size: 12px; font-weight: 600;
        white-space: nowrap; }}
{''.join(f'.risk-{k.replace(" ", "-")} .risk, span.risk.risk-{k.replace(" ", "-")} {{ color: {fg}; background: {bg}; }}'
         + chr(10) for k, (fg, bg) in RISK_COLOURS.items())}
table {{ border-collapse: collapse; width: 100%; margin: 6px 0 12px; }}
th, td {{ text-align: left; vertical-align: top; padding: 5px 8px; border-bottom: 1px solid #e5e7eb; }}
th {{ font-size: 13px; color: #57606a; font-weight: 600; }}
code, pre {{ font-family: "DejaVu Sans Mono", ui-monospace, Menlo, Consolas, monospace; font-size: 13px; }}
pre {{ background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; padding: 10px 12px; overflow-x: auto; }}
.mark {{ font-weight: 700; }}
.added .mark {{ color: {ADDED}; }} .removed .mark {{ color: {REMOVED}; }} .changed .mark {{ color: {CHANGED}; }}
tr.added {{ background: {ADDED_FILL}; }} tr.removed {{ background: {REMOVED_FILL}; }} tr.changed {{ background: {CHANGED_FILL}; }}
.drawing {{ overflow-x: auto; border: 1px solid #d0d7de; border-radius: 6px; padding: 8px; background: #fff; }}
.drawing svg {{ max-width: 100%; height: auto; }}
.legend {{ display: flex; flex-wrap: wrap; gap: 14px; margin: 8px 0; font-size: 13px; }}
.swatch {{ display: inline-block; width: 14px; height: 14px; border: 2px solid; border-radius: 3px;
          vertical-align: -2px; margin-right: 5px; }}
.swatch.added {{ border-color: {ADDED}; background: {ADDED_FILL}; }}
.swatch.removed {{ border-color: {REMOVED}; background: {REMOVED_FILL}; border-style: dashed; }}
.swatch.changed {{ border-color: {CHANGED}; background: {CHANGED_FILL}; }}
.swatch.unreached {{ border-color: {UNREACHED}; background: #f3efff; border-style: dashed; }}
.ok {{ color: #1a7f37; font-weight: 600; }} .fail {{ color: {REMOVED}; font-weight: 600; }}
tr.new-finding {{ background: #fff1c2; }} tr.new-finding td:first-child::before {{ content: "new "; font-weight: 700;
  color: {CHANGED}; }}
.muted {{ color: #57606a; }}
"""


def _legend() -> str:
    items = [("added", "added state or transition"), ("removed", "removed (ghosted where it was)"),
             ("changed", "changed: target, guard, actions, timer or entry actions")]
    return ('<div class="legend" id="legend">' + "".join(
        f'<span><span class="swatch {cls}"></span>{_e(text)}</span>' for cls, text in items) + "</div>")


def _summary(review: Review) -> str:
    counts = {risk: sum(1 for c in review.changes if c.risk == risk) for risk in RISKS}
    badges = "".join(f'<span class="risk-{risk.replace(" ", "-")}"><span class="risk">{_e(risk)}</span> {n}</span>'
                     for risk, n in counts.items() if n)
    return f'<p class="summary">{len(review.changes)} changes: {badges or "none"}</p>'


def _change_list(review: Review) -> str:
    if not review.changes:
        return '<p class="muted">The two versions have the same states, transitions, events and data.</p>'
    rows = []
    for change in review.changes:
        risk = change.risk.replace(" ", "-")
        rows.append(f'<tr id="{_e(change.anchor)}" class="change {change.change} risk-{risk}" '
                    f'data-element="{_e(change.element)}" data-subject="{_e(change.subject)}">'
                    f'<td><span class="risk">{_e(change.risk)}</span></td>'
                    f'<td class="mark">{_e(change.change)}</td><td>{_e(change.element)}</td>'
                    f'<td><code>{_e(change.subject)}</code></td><td>{_e(change.why)}</td></tr>')
    return ('<table id="change-list"><thead><tr><th>risk</th><th>change</th><th>what</th><th>id</th>'
            '<th>why it matters for in-flight instances</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>")


def _source(function: Any) -> str:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return f"# the source of {getattr(function, '__name__', 'this function')} is not available"


def _step_section(review: Review, migration_svg: str) -> str:
    step, arrows = review.step, review.arrows
    parts = [f'<p>Step file <code>{_e(step.path)}</code>; pending timers: <code>TIMERS = {_e(repr(step.timers))}</code>.</p>']
    if step.states is not None:
        rows = "".join(
            f'<tr><td><code>{_e(a.old)}</code></td><td><code>{_e(a.new)}</code>'
            f'{"" if a.known else " <span class=fail>(not a state of the new version)</span>"}</td>'
            + (f'<td>{a.instances}</td>' if a.instances is not None else "") + "</tr>" for a in arrows.arrows)
        head = "<th>old state</th><th>new state</th>" + ("<th>stored instances</th>" if review.counts is not None else "")
        parts.append(f'<h3>The state table (<code>STATES</code>)</h3><table id="state-table"><thead><tr>{head}</tr>'
                     f"</thead><tbody>{rows}</tbody></table>")
    else:
        parts.append("<h3><code>map_state</code></h3><pre><code>" + _e(_source(step.map_state)) + "</code></pre>")
        if review.counts is not None:
            rows = "".join(f"<tr><td><code>{_e(a.old)}</code></td><td>{a.instances}</td></tr>" for a in arrows.arrows)
            parts.append('<table id="state-table"><thead><tr><th>old state (same id in the new version)</th>'
                         f"<th>stored instances</th></tr></thead><tbody>{rows}</tbody></table>")
    parts.append("<h3><code>map_data</code></h3>" + (
        "<pre><code>" + _e(_source(step.map_data)) + "</code></pre>" if step.map_data is not None else
        '<p class="muted">No <code>map_data</code>: every instance keeps its data as it is.</p>'))
    report = review.check
    how = (f"all {report.configurations} configurations an old instance can rest in (exhaustive, guards ignored)"
           if report.exhaustive else f"{report.configurations} sampled configurations (too many to enumerate)")
    proof = [f'<li class="{"ok" if report.ok else "fail"}" id="check-configurations">'
             + (f"{_e(how)}: each maps to a legal resting configuration of v{review.new.version}" if report.ok else
                f"{len(report.findings)} of {_e(how)} cannot be migrated") + "</li>"]
    proof += [f'<li class="fail"><code>{_e(finding)}</code></li>' for finding in report.findings[:20]]
    if review.walks:
        proof.append(f'<li class="{"fail" if review.walk_problems else "ok"}" id="check-walks">'
                     + (f"{len(review.walk_problems)} of {review.walks} random walks failed" if review.walk_problems
                        else f"{review.walks} random walks: old instances driven at random, migrated mid-run, and the "
                             f"new version kept running legally") + "</li>")
        proof += [f'<li class="fail"><code>{_e(p)}</code></li>' for p in review.walk_problems[:10]]
    parts.append("<h3>What <code>migrations check</code> proves</h3><ul>" + "".join(proof) + "</ul>")
    if review.counts is not None:
        where = f" in {_e(review.source)}" if review.source else ""
        parts.append(f'<p id="stored-total">{arrows.instances} stored instance{"s" if arrows.instances != 1 else ""} '
                     f"of v{review.old.version}{where}; each arrow below carries the ones it moves.</p>")
    unreached = ", ".join(f"<code>{_e(s)}</code>" for s in arrows.unreached)
    parts.append(f'<p id="unreached">New states no arrow reaches (only new instances get there): '
                 f'{unreached or "none"}.</p>' if unreached else '<p id="unreached">Every new state is reached by an arrow.</p>')
    unmapped = ", ".join(f"<code>{_e(s)}</code>" for s in sorted(arrows.unmapped))
    if unmapped:
        parts.append(f'<p class="fail" id="unmapped">Old states nothing maps: {unmapped}.</p>')
    parts.append(f'<div class="drawing" id="migration-drawing">{migration_svg}</div>')
    return "".join(parts)


def _findings_table(findings: tuple[AnalysisFinding, ...], new: set[tuple[str, str]] | None, element_id: str) -> str:
    if not findings:
        return f'<p class="ok" id="{element_id}">No findings.</p>'
    rows = "".join(
        f'<tr class="{"new-finding" if new is not None and (f.kind, f.subject) in new else "finding"}">'
        f"<td><code>{_e(f.kind)}</code></td><td>{_e(f.subject)}</td><td>{_e(f.message)}</td>"
        f"<td class=muted>{_e(f.location or '')}</td></tr>" for f in findings)
    return (f'<table id="{element_id}"><thead><tr><th>kind</th><th>subject</th><th>finding</th><th>where</th></tr>'
            f"</thead><tbody>{rows}</tbody></table>")


def _paths_section(review: Review) -> str:
    if not review.paths:
        return '<p class="muted">No new states.</p>'
    rows = []
    for state, path in review.paths.items():
        if path is None:
            rows.append(f'<tr><td><code>{_e(state)}</code></td><td class="fail">unreachable</td><td></td></tr>')
            continue
        events = " \u2192 ".join(f"<code>{_e(e)}</code>" for e in path) or '<span class="muted">(on start)</span>'
        notes = [f"when {_e(guard)}" for _, guard in path.guards]
        if path.transient:
            notes.append("passed through within a step")
        rows.append(f"<tr><td><code>{_e(state)}</code></td><td>{events}</td><td>{'; '.join(notes)}</td></tr>")
    return ('<table id="paths"><thead><tr><th>new state</th><th>shortest event path from the start</th>'
            "<th>guards on the way</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def review_html(review: Review) -> str:
    """The page as one HTML document (needs Graphviz's ``dot`` for the two drawings)."""
    old, new = review.old, review.new
    drawing = _inline(render_svg(render_dot(new, changes=change_marks(review))), "version-drawing")
    migration = _inline(render_svg(render_migration_dot(old, new, review.step, counts=review.counts)),
                        "migration-svg")
    new_keys = {(f.kind, f.subject) for f in review.new_findings}
    title = f"{new.name}: v{old.version} \u2192 v{new.version}"
    description = "".join(f'<p class="lede">v{m.version}: {_e(m.model.description)}</p>'
                          for m in (old, new) if m.model.description)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Review {_e(title)}</title>
<style>{_CSS}</style></head>
<body>
<h1>Review of {_e(title)}</h1>
{description}
{_summary(review)}
<h2 id="drawing">The new version, changes marked</h2>
{_legend()}
<div class="drawing">{drawing}</div>
<h2 id="changes">Changes by risk for in-flight instances</h2>
{_change_list(review)}
<h2 id="step">The migration step</h2>
{_step_section(review, migration)}
<h2 id="analysis">Analysis findings</h2>
<h3>v{new.version} <span class="muted">({len(review.new_findings)} new)</span></h3>
{_findings_table(review.findings_new, new_keys, "findings-new")}
<h3>v{old.version}</h3>
{_findings_table(review.findings_old, None, "findings-old")}
<h2 id="paths-to-new-states">Shortest event paths to the new states</h2>
{_paths_section(review)}
<p class="muted">Made by <code>statechart review {_e(new.name)} --from {old.version} --to {new.version}</code>.</p>
</body></html>
"""
