"""The one registry of layer kinds: arguments, shorthand, shape, cost and memory rules.

A kind holds no back end's facts: each back end keeps its own table of the kinds
(`archspec/backends/torch/layers.py`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from archspec.core.diagnostics import closest
from archspec.core.record import Record
from archspec.core.text import many, shape_text
from archspec.ir import ArgValue, Shape

Args = Mapping[str, ArgValue]
ParamType = Literal["int", "count", "size", "pad", "float", "bool", "mode"]
Family = Literal["conv", "pool", "norm", "activation", "fc", "dropout", "reshape", "resample",
                 "join"]
REQUIRED: Any = object()


class ShapeError(Exception):
    """A layer cannot take the shape it is given; the message says why, with both shapes.
    `fallback` is a shape later layers can still be checked against (a join's first branch)."""

    def __init__(self, message: str, fallback: Shape | None = None) -> None:
        super().__init__(message)
        self.fallback = fallback


class Param(Record):
    """One argument: its type, default and allowed range (checked with a located message)."""

    name: str
    type: ParamType
    default: Any = REQUIRED
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()  # a "mode": the words it may be
    instead: str | None = None  # required unless this other parameter is given

    def check(self, value: float) -> str | None:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return f"{self.name} must be {'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None and (
            value > self.high or (self.high_open and value == self.high)
        ):
            return f"{self.name} must be {'<' if self.high_open else '<='} {self.high:g}"
        return None


