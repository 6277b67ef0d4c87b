"""The `archspec` command line: one sub-command per module in archspec/commands/."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from archspec.commands import COMMANDS, command_module
from archspec.commands.common import EXIT_USAGE, UsageError


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


if __name__ == "__main__":
    sys.exit(main())
