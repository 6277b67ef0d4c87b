"""Text → syntax tree: splits a spec into logical lines and parses each with the LALR tables."""

from __future__ import annotations

import hashlib
import math
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from archspec.core.diagnostics import Diagnostics, closest
from archspec.core.limits import MAX_NESTING, MAX_SOURCE_BYTES
from archspec.core.model import made
from archspec.core.record import Record
from archspec.core.source import Source, Span
from archspec.kinds import registry as reg
from archspec.lang import lalr
from archspec.lang import syntax as s

if TYPE_CHECKING:  # lark is imported only to build the tables or to say why a line is wrong
    from lark import Lark
    from lark.exceptions import UnexpectedInput

# What line splitting looks at: strings, comments, brackets, and newlines (a run of blank lines
# is one match, so a file of blank lines is not a loop over them).
_SCAN = re.compile(r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*|[\[\]()]|\n(?:[ \t\f\r]*\n)*')
_COMMENT = re.compile(r"#[^\n]*")
_FIRST_WORD = re.compile(r"[ \t\f\r\n]*([A-Za-z_][A-Za-z0-9_]*)")
_TRAIN_LINE = re.compile(r"\s*train[ \t]*:\s*(#[^\n]*)?\s*$", re.IGNORECASE)
_INPUT_HEADER = re.compile(r"[ \t]*input[ \t]+\d", re.IGNORECASE)
# Patterns most specs never need are strings, compiled (and cached by `re`) at first use.
_BATCHNORM_HEADER = r"\s*batchnorm\s*(#[^\n]*)?\s*$"
# Characters the language uses outside comments and strings; inside them any text but control
# characters and undecodable bytes (U+FFFD) is fine. In ASCII text both are the control
# characters but tab, newline, form feed and carriage return (`_BAD_ASCII`).
_BAD_CHAR = r"[^\x09\x0a\x0c\x0d\x20-\x7e×→]"
_BAD_ANYWHERE = r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufffd]"
_BAD_ASCII = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_COMMENT_OR_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*')
# A number as the grammar's NUMBER token reads it (also inside words: CONV3-64).
_NUMBER_TEXT = r"(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?"
# What a number beyond floating point needs: an exponent, or 309 digits before any point.
_MAYBE_HUGE = re.compile(r"[\d.][eE][+-]?\d|\d{309}")

# The grammar and its tables lie beside this module (package data; importlib.resources would
# cost a start ~1.5 ms of imports).
_HERE = Path(__file__).parent
# Each join's operator is its own terminal, named after the join (`+` is JOIN_ADD).
_JOIN_TOKENS = {f"JOIN_{join.name}": join for join in reg.JOINS}
_TOKEN_NAMES = {
    "WORD": "a layer or name", "NUMBER": "a number", "SIZE": "a size", "STRING": "a string",
    "PARAM": "a $parameter", "EXPR": "an {expression}", "REPEAT": "a repeat count",
    "MINUS": "`-`", "ARROW": "`->`",
    "LSQB": "`[`", "RSQB": "`]`", "LPAR": "`(`", "RPAR": "`)`",
    **{token: f"`{join.op}`" for token, join in _JOIN_TOKENS.items()},
    "COMMA": "`,`", "COLON": "`:`", "EQUAL": "`=`", "$END": "the end of the line",
}


class _Line(Record):
    start: int
    end: int


