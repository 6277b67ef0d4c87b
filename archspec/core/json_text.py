"""JSON text: in pieces, character for character as json.dumps(value, indent=2) writes it
(the JSON table's writer: of the table's formats only `--format json` imports it, and `json`
with it), and strict, every float that is not finite as null (probe's and train's)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any

from pydantic_core import PydanticSerializationError, to_json


def strict_json(value: object) -> str:
    """`json.dumps(value, indent=2)`, with every float that is not finite (a diverged run's
    NaN loss, an exploded probe's inf) written as null: JSON has no NaN or Infinity, and
    strict parsers (jq, JavaScript) refuse the bare words json.dumps would write."""
    return json.dumps(_finite(value), indent=2, allow_nan=False)


def _finite(value: object) -> object:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def json_pieces(value: object, pad: str = "") -> Iterator[str]:
    """`json.dumps(value, indent=2)` in pieces, character for character, for JSON values
    (dicts with string keys, lists, tuples, strings, ints, floats, True, False, None), many
    times faster on large documents. With `indent`, json.dumps runs its pure-Python encoder
    (~40 calls and string pieces a table row); here a list is written in chunks by
    pydantic-core's encoder (Rust), and only what it writes otherwise is laid out here with
    each scalar written by the json module's C routines. An iterator is written as a list, a
    chunk at a time, and a chunk is a piece: a writer of the pieces holds neither a table's
    rows as dicts nor its document whole. A `JsonList`'s items are written by its writer."""
    inner = pad + "  "
    if isinstance(value, dict):
        if not value:
            yield "{}"
            return
        opening = "{\n"
        for key, item in value.items():
            yield f"{opening}{inner}{_json_key(key)}: "
            yield from json_pieces(item, inner)
            opening = ",\n"
        yield f"\n{pad}}}"
    elif isinstance(value, JsonList | list | tuple | Iterator):
        items, write = (iter(value.items), value.write) if isinstance(value, JsonList) else (
            iter(value), None)
        opening = "[\n"
        while chunk := list(islice(items, _CHUNK)):
            yield opening + (_json_chunk(chunk, inner) if write is None else
                             ",\n".join([inner + write(item, inner) for item in chunk]))
            opening = ",\n"
        yield "[]" if opening == "[\n" else f"\n{pad}]"
    else:
        yield _json_scalar(value)


def _json_scalar(value: object) -> str:
    if type(value) is str:
        return _json_string(value)
    if type(value) is int:
        return int.__repr__(value)
    return json.dumps(value)  # True, False, None, floats (NaN, Infinity) as json writes them


class JsonList:
    """A list `json_pieces` writes an item at a time with `write(item, pad)`: the item's
    text at the indent `pad`, as json.dumps(indent=2) writes it there (the table's rows,
    which a writer of their own lays out faster than their data would be)."""

    __slots__ = ("items", "write")

    def __init__(self, items: Iterable[Any], write: Callable[[Any, str], str]) -> None:
        self.items = items
        self.write = write


def json_flat(items: Sequence[object], pad: str = "") -> str:
    """A list of scalars (a shape, a row's members) as json.dumps(indent=2) writes it at the
    indent `pad`."""
    if not items:
        return "[]"
    inner = pad + "  "
    return f"[\n{inner}" + f",\n{inner}".join(map(_json_scalar, items)) + f"\n{pad}]"


def json_item(value: object, pad: str) -> str:
    """`value`'s text at the indent `pad`, whole, as `json_pieces` writes it as an item of a
    list there (a container by pydantic-core's encoder: ~5 µs a table row)."""
    return _json_chunk([value], pad)[len(pad):] if pad else "".join(json_pieces(value))

_CHUNK = 256  # list items pydantic-core writes at once
# What pydantic-core writes otherwise than json: floats from 1e-9 to 1e-4 (`1e-6` for json's
# `1e-06`, `0.00001` for `1e-05`; every other float as json's repr, tests/test_table.py) and
# a None key (`"None"` for `"null"`). A chunk holding this text anywhere is laid out here.
_JSON_DIFFERS = re.compile(r'e-\d(?!\d)|0\.0000|"None": ')
_NOT_ASCII = re.compile(r"[^\x00-\x7e]")  # json escapes these (ensure_ascii), DEL included


def _json_chunk(items: list[object], inner: str) -> str:
    """List items at the indent `inner`, joined as json.dumps joins them. The items go to
    the encoder inside as many one-item lists as their indent needs (`[[1, 2]]` writes 1 and
    2 at an indent of 4), so its text needs no indenting afterwards, only the lists' brackets
    taken off."""
    depth = len(inner) // 2
    nested: object = items
    for _ in range(depth - 1):
        nested = [nested]
    try:
        text = to_json(nested, indent=2).decode()
    except PydanticSerializationError:  # a lone surrogate, which UTF-8 cannot hold
        text = ""
    if not text or _differs(text):
        return ",\n".join(inner + "".join(json_pieces(v, inner)) for v in items)
    if not text.isascii() or "\x7f" in text:  # outside strings JSON text is ASCII
        text = _NOT_ASCII.sub(_json_escape, text)
    # The items between the brackets: `[\n  [\n    1,\n    2\n  ]\n]` at a depth of 2.
    return text[depth * (depth + 1):-depth * (depth + 1)]


def _differs(text: str) -> bool:
    """Whether pydantic-core's text may differ from json's (`_JSON_DIFFERS`): substring
    searches first, several times faster than the pattern's scan of a chunk that has none."""
    return ("e-" in text or "0.0000" in text or '"None": ' in text) and bool(
        _JSON_DIFFERS.search(text))


def _json_escape(match: re.Match[str]) -> str:
    """A character as json's ensure_ascii writes it: \\u00e9, a surrogate pair above U+FFFF."""
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 | code >> 10:04x}\\u{0xDC00 | code & 0x3FF:04x}"


def _json_key(key: object) -> str:
    return _json_string(key) if type(key) is str else json.dumps({key: 0})[1:-4]
