"""The command line read without argparse (cli/options.py) reads what argparse reads, or
leaves the line to argparse: on generated command lines of every command, and on the ones a
user types most."""

from __future__ import annotations

import argparse
import contextlib
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archspec import cli
from archspec.cli import parser as argparse_reader
from archspec.cli.options import Arguments, Options

# The words a generated line is made of: each command's option names, prefixes of them
# (argparse's abbreviations), `name=value`, values of every kind its options take or refuse,
# files, and what argparse reads specially.
VALUES = ["json", "text", "csv", "markdown", "cs231n", "torchinfo", "default", "float32",
          "bfloat16", "bf16", "cuda", "cpu", "adam", "sgd", "TB", "LR", "full", "compact",
          "1", "0", "2", "-1", "-5", "5e8", "1,000", "x", "1.5", "16GiB", "16Gb", "blocks",
          "every", "none", "xavier", "normal(std=0.01)", "a.arch", "b.arch", "specs/x.arch",
          "-", "--", "", "out/", "dir", "3x32x32", "mod:fn", "-h", "--help", "--version",
          "-x", "--nothing", "a b", "-o=x"]


def options_of(command: str) -> Options:
    return cli.command_options(command)


def names_of(options: Options) -> list[str]:
    return [name for names, _ in options.calls for name in names if name.startswith("-")]