class _Build:
    """The parser's callbacks, one per grammar rule (lalr.Parser calls them as it reduces, as
    does lark's parser where it reads a line): syntax nodes with file spans, no tree, no
    recursion. A token is a str with `.type`, `.start_pos` and `.end_pos` in its line."""

    def __init__(self) -> None:
        self.source = Source("")
        self.base = 0  # the offset in the file of the line being parsed
        # Where that line has no newline: its line number and what turns an offset into a
        # column (a span is made without searching the file's line starts); else 0.
        self.row = 0
        self.shift = 0

    def at(self, source: Source, line: _Line) -> None:
        """Build the nodes of this line of this file next."""
        self.source, self.base = source, line.start
        if source.text.find("\n", line.start, line.end) < 0:
            self.row, column = source.position(line.start)
            self.shift = column - line.start
        else:
            self.row = 0

    def _make(self, start: int, end: int) -> Span:
        """source.span(start, end), the same Span, found faster on a line of one row."""
        if self.row:
            return made(Span, {"start": start, "end": end, "line": self.row,
                               "col": start + self.shift, "end_line": self.row,
                               "end_col": end + self.shift})
        return self.source.span(start, end)

    def _span(self, first: Any, last: Any) -> Span:
        if first is last and not isinstance(first, str):
            span: Span = first.span  # a chain of one element spans just that element
            return span
        # A token is a str (lalr's or lark's Token): its offsets are in the line.
        start = (self.base + cast(lalr.Token, first).start_pos if isinstance(first, str)
                 else first.span.start)
        end = self.base + cast(lalr.Token, last).end_pos if isinstance(last, str) else last.span.end
        return self._make(start, end)

    def _tok(self, token: lalr.Token) -> Span:
        return self._make(self.base + token.start_pos, self.base + token.end_pos)

    def _repeat(self, children: list[Any]) -> s.Repeat | None:
        last = children[-1]
        if isinstance(last, str) and cast(lalr.Token, last).type == "REPEAT":
            count = re.sub(r"^[*xX×][ \t]*", "", str(last))
            return s.Repeat(count=count, span=self._tok(cast(lalr.Token, last)))
        return None

    def chain(self, children: list[Any]) -> s.Chain:
        elements = tuple([c for c in children if not isinstance(c, str)])
        return s.Chain(elements, self._span(children[0], children[-1]))

    def named(self, children: list[Any]) -> s.Named:
        name, _colon, atom = children
        return s.Named(name=str(name), name_span=self._tok(name), atom=atom,
                       span=self._span(name, atom))

    def group(self, children: list[Any]) -> s.Group:
        return s.Group(chain=children[1], repeat=self._repeat(children),
                       span=self._span(children[0], children[-1]))

    def branch(self, children: list[Any]) -> s.Branch:
        chains = tuple(c for c in children if isinstance(c, s.Chain))
        op = next(cast(lalr.Token, c) for c in children
                  if isinstance(c, str) and cast(lalr.Token, c).type in _JOIN_TOKENS)
        return s.Branch(join=_JOIN_TOKENS[op.type].name, chains=chains,
                        repeat=self._repeat(children),
                        span=self._span(children[0], children[-1]))

    def call(self, children: list[Any]) -> s.Call:
        word = children[0]
        if len(children) == 1:
            return self.bare(str(word), word.start_pos, word.end_pos)
        args = children[1]
        return s.Call(word=str(word), word_span=self._tok(word), args=args[0],
                      span=self._span(word, args[1]))

    def bare(self, word: str, start: int, end: int) -> s.Call:
        """A call of a word without arguments (most calls), at `start`:`end` of its line."""
        span = self._make(self.base + start, self.base + end)
        return s.Call(word, span, None, span)

    def args(self, children: list[Any]) -> tuple[tuple[s.Arg, ...], lalr.Token]:
        return tuple(c for c in children if isinstance(c, s.Arg)), children[-1]

    def kwarg(self, children: list[Any]) -> s.Arg:
        name, _eq, value = children
        return s.Arg(name=str(name), value=value, span=self._span(name, value),
                     name_span=self._tok(name))

    def posarg(self, children: list[Any]) -> s.Arg:
        return s.Arg(name=None, value=children[0], span=children[0].span)

    def _value(self, kind: s.ValueKind, token: lalr.Token) -> s.Value:
        return s.Value(kind=kind, text=str(token), span=self._tok(token))

    def word(self, children: list[Any]) -> s.Value:
        return self._value("word", children[0])

    def number(self, children: list[Any]) -> s.Value:
        return self._value("number", children[0])

    def negative(self, children: list[Any]) -> s.Value:
        minus, number = children
        return s.Value(kind="number", text=str(number), span=self._span(minus, number),
                       negative=True)

    def size(self, children: list[Any]) -> s.Value:
        return self._value("size", children[0])

    def string(self, children: list[Any]) -> s.Value:
        return self._value("string", children[0])

    def param(self, children: list[Any]) -> s.Value:
        return self._value("param", children[0])

    def expr(self, children: list[Any]) -> s.Value:
        return self._value("expr", children[0])

    def value(self, children: list[Any]) -> Any:
        return children[0]

    def directive(self, children: list[Any]) -> s.Directive:
        keyword = children[0]
        items = tuple(c for c in children[1:] if isinstance(c, s.Call | s.Value))
        chain = next((c for c in children if isinstance(c, s.Chain)), None)
        return s.Directive(keyword=str(keyword), keyword_span=self._tok(keyword), items=items,
                           chain=chain, span=self._span(keyword, children[-1]))


