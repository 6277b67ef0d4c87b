"""`archspec table FILE`: shapes, parameters, work, receptive fields and memory, from the spec
alone (torch is never imported)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, get_args

from archspec.analysis.cost import parse_size
from archspec.analysis.report import at_depth, build_report
from archspec.catalog import AMPS, DEVICES, DTYPES, OPTIMIZER_STATE
from archspec.cli import keep
from archspec.cli.common import (
    EXIT_ERRORS,
    EXIT_OK,
    OptionWords,
    UsageError,
    check_output,
    load_or_report,
    refused,
    text_output,
    whole_number,
)
from archspec.cli.options import Arguments, Options
from archspec.core.limits import MAX_INT
from archspec.views.table import Format, Style, render_pieces

if TYPE_CHECKING:
    import argparse

PAUSE_COLLECTOR = True  # cli.main
HELP = "tabulate shapes, parameters, MACs, receptive fields and training/inference memory"


def _size(text: str) -> int:
    try:
        size = parse_size(text)
    except ValueError as exc:
        raise refused(str(exc)) from None
    if size < 1:
        raise refused(f"expected a positive memory size, got {text!r}")
    return size


def _checkpoint(**settings: Any) -> argparse.Action:
    """`--checkpoint blocks`, `--checkpoint every N` or `--checkpoint none`: argparse's action
    storing the value build(checkpoint=...) takes, "blocks" or N, or "none" over the train:
    section's (made where argparse reads the line: cli/options.py leaves it to argparse)."""
    import argparse

    class Checkpoint(argparse.Action):
        def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                     values: object, option_string: str | None = None) -> None:
            words = [str(word) for word in values] if isinstance(values, list) \
                else [str(values)]
            value: str | int
            if words in (["blocks"], ["none"]):
                value = words[0]
            elif len(words) == 2 and words[0] == "every":
                try:
                    value = whole_number(1, MAX_INT)(words[1])
                except argparse.ArgumentTypeError as exc:
                    raise argparse.ArgumentError(self, f"every N: {exc}") from None
            else:
                raise argparse.ArgumentError(self, "expected `blocks`, `every N` or `none`, "
                                             f"got {' '.join(words)!r}")
            setattr(namespace, self.dest, value)

    return Checkpoint(**settings)


# `blocks` and `none` are one word, `every N` two: the words after them are FILE (cli.main).
OPTION_WORDS: OptionWords = {"--checkpoint": lambda words: 2 if words[:1] == ["every"] else 1}


def add_arguments(options: Options) -> None:
    options.add_argument("file", metavar="FILE", help="an .arch file (- reads stdin)")
    options.add_argument("--format", choices=get_args(Format), default="text",
                        help="text (default), markdown, csv or json (csv and json hold every "
                             "figure whatever the style)")
    options.add_argument("--style", choices=get_args(Style), default="default",
                        help="default: the full table; cs231n: the course's VGG table; "
                             "torchinfo: totals under torchinfo 1.8's conventions (an option "
                             "whose figures the style does not show is refused)")
    options.add_argument("--batch", type=whole_number(1, MAX_INT), metavar="N",
                        help="batch size for memory (default: the train: section's, else 1)")
    options.add_argument("--dtype", choices=DTYPES,
                        help="element type for bytes (default: the spec's dtype)")
    options.add_argument("--amp", choices=tuple(AMPS),
                        help="plan PyTorch autocast at this low precision over float32 "
                             "parameters (default: the train: section's precision, else none); "
                             "--dtype bfloat16 is pure low-precision training instead")
    options.add_argument("--device", choices=DEVICES,
                        help="whose autocast op lists to follow (default: the train: "
                             "section's device, else cpu)")
    options.add_argument("--checkpoint", action=_checkpoint, nargs="+",
                        metavar=("blocks|every|none", "N"),
                        help="plan activation checkpointing as build(checkpoint=...) runs it: "
                             "`blocks`, each outermost block call, or `every N`, the network N "
                             "layers at a time (the last run plain), keeps its input alone and "
                             "runs its forward again in backward; `none` plans none over the "
                             "train: section's")
    options.add_argument("--optimizer", choices=tuple(OPTIMIZER_STATE),
                        help="optimizer state for training memory (default: the train: "
                             "section's, else SGD with momentum)")
    options.add_argument("--fit", type=_size, metavar="SIZE",
                        help="report the largest batch that fits, e.g. 16GiB or 80GB (bytes: B, "
                             "KB/MB/GB powers of 1000, KiB/MiB/GiB of 1024; 16Gb, bits, "
                             "is refused)")
    options.add_argument("--fold", action="store_true",
                        help="fold implicit layers (activations, batch norm, flatten) into the "
                             "CONV/FC row that caused them")
    options.add_argument("--depth", type=whole_number(1), metavar="N",
                        help="fold the module hierarchy to N levels, as torchinfo's depth=: "
                             "each named group or block call N levels down is one row "
                             "(default: every layer)")
    options.add_argument("-o", "--output", metavar="PATH", type=text_output,
                        help="write here instead of stdout (its directory must exist; - is "
                             "stdout)")


# The options whose figures a style of text and markdown does not show (CSV and JSON hold
# every figure whatever the style): given with it, they would change nothing, silently.
NOT_SHOWN = {
    "cs231n": ("batch", "amp", "device", "checkpoint", "optimizer", "fit", "fold", "depth"),
    "torchinfo": ("amp", "device", "checkpoint", "optimizer", "fit", "fold", "depth"),
}


def _unshown(args: Arguments) -> list[str]:
    """The options given that the style asked for does not show."""
    if args.format not in ("text", "markdown"):
        return []
    return [f"--{name}" for name in NOT_SHOWN.get(args.style, ())
            if getattr(args, name) not in (None, False)]


def run(args: Arguments) -> int:
    unshown = _unshown(args)
    if unshown:
        raise UsageError(f"the {args.style} style does not show what {', '.join(unshown)} "
                         f"{'changes' if len(unshown) == 1 else 'change'}: the default style, "
                         "--format csv and --format json do")
    if args.output is not None:
        check_output(args.output, inputs=[args.file])
    spec = load_or_report(args.file)
    if spec is None or spec.network is None:
        return EXIT_ERRORS
    try:
        report = build_report(spec.network, spec.shapes, batch=args.batch,
                              dtype=args.dtype, optimizer=args.optimizer, fit=args.fit,
                              amp=args.amp, device=args.device,
                              checkpoint=args.checkpoint)
    except ValueError as exc:  # autocast over non-float32 parameters, nothing to checkpoint
        raise UsageError(str(exc)) from None
    keep(spec, report)  # not freed as this returns: the process ends (cli.keep)
    rows = report.folded if args.fold else report.rows
    if args.depth is not None:
        rows = at_depth(rows, spec.network, args.depth)
    pieces = render_pieces(report, args.format, args.style, rows=rows)
    if args.output is not None:
        from archspec.core.files import write_atomic  # imported where a file is written

        write_atomic(args.output, pieces)
    else:
        sys.stdout.writelines(pieces)
    return EXIT_OK
