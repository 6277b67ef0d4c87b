"""Helpers the sub-commands share: loading specs with diagnostics, exit codes."""

from __future__ import annotations

import sys
from pathlib import Path

from archspec.diagnostics import render_all
from archspec.frontend import SKETCH_CODES, Spec, load

EXIT_OK = 0
EXIT_ERRORS = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A command-line mistake (a missing file, a bad option value): exit code 2, one line."""


def load_or_report(path: str, *, allow_sketch: bool = False) -> Spec | None:
    """Load a spec and print its findings to stderr; None (after printing) if it is unusable."""
    if not Path(path).is_file():
        raise UsageError(f"cannot read {path}: no such file")
    spec = load(path)
    if allow_sketch and spec.drawable and not spec.ok:
        # A sketch is fine here: its missing arguments are not errors for this command.
        others = [d for d in spec.diagnostics if d.code not in SKETCH_CODES]
        if others:
            print(render_all(others, spec.source), file=sys.stderr)
        missing = len(spec.diagnostics) - len(others)
        print(f"{path}: note: a sketch; {missing} layer(s) lack arguments and are shown "
              "without sizes (`archspec check` lists them)", file=sys.stderr)
        return spec
    if spec.diagnostics:
        print(spec.render(), file=sys.stderr)
    return spec if spec.ok else None

