"""The JSON view of a Report, written in pieces (`table --format json`): the other formats
never import it, nor `json`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from json.encoder import encode_basestring_ascii as _json_string
from operator import itemgetter

from archspec.analysis.report import Report, Row
from archspec.core.json_text import JsonList, json_flat, json_item, json_pieces
from archspec.core.model import json_data
from archspec.views.table import layer_data

# The fields of a row its JSON text is not made of alone (in `layer_data`'s order): a row like one
# written before in every other field is that row's text with its own four (`_Layers`).
_OWN = ("name", "receptive_field", "jump", "members")
_ALIKE = itemgetter(*(at for at, name in enumerate(Row._fields) if name not in _OWN))


class _Layers:
    """The rows' JSON text (`core.json_text.JsonList`'s writer), each kind of row's made once: a
    row like one written before in all but its name, receptive field, jump and members (a
    long chain repeats a few layers, its receptive field growing) is that row's text with
    its own four put in: ~2 µs a row of the 100k written chain, where writing a row's data
    takes ~5 µs (~7 µs each where no row is like another)."""

    def __init__(self) -> None:
        self._pad = ""
        # By _ALIKE, at the pad: the first row's text, cut (`_cut`) once a second comes.
        self._texts: dict[tuple[object, ...], str | list[str]] = {}
        self._pairs: dict[tuple[int, int] | None, str] = {}  # receptive fields and jumps

    def __call__(self, row: Row, pad: str) -> str:
        inner = pad + "  "
        if pad != self._pad:  # a list at another indent: what was written is not at it
            self._pad, self._texts, self._pairs = pad, {}, {}
        key = _ALIKE(row)
        texts = self._texts.get(key)
        if texts is None:  # the first of its kind (every row, in a network without repeats)
            text = self._texts[key] = json_item(layer_data(row), pad)
            return text
        if isinstance(texts, str):
            texts = self._texts[key] = _cut(texts, inner)
        head, after_name, after_field, after_jump, tail = texts
        return (f"{head}{_json_string(row.name)}{after_name}{self._pair(row.receptive_field)}"
                f"{after_field}{self._pair(row.jump)}{after_jump}"
                f"{json_flat(row.members, inner)}{tail}")

    def _pair(self, value: tuple[int, int] | None) -> str:
        text = self._pairs.get(value)
        if text is None:
            text = self._pairs[value] = "null" if value is None else json_flat(
                value, self._pad + "  ")
        return text


def _cut(text: str, inner: str) -> list[str]:
    """A row's JSON text cut around the values of `_OWN`: the text before the first, between
    each two and after the last. A key at the row's indent `inner` starts a line (a JSON
    string holds no newline, a nested value's lines are indented further), and its value
    ends where the next such key or the row does."""
    parts, start = [], 0
    for name in _OWN:
        key = f'\n{inner}"{name}": '
        at = text.index(key, start) + len(key)
        parts.append(text[start:at])
        start = text.find(f',\n{inner}"', at)
        if start < 0:
            start = text.rindex("\n")
    parts.append(text[start:])
    return parts


def _list(value: tuple[int, int] | None) -> list[int] | None:
    return list(value) if value else None


def to_json(report: Report, rows: Sequence[Row]) -> Iterator[str]:
    """The JSON document in pieces (`core.json_text.json_pieces`)."""
    ti = report.torchinfo
    data = {
        "network": report.network,
        "description": report.description,
        "input": {"shape": list(report.input.shape), "order": report.input.order,
                  "activations": report.input.activations,
                  "activation_bytes": report.input.activation_bytes,
                  "saved_bytes_per_sample": report.input.saved_bytes,
                  "training_bytes": report.input.training_bytes,
                  "receptive_field": _list(report.input.receptive_field),
                  "jump": _list(report.input.jump)},
        "layers": JsonList(rows, _Layers()),  # each row's text made as it is written
        "totals": json_data(report.totals),
        "memory": json_data(report.memory),
        "torchinfo": {"input_size": list(ti.input_shape), "total_params": ti.total_params,
                      "trainable_params": ti.trainable_params,
                      "non_trainable_params": ti.non_trainable_params,
                      "total_mult_adds": ti.total_mult_adds, "input_bytes": ti.input_bytes,
                      "forward_backward_bytes": ti.forward_backward_bytes,
                      "params_bytes": ti.params_bytes, "total_bytes": ti.total_bytes},
    }
    yield from json_pieces(data)
    yield "\n"
