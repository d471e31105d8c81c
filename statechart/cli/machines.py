"""``statechart validate`` and ``statechart run``: commands for authors of machine files."""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any, Iterable

import click

from .loading import allow_python_option, read_only_policy, src_options
from .options import parse_json_option
from ..clock import VirtualClock
from ..durations import parse_duration
from ..errors import LoadError, StatechartError
from ..instance import Instance, SendResult
from ..machine import Machine, load
from ..quoting import quote_repr

__all__ = ["validate_command", "run_command", "machine_files"]

#: An event as typed: its name, then optionally ``=`` or blanks, then JSON data.
_EVENT_LINE = re.compile(r"([^\s=]+)\s*(=|\s)?\s*(.*)", re.S)


def machine_files(paths: Iterable[str]) -> list[Path]:
    """Files named directly, and every ``*.yaml``/``*.yml`` under folders, in a stable order."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()))
        else:
            found.append(path)
    return found


def _summary(machine: Machine) -> str:
    states = machine.states
    transitions = sum(len(s.transitions) for s in states.values())
    return f"{machine.name} v{machine.version}: {len(states)} states, {transitions} transitions"


@click.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@allow_python_option
def validate_command(paths: tuple[str, ...], allow_python: bool) -> None:
    """Check machine files (or every YAML file under folders) and report every problem.

    \b
    Example:
      statechart validate machines/
      statechart validate machines/order/v2.yaml
    """
    files = machine_files(paths)
    if not files:
        raise click.UsageError("no machine files (*.yaml, *.yml) under the given paths")
    failures = 0
    for file in files:
        try:
            machine = load(file, python=read_only_policy(allow_python))
        except LoadError as error:
            failures += 1
            click.echo(click.style("FAIL ", fg="red", bold=True) + str(file))
            for problem in error.problems:
                click.echo(f"  {problem}")
            continue
        click.echo(click.style("ok   ", fg="green") + f"{file}  ({_summary(machine)})")
    if failures:
        click.echo(f"{failures} of {len(files)} machine file(s) failed")
        raise click.exceptions.Exit(1)


def _parse_event(text: str) -> tuple[str, Any]:
    """``NAME``, ``NAME=JSON`` or ``NAME JSON``: one syntax for ``--event``, the prompt and stdin."""
    match = _EVENT_LINE.fullmatch(text.strip())
    if match is None:
        raise click.BadParameter(f"{quote_repr(text)}: write NAME, NAME=JSON or NAME JSON")
    name, separator, payload = match.groups()
    if separator and not payload:
        raise click.BadParameter(f"{quote_repr(text)}: nothing after '=': write NAME or NAME=JSON")
    return name, parse_json_option(payload, what=f"the data of event {quote_repr(name)}") if payload else None


def _step_document(result: SendResult, label: str) -> dict[str, Any]:
    return {
        "event": label,
        "data": result.data,
        "handled": result.handled,
        "transitions": list(result.transitions),
        "trace": list(result.trace),
        "configuration": sorted(result.configuration_after),
        "effects": [{"event": e.event, "data": e.data} for e in result.effects],
        "logs": [{"label": label_, "value": value} for label_, value in result.logs],
        "errors": list(result.errors),
        "done": result.done,
    }


def _print_step(instance: Instance, result: SendResult, label: str) -> None:
    status = click.style("handled", fg="green") if result.handled else click.style("not handled", fg="yellow")
    if label == "(start)":
        status = ""
    click.echo(click.style(label, bold=True) + (f"  {status}" if status else ""))
    for line in result.trace:
        kind, _, what = line.partition(":")
        click.echo(f"  {kind:<10} {what}")
    for label_, value in result.logs:
        click.echo(f"  {'log':<10} {label_ + ': ' if label_ else ''}{value!r}")
    for effect in result.effects:
        click.echo(f"  {'emit':<10} {effect.event} {json.dumps(effect.data)}")
    for error in result.errors:
        click.echo(click.style(f"  {'error':<10} {error}", fg="red"))
    click.echo(f"  {'now in':<10} {', '.join(instance.active_leaves())}")


def _document(instance: Instance, steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "machine": instance.machine.name,
        "version": instance.machine.version,
        "configuration": sorted(instance.configuration),
        "data": instance.data,
        "done": instance.done,
        "pending_sends": [{"id": p.id, "event": p.event, "due": p.due} for p in instance.pending_sends],
        "steps": steps,
    }


@click.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--data", "data_text", metavar="JSON", help="Initial data (a JSON object) merged over the machine's.")
@click.option("--event", "-e", "events", multiple=True, metavar="NAME[=JSON]", help="An event to send; repeatable.")
@click.option("--fast-forward", is_flag=True, help="Then fire pending delayed sends in due order on a virtual clock.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of text.")
@click.option("--strict", is_flag=True, help="Fail on an event the machine does not handle.")
@click.option("--interactive", "-i", is_flag=True, help="Type events at a prompt (the default on a terminal "
              "when no --event is given).")
@click.option("--allow-python", is_flag=True, help="Let an SCXML document import the Python modules it names "
              "(sc:python). A YAML machine imports its project's modules without it.")
@src_options
def run_command(file: str, data_text: str | None, events: tuple[str, ...], fast_forward: bool, as_json: bool,
                strict: bool, interactive: bool, allow_python: bool, src_dir: str | None, max_src_bytes: int) -> None:
    """Start an instance of FILE, send events, and print each step and the final state.

    \b
    Example:
      statechart run machines/order/v2.yaml -e ADD='{"price": 5}' -e CHECKOUT -e AUTHORIZED --json
      statechart run machines/order/v2.yaml          # interactive on a terminal
    """
    data = parse_json_option(data_text, what="--data") if data_text else None
    if data is not None and not isinstance(data, dict):
        raise click.BadParameter("--data must be a JSON object")
    parsed = [_parse_event(e) for e in events]
    machine = load(file, python="project" if allow_python else None, src_dir=src_dir, max_src_bytes=max_src_bytes)
    instance = machine.start(data=data, clock=VirtualClock(), strict=strict)
    steps: list[dict[str, Any]] = []

    def record(result: SendResult, label: str) -> None:
        steps.append(_step_document(result, label))
        if not as_json:
            _print_step(instance, result, label)

    assert instance.initial_result is not None
    record(instance.initial_result, "(start)")
    for name, payload in parsed:
        record(instance.send(name, payload), name)
    if interactive or (not parsed and not as_json and _stdin_kind() == "terminal"):
        _interactive(instance, record)
    elif not parsed and _stdin_kind() == "piped":
        click.echo("note: standard input is not read without -i; pass -i to send the events it holds "
                   "(one per line: NAME, NAME=JSON or NAME JSON)", err=True)
    if fast_forward:
        for result in instance.fast_forward():
            record(result, f"{result.event} (delayed, t={instance.clock.now():g}s)")
    if as_json:
        click.echo(json.dumps(_document(instance, steps), indent=2, default=str))
    else:
        click.echo(click.style("final", bold=True) + f"  {', '.join(instance.active_leaves())}"
                   + ("  (done)" if instance.done else ""))
        click.echo(f"  data       {json.dumps(instance.data, default=str)}")
        for pending in instance.pending_sends:
            click.echo(f"  pending    {pending.event} at t={pending.due:g}s (id {pending.id})")


def _stdin_kind() -> str:
    """``terminal``, ``piped`` (a pipe or a file holding events) or ``none`` (closed, /dev/null)."""
    stream = sys.stdin
    if stream is None or stream.closed:
        return "none"
    try:
        if stream.isatty():
            return "terminal"
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError, AttributeError):  # a replaced stream without a descriptor
        return "none"
    return "piped" if stat.S_ISFIFO(mode) or stat.S_ISREG(mode) else "none"


def _interactive(instance: Instance, record: Any) -> None:
    """Events typed at a prompt, or read line by line from a pipe (then without the prompts)."""
    prompting = _stdin_kind() == "terminal"
    if prompting:
        click.echo("Type an event (NAME, NAME=JSON or NAME JSON), :advance 5m, :snapshot, :help or :quit.")
    while not instance.done:
        if prompting:
            click.echo(click.style("enabled: ", dim=True) + ", ".join(instance.enabled_events()))
        try:
            line = input("event> " if prompting else "").strip()
        except EOFError:
            if prompting:
                click.echo()
            return
        if not line or line.startswith("#"):
            continue
        if line in (":q", ":quit", ":exit"):
            return
        if line == ":help":
            click.echo("NAME, NAME=JSON or NAME JSON  send an event | :advance DURATION  move the clock | "
                       ":snapshot | :quit")
            continue
        if line == ":snapshot":
            click.echo(instance.snapshot().to_json())
            continue
        try:
            if line.startswith(":advance"):
                seconds = parse_duration(line.split(maxsplit=1)[1] if " " in line else "")
                for result in instance.advance(seconds):
                    record(result, f"{result.event} (delayed)")
                continue
            name, payload = _parse_event(line)
            record(instance.send(name, payload), name)
        except (ValueError, StatechartError, click.BadParameter) as error:
            message = error.format_message() if isinstance(error, click.BadParameter) else str(error)
            click.echo(click.style("error: ", fg="red") + message)
