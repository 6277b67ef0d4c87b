"""Helpers the sub-commands share: loading specs with diagnostics, number options, exit codes."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path

from archspec.core.diagnostics import render_all
from archspec.lang.frontend import SKETCH_CODES, Spec, load

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


def whole_number(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse `type`: a whole number from `minimum` (up to `maximum` if given), written
    `500000000`, `500_000_000`, `500,000,000` or `5e8`. Anything else is a usage error that
    says what was expected and what was given."""
    expected = (f"a whole number from {minimum:,} to {maximum:,}" if maximum is not None
                else f"a whole number of at least {minimum:,}")

    def parse(text: str) -> int:
        plain = text.strip().replace(",", "").replace("_", "")
        value: int | None
        try:
            value = int(plain)
        except ValueError:  # `5e8`, or not a number (too many digits for int() included)
            try:
                number = float(plain)
            except ValueError:
                number = math.nan
            value = int(number) if number.is_integer() else None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse
