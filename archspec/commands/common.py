"""Helpers the sub-commands share: loading specs with diagnostics, atomic writes, exit codes."""

from __future__ import annotations

import os
import sys
import tempfile
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


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write a file whole or not at all: a temporary file beside it, then a rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
