"""Regenerate the diagrams of docs/diagrams/ from the machines and migrations of this repository.

Run from anywhere: ``python scripts/render_docs.py`` (needs Graphviz's ``dot``).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import statechart  # noqa: E402
from statechart.migrate.chain import load_step  # noqa: E402
from statechart.render import render_dot, render_file, render_migration_dot  # noqa: E402

OUT = REPO / "docs" / "diagrams"


def main() -> int:
    machines = REPO / "machines"
    written = [
        render_file(render_dot(statechart.load(machines / "order/v2.yaml")), OUT / "order.svg"),
        render_file(render_dot(statechart.load(machines / "delivery/v3.yaml")), OUT / "delivery_v3.svg"),
        render_file(render_dot(statechart.load(machines / "onboarding/v2.yaml")), OUT / "onboarding.svg"),
        render_file(render_migration_dot(statechart.load(machines / "delivery/v1.yaml"),
                                         statechart.load(machines / "delivery/v2.yaml"),
                                         load_step(REPO / "migrations/delivery/v1_to_v2.py", "delivery")),
                    OUT / "delivery_v1_to_v2.svg"),
    ]
    for path in written:
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
