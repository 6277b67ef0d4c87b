"""Shape inference: every layer's output shape from the IR alone, with located shape errors."""

from __future__ import annotations

import math
from collections import Counter

from archspec.core.diagnostics import Diagnostics
from archspec.core.limits import MAX_ACTIVATIONS, MAX_COVERAGE, MAX_PARAMS
from archspec.ir import INPUT_NODE, Layer, Network, Shape
from archspec.kinds import registry as reg

Shapes = dict[str, Shape | None]


def infer(network: Network, diags: Diagnostics) -> Shapes:
    """Output shape per layer name (and `input`); None where unknown (a sketch, or an error)."""
    shapes: Shapes = {INPUT_NODE: network.input.shape}
    reported: set[int] = set()
    warned: set[int] = set()
    whole: set[tuple[reg.Window, int, int]] = set()  # windows that read all of an input size
    params = 0
    readers = _readers(network)
    for layer in network.layers:
        if diags.full:
            shapes[layer.name] = None
            continue
        ins = [shapes[i] for i in layer.inputs]
        kind = reg.kind_of(layer.kind)
        if layer.args is None or any(s is None for s in ins):
            shapes[layer.name] = None
            continue
        known = [s for s in ins if s is not None]
        try:
            out = kind.join(known) if kind.join is not None else kind.shape(layer.args, known[0])
        except reg.ShapeError as exc:
            # A join goes on with its first branch's sizes, so later mistakes still show.
            shapes[layer.name] = exc.fallback
            if layer.span.start not in reported:
                reported.add(layer.span.start)
                diags.error("shape", f"{layer.name}: {exc}", layer.span,
                            hint=_call_site(layer))
            continue
        # Once per written layer: the copies of a repeat would only say it again.
        window = kind.window(layer.args) if kind.window is not None else None
        if window is not None and layer.span.start not in warned and _window_warning(
                layer, window, known[0], readers[layer.inputs[0]], diags, whole):
            warned.add(layer.span.start)
        if math.prod(out) > MAX_ACTIVATIONS:
            diags.error("limit", f"{layer.name}: an output of {math.prod(out):,} values "
                        "could not fit any machine", layer.span)
            shapes[layer.name] = None
            continue
        cost = kind.cost(layer.args, known[0], out)
        params += cost.weights + cost.biases
        if params > MAX_PARAMS:
            diags.error("limit", f"{layer.name}: the network reaches {params:,} parameters, "
                        f"more than any machine could hold (the limit is {MAX_PARAMS:,})",
                        layer.span)
            shapes[layer.name] = None
            continue
        shapes[layer.name] = out
    return shapes


def _readers(network: Network) -> dict[str, list[Layer]]:
    """The layers that read each tensor (layer output or the input)."""
    found: dict[str, list[Layer]] = {}
    for layer in network.layers:
        for name in layer.inputs:
            found.setdefault(name, []).append(layer)
    return found


def _window_warning(layer: Layer, window: reg.Window, shape: Shape, readers: list[Layer],
                    diags: Diagnostics, whole: set[tuple[reg.Window, int, int]]) -> bool:
    """Warn when input pixels reach no tap of this window nor of any other layer reading the
    same tensor (torchvision's 1x1 stride-2 shortcut beside a 3x3 stride-2 conv is fine).
    True when it warned. `whole`: the windows and input sizes found to read every pixel,
    which the layers that share them need not work out again."""
    h, w = shape[1], shape[2]
    if max(h, w) > MAX_COVERAGE or (window, h, w) in whole:
        return False
    rows, cols = window.reads(h, 0), window.reads(w, 1)
    if rows.count(1) == h and cols.count(1) == w:
        whole.add((window, h, w))
        return False
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
    """`from outer(2) at line 12 → down(128) at line 9`: the block calls that made a layer,
    outermost first."""
    calls = [f"`{scope.label}` at line {scope.call.line}" for scope in layer.scopes
             if scope.call is not None]
    return "from " + " → ".join(calls) if calls else None
