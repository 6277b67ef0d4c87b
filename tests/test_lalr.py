"""archspec's LALR runtime (lang/lalr.py) parses as lark does from the same tables: the same
syntax trees with the same spans, the same lines rejected and so the same diagnostics (lark
says why a line is wrong); a spec whose lines all parse never imports lark."""

from __future__ import annotations

import dataclasses
import re
import runpy
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from conftest import all_specs, python_c
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lark import Lark, Tree
from lark.exceptions import UnexpectedInput

from archspec.core.diagnostics import Diagnostics
from archspec.core.source import Source, Span
from archspec.lang import lalr, parser
from archspec.lang.tables import TABLES

ROOT = Path(__file__).resolve().parent.parent
FILES = [*all_specs(), *sorted((ROOT / "tests" / "bad").glob("*.arch"))]


@contextmanager
def lark_only() -> Iterator[None]:
    """The runtime rejects every line (and parser.py reads no line as a plain chain), so that
    lark parses each one, with the same callbacks (how parser.py read lines before it had a
    runtime)."""
    with mock.patch.object(lalr.Parser, "parse", side_effect=lalr.Rejected), \
            mock.patch.object(parser, "_plain_chain", return_value=None):
        yield


def parsed(text: str) -> str:
    """A whole spec's syntax tree and diagnostics (message and span), as text."""
    diags = Diagnostics()
    tree = parser.parse(Source(text, "spec.arch"), diags)
    return f"{tree!r}\n{[(d.message, d.hint, d.span) for d in diags.items]}"


def line_both_ways(text: str, start: str) -> tuple[Any, Any]:
    """The node each parser builds from one line (None where it rejects the line); where
    parser.py reads the line as a plain chain, without the runtime, the node is lark's too."""
    runtime, build = parser._runtime()
    build.at(Source(text), parser._Line(0, len(text)))
    plain = parser._plain_chain(text, runtime, build) if start == "chain" else None
    try:
        ours = runtime.parse(text, start)
    except lalr.Rejected:
        ours = None
    try:
        theirs = parser._lark().parse(text, start=start)
    except UnexpectedInput:
        theirs = None
    assert plain is None or plain == theirs, text
    return ours, theirs


def logical_lines(text: str) -> list[str]:
    source = Source(text)
    return [text[line.start:line.end] for line in parser._split(source, Diagnostics())]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_spec_and_bad_file_parses_as_lark_parses_it(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    ours = parsed(text)
    with lark_only():
        assert parsed(text) == ours


def spans(node: Any) -> Iterator[Span]:
    """Every span in a syntax tree."""
    if isinstance(node, Span):
        yield node
    elif isinstance(node, tuple):
        for item in node:
            yield from spans(item)
    elif dataclasses.is_dataclass(node):
        for field in dataclasses.fields(node):
            yield from spans(getattr(node, field.name))


ROWS = "network t\ninput 3x8x8\n[CONV3-8 -\n  RELU]*2 - (ID |\n CONV1-8)\r\n  - FC-10\n"


def test_every_span_is_the_one_the_source_makes() -> None:
    """_Build finds a span's line and columns without searching when its line is one row;
    each is the span Source.span makes (where a bracket carries a line over rows too)."""
    count = 0
    for text in [*(path.read_text(encoding="utf-8") for path in FILES), ROWS]:
        source = Source(text)
        for span in spans(parser.parse(source, Diagnostics())):
            assert span == source.span(span.start, span.end), text
            count += 1
    assert count > 5_000


def test_every_line_of_the_corpus_as_a_chain_and_as_a_directive() -> None:
    """Each logical line read both ways: where lark accepts it the runtime builds the same
    node, where lark rejects it the runtime rejects it too (some of each, both ways)."""
    outcomes = set()
    for path in FILES:
        for line in logical_lines(path.read_text(encoding="utf-8")):
            for start in ("chain", "directive"):
                ours, theirs = line_both_ways(line, start)
                assert ours == theirs, (path.name, line, start)
                outcomes.add((start, ours is None))
    assert len(outcomes) == 4


def docs_texts() -> list[str]:
    return [path.read_text(encoding="utf-8")
            for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]]


def test_every_fenced_block_of_the_docs_parses_as_lark_parses_it() -> None:
    """Each fenced block as a spec (specs, shell lines and outputs alike: text to read)."""
    blocks = [block for text in docs_texts()
              for block in re.findall(r"(?ms)^```[^\n]*\n(.*?)^```", text)]
    assert len(blocks) > 50
    for block in blocks:
        ours = parsed(block)
        with lark_only():
            assert parsed(block) == ours, block


