"""`archspec compile FILE [-o DIR]`: the network as PyTorch source, with its table, diagram
and training plan beside it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from archspec.analysis.report import build_report
from archspec.cli.common import (
    EXIT_ERRORS,
    EXIT_OK,
    EXIT_USAGE,
    load_or_report,
    whole_number,
)
from archspec.core.diagnostics import Severity, render_all
from archspec.core.files import write_atomic
from archspec.core.limits import DEFAULT_MAX_BUILD_PARAMS
from archspec.runtime import plan
from archspec.views import dot
from archspec.views.table import render

HELP = ("write DIR/<network>.py (a standalone PyTorch module; `class` becomes class_.py) with "
        "its table, diagram and plan")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help=".arch file")
    parser.add_argument("-o", "--output", metavar="DIR", default="build",
                        help="directory to write into (default: build/)")
    parser.add_argument("--max-params", type=whole_number(1), default=DEFAULT_MAX_BUILD_PARAMS,
                        metavar="N", help="refuse networks with more parameters than this "
                        f"(default {DEFAULT_MAX_BUILD_PARAMS:,})")


def run(args: argparse.Namespace) -> int:
    spec = load_or_report(args.file)
    if spec is None or spec.network is None:
        return EXIT_ERRORS
    # torch is imported only here, when code is generated; `check` and `table` never load it.
    from archspec.backends.torch.emit import BuildError, emit, module_name

    network = spec.network
    # The figures are computed once; the docstring table and the .md file are two views.
    report = build_report(network, spec.shapes)
    try:
        source = emit(network, spec.shapes, origin=Path(args.file).name,
                      max_params=args.max_params, report=report)
    except BuildError as exc:
        print(render_all(exc.diagnostics, spec.source), file=sys.stderr)
        return EXIT_ERRORS
    out = Path(args.output)
    module = module_name(network)  # `class` -> class_.py, which `import class_` can load
    written = [out / f"{module}.py", out / f"{network.name}.md"]
    try:
        write_atomic(written[0], source)
        write_atomic(written[1], render(report, "markdown"))
        written += dot.render_files(network, spec.shapes, out / network.name)
        written.append(plan.write_plan(spec, out))
    except OSError as exc:
        print(f"archspec: error: cannot write into {out}: {exc.strerror or exc}",
              file=sys.stderr)
        return EXIT_USAGE
    for path in written:
        print(f"wrote {path}")
    if (problem := dot.size_error(network)) is not None:
        print(render_all([problem.model_copy(update={"severity": Severity.WARNING})],
                         spec.source), file=sys.stderr)
        print(f"note: {network.name}.svg is not drawn; {network.name}.dot is", file=sys.stderr)
    if module != network.name:
        print(f"note: the module is {module}.py, not {network.name}.py, which `import` cannot "
              f"load (import {module})")
    return EXIT_OK
