"""``statechart render`` and ``statechart render-migration``: diagrams as SVG, PNG, PDF, DOT or Mermaid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .output import write_output
from .loading import allow_python_option, read_only_policy
from ..errors import StatechartError
from ..machine import load
from ..migrate.chain import load_step
from ..model import ROOT, StateKind
from ..render import render_dot, render_file, render_mermaid, render_migration_dot
from ..snapshot import Snapshot
from ..store.inputs import MAX_VERSION
from .store import opened

__all__ = ["render_command", "render_migration_command"]

FORMATS = (".svg", ".png", ".pdf", ".dot", ".gv", ".mmd")


def _check_output(output: str) -> str:
    suffix = Path(output).suffix.lower()
    if suffix not in FORMATS:
        raise click.BadParameter(f"{output!r}: the output must end in .svg, .png, .pdf, .dot or .mmd",
                                 param_hint="'-o'")
    return suffix


def _counts(store: Any, name: str, version: int, states: Any) -> dict[str, int]:
    return {s.id: store.count(name, version=version, state=s.id) for s in states.values()
            if s.id != ROOT and s.kind is not StateKind.HISTORY}


@click.command("render")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--output", "-o", required=True, metavar="OUT.svg|png|pdf|dot|mmd",
              help="The diagram file; its extension chooses the format.")
@click.option("--no-actions", is_flag=True, help="Leave entry/exit and transition actions out.")
@click.option("--snapshot", "snapshot_file", type=click.Path(exists=True, dir_okay=False), metavar="SNAPSHOT.json",
              help="Highlight the states of this snapshot and show its data.")
@click.option("--instance", "instance_id", metavar="ID", help="Highlight the states of this stored instance.")
@click.option("--counts", is_flag=True, help="Colour each state by how many stored instances are in it.")
@click.option("--focus", metavar="STATE", help="Draw only this state's subtree (its context collapsed).")
@click.option("--depth", type=click.IntRange(min=1), metavar="N", help="Draw nested states this many levels deep.")
@click.option("--store", "store_url", envvar="STATECHART_STORE", default="sqlite:///statechart.db",
              show_default=True, metavar="URL", help="The store for --instance and --counts.")
@click.option("--machines", "machines_dir", default="machines", show_default=True, metavar="DIR",
              help="Folder of machines/<name>/v<N>.yaml files to register (with --instance/--counts).")
@allow_python_option
def render_command(file: str, output: str, no_actions: bool, snapshot_file: str | None, instance_id: str | None,
                   counts: bool, focus: str | None, depth: int | None, store_url: str, machines_dir: str,
                   allow_python: bool) -> None:
    """Draw a machine as a diagram.

    .svg, .png and .pdf need Graphviz's `dot` program; .dot and .mmd (Mermaid) do not.

    \b
    Example:
      statechart render machines/order/v2.yaml -o order.svg
      statechart render machines/order/v2.yaml -o order.mmd
      statechart render machines/order/v2.yaml -o now.svg --instance order-1 --store sqlite:///app.db
      statechart render machines/order/v2.yaml -o heat.svg --counts --store sqlite:///app.db
      statechart render machines/order/v2.yaml -o part.svg --focus fulfillment --depth 1
    """
    suffix = _check_output(output)
    if snapshot_file and instance_id:
        raise click.UsageError("use --snapshot or --instance, not both")
    machine = load(file, python=read_only_policy(allow_python))
    if suffix == ".mmd":
        if snapshot_file or instance_id or counts or focus or depth:
            raise click.UsageError("Mermaid output (.mmd) shows the whole machine only: --snapshot, --instance, "
                                   "--counts, --focus and --depth need .svg, .png, .pdf or .dot")
        write_output(output, render_mermaid(machine, actions=not no_actions))
        click.echo(f"wrote {output}")
        return
    configuration = data = heat = None
    shown: dict[str, Any] = {}  # the instance drawn: its id, revision and pending timers
    if snapshot_file:
        try:
            snapshot = Snapshot.from_json(Path(snapshot_file).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            raise StatechartError(f"cannot read {snapshot_file}: {error}") from None
        configuration, data = snapshot.configuration, snapshot.data
        shown = {"pending": snapshot.pending_sends}
    if instance_id or counts:
        with opened(store_url, machines_dir, register=False) as store:
            store.register(machine)
            if instance_id:
                stored = store.load(instance_id)
                if (stored.machine, stored.version) != (machine.name, machine.version):
                    raise StatechartError(f"instance {instance_id} is a {stored.machine} v{stored.version}, "
                                          f"not a {machine.name} v{machine.version}")
                configuration, data = stored.configuration, stored.data
                shown = {"instance": stored.id, "revision": stored.revision, "pending": stored.pending_sends,
                         "now": store.clock.now()}
            if counts:
                heat = _counts(store, machine.name, machine.version, machine.model.states)
    text = render_dot(machine, actions=not no_actions, configuration=configuration, data=data, counts=heat,
                      focus=focus, depth=depth, **shown)
    render_file(text, output)
    click.echo(f"wrote {output}")


@click.command("render-migration")
@click.argument("name", metavar="NAME")
@click.argument("old_version", metavar="N", type=click.IntRange(1, MAX_VERSION))
@click.argument("new_version", metavar="N+1", type=click.IntRange(1, MAX_VERSION))
@click.option("--output", "-o", required=True, metavar="OUT.svg|png|pdf|dot",
              help="The diagram file; its extension chooses the format.")
@click.option("--store", "store_url", envvar="STATECHART_STORE", metavar="URL",
              help="Label each arrow with how many stored instances are in the old state.")
@click.option("--machines", "machines_dir", default="machines", show_default=True, metavar="DIR")
@click.option("--migrations", "migrations_dir", default="migrations", show_default=True, metavar="DIR")
@allow_python_option
def render_migration_command(name: str, old_version: int, new_version: int, output: str, store_url: str | None,
                             machines_dir: str, migrations_dir: str, allow_python: bool) -> None:
    """Draw one migration step: both versions side by side, the state mapping as arrows.

    Old states nothing maps are red. A step with map_state (code) shows only the states whose id
    is in both versions, as dashed arrows.

    \b
    Example:
      statechart render-migration delivery 1 2 -o delivery_v1_to_v2.svg
      statechart render-migration delivery 1 2 -o now.svg --store sqlite:///app.db
    """
    suffix = _check_output(output)
    if suffix == ".mmd":
        raise click.BadParameter("migrations are drawn with Graphviz: use .svg, .png, .pdf or .dot",
                                 param_hint="'-o'")
    if new_version != old_version + 1:
        raise click.UsageError(f"a step goes from one version to the next: {old_version} {old_version + 1}")
    folder = Path(machines_dir) / name
    files = []
    for version in (old_version, new_version):
        candidates = [folder / f"v{version}.yaml", folder / f"v{version}.yml"]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            raise StatechartError(f"no {folder / f'v{version}.yaml'}")
        files.append(found)
    step_file = Path(migrations_dir) / name / f"v{old_version}_to_v{new_version}.py"
    if not step_file.exists():
        raise StatechartError(f"no migration step {step_file}")
    policy = read_only_policy(allow_python)
    old, new = load(files[0], python=policy), load(files[1], python=policy)
    step = load_step(step_file, name)
    heat = None
    if store_url:
        with opened(store_url, machines_dir, register=False) as store:
            store.register(old, new)
            heat = {k: v for k, v in _counts(store, name, old_version, old.model.states).items() if v}
    render_file(render_migration_dot(old, new, step, counts=heat), output)
    click.echo(f"wrote {output}")

