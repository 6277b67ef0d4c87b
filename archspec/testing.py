"""Hypothesis strategies for property tests: random valid `.arch` specs and their networks.

`specs()` draws the text of a spec that archspec accepts: convolutions with random kernel,
stride, padding, dilation and groups, max and average pools (some with `ceil`, some adaptive),
GMP, upsampling, transposed convolutions, FCs, batch norm, LRN, layer and group norm, layer
scale, every activation, dropout and stochastic depth, channel slices and shuffles, residual
`( A + B )`, concat `( A | B )` and multiply
`( A * B )` branches (channel gates among them) and
`[...]*N` repeats, under random `activation`/`batchnorm`/`defaults` headers; some layers
carry names that code generators must handle with care (`AWKWARD_NAMES`: `forward`,
`class`, `self`...). `networks()`
draws the same specs loaded into the IR. Each layer's shape is worked out with the registry's
own rules as the text is drawn, so every draw is valid; use them to property-test tools built
on archspec::

    from hypothesis import given
    from archspec.testing import networks

    @given(networks())
    def test_my_tool(network): ...
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from archspec.ir import ArgValue, Network, Shape
from archspec.kinds import registry as reg
from archspec.lang.frontend import loads

_ACTIVATIONS = ("RELU", "TANH", "SIGMOID", "GELU", "LEAKYRELU(0.1)", "RELU6", "HARDSWISH",
                "HARDSIGMOID", "SILU", "SWISH", "MISH", "SELU", "ELU(alpha=0.5)", "PRELU",
                "PRELU(per_channel=true)")
# Names a user may give layers that a code generator must not take at face value: Python
# keywords and soft keywords, nn.Module attributes, names a generated module uses itself,
# names an unnamed layer would get, a private name.
AWKWARD_NAMES = ("forward", "training", "self", "x", "torch", "nn", "class", "def", "match",
                 "features", "classifier", "conv1", "relu1", "layer_forward", "_hidden",
                 "OrderedDict", "build", "INPUT_SHAPE", "ID", "add1")


@dataclass
class _Draw:
    """The state of one drawing: the hypothesis `draw`, a layer budget, the widths allowed."""

    draw: Any
    budget: int
    max_channels: int
    names: list[str] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)  # the header's `block` lines

    def spend(self) -> bool:
        self.budget -= 1
        return self.budget >= 0


def _out(kind: str, args: dict[str, ArgValue], shape: Shape) -> Shape | None:
    """The registry's output shape, or None where the layer would not fit."""
    rule = reg.lookup(kind)
    assert rule is not None
    full = {p.name: p.default for p in rule.params if p.default is not None} | args
    try:
        return rule.shape(full, shape)
    except reg.ShapeError:
        return None


def _args(args: dict[str, ArgValue]) -> str:
    def text(value: ArgValue) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, tuple):
            return f"{value[0]}x{value[1]}"
        return str(value)

    return ", ".join(f"{k}={text(v)}" for k, v in args.items())


