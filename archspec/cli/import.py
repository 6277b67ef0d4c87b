"""`archspec import MODULE:CALLABLE [--input CxHxW] [-o FILE]`: a PyTorch model as an .arch spec."""

from __future__ import annotations

import argparse
import re
import sys

from archspec.cli.common import EXIT_ERRORS, EXIT_OK, UsageError, text_output
from archspec.core.files import write_atomic

HELP = ("write an .arch spec for a PyTorch model (MODULE:CALLABLE or file.py:CALLABLE; "
        "importing it runs its code)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="MODULE:CALLABLE",
                        help="a module path (mypkg.nets:Net) or a file (nets.py:Net) and the "
                             "class or function that builds the model, called with no "
                             "arguments")
    parser.add_argument("--input", default="3x224x224", metavar="CxHxW",
                        help="the input shape, batch left out (default 3x224x224)")
    parser.add_argument("-o", "--output", metavar="FILE", type=text_output,
                        help="write the spec here (default, or -: standard output)")
    parser.add_argument("--name", help="the network's name (default: from the callable)")
    parser.add_argument("--partial", action="store_true",
                        help="write the spec even when parts have no .arch form (they stand "
                             "as `?` and are listed in its header; it will not check)")


def run(args: argparse.Namespace) -> int:
    if not re.fullmatch(r"\d+(x\d+)*", args.input):
        raise UsageError(f"--input: expected a shape like 3x224x224, got {args.input!r}")
    shape = tuple(int(d) for d in args.input.split("x"))
    name = args.name or re.sub(r"\W", "_", args.target.rpartition(":")[2].split(".")[-1])
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise UsageError(f"--name: {name!r} is not an .arch name")
    # torch, and the user's code, are imported only here.
    from archspec.backends.torch.importer import ImportFailed, import_model, load_callable
    from archspec.lang.frontend import loads

    try:
        factory = load_callable(args.target)
    except ImportFailed as exc:  # not the model's parts: the target itself cannot be loaded
        raise UsageError(exc.findings[0].message) from exc
    try:
        try:
            model = factory()
        except Exception as exc:  # the user's constructor may raise anything
            print(f"archspec: error: {args.target}() raised {type(exc).__name__}: {exc}",
                  file=sys.stderr)
            return EXIT_ERRORS
        result = import_model(model, shape, name=name, origin=args.target,
                              partial=args.partial)
    except ImportFailed as exc:
        print(f"archspec: error: {args.target}: {len(exc.findings)} part(s) with no .arch form:",
              file=sys.stderr)
        for finding in exc.findings:
            print(f"  {finding.render()}", file=sys.stderr)
        return EXIT_ERRORS
    for part in result.fallback:
        print(f"archspec: note: read with forward hooks, fx could not trace: {part}",
              file=sys.stderr)
    if not result.findings:
        spec = loads(result.text, args.output or "<imported>")
        if spec.network is None or spec.errors:
            print("archspec: error: the written spec does not check (a bug of archspec "
                  "import):", file=sys.stderr)
            print(spec.render(), file=sys.stderr)
            return EXIT_ERRORS
    if args.output:
        write_atomic(args.output, result.text)
    else:
        sys.stdout.write(result.text)
    return EXIT_ERRORS if result.findings else EXIT_OK