def test_every_code_span_and_block_line_of_the_docs_as_a_chain_and_a_directive() -> None:
    """`CONV3-64`, `[CONV3-64]*2 - POOL2`, `input 224x224x3 hwc`...: the forms the docs
    show, and the lines of their blocks, read both ways by both parsers."""
    spans = [span for text in docs_texts() for span in re.findall(r"`([^`\n]+)`", text)]
    lines = [line for text in docs_texts()
             for block in re.findall(r"(?ms)^```[^\n]*\n(.*?)^```", text)
             for line in logical_lines(block)]
    accepted = 0
    for line in [*spans, *lines]:
        for start in ("chain", "directive"):
            ours, theirs = line_both_ways(line, start)
            assert ours == theirs, (line, start)
            accepted += ours is not None
    assert len(spans) > 500 and accepted > 500


# Pieces of the grammar (every terminal, in forms that test its pattern's edges, and pieces
# that are none), so that random lines exercise the lexer's order and the parser's errors.
PIECES = [
    "CONV3-64", "conv1-8", "CONV3-$c/$s", "CONV1-{$c*4}", "POOL3/2", "POOL2/{$s}", "FC-4096",
    "a$b", "a{1}", "_x", "x3", "X2", "x", "RELU", "name", "3", "64", "0.5", ".5", "5.", "1e-2",
    "2E+3", "3x3", "3×3", "224x224x3", "3x", '"text"', '"a\\"b"', '"', "$c", "$", "{$a+1}",
    "{", "}", "-", "->", "→", "--", "- >", "[", "]", "(", ")", "|", "+", "*", "*3", "* 3",
    "*$n", "*{2}", "x 2", "×4", ",", ":", "=", "/", "#", "# note", " ", " ", "\t", "\n", "@",
]


def _lines(pieces: list[str], most: int) -> st.SearchStrategy[str]:
    """Lines of 1 to `most` of the pieces, each followed by a blank or nothing."""
    return st.tuples(st.lists(st.sampled_from(pieces), min_size=1, max_size=most),
                     st.lists(st.sampled_from(["", " ", ""]), min_size=most, max_size=most)
                     ).map(lambda t: "".join(piece + gap
                                             for piece, gap in zip(*t, strict=False)))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_lines(PIECES, 24))
def test_random_lines_are_accepted_and_rejected_as_lark_does(text: str) -> None:
    for start in ("chain", "directive"):
        ours, theirs = line_both_ways(text, start)
        assert ours == theirs
    spec = "network t\ninput 3x8x8\n" + text + "\n"
    ours_spec = parsed(spec)
    with lark_only():
        assert parsed(spec) == ours_spec


