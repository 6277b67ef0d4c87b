"""`{EXPR}` arithmetic over block parameters: parsed once per text, evaluated per call.

An expression is numbers and `$params` with `+ - * / // %`, unary minus, parentheses and
`min(a, b, ...)`, `max(a, b, ...)`, as in Python. Errors are `ExprError`s that say where in
the expression's text (an offset and a length) they are, so the caller can locate them.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from archspec.core.record import Record

Number = int | float

# Compiled at the first expression (re caches it), not at import: most specs have none.
_TOKEN = (r"\s*(?:(?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
          r"|(?P<param>\$[A-Za-z_][A-Za-z0-9_]*)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
          r"|(?P<op>//|[-+*/%(),]))")
_BINARY: dict[str, Callable[[Number, Number], Number]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod}
_FUNCTIONS: dict[str, Callable[..., Number]] = {"min": min, "max": max}
MAX_DEPTH = 50  # parentheses and calls nested in one expression


class ExprError(Exception):
    """What is wrong and where: `start` and `end` are offsets into the expression's text."""

    def __init__(self, message: str, start: int, end: int) -> None:
        super().__init__(message)
        self.start = start
        self.end = end


class _Token(Record):  # not a dataclass: ~0.5 ms less at every start
    kind: str  # number, param, name, op, end
    text: str
    start: int
    end: int


# The tree: ("num", value), ("param", name, start, end), ("neg", node),
# ("bin", op, left, right, start, end) and ("call", function, args).
Node = tuple[Any, ...]


def parse(text: str) -> Node:
    """The expression's tree (cached by text), or ExprError at the first thing amiss."""
    return _parse(text)


@lru_cache(maxsize=4096)
def _parse(text: str) -> Node:
    tokens = _tokens(text)
    parser = _Parser(tokens)
    node = parser.sum(0)
    token = parser.peek()
    if token.kind != "end":
        raise ExprError(f"unexpected `{token.text}` in the expression", token.start, token.end)
    return node


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    token = re.compile(_TOKEN)
    pos = 0
    while pos < len(text):
        if not text[pos:].strip():
            break
        m = token.match(text, pos)
        if m is None or m.lastgroup is None:
            start = len(text) - len(text[pos:].lstrip())
            raise ExprError(f"unexpected {text[start]!r} in the expression", start, start + 1)
        kind = m.lastgroup
        tokens.append(_Token(kind, m.group(kind), m.start(kind), m.end(kind)))
        pos = m.end()
    tokens.append(_Token("end", "the end", len(text), len(text)))
    return tokens


class _Parser:
    """Recursive descent: sum of products of unary terms."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.at = 0

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def expect(self, text: str) -> _Token:
        token = self.take()
        if token.text != text:
            found = "but it ends there" if token.kind == "end" else f"not `{token.text}`"
            raise ExprError(f"expected `{text}` in the expression, {found}",
                            token.start, max(token.end, token.start + 1))
        return token

    def sum(self, depth: int) -> Node:
        node = self.product(depth)
        while self.peek().text in ("+", "-") and self.peek().kind == "op":
            op = self.take()
            node = ("bin", op.text, node, self.product(depth), op.start, op.end)
        return node

    def product(self, depth: int) -> Node:
        node = self.unary(depth)
        while self.peek().text in ("*", "/", "//", "%") and self.peek().kind == "op":
            op = self.take()
            node = ("bin", op.text, node, self.unary(depth), op.start, op.end)
        return node

    def unary(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            token = self.peek()
            raise ExprError("the expression nests too deeply", token.start, token.end)
        token = self.take()
        if token.kind == "op" and token.text in "+-":
            node = self.unary(depth + 1)
            return ("neg", node) if token.text == "-" else node
        if token.kind == "number":
            value = float(token.text)
            return ("num", int(token.text) if token.text.isdigit() else value)
        if token.kind == "param":
            return ("param", token.text[1:], token.start, token.end)
        if token.kind == "op" and token.text == "(":
            node = self.sum(depth + 1)
            self.expect(")")
            return node
        if token.kind == "name":
            if token.text not in _FUNCTIONS:
                raise ExprError(f"unknown function `{token.text}`: an expression may call "
                                "min(a, b) and max(a, b); a parameter is written `$name`",
                                token.start, token.end)
            self.expect("(")
            args = [self.sum(depth + 1)]
            while self.peek().text == ",":
                self.take()
                args.append(self.sum(depth + 1))
            close = self.expect(")")
            if len(args) < 2:
                raise ExprError(f"{token.text}() takes two numbers or more", token.start,
                                close.end)
            return ("call", token.text, tuple(args))
        found = "but the expression ends there" if token.kind == "end" \
            else f"not `{token.text}`"
        raise ExprError(f"expected a number, a $parameter or `(`, {found}",
                        token.start, max(token.end, token.start + 1))


def evaluate(node: Node, value_of: Callable[[str, int, int], Number]) -> Number:
    """The tree's value; `value_of(name, start, end)` gives a parameter's number (or raises
    ExprError). A float that is whole comes back as an int (`{$c/2}` with c=64 is 32)."""
    result = _eval(node, value_of)
    if isinstance(result, float):
        if not math.isfinite(result):
            raise ExprError("the expression's value is too large", 0, 0)
        if result.is_integer():
            return int(result)
    return result


def _eval(node: Node, value_of: Callable[[str, int, int], Number]) -> Number:
    tag = node[0]
    if tag == "num":
        number: Number = node[1]
        return number
    if tag == "param":
        return value_of(node[1], node[2], node[3])
    if tag == "neg":
        return -_eval(node[1], value_of)
    if tag == "call":
        return _FUNCTIONS[node[1]](*(_eval(arg, value_of) for arg in node[2]))
    _tag, op, left, right, start, end = node
    a, b = _eval(left, value_of), _eval(right, value_of)
    if op in ("/", "//", "%") and b == 0:
        raise ExprError("division by zero", start, end)
    try:
        return _BINARY[op](a, b)
    except OverflowError:
        raise ExprError("the expression's value is too large", start, end) from None
