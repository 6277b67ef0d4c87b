"""argparse's reading of the command line: help, usage, refusals, lines too unusual for options."""

from __future__ import annotations

import argparse
import sys
from typing import IO, Any

import archspec
from archspec.cli import COMMANDS, command_module, command_options
from archspec.cli.common import hand_back
from archspec.cli.options import Arguments


def parse(argv: list[str], only: str | None) -> Arguments:
    """The command line read by the parser of command `only` (or of every command): its
    help, usage or version written, or a refusal said with its usage (SystemExit)."""
    parser = build_parser(only)
    if only is not None:  # an option's words past its value are positionals (FILE)
        argv = hand_back(argv, getattr(command_module(only), "OPTION_WORDS", {}))
    args, extra = parser.parse_known_args(argv, Arguments())
    if extra:  # said by the command's own parser, with its usage (argparse: the top one's)
        args.command_parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


class _Formatter(argparse.HelpFormatter):
    """argparse's help formatter, set up only when it formats something. argparse makes one
    for every option added, to check the option's metavar, which needs none of its settings;
    setting one up sizes it to the terminal, which imports shutil (~2.5 ms of a start, with
    the bz2 and lzma it imports). Help and usage come out as argparse's own."""

    def __init__(self, prog: str, **settings: Any) -> None:  # argparse's waits: __getattr__
        self._prog = prog
        self._settings = settings

    def __getattr__(self, name: str) -> Any:
        """The first setting asked for sets them all up (argparse's own __init__)."""
        settings = self.__dict__.pop("_settings", None)
        if settings is None:
            raise AttributeError(name)
        super().__init__(self._prog, **settings)
        return getattr(self, name)


class _Parser(argparse.ArgumentParser):
    """argparse's parser, but help, usage and version text that standard output cannot take
    fail as any other write does (argparse drops the error and exits 0): flushed here, a
    failed write ends in main() as one error line. And an option's value written `=--`
    (`-o=--`) is `--`, as Python 3.13's argparse reads it: 3.11's takes the `--` out and
    stores an empty list, which no command expects (`-o=--` ended in a traceback)."""

    def _print_message(  # type: ignore[override]  # typeshed's file: a SupportsWrite
            self, message: str, file: IO[str] | None = None) -> None:
        if message:
            out = file or sys.stderr
            out.write(message)
            out.flush()

    def _get_values(self, action: argparse.Action, arg_strings: list[str]) -> Any:
        if action.option_strings and action.nargs is None and arg_strings == ["--"]:
            value = self._get_value(action, "--")
            self._check_value(action, value)
            return value
        return super()._get_values(action, arg_strings)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or (for speed: ~1 ms) one with command `only` alone, which is all
    that parsing a command line that starts with it needs."""
    parser = _Parser(
        prog="archspec", formatter_class=_Formatter,
        description="Compile .arch network specs: check, tables, PyTorch code, diagrams, "
                    "training.")
    parser.add_argument("--version", action="version", version=f"archspec {archspec.__version__}")
    # prog given: else argparse formats the usage to find it, which sets a formatter up
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                prog="archspec")
    for name in COMMANDS:
        if only is not None and name != only:
            continue
        module = command_module(name)
        command = sub.add_parser(name, help=module.HELP, description=module.HELP,
                                 formatter_class=_Formatter)
        command_options(name).onto(command)
        command.set_defaults(run=module.run, command_parser=command)
    return parser

