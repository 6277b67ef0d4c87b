"""Shape inference: every layer's output shape from the IR alone, with located shape errors."""

from __future__ import annotations

import math
from collections import Counter
from typing import cast

from archspec.core.diagnostics import Diagnostics, call_site
from archspec.core.limits import MAX_ACTIVATIONS, MAX_COVERAGE, MAX_PARAMS
from archspec.core.record import Record
from archspec.ir import INPUT_NODE, Layer, Network, Shape
from archspec.kinds import registry as reg

Shapes = dict[str, Shape | None]
# A window that leaves pixels of its input unread, and the rows and columns it reads.
_Partial = tuple[reg.Window, bytearray, bytearray]


class _Outcome(Record):
    """What a kind's rules say of given arguments and input shapes (see `_rule`)."""

    out: Shape
    partial: _Partial | None  # its window, when that alone leaves input pixels unread
    size: int  # values of the output
    weights: int | None  # weights and biases; None when the output is over MAX_ACTIVATIONS


def infer(network: Network, diags: Diagnostics) -> Shapes:
    """Output shape per layer name (and `input`); None where unknown (a sketch, or an error).

    The registry's rules run once per distinct kind, arguments and input shapes (the copies
    of a repeat, a long chain of the same words share them); the findings name each layer."""
    shapes: Shapes = {INPUT_NODE: network.input.shape}
    reported: set[int] = set()
    warned: set[int] = set()
    outcomes: dict[tuple[object, ...], _Outcome] = {}
    readers: dict[str, list[Layer]] | None = None  # worked out when a window may warn
    params = 0
    full = diags.full  # only this loop's errors can change it
    for layer in network.layers:
        if full:
            shapes[layer.name] = None
            continue
        inputs = layer.inputs
        ins = [shapes[inputs[0]]] if len(inputs) == 1 else [shapes[i] for i in inputs]
        args = layer.args
        if args is None or None in ins:
            shapes[layer.name] = None
            continue
        known = cast(list[Shape], ins)
        key = reg.rules_key(layer.kind, args, known)
        outcome = outcomes.get(key)
        if outcome is None:
            try:
                outcome = outcomes[key] = _rule(reg.kind_of(layer.kind), args, known)
            except reg.ShapeError as exc:
                # A join goes on with its first branch's sizes, so later mistakes still show.
                shapes[layer.name] = exc.fallback
                if layer.span.start not in reported:
                    reported.add(layer.span.start)
                    diags.error("shape", f"{layer.name}: {exc}", layer.span,
                                hint=_call_site(layer))
                    full = diags.full
                continue
        # Once per written layer: the copies of a repeat would only say it again.
        if outcome.partial is not None and layer.span.start not in warned:
            if readers is None:
                readers = _readers(network)
            if _window_warning(layer, outcome.partial, known[0], readers[layer.inputs[0]],
                               diags):
                warned.add(layer.span.start)
        if outcome.weights is None:
            diags.error("limit", f"{layer.name}: an output of {outcome.size:,} values "
                        "could not fit any machine", layer.span)
            full = diags.full
            shapes[layer.name] = None
            continue
        params += outcome.weights
        if params > MAX_PARAMS:
            diags.error("limit", f"{layer.name}: the network reaches {params:,} parameters, "
                        f"more than any machine could hold (the limit is {MAX_PARAMS:,})",
                        layer.span)
            full = diags.full
            shapes[layer.name] = None
            continue
        shapes[layer.name] = outcome.out
    return shapes


def _rule(kind: reg.LayerKind, args: reg.Args, known: list[Shape]) -> _Outcome:
    """The output shape (raises ShapeError), the window if it leaves pixels unread, the
    output's size and, unless that is over MAX_ACTIVATIONS, the weights and biases."""
    out = kind.join(known) if kind.join is not None else kind.shape(args, known[0])
    window = kind.window(args) if kind.window is not None else None
    partial = _partial(window, known[0]) if window is not None else None
    size = math.prod(out)
    if size > MAX_ACTIVATIONS:
        return _Outcome(out, partial, size, None)
    cost = kind.cost(args, known[0], out)
    return _Outcome(out, partial, size, cost.weights + cost.biases)


