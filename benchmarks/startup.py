"""How long the ``statechart`` command takes to start, against a bare interpreter.

A command that only prints its help or version should cost little more than Python itself:
the command table is static and each command imports its own module when it runs. The
baseline, ``python -c pass``, is timed in the same rounds (the machine is shared and noisy),
alternating with the commands, and each figure is the median of the rounds.

    python benchmarks/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                   check=True, cwd=ROOT)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    script = shutil.which("statechart") or str(Path(sys.executable).parent / "statechart")
    cases = {
        "python -c pass (baseline)": [sys.executable, "-c", "pass"],
        "python -c 'import statechart'": [sys.executable, "-c", "import statechart"],
        "statechart --help": [script, "--help"],
        "statechart --version": [script, "--version"],
        "statechart validate machines/order/v2.yaml": [script, "validate", "machines/order/v2.yaml"],
    }
    for argv in cases.values():  # warm the file cache and the bytecode
        timed(argv)
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.runs):
        for name, argv in cases.items():
            samples[name].append(timed(argv))
    baseline = statistics.median(samples["python -c pass (baseline)"])
    print(f"start-up, median of {args.runs} runs ({sys.version.split()[0]}):")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"  {name:<45} {median * 1000:7.1f} ms  {median / baseline:5.2f}x baseline")


if __name__ == "__main__":
    main()
