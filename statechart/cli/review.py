"""``statechart review``: the review page of a new machine version, as one self-contained HTML file.

A thin layer: it finds the two versions and the step, reads the store's counts when asked, and
writes what :mod:`statechart.render.review` builds.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import click

from ..migrate.chain import MigrationError, load_step
from ..model import ROOT, StateKind
from .output import write_output
from .machine_files import load_machine_file, machine_versions, machines_option, migrations_option

__all__ = ["review_command"]


def _without_password(url: str) -> str:
    """The store URL as the page may show it: a password is never written into a file."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    user = f"{parts.username}:***@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}{host}{port}", parts.path, parts.query, parts.fragment))


@click.command("review")
@click.argument("name", metavar="NAME")
@click.option("--from", "from_version", type=click.IntRange(min=1), metavar="N",
              help="The version in production (default: the one before --to).")
@click.option("--to", "to_version", type=click.IntRange(min=1), metavar="N+1",
              help="The version under review (default: the newest, or --from + 1).")
@click.option("--store", "store_url", metavar="URL",
              help="Count the stored instances of the old version that take each arrow of the step.")
@click.option("--output", "-o", required=True, metavar="REVIEW.html", help="The page to write.")
@click.option("--walks", type=click.IntRange(min=0), default=100, show_default=True,
              help="Random walks of the step check (0 to skip).")
@machines_option
@migrations_option
def review_command(name: str, from_version: int | None, to_version: int | None, store_url: str | None, output: str,
                   walks: int, machines_dir: str, migrations_dir: str) -> None:
    """Write the review page of a new version of machine NAME: one HTML file, no network needed.

    The new version drawn with its changes marked, the changes classified by risk for
    in-flight instances, the migration step and what `migrations check` proves (with --store,
    how many stored instances take each arrow), and the analysis of both versions. Needs
    Graphviz's `dot` for the drawings.

    \b
    Example:
      statechart review delivery -o review.html
      statechart review delivery --from 2 --to 3 --store sqlite:///app.db -o review.html
    """
    from ..render.review import build_review, review_html

    if not output.lower().endswith((".html", ".htm")):
        raise click.BadParameter(f"{output!r}: the review page is HTML; name it REVIEW.html", param_hint="'-o'")
    versions = machine_versions(machines_dir, name)
    if to_version is None:
        to_version = from_version + 1 if from_version is not None else max(versions)
    if from_version is None:
        from_version = to_version - 1
    if to_version != from_version + 1:
        raise click.UsageError(f"a review covers one step, from a version to the next: --from {from_version} "
                               f"--to {from_version + 1}")
    for version in (from_version, to_version):
        if version not in versions:
            raise MigrationError(f"no {Path(machines_dir) / name}/v{version}.yaml (versions of {name}: "
                                 f"{', '.join(f'v{v}' for v in versions)})")
    step_file = Path(migrations_dir) / name / f"v{from_version}_to_v{to_version}.py"
    if not step_file.is_file():
        raise MigrationError(f"no migration step {step_file}: write it (`statechart makemigration {name}` "
                             "drafts it), then review")
    old, new = load_machine_file(versions[from_version]), load_machine_file(versions[to_version])
    step = load_step(step_file, name)
    counts = None
    if store_url:
        from .store import opened

        with opened(store_url, machines_dir, register=False) as store:
            store.register(old, new)
            counts = {s.id: store.count(name, version=from_version, state=s.id)
                      for s in old.model.states.values() if s.id != ROOT and s.kind is not StateKind.HISTORY}
    review = build_review(old, new, step, counts=counts, walks=walks,
                          source=_without_password(store_url) if store_url else None)
    page = review_html(review)
    write_output(output, page)
    risky = sum(1 for c in review.changes if c.risk in ("needs mapping", "risky"))
    click.echo(f"wrote {output}: {len(review.changes)} changes ({risky} risky or needing a mapping), "
               f"step check {'ok' if review.check.ok and not review.walk_problems else 'FAILED'}")
