"""The PyTorch back end's table: per layer kind its torch.nn class and arguments, per join its
expression, the plain-torch source of the few modules torch.nn lacks, and torch's own defaults
and Module attributes written as data (no torch import).

`tests/test_backends.py` checks every registered kind and join has its entry here, and (with
torch) that the classes exist and the defaults and attribute names are torch's own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from archspec.ir import ArgValue, Shape
from archspec.kinds.registry import Args


@dataclass(frozen=True, slots=True)
class TorchCall:
    """A torch.nn constructor and its arguments, as the emitter writes them."""

    cls: str
    args: tuple[ArgValue, ...] = ()
    kwargs: tuple[tuple[str, ArgValue], ...] = ()


def _conv(args: Args, inp: Shape) -> TorchCall:
    return TorchCall("Conv2d", (inp[0], args["filters"], args["kernel"]), (
        ("stride", args["stride"]), ("padding", args["pad"]), ("dilation", args["dilation"]),
        ("groups", args["groups"]), ("bias", args["bias"])))


def _pool(cls: str) -> Callable[[Args, Shape], TorchCall]:
    def rule(args: Args, inp: Shape) -> TorchCall:
        return TorchCall(cls, (args["kernel"],), (
            ("stride", args["stride"]), ("padding", args["pad"]), ("ceil_mode", args["ceil"])))

    return rule


def _bn(args: Args, inp: Shape) -> TorchCall:
    cls = "BatchNorm2d" if len(inp) == 3 else "BatchNorm1d"
    return TorchCall(cls, (inp[0],), (("eps", args["eps"]), ("momentum", args["momentum"])))


def _simple(cls: str, *names: tuple[str, str]) -> Callable[[Args, Shape], TorchCall]:
    """A class whose keyword arguments are the kind's, renamed (`slope` -> `negative_slope`)."""
    def rule(args: Args, inp: Shape) -> TorchCall:
        return TorchCall(cls, (), tuple((torch_name, args[name]) for name, torch_name in names))

    return rule


def _deconv(args: Args, inp: Shape) -> TorchCall:
    return TorchCall("ConvTranspose2d", (inp[0], args["filters"], args["kernel"]), (
        ("stride", args["stride"]), ("padding", args["pad"]),
        ("output_padding", args["output_pad"]), ("groups", args["groups"]),
        ("bias", args["bias"]), ("dilation", args["dilation"])))


def _pooling(fixed: str, adaptive: str) -> Callable[[Args, Shape], TorchCall]:
    """A pool with a kernel, or with an output size (`out=`): PyTorch's adaptive pool."""
    rule = _pool(fixed)

    def choose(args: Args, inp: Shape) -> TorchCall:
        return TorchCall(adaptive, (args["out"],)) if "out" in args else rule(args, inp)

    return choose


def _layernorm(args: Args, inp: Shape) -> TorchCall:
    cls = "LayerNorm2d" if len(inp) == 3 else "LayerNorm"
    return TorchCall(cls, (inp[0],), (("eps", args["eps"]),))


# Every layer kind of the registry: its module, from its arguments and its input shape.
LAYERS: dict[str, Callable[[Args, Shape], TorchCall]] = {
    "CONV": _conv,
    "DECONV": _deconv,
    "MAXPOOL": _pooling("MaxPool2d", "AdaptiveMaxPool2d"),
    "AVGPOOL": _pooling("AvgPool2d", "AdaptiveAvgPool2d"),
    "GAP": lambda args, inp: TorchCall("AdaptiveAvgPool2d", (1,)),
    "GMP": lambda args, inp: TorchCall("AdaptiveMaxPool2d", (1,)),
    "UPSAMPLE": lambda args, inp: TorchCall("Upsample", (), (
        ("scale_factor", args["scale"]), ("mode", args["mode"]))),
    "FC": lambda args, inp: TorchCall("Linear", (inp[0], args["units"]),
                                      (("bias", args["bias"]),)),
    "FLATTEN": _simple("Flatten"),
    "RELU": _simple("ReLU"),
    "TANH": _simple("Tanh"),
    "SIGMOID": _simple("Sigmoid"),
    "GELU": _simple("GELU"),
    "LEAKYRELU": _simple("LeakyReLU", ("slope", "negative_slope")),
    "SOFTMAX": lambda args, inp: TorchCall("Softmax", (), (("dim", 1),)),
    "RELU6": _simple("ReLU6"),
    "HARDSWISH": _simple("Hardswish"),
    "HARDSIGMOID": _simple("Hardsigmoid"),
    "SILU": _simple("SiLU"),
    "MISH": _simple("Mish"),
    "SELU": _simple("SELU"),
    "ELU": _simple("ELU", ("alpha", "alpha")),
    "PRELU": lambda args, inp: TorchCall("PReLU", (), (
        ("num_parameters", inp[0] if args["per_channel"] else 1),)),
    "BN": _bn,
    "NORM": _simple("LocalResponseNorm", ("size", "size"), ("alpha", "alpha"), ("beta", "beta"),
                    ("k", "k")),
    "DROPOUT": _simple("Dropout", ("p", "p")),
    "LAYERNORM": _layernorm,
    "GROUPNORM": lambda args, inp: TorchCall("GroupNorm", (args["groups"], inp[0]),
                                             (("eps", args["eps"]),)),
    "SCALE": lambda args, inp: TorchCall("Scale", (inp[0], args["init"], len(inp) == 3)),
    "STOCHASTICDEPTH": lambda args, inp: TorchCall("StochasticDepth", (args["p"],)),
    "SLICE": lambda args, inp: TorchCall("Slice", (args["start"], args["stop"])),
    "SHUFFLE": lambda args, inp: TorchCall("ChannelShuffle", (args["groups"],)),
}

