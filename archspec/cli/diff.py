"""`archspec diff A B`: what changed from network A to network B, and what it costs."""

from __future__ import annotations

import sys
from typing import get_args

from archspec.analysis.diff import Loaded, compare
from archspec.cli.common import EXIT_USAGE, load_or_report, stdin_once
from archspec.cli.options import Arguments, Options
from archspec.views.diff import Format, render

PAUSE_COLLECTOR = True  # cli.main
HELP = ("what changed from A to B: layers added, removed and changed, and what each change "
        "does to shapes, parameters, MACs, memory and receptive fields")
# diff(1)'s convention: 0 the same, 1 different, 2 trouble (a missing file, a spec error).
EXIT_SAME = 0
EXIT_DIFFERENT = 1


def add_arguments(options: Options) -> None:
    options.add_argument("old", metavar="A", help="the .arch file compared against")
    options.add_argument("new", metavar="B", help="the .arch file whose changes are shown")
    options.add_argument("--format", choices=get_args(Format), default="text",
                        help="text (default), markdown or json (docs/diff.md)")


def load(path: str) -> Loaded | None:
    """A side of a diff (a sketch is fine); None after printing its errors."""
    spec = load_or_report(path, allow_sketch=True)
    if spec is None or spec.network is None:
        return None
    return Loaded(spec.source.path, spec.network, spec.shapes)  # `<stdin>` for `-`


def run(args: Arguments) -> int:
    stdin_once((args.old, args.new))
    sides = [load(path) for path in (args.old, args.new)]  # both, so both files' errors show
    old, new = sides
    if old is None or new is None:
        return EXIT_USAGE
    report = compare(old, new)
    sys.stdout.write(render(report, args.format))
    return EXIT_SAME if report.identical else EXIT_DIFFERENT
