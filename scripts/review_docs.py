"""Make docs/diagrams/review.png: the review page of delivery v2 -> v3 against a populated store,
screenshotted in a real headless Chromium.

Run from anywhere: ``python scripts/review_docs.py`` (needs Graphviz's ``dot``, Debian's
``chromium`` and ``chromium-driver``, and selenium from the ``test`` extra). It creates delivery
v2 instances in a throwaway SQLite store, spread over the states as a morning of orders would
be, runs ``statechart review delivery --from 2 --store ...``, and saves the top of the page.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from statechart.cli import main as statechart_main  # noqa: E402
from statechart.store import Store  # noqa: E402

OUT = REPO / "docs" / "diagrams" / "review.png"
OUT_STEP = REPO / "docs" / "diagrams" / "review_step.png"  # the step section, with the stored counts

#: Where the instances stop: state -> (how many, the events that take a new order there).
SPREAD: dict[str, tuple[int, list[tuple[str, dict | None]]]] = {
    "offered": (14, []),
    "preparing": (23, [("RESTAURANT_ACCEPTED", None)]),
    "dispatching": (6, [("RESTAURANT_ACCEPTED", None), ("FOOD_READY", None)]),
    "courier_assigned": (9, [("RESTAURANT_ACCEPTED", None), ("FOOD_READY", None),
                             ("COURIER_ACCEPTED", {"courier": "c-7"})]),
    "finding_courier": (5, []),
    "en_route": (7, [("COURIER_ACCEPTED", {"courier": "c-3"})]),
    "purchasing": (4, [("COURIER_ACCEPTED", {"courier": "c-5"}), ("ARRIVED_AT_RESTAURANT", None)]),
    "delivered": (31, [("RESTAURANT_ACCEPTED", None), ("FOOD_READY", None), ("COURIER_ACCEPTED", {"courier": "c-1"}),
                       ("PICKED_UP", None), ("DELIVERED", None)]),
    "canceled": (8, [("CUSTOMER_CANCELED", None)]),
}
COURIER_FIRST = {"finding_courier", "en_route", "purchasing"}


def populate(url: str, seed: int = 16) -> int:
    """Delivery v2 instances spread over :data:`SPREAD` (order shuffled); returns how many."""
    plan = [state for state, (count, _) in SPREAD.items() for _ in range(count)]
    random.Random(seed).shuffle(plan)
    store = Store.open(url)
    try:
        store.register(REPO / "machines/delivery/v2.yaml", REPO / "machines/delivery/v3.yaml")
        for number, state in enumerate(plan, 1):
            instance_id = f"order-{number:04d}"
            store.create("delivery", {"order_id": instance_id, "partner": state not in COURIER_FIRST},
                         id=instance_id, version=2)
            for event, data in SPREAD[state][1]:
                store.send(instance_id, event, data)
    finally:
        store.close()
    return len(plan)


def main() -> int:
    from browser import chromium

    with tempfile.TemporaryDirectory() as folder:
        # run where a project would: machines/ and migrations/ beside app.db, so the page names them so
        os.chdir(folder)
        for name in ("machines", "migrations"):
            Path(name).symlink_to(REPO / name)
        url = "sqlite:///app.db"
        total = populate(url)
        page = Path(folder) / "review.html"
        code = statechart_main(["review", "delivery", "--from", "2", "--store", url, "-o", str(page)])
        if code:
            return code
        with chromium(1280, 1500) as browser:
            browser.get(page.as_uri())
            OUT.parent.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(OUT))
            browser.execute_script("document.getElementById('step').scrollIntoView()")
            browser.save_screenshot(str(OUT_STEP))
    print(f"wrote {OUT.relative_to(REPO)} and {OUT_STEP.relative_to(REPO)} ({total} stored instances of delivery v2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
