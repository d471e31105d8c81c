"""``statechart check``, ``statechart paths`` and ``statechart fuzz``: analysis for machine authors."""

from __future__ import annotations

import json

import click

from .loading import allow_python_option, read_only_policy
from ..machine import load

__all__ = ["check_command", "paths_command", "fuzz_command"]


@click.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the findings as a JSON list.")
@allow_python_option
def check_command(file: str, as_json: bool, allow_python: bool) -> None:
    """Find unreachable states, dead ends, traps, transitions that never fire, raised events
    nobody handles and parallel states that never finish. Exit 1 when anything is found.

    \b
    Example:
      statechart check machines/order/v2.yaml
    """
    from ..analysis import check_machine  # networkx: imported by the commands that use it

    machine = load(file, python=read_only_policy(allow_python))
    findings = check_machine(machine)
    if as_json:
        click.echo(json.dumps([f.to_dict() for f in findings], indent=2))
    else:
        for finding in findings:
            click.echo(str(finding))
        if not findings:
            click.echo(f"ok   {file}: no findings")
    if findings:
        raise click.exceptions.Exit(1)


@click.command("paths")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--to", "to", metavar="STATE", help="Only the path to this state.")
@click.option("--json", "as_json", is_flag=True, help="Print {state: {events, transitions, guards, transient}}.")
@allow_python_option
def paths_command(file: str, to: str | None, as_json: bool, allow_python: bool) -> None:
    """The shortest event sequence that reaches each state: a test plan (guards ignored, and
    listed when a path depends on them). ``after 2d`` means: advance the clock by two days.

    \b
    Example:
      statechart paths machines/order/v2.yaml --to shipped
    """
    from ..analysis import shortest_paths

    machine = load(file, python=read_only_policy(allow_python))
    try:
        paths = shortest_paths(machine, to)
    except KeyError as error:
        raise click.BadParameter(error.args[0], param_hint="--to") from None
    if to is not None and to not in paths:
        click.echo(f"{to}: unreachable", err=True)
        raise click.exceptions.Exit(1)
    if as_json:
        click.echo(json.dumps({state: path.to_dict() for state, path in paths.items()}, indent=2))
        return
    for state, path in paths.items():
        line = f"{state}: {' '.join(path) if path else '(start)'}"
        notes = []
        if path.guards:
            notes.append("if " + ", ".join(f"{g} ({t})" for t, g in path.guards))
        if path.transient:
            notes.append("passed through, never at rest")
        click.echo(line + (f"  [{'; '.join(notes)}]" if notes else ""))


@click.command("fuzz")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--examples", default=100, show_default=True, type=click.IntRange(1), help="How many sequences.")
@click.option("--seed", default=None, type=int, help="Seed for a reproducible run (default: derandomized).")
def fuzz_command(file: str, examples: int, seed: int | None) -> None:
    """Drive instances with random event sequences and clock advances; after each step the
    configuration must be legal and every invariant must hold. Prints the minimal failing
    sequence and exits 1 on failure.

    \b
    Example:
      statechart fuzz machines/order/v2.yaml --examples 500 --seed 1
    """
    try:
        from ..testing import run_property
    except ImportError as missing:
        raise click.ClickException(
            f"statechart fuzz needs hypothesis ({missing.name or missing} is not installed): "
            "pip install 'statechart[fuzz]'") from None
    machine = load(file)
    try:
        ran = run_property(machine, max_examples=examples, seed=seed)
    except AssertionError as failure:
        click.echo(click.style("FAIL ", fg="red", bold=True) + str(failure))
        raise click.exceptions.Exit(1)
    click.echo(f"ok   {file}: {ran} sequences, no illegal configuration or broken invariant")
