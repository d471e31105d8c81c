"""Commands for moving running instances to a new machine version.

``statechart diff`` and ``statechart makemigration`` help write a step, ``statechart migrations
check`` proves it before anything runs, ``statechart migrate`` runs it over a store, and
``statechart migrations status`` says where a store stands (``--check`` for deploy pipelines).

Machines are read from ``machines/<name>/v<N>.yaml`` and steps from ``migrations/<name>/``
in the current directory; ``--machines DIR`` and ``--migrations DIR`` point elsewhere.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import click

from .loading import allow_python_option, read_only_policy
from .machine_files import explicit_folder, load_machine_file, machine_versions, machines_option, migrations_option
from ..migrate.chain import TODO, MigrationError, Step, load_chain
from ..migrate.check import DEFAULT_LIMIT, check_step, random_walk_check
from ..migrate.diff import diff_machines, rename_candidates
from ..migrate.runner import MigrationSummary, migrate, plan, status
from ..migrate.skeleton import skeleton
from ..store.inputs import MAX_LIMIT, MAX_VERSION
from .store import dump, opened, table, store_options

__all__ = ["makemigration_command", "migrations_group", "diff_command", "migrate_command"]

#: How many failure reasons and dry-run changes a summary prints (``--json`` has them all).
SHOWN = 10


def _is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal (the progress bar is drawn only there; tests replace this)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _chain(name: str, migrations_dir: str) -> list[Step]:
    explicit_folder("migrations_dir", migrations_dir)
    return load_chain(name, migrations_dir)


# -- diff ---------------------------------------------------------------------------------------------------
@click.command("diff")
@click.argument("old_file", metavar="OLD", type=click.Path(exists=True, dir_okay=False))
@click.argument("new_file", metavar="NEW", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@allow_python_option
def diff_command(old_file: str, new_file: str, as_json: bool, allow_python: bool) -> None:
    """What changed between two machine files: states, transitions and data keys added (+),
    removed (-) and changed (~), and removed states that look renamed (?).

    Exits 0 whatever the difference; 1 only when a file does not load.

    \b
    Example:
      statechart diff machines/delivery/v2.yaml machines/delivery/v3.yaml
    """
    policy = read_only_policy(allow_python)
    old, new = load_machine_file(Path(old_file), policy), load_machine_file(Path(new_file), policy)
    difference = diff_machines(old, new)
    renames = rename_candidates(old, new)
    if as_json:
        dump({"old": {"file": old_file, "machine": old.name, "version": old.version},
               "new": {"file": new_file, "machine": new.name, "version": new.version},
               "states_added": list(difference.states_added), "states_removed": list(difference.states_removed),
               "states_changed": [{"state": s, "change": why} for s, why in difference.states_changed],
               "transitions_added": list(difference.transitions_added),
               "transitions_removed": list(difference.transitions_removed),
               "transitions_changed": [{"transition": t, "change": why}
                                       for t, why in difference.transitions_changed],
               "data_added": list(difference.data_added), "data_removed": list(difference.data_removed),
               "renamed": renames})
        return
    click.echo(f"{old_file} ({old.name} v{old.version}) -> {new_file} ({new.name} v{new.version})")
    colours = {"+": "green", "-": "red", "~": "yellow"}
    lines = difference.lines()
    for line in lines:
        click.echo(click.style(line, fg=colours.get(line[0])))
    for before, after in renames.items():
        click.echo(click.style(f"? state {before} looks renamed to {after}", fg="cyan"))
    if not lines:
        click.echo("no difference in states, transitions or data")


# -- makemigration ------------------------------------------------------------------------------------------
@click.command("makemigration")
@click.argument("name", metavar="NAME")
@click.option("--force", is_flag=True, help="Write over an existing step file.")
@machines_option
@migrations_option
@allow_python_option
def makemigration_command(name: str, force: bool, machines_dir: str, migrations_dir: str, allow_python: bool) -> None:
    """Write the first draft of the step between the two newest versions of machine NAME.

    Unchanged states map to themselves; states that look renamed are proposed; removed states
    are "TODO", which `statechart migrations check` refuses until a person decides. Review
    every line of the file it writes.

    \b
    Example:
      statechart makemigration delivery        # writes migrations/delivery/v2_to_v3.py
    """
    versions = machine_versions(machines_dir, name)
    if len(versions) < 2:
        raise MigrationError(f"{name} has one version (v{next(iter(versions))}): add "
                             f"{Path(machines_dir) / name}/v{next(iter(versions)) + 1}.yaml first")
    newest, previous = list(versions)[-1], list(versions)[-2]
    if newest != previous + 1:
        raise MigrationError(f"the two newest versions of {name} are v{previous} and v{newest}; a step goes from "
                             f"one version to the next, so {Path(machines_dir) / name}/v{previous + 1}.yaml is missing")
    target = Path(migrations_dir) / name / f"v{previous}_to_v{newest}.py"
    if target.exists() and not force:
        raise MigrationError(f"{target} exists; review and edit it, or pass --force to write a new draft over it")
    policy = read_only_policy(allow_python)
    old, new = load_machine_file(versions[previous], policy), load_machine_file(versions[newest], policy)
    text = skeleton(old, new)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")

    difference = diff_machines(old, new)
    renames = rename_candidates(old, new)
    kept = [s for s, state in old.states.items() if s in new.states and state.kind.value != "history"]
    undecided = [s for s in difference.states_removed if s not in renames and old.states[s].kind.value != "history"]
    click.echo(f"wrote {target} ({name} v{previous} -> v{newest})")
    click.echo(f"  {len(kept)} state(s) map to themselves")
    for line in text.splitlines():
        match = re.match(r"\s+'([^']+)': '([^']+)',\s+# (v\d+ leaves it at once .*)", line)
        if match:
            click.echo(f"  check      {match.group(1)}: {match.group(3)}")
    for before, after in renames.items():
        click.echo(f"  proposed   {before} -> {after} (looks renamed; confirm it)")
    for state in undecided:
        click.echo(f"  TODO       {state}: removed in v{newest}; decide where its instances go")
    for key in difference.data_added:
        click.echo(f"  TODO       data {key!r}: new in v{newest}; derive it from the old data if you can")
    for key in difference.data_removed:
        click.echo(f"  dropped    data {key!r}: gone in v{newest}")
    todos = len(undecided) + len(difference.data_added)
    if undecided:
        click.echo(f"{todos} TODO(s) remain; `statechart migrations check {name}` fails until the "
                   f"{len(undecided)} state(s) marked {TODO!r} are decided")
    else:
        click.echo(f"{todos} TODO(s) remain; review the file, then run `statechart migrations check {name}`")


# -- migrations check / status ------------------------------------------------------------------------------
@click.group("migrations")
def migrations_group() -> None:
    """Write, prove and run migration steps, and see where a store stands.

    Every migration command lives here; ``statechart diff``, ``statechart makemigration`` and
    ``statechart migrate`` are the same commands under shorter names.

    \b
    Example:
      statechart migrations diff machines/delivery/v2.yaml machines/delivery/v3.yaml
      statechart migrations makemigration delivery
      statechart migrations check delivery --walks 500
      statechart migrations migrate delivery --store sqlite:///app.db
      statechart migrations status delivery --store postgresql://app@db/app --check
    """


migrations_group.add_command(diff_command)
migrations_group.add_command(makemigration_command)


def _finding_document(finding: Any) -> dict[str, Any]:
    return {"configuration": list(finding.configuration), "history": {h: list(v) for h, v in finding.history},
            "reason": finding.reason}


@migrations_group.command("check")
@click.argument("name", metavar="NAME")
@click.option("--walks", type=click.IntRange(min=0), default=200, show_default=True,
              help="Random walks per step: drive an old instance at random, migrate it, keep driving the new one.")
@click.option("--limit", type=click.IntRange(min=1), default=DEFAULT_LIMIT, show_default=True,
              help="Enumerate at most this many configurations; larger charts are sampled.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random walks and of sampling.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@machines_option
@migrations_option
def migrations_check_command(name: str, walks: int, limit: int, seed: int, as_json: bool, machines_dir: str,
                             migrations_dir: str) -> None:
    """Check every step of machine NAME against its machine versions; exit 1 on any finding.

    Every configuration an old instance can rest in (with the history it may hold) is pushed
    through the step and must land on a legal, resting configuration of the new version;
    charts too large to enumerate are sampled, and the report says so. Then random walks
    migrate real instances mid-run and keep running them on the new version.

    \b
    Example:
      statechart migrations check delivery
      statechart migrations check delivery --walks 1000 --json
    """
    versions = machine_versions(machines_dir, name)
    chain = _chain(name, migrations_dir)
    problems: list[str] = []
    have = {s.from_version for s in chain}
    for version in versions:
        if version + 1 in versions and version not in have:
            problems.append(f"no step from v{version} to v{version + 1}: write "
                            f"{Path(migrations_dir) / name}/v{version}_to_v{version + 1}.py "
                            f"(`statechart makemigration {name}` drafts it)")
    reports = []
    for step in chain:
        missing = [v for v in (step.from_version, step.to_version) if v not in versions]
        if missing:
            problems.append(f"{step.path}: cannot be checked, {Path(machines_dir) / name}/v{missing[0]}.yaml "
                            f"is missing")
            continue
        old, new = load_machine_file(versions[step.from_version]), load_machine_file(versions[step.to_version])
        report = check_step(step, old, new, limit=limit, seed=seed)
        walk_problems = random_walk_check(step, old, new, walks=walks, seed=seed) if walks else []
        reports.append((step, report, walk_problems))
    ok = not problems and all(r.ok and not w for _, r, w in reports)
    if as_json:
        dump({"machine": name, "ok": ok, "problems": problems, "steps": [
            {"step": step.name, "file": str(step.path), "from_version": step.from_version,
             "to_version": step.to_version, "configurations": report.configurations,
             "exhaustive": report.exhaustive, "findings": [_finding_document(f) for f in report.findings],
             "walks": walks, "walk_problems": walk_problems} for step, report, walk_problems in reports]})
        if not ok:
            raise click.exceptions.Exit(1)
        return
    fail, good = click.style("FAIL", fg="red", bold=True), click.style("ok  ", fg="green")
    for problem in problems:
        click.echo(f"{fail} {problem}")
    if not chain and not problems:
        click.echo(f"{name} has no migration steps in {Path(migrations_dir) / name}/ and none is needed "
                   f"(versions: {', '.join(f'v{v}' for v in versions)})")
    for step, report, walk_problems in reports:
        click.echo(click.style(step.name, bold=True) + f"  ({step.path})")
        how = (f"all {report.configurations} configurations (exhaustive)" if report.exhaustive else
               f"{report.configurations} sampled configurations (too many to enumerate all)")
        if report.ok:
            click.echo(f"  {good} {how}: each maps to a legal resting configuration of v{step.to_version}")
        else:
            click.echo(f"  {fail} {len(report.findings)} of {how} cannot be migrated:")
            for finding in report.findings:
                click.echo(f"         {finding}")
        if not walks:
            click.echo("  skip random walks (--walks 0)")
        elif walk_problems:
            click.echo(f"  {fail} {len(walk_problems)} of {walks} random walks failed:")
            for problem in walk_problems[:SHOWN]:
                click.echo(f"         {problem}")
            if len(walk_problems) > SHOWN:
                click.echo(f"         ... and {len(walk_problems) - SHOWN} more")
        else:
            click.echo(f"  {good} {walks} random walks: migrated mid-run, v{step.to_version} kept running legally")
    if reports or problems:
        failing = sum(1 for _, r, w in reports if not r.ok or w)
        click.echo(f"{len(reports)} step(s) checked, {failing} with findings"
                   + (f", {len(problems)} chain problem(s)" if problems else ""))
    if not ok:
        raise click.exceptions.Exit(1)


@migrations_group.command("status")
@click.argument("name", metavar="NAME")
@click.option("--check", "check_current", is_flag=True,
              help="Exit 1 while any instance is below the latest version (for deploy pipelines).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@store_options
@migrations_option
def migrations_status_command(name: str, check_current: bool, as_json: bool, store_url: str, machines_dir: str,
                              migrations_dir: str) -> None:
    """Where the stored instances of machine NAME stand: instances per version and state, the
    chain of steps, and the steps still pending.

    \b
    Example:
      statechart migrations status delivery
      statechart migrations status delivery --check     # in a deploy pipeline
    """
    explicit_folder("migrations_dir", migrations_dir)
    with opened(store_url, machines_dir) as store:
        found = status(store, name, migrations_dir)
    latest, behind = found["latest"], found["behind"]
    if as_json:
        dump({**found, "versions": {str(v): n for v, n in found["versions"].items()},
               "states": [{"version": v, "state": s, "instances": n} for v, s, n in found["states"]],
               "current": behind == 0})
    else:
        click.echo(click.style(name, bold=True) + f": latest version v{latest}" if latest else
                   click.style(name, bold=True) + ": no version registered and no instance stored")
        chain = load_chain(name, migrations_dir)
        if chain:
            path = " -> ".join([f"v{chain[0].from_version}"] + [f"v{s.to_version}" for s in chain])
            click.echo(f"chain: {path}  ({len(chain)} step(s) in {Path(migrations_dir) / name}/)")
        else:
            click.echo(f"chain: no steps in {Path(migrations_dir) / name}/")
        click.echo(click.style("instances", bold=True))
        table(("VERSION", "INSTANCES", ""),
               [(f"v{v}", n, "current" if v == latest else (f"{latest - v} version(s) behind" if v < latest
                                                               else "newer than the latest registered"))
                for v, n in found["versions"].items()], right=(1,))
        click.echo(click.style("states", bold=True))
        table(("VERSION", "STATE", "INSTANCES"), [(f"v{v}", s, n) for v, s, n in found["states"]], right=(2,))
        if behind:
            click.echo(f"pending: {', '.join(found['pending_steps']) or '(no step)'}; {behind} instance(s) below "
                       f"v{latest}: run `statechart migrate {name}`")
        else:
            click.echo(f"up to date: no instance is below v{latest}" if latest else "up to date")
    if check_current and behind:
        if not as_json:
            click.echo(f"{behind} instance(s) of {name} are below v{latest}", err=True)
        raise click.exceptions.Exit(1)


# -- migrate ------------------------------------------------------------------------------------------------
class Progress:
    """A click progress bar on stderr, drawn only on a terminal, with the rate and ETA."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None
        self.started = time.perf_counter()
        self.stream = sys.stderr

    def __call__(self, done: int, total: int) -> None:
        if not _is_terminal(self.stream):
            return
        if self.bar is None:
            self.bar = click.progressbar(length=max(total, 1), label=self.label, file=self.stream, show_eta=True,
                                         show_percent=True, show_pos=True, item_show_func=self._rate)
            self.bar.__enter__()
        self.bar.update(max(0, done - self.bar.pos), done)

    def _rate(self, done: int | None) -> str:
        elapsed = time.perf_counter() - self.started
        return f"{done / elapsed:.0f} instances/s" if done and elapsed > 0 else ""

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _summary_document(summary: MigrationSummary) -> dict[str, Any]:
    return {"run_id": summary.run_id, "machine": summary.machine, "to_version": summary.to_version,
            "dry_run": summary.dry_run, "migrated": summary.migrated, "already_current": summary.already_current,
            "failed": summary.failed, "seconds": summary.seconds, "instances_per_second": summary.rate,
            "failures": [{"id": i, "reason": r} for i, r in summary.failures],
            "parked": list(summary.parked),
            "changes": [{"id": i, "from": a, "to": b} for i, a, b in summary.changes]}