def grammar_text() -> str:
    """The grammar with one branch alternative and one terminal per registered join."""
    grammar = _HERE.joinpath("grammar.lark").read_text(encoding="utf-8")
    alternatives = "".join(f'     | "(" chain ({token} chain)+ ")" REPEAT? -> branch\n'
                           for token in _JOIN_TOKENS)
    terminals = "".join(f"{token}: {_literal(join)}\n" for token, join in _JOIN_TOKENS.items())
    return grammar.replace("\n%JOINS%\n", "\n" + alternatives).replace(
        "\n%JOIN_TERMINALS%\n", "\n" + terminals)


def _literal(join: reg.LayerKind) -> str:
    """A lark string literal of a join's operator: `"+"`."""
    assert join.op is not None  # every join has one (the registry's JOINS)
    return '"' + join.op.replace("\\", "\\\\").replace('"', '\\"') + '"'


def grammar_digest(grammar: str) -> str:
    return hashlib.sha256(grammar.encode()).hexdigest()


def build_tables(grammar: str) -> dict[str, Any]:
    """Build the LALR tables from the grammar (20-45 ms): lark's serialized parser, a dict of
    plain values (what `lang/tables.py` holds, written by scripts/parser_tables.py)."""
    from lark import Lark
    from lark.grammar import Rule
    from lark.lexer import TerminalDef, _create_unless

    parser = Lark(grammar, parser="lalr", start=["chain", "directive"], keep_all_tokens=True,
                  maybe_placeholders=False)
    # lark retypes a token of a pattern that a string terminal's text also matches (a
    # keyword that is also a WORD); lalr.Parser does not: a grammar needing it is refused.
    _, retyped = _create_unless(parser.terminals, 0, re, False)  # type: ignore[no-untyped-call]
    if retyped:
        raise ValueError(f"terminals {sorted(retyped)} match string terminals' text: "
                         "lalr.Parser does not retype tokens as lark does")
    data, memo = parser.memo_serialize([TerminalDef, Rule])
    return {"digest": grammar_digest(grammar), "data": data, "memo": memo}


@cache
def _tables() -> dict[str, Any]:
    # No lark cache: lark's is a pickle (in the shared temp folder by default) that any local
    # user could plant. The tables come from lang/tables.py (plain values, generated by
    # scripts/parser_tables.py) when their digest is that of the grammar; else they are
    # built here by lark (benches/grammar_build.py).
    from archspec.lang.tables import TABLES

    grammar = grammar_text()
    if TABLES.get("digest") != grammar_digest(grammar):
        return build_tables(grammar)
    return TABLES


@cache
def _runtime() -> tuple[lalr.Parser, _Build]:
    """The parser of every line: archspec's LALR runtime over the tables, and its callbacks."""
    build = _Build()
    return lalr.Parser(_tables(), build), build


@cache
def _lark() -> Lark:
    """lark's own parser from the same tables with the same callbacks: it reads the lines the
    runtime rejects, to say why (lark is imported only then)."""
    from lark import Lark

    tables = _tables()
    return Lark._load_from_dict(  # type: ignore[no-any-return,no-untyped-call]
        tables["data"], tables["memo"], transformer=_runtime()[1])


def _expecting(expected: set[str]) -> str:
    """`; expected a layer or name, `-`, ...` (layers and values first), or nothing."""
    order = list(_TOKEN_NAMES)
    known = sorted((e for e in expected if e in _TOKEN_NAMES), key=order.index)
    names = [_TOKEN_NAMES[e] for e in known]
    if len(names) > 6:
        names = [*names[:6], "..."]
    return f"; expected {', '.join(names)}" if names else ""