def _conv(d: _Draw, shape: Shape) -> tuple[str, Shape] | None:
    groups = d.draw(st.sampled_from([g for g in (1, 2, 3, 4) if shape[0] % g == 0]))
    filters = groups * d.draw(st.integers(1, max(1, d.max_channels // groups)))
    kernel = (d.draw(st.integers(1, 5)), d.draw(st.integers(1, 5)))
    args: dict[str, ArgValue] = {
        "kernel": kernel if kernel[0] != kernel[1] else kernel[0],
        "stride": d.draw(st.integers(1, 3)), "pad": d.draw(st.integers(0, 2)),
        "dilation": d.draw(st.integers(1, 2)), "groups": groups,
        "bias": d.draw(st.booleans())}
    out = _out("CONV", {"filters": filters, **args}, shape)
    return (f"CONV({filters}, {_args(args)})", out) if out else None


def _pool(d: _Draw, shape: Shape) -> tuple[str, Shape] | None:
    kind = d.draw(st.sampled_from(("MAXPOOL", "AVGPOOL")))
    kernel = d.draw(st.integers(1, 3))
    args: dict[str, ArgValue] = {"kernel": kernel, "stride": d.draw(st.integers(1, 3)),
                                 "pad": d.draw(st.integers(0, kernel // 2)),
                                 "ceil": d.draw(st.booleans())}
    out = _out(kind, args, shape)
    return (f"{kind}({_args(args)})", out) if out else None


def _resample(d: _Draw, shape: Shape) -> tuple[str, Shape] | None:
    """A layer that changes a map's size: an adaptive pool (GMP among them), an upsampling,
    a transposed convolution."""
    choice = d.draw(st.sampled_from(("adaptive", "gmp", "upsample", "deconv")))
    if choice == "adaptive":
        out = (d.draw(st.integers(1, 6)), d.draw(st.integers(1, 6)))
        kind = d.draw(st.sampled_from(("MAXPOOL", "AVGPOOL")))
        size = f"{out[0]}x{out[1]}" if out[0] != out[1] else str(out[0])
        return f"{kind}(out={size})", (shape[0], *out)
    if choice == "gmp":
        return "GMP", (shape[0], 1, 1)
    if max(shape[1:]) > 8:  # keep the maps small
        return None
    if choice == "upsample":
        scale = d.draw(st.integers(1, 2))
        mode = d.draw(st.sampled_from(("nearest", "bilinear")))
        return f"UPSAMPLE({scale}, mode={mode})", (shape[0], shape[1] * scale, shape[2] * scale)
    groups = d.draw(st.sampled_from([g for g in (1, 2) if shape[0] % g == 0]))
    filters = groups * d.draw(st.integers(1, max(1, d.max_channels // groups)))
    stride = d.draw(st.integers(1, 2))
    args: dict[str, ArgValue] = {
        "kernel": d.draw(st.integers(1, 3)), "stride": stride, "pad": d.draw(st.integers(0, 1)),
        "dilation": d.draw(st.integers(1, 2)), "groups": groups, "bias": d.draw(st.booleans()),
        "output_pad": d.draw(st.integers(0, stride - 1))}
    out = _out("DECONV", {"filters": filters, **args}, shape)
    return (f"DECONV({filters}, {_args(args)})", out) if out else None


def _slice(d: _Draw, shape: Shape) -> tuple[str, Shape]:
    start = d.draw(st.integers(0, shape[0] - 1))
    stop = d.draw(st.integers(start + 1, shape[0]))
    return f"SLICE({start}, {stop})", (stop - start, *shape[1:])


def _same_conv(d: _Draw, filters: int) -> str:
    """A stride-1 convolution that keeps the spatial size: the `CONVk-f` shorthand."""
    return f"CONV{d.draw(st.sampled_from((1, 3)))}-{filters}"


def _keeping(d: _Draw, shape: Shape) -> str:
    """A short chain that keeps its input's shape exactly (for residual branches, repeats)."""
    parts = []
    for _ in range(d.draw(st.integers(1, 3))):
        if not d.spend():
            break
        if len(shape) == 3:
            options = ("conv", "bn", "act", "dropout", "lrn", "norm", "shuffle")
        else:  # a square FC keeps a flat shape; a wide one would dominate the run time
            options = ("fc", "bn", "act", "dropout", "norm") if shape[0] <= 64 \
                else ("bn", "act", "norm")
        choice = d.draw(st.sampled_from(options))
        if choice == "conv":
            parts.append(_same_conv(d, shape[0]))
        elif choice == "fc":
            parts.append(f"FC-{shape[0]}")
        elif choice == "bn":
            parts.append("BN")
        elif choice == "lrn":
            parts.append(f"LRN(size={d.draw(st.integers(1, 5))})")
        elif choice == "dropout":
            kind = d.draw(st.sampled_from(("DROPOUT", "DROPPATH", "STOCHASTICDEPTH")))
            parts.append(f"{kind}({d.draw(st.sampled_from((0, 0.1, 0.5)))})")
        elif choice == "norm":
            groups = d.draw(st.sampled_from([g for g in (1, 2, 3, 4) if shape[0] % g == 0]))
            norms = ["LAYERNORM", "LAYERNORM(eps=0.001)", "SCALE(init=0.5)"]
            if math.prod(shape) > groups:  # a group of one value is refused
                norms.append(f"GROUPNORM({groups})")
            parts.append(d.draw(st.sampled_from(norms)))
        elif choice == "shuffle":
            groups = d.draw(st.sampled_from([g for g in (1, 2, 3, 4) if shape[0] % g == 0]))
            parts.append(f"SHUFFLE({groups})")
        else:
            parts.append(d.draw(st.sampled_from(_ACTIVATIONS)))
    return " - ".join(parts) or "BN"


def _residual(d: _Draw, shape: Shape) -> tuple[str, Shape]:
    left = _keeping(d, shape)
    right = d.draw(st.sampled_from(("ID", "keep")))
    return f"({left} + {_keeping(d, shape) if right == 'keep' else 'ID'})", shape


def _multiply(d: _Draw, shape: Shape) -> tuple[str, Shape]:
    """A product of branches: a squeeze-and-excitation channel gate (Cx1x1 beside the map)
    or, on either rank, two branches of the same shape."""
    if len(shape) == 3 and d.draw(st.booleans()):
        squeeze = d.draw(st.integers(1, d.max_channels))
        gate = f"GAP - CONV1-{squeeze} - RELU - CONV1-{shape[0]} - SIGMOID"
        branches = [d.draw(st.sampled_from(("ID", _keeping(d, shape)))), gate]
        return f"({' * '.join(d.draw(st.permutations(branches)))})", shape
    return f"({_keeping(d, shape)} * {d.draw(st.sampled_from(('ID', _keeping(d, shape))))})", \
        shape


def _concat(d: _Draw, shape: Shape) -> tuple[str, Shape]:
    branches, channels = [], 0
    for _ in range(d.draw(st.integers(2, 3))):
        choice = d.draw(st.sampled_from(("conv", "pool", "id")))
        if choice == "conv":
            filters = d.draw(st.integers(1, d.max_channels))
            branches.append(_same_conv(d, filters))
            channels += filters
        elif choice == "pool":
            branches.append("MAXPOOL3/1(pad=1)")
            channels += shape[0]
        else:
            branches.append("ID")
            channels += shape[0]
    return f"({' | '.join(branches)})", (channels, *shape[1:])


def _step(d: _Draw, shape: Shape) -> tuple[str, Shape] | None:
    """One piece of the body, sometimes named: a layer, a branch or a repeat."""
    step = _piece(d, shape)
    if step is None or step[0].startswith(("(", "[")) or " - " in step[0] or ":" in step[0]:
        return step
    name = d.draw(st.sampled_from(AWKWARD_NAMES))
    if name in d.names or not d.draw(st.booleans()):
        return step
    d.names.append(name)
    return f"{name}: {step[0]}", step[1]


def _piece(d: _Draw, shape: Shape) -> tuple[str, Shape] | None:
    """A layer, a branch or a repeat, valid for `shape`."""
    if len(shape) == 1:
        choice = d.draw(st.sampled_from(("fc", "fc", "bn", "act", "dropout", "repeat",
                                         "residual", "multiply", "slice", "group", "block")))
    else:
        choice = d.draw(st.sampled_from(("conv", "conv", "conv", "pool", "pool", "bn", "act",
                                         "lrn", "dropout", "residual", "residual", "concat",
                                         "concat", "multiply", "repeat", "gap", "fc",
                                         "flatten", "slice", "resample", "resample", "group",
                                         "block")))
    if choice == "conv":
        return _conv(d, shape)
    if choice == "pool":
        return _pool(d, shape)
    if choice == "fc":
        units = d.draw(st.integers(1, 4 * d.max_channels))
        return f"FC-{units}", (units,)
    if choice == "gap":
        return "GAP", (shape[0], 1, 1)
    if choice == "flatten":
        return "FLATTEN", (shape[0] * shape[1] * shape[2],)
    if choice == "residual":
        return _residual(d, shape)
    if choice == "concat":
        return _concat(d, shape)
    if choice == "multiply":
        return _multiply(d, shape)
    if choice == "slice":
        return _slice(d, shape)
    if choice == "resample":
        return _resample(d, shape)
    if choice == "repeat":
        return f"[{_keeping(d, shape)}]*{d.draw(st.integers(1, 3))}", shape
    if choice == "group":
        return _group(d, shape)
    if choice == "block":
        return _block(d, shape)
    return _keeping(d, shape), shape


# Names inside a named group or block: keys of the module hierarchy (keywords, soft
# keywords and the generated module's own names among them; nn.Module's attributes refused).
_INNER_NAMES = ("conv", "bn1", "class", "x", "self", "match", "downsample", "torch", "_p")


def _top_name(d: _Draw, options: tuple[str, ...]) -> str:
    """A name for the top level that no other top-level element has."""
    name = d.draw(st.sampled_from(options))
    while name in d.names:
        name += "_"
    d.names.append(name)
    return name


def _group(d: _Draw, shape: Shape) -> tuple[str, Shape] | None:
    """A named group (`stage: [...]`, maybe repeated, maybe with named items inside)."""
    name = _top_name(d, ("stage", "layer1", "features", "head", "x", "class"))
    if d.draw(st.booleans()):
        return f"{name}: [{_keeping(d, shape)}]*{d.draw(st.integers(1, 3))}", shape
    parts, used = [], set()
    for _ in range(d.draw(st.integers(1, 3))):
        step = _piece(d, shape)
        if step is None:
            break
        inner = d.draw(st.sampled_from(_INNER_NAMES))
        plain = not step[0].startswith(("(", "[")) and " - " not in step[0] and ":" not in step[0]
        label, colon, rest = step[0].partition(": ")
        if colon and label.isidentifier():  # a named group or call inside: a key here too
            while label in used:
                label += "_"
            used.add(label)
            parts.append(f"{label}: {rest}")
        elif plain and inner not in used and d.draw(st.booleans()):
            used.add(inner)
            parts.append(f"{inner}: {step[0]}")
        else:
            parts.append(step[0])
        shape = step[1]
    return (f"{name}: [{' - '.join(parts)}]", shape) if parts else None


def _block(d: _Draw, shape: Shape) -> tuple[str, Shape] | None:
    """A block with a width parameter, defined in the header and called once or twice (the
    calls may differ: the generated class then takes the width as an argument)."""
    if not d.spend():
        return None
    widths = d.draw(st.lists(st.integers(1, d.max_channels), min_size=1, max_size=2))
    out: Shape = (widths[-1], *shape[1:])
    head = "CONV1-$c" if len(shape) == 3 else "FC($c)"
    if len(set(widths)) == 1:
        tail = _keeping(d, (widths[0], *shape[1:]))
    else:
        tail = d.draw(st.sampled_from(("BN", "RELU", "BN - RELU")))
    name = f"b{len(d.blocks) + 1}"
    d.blocks.append(f"block {name}(c): {head} - {tail}")
    calls = [f"{name}({w})" for w in widths]
    if d.draw(st.booleans()):
        calls[0] = f"{_top_name(d, ('layer1', 'down', 'x'))}: {calls[0]}"
    return " - ".join(calls), out


@st.composite
def specs(draw: Any, *, max_layers: int = 12, max_size: int = 12,
          max_channels: int = 8) -> str:
    """The text of a random valid spec (small enough to build and run in milliseconds)."""
    d = _Draw(draw, draw(st.integers(1, max_layers)), max_channels)
    if draw(st.integers(0, 3)):
        shape: Shape = (draw(st.integers(1, 4)), draw(st.integers(1, max_size)),
                        draw(st.integers(1, max_size)))
    else:
        shape = (draw(st.integers(1, 4 * max_channels)),)
    header = ["network random", f"input {'x'.join(map(str, shape))}"]
    if draw(st.booleans()):
        header.append(f"activation {draw(st.sampled_from(('relu', 'tanh', 'gelu')))}")
    if draw(st.booleans()):
        header.append("batchnorm")
    if draw(st.booleans()):
        header.append("defaults CONV(bias=false) BN(eps=0.001)")
    body: list[str] = []
    while d.spend():
        step = _step(d, shape)
        if step is not None:
            body.append(step[0])
            shape = step[1]
    if not body:
        body.append("FC-2" if len(shape) == 1 else "CONV1-2")
    return "\n".join([*header, *d.blocks]) + "\n\n" + " -\n".join(body) + "\n"


def networks(**limits: int) -> st.SearchStrategy[Network]:
    """Random valid networks, lowered to the IR (see `specs` for the limits)."""
    return specs(**limits).map(_load)


def _load(text: str) -> Network:
    spec = loads(text, "<random>")
    if not spec.ok or spec.network is None:
        raise AssertionError(f"archspec.testing drew an invalid spec:\n{text}\n{spec.render()}")
    return spec.network
