"""Scale: 100k layers `table --format json` and `compile`, a 20k-branch concat `draw`.

    python benches/scale.py [--layers N] [--branches N]

Each command runs in a child process (`python -m archspec ...`, as a user runs it), so a figure
is the whole command: start-up, parsing, the work and writing the output. Prints its wall time
and peak resident memory (resource.getrusage(RUSAGE_CHILDREN).ru_maxrss of that child alone:
each command is run by a fresh helper process, whose RUSAGE_CHILDREN covers just it) beside the
goal of issue #15. The specs are the generated chain of benches/parse.py (CONV3-8, BN, RELU,
POOL1 repeated, every layer written out) and one concat of N single-layer branches.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from parse import written  # the chain benches/parse.py times (run from benches/)

ROOT = Path(__file__).resolve().parent.parent

# Run in a fresh process: times the command and prints its seconds, peak RSS and exit code.
MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
print(seconds, peak * 1024, code)
"""


def branches(count: int) -> str:
    """One concat of `count` single-layer branches (a 1x1 conv each), then an FC."""
    return ("network wide\ninput 8x4x4\n"
            + "(" + " | ".join(["CONV1-1"] * count) + ") - FC-10\n")


def measure(args: list[str]) -> tuple[float, int, int]:
    """Seconds, peak RSS bytes and exit code of one archspec command in a child process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", MEASURE, sys.executable, "-m", "archspec", *args],
                         capture_output=True, text=True, env=env, check=True).stdout.split()
    return float(out[0]), int(out[1]), int(out[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=100_000, help="layers of the chain")
    parser.add_argument("--branches", type=int, default=20_000, help="branches of the concat")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        chain = Path(tmp, "chain.arch")
        chain.write_text(written(args.layers))
        wide = Path(tmp, "wide.arch")
        wide.write_text(branches(args.branches))
        runs = (
            (f"table --format json, {args.layers:,} layers", 3.0, 500,
             ["table", str(chain), "--format", "json", "-o", str(Path(tmp, "t.json"))]),
            (f"compile, {args.layers:,} layers", 30.0, None,
             ["compile", str(chain), "-o", str(Path(tmp, "build"))]),
            (f"draw, {args.branches:,}-branch concat", 30.0, None,
             ["draw", str(wide), "-o", str(Path(tmp, "wide.svg"))]),
        )
        print(f"{'command':<40}{'seconds':>9}{'goal':>7}{'peak MB':>9}{'goal':>7}{'exit':>6}")
        for label, seconds_goal, mb_goal, command in runs:
            seconds, peak, code = measure(command)
            mb = f"{mb_goal}" if mb_goal else "-"
            print(f"{label:<40}{seconds:>9.2f}{seconds_goal:>7.0f}{peak / 1e6:>9.0f}{mb:>7}"
                  f"{code:>6}", flush=True)


if __name__ == "__main__":
    main()
