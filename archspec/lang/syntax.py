"""The surface syntax tree: what the user wrote, with spans, before any meaning is given."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from archspec.core.source import Span

HEADER_KEYWORDS = ("network", "input", "activation", "batchnorm", "defaults", "init", "dtype",
                   "block")

ValueKind = Literal["word", "number", "size", "string", "param", "expr"]


@dataclass(frozen=True, slots=True)
class Value:
    kind: ValueKind
    text: str  # for "expr", with its braces: `{$c*4}`
    span: Span
    negative: bool = False
    expr: str | None = None  # a number computed from this `{expression}`, for messages


@dataclass(frozen=True, slots=True)
class Arg:
    name: str | None
    value: Value
    span: Span
    name_span: Span | None = None


@dataclass(frozen=True, slots=True)
class Call:
    """A word with optional arguments: `CONV3-64`, `CONV(96, 11, stride=4)`, `basic(64, 2)`."""

    word: str
    word_span: Span
    args: tuple[Arg, ...] | None
    span: Span


@dataclass(frozen=True, slots=True)
class Repeat:
    count: str  # digits, $param or {expression}
    span: Span


@dataclass(frozen=True, slots=True)
class Group:
    chain: Chain
    repeat: Repeat | None
    span: Span


@dataclass(frozen=True, slots=True)
class Branch:
    """`( A op B ... )`: the branches and the join (a registry join's name) that meets them."""

    join: str
    chains: tuple[Chain, ...]
    repeat: Repeat | None
    span: Span


@dataclass(frozen=True, slots=True)
class Named:
    name: str
    name_span: Span
    atom: Atom
    span: Span


Atom = Call | Group | Branch
Element = Atom | Named


@dataclass(frozen=True, slots=True)
class Chain:
    elements: tuple[Element, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Directive:
    """A header line or a train setting: a keyword, items, and for `block` a chain."""

    keyword: str
    keyword_span: Span
    items: tuple[Call | Value, ...]
    chain: Chain | None
    span: Span
    # "guessed": a misspelt keyword read as meant; "broken": a line that did not parse
    # (already reported), kept so that later passes know the line was there.
    status: Literal["written", "guessed", "broken"] = "written"


@dataclass(frozen=True, slots=True)
class SpecSyntax:
    header: tuple[Directive, ...]
    body: tuple[Chain, ...]
    train: tuple[Directive, ...]
    train_span: Span | None
