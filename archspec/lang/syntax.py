"""The surface syntax tree: what the user wrote, with spans, before any meaning is given.

Its nodes are NamedTuples, immutable and compared by value as frozen dataclasses are, but
~10x cheaper to define: CPython 3.11 compiles a dataclass's methods from source at every
import, ~0.5 ms a class (docs/table.md, Speed). `Repeat` stays a dataclass: a tuple's method
would shadow its field `count`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

from archspec.core.source import Span

HEADER_KEYWORDS = ("network", "input", "activation", "batchnorm", "defaults", "init", "dtype",
                   "block")

ValueKind = Literal["word", "number", "size", "string", "param", "expr"]


class Value(NamedTuple):
    kind: ValueKind
    text: str  # for "expr", with its braces: `{$c*4}`
    span: Span
    negative: bool = False
    expr: str | None = None  # a number computed from this `{expression}`, for messages


class Arg(NamedTuple):
    name: str | None
    value: Value
    span: Span
    name_span: Span | None = None


class Call(NamedTuple):
    """A word with optional arguments: `CONV3-64`, `CONV(96, 11, stride=4)`, `basic(64, 2)`."""

    word: str
    word_span: Span
    args: tuple[Arg, ...] | None
    span: Span


@dataclass(frozen=True, slots=True)
class Repeat:
    count: str  # digits, $param or {expression}
    span: Span


class Group(NamedTuple):
    chain: Chain
    repeat: Repeat | None
    span: Span


class Branch(NamedTuple):
    """`( A op B ... )`: the branches and the join (a registry join's name) that meets them."""

    join: str
    chains: tuple[Chain, ...]
    repeat: Repeat | None
    span: Span


class Named(NamedTuple):
    name: str
    name_span: Span
    atom: Atom
    span: Span


Atom = Call | Group | Branch
Element = Atom | Named


class Chain(NamedTuple):
    elements: tuple[Element, ...]
    span: Span


class Directive(NamedTuple):
    """A header line or a train setting: a keyword, items, and for `block` a chain."""

    keyword: str
    keyword_span: Span
    items: tuple[Call | Value, ...]
    chain: Chain | None
    span: Span
    # "guessed": a misspelt keyword read as meant; "broken": a line that did not parse
    # (already reported), kept so that later passes know the line was there.
    status: Literal["written", "guessed", "broken"] = "written"


class SpecSyntax(NamedTuple):
    header: tuple[Directive, ...]
    body: tuple[Chain, ...]
    train: tuple[Directive, ...]
    train_span: Span | None