def _split(source: Source, diags: Diagnostics) -> list[_Line]:
    """Logical lines: a newline inside brackets continues the line (comments are skipped)."""
    text = source.text
    lines: list[_Line] = []
    start = 0
    open_at: list[int] = []
    too_deep = False
    pos = 0
    while True:
        m = _SCAN.search(text, pos)
        if m is None:
            if open_at:
                diags.error("syntax", f"`{text[open_at[0]]}` is never closed",
                            source.span(open_at[0], open_at[0] + 1),
                            hint="close it on the same line, or before the file ends")
                restart = text.find("\n", open_at[0])
                if restart < 0:
                    break
                start = pos = restart + 1
                open_at = []
                too_deep = False
                continue
            lines.append(_Line(start, len(text)))
            break
        token = m.group()
        pos = m.end()
        if token[0] == "\n":
            if not open_at:
                if too_deep:
                    too_deep = False
                else:
                    lines.append(_Line(start, m.start()))
                start = pos
        elif token in "[(":
            open_at.append(m.start())
            if len(open_at) > MAX_NESTING and not too_deep:
                too_deep = True
                diags.error("limit", f"brackets nest deeper than {MAX_NESTING} levels",
                            source.span(m.start(), m.start() + 1))
        elif token in "])" and open_at:
            open_at.pop()
    return [line for line in lines if _has_text(text[line.start:line.end])]


def _has_text(line: str) -> bool:
    """Whether a line holds anything but blanks and comments."""
    return bool((_COMMENT.sub("", line) if "#" in line else line).strip())


def _bad_character(text: str) -> re.Match[str] | None:
    """The first character the spec may not hold where it stands."""
    if text.isascii():
        return _BAD_ASCII.search(text)
    masked = _masked(text)
    found = [m for m in (re.search(_BAD_ANYWHERE, text), re.search(_BAD_CHAR, masked)) if m]
    return min(found, key=lambda m: m.start(), default=None)


def _masked(text: str) -> str:
    """The text with its comments and strings blanked out, every offset kept."""
    return _COMMENT_OR_STRING.sub(lambda m: " " * len(m.group()), text)


def _huge_number(text: str) -> re.Match[str] | None:
    """The first number (outside comments and strings) too large for a float: `1e999`, or a
    thousand digits, which would be infinity, or too long for int() to read."""
    if not _MAYBE_HUGE.search(text):  # most files: no number need be read (blanking out
        return None  # comments and strings makes no match where there was none)
    return next((m for m in re.finditer(_NUMBER_TEXT, _masked(text))
                 if not math.isfinite(float(m.group()))), None)


def parse(source: Source, diags: Diagnostics) -> s.SpecSyntax:
    """Parse a whole spec; syntax errors are collected (one per logical line at most)."""
    if len(source.text.encode("utf-8", errors="replace")) > MAX_SOURCE_BYTES:
        diags.error("limit", f"the file is larger than {MAX_SOURCE_BYTES // 1024 // 1024} MiB",
                    source.span(0, 0))
        return s.SpecSyntax(header=(), body=(), train=(), train_span=None)
    bad = _bad_character(source.text)
    if bad is not None:
        char = bad.group()
        what = "bytes that are not UTF-8" if char == "\ufffd" else f"character {char!r}"
        diags.error("syntax", f"unexpected {what}", source.span(bad.start(), bad.end()))
        return s.SpecSyntax(header=(), body=(), train=(), train_span=None)

    huge = _huge_number(source.text)
    if huge is not None:
        shown = huge.group() if len(huge.group()) <= 24 else huge.group()[:20] + "..."
        diags.error("number", f"the number {shown} is too large: beyond floating point, it "
                    "would be infinity", source.span(huge.start(), huge.end()))
        return s.SpecSyntax(header=(), body=(), train=(), train_span=None)

    header: list[s.Directive] = []
    body: list[s.Chain] = []
    train: list[s.Directive] = []
    train_span: Span | None = None
    lines = _split(source, diags)
    for line in lines:
        if diags.full:
            break
        text = source.text[line.start:line.end]
        first = _FIRST_WORD.match(text)
        keyword = first.group(1).lower() if first else ""
        if train_span is None and _TRAIN_LINE.match(text):
            offset = line.start + (first.start(1) if first else 0)
            train_span = source.span(offset, offset + len("train:"))
            continue
        is_header = keyword in s.HEADER_KEYWORDS and (
            keyword not in ("input", "batchnorm")
            or (keyword == "input" and _INPUT_HEADER.match(text))
            or (keyword == "batchnorm" and not body
                and re.match(_BATCHNORM_HEADER, text, re.IGNORECASE))
        )
        start = "directive" if train_span is not None or is_header else "chain"
        node = _try_line(source, line, start)
        if not isinstance(node, s.Chain | s.Directive):
            guess = None
            if start == "chain" and first is not None and train_span is None:
                guess = _misspelt_keyword(first.group(1))
            if guess is None:
                _report(node, source, line, diags)
                if is_header and first is not None and train_span is None:
                    span = source.span(line.start + first.start(1), line.start + first.end(1))
                    header.append(s.Directive(keyword=first.group(1), keyword_span=span,
                                              items=(), chain=None, span=span,
                                              status="broken"))
                continue
            # `netwrok t`, `trian:`: report the misspelling, then read the line as meant.
            assert first is not None  # a guess is made only from a first word
            offset = line.start + first.start(1)
            span = source.span(offset, offset + len(first.group(1)))
            diags.error("header", f"unknown keyword `{first.group(1)}`", span,
                        hint=f"did you mean `{guess}`?")
            if guess == "train:":
                train_span = span
                continue
            node = _try_line(source, line, "directive")
            if not isinstance(node, s.Chain | s.Directive):
                continue
            assert isinstance(node, s.Directive)
            node = node._replace(keyword=guess, status="guessed")
        if isinstance(node, s.Chain):
            body.append(node)
        elif train_span is not None:
            train.append(node)
        else:
            header.append(node)
    return s.SpecSyntax(header=tuple(header), body=tuple(body), train=tuple(train),
                        train_span=train_span)


