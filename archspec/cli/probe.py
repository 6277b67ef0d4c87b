"""`archspec probe FILE... [--init SCHEME ...]`: activations and gradients at initialisation."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from archspec.catalog import INIT_NAMES
from archspec.cli.common import (
    EXIT_ERRORS,
    EXIT_OK,
    EXIT_USAGE,
    OptionWords,
    check_output,
    load_or_report,
    stdin_once,
    whole_number,
)
from archspec.cli.options import Arguments, Options

HELP = "what weight initialisation does to activations and gradients, layer by layer"
MAX_SAMPLES = 1_000_000
# A scheme as a spec's `init` line writes it: a name, and its arguments in brackets.
_SCHEME = re.compile(r"[A-Za-z_]\w*(\(.*)?", re.DOTALL)


def _schemes(words: list[str]) -> int:
    """How many of the words after --init are schemes: those up to the first that is a FILE
    (cli.main): no scheme's shape (`specs/x.arch`, `-`), or a file's name that names no
    scheme (`mynet`, a spec without a suffix; a file named `xavier` is still the scheme).
    Where every word has a scheme's shape, the last is FILE unless it names a scheme: a probe
    reads one at least (`--init xavier mynet`, no file `mynet` there, is that file missing)."""
    count = next((n for n, word in enumerate(words) if _is_file(word)), len(words))
    if count == len(words) > 1 and not _names_a_scheme(words[-1]):
        return count - 1
    return count


def _is_file(word: str) -> bool:
    if _SCHEME.fullmatch(word) is None:
        return True
    return not _names_a_scheme(word) and Path(word).exists()


def _names_a_scheme(word: str) -> bool:
    return word.partition("(")[0].lower() in INIT_NAMES


OPTION_WORDS: OptionWords = {"--init": _schemes}


def add_arguments(options: Options) -> None:
    options.add_argument("files", nargs="+", metavar="FILE", help=".arch files (- reads stdin)")
    options.add_argument("--samples", type=whole_number(2, MAX_SAMPLES), default=1000,
                        help="unit-gaussian inputs pushed through (default 1000)")
    options.add_argument("--seed", type=whole_number(0, 2**32 - 1), default=0,
                        help="seeds the input and the weights (default 0)")
    options.add_argument("--init", nargs="+", action="extend", metavar="SCHEME",
                        help="probe with these schemes instead of the spec's init, side by "
                             "side: torch, 'normal(std=0.01)', xavier, kaiming, orthogonal")
    options.add_argument("--format", choices=("text", "json"), default="text",
                        help="a table per network and scheme (default), or JSON")
    options.add_argument("--plot", metavar="PNG",
                        help="write the per-layer curves and histograms, one row per scheme")


def run(args: Arguments) -> int:
    # torch is imported here, when a module is actually built and run, not at CLI start-up.
    from archspec.backends.torch.emit import BuildError
    from archspec.core.diagnostics import render_all
    from archspec.lang.frontend import InitError, parse_init
    from archspec.runtime import probe as pr

    if args.plot is not None:
        check_output(args.plot, creates_folders=True, inputs=args.files)
    if args.plot is not None and not args.plot.lower().endswith(".png"):
        print(f"archspec: error: cannot plot to {args.plot}: the name must end in .png",
              file=sys.stderr)
        return EXIT_USAGE
    schemes = []
    for text in args.init or ():
        try:
            schemes.append(parse_init(text))
        except InitError as exc:
            print(exc, file=sys.stderr)
            return EXIT_USAGE
    probes = []
    stdin_once(args.files)
    for path in args.files:
        spec = load_or_report(path)
        if spec is None or spec.network is None:
            return EXIT_ERRORS
        for scheme in schemes or [None]:
            try:
                probes.append(pr.probe(spec.network, spec.shapes, init=scheme,
                                       samples=args.samples, seed=args.seed))
            except BuildError as exc:
                print(render_all(exc.diagnostics, spec.source), file=sys.stderr)
                return EXIT_ERRORS
    if args.format == "json":
        sys.stdout.write(pr.render_json(probes))
    else:
        sys.stdout.write(pr.render_text(probes))
    if args.plot is not None:
        pr.plot(probes, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr if args.format == "json" else sys.stdout)
    return EXIT_OK
