"""Sub-commands: each module has HELP, add_arguments(parser) and run(args) -> exit code."""

from __future__ import annotations

import importlib
from types import ModuleType

# Imported on demand, so `archspec table` never pays for the modules of `train` or `draw`.
COMMANDS: tuple[str, ...] = ("check", "compile", "draw", "probe", "table", "train")


def command_module(name: str) -> ModuleType:
    return importlib.import_module(f"archspec.commands.{name}")