@click.command("migrate")
@click.argument("name", metavar="NAME")
@click.option("--to", "to_version", type=click.IntRange(1, MAX_VERSION), metavar="N",
              help="Target version (default: the latest in machines/NAME/).")
@click.option("--batch-size", type=click.IntRange(1, MAX_LIMIT), default=1000, show_default=True,
              help="Instances per transaction; the run's cursor is saved with each batch.")
@click.option("--max-rate", type=click.FloatRange(min=0, min_open=True), metavar="N",
              help="At most N instances per second (throttle beside live traffic).")
@click.option("--dry-run", is_flag=True, help="Map every instance and report what would change; write nothing.")
@click.option("--fail-fast", is_flag=True, help="Stop after the first batch with a failing instance.")
@click.option("--plan", "show_plan", is_flag=True, help="Print the steps a run would take; map nothing.")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Continue an unfinished run from its cursor, or start a new run over all instances.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary (or plan) as JSON.")
@store_options
@migrations_option
def migrate_command(name: str, to_version: int | None, batch_size: int, max_rate: float | None, dry_run: bool,
                    fail_fast: bool, show_plan: bool, resume: bool, as_json: bool, store_url: str, machines_dir: str,
                    migrations_dir: str) -> None:
    """Move the stored instances of machine NAME to the latest version (or --to N) through the
    chain of steps: in batches, resumable (run it again after a crash), beside live traffic.

    An instance whose mapping fails stays at its old version and is reported; exit 1 if any did.

    \b
    Example:
      statechart migrate delivery --plan
      statechart migrate delivery --dry-run
      statechart migrate delivery --batch-size 500 --max-rate 2000 --store postgresql://app@db/app
    """
    explicit_folder("migrations_dir", migrations_dir)
    with opened(store_url, machines_dir) as store:
        if to_version is not None:
            store.machine(name, to_version)  # an unknown target fails here, naming what is registered
        if show_plan:
            target, steps = plan(store, name, to_version, migrations_dir)
            counts = {v: store.count(name, version=v) for v in range(min([s.from_version for s in steps],
                                                                          default=target), target + 1)}
            _print_plan(name, target, steps, counts, as_json)
            return
        progress = Progress(f"{'checking' if dry_run else 'migrating'} {name}")
        try:
            summary = migrate(store, name, to_version, migrations=migrations_dir, batch_size=batch_size,
                              max_rate=max_rate, dry_run=dry_run, fail_fast=fail_fast, resume=resume,
                              progress=progress)
        finally:
            progress.close()
    if as_json:
        dump(_summary_document(summary))
    else:
        _print_summary(summary, fail_fast)
    if summary.failed:
        raise click.exceptions.Exit(1)


