"""Scale: the front end on generated specs of 1k to 100k layers, what a mistake costs, and
whole commands at 100k layers beside issue #15's goals.

    python benches/parse.py [--repeat N] [--layers N] [--branches N]
                            [--only front|phases|mistakes|commands]

The front end (parse + validate: lower, shapes), in process: three generated forms per size,
every layer written out ten a line and all on one line (the parser's work grows with the file,
and must not grow faster with a line's length) and one `[...]*N` repeat (the lowering's work
grows with the expansion). Prints the best wall and CPU time per size (of N
runs, ten times as many for 1k layers, whose times are short and noisy) and the growth ratio
to the previous size (of CPU times: on a shared machine the wall time is the load's as much
as the front end's); linear growth is a ratio near 10. Then the same forms at `--layers`
layers with the front end's phases apart (parse, lower, shapes: best CPU seconds of N, the
previous run's objects freed outside the timings).

Then what a mistake costs beside the valid spec it spoils: one error inside a 99,999-copy
repeat is found once, and blocks the body never calls are checked at the cost of their text.

Then the commands as a user runs them (`python -m archspec ...`, each in a child process:
start-up, parsing, the work and writing the output) on the written chain of `--layers`
layers: `table --format json`, `table`, `check` and `compile`, and `draw` to SVG on one concat
of `--branches` single-layer branches. Prints each one's wall and CPU seconds (user + system:
on a shared machine the wall time is the load's as much as the command's) and its peak
resident memory (getrusage(RUSAGE_CHILDREN) of a fresh helper process whose only child it
is), with the machine's load average before and after.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from archspec.core.diagnostics import Diagnostics
from archspec.core.source import Source
from archspec.lang.frontend import collector_paused, loads
from archspec.lang.lower import lower
from archspec.lang.parser import parse
from archspec.lang.shapes import infer

HEADER = "network bench\ninput 8x16x16\n"
UNIT = ("CONV3-8", "BN", "RELU", "POOL1")  # shape-preserving: 8x16x16 throughout


def written(layers: int) -> str:
    """Every layer written out, ten a line (consecutive lines join into one chain)."""
    words = [UNIT[i % len(UNIT)] for i in range(layers - 2)] + ["FC-10"]  # + implied flatten
    lines = [" - ".join(words[i:i + 10]) for i in range(0, len(words), 10)]
    return HEADER + "\n".join(lines) + "\n"


def one_line(layers: int) -> str:
    """Every layer written out on one line: one chain of `layers` elements."""
    words = [UNIT[i % len(UNIT)] for i in range(layers - 2)] + ["FC-10"]
    return HEADER + " - ".join(words) + "\n"


def repeated(layers: int) -> str:
    """One repeat of two layers, expanded by the lowering, then the flatten and the FC."""
    return HEADER + f"[CONV3-8 - RELU]*{(layers - 2) // 2} - FC-10\n"


def best(text: str, repeat: int) -> tuple[float, float, int]:
    """The best wall and CPU seconds of `repeat` loads, and the layer count."""
    walls, cpus = [], []
    count = 0
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        spec = loads(text, "bench.arch")
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
        if not spec.ok or spec.network is None:
            raise SystemExit(f"generated spec is invalid:\n{spec.render()[:2000]}")
        count = len(spec.network.layers)
    return min(walls), min(cpus), count


# (label, spec text, whether it is valid): each mistake beside the spec it spoils
MISTAKES = (
    ("valid [RELU]*99999", HEADER + "[RELU]*99999\n", True),
    ("error [QQQ]*99999", HEADER + "[QQQ]*99999\n", False),
    ("20 blocks called", HEADER + "".join(f"block b{i}: [FC-2]*4999\n" for i in range(20))
     + " - ".join(f"b{i}" for i in range(20)) + "\n", True),
    ("20 blocks unused", HEADER + "".join(f"block b{i}: [FC-2]*4999 - QQ{i}\n"
                                          for i in range(20)) + "FC-2\n", False),
)


def mistakes(repeat: int) -> None:
    print(f"\n{'spec':<22}{'seconds':>10}{'findings':>10}")
    for label, text, valid in MISTAKES:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            spec = loads(text, "bench.arch")
            times.append(time.perf_counter() - start)
        if spec.ok != valid:
            raise SystemExit(f"{label}: expected {'valid' if valid else 'errors'}:\n"
                             f"{spec.render()[:2000]}")
        print(f"{label:<22}{min(times):>10.3f}{len(spec.diagnostics):>10}")


# Run in a fresh process: runs the command, prints its seconds, CPU seconds, peak RSS, exit code.
MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, code)  # KiB on Linux
"""
ROOT = Path(__file__).resolve().parent.parent


