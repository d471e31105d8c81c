"""Proving a migration step before anything runs.

Every configuration the old version can reach (with the history it may have stored) is
enumerated from the model, guards ignored so the set over-approximates what instances can be
in; each is pushed through the step and checked against the new version. Charts with too many
configurations to enumerate are sampled instead, and the report says so. A second, randomized
check drives real instances of the old version, migrates them, and keeps running the new one.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any, Iterable

import attrs

from ..clock import VirtualClock
from ..errors import StatechartError
from ..interpreter import plan_microstep
from ..machine import Machine
from ..model import ROOT, StateKind, Transition
from ..resting import passing_reason
from ..snapshot import Snapshot
from .apply import migrate_snapshot
from .chain import MigrationError, Step

__all__ = ["Finding", "CheckReport", "reachable", "check_step", "random_walk_check"]

DEFAULT_LIMIT = 20_000


@attrs.frozen
class Finding:
    configuration: tuple[str, ...]
    history: tuple[tuple[str, tuple[str, ...]], ...]
    reason: str

    def __str__(self) -> str:
        where = "{" + ", ".join(self.configuration) + "}"
        if self.history:
            where += " with history " + ", ".join(f"{h}={{{', '.join(v)}}}" for h, v in self.history)
        return f"{where}: {self.reason}"


@attrs.frozen
class CheckReport:
    step: str
    configurations: int
    exhaustive: bool
    findings: tuple[Finding, ...]
    walks: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings


def _key(history: dict[str, frozenset[str]]) -> frozenset:
    return frozenset(history.items())


def reachable(machine: Machine, limit: int = DEFAULT_LIMIT) -> tuple[list[tuple[frozenset[str], dict]], bool]:
    """(configuration, history) pairs an instance can be at rest in, reached by any transition with
    guards ignored; False when cut at ``limit``.

    A configuration an instance always leaves within the same step (an unconditional eventless
    transition is enabled, or a done event is raised that an unconditional transition takes) is
    passed through, never stored, so it is left out; from it only what the step can still do is
    followed. Guards being ignored, the set over-approximates what instances can be in."""
    engine = machine.engine
    start = plan_microstep(engine, frozenset(), (machine.model.states[ROOT].initial,), {})  # type: ignore[arg-type]
    first = (start.configuration, dict(start.history_updates))
    seen = {(first[0], _key(first[1]))}
    found = [first]
    queue = deque([first])
    exhaustive = True
    while queue and exhaustive:
        configuration, history = queue.popleft()
        passing = passing_reason(machine.model, configuration)
        for transition in _candidates(machine, configuration):
            if passing == "eventless" and transition.events:
                continue  # eventless transitions are taken before any event is looked at
            plan = plan_microstep(engine, configuration, (transition,), history)
            new_history = {**history, **dict(plan.history_updates)}
            state = (plan.configuration, _key(new_history))
            if state not in seen:
                if len(seen) >= limit:
                    exhaustive = False
                    break
                seen.add(state)
                found.append((plan.configuration, new_history))
                queue.append((plan.configuration, new_history))
    return [pair for pair in found if passing_reason(machine.model, pair[0]) is None], exhaustive


def _candidates(machine: Machine, configuration: frozenset[str]) -> Iterable[Transition]:
    states = machine.model.states
    for state_id in configuration:
        if states[state_id].kind is StateKind.FINAL and states[state_id].parent == ROOT:
            return  # a finished instance takes no more transitions
    for state_id in sorted(configuration, key=lambda s: states[s].order):
        yield from states[state_id].transitions


def check_step(step: Step, old: Machine, new: Machine, *, limit: int = DEFAULT_LIMIT, samples: int = 2000,
               seed: int = 0) -> CheckReport:
    """Push every reachable configuration of ``old`` through ``step`` and check it in ``new``."""
    pairs, exhaustive = reachable(old, limit)
    if not exhaustive:
        rng = random.Random(seed)
        pairs = rng.sample(pairs, min(samples, len(pairs)))
    findings = []
    data = old.start(clock=VirtualClock()).data
    for configuration, history in pairs:
        snapshot = Snapshot(old.name, old.version, old.definition_hash, configuration, history, data)
        try:
            migrate_snapshot(step, snapshot, old, new, "check")
        except MigrationError as error:
            findings.append(Finding(_ordered(old, configuration),
                                    tuple(sorted((h, _ordered(old, v)) for h, v in history.items())), str(error)))
    return CheckReport(step.name, len(pairs), exhaustive, tuple(findings))


def _ordered(machine: Machine, states: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(states, key=lambda s: machine.model.states[s].order))


def random_walk_check(step: Step, old: Machine, new: Machine, *, walks: int = 200, steps: int = 30,
                      seed: int = 0) -> list[str]:
    """Drive real old-version instances at random, migrate them, keep driving the new version.

    Returns the problems found (empty when every walk survived)."""
    rng = random.Random(seed)
    problems: list[str] = []
    old_events = _events(old)
    new_events = _events(new)
    for walk in range(walks):
        clock = VirtualClock()
        instance = old.start(clock=clock)
        trail: list[str] = []
        try:
            for _ in range(rng.randrange(steps)):
                if instance.done:
                    break
                _random_step(instance, old_events, rng, trail)
            migrated = migrate_snapshot(step, instance.snapshot(), old, new, f"walk-{walk}")
            continued = new.restore(migrated, clock=clock)
            problems_here = new.is_legal(continued.configuration)
            if problems_here:
                raise MigrationError("; ".join(problems_here))
            for _ in range(steps):
                if continued.done:
                    break
                _random_step(continued, new_events, rng, trail)
                illegal = new.is_legal(continued.configuration)
                if illegal:
                    raise MigrationError(f"after migrating, the new version reached an illegal configuration: "
                                         f"{'; '.join(illegal)}")
        except StatechartError as error:
            problems.append(f"walk {walk} ({' '.join(trail) or 'no events'}): {error}")
    return problems


def _events(machine: Machine) -> list[str]:
    names = sorted(e for e in machine.model.events if not e.startswith(("done.", "after.", "error")))
    return names or ["_"]


def _random_step(instance: Any, events: list[str], rng: random.Random, trail: list[str]) -> None:
    if instance.pending_sends and rng.random() < 0.3:
        trail.append("(timer)")
        instance.fast_forward(max_events=1)
        return
    event = rng.choice(events)
    trail.append(event)
    instance.send(event)  # guards or actions reading missing event data raise error.execution, not here
