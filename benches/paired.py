"""Start-up of two checkouts, paired: how much a change took off `archspec table SPEC`.

    python benches/paired.py OLD_CHECKOUT NEW_CHECKOUT [--runs N] [--spec specs/vgg16.arch]

Fresh processes of each checkout, interleaved (the order alternating each pair), each from
its own bytecode (a private PYTHONPYCACHEPREFIX per checkout, written by a warm-up run), so
that a machine whose speed drifts from minute to minute slows both sides of a pair alike:
  command   `python -m archspec table SPEC`: wall time per pair, and the median of the pairs'
            differences (with the 10th percentile of each side: its quick runs);
  imports   a process that imports pydantic, then times importing archspec's modules for the
            table with the collector paused, as `archspec.cli.run` imports them (the minimum
            of the runs: the cost without the machine's interference).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from table_vs_torchinfo import bytecode_env

IMPORTS = """
import gc, time
import pydantic, pydantic.fields, pydantic.main, pydantic.types, argparse
gc.disable()
start = time.perf_counter()
import archspec.cli, archspec.cli.common, archspec.cli.table
print((time.perf_counter() - start) * 1000)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("old", type=Path, help="the checkout before the change")
    parser.add_argument("new", type=Path, help="the checkout after it")
    parser.add_argument("--runs", type=int, default=31, help="pairs (default 31)")
    parser.add_argument("--spec", default="specs/vgg16.arch", help="the spec to tabulate")
    args = parser.parse_args()
    sides = {"old": args.old.resolve(), "new": args.new.resolve()}
    walls: dict[str, list[float]] = {name: [] for name in sides}
    imports: dict[str, list[float]] = {name: [] for name in sides}
    with bytecode_env() as base:
        envs = {name: dict(base, PYTHONPATH=str(root),
                           PYTHONPYCACHEPREFIX=f"{base['PYTHONPYCACHEPREFIX']}/{name}")
                for name, root in sides.items()}
        command = [sys.executable, "-m", "archspec", "table", args.spec]
        for name, root in sides.items():  # warm-up: the bytecode, the OS file cache
            subprocess.run(command, env=envs[name], cwd=root, check=True,
                           stdout=subprocess.DEVNULL)
        for run in range(args.runs):
            for name in (("old", "new") if run % 2 == 0 else ("new", "old")):
                start = time.perf_counter()
                subprocess.run(command, env=envs[name], cwd=sides[name], check=True,
                               stdout=subprocess.DEVNULL)
                walls[name].append((time.perf_counter() - start) * 1000)
                done = subprocess.run([sys.executable, "-c", IMPORTS], env=envs[name],
                                      cwd=sides[name], check=True, capture_output=True,
                                      text=True)
                imports[name].append(float(done.stdout))
    saved = statistics.median(old - new for old, new in zip(walls["old"], walls["new"],
                                                             strict=True))
    for name in sides:
        tenth = statistics.quantiles(walls[name], n=10)[0]
        print(f"{name:<4} command median {statistics.median(walls[name]):7.1f} ms   10th "
              f"percentile {tenth:7.1f} ms   imports (collector paused) min "
              f"{min(imports[name]):6.2f} ms   ({sides[name]})")
    print(f"new saves a median {saved:.2f} ms a command ({args.runs} pairs), "
          f"{min(imports['old']) - min(imports['new']):.2f} ms of imports")


if __name__ == "__main__":
    main()
