"""Events per second through the public ``Instance.send``.

The chart has three levels of nesting, a parallel state, shallow and deep history, a guard
and entry/exit ``assign`` actions. One cycle is START FASTER PAUSE RESUME FASTER SPLIT L R
JOIN STOP, which returns to where it started. As a baseline measured in the same run (the
machine is shared and noisy), the same events are looked up in a precomputed dict.

    python benchmarks/interpreter_speed.py [--cycles 20000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import statechart

CHART = """
machine: bench
version: 1
data: {count: 0, speed: 0}
states:
  operating:
    initial: idle
    entry: [{assign: {count: "count + 1"}}]
    exit: [{assign: {count: "count + 1"}}]
    on:
      PAUSE: paused
      SPLIT: dual
    states:
      hist: {type: history, history: shallow}
      deep: {type: history, history: deep}
      idle: {on: {START: running}}
      running:
        initial: slow
        entry: [{assign: {speed: "speed + 1"}}]
        on: {STOP: idle}
        states:
          slow: {on: {FASTER: {target: fast, cond: "speed < 10000000"}}}
          fast: {on: {FASTER: slow}}
  paused:
    on: {RESUME: operating.deep}
  dual:
    type: parallel
    on: {JOIN: operating.hist}
    states:
      left: {states: {l1: {on: {L: l2}}, l2: {}}}
      right: {states: {r1: {on: {R: r2}}, r2: {}}}
"""

CYCLE = ["START", "FASTER", "PAUSE", "RESUME", "FASTER", "SPLIT", "L", "R", "JOIN", "STOP"]


def run_statechart(cycles: int) -> float:
    machine = statechart.loads(CHART, "bench.yaml")
    instance = machine.start(clock=statechart.VirtualClock())
    send = instance.send
    for event in CYCLE:  # warm the caches: every configuration once
        send(event)
    events = CYCLE * cycles
    started = time.perf_counter()
    for event in events:
        send(event)
    elapsed = time.perf_counter() - started
    assert instance.configuration == frozenset({"operating", "idle"}), instance.configuration
    assert instance.data["count"] == 1 + 4 * (cycles + 1), instance.data
    return elapsed / len(events)


def run_dict_lookup(cycles: int) -> float:
    table = {("idle", "START"): "slow", ("slow", "FASTER"): "fast", ("fast", "PAUSE"): "paused",
             ("paused", "RESUME"): "fast", ("fast", "FASTER"): "slow", ("slow", "SPLIT"): "l1r1",
             ("l1r1", "L"): "l2r1", ("l2r1", "R"): "l2r2", ("l2r2", "JOIN"): "slow", ("slow", "STOP"): "idle"}
    state = "idle"
    events = CYCLE * cycles
    started = time.perf_counter()
    for event in events:
        state = table[(state, event)]
    elapsed = time.perf_counter() - started
    assert state == "idle"
    return elapsed / len(events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    ours, baseline = [], []
    for _ in range(args.runs):
        ours.append(run_statechart(args.cycles))
        baseline.append(run_dict_lookup(args.cycles))
    per_event = statistics.median(ours)
    per_lookup = statistics.median(baseline)
    print(f"events per run: {len(CYCLE) * args.cycles}, runs: {args.runs} (medians)")
    print(f"statechart Instance.send: {1 / per_event:,.0f} events/s, {per_event * 1e6:.2f} us/event")
    print(f"dict lookup baseline:     {1 / per_lookup:,.0f} lookups/s, {per_lookup * 1e6:.3f} us/lookup")
    print(f"ratio send / dict lookup: {per_event / per_lookup:.1f}x")


if __name__ == "__main__":
    main()
