"""Sub-commands: each module has HELP, add_arguments(parser) and run(args) -> exit code."""

from __future__ import annotations

from types import ModuleType

from archspec.commands import check, compile, draw, probe, table, train

COMMANDS: dict[str, ModuleType] = {
    "check": check,
    "compile": compile,
    "draw": draw,
    "probe": probe,
    "table": table,
    "train": train,
}
