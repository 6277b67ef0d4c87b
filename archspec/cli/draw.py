"""`archspec draw FILE [-o OUT]`: the network as a diagram (DOT, SVG, PNG or PDF);
`archspec draw --diff B A` draws B with what changed from A."""

from __future__ import annotations

import sys
from pathlib import Path

from archspec.analysis.diff import Loaded, compare
from archspec.cli.common import (
    EXIT_ERRORS,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    check_output,
    load_or_report,
    stdin_once,
    text_output,
)
from archspec.cli.options import Arguments, Options
from archspec.core.diagnostics import render
from archspec.core.files import write_atomic
from archspec.lang.frontend import SHAPE_CODES
from archspec.views import dot

PAUSE_COLLECTOR = True  # cli.main
HELP = "draw the network with Graphviz: .dot text, or .svg/.png/.pdf rendered by `dot`"


def add_arguments(options: Options) -> None:
    options.add_argument("file", metavar="FILE",
                        help=".arch file (a bare sketch draws too; - reads stdin)")
    options.add_argument("base", metavar="BASE", nargs="?",
                        help="with --diff: the .arch file FILE is compared against")
    options.add_argument("--diff", action="store_true",
                        help="`draw --diff B A`: draw B with what changed from A highlighted "
                             "(added and changed layers outlined, removed ones as ghosts)")
    options.add_argument("-o", "--output", metavar="OUT", type=text_output,
                        help="out.svg, out.png, out.pdf or out.dot; "
                             "without it (or with -) the DOT text goes to stdout")
    options.add_argument("--rankdir", choices=("TB", "LR"), default="TB",
                        help="top to bottom (default) or left to right")
    options.add_argument("--detail", choices=("compact", "full"), default="compact",
                        help="compact (default): fold BN/activations and repeats; "
                             "full: every layer")


def run(args: Arguments) -> int:
    if args.output is not None:
        check_output(args.output, creates_folders=True,
                     inputs=[args.file, *([args.base] if args.base else [])])
    fmt = Path(args.output).suffix.lower().lstrip(".") if args.output else "dot"
    if fmt not in dot.FORMATS:
        print(f"archspec: error: cannot draw {args.output}: the name must end in "
              + ", ".join(f".{f}" for f in dot.FORMATS), file=sys.stderr)
        return EXIT_USAGE
    if fmt != "dot" and not dot.has_dot():
        print(f"archspec: error: cannot render {args.output}: {dot.INSTALL_HINT}",
              file=sys.stderr)
        return EXIT_USAGE
    if args.diff != (args.base is not None):
        raise UsageError("--diff takes two files, `draw --diff B A` (B drawn, with what "
                         "changed from A); without --diff, one")
    stdin_once((args.file, args.base or ""))
    spec = load_or_report(args.file, allow_sketch=True, allow_shape_errors=not args.diff)
    base = load_or_report(args.base, allow_sketch=True) if args.base is not None else None
    if spec is None or spec.network is None or (args.diff and (
            base is None or base.network is None)):
        return EXIT_ERRORS
    if fmt != "dot" and (problem := dot.size_error(spec.network, args.detail)) is not None:
        print(render(problem, spec.source), file=sys.stderr)
        return EXIT_ERRORS
    marks = None
    if base is not None and base.network is not None:
        report = compare(Loaded(base.source.path, base.network, base.shapes),
                         Loaded(spec.source.path, spec.network, spec.shapes))
        marks = dot.highlight(report, base.network)
    # A spec with shape errors is drawn as far as its sizes are known, the layers with
    # errors outlined, and the command still fails (the errors are printed already).
    errors = dot.layer_errors(spec.network, [d for d in spec.errors if d.code in SHAPE_CODES])
    status = EXIT_ERRORS if errors else EXIT_OK
    source = dot.dot_source(spec.network, spec.shapes, detail=args.detail,
                            rankdir=args.rankdir, marks=marks, errors=errors)
    if args.output is None:
        sys.stdout.write(source)
        return status
    try:
        write_atomic(args.output, source if fmt == "dot" else dot.render(source, fmt))
    except dot.RenderError as exc:
        print(f"archspec: error: cannot draw {args.output}: {exc}", file=sys.stderr)
        return EXIT_ERRORS
    print(f"wrote {args.output}")
    return status