def _chains(words: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Valid chains built from the grammar's rules: calls with arguments, named elements,
    groups and branches with repeats, separators `-` and `->`."""
    value = st.sampled_from(["3", "0.5", "-1", "3x3", '"s"', "$c", "{$c*2}", "same", "1e3"])
    arg = st.one_of(value, st.tuples(st.sampled_from(["k", "stride"]), value).map("=".join))
    call = st.tuples(words, st.one_of(st.none(), st.lists(arg, max_size=3))).map(
        lambda t: t[0] if t[1] is None else f"{t[0]}({', '.join(t[1])})")
    repeat = st.sampled_from(["", "*2", " x 3", "×$n", "*{2}"])

    def extend(chain: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        group = st.tuples(st.sampled_from(["[]", "()"]), chain, repeat).map(
            lambda t: f"{t[0][0]}{t[1]}{t[0][1]}{t[2]}")
        branch = st.tuples(st.lists(chain, min_size=2, max_size=3),
                           st.sampled_from([" | ", "+", " * "]), repeat).map(
            lambda t: f"({t[1].join(t[0])}){t[2]}")
        element = st.one_of(call, group, branch)
        named = st.tuples(st.sampled_from(["b", "skip"]), element).map(": ".join)
        return st.lists(st.one_of(element, named), min_size=1, max_size=4).flatmap(
            lambda es: st.sampled_from([" - ", " -> ", "→", "\t-\t"]).map(
                lambda sep: sep.join(es)))

    return st.recursive(call, extend, max_leaves=10)


WORDS = st.sampled_from(["CONV3-64", "FC-10", "RELU", "POOL2/2", "CONV1-{$c*4}", "b", "x"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_chains(WORDS), st.sampled_from(["", "- ", "-> "]), st.sampled_from(["", " -", " #c"]))
def test_valid_chains_build_the_same_trees(chain: str, before: str, after: str) -> None:
    text = before + chain + after
    ours, theirs = line_both_ways(text, "chain")
    assert ours is not None, text
    assert ours == theirs
    ours, theirs = line_both_ways("block b($c): " + text, "directive")
    assert ours is not None, text
    assert ours == theirs


# Lines of bare words and separators (parser.py reads them without the runtime), with blanks,
# comments and pieces that make a line something else.
PLAIN = ["CONV3-64", "RELU", "x3", "X", "a$b", "A-1", "_x", "POOL3/2", "CONV1-{$c*4}", "-",
         "->", "→", "--", " ", "\t", "\n", " # note", "(", "(3)", ":", "*2", "×2", "[", "3"]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_lines(PLAIN, 12))
def test_plain_chains_are_read_as_the_runtime_and_lark_read_them(text: str) -> None:
    ours, theirs = line_both_ways(text, "chain")  # and parser._plain_chain's, if it reads it
    assert ours == theirs


@pytest.mark.parametrize(("text", "plain"), [
    ("CONV3-64 - RELU -> POOL2", True), ("- FC-10 -", True), ("→ x3\t# c", True),
    ("CONV3-64 - RELU(0.1)", False), ("a: RELU", False), ("RELU RELU", False),
    ("RELU - - RELU", False), ("-", False), ("", False), ("[RELU]*2", False)])
def test_which_lines_are_read_as_plain_chains(text: str, plain: bool) -> None:
    runtime, build = parser._runtime()
    build.at(Source(text), parser._Line(0, len(text)))
    read = parser._plain_chain(text, runtime, build)
    assert (read is not None) == plain
    if read is not None:
        assert read == runtime.parse(text, "chain")


def test_a_left_recursive_rule_grows_one_list() -> None:
    """lark reads `element (_sep element)*` as a left-recursive `_rule`: reducing it again
    appends to the list its last reduction built, which the parent splices. A copy a
    reduction made a line of 100k layers take 100 s instead of 1 (benches/parse.py's
    one-line form)."""
    runtime, _ = parser._runtime()
    star = next(arg for row in runtime._actions.values() for arg in row.values()
                if isinstance(arg, tuple) and arg[:2] == (3, "__chain_star_0"))
    grown = ["CONV3-8", "-", "RELU"]
    build = star[2]
    assert build is not None
    assert build([grown, ["-"], "FC-10"]) is grown
    assert grown == ["CONV3-8", "-", "RELU", "-", "FC-10"]


def test_stored_tables_are_current_and_parse_as_built_ones() -> None:
    """lang/tables.py (scripts/parser_tables.py) is for the grammar as it is; the runtime
    (and lark, for errors) from it parse every spec and bad file exactly as from tables
    built from the grammar."""
    grammar = parser.grammar_text()
    assert TABLES["digest"] == parser.grammar_digest(grammar), \
        "stale lang/tables.py: run scripts/parser_tables.py"
    texts = [path.read_text(encoding="utf-8") for path in FILES]
    loaded = [parsed(text) for text in texts]
    try:
        for cached in (parser._tables, parser._runtime, parser._lark):
            cached.cache_clear()
        built = parser.build_tables(grammar)
        with mock.patch.object(parser, "_tables", lambda: built):
            assert [parsed(text) for text in texts] == loaded
    finally:
        for cached in (parser._tables, parser._runtime, parser._lark):
            cached.cache_clear()


def test_the_stored_tables_are_what_the_script_writes() -> None:
    """scripts/parser_tables.py numbers lark's symbols and states the same way at every run
    (lark's own order varies from one process to the next), so regenerating lang/tables.py
    changes nothing unless the grammar did."""
    script = runpy.run_path(str(ROOT / "scripts" / "parser_tables.py"))
    assert script["render"]() == (ROOT / "archspec" / "lang" / "tables.py").read_text(
        encoding="utf-8"), "run scripts/parser_tables.py"


# A grammar of its own for what archspec's does not show: a `?rule` of one child and of
# more, a rule without a callback, an inlined `_rule` of several children, tokens filtered
# out (keep_all_tokens off for a rule), a terminal's flag, priorities against longer matches.
TOY = r"""
start: _items
_items: item (_sep item)*
_sep: ";" | "," ","
?item: pair | NAME | NUM -> num | BIG | "[" start "]" | other
pair: NAME "=" value
?value: NUM | NAME NAME
other: "@" NAME
NAME: /[a-z]+/
NUM.2: /[0-9]+/
BIG: /[0-9]+x/i
%ignore " "
"""


class Toy:
    def pair(self, children: list[Any]) -> tuple[str, ...]:
        return ("pair", *children)

    def num(self, children: list[Any]) -> tuple[str, ...]:
        return ("num", *children)

    def start(self, children: list[Any]) -> list[Any]:
        return ["start", *children]


@pytest.mark.parametrize("text", ["a", "a=1", "a = b c", "a;b , ,c", "12", "12X", "[a;1]",
                                  "@ q", "a=", "1x1", "a,b", "=", "a;;b", "[[a]]", ""])
def test_the_runtime_runs_another_grammar_as_lark_does(text: str) -> None:
    toy = Lark(TOY, parser="lalr", maybe_placeholders=False)
    data, memo = toy.memo_serialize(parser_classes())
    ours = lalr.Parser({"data": data, "memo": memo}, Toy())
    theirs = Lark._load_from_dict(data, memo, transformer=Toy())
    try:
        want: Any = theirs.parse(text)
    except UnexpectedInput:
        with pytest.raises(lalr.Rejected):
            ours.parse(text, "start")
        return
    assert shown(ours.parse(text, "start")) == shown(want)


def shown(value: Any) -> Any:
    """Tokens as their type, text and offsets (lark's Token and lalr.Token alike), and the
    node of a rule without a callback as its children (lark's is a Tree of them)."""
    if isinstance(value, str) and hasattr(value, "type"):
        return f"{value.type}:{value}@{value.start_pos}-{value.end_pos}"
    if isinstance(value, Tree):
        return shown(value.children)
    if isinstance(value, list | tuple):
        return [shown(v) for v in value]
    return value


def parser_classes() -> list[type]:
    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    return [TerminalDef, Rule]


@pytest.mark.parametrize("options", [{"lexer": "basic"}, {"maybe_placeholders": True},
                                     {"lexer_callbacks": {"NAME": str}}])
def test_tables_of_a_parser_the_runtime_does_not_run_are_refused(options: dict[str, Any]) -> None:
    """Its lexer tries a state's terminals, not all; its children have no placeholders."""
    toy = Lark(TOY, parser="lalr", **{"maybe_placeholders": False, **options})
    data, memo = toy.memo_serialize(parser_classes())
    with pytest.raises(ValueError, match="does not run"):
        lalr.Parser({"data": data, "memo": memo}, Toy())


def test_a_grammar_whose_tokens_lark_would_retype_is_refused() -> None:
    """lark makes a WORD `if` the keyword IF; the runtime does not: such tables are not built."""
    grammar = 'chain: WORD | "if"\ndirective: WORD\nWORD: /[a-z]+/\n'
    with pytest.raises(ValueError, match="retype"):
        parser.build_tables(grammar)


@pytest.mark.parametrize("command", [["table", "specs/vgg16.arch"], ["check", "specs/vgg16.arch"],
                                     ["table", "specs/zoo/inception_v3.arch", "--format", "json"]])
def test_lark_is_never_imported_for_a_spec_that_parses(command: list[str]) -> None:
    done = python_c("import io, sys\nfrom contextlib import redirect_stdout\n"
                    "from archspec.cli import main\n"
                    f"with redirect_stdout(io.StringIO()):\n    status = main({command!r})\n"
                    "assert 'lark' not in sys.modules, 'lark was imported'\nsys.exit(status)\n")
    assert done.returncode == 0, done.stderr


SLIP = """\
{path}:3:9: error: unexpected `64`; expected a layer or name, `[`, `]`, `(`, `)`, `|`, ...
   3 | CONV3 - 64 - RELU
     |         ^~
     = help: a `-` followed by a space separates layers; write the shorthand without spaces, \
e.g. CONV3-64 or FC-4096
{path}:4:7: error: unexpected `FC-10`; expected `-`, `->`, `]`, `(`, `)`, `|`, ...
   4 | FC-10 FC-10
     |       ^~~~~
"""


def test_a_syntax_error_is_told_by_lark_word_for_word(tmp_path: Path) -> None:
    """The lines the runtime rejects are read again by lark (imported then), whose account
    of the error gives the message: the same as before the runtime (output of main@1b43d05)."""
    spec = tmp_path / "slip.arch"
    spec.write_text("network t\ninput 3x8x8\nCONV3 - 64 - RELU\nFC-10 FC-10\n")
    done = python_c("import sys\nfrom archspec.cli import main\n"
                    f"status = main(['check', {str(spec)!r}])\n"
                    "print('lark' in sys.modules)\nsys.exit(status)\n")
    assert (done.returncode, done.stdout) == (1, "True\n")
    assert done.stderr == SLIP.format(path=spec)
