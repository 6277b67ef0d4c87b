"""`archspec table` on the torchvision zoo beside specs/vgg16.arch: the command end to end.

    python benches/table_zoo.py [--repeat N] [SPEC ...]

For each spec (default: specs/vgg16.arch and every specs/zoo/*.arch) prints its layer count,
the best and median wall time of N runs of `python -m archspec table SPEC` in a fresh
interpreter (what a user waits for, start-up included), the same work in process (front end
and report, no start-up), and both times relative to VGG16's. A modern net written with
blocks expands to many more layers than VGG16's 39; the ratio says what that costs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from archspec.analysis.report import build_report
from archspec.lang.frontend import load_network
from archspec.views.table import render

ROOT = Path(__file__).resolve().parent.parent


def command_times(spec: Path, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "archspec", "table", str(spec)], cwd=ROOT,
                       check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def in_process(spec: Path, repeat: int) -> tuple[float, int]:
    times, layers = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        network, shapes = load_network(spec)
        render(build_report(network, shapes))
        times.append(time.perf_counter() - start)
        layers = len(network.layers)
    return min(times), layers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per spec")
    parser.add_argument("specs", nargs="*", type=Path)
    args = parser.parse_args()
    specs = args.specs or [ROOT / "specs" / "vgg16.arch",
                           *sorted((ROOT / "specs" / "zoo").glob("*.arch"))]
    load_network(specs[0])  # build the grammar once, outside the timings
    print(f"{'spec':<34}{'layers':>7}{'best s':>9}{'median s':>10}{'x first':>9}"
          f"{'in-proc s':>11}{'x first':>9}")
    first: tuple[float, float] | None = None
    for spec in specs:
        times = command_times(spec, args.repeat)
        inside, layers = in_process(spec, args.repeat)
        best = min(times)
        first = first or (best, inside)
        name = spec.relative_to(ROOT) if spec.is_relative_to(ROOT) else spec
        print(f"{name!s:<34}{layers:>7}{best:>9.3f}{statistics.median(times):>10.3f}"
              f"{best / first[0]:>9.2f}{inside:>11.3f}{inside / first[1]:>9.2f}")


if __name__ == "__main__":
    main()
