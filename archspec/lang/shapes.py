"""Shape inference: every layer's output shape from the IR alone, with located shape errors."""

from __future__ import annotations

import math

from archspec.core.diagnostics import Diagnostics
from archspec.core.limits import MAX_ACTIVATIONS, MAX_PARAMS
from archspec.ir import INPUT_NODE, Layer, Network, Shape
from archspec.kinds import registry as reg

Shapes = dict[str, Shape | None]


def infer(network: Network, diags: Diagnostics) -> Shapes:
    """Output shape per layer name (and `input`); None where unknown (a sketch, or an error)."""
    shapes: Shapes = {INPUT_NODE: network.input.shape}
    reported: set[int] = set()
    params = 0
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
        if kind.window is not None:
            _window_warning(layer, kind.window(layer.args), known[0], diags)
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


def _window_warning(layer: Layer, window: reg.Window, shape: Shape,
                    diags: Diagnostics) -> None:
    dropped = [window.dropped(shape[1 + i], i) for i in (0, 1)]
    if not any(dropped):
        return
    diags.warning(
        "window",
        f"{layer.name}: a {window.kernel[0]}x{window.kernel[1]} window with stride "
        f"{window.stride[0]}x{window.stride[1]} does not tile its {shape[1]}x{shape[2]} "
        f"input: {dropped[0]} row(s) and {dropped[1]} column(s) at the edge are never read",
        layer.span, hint="; ".join(h for h in (
            _call_site(layer), "adjust pad or stride, or set ceil=true on a pool") if h))


def _call_site(layer: Layer) -> str | None:
    """`from down(128) at line 9` for a layer made by a block call (the innermost one)."""
    for scope in reversed(layer.scopes):
        if scope.call is not None:
            return f"from `{scope.label}` at line {scope.call.line}"
    return None
