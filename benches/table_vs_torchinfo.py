"""Whole-process time: `archspec table specs/vgg16.arch` against torchinfo on the same VGG16.

    python benches/table_vs_torchinfo.py [--runs N] [--spec specs/vgg16.arch]

Two fresh Python processes, run interleaved N times each, output thrown away:
  archspec   `python -m archspec table SPEC`: parse, check, analyse, print; no torch.
  torchinfo  `python -c ...`: import torch and torchinfo, build VGG16 by hand as an
             `nn.Sequential` (13 convs, 5 pools, 3 linear layers, ReLU, dropout), then
             `torchinfo.summary(model, input_size=(1, 3, 224, 224))`, which runs a forward pass.
A third process, `python -c pass`, shows the floor: interpreter start-up alone (with this
environment's site-packages), which bounds any ratio from above. A fourth, `stack`, imports
the library the front end stands on (pydantic, for the IR; lark only builds the parser's
tables and explains syntax errors, and a spec that parses never imports it) as archspec's
process does (the collector paused, then frozen), defines one model class as archspec's are
(frozen, unknown fields refused, its schema deferred) and builds one instance without
validation, and ends without the interpreter's teardown, as archspec's process does where
nothing waits for it: the floor for any front end with a pydantic IR (defining the first
model class imports pydantic.fields and pydantic.types, ~15 ms beyond `from pydantic import
BaseModel`).

Every process reads compiled bytecode, as an installed package does: the children run with a
private PYTHONPYCACHEPREFIX (a temporary folder of this run) and without
PYTHONDONTWRITEBYTECODE, and the warm-up run of each writes it. Without it, archspec (run from
a checkout) compiles its ~40 modules from source every start (~60 ms) while torch's
site-packages bytecode was compiled at install.

Prints each side's median and best wall time, the ratio of the median wall times (the goal:
the table at least 20x faster), and the median CPU time (user + system) of each process, which
a busy machine disturbs less than wall time (torch's forward pass may use several cores, so
its CPU time can exceed its wall time). Both include interpreter start-up, as a user at a
shell sees them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TORCHINFO = """
import torch
import torchinfo
from torch import nn

layers, channels = [], 3
for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
          512, 512, 512, "M"):
    if v == "M":
        layers.append(nn.MaxPool2d(2))
    else:
        layers += [nn.Conv2d(channels, v, 3, padding=1), nn.ReLU()]
        channels = v
layers += [nn.Flatten(), nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(0.5),
           nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 1000)]
print(torchinfo.summary(nn.Sequential(*layers), input_size=(1, 3, 224, 224)))
"""

STACK = """
import gc
gc.disable()
import pydantic

class Layer(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", defer_build=True)
    name: str

Layer.model_construct(name="conv1")
gc.freeze()
gc.enable()
import os
os._exit(0)
"""


@contextlib.contextmanager
def bytecode_env() -> Iterator[dict[str, str]]:
    """The children's environment: this one, with archspec on the path and bytecode written
    to and read from a private PYTHONPYCACHEPREFIX (removed afterwards), so that after a
    warm-up run every process reads compiled bytecode as an installed package does."""
    with tempfile.TemporaryDirectory(prefix="archspec-bench-pyc-") as pycache:
        env = {key: value for key, value in os.environ.items()
               if key != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = pycache
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        yield env


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall time and CPU time (user + system) of one run of the command, in seconds, and
    its standard error."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each (default 5)")
    parser.add_argument("--spec", default="specs/vgg16.arch", help="the spec archspec reads")
    args = parser.parse_args()
    commands = {
        "archspec": [sys.executable, "-m", "archspec", "table", args.spec],
        "torchinfo": [sys.executable, "-c", TORCHINFO],
        "python": [sys.executable, "-c", "pass"],
        "stack": [sys.executable, "-c", STACK],
    }
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    with bytecode_env() as env:
        for command in commands.values():  # one warm-up each: the OS file cache, the bytecode
            timed(command, env)
        for _ in range(args.runs):
            for name, command in commands.items():
                wall, cpu, _ = timed(command, env)
                walls[name].append(wall)
                cpus[name].append(cpu)
    wall_median = {name: statistics.median(values) for name, values in walls.items()}
    cpu_median = {name: statistics.median(values) for name, values in cpus.items()}
    for name in commands:
        print(f"{name:<10} wall median {wall_median[name] * 1000:8.1f} ms   best "
              f"{min(walls[name]) * 1000:8.1f} ms   CPU median {cpu_median[name] * 1000:8.1f} ms"
              f"   ({args.runs} runs)")
    ratio = wall_median["torchinfo"] / wall_median["archspec"]
    print(f"ratio      torchinfo / archspec = {ratio:.1f}x wall (goal: at least 20x), "
          f"{cpu_median['torchinfo'] / cpu_median['archspec']:.1f}x CPU; "
          f"torchinfo / bare start-up = {wall_median['torchinfo'] / wall_median['python']:.1f}x "
          "wall, the most any command could reach; torchinfo / pydantic IR floor = "
          f"{wall_median['torchinfo'] / wall_median['stack']:.1f}x, the most a front end "
          "built on it could reach")


if __name__ == "__main__":
    main()
