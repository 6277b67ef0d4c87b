"""The surface syntax tree: what the user wrote, with spans, before any meaning is given.

Its nodes are named tuples (`core.record`; `Repeat` a slotted class), compared by value as
frozen dataclasses are, at a fraction of their cost to define: CPython 3.11 compiles a
dataclass's methods from source at every import, ~0.5 ms a class (docs/table.md, Speed)."""

from __future__ import annotations

from typing import Literal

from archspec.core.record import Record
from archspec.core.source import Span

HEADER_KEYWORDS = ("network", "input", "activation", "batchnorm", "defaults", "init", "dtype",
                   "block")

ValueKind = Literal["word", "number", "size", "string", "param", "expr"]


class Value(Record):
    kind: ValueKind
    text: str  # for "expr", with its braces: `{$c*4}`
    span: Span
    negative: bool = False
    expr: str | None = None  # a number computed from this `{expression}`, for messages


class Arg(Record):
    name: str | None
    value: Value
    span: Span
    name_span: Span | None = None


class Call(Record):
    """A word with optional arguments: `CONV3-64`, `CONV(96, 11, stride=4)`, `basic(64, 2)`."""

    word: str
    word_span: Span
    args: tuple[Arg, ...] | None
    span: Span


class Repeat:
    """`*3`, `x$n`, `*{$n+1}`: how many times a group or branch repeats. A plain class (a
    named tuple's `count` method would shadow the field), compared by value as the others."""

    __slots__ = ("count", "span")

    def __init__(self, count: str, span: Span) -> None:
        self.count = count  # digits, $param or {expression}
        self.span = span

    def __eq__(self, other: object) -> bool:
        return type(other) is Repeat and (self.count, self.span) == (other.count, other.span)

    def __hash__(self) -> int:
        return hash((self.count, self.span))

    def __repr__(self) -> str:
        return f"Repeat(count={self.count!r}, span={self.span!r})"


class Group(Record):
    chain: Chain  # defined below: a chain holds groups
    repeat: Repeat | None
    span: Span


class Branch(Record):
    """`( A op B ... )`: the branches and the join (a registry join's name) that meets them."""

    join: str
    chains: tuple[Chain, ...]
    repeat: Repeat | None
    span: Span


class Named(Record):
    name: str
    name_span: Span
    atom: Atom
    span: Span


Atom = Call | Group | Branch
Element = Atom | Named


class Chain(Record):
    elements: tuple[Element, ...]
    span: Span


class Directive(Record):
    """A header line or a train setting: a keyword, items, and for `block` a chain."""

    keyword: str
    keyword_span: Span
    items: tuple[Call | Value, ...]
    chain: Chain | None
    span: Span
    # "guessed": a misspelt keyword read as meant; "broken": a line that did not parse
    # (already reported), kept so that later passes know the line was there.
    status: Literal["written", "guessed", "broken"] = "written"


class SpecSyntax(Record):
    header: tuple[Directive, ...]
    body: tuple[Chain, ...]
    train: tuple[Directive, ...]
    train_span: Span | None
