"""``statechart demo``: a populated store, metrics, a migration and diagrams to look at (see
:mod:`statechart.demo`, which does the work)."""

from __future__ import annotations

import click

from ..demo import run_demo
from .migrations import Progress

__all__ = ["demo_command"]


@click.command("demo")
@click.option("--folder", metavar="DIR", type=click.Path(file_okay=False),
              help="Where to put the store and the diagrams (default: ./statechart-demo, or a new temporary "
                   "folder when that exists).")
@click.option("--instances", default=3000, show_default=True, type=click.IntRange(1, 1_000_000),
              help="How many instances to create.")
@click.option("--seed", default=2024, show_default=True, type=int, help="Seed of the random lifecycles.")
def demo_command(folder: str | None, instances: int, seed: int) -> None:
    """Fill a fresh SQLite store with realistic instances, show their metrics, migrate them to the
    latest versions, and render diagrams; then say what to open and try next.

    \b
    Example:
      statechart demo
      statechart demo --folder /tmp/sc-demo --instances 10000
    """
    run_demo(folder, instances, click.echo, progress=Progress, seed=seed)
