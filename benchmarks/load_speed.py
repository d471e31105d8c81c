"""How long ``statechart.loads`` takes on generated charts of 1,000 to 5,000 states.

A generated chart is a root of compound groups, ten states each: every state has an entry
assign, a guarded transition to the next state, an unguarded one back to the group's first,
and every group a transition out to the next group; expressions repeat as they do in real
machines. Two baselines are timed in the same rounds (the machine is shared and noisy):
libyaml composing the same text (the floor of reading it at all) and PyYAML's pure-Python
``SafeLoader`` (what loading cost before libyaml was used). Each figure is the median of the
process's CPU time (``time.process_time``), which other processes on a busy machine disturb
far less than wall-clock time; loading is single-threaded, so the two agree on a quiet one.

    python benchmarks/load_speed.py [--runs 7] [--states 1000 2000 5000]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from typing import Callable

import yaml

import statechart


def generated_chart(states: int, per_group: int = 10, name: str = "generated") -> str:
    """The YAML text of a chart with ``states`` atomic states in groups of ``per_group``."""
    groups = max(1, states // per_group)
    lines = [f"machine: {name}", "version: 1", "data:", "  count: 0", "  total: 0", "states:"]
    for g in range(groups):
        lines += [f"  group{g}:", "    states:"]
        for s in range(per_group):
            following = f"group{g}_s{s + 1}" if s + 1 < per_group else f"group{g}_s0"
            lines += [
                f"      group{g}_s{s}:",
                "        entry:",
                "          - assign: {count: \"count + 1\"}",
                "        on:",
                f"          NEXT: {{target: {following}, cond: \"count < 100\"}}",
                f"          RESET: {{target: group{g}_s0, actions: [{{assign: {{total: \"total + count\"}}}}]}}",
            ]
        lines += ["    on:", f"      LEAVE: group{(g + 1) % groups}"]
    return "\n".join(lines) + "\n"


def timed(function: Callable[[], object]) -> float:
    started = time.process_time()
    function()
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--states", type=int, nargs="+", default=[1000, 2000, 5000])
    args = parser.parse_args()
    c_loader = getattr(yaml, "CSafeLoader", None)
    print(f"statechart.loads on generated charts, CPU time, median of {args.runs} runs "
          f"(Python {sys.version.split()[0]}, libyaml {'yes' if yaml.__with_libyaml__ else 'no'}):")
    previous: tuple[int, float] | None = None
    for count in args.states:
        text = generated_chart(count)
        # Each load gets a machine name of its own, so compiled expressions cached by an earlier
        # round are not reused: every figure is a first load (repeats inside a chart still hit).
        names = (f"generated{n}" for n in itertools.count())
        cases: dict[str, Callable[[], object]] = {
            "statechart.loads": lambda: statechart.loads(text.replace("generated", next(names), 1), "generated.yaml"),
            "yaml.compose, pure-Python SafeLoader": lambda: yaml.compose(text, Loader=yaml.SafeLoader),
        }
        if c_loader is not None:
            cases["yaml.compose, libyaml CSafeLoader"] = lambda: yaml.compose(text, Loader=c_loader)
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, function in cases.items():
                samples[name].append(timed(function))
        medians = {name: statistics.median(values) for name, values in samples.items()}
        floor = medians.get("yaml.compose, libyaml CSafeLoader")
        print(f"  {count} states ({len(text) // 1024} KiB of YAML):")
        for name, median in medians.items():
            ratio = f"  {median / floor:5.1f}x libyaml compose" if floor else ""
            print(f"    {name:<40} {median * 1000:8.1f} ms{ratio}")
        load = medians["statechart.loads"]
        print(f"    per state: {load / count * 1e6:.1f} us", end="")
        if previous is not None:
            growth = (load / previous[1]) / (count / previous[0])
            print(f"; time grew {growth:.2f}x as fast as the state count since {previous[0]}", end="")
        print()
        previous = (count, load)


if __name__ == "__main__":
    main()
