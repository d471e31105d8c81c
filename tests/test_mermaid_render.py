"""Mermaid output checked by Mermaid itself: every machine's ``stateDiagram-v2`` is rendered by
mermaid-cli (``mmdc``, from npm) in Debian's headless Chromium, and must produce an SVG that shows
every state and every transition label.

mmdc is found at STATECHART_TEST_MMDC (``.ci/run`` installs it there, with Puppeteer's own browser
download skipped) or on PATH. Without it or Chromium the test fails in CI and skips elsewhere.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import statechart
from statechart.model import ROOT, StateKind
from statechart.render import render_mermaid

from browser import ARGUMENTS, CHROMIUM

REPO = Path(__file__).resolve().parent.parent
MACHINE_FILES = sorted((REPO / "machines").glob("*/v*.yaml"))


def _decoded(label: str) -> str:
    """A label as Mermaid shows it: its entity codes (``#lt;``, ``#59;``) read back."""
    named = {"lt": "<", "gt": ">", "amp": "&"}
    return re.sub(r"#(\w+);", lambda m: named.get(m.group(1)) or chr(int(m.group(1))), label)


def _mmdc() -> str:
    found = os.environ.get("STATECHART_TEST_MMDC") or shutil.which("mmdc")
    problem = None
    if not found or not Path(found).exists():
        problem = "mermaid-cli (mmdc) is not installed (npm install @mermaid-js/mermaid-cli; see .ci/run)"
    elif not Path(CHROMIUM).exists():
        problem = f"{CHROMIUM} is not installed (apt-get install chromium)"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem + "; CI must check the Mermaid output")
        pytest.skip(problem)
    return str(found)


def test_mermaid_renders_every_machine_with_all_its_states_and_labels(tmp_path: Path) -> None:
    mmdc = _mmdc()
    config = tmp_path / "puppeteer.json"
    config.write_text(json.dumps({"executablePath": CHROMIUM, "args": [a for a in ARGUMENTS
                                                                       if not a.startswith("--headless")]}))
    machines = [statechart.load(path) for path in MACHINE_FILES]
    charts = tmp_path / "charts.md"  # one document, one browser start for all the charts
    charts.write_text("\n".join(f"```mermaid\n{render_mermaid(m)}\n```\n" for m in machines), encoding="utf-8")
    completed = subprocess.run([mmdc, "-p", str(config), "-i", str(charts), "-o", str(tmp_path / "out.md")],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    for number, machine in enumerate(machines, 1):
        svg = (tmp_path / f"out-{number}.svg").read_text(encoding="utf-8")
        texts = {html.unescape(text) for text in re.findall(r">([^<>]+)<", svg)}  # every run of text
        for state in machine.model.states.values():
            if state.id != ROOT and state.kind is not StateKind.HISTORY:
                assert state.id in texts, (machine.name, machine.version, state.id)
        for line in render_mermaid(machine).splitlines():
            label = re.match(r"\s*\S+ --> \S+ : (.+)$", line)
            for part in label.group(1).split("<br/>") if label else ():  # a state's self-loops share one
                assert _decoded(part) in texts, (machine.name, machine.version, part)
