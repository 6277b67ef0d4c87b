"""`archspec check FILE...`: validate specs and print located diagnostics."""

from __future__ import annotations

import json
import sys

from archspec.cli.common import (
    EXIT_ERRORS,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    read_spec,
    stdin_once,
)
from archspec.cli.options import Arguments, Options
from archspec.core.diagnostics import printable, source_order
from archspec.core.model import json_data
from archspec.core.text import shape_text
from archspec.lang.frontend import Spec

PAUSE_COLLECTOR = True  # cli.main
HELP = "validate specs: syntax, arguments, names and shapes"


def add_arguments(options: Options) -> None:
    options.add_argument("files", nargs="+", metavar="FILE", help=".arch files (- reads stdin)")
    options.add_argument("--format", choices=("text", "json"), default="text",
                        help="diagnostics as text (default) or JSON on stdout")


def run(args: Arguments) -> int:
    status = EXIT_OK
    reports = []
    stdin_once(args.files)
    for path in args.files:
        try:
            spec = _with_name_clashes(read_spec(path))
        except UsageError as exc:
            print(f"archspec: error: {exc}", file=sys.stderr)
            status = max(status, EXIT_USAGE)
            if args.format == "json":  # a file asked for and not checked is in the list too
                reports.append({"file": path, "ok": False, "error": str(exc),
                                "diagnostics": []})
            continue
        if args.format == "json":
            report: dict[str, object] = {
                "file": spec.source.path, "ok": spec.ok,
                "diagnostics": [json_data(d) for d in spec.diagnostics]}
            if spec.ok and spec.network is not None:
                out = spec.shapes.get(spec.network.output)
                report.update(network=spec.network.name, layers=len(spec.network.layers),
                              input=list(spec.network.input.shape),
                              output=list(out) if out is not None else None)
            reports.append(report)
        elif spec.diagnostics:
            print(spec.render(), file=sys.stderr)
        if not spec.ok or spec.network is None:
            status = max(status, EXIT_ERRORS)
            continue
        if args.format == "text":
            network = spec.network
            out = spec.shapes.get(network.output)
            shape = shape_text(out) if out is not None else "?"
            inp = shape_text(network.input.shape)
            warnings = len(spec.diagnostics)
            note = f", {warnings} warning{'s' * (warnings != 1)}" if warnings else ""
            count = len(network.layers)
            print(f"{printable(spec.source.path)}: ok: {network.name}, {count} "
                  f"layer{'s' * (count != 1)}, {inp} -> {shape}{note}")
    if args.format == "json":
        print(json.dumps(reports, indent=2))
    return status


def _with_name_clashes(spec: Spec) -> Spec:
    """The spec with the names its module could not key (`forward: CONV...` inside a named
    group), which `compile`, `probe` and `train` refuse: found by `check` too."""
    if not spec.ok or spec.network is None or not spec.network.modules:
        return spec
    from archspec.backends.torch.emit import name_clashes  # no torch: the emitter writes text

    clashes = name_clashes(spec.network)
    if not clashes:
        return spec
    return Spec(spec.source, spec.network, spec.shapes,
                sorted([*spec.diagnostics, *clashes], key=source_order))