def branches(count: int) -> str:
    """One concat of `count` single-layer branches (a 1x1 conv each), then an FC."""
    return ("network wide\ninput 8x4x4\n"
            + "(" + " | ".join(["CONV1-1"] * count) + ") - FC-10\n")


def measure(args: list[str]) -> tuple[float, float, int, int]:
    """Wall and CPU seconds, peak RSS bytes and exit code of one archspec command."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", MEASURE, sys.executable, "-m", "archspec", *args],
                         capture_output=True, text=True, env=env, check=True).stdout.split()
    return float(out[0]), float(out[1]), int(out[2]), int(out[3])


def commands(layers: int, count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        chain = Path(tmp, "chain.arch")
        chain.write_text(written(layers))
        wide = Path(tmp, "wide.arch")
        wide.write_text(branches(count))
        out = str(Path(tmp, "out"))
        runs = (  # label, goal seconds, goal MB, the command's arguments
            (f"table --format json, {layers:,} layers", 3, 500,
             ["table", str(chain), "--format", "json", "-o", out]),
            (f"table, {layers:,} layers", None, None, ["table", str(chain), "-o", out]),
            (f"check, {layers:,} layers", None, None, ["check", str(chain)]),
            (f"compile, {layers:,} layers", 30, None,
             ["compile", str(chain), "-o", str(Path(tmp, "build"))]),
            (f"draw, {count:,}-branch concat", 30, None,
             ["draw", str(wide), "-o", str(Path(tmp, "wide.svg"))]),
        )
        print(f"\nload average {os.getloadavg()[0]:.1f}")
        print(f"{'command':<38}{'seconds':>9}{'CPU s':>8}{'goal':>6}{'peak MB':>9}{'goal':>6}"
              f"{'exit':>6}")
        for label, seconds_goal, mb_goal, command in runs:
            seconds, cpu, peak, code = measure(command)
            print(f"{label:<38}{seconds:>9.2f}{cpu:>8.2f}{seconds_goal or '-':>6}"
                  f"{peak / 1e6:>9.0f}{mb_goal or '-':>6}{code:>6}", flush=True)
        print(f"load average {os.getloadavg()[0]:.1f}")


def front(repeat: int) -> None:
    loads(HEADER + "FC-10\n")  # build the grammar once, outside the timings
    print(f"{'form':<10}{'layers':>9}{'bytes':>10}{'seconds':>10}{'CPU s':>8}{'layers/CPU s':>14}"
          f"{'growth':>8}")
    for form, make in (("written", written), ("one line", one_line), ("repeated", repeated)):
        previous = None
        for size in (1_000, 10_000, 100_000):
            text = make(size)
            seconds, cpu, count = best(text, repeat * max(1, 10_000 // size))
            growth = f"{cpu / previous:.1f}x" if previous else "-"
            print(f"{form:<10}{count:>9,}{len(text):>10,}{seconds:>10.3f}{cpu:>8.3f}"
                  f"{count / cpu:>14,.0f}{growth:>8}")
            previous = cpu


def phases(repeat: int, layers: int) -> None:
    print(f"\n{'form':<10}{'layers':>9}{'parse':>8}{'lower':>8}{'shapes':>8}   (CPU s)")
    for form, make in (("written", written), ("one line", one_line), ("repeated", repeated)):
        text = make(layers)
        best = [float("inf")] * 3
        for _ in range(repeat):
            source, diags = Source(text, "bench.arch"), Diagnostics()
            with collector_paused():
                start = time.process_time()
                syntax = parse(source, diags)
                parsed = time.process_time()
                network = lower(syntax, source, diags)
                lowered = time.process_time()
                if network is None or diags.has_errors:
                    raise SystemExit(f"generated spec is invalid: {diags.items[:3]}")
                infer(network, diags)
                end = time.process_time()
            best = [min(b, t) for b, t in zip(best, (parsed - start, lowered - parsed,
                                                     end - lowered), strict=True)]
            del syntax, network  # freed here, not inside the next run's timings
        print(f"{form:<10}{layers:>9,}" + "".join(f"{b:>8.3f}" for b in best))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (best is shown)")
    parser.add_argument("--layers", type=int, default=100_000,
                        help="layers of the chain the commands (and the phases) run on")
    parser.add_argument("--branches", type=int, default=20_000,
                        help="branches of the concat draw runs on")
    parser.add_argument("--only", choices=("front", "phases", "mistakes", "commands"),
                        help="run one part (default: all four)")
    args = parser.parse_args()
    if args.only in (None, "front"):
        front(args.repeat)
    if args.only in (None, "phases"):
        phases(args.repeat, args.layers)
    if args.only in (None, "mistakes"):
        mistakes(args.repeat)
    if args.only in (None, "commands"):
        commands(args.layers, args.branches)


if __name__ == "__main__":
    main()
