"""Where `archspec table SPEC`'s start-up goes: CPU milliseconds per phase, fresh processes.

    python benches/startup.py [--runs N] [--spec specs/vgg16.arch]

Runs three kinds of fresh process, interleaved N times each, every one reading compiled
bytecode (a private PYTHONPYCACHEPREFIX, written by a warm-up run: table_vs_torchinfo's
`bytecode_env` and `timed`):
  python    `python -c pass`: the interpreter and site start-up.
  phases    a process doing what `archspec table SPEC` does, step by step, with the CPU time
            (`time.process_time`) taken after each step: pydantic, archspec's modules (of
            which the dataclasses, named tuples, pydantic model classes and regular
            expressions they define at import, each timed where it is made), the command
            line, the LALR runtime from
            its stored tables, parsing, lowering, shapes, report, rendering. It fails if
            argparse (a plain command line is read without it), lark, pydantic's plugin
            loader (imported by the first validator pydantic builds) or torch was imported:
            none is on this path.
  command   `python -m archspec table SPEC` itself, whose CPU time the phases should add up to
            with the interpreter's (the rest is `-m`'s runpy; both end the process without
            the interpreter's teardown).
Prints each phase's median over the runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from table_vs_torchinfo import bytecode_env, timed

PHASES = """
import json, sys, time
clock = time.process_time
marks = [("start", clock())]
def mark(name):
    marks.append((name, clock()))

import gc
gc.disable()  # as archspec.cli.run does while start-up imports
import pydantic, pydantic.fields, pydantic.main
mark("import pydantic (BaseModel, fields)")

import dataclasses, re
from pydantic._internal import _model_construction
spent = {"dataclasses": 0.0, "named tuples": 0.0, "pydantic model classes": 0.0,
         "regular expressions": 0.0}
counts = dict.fromkeys(spent, 0)
def timed(kind, make):
    def wrapper(*args, **kwargs):
        start = clock()
        made = make(*args, **kwargs)
        spent[kind] += clock() - start
        counts[kind] += 1
        return made
    return wrapper
process_class, new_model = dataclasses._process_class, _model_construction.ModelMetaclass.__new__
dataclasses._process_class = timed("dataclasses", process_class)
from archspec.core import record
new_tuple = record._RecordType.__new__
record._RecordType.__new__ = timed("named tuples", new_tuple)
_model_construction.ModelMetaclass.__new__ = timed("pydantic model classes", new_model)
compile_re, re.compile = re.compile, timed("regular expressions", re.compile)
import archspec.cli, archspec.cli.table
dataclasses._process_class = process_class
record._RecordType.__new__ = new_tuple
_model_construction.ModelMetaclass.__new__ = new_model
re.compile = compile_re
mark("archspec's modules")
gc.freeze()  # as archspec.cli.run does before the command
gc.enable()

import os
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")  # as archspec.cli.main does
args = archspec.cli.command_options("table").read([sys.argv[1]])
mark("command line (read without argparse)")

from archspec.analysis.report import build_report
from archspec.core.diagnostics import Diagnostics
from archspec.core.source import Source
from archspec.lang import parser, plan_checks
from archspec.lang.frontend import collector_paused
from archspec.lang.lower import lower
from archspec.lang.shapes import infer
from archspec.views.table import render

parser._runtime()
mark("LALR runtime from lang/tables.py")
with collector_paused():
    source = Source.read(args.file)
    diags = Diagnostics()
    syntax = parser.parse(source, diags)
    mark("parse (compiling the lexer's regular expression)")
    network = lower(syntax, source, diags)
    mark("lower (the train: section read)")
    shapes = infer(network, diags)
    plan_checks.check(network, shapes, diags)
    mark("shapes and plan checks")
    assert not diags.has_errors, "the spec has errors"
    report = build_report(network, shapes)
    mark("report")
    text = render(report, args.format, args.style, rows=report.rows)
    mark("render")
sys.stdout.write(text)
mark("write")
imported = [name for name in ("argparse", "lark", "pydantic.plugin._loader", "torch")
            if name in sys.modules]
assert not imported, f"imported: {imported}"
figures = {name: (at - before) * 1000 for (_, before), (name, at) in zip(marks, marks[1:])}
for kind in spent:
    figures[f"  of which {counts[kind]} {kind}"] = spent[kind] * 1000
print("PHASES", json.dumps(figures), file=sys.stderr)
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)  # as archspec.cli.run ends the process: without the interpreter's teardown
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each (default 7)")
    parser.add_argument("--spec", default="specs/vgg16.arch", help="the spec to tabulate")
    args = parser.parse_args()
    commands = {
        "python": [sys.executable, "-c", "pass"],
        "phases": [sys.executable, "-c", PHASES, args.spec],
        "command": [sys.executable, "-m", "archspec", "table", args.spec],
    }
    with bytecode_env() as env:
        for command in commands.values():  # warm-up: the OS file cache, the bytecode
            timed(command, env)
        totals: dict[str, list[float]] = {name: [] for name in commands}
        phases: dict[str, list[float]] = {}
        for _ in range(args.runs):
            for name, command in commands.items():
                _, cpu, err = timed(command, env)
                totals[name].append(cpu * 1000)
                if name == "phases":
                    line = next(x for x in err.splitlines() if x.startswith("PHASES "))
                    for phase, ms in json.loads(line.removeprefix("PHASES ")).items():
                        phases.setdefault(phase, []).append(ms)
    python = statistics.median(totals["python"])
    print(f"CPU ms, median of {args.runs} fresh processes each; {args.spec}")
    print(f"{'interpreter and site start-up (python -c pass)':<52} {python:7.1f}")
    for phase, values in phases.items():
        print(f"{phase:<52} {statistics.median(values):7.1f}")
    print(f"{'sum: python + phases (the process doing it in steps)':<52} "
          f"{statistics.median(totals['phases']):7.1f}")
    print(f"{'python -m archspec table ' + args.spec:<52} "
          f"{statistics.median(totals['command']):7.1f}")


if __name__ == "__main__":
    main()
