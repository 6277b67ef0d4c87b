"""`archspec import MODULE:CALLABLE [--input CxHxW] [-o FILE]`: a PyTorch model as an .arch spec."""

from __future__ import annotations

import math
import re
import sys
from typing import TYPE_CHECKING, Any

from archspec.cli.common import EXIT_ERRORS, EXIT_OK, UsageError, check_output, text_output
from archspec.cli.options import Arguments, Options
from archspec.core.diagnostics import printable
from archspec.core.files import write_atomic
from archspec.core.limits import MAX_IMPORT_INPUT

if TYPE_CHECKING:
    from archspec.ir import Network
    from archspec.lang.shapes import Shapes

HELP = ("write an .arch spec for a PyTorch model (MODULE:CALLABLE or file.py:CALLABLE; "
        "importing it runs its code)")


def add_arguments(options: Options) -> None:
    options.add_argument("target", metavar="MODULE:CALLABLE",
                        help="a module path (mypkg.nets:Net) or a file (nets.py:Net) and the "
                             "class or function that builds the model, called with no "
                             "arguments")
    options.add_argument("--input", default="3x224x224", metavar="CxHxW",
                        help="the input shape, batch left out (default 3x224x224)")
    options.add_argument("-o", "--output", metavar="FILE", type=text_output,
                        help="write the spec here (default, or -: standard output)")
    options.add_argument("--name", help="the network's name (default: from the callable)")
    options.add_argument("--partial", action="store_true",
                        help="write the spec even when parts have no .arch form (they stand "
                             "as `?` and are listed in its header; it will not check)")


def run(args: Arguments) -> int:
    where, sep, attribute = args.target.rpartition(":")
    if not sep or not where or not attribute:
        raise UsageError(f"expected MODULE:CALLABLE, got {args.target!r}")
    shape = input_shape(args.input)
    name = args.name or re.sub(r"\W", "_", attribute.split(".")[-1])
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise UsageError(f"--name: {name!r} is not an .arch name")
    if args.output:  # before the model is imported and read, as `table` does
        check_output(args.output, inputs=[where])
    # torch, and the user's code, are imported only here.
    from torch import nn

    from archspec.backends.torch.importer import ImportFailed, import_model, load_callable
    from archspec.lang.frontend import loads

    try:
        factory = load_callable(where, attribute)
    except ImportFailed as exc:  # not the model's parts: the target itself cannot be loaded
        raise UsageError(exc.findings[0].message) from exc
    try:
        try:
            model = factory()
        except Exception as exc:  # the user's constructor may raise anything
            # The user's message, in one line whatever it holds (`printable` escapes newlines).
            print(f"archspec: error: {args.target}() raised {type(exc).__name__}: "
                  f"{printable(str(exc))}", file=sys.stderr)
            return EXIT_ERRORS
        if not isinstance(model, nn.Module):  # the target names something else than a model
            raise UsageError(f"{args.target}() returned a value of type {type(model).__name__}, "
                             "not a torch.nn.Module")
        result = import_model(model, shape, name=name, origin=args.target,
                              partial=args.partial)
    except ImportFailed as exc:
        [first, *others] = exc.findings
        if not others and not first.path and not first.where:  # the model as a whole
            print(f"archspec: error: {args.target}: {first.message}", file=sys.stderr)
            return EXIT_ERRORS
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


def input_shape(text: str) -> tuple[int, ...]:
    """`--input`'s shape, checked before anything is imported: what an .arch `input` line
    takes (CxHxW or a number of features, sizes from 1), and no larger than the zero input
    the model may be run on."""
    if not re.fullmatch(r"\d+(x\d+)*", text):
        raise UsageError(f"--input: expected a shape like 3x224x224, got {text!r}")
    shape = tuple(int(d) for d in text.split("x"))
    if len(shape) not in (1, 3):
        raise UsageError(f"--input: {text} has {len(shape)} sizes; expected CxHxW (3x224x224) "
                         "or a number of features (784)")
    if min(shape) < 1:
        raise UsageError(f"--input: {text} has a size of 0; sizes start at 1")
    values = math.prod(shape)
    if values > MAX_IMPORT_INPUT:
        raise UsageError(f"--input: {text} is {values:,} values; archspec import runs the model "
                         f"on a zero input of at most {MAX_IMPORT_INPUT:,} "
                         f"({MAX_IMPORT_INPUT * 4 // 2**20} MiB of float32)")
    return shape


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