def by_argparse(argv: list[str]) -> Arguments | None:
    """What argparse reads (as cli.main runs it), or None where it refuses the line (or
    writes help or a version)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            args = argparse_reader.parse(argv, argv[0])
        except SystemExit:
            return None
    del args.command_parser
    return args


def without_argparse(argv: list[str]) -> Arguments | None:
    args = options_of(argv[0]).read(argv[1:])
    if args is not None:
        args.command, args.run = argv[0], cli.command_module(argv[0]).run
    return args


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    """A command's line as users write one (its positionals, its options with values of
    their kind), often with something odd: a stray word, an abbreviation, a value refused,
    positionals split by an option."""
    command = draw(st.sampled_from(cli.COMMANDS))
    options = options_of(command)
    files = st.sampled_from(["a.arch", "b.arch", "-", "specs/x.arch", "mod:fn", ""])
    positionals: list[str] = []
    chunks: list[list[str]] = []
    for names, declared in options.calls:
        if not names[0].startswith("-"):
            count = {None: 1, "?": draw(st.integers(0, 1)), "+": draw(st.integers(1, 3))}
            positionals += draw(st.lists(files, min_size=count[declared.get("nargs")],
                                         max_size=count[declared.get("nargs")]))
        elif draw(st.integers(0, 2)) == 0:
            name = draw(st.sampled_from(names))
            if declared.get("action") == "store_true":
                chunks.append([name])
                continue
            value = draw(st.sampled_from(list(declared.get("choices") or VALUES)) if
                         draw(st.booleans()) else st.sampled_from(VALUES))
            chunks.append([f"{name}={value}"] if draw(st.booleans()) else [name, value])
    odd = st.one_of(st.sampled_from(VALUES), st.sampled_from(names_of(options)),
                    st.sampled_from(names_of(options)).map(lambda name: name[:-2]))
    if draw(st.integers(0, 3)) == 0:
        chunks.insert(draw(st.integers(0, len(chunks))), [draw(odd)])
    split = draw(st.integers(0, len(positionals))) if draw(st.integers(0, 5)) == 0 else 0
    chunks.insert(draw(st.integers(0, len(chunks))), positionals[split:])
    chunks.insert(draw(st.integers(0, len(chunks))), positionals[:split])
    return [command, *(word for chunk in chunks for word in chunk)]


@settings(max_examples=1500, deadline=None)
@given(command_lines())
def test_a_line_read_without_argparse_is_read_as_argparse_reads_it(argv: list[str]) -> None:
    ours = without_argparse(argv)
    if ours is not None:
        assert by_argparse(argv) == ours


# What users type most: each read without argparse, to what argparse reads.
PLAIN = [
    ["table", "specs/vgg16.arch"],
    ["table", "--format", "json", "specs/vgg16.arch"],
    ["table", "specs/vgg16.arch", "--style=cs231n", "--batch", "64", "--fold"],
    ["table", "-", "-o", "-", "--dtype", "bfloat16", "--amp", "bf16", "--fit", "16GiB"],
    ["table", "specs/vgg16.arch", "--depth", "2", "--optimizer", "adam", "-o", "out.txt"],
    ["check", "specs/vgg16.arch", "specs/resnet18.arch", "--format", "json"],
    ["check", "--format=json", "a.arch"],
    ["compile", "specs/vgg16.arch", "-o", "build", "--max-params", "1,000"],
    ["import", "torchvision.models:resnet18", "--input", "3x32x32", "--partial"],
    ["diff", "a.arch", "b.arch", "--format", "json"],
    ["train", "specs/lenet5.arch", "--epochs", "2", "--device", "cpu"],
    ["probe", "specs/vgg16.arch", "--samples", "100"],
]


@pytest.mark.parametrize("argv", PLAIN, ids=" ".join)
def test_plain_lines_are_read_without_argparse(argv: list[str]) -> None:
    ours = without_argparse(argv)
    assert ours is not None
    assert ours == by_argparse(argv)


# What it leaves to argparse, which reads it or words the refusal.
LEFT = [
    ["table", "--help"],  # help
    ["table", "-h", "a.arch"],
    ["table", "--form", "json", "a.arch"],  # an abbreviation
    ["table", "--", "-a.arch"],  # `--`
    ["table", "-5"],  # a negative number as a positional
    ["table", "a.arch", "--batch", "-1"],  # a value that starts with `-`
    ["table", "a.arch", "--batch", "x"],  # a value the type refuses
    ["table", "a.arch", "--format", "yaml"],  # a value the choices refuse
    ["table", "a.arch", "--fold=1"],  # store_true given a value
    ["table", "a.arch", "--checkpoint", "every", "2"],  # an action of its own
    ["table", "a.arch", "b.arch"],  # too many positionals
    ["table"],  # too few
    ["table", "-oout.txt", "a.arch"],  # a short option's value attached
    ["diff", "a.arch", "--format", "json", "b.arch"],  # positionals on both sides of an option
    ["draw", "a.arch"],  # a positional of `?`: argparse reads those alone
    ["probe", "a.arch", "--init", "xavier"],  # extend
]


@pytest.mark.parametrize("argv", LEFT, ids=" ".join)
def test_unusual_lines_are_left_to_argparse(argv: list[str]) -> None:
    assert without_argparse(argv) is None


def test_a_default_given_as_text_is_read_by_the_type() -> None:
    # argparse reads a default written as text with the option's type (its choices are not
    # checked), where the option is not given.
    options = Options()
    options.add_argument("--size", type=len, default="four")
    options.add_argument("--name", default="x")
    assert options.read([]) == Arguments(size=4, name="x")
    assert options.read(["--size", "ab"]) == Arguments(size=2, name="x")


def argparse_reads(options: Options, words: list[str]) -> Arguments | None:
    """What an argparse parser of `options` reads from `words`, or None where it refuses."""
    parser = argparse.ArgumentParser(prog="test", exit_on_error=False)
    options.onto(parser)
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            return parser.parse_args(words, Arguments())
        except (argparse.ArgumentError, SystemExit):
            return None


@pytest.mark.parametrize("settings", [
    {"required": True},  # argparse refuses the line without it
    {"action": "store_false"},  # True where not given
    {"action": "store_const", "const": 3},
    {"default": argparse.SUPPRESS},  # no attribute where not given
    {"action": "help"},
    {"action": "count"},
], ids=repr)
def test_a_setting_it_does_not_follow_leaves_the_line_to_argparse(
        settings: dict[str, object]) -> None:
    # No command declares these yet: one that does must not be read to other values than
    # argparse's, the option given or not.
    options = Options()
    options.add_argument("file")
    options.add_argument("--flag", **settings)
    for words in (["a.arch"], ["a.arch", "--flag"]):
        ours = options.read(words)
        assert ours is None or ours == argparse_reads(options, words), words


def test_a_positional_of_another_action_leaves_the_line_to_argparse() -> None:
    options = Options()
    options.add_argument("files", nargs="+", action="append")
    assert argparse_reads(options, ["a", "b"]) == Arguments(files=[["a", "b"]])
    assert options.read(["a", "b"]) in (None, Arguments(files=[["a", "b"]]))


@pytest.mark.parametrize("argv", [["table", "a.arch", "-o=--"], ["table", "a.arch", "--output=--"],
                                  ["compile", "a.arch", "--weights=--"]])
def test_an_options_value_written_equals_dashes_is_dashes(argv: list[str]) -> None:
    # Python 3.11's argparse takes `--` out of `--output=--` and stores []: a traceback further
    # on. Both readers read it as 3.13's argparse does, as the value `--`.
    theirs = by_argparse(argv)
    assert theirs is not None and theirs == without_argparse(argv)
    assert "--" in vars(theirs).values()
