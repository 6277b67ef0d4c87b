"""The `archspec` command line: one sub-command per module of this package (check.py, ...)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from archspec.cli.common import EXIT_USAGE, UsageError

# Each module has HELP, add_arguments(parser) and run(args) -> exit code. Imported on demand,
# so `archspec table` never pays for the modules of `train` or `draw`.
COMMANDS: tuple[str, ...] = ("check", "compile", "diff", "draw", "probe", "table", "train")


def command_module(name: str) -> ModuleType:
    return importlib.import_module(f"archspec.cli.{name}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or (for speed) one in which only command `only` is filled in."""
    parser = argparse.ArgumentParser(
        prog="archspec",
        description="Compile .arch network specs: check, tables, PyTorch code, diagrams, "
                    "training.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        if only is not None and name != only:
            sub.add_parser(name)
            continue
        module = command_module(name)
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    only = argv[0] if argv and argv[0] in COMMANDS else None
    args = build_parser(only).parse_args(argv)
    try:
        return int(args.run(args))
    except UsageError as exc:
        print(f"archspec: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("archspec: interrupted", file=sys.stderr)
        return 130