def _print_plan(name: str, target: int, steps: list[Step], counts: dict[int, int], as_json: bool) -> None:
    if as_json:
        dump({"machine": name, "to_version": target,
               "steps": [{"step": s.name, "file": str(s.path), "from_version": s.from_version,
                          "to_version": s.to_version, "instances": counts.get(s.from_version, 0),
                          "timers": s.timers, "states": "STATES" if s.states is not None else "map_state",
                          "map_data": s.map_data is not None} for s in steps],
               "below_target": sum(n for v, n in counts.items() if v < target),
               "already_current": counts.get(target, 0)})
        return
    if not steps:
        click.echo(f"nothing to do: no instance of {name} is below v{target}")
        return
    below = sum(n for v, n in counts.items() if v < target)
    click.echo(f"plan: {below} instance(s) of {name} to v{target}, {counts.get(target, 0)} already there")
    for number, step in enumerate(steps, 1):
        how = ("STATES table" if step.states is not None else "map_state") + (
            " + map_data" if step.map_data is not None else "") + f", timers {step.timers}"
        click.echo(f"  {number}. {step.name}  {step.path}  ({counts.get(step.from_version, 0)} at "
                   f"v{step.from_version}; {how})")
    click.echo("nothing was run (--plan)")


def _print_summary(summary: MigrationSummary, fail_fast: bool) -> None:
    name, target = summary.machine, summary.to_version
    if summary.dry_run:
        click.echo(f"dry run: would migrate {summary.migrated} instance(s) of {name} to v{target}; "
                   f"nothing was written ({summary.seconds:.2f}s)")
    else:
        click.echo(f"migrated {summary.migrated} instance(s) of {name} to v{target} in {summary.seconds:.2f}s "
                   f"({summary.rate:.1f} instances/s)")
    click.echo(f"  already current  {summary.already_current}")
    click.echo(f"  {'would fail' if summary.dry_run else 'failed':<16} {summary.failed}")
    for instance_id, reason in summary.failures[:SHOWN]:
        click.echo(f"    {instance_id}: {reason}")
    if len(summary.failures) > SHOWN:
        click.echo(f"    ... and {len(summary.failures) - SHOWN} more" + (
            f" (table statechart_migration_failures, run {summary.run_id})" if summary.run_id is not None else ""))
    if summary.parked:
        click.echo(f"  {'skipped, parked':<16} {len(summary.parked)}: "
                   + ", ".join(summary.parked[:SHOWN]) + (" ..." if len(summary.parked) > SHOWN else ""))
        click.echo("    earlier runs failed these too often; fix the step, then `statechart instances retry ID` "
                   "and run the migration again (`statechart instances list --failed` lists them)")
    if summary.dry_run and summary.changes:
        click.echo("  would change:")
        for instance_id, before, after in summary.changes[:SHOWN]:
            click.echo(f"    {instance_id}: {before} -> {after}")
        if summary.migrated > SHOWN:
            click.echo(f"    ... and {summary.migrated - SHOWN} more")
    if summary.failed and not summary.dry_run:
        click.echo("failed instances stay at their old version; fix the step and run the migration again"
                   + (" (stopped early: --fail-fast)" if fail_fast else ""))



migrations_group.add_command(migrate_command)