def _try_line(source: Source, line: _Line,
              start: str) -> s.Chain | s.Directive | UnexpectedInput:
    """One logical line as a chain or a directive, or lark's account of why not."""
    runtime, build = _runtime()
    build.at(source, line)
    text = source.text[line.start:line.end]
    if start == "chain":
        plain = _plain_chain(text, runtime, build)
        if plain is not None:
            return plain
    try:
        # The callbacks run as the parser reduces: what it returns is the syntax node built.
        node: s.Chain | s.Directive = runtime.parse(text, start)
    except lalr.Rejected:
        return _diagnose(text, start)
    return node


def _plain_chain(text: str, runtime: lalr.Parser, build: _Build) -> s.Chain | None:
    """A line of bare words between separators (`CONV3-64 - RELU -> POOL2`, most lines of a
    long generated spec) read without the LALR runtime, or None for any other line: the
    runtime reads the same tokens (the same terminals, tried in lark's order) and reduces
    them to the chain the same callbacks build here (tests/test_lalr.py), for a third of
    the work (benches/parse.py). It reads with the runtime's scanner of every terminal:
    where that finds a word or a separator, the scanner of those three alone would find the
    same; where it finds another terminal, the line is not one of bare words and
    separators."""
    pattern, kinds = runtime.everything()
    match = pattern.match
    # The children the runtime passes `chain`, less the separators between elements, which
    # it drops (a separator that begins or ends the line is the chain's first or last child,
    # and places it).
    children: list[Any] = []
    # The last token's kind: a word follows a separator or nothing, a separator a word or
    # nothing, and the line ends after a word or a separator after one.
    last = ""
    between = (0, 0)  # where the last separator after a word is
    pos, size = 0, len(text)
    while True:
        m: re.Match[str] = match(text, pos)  # type: ignore[assignment]  # maybe nothing
        index = m.lastindex
        if index is None:  # the end of the line, or anything else
            if m.end() != size or not children or isinstance(children[-1], str):
                return None
            if last != "WORD":
                children.append(_token(last, text, *between))
            return build.chain(children)
        kind = kinds[index]
        if kind not in _PLAIN or (last == "WORD" if kind == "WORD" else
                                  last not in ("WORD", "")):
            return None
        begin = m.start(index)
        pos = m.end()
        if kind == "WORD":  # the call the runtime's `call` callback makes of its token
            children.append(build.bare(text[begin:pos], begin, pos))
        elif last:
            between = (begin, pos)
        else:
            children.append(_token(kind, text, begin, pos))
        last = kind


