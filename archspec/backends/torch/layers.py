"""The PyTorch back end's table: per layer kind its torch.nn class and arguments, per join its
expression, and torch's own defaults and Module attributes written as data (no torch import).

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


# Every layer kind of the registry: its module, from its arguments and its input shape.
LAYERS: dict[str, Callable[[Args, Shape], TorchCall]] = {
    "CONV": _conv,
    "MAXPOOL": _pool("MaxPool2d"),
    "AVGPOOL": _pool("AvgPool2d"),
    "GAP": lambda args, inp: TorchCall("AdaptiveAvgPool2d", (1,)),
    "FC": lambda args, inp: TorchCall("Linear", (inp[0], args["units"]),
                                      (("bias", args["bias"]),)),
    "FLATTEN": _simple("Flatten"),
    "RELU": _simple("ReLU"),
    "TANH": _simple("Tanh"),
    "SIGMOID": _simple("Sigmoid"),
    "GELU": _simple("GELU"),
    "LEAKYRELU": _simple("LeakyReLU", ("slope", "negative_slope")),
    "SOFTMAX": lambda args, inp: TorchCall("Softmax", (), (("dim", 1),)),
    "BN": _bn,
    "NORM": _simple("LocalResponseNorm", ("size", "size"), ("alpha", "alpha"), ("beta", "beta"),
                    ("k", "k")),
    "DROPOUT": _simple("Dropout", ("p", "p")),
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
