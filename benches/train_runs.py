"""The shipped training specs, run end to end by `archspec train`: test figures and times.

    python benches/train_runs.py [--threads 1 2] [SPEC ...]

Each spec (default: specs/digits.arch and specs/lenet5_mnist.arch) is trained once per thread
count, as `python -m archspec train SPEC --threads T` in a fresh process, into a temporary
folder. It prints a markdown row per run: test accuracy (correct / images), test log-loss,
the training time from metrics.json, the whole command's wall time (Python start-up and data
loading included) and the machine's one-minute load average when the run started.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("specs", nargs="*", default=[str(ROOT / "specs" / "digits.arch"),
                                                     str(ROOT / "specs" / "lenet5_mnist.arch")])
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    args = parser.parse_args()

    print("| run | threads | test accuracy | test log-loss | training | wall | load |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    for spec in args.specs:
        for threads in args.threads:
            with tempfile.TemporaryDirectory() as out:
                load = os.getloadavg()[0]
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "archspec", "train", spec, "--out", out,
                                "--threads", str(threads)], check=True, env=env,
                               stdout=subprocess.DEVNULL)
                wall = time.perf_counter() - started
                metrics = json.loads((Path(out) / "metrics.json").read_text())
            correct = round(metrics["test_accuracy"] * metrics["test_images"])
            shown = Path(spec).resolve()
            shown = shown.relative_to(ROOT) if shown.is_relative_to(ROOT) else shown
            name = f"`archspec train {shown}` ({metrics['epochs']} epochs)"
            print(f"| {name} | {threads} | {metrics['test_accuracy']:.2%} "
                  f"({correct}/{metrics['test_images']}) | {metrics['test_loss']:.4f} | "
                  f"{metrics['train_seconds']:.1f} s | {wall:.1f} s | {load:.1f} |")


if __name__ == "__main__":
    main()
