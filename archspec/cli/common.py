"""Helpers the sub-commands share: loading specs with diagnostics, number options, exit codes."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from archspec.core.diagnostics import printable, render_all
from archspec.core.source import Source
from archspec.lang.frontend import SHAPE_CODES, SKETCH_CODES, Spec, load, load_source

EXIT_OK = 0
EXIT_ERRORS = 1
EXIT_USAGE = 2  # a usage mistake, or a file that cannot be read or written
EXIT_PIPE = 141  # standard output closed by its reader: what SIGPIPE's default would give
STDIN = "-"


# The package each optional library comes with: `pip install 'archspec[EXTRA]'`. The plain
# install (lark, pydantic, graphviz) runs check, table, draw, diff and compile.
EXTRAS = {"torch": "torch", "numpy": "torch", "matplotlib": "torch", "kornia": "train",
          "sklearn": "train", "mlxtend": "train", "PIL": "train", "onnx": "onnx",
          "onnxscript": "onnx"}


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The extra that would have installed the module an import missed, or None when the
    module is none of the optional libraries (then the failure is a bug, not the install)."""
    return EXTRAS.get((exc.name or "").split(".")[0])


class UsageError(Exception):
    """A command-line mistake (a missing file, a bad option value): exit code 2, one line."""


def read_spec(path: str) -> Spec:
    """Load a spec from a file, or from standard input for `-` (named `<stdin>` in messages);
    UsageError if it cannot be read."""
    if path == STDIN:
        return load_source(Source.read_stream(sys.stdin.buffer, "<stdin>"))
    target = Path(path)  # a file, or a pipe (`<(...)`, /dev/stdin): read to the size limit
    if target.is_dir() or not target.exists():
        raise UsageError(f"cannot read {path}: "
                         f"{'it is a directory' if target.is_dir() else 'no such file'}")
    try:
        return load(path)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def stdin_once(paths: Sequence[str]) -> None:
    """UsageError where `-` (standard input) is given more than once: it can be read once."""
    times = list(paths).count(STDIN)
    if times > 1:
        raise UsageError(f"`-` (standard input) is given {times} times; it can be read once")


def load_or_report(path: str, *, allow_sketch: bool = False,
                   allow_shape_errors: bool = False) -> Spec | None:
    """Load a spec and print its findings to stderr; None (after printing) if it is unusable.
    `allow_shape_errors`: a whole graph whose only errors are shape errors (and missing
    arguments) is returned too, its findings printed; the caller says it failed."""
    spec = read_spec(path)
    if allow_shape_errors and spec.network is not None and spec.errors and all(
            d.code in SKETCH_CODES | SHAPE_CODES for d in spec.errors) and not spec.drawable:
        print(spec.render(), file=sys.stderr)
        return spec
    if allow_sketch and spec.drawable and not spec.ok:
        # A sketch is fine here: its missing arguments are not errors for this command.
        others = [d for d in spec.diagnostics if d.code not in SKETCH_CODES]
        if others:
            print(render_all(others, spec.source), file=sys.stderr)
        missing = len(spec.diagnostics) - len(others)
        print(f"{printable(spec.source.path)}: note: a sketch; {missing} layer(s) lack "
              "arguments and are shown without sizes (`archspec check` lists them)",
              file=sys.stderr)
        return spec
    if spec.diagnostics:
        print(spec.render(), file=sys.stderr)
    return spec if spec.ok else None


def output_folder(path: str) -> Path:
    """An output folder option's value (`Path("")` would silently be the current folder)."""
    if not path.strip():
        raise UsageError("the output folder is empty")
    return Path(path)


def text_output(path: str) -> str | None:
    """An argparse `type` for a text output's `-o`: `-` is standard output (None), as when
    no `-o` is given."""
    return None if path == "-" else path


def check_output(path: str, *, creates_folders: bool = False,
                 inputs: Sequence[str] = ()) -> None:
    """Refuse an output file that cannot be written before any work: an empty name, a
    folder, one of the command's `inputs` (it would be replaced by what was made of it), or
    (unless the command `creates_folders`) one in a folder that does not exist."""
    if not path.strip():
        raise UsageError("the output path is empty")
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"cannot write {path}: it is a directory")
    if path.endswith("/"):  # Path() drops the slash: `out.svg/` would be written as a file
        raise UsageError(f"cannot write {path}: the name ends in /, a folder's")
    for source in inputs:
        if source != STDIN and target.exists() and Path(source).exists() \
                and target.samefile(source):
            raise UsageError(f"cannot write {path}: it is the input {source}, which it would "
                             "replace")
    if not creates_folders and not target.parent.is_dir():
        why = "is not a directory" if target.parent.exists() else "does not exist"
        raise UsageError(f"cannot write {path}: {target.parent} {why}")


def refused(message: str) -> Exception:
    """What an option's `type` raises for a value it refuses: argparse's ArgumentTypeError,
    which argparse words as `argument --batch: MESSAGE` (imported here, at a refusal: a
    plain command line is read without argparse, cli/options.py)."""
    from argparse import ArgumentTypeError

    return ArgumentTypeError(message)


def whole_number(minimum: int, maximum: int | None = None,
                 why: str = "") -> Callable[[str], int]:
    """An argparse `type`: a whole number from `minimum` (up to `maximum` if given, which `why`
    explains), written `500000000`, `500_000_000`, `500,000,000` or `5e8`. Anything else is a
    usage error that says what was expected and what was given."""
    expected = (f"a whole number from {minimum:,} to {maximum:,}{why and f' ({why})'}"
                if maximum is not None else f"a whole number of at least {minimum:,}")

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
            raise refused(f"expected {expected}, got {text!r}")
        return value

    return parse


# An option of variable length (nargs="+") mapped to how many of the words after it its value
# takes; a command module's OPTION_WORDS. argparse gives such an option every word up to the
# next option, so `table --checkpoint blocks FILE` would leave FILE missing.
OptionWords = dict[str, Callable[[list[str]], int]]


def hand_back(argv: list[str], options: OptionWords) -> list[str]:
    """`argv` with the words after each of `options` that its value does not take moved in
    front of it, where argparse reads them as the positionals they are: `--checkpoint blocks
    FILE` is `FILE --checkpoint blocks`. An option is matched as argparse matches it, by its
    name or a prefix of it (`--check`); words end at the next option or at `--`."""
    out: list[str] = []
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "--":
            return out + argv[index:]
        out.append(word)
        index += 1
        takes = next((count for name, count in options.items()
                      if len(word) > 2 and name.startswith(word)), None)
        if takes is None:
            continue
        end = index
        while end < len(argv) and not _is_option(argv[end]):
            end += 1
        words = argv[index:end]
        kept = min(takes(words), len(words))
        out[-1:] = [*words[kept:], word, *words[:kept]]
        index = end
    return out


def _is_option(word: str) -> bool:
    """As argparse reads a word on a command line with no option that looks like a number:
    `-` and negative numbers are values."""
    if not word.startswith("-") or word == "-":
        return False
    try:
        float(word)
    except ValueError:
        return True
    return False