def _partial(window: reg.Window, shape: Shape) -> _Partial | None:
    """The window with the rows and columns of the input it reads, unless it reads them all
    (or the input is too large to work out which)."""
    h, w = shape[1], shape[2]
    if max(h, w) > MAX_COVERAGE:
        return None
    rows, cols = window.reads(h, 0), window.reads(w, 1)
    if rows.count(1) == h and cols.count(1) == w:
        return None
    return window, rows, cols


def _readers(network: Network) -> dict[str, list[Layer]]:
    """The layers that read each tensor (layer output or the input)."""
    found: dict[str, list[Layer]] = {}
    for layer in network.layers:
        for name in layer.inputs:
            found.setdefault(name, []).append(layer)
    return found


def _window_warning(layer: Layer, partial: _Partial, shape: Shape, readers: list[Layer],
                    diags: Diagnostics) -> bool:
    """Warn when input pixels reach no tap of this window (which alone leaves some unread)
    nor of any other layer reading the same tensor (torchvision's 1x1 stride-2 shortcut
    beside a 3x3 stride-2 conv is fine). True when it warned."""
    window, rows, cols = partial
    h, w = shape[1], shape[2]
    coverage = [(rows, cols)]
    for other in readers:
        kind = reg.kind_of(other.kind)
        if other is layer:
            continue
        theirs = kind.window(other.args) if kind.window and other.args is not None else None
        if theirs is None:
            return False  # it reads every pixel (or, in a sketch, may)
        coverage.append((theirs.reads(h, 0), theirs.reads(w, 1)))
    unread = _read_by_none(coverage, w)
    if not unread:
        return False
    skipped = " and ".join(part for part in (_skipped(rows, "row"), _skipped(cols, "column"))
                           if part)
    share = unread / (h * w)
    count = f"{unread:,} of {h * w:,} pixels ({'<1' if share < 0.01 else round(100 * share)}%)"
    diags.warning(
        "window",
        f"{layer.name}: a {window.kernel[0]}x{window.kernel[1]} window with stride "
        f"{window.stride[0]}x{window.stride[1]} leaves {skipped} of its {h}x{w} input unread"
        + (f": {count}" if len(coverage) == 1 else
           f"; with the other layers that read it, {count} are read by none"),
        layer.span, hint="; ".join(h for h in (
            _call_site(layer), "adjust pad or stride, or set ceil=true on a pool") if h))
    return True


def _read_by_none(coverage: list[tuple[bytearray, bytearray]], width: int) -> int:
    """Pixels no window reads: pixel (r, c) is read by a window that reads row r and col c."""
    if len(coverage) == 1:
        rows, cols = coverage[0]
        return len(rows) * width - rows.count(1) * cols.count(1)
    unread = 0
    for signature, count in Counter(zip(*(rows for rows, _ in coverage), strict=True)).items():
        read = 0
        for (_, cols), reads_row in zip(coverage, signature, strict=True):
            if reads_row:
                read |= int.from_bytes(cols, "little")
        unread += count * (width - read.to_bytes(width, "little").count(1))
    return unread


def _skipped(read: bytearray, what: str) -> str | None:
    """`the last row`, `the last 3 columns`, or `16 of 33 rows` (between the taps)."""
    missing = read.count(0)
    if not missing:
        return None
    if read.rstrip(b"\x00").count(0) == 0:
        return f"the last {what}" if missing == 1 else f"the last {missing} {what}s"
    return f"{missing} of {len(read)} {what}{'s' * (missing != 1)}"


def _call_site(layer: Layer) -> str | None:
    """The block calls that made a layer (`call_site`)."""
    return call_site((scope.label, scope.call.line) for scope in layer.scopes
                     if scope.call is not None)