_PLAIN = frozenset({"WORD", "MINUS", "ARROW"})


def _token(kind: str, text: str, begin: int, end: int) -> lalr.Token:
    token = lalr.Token(text[begin:end])
    token.type, token.start_pos, token.end_pos = kind, begin, end
    return token


def _diagnose(text: str, start: str) -> s.Chain | s.Directive | UnexpectedInput:
    """lark's account of why a line the runtime rejected is not in the language."""
    from lark.exceptions import UnexpectedInput

    try:
        # lark rejects every line the runtime does (tests/test_lalr.py); were it to accept
        # one, the node its parse built with the same callbacks is the line's.
        return cast(s.Chain | s.Directive, _lark().parse(text, start=start))
    except UnexpectedInput as exc:
        return exc


def _misspelt_keyword(word: str) -> str | None:
    """The header keyword or `train:` that a word opening a line that fails as a chain is
    probably a misspelling of."""
    choices = [*s.HEADER_KEYWORDS, "train"]
    guess = closest(word, choices, cutoff=0.75)
    if guess is None or word.lower() in choices:
        return None
    return "train:" if guess == "train" else guess


def _report(exc: UnexpectedInput, source: Source, line: _Line, diags: Diagnostics) -> None:
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    if isinstance(exc, UnexpectedCharacters):
        assert exc.pos_in_stream is not None  # always set where characters are unexpected
        offset = line.start + exc.pos_in_stream
        char = source.text[offset] if offset < len(source.text) else ""
        hint = None
        if char == "*" or char in "xX×":
            hint = "a repeat is written `[...]*N`, with a whole number N"
        if char == '"':
            diags.error("syntax", "unterminated string", source.span(offset, offset + 1),
                        hint='a string closes with `"` on the same line')
            return
        diags.error("syntax", f"unexpected character {char!r}"
                    + _expecting(set(exc.allowed or ())), source.span(offset, offset + 1),
                    hint=hint)
        return
    if isinstance(exc, UnexpectedEOF) or (
        isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    ):
        end = line.end
        while end > line.start and source.text[end - 1] in " \t\r\n":
            end -= 1
        diags.error("syntax", "the line ends too early" + _expecting(set(exc.expected or ())),
                    source.span(end, end + 1 if end < len(source.text) else end))
        return
    assert isinstance(exc, UnexpectedToken)
    token = exc.token
    offset = line.start + (token.start_pos or 0)
    span = source.span(offset, offset + max(1, len(str(token))))
    hint = None
    before = source.text[max(line.start, offset - 200):offset]
    if token.type == "NUMBER" and re.match(r"[A-Za-z0-9_]*[ \t]*:(?!:)",
                                           source.text[span.end:span.end + 200]):
        hint = "a name is a letter or _, then letters, digits or _: `conv1: CONV3-64`"
    elif token.type == "NUMBER" and exc.expected and "WORD" in exc.expected \
            and before.rstrip(" \t").endswith("-") and before[-1:] in (" ", "\t"):
        # only a number a spaced `-` cut from its layer: `CONV3 - 64`, `CONV3- 64`
        hint = ("a `-` followed by a space separates layers; write the shorthand without "
                "spaces, e.g. CONV3-64 or FC-4096")
    elif token.type == "EXPR":
        hint = ("an `{expression}` stands in a layer's shorthand or arguments, a repeat count "
                "or a setting's arguments; here write the number itself")
    elif token.type == "REPEAT" or (token.type in _JOIN_TOKENS
                                    and not set(_JOIN_TOKENS) & set(exc.expected or ())):
        hint = "between chains inside parentheses, " + ", ".join(
            f"`{join.op}` {join.verb}" for join in reg.JOINS) + " the branches"
        if str(token).startswith("*"):
            hint = "a repeat is written `[...]*N`; " + hint
    elif token.type in _JOIN_TOKENS and set(_JOIN_TOKENS) & set(exc.expected or ()):
        ways = ", ".join(f"{join.verb} (`{join.op}`)" for join in reg.JOINS)
        hint = f"one group joins its branches one way: {ways}; nest groups to mix them: " \
            "(A | (B + ID))"
    diags.error("syntax", f"unexpected `{token}`" + _expecting(set(exc.expected or ())), span,
                hint=hint)