class Window(Record):
    """A sliding window (conv or pool), per spatial dimension."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]
    dilation: tuple[int, int] = (1, 1)
    ceil: bool = False

    def extent(self, i: int) -> int:
        return self.dilation[i] * (self.kernel[i] - 1) + 1

    def out(self, size: int, i: int) -> int:
        """PyTorch's output size, including ceil_mode's last-window rule."""
        span = size + 2 * self.pad[i] - self.extent(i)
        if span < 0 and not self.ceil:  # with ceil_mode a window may start inside the input
            return 0
        if not self.ceil:
            return span // self.stride[i] + 1
        out = -(-span // self.stride[i]) + 1
        if (out - 1) * self.stride[i] >= size + self.pad[i]:
            out -= 1
        return out

    def reads(self, size: int, i: int) -> bytearray:
        """Which of `size` input rows (i=0) or columns (i=1) some tap of some window reads:
        1 where one does. Tap j of window o reads o*stride + j*dilation - pad."""
        read = bytearray(size)
        stride, out = self.stride[i], self.out(size, i)
        for j in range(self.kernel[i]):
            start = j * self.dilation[i] - self.pad[i]
            if start < 0:  # the first window whose tap j lands inside the input
                start += -(start // stride) * stride
            stop = min(size, j * self.dilation[i] - self.pad[i] + (out - 1) * stride + 1)
            if start < stop:
                read[start:stop:stride] = b"\x01" * len(range(start, stop, stride))
        return read


class Step(Record):
    """How a layer without a fixed sliding window moves the receptive field, per dimension:
    each output value sees `extent` input positions, neighbours `stride` positions apart, and
    `up` output positions share an input position (upsampling divides the jump)."""

    extent: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    up: tuple[int, int] = (1, 1)


class Cost(Record):
    """Parameters and work of one layer; `formula` shows how `weights` is counted (CS231n's
    notation: fan-in factors, spatial ones first, then the outputs: `(3*3*3)*64`)."""

    weights: int = 0
    biases: int = 0
    buffers: int = 0
    counters: int = 0  # of the buffers, int64 counters (BN's num_batches_tracked): 8 bytes
    macs: int = 0
    formula: str = ""

    def buffer_bytes(self, bytes_per_value: int) -> int:
        """The buffers' bytes: values at the network's dtype, counters as int64."""
        return (self.buffers - self.counters) * bytes_per_value + 8 * self.counters


class Saved(Record):
    """What autograd keeps of one layer for the backward pass: its input and/or output tensor;
    per sample `extra` more values at the network's dtype and `extra_bytes` fixed-size bytes
    (int64 pooling indices); `stats` values per batch, whatever its size (BN's batch stats)."""

    input: bool = False
    output: bool = False
    extra: int = 0
    extra_bytes: int = 0
    stats: int = 0


Runs = Literal["low", "fp32", "input", "widest"]


class Autocast(Record):
    """How a kind runs under PyTorch autocast on one device, after torch's op lists for it.

    `runs`: "low" casts its input to the low-precision type (autocast's lower-precision list:
    convolutions, linear, prelu; its float32 weights are cast once and cached), "fp32" casts it
    to float32 (the fp32 list), "input" runs at its input's type (on neither list), "widest"
    at the widest of its inputs' types (type promotion: the joins). `stats_fp32`: the extra
    values it saves (statistics, intermediates) are float32 whatever its input's type;
    `out_fp32`: its output is float32 (promoted against a float32 parameter or intermediate).
    `copy_needs_input_grad`: a low-precision layer keeps its weights' copy only when its input
    needs a gradient (a matrix product: d(input) = grad @ W), else always (a convolution).
    """

    runs: Runs
    stats_fp32: bool = False
    out_fp32: bool = False
    copy_needs_input_grad: bool = False


def _on_both(rule: Autocast) -> dict[str, Autocast]:
    return {"cpu": rule, "cuda": rule}


_LOW = _on_both(Autocast("low"))
_LOW_PRODUCT = _on_both(Autocast("low", copy_needs_input_grad=True))
_FOLLOWS = _on_both(Autocast("input"))
_WIDEST = _on_both(Autocast("widest"))
_STATS_FP32 = _on_both(Autocast("input", stats_fp32=True))
# On CUDA's fp32 list (softmax, layer_norm, group_norm); on CPU at the input's type.
_FP32_ON_CUDA = {"cpu": Autocast("input"), "cuda": Autocast("fp32")}
_NORM_FP32_ON_CUDA = {"cpu": Autocast("input", stats_fp32=True), "cuda": Autocast("fp32")}


class LayerKind(Record):
    """Everything archspec knows about one kind of layer, declared once."""

    name: str
    family: Family
    short: str
    params: tuple[Param, ...] = ()
    aliases: tuple[str, ...] = ()
    # Shorthand slots: CONV3-64/2 fills suffix=kernel, dash=filters, slash=stride.
    suffix: str | None = None
    dash: str | None = None
    slash: str | None = None
    shorthand_implies: tuple[tuple[str, ArgValue], ...] = ()
    out_rank: int | None = None  # None: same rank as the input
    shape: Callable[[Args, Shape], Shape] = lambda args, shape: shape
    # A sliding window (None for some arguments: an adaptive pool), or else a field `step`.
    window: Callable[[Args], Window | None] | None = None
    step: Callable[[Args, Shape], Step] | None = None
    cost: Callable[[Args, Shape, Shape], Cost] = lambda args, i, o: Cost()
    # Joins only (a join is a kind written as an operator between branches, `( A + B )`):
    # `op` the operator, `verb` what it does (for hints), `symbol` how tables and diagrams
    # show it, `join` the output shape from the
    # branches' shapes (raises ShapeError), `field_from` which branches set the receptive
    # field, `saves_inputs` which branches autograd keeps, given which ones it records.
    op: str | None = None
    verb: str = ""
    symbol: str = ""
    join: Callable[[list[Shape]], Shape] | None = None
    field_from: Callable[[list[Shape], Shape], list[bool]] = (
        lambda shapes, out: [True] * len(shapes))
    saves_inputs: Callable[[list[bool]], list[bool]] = (
        lambda recorded: [False] * len(recorded))
    commutative: bool = False  # the branches' order does not matter (`archspec diff` reads it)
    # Memory and receptive-field facts, read by archspec.analysis.cost:
    # What the `activation` and `batchnorm` headers insert after it, and whether a flatten is
    # implied before it when its input is spatial (read by lang/expand.py):
    header_activation: bool = False
    header_bn: bool = False
    flat_input: bool = False
    # Activations only, read by archspec.runtime.probe: the output's bounds, where units saturate
    # (tanh, sigmoid), and whether a unit can die (zero for every input: ReLU).
    bounds: tuple[float, float] | None = None
    dies: bool = False
    view: bool = False  # output is a view of its input: no new storage (flatten)
    # A view that skips values of each sample (a channel SLICE): with more than one sample in
    # the batch its output is not contiguous in memory.
    strided: Callable[[Args, Shape], bool] = lambda args, inp: False
    # Computes on a contiguous copy of a strided input, and that copy is what it saves
    # (torch's group_norm calls .contiguous() on its input).
    contiguous_input: bool = False
    # Whether its output is laid out channels last, given which of its inputs are, their
    # shapes and its output's: the layout LAYERNORM leaves on a map (it permutes the channels
    # last and back, as torchvision's ConvNeXt does), which torch's kernels carry on. Most
    # kinds keep their input's layout; what the analyses read it for is `copies_channels_last`.
    channels_last: Callable[[list[bool], list[Shape], Shape], bool] = (
        lambda last, ins, out: last[0] and len(out) == 3)
    # A view of a contiguous input only: a channels-last one it copies (torch.flatten's
    # reshape), where that layout differs (more than one channel and one position).
    copies_channels_last: bool = False
    # Returns its very input for these arguments (DROPOUT(p=0)): no new storage either.
    returns_input: Callable[[Args], bool] = lambda args: False
    # Returns its very input when the module runs in eval mode (inference): dropout.
    identity_in_eval: bool = False
    in_place: bool = False  # may overwrite its input; the CS231n count folds it into the last
    # Acts on each value alone, whatever the input's shape, so it runs the same before or
    # after a flatten (RELU, DROPOUT; not SOFTMAX, which reads dim 1): read by lang/expand.py.
    pointwise: bool = False
    global_view: bool = False  # every output value sees the whole input (FC, GAP)
    args_hint: str = ""  # a hint when arguments are given that it does not take (GAP(7))
    saves: Callable[[Args, Shape, Shape], Saved] = lambda args, i, o: Saved()
    # How it runs under autocast, per device ("cpu", "cuda": the catalog's devices); every
    # kind and join states it (tests/test_table.py checks), read by the memory planner.
    autocast: Mapping[str, Autocast] | None = None

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


def whole(args: Args, name: str) -> int:
    """A whole-number argument (validated by the lowering against the kind's Param)."""
    value = args[name]
    assert isinstance(value, int), (name, value)
    return value


def pair(value: ArgValue) -> tuple[int, int]:
    if isinstance(value, tuple):
        return value
    assert isinstance(value, int)
    return (value, value)


def _spatial(kind: str, shape: Shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ShapeError(f"{kind} needs a CxHxW input, but gets {format_shape(shape)}")
    return shape[0], shape[1], shape[2]


def format_shape(shape: Shape) -> str:
    """`64x56x56`, or `a flat vector of 4096` for rank 1."""
    if len(shape) == 1:
        return f"a flat vector of {shape[0]}"
    return shape_text(shape)


def _fixed_window(args: Args) -> Window:
    window = _pool_window(args)
    assert window is not None
    return window


def _windowed(
    kind: str, window: Callable[[Args], Window], channels: Callable[[Args, int], int]
) -> Callable[[Args, Shape], Shape]:
    def rule(args: Args, shape: Shape) -> Shape:
        c, h, w = _spatial(kind, shape)
        win = window(args)
        out = (win.out(h, 0), win.out(w, 1))
        if min(out) < 1:
            k = "x".join(str(win.extent(i)) for i in (0, 1))
            raise ShapeError(
                f"{kind} window {k} (pad {win.pad[0]}) does not fit its {h}x{w} input: "
                f"the output would be {out[0]}x{out[1]}"
            )
        return (channels(args, c), *out)

    return rule


def _conv_window(args: Args) -> Window:
    return Window(kernel=pair(args["kernel"]), stride=pair(args["stride"]),
                  pad=pair(args["pad"]), dilation=pair(args["dilation"]))


def _pool_window(args: Args) -> Window | None:
    if "out" in args:  # adaptive: PyTorch's windows cover every pixel
        return None
    return Window(kernel=pair(args["kernel"]), stride=pair(args["stride"]),
                  pad=pair(args["pad"]), ceil=bool(args["ceil"]))


def adaptive_windows(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive pooling windows along one dimension: [floor(i*in/out),
    ceil((i+1)*in/out)) for each output position i."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def _adaptive_step(args: Args, shape: Shape) -> Step:
    """The widest adaptive window, and the average distance between windows."""
    out = pair(args["out"])
    extent = tuple(max(stop - start for start, stop in adaptive_windows(shape[1 + i], out[i]))
                   for i in (0, 1))
    return Step(extent=(extent[0], extent[1]),
                stride=(max(1, shape[1] // out[0]), max(1, shape[2] // out[1])),
                up=(max(1, out[0] // shape[1]), max(1, out[1] // shape[2])))


def _conv_channels(args: Args, c: int) -> int:
    groups = whole(args, "groups")
    filters = whole(args, "filters")
    if c % groups or filters % groups:
        raise ShapeError(
            f"CONV groups={groups} must divide both its {many(c, 'input channel')} and its "
            f"{many(filters, 'filter')}"
        )
    return filters


def _conv_cost(args: Args, inp: Shape, out: Shape) -> Cost:
    kh, kw = pair(args["kernel"])
    fan_in = inp[0] // whole(args, "groups")
    weights = out[0] * fan_in * kh * kw
    biases = out[0] if args["bias"] else 0
    return Cost(weights=weights, biases=biases, macs=weights * out[1] * out[2],
                formula=f"({kh}*{kw}*{fan_in})*{out[0]}")


def _pool_shape(kind: str) -> Callable[[Args, Shape], Shape]:
    rule = _windowed(kind, _fixed_window, lambda args, c: c)

    def checked(args: Args, shape: Shape) -> Shape:
        if "out" in args:
            c, _h, _w = _spatial(kind, shape)
            return (c, *pair(args["out"]))
        kh, kw = pair(args["kernel"])
        ph, pw = pair(args["pad"])
        if 2 * ph > kh or 2 * pw > kw:
            raise ShapeError(f"{kind} pad must be at most half the kernel (PyTorch's rule)")
        return rule(args, shape)

    return checked


def _features(shape: Shape) -> int:
    return math.prod(shape)


def _fc_cost(args: Args, inp: Shape, out: Shape) -> Cost:
    weights = _features(inp) * whole(args, "units")
    # The fan-in as the CS231n slides write it: HxWxC of a map (7*7*512), else its size.
    fan_in = (*inp[1:], inp[0]) if len(inp) == 3 and inp[1:] != (1, 1) else (_features(inp),)
    return Cost(weights=weights, biases=whole(args, "units") if args["bias"] else 0, macs=weights,
                formula="*".join(str(d) for d in (*fan_in, args["units"])))


def _fc_shape(args: Args, shape: Shape) -> Shape:
    if len(shape) != 1:
        raise ShapeError(f"FC needs a flat input, but gets {format_shape(shape)}")
    return (whole(args, "units"),)


def _bn_cost(args: Args, inp: Shape, out: Shape) -> Cost:
    c = inp[0]
    # running_mean and running_var at the dtype, num_batches_tracked an int64 counter
    return Cost(weights=c, biases=c, buffers=2 * c + 1, counters=1, formula=f"{c}")


def _saves_input(args: Args, inp: Shape, out: Shape) -> Saved:
    return Saved(input=True)


def _saves_output(args: Args, inp: Shape, out: Shape) -> Saved:
    return Saved(output=True)


def _bn_saves(args: Args, inp: Shape, out: Shape) -> Saved:
    return Saved(input=True, stats=2 * inp[0])  # the batch mean and inverse deviation


def _maxpool_saves(args: Args, inp: Shape, out: Shape) -> Saved:
    return Saved(input=True, extra_bytes=8 * _features(out))  # int64 argmax indices


def _lrn_saves(args: Args, inp: Shape, out: Shape) -> Saved:
    # torch's local_response_norm keeps its input, the zero-padded squares (C + size - 1
    # channels) and the divisor before and after the power.
    c, h, w = _spatial("NORM", inp)
    return Saved(input=True, extra=(c + whole(args, "size") - 1 + 2 * c) * h * w)


def _drops_nothing(args: Args) -> bool:
    return args["p"] == 0  # torch returns the input itself


def _dropout_saves(args: Args, inp: Shape, out: Shape) -> Saved:
    if args["p"] == 0:  # torch returns its input untouched: no mask, nothing saved
        return Saved()
    return Saved(extra=_features(out))  # the mask, at the dtype (PyTorch's CPU kernel)


def _gap_shape(args: Args, shape: Shape) -> Shape:
    c, _h, _w = _spatial("GAP", shape)
    return (c, 1, 1)


def _lrn_shape(args: Args, shape: Shape) -> Shape:
    _spatial("NORM", shape)  # torch's LocalResponseNorm normalises across channels of a map
    return shape


def _flatten_shape(args: Args, shape: Shape) -> Shape:
    return (_features(shape),)


def _affine_cost(args: Args, inp: Shape, out: Shape) -> Cost:
    """A weight and a bias per channel (or feature): LAYERNORM, GROUPNORM."""
    c = inp[0]
    return Cost(weights=c, biases=c, formula=f"{c}")


def _prelu_cost(args: Args, inp: Shape, out: Shape) -> Cost:
    slopes = inp[0] if args["per_channel"] else 1
    return Cost(weights=slopes, formula=f"{slopes}")


def _scale_cost(args: Args, inp: Shape, out: Shape) -> Cost:
    return Cost(weights=inp[0], formula=f"{inp[0]}")


def _layernorm_saves(args: Args, inp: Shape, out: Shape) -> Saved:
    # the input, and a mean and an inverse deviation per normalised vector: one vector per
    # position of a map (over its channels), one for a flat input
    return Saved(input=True, extra=2 * math.prod(inp[1:]))


def _slices_part(args: Args, inp: Shape) -> bool:
    return (args["start"], args["stop"]) != (0, inp[0])  # not every channel


def _groupnorm_saves(args: Args, inp: Shape, out: Shape) -> Saved:
    return Saved(input=True, extra=2 * whole(args, "groups"))  # a mean and rstd per group


def _droppath_saves(args: Args, inp: Shape, out: Shape) -> Saved:
    if args["p"] == 0:  # returns its input
        return Saved()
    return Saved(extra=1)  # the per-sample keep mask, N x 1 x 1 x 1 at the dtype


def _avgpool_saves(args: Args, inp: Shape, out: Shape) -> Saved:
    # torch's adaptive average pool to 1x1 is a mean, which keeps only sizes
    if "out" in args and pair(args["out"]) == (1, 1):
        return Saved()
    return Saved(input=True)


def _divides(kind: str) -> Callable[[Args, Shape], Shape]:
    """Keeps the shape; `groups` must divide the channels (GROUPNORM, SHUFFLE, which needs a
    CxHxW input first: torch's channel shuffle has no flat form)."""
    def rule(args: Args, shape: Shape) -> Shape:
        groups = whole(args, "groups")
        if kind == "SHUFFLE":
            _spatial(kind, shape)
        if shape[0] % groups:
            what = "channel" if len(shape) == 3 else "feature"
            raise ShapeError(f"{kind} groups={groups} must divide its {many(shape[0], what)}")
        if kind == "GROUPNORM" and math.prod(shape) == groups:  # torch refuses it: all zeros
            raise ShapeError(f"{kind} groups={groups} leaves one value in each group of its "
                             f"input ({format_shape(shape)}): normalised, it is always 0")
        return shape

    return rule


def _slice_shape(args: Args, shape: Shape) -> Shape:
    start, stop = whole(args, "start"), whole(args, "stop")
    if not start < stop <= shape[0]:
        raise ShapeError(f"SLICE({start}, {stop}) takes channels {start} to {stop - 1}, "
                         f"outside the {many(shape[0], 'channel')} of its input "
                         f"({format_shape(shape)})" if stop > shape[0] else
                         f"SLICE({start}, {stop}) is empty: start must be below stop")
    return (stop - start, *shape[1:])


def _global(kind: str) -> Callable[[Args, Shape], Shape]:
    def rule(args: Args, shape: Shape) -> Shape:
        c, _h, _w = _spatial(kind, shape)
        return (c, 1, 1)

    return rule


def _upsample_shape(args: Args, shape: Shape) -> Shape:
    c, h, w = _spatial("UPSAMPLE", shape)
    scale = whole(args, "scale")
    return (c, h * scale, w * scale)


def _upsample_step(args: Args, shape: Shape) -> Step:
    scale = whole(args, "scale")
    extent = 2 if args["mode"] == "bilinear" else 1  # bilinear mixes two neighbours
    return Step(extent=(extent, extent), up=(scale, scale))


def _deconv_shape(args: Args, shape: Shape) -> Shape:
    c, h, w = _spatial("DECONV", shape)
    groups, filters = whole(args, "groups"), whole(args, "filters")
    if c % groups or filters % groups:
        raise ShapeError(f"DECONV groups={groups} must divide both its "
                         f"{many(c, 'input channel')} and its {many(filters, 'filter')}")
    kernel, stride = pair(args["kernel"]), pair(args["stride"])
    pad, dilation, extra = pair(args["pad"]), pair(args["dilation"]), pair(args["output_pad"])
    for i in (0, 1):
        if extra[i] >= max(stride[i], dilation[i]):
            raise ShapeError("DECONV output_pad must be below its stride or its dilation "
                             "(PyTorch's rule)")
    out = tuple((size - 1) * stride[i] - 2 * pad[i] + dilation[i] * (kernel[i] - 1)
                + extra[i] + 1 for i, size in enumerate((h, w)))
    if min(out) < 1:
        raise ShapeError(f"DECONV pad {pad[0]} leaves no output from its {h}x{w} input: "
                         f"the output would be {out[0]}x{out[1]}")
    return (filters, *out)


def _deconv_cost(args: Args, inp: Shape, out: Shape) -> Cost:
    kh, kw = pair(args["kernel"])
    per_group = out[0] // whole(args, "groups")
    weights = inp[0] * per_group * kh * kw
    biases = out[0] if args["bias"] else 0
    # each input value multiplies its own kxk kernel once per output channel of its group
    return Cost(weights=weights, biases=biases, macs=weights * inp[1] * inp[2],
                formula=f"({kh}*{kw}*{per_group})*{inp[0]}")


def _deconv_step(args: Args, shape: Shape) -> Step:
    stride, dilation, kernel = pair(args["stride"]), pair(args["dilation"]), pair(args["kernel"])
    extent = tuple(-(-(dilation[i] * (kernel[i] - 1) + 1) // stride[i]) for i in (0, 1))
    return Step(extent=(extent[0], extent[1]), up=stride)


_POOL_PARAMS = (
    Param("kernel", "size", low=1, instead="out"),
    Param("stride", "size", default="kernel", low=1),
    Param("pad", "size", default=0, low=0),
    Param("ceil", "bool", default=False),
    Param("out", "size", default=None, low=1),
)
_EPS = Param("eps", "float", default=1e-5, low=0, low_open=True)
_DROP = Param("p", "float", low=0, high=1, high_open=True)

KINDS: tuple[LayerKind, ...] = (
    LayerKind(
        "CONV", "conv", "conv",
        params=(Param("filters", "count", low=1), Param("kernel", "size", low=1),
                Param("stride", "size", default=1, low=1), Param("pad", "pad", default=0, low=0),
                Param("dilation", "size", default=1, low=1),
                Param("groups", "count", default=1, low=1), Param("bias", "bool", default=True)),
        suffix="kernel", dash="filters", slash="stride", shorthand_implies=(("pad", "same"),),
        out_rank=3, shape=_windowed("CONV", _conv_window, _conv_channels), window=_conv_window,
        cost=_conv_cost, saves=_saves_input, header_activation=True, header_bn=True, autocast=_LOW),
    LayerKind("DECONV", "conv", "deconv",
              params=(Param("filters", "count", low=1), Param("kernel", "size", low=1),
                      Param("stride", "size", default=1, low=1),
                      Param("pad", "size", default=0, low=0),
                      Param("dilation", "size", default=1, low=1),
                      Param("groups", "count", default=1, low=1),
                      Param("bias", "bool", default=True),
                      Param("output_pad", "size", default=0, low=0)),
              suffix="kernel", dash="filters", slash="stride", out_rank=3, shape=_deconv_shape,
              step=_deconv_step, cost=_deconv_cost, saves=_saves_input, header_activation=True,
              header_bn=True, autocast=_LOW),
    LayerKind("MAXPOOL", "pool", "pool", params=_POOL_PARAMS, aliases=("POOL",),
              suffix="kernel", slash="stride", out_rank=3, shape=_pool_shape("MAXPOOL"),
              window=_pool_window, step=_adaptive_step, saves=_maxpool_saves, autocast=_FOLLOWS),
    LayerKind("AVGPOOL", "pool", "avgpool", params=_POOL_PARAMS, suffix="kernel", slash="stride",
              out_rank=3, shape=_pool_shape("AVGPOOL"), window=_pool_window, step=_adaptive_step,
              saves=_avgpool_saves, autocast=_FOLLOWS),
    LayerKind("GAP", "pool", "gap", out_rank=3, shape=_gap_shape, global_view=True,
              args_hint="GAP pools to 1x1; AVGPOOL(out=7) pools to 7x7 at any input size",
              autocast=_FOLLOWS),
    LayerKind("GMP", "pool", "gmp", out_rank=3, shape=_global("GMP"), global_view=True,
              saves=_maxpool_saves,
              args_hint="GMP pools to 1x1; MAXPOOL(out=7) pools to 7x7 at any input size",
              autocast=_FOLLOWS),
    LayerKind("UPSAMPLE", "resample", "upsample",
              params=(Param("scale", "count", low=1),
                      Param("mode", "mode", default="nearest", choices=("nearest", "bilinear"))),
              out_rank=3, shape=_upsample_shape, step=_upsample_step, autocast=_FOLLOWS),
    LayerKind("FC", "fc", "fc",
              params=(Param("units", "count", low=1), Param("bias", "bool", default=True)),
              dash="units", out_rank=1, shape=_fc_shape, cost=_fc_cost, global_view=True,
              saves=_saves_input, header_activation=True, flat_input=True, autocast=_LOW_PRODUCT),
    LayerKind("FLATTEN", "reshape", "flatten", out_rank=1, shape=_flatten_shape, view=True,
              copies_channels_last=True, autocast=_FOLLOWS),
    LayerKind("RELU", "activation", "relu", in_place=True, saves=_saves_output, dies=True,
              pointwise=True, autocast=_FOLLOWS),
    LayerKind("TANH", "activation", "tanh", pointwise=True, in_place=True, saves=_saves_output,
              bounds=(-1.0, 1.0), autocast=_FOLLOWS),
    LayerKind("SIGMOID", "activation", "sigmoid", in_place=True, saves=_saves_output,
              pointwise=True, bounds=(0.0, 1.0), autocast=_FOLLOWS),
    LayerKind("GELU", "activation", "gelu", pointwise=True, saves=_saves_input, autocast=_FOLLOWS),
    LayerKind("LEAKYRELU", "activation", "leakyrelu", pointwise=True,
              params=(Param("slope", "float", default=0.01, low=0),), in_place=True,
              saves=_saves_input, autocast=_FOLLOWS),
    LayerKind("SOFTMAX", "activation", "softmax", saves=_saves_output, autocast=_FP32_ON_CUDA,
              channels_last=lambda last, ins, out: False),  # torch writes it contiguous
    LayerKind("RELU6", "activation", "relu6", in_place=True, saves=_saves_input, dies=True,
              pointwise=True, autocast=_FOLLOWS),
    LayerKind("HARDSWISH", "activation", "hardswish", in_place=True, saves=_saves_input,
              pointwise=True, autocast=_FOLLOWS),
    LayerKind("HARDSIGMOID", "activation", "hardsigmoid", in_place=True, saves=_saves_input,
              pointwise=True, bounds=(0.0, 1.0), autocast=_FOLLOWS),
    LayerKind("SILU", "activation", "silu", pointwise=True, aliases=("SWISH",), in_place=True,
              saves=_saves_input, autocast=_FOLLOWS),
    LayerKind("MISH", "activation", "mish", pointwise=True, in_place=True, saves=_saves_input,
              autocast=_FOLLOWS),
    LayerKind("SELU", "activation", "selu", pointwise=True, in_place=True, saves=_saves_input,
              autocast=_FOLLOWS),
    LayerKind("ELU", "activation", "elu", params=(Param("alpha", "float", default=1.0, low=0),),
              pointwise=True, in_place=True, saves=_saves_input, autocast=_FOLLOWS),
    LayerKind("PRELU", "activation", "prelu",
              params=(Param("per_channel", "bool", default=False),), cost=_prelu_cost,
              saves=_saves_input, autocast=_LOW),
    LayerKind("BN", "norm", "bn",
              params=(Param("eps", "float", default=1e-5, low=0, low_open=True),
                      Param("momentum", "float", default=0.1, low=0, high=1)),
              aliases=("BATCHNORM",), cost=_bn_cost, saves=_bn_saves, autocast=_STATS_FP32),
    LayerKind("NORM", "norm", "norm",
              params=(Param("size", "count", default=5, low=1),
                      Param("alpha", "float", default=1e-4, low=0),
                      Param("beta", "float", default=0.75, low=0),
                      Param("k", "float", default=2.0, low=0)),
              aliases=("LRN",), shape=_lrn_shape, saves=_lrn_saves,
              autocast=_on_both(Autocast("input", stats_fp32=True, out_fp32=True))),
    LayerKind("LAYERNORM", "norm", "layernorm", params=(_EPS,), cost=_affine_cost,
              saves=_layernorm_saves, autocast=_NORM_FP32_ON_CUDA,
              channels_last=lambda last, ins, out: len(out) == 3),
    LayerKind("GROUPNORM", "norm", "groupnorm", params=(Param("groups", "count", low=1), _EPS),
              shape=_divides("GROUPNORM"), cost=_affine_cost,
              saves=_groupnorm_saves, contiguous_input=True, autocast=_NORM_FP32_ON_CUDA),
    LayerKind("SCALE", "norm", "scale", params=(Param("init", "float", default=1e-6),),
              cost=_scale_cost, saves=_saves_input,
              autocast=_on_both(Autocast("input", out_fp32=True))),
    LayerKind("DROPOUT", "dropout", "dropout", pointwise=True,
              params=(Param("p", "float", default=0.5, low=0, high=1, high_open=True),
                      Param("keep", "float", default=None, low=0, high=1, low_open=True)),
              in_place=True, saves=_dropout_saves, returns_input=_drops_nothing,
              identity_in_eval=True, autocast=_FOLLOWS),
    LayerKind("STOCHASTICDEPTH", "dropout", "droppath", params=(_DROP,), aliases=("DROPPATH",),
              saves=_droppath_saves, returns_input=_drops_nothing, identity_in_eval=True,
              autocast=_FOLLOWS),
    LayerKind("SLICE", "reshape", "slice",
              params=(Param("start", "int", low=0), Param("stop", "count", low=1)),
              shape=_slice_shape, view=True, strided=_slices_part, autocast=_FOLLOWS),
    LayerKind("SHUFFLE", "reshape", "shuffle", params=(Param("groups", "count", low=1),),
              shape=_divides("SHUFFLE"), autocast=_FOLLOWS),
)


def _add_shape(shapes: list[Shape]) -> Shape:
    """A residual add needs equal shapes."""
    first = shapes[0]
    for other in shapes[1:]:
        if other != first:
            raise ShapeError(f"residual add needs equal shapes, but gets {format_shape(first)} "
                             f"and {format_shape(other)}", fallback=first)
    return first


def _concat_shape(shapes: list[Shape]) -> Shape:
    """A concat joins along channels; the spatial sizes must agree."""
    first = shapes[0]
    joined = (sum(s[0] for s in shapes), *first[1:])
    for other in shapes[1:]:
        if len(other) != len(first) or other[1:] != first[1:]:
            raise ShapeError(f"concat needs equal spatial sizes, but gets "
                             f"{format_shape(first)} and {format_shape(other)}",
                             fallback=joined if all(len(s) == len(first) for s in shapes)
                             else None)
    return joined


def _mul_shape(shapes: list[Shape]) -> Shape:
    """A multiply needs equal shapes, or a channel gate: C×1×1 beside a C×H×W map, broadcast
    over its height and width (squeeze-and-excitation)."""
    full = max(shapes, key=math.prod)  # the map the gates multiply
    for other in shapes:
        if other == full:
            continue
        if len(other) == 3 == len(full) and other[1:] == (1, 1):
            if other[0] == full[0]:
                continue
            raise ShapeError(f"multiply: the gate {format_shape(other)} has "
                             f"{many(other[0], 'channel')}, but the map it gates "
                             f"({format_shape(full)}) has {full[0]}", fallback=full)
        raise ShapeError(f"multiply needs equal shapes, or a Cx1x1 gate beside a CxHxW map, "
                         f"but gets {format_shape(full)} and {format_shape(other)}",
                         fallback=full)
    return full


def _full_size(shapes: list[Shape], out: Shape) -> list[bool]:
    """The branches of the output's own size: a broadcast gate does not widen the receptive
    field of the map it gates (each output value is one map value times one gate value)."""
    return [shape == out for shape in shapes]


def _full_size_layout(last: list[bool], shapes: list[Shape], out: Shape) -> bool:
    """An elementwise join is laid out as its first branch of the output's own size (torch's
    TensorIterator: a broadcast gate's layout decides nothing)."""
    return next((laid for laid, shape in zip(last, shapes, strict=True) if shape == out), False)


def _partners(recorded: list[bool]) -> list[bool]:
    """A product keeps each factor whose partner needs a gradient (d(a*b)/db = a)."""
    return [any(r for j, r in enumerate(recorded) if j != i) for i in range(len(recorded))]


# Joins are graph nodes made by branches, never written as layers: `( A op B op ... )`.
JOINS: tuple[LayerKind, ...] = (
    LayerKind("CONCAT", "join", "concat", op="|", verb="concatenates", symbol="concat",
              join=_concat_shape, autocast=_WIDEST,
              channels_last=lambda last, ins, out: all(last)),  # torch.cat: else contiguous
    LayerKind("ADD", "join", "add", op="+", verb="adds", symbol="+", join=_add_shape,
              commutative=True, channels_last=_full_size_layout, autocast=_WIDEST),
    LayerKind("MUL", "join", "mul", op="*", verb="multiplies", symbol="×",
              join=_mul_shape, commutative=True, field_from=_full_size,
              saves_inputs=_partners, channels_last=_full_size_layout, autocast=_WIDEST),
)
IDENTITY = "ID"
# Stands for a layer whose kind the spec misnames (reported): its shape is unknown, so no
# later layer is checked against a guess. Never written, looked up or built.
UNKNOWN = LayerKind("UNKNOWN", "reshape", "unknown")

_BY_NAME: dict[str, LayerKind] = {}
for _kind in KINDS:
    for _name in (_kind.name, *_kind.aliases):
        _BY_NAME[_name] = _kind
_ALL: dict[str, LayerKind] = {k.name: k for k in (*KINDS, *JOINS, UNKNOWN)}
_JOIN_NAMES = frozenset(name for name, kind in _ALL.items() if kind.family == "join")


# How a layer's name says its family (INSTANCENORM is a normalisation, HARDTANH an
# activation), and what hints call the family: the facts the did-you-mean reads.
FAMILY_WORDS: dict[Family, tuple[tuple[str, ...], str]] = {
    "norm": (("NORM",), "normalisation layers"),
    "pool": (("POOL",), "pooling layers"),
    "conv": (("CONV",), "convolutions"),
    "activation": (("LU", "SIGMOID", "TANH", "SWISH", "SOFTMAX", "MISH"), "activations"),
    "dropout": (("DROP",), "dropout layers"),
    "resample": (("UPSAMPL", "INTERP", "RESIZE"), "resampling layers"),
    "fc": (("LINEAR", "DENSE"), "fully connected layers"),
}


def kind_hint(words: Iterable[str], extra: Iterable[str] = (), family: Family | None = None
              ) -> str | None:
    """A did-you-mean for an unknown layer word (tried as each of `words`): the kind or
    `extra` name it misspells, a close match of about its length, so never a kind that only
    shares part of its name (LAYERNORM is not NORM, the LRN); else the kinds of the family
    its name says. `family` limits both to one family (`activation relu7`)."""
    kinds = [k for k in KINDS if family is None or k.family == family]
    choices = [*(n for k in kinds for n in (k.name, *k.aliases)), *extra]
    tried = list(words)
    for word in tried:
        match = closest(word, choices)
        if match is not None and abs(len(match) - len(word)) <= max(1, len(word) // 5):
            return f"did you mean `{match}`?"
    upper = " ".join(tried).upper()
    for name, (parts, title) in FAMILY_WORDS.items():
        if (family is None or name == family) and any(part in upper for part in parts):
            listed = ", ".join(k.name + (f" ({k.aliases[0]})" if k.aliases else "")
                               for k in KINDS if k.family == name)
            return f"the {title} are {listed}"
    return None


def lookup(word: str) -> LayerKind | None:
    """The kind for a case-insensitive name or alias (`pool` → MAXPOOL)."""
    return _BY_NAME.get(word.upper())


def kind_of(name: str) -> LayerKind:
    """The kind of an IR layer (joins included), by its canonical name."""
    return _ALL[name]


def rules_key(kind: str, args: Args, inputs: Iterable[object]) -> tuple[object, ...]:
    """What a kind's rules depend on, for sharing their outcome among layers (the shapes'
    `infer`, the cost model's `layer_rules`; a long chain repeats a few layers): the kind,
    the argument names, their values and the values' types (1, 1.0 and True are equal but
    may not say the same; a type sits only where a layer of as many arguments has one, so
    layers of different names never share a key), then the input shapes. Flat, as it is
    cheapest."""
    values = args.values()
    return (kind, *args, *values, *map(type, values), *inputs)


def forward_step(kind: str, implicit: bool) -> bool:
    """Whether a layer is a step of a module's `forward` rather than one of its submodules:
    a join, or the flatten an FC implies."""
    return kind in _JOIN_NAMES or (implicit and kind == "FLATTEN")


def all_names() -> list[str]:
    """Every spelling a user may write, for did-you-mean hints."""
    return [*_BY_NAME, IDENTITY]