# Modules torch.nn lacks, written in plain torch into the generated module that uses them
# (it imports only torch). Each is a class of that name.
HELPERS: dict[str, str] = {
    "LayerNorm2d": '''class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels at each position of a map (ConvNeXt's, as torchvision)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)''',
    "Scale": '''class Scale(nn.Module):
    """A learnable per-channel multiplier (layer scale), every channel starting at `init`."""

    def __init__(self, channels: int, init: float, spatial: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels, 1, 1) if spatial else (channels,),
                                              init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * x''',
    "StochasticDepth": '''class StochasticDepth(nn.Module):
    """In training, drops the whole input of a sample with probability p and scales the kept
    ones by 1/(1-p) (torchvision's StochasticDepth, mode "row"); the identity in evaluation."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        noise = torch.empty([x.shape[0]] + [1] * (x.ndim - 1), dtype=x.dtype, device=x.device)
        return x * noise.bernoulli_(survival).div_(survival)

    def extra_repr(self) -> str:
        return f"p={self.p}"''',
    "Slice": '''class Slice(nn.Module):
    """Channels start ... stop-1 of the input, a view of it."""

    def __init__(self, start: int, stop: int) -> None:
        super().__init__()
        self.start, self.stop = start, stop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.start:self.stop]

    def extra_repr(self) -> str:
        return f"start={self.start}, stop={self.stop}"''',
}

# Every join: the forward expression over the branches' variables.
JOINS: dict[str, Callable[[tuple[str, ...]], str]] = {
    "CONCAT": lambda xs: f"torch.cat([{', '.join(xs)}], dim=1)",
    "ADD": lambda xs: " + ".join(xs),
    "MUL": lambda xs: " * ".join(xs),  # a Cx1x1 gate broadcasts over the map's height, width
}

# torch.nn's defaults (numbers and booleans) of the classes above: a keyword argument equal
# to its default, of the same type, is left out of the generated code.
DEFAULTS: dict[str, dict[str, ArgValue]] = {
    "Conv2d": {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True},
    "MaxPool2d": {"padding": 0, "dilation": 1, "return_indices": False, "ceil_mode": False},
    "AvgPool2d": {"padding": 0, "ceil_mode": False, "count_include_pad": True},
    "AdaptiveAvgPool2d": {},
    "Linear": {"bias": True},
    "Flatten": {"start_dim": 1, "end_dim": -1},
    "ReLU": {"inplace": False},
    "Tanh": {},
    "Sigmoid": {},
    "GELU": {},
    "LeakyReLU": {"negative_slope": 0.01, "inplace": False},
    "Softmax": {},
    "BatchNorm1d": {"eps": 1e-05, "momentum": 0.1, "affine": True,
                    "track_running_stats": True, "bias": True},
    "BatchNorm2d": {"eps": 1e-05, "momentum": 0.1, "affine": True,
                    "track_running_stats": True, "bias": True},
    "LocalResponseNorm": {"alpha": 0.0001, "beta": 0.75, "k": 1.0},
    "Dropout": {"p": 0.5, "inplace": False},
    "ConvTranspose2d": {"stride": 1, "padding": 0, "output_padding": 0, "groups": 1,
                        "bias": True, "dilation": 1},
    "AdaptiveMaxPool2d": {"return_indices": False},
    "Upsample": {},
    "ReLU6": {"inplace": False},
    "Hardswish": {"inplace": False},
    "Hardsigmoid": {"inplace": False},
    "SiLU": {"inplace": False},
    "Mish": {"inplace": False},
    "SELU": {"inplace": False},
    "ELU": {"alpha": 1.0, "inplace": False},
    "PReLU": {"num_parameters": 1, "init": 0.25},
    "LayerNorm": {"eps": 1e-05, "elementwise_affine": True, "bias": True},
    "GroupNorm": {"eps": 1e-05, "affine": True, "bias": True},
    "ChannelShuffle": {},
    # the helpers' (HELPERS): LayerNorm2d is an nn.LayerNorm
    "LayerNorm2d": {"eps": 1e-05, "elementwise_affine": True, "bias": True},
    "Scale": {},
    "StochasticDepth": {},
    "Slice": {},
}

# The public attributes of an nn.Sequential (an nn.Module): a layer may not take their names.
MODULE_ATTRIBUTES = frozenset({
    "T_destination", "add_module", "append", "apply", "bfloat16", "buffers", "call_super_init",
    "children", "compile", "cpu", "cuda", "double", "dump_patches", "eval", "extend",
    "extra_repr", "float", "forward", "get_buffer", "get_extra_state", "get_parameter",
    "get_submodule", "half", "insert", "ipu", "load_state_dict", "modules", "mtia",
    "named_buffers", "named_children", "named_modules", "named_parameters", "parameters", "pop",
    "register_backward_hook", "register_buffer", "register_forward_hook",
    "register_forward_pre_hook", "register_full_backward_hook",
    "register_full_backward_pre_hook", "register_load_state_dict_post_hook",
    "register_load_state_dict_pre_hook", "register_module", "register_parameter",
    "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_",
    "set_extra_state", "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train",
    "training", "type", "xpu", "zero_grad",
})
