"""`archspec import MODULE:CALLABLE [--input CxHxW] [-o FILE]`: a PyTorch model as an .arch spec."""

from __future__ import annotations

import argparse
import re
import sys
from typing import TYPE_CHECKING, Any

from archspec.cli.common import EXIT_ERRORS, EXIT_OK, UsageError, text_output
from archspec.core.files import write_atomic

if TYPE_CHECKING:
    from archspec.ir import Network
    from archspec.lang.shapes import Shapes

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
        assert spec.network is not None
        differs = _weights_differ(model, spec.network, spec.shapes, args.input)
        if differs is not None:
            print(f"archspec: error: {differs}", file=sys.stderr)
            return EXIT_ERRORS
    if args.output:
        write_atomic(args.output, result.text)
    else:
        sys.stdout.write(result.text)
    return EXIT_ERRORS if result.findings else EXIT_OK


def _weights_differ(model: Any, network: Network, shapes: Shapes, size: str) -> str | None:
    """Why the written spec's module would not load the model's weights, or None: a tensor
    the spec gives another shape (a Linear's fan-in follows the input size, which tracing
    does not check), or keys that differ (a bug of archspec import)."""
    import torch

    from archspec.backends.torch.build import to_torch

    with torch.device("meta"):
        built = to_torch(network, shapes).state_dict()
    theirs = model.state_dict()
    if built.keys() != theirs.keys():
        missing, extra = sorted(theirs.keys() - built.keys()), sorted(built.keys() - theirs.keys())
        return (f"the written spec's state_dict keys are not the model's (a bug of archspec "
                f"import): missing {missing[:3]}, unexpected {extra[:3]}")
    for key, tensor in built.items():
        mine, its = tuple(tensor.shape), tuple(theirs[key].shape)
        if mine != its:
            return (f"at input {size} the spec's {key} is {'x'.join(map(str, mine))}, the "
                    f"model's {'x'.join(map(str, its))}: give the model's input shape with "
                    "--input CxHxW")
    return None
