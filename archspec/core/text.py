"""Text formatting shared by every view: counts, metric and binary sizes, shapes, columns."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from itertools import islice
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any

from pydantic_core import PydanticSerializationError, to_json


def count(n: int) -> str:
    return f"{n:,}"


def significant(x: float, digits: int) -> str:
    """`x` (> 0) to `digits` significant figures: 150.5 → 150, 3.21 → 3.2, 0.5 → 0.50."""
    places = digits - 1 - math.floor(math.log10(x))
    # Rounding may carry into a new digit (0.9996 → 1.00): count places from the result.
    places = digits - 1 - math.floor(math.log10(round(x, places)))
    return f"{round(x, places):.{max(places, 0)}f}"


def metric(n: float, digits: int = 3) -> str:
    """`86.7M`, `1.85G`, `150K`: powers of 1000, to `digits` significant figures; a count
    under 1000 as it is."""
    if n < 1000:
        return str(n)
    rounded = float(significant(n, digits))  # 999,600 → 1,000,000: `1.00M`, not `1000K`
    for suffix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6)):
        if rounded >= scale:
            return significant(n / scale, digits) + suffix
    return significant(n / 1e3, digits) + "K"


def binary(n: int) -> str:
    """Bytes in powers of 1024: `553.43 MiB`, `10.28 GiB`."""
    for suffix, power in (("TiB", 4), ("GiB", 3), ("MiB", 2), ("KiB", 1)):
        if n >= 1024**power:
            return f"{n / 1024**power:.2f} {suffix}"
    return f"{n} B"


def shape_text(shape: Sequence[int]) -> str:
    """`64x56x56`, or `4096` for a flat vector."""
    return "x".join(str(d) for d in shape)


def align(rows: Sequence[Sequence[str]], right: Container[int]) -> list[str]:
    """Rows as text columns two spaces apart, column i right-aligned when i is in `right`
    (the table, the probe report and the generated module's docstring all use it)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                      for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
            for row in rows]


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
    which a writer of their own lays out faster than their data would be). A slotted class,
    not a dataclass: core.text is on every start's path (docs/table.md, Speed)."""

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
