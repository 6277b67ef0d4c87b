"""`archspec compile FILE [-o DIR]`: the network as PyTorch source, with its table, diagram
and training plan beside it."""

from __future__ import annotations

import sys
from pathlib import Path

from archspec.analysis.report import build_report
from archspec.cli.common import (
    EXIT_ERRORS,
    EXIT_OK,
    UsageError,
    load_or_report,
    output_folder,
    whole_number,
)
from archspec.cli.options import Arguments, Options
from archspec.core.diagnostics import Severity, printable, render_all
from archspec.core.files import OutputSetError, replace_set, write_atomic
from archspec.core.limits import DEFAULT_MAX_BUILD_PARAMS
from archspec.runtime import plan
from archspec.views import dot
from archspec.views.table import render

PAUSE_COLLECTOR = True  # cli.main
HELP = ("write DIR/<network>.py (a standalone PyTorch module; `class` becomes class_.py) with "
        "its table, diagram and plan")


def add_arguments(options: Options) -> None:
    options.add_argument("file", metavar="FILE", help=".arch file (- reads stdin)")
    options.add_argument("-o", "--output", metavar="DIR", default="build",
                        help="build folder to write into (default: build/); its files for "
                             "this network are replaced as one set")
    options.add_argument("--max-params", type=whole_number(1), default=DEFAULT_MAX_BUILD_PARAMS,
                        metavar="N", help="refuse networks with more parameters than this "
                        f"(default {DEFAULT_MAX_BUILD_PARAMS:,})")
    options.add_argument("--onnx", action="store_true",
                        help="also write DIR/<network>.onnx with torch's exporter (needs "
                        "archspec[onnx]), with the --weights if given; the batch is dynamic")
    options.add_argument("--weights", metavar="PATH",
                        help="check a state_dict file (read with weights_only=True) against "
                        "the spec: every tensor missing, unexpected or of another shape is an "
                        "error at its layer's line; the module's build(weights=PATH) loads it")


def run(args: Arguments) -> int:
    spec = load_or_report(args.file)
    if spec is None or spec.network is None:
        return EXIT_ERRORS
    # torch is imported only here, when code is generated; `check` and `table` never load it.
    from archspec.backends.torch.emit import BuildError, emit, module_name

    network = spec.network
    # The figures are computed once; the docstring table and the .md file are two views.
    report = build_report(network, spec.shapes)
    try:
        source = emit(network, spec.shapes, origin=Path(spec.source.path).name,
                      max_params=args.max_params, report=report)
    except BuildError as exc:
        print(render_all(exc.diagnostics, spec.source), file=sys.stderr)
        return EXIT_ERRORS
    if args.weights is not None:
        from archspec.backends.torch.weights import WeightsFileError, check_state, read_state

        try:
            problems = check_state(network, spec.shapes, read_state(args.weights))
        except WeightsFileError as exc:
            raise UsageError(str(exc)) from None
        if problems:
            print(render_all(problems, spec.source), file=sys.stderr)
            return EXIT_ERRORS
    out = output_folder(args.output)
    module = module_name(network)  # `class` -> class_.py, `random` -> random_.py
    # The build's set of files, replaced as one: a kill leaves the old set or the new one.
    names = [f"{module}.py", *(f"{network.name}{ext}" for ext in (".md", ".dot", ".svg")),
             plan.plan_path(".", network).name, *([f"{network.name}.onnx"] if args.onnx else [])]
    try:
        with replace_set(out, names) as stage:
            too_big = dot.size_error(network)
            write_atomic(stage / names[0], source)
            write_atomic(stage / names[1], render(report, "markdown"))
            dot.render_files(network, spec.shapes, stage / network.name, report=report,
                             fits=too_big is None)
            plan.write_plan(spec, stage)
            if args.onnx:
                from archspec.backends.torch.onnx import export_onnx

                export_onnx(network, spec.shapes, stage / names[-1], args.weights)
            written = [out / path.name for path in sorted(stage.iterdir(),
                                                          key=lambda p: names.index(p.name))]
    except OutputSetError as exc:
        raise UsageError(str(exc)) from None
    except dot.RenderError as exc:  # the old build, if any, is left as it was
        print(f"archspec: error: cannot draw {network.name}.svg: {exc}", file=sys.stderr)
        return EXIT_ERRORS
    for path in written:
        print(f"wrote {path}")
    if too_big is not None:
        print(render_all([too_big._replace(severity=Severity.WARNING)],
                         spec.source), file=sys.stderr)
        print(f"note: {network.name}.svg is not drawn; {network.name}.dot is", file=sys.stderr)
    if args.weights is not None:
        print(f"weights: {printable(args.weights)} fits the spec; "
              f"{module}.build(weights=PATH) loads it")
    if module != network.name:
        print(f"note: the module is {module}.py, not {network.name}.py, which `import` cannot "
              f"load or which would shadow the module of that name (import {module})")
    return EXIT_OK
