"""Every named choice, declared once: init schemes, dtypes, optimizers, schedules,
augmentations, datasets, devices and precisions; the IR, the lowering, the commands and the
runtime read them here.

Each list of names is a `Literal` (so the IR's fields are typed by it) and its facts a dict
keyed by those names; `tests/test_catalog.py` checks the two agree and that every back end
and runtime factory handles every name.
"""

from __future__ import annotations

from typing import Literal, get_args

from archspec.core.record import Record

InitName = Literal["torch", "normal", "xavier", "kaiming", "orthogonal"]
DType = Literal["float32", "float16", "bfloat16"]
OptimizerName = Literal["sgd", "adam", "adamw"]
PlannerOptimizer = Literal["sgd", "momentum", "adam", "adamw"]
ScheduleName = Literal["none", "step", "plateau", "cosine", "sgdr"]
AugmentName = Literal["hflip", "rotate", "color_jitter", "resize", "random_crop", "scale"]
DatasetName = Literal["digits", "mnist5k", "folder", "synthetic"]
Device = Literal["cpu", "cuda"]
Precision = Literal["fp32", "bf16"]
# Activation checkpointing, as build(checkpoint=...) takes it: "blocks" (each outermost block
# call under torch.utils.checkpoint) or a number N (the network N layers at a time).
CheckpointMode = Literal["blocks", "every"]
Checkpoint = Literal["blocks"] | int
AmpName = Literal["bf16", "fp16"]


class Choice(Record):
    """A choice written like a call, `step(30, 0.1)`: the arguments it takes by position, then
    those it takes only by name."""

    positional: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()

    @property
    def allowed(self) -> tuple[str, ...]:
        return self.positional + tuple(k for k in self.keywords if k not in self.positional)


INIT_SCHEMES: dict[InitName, Choice] = {
    "torch": Choice(), "normal": Choice(("std",)), "xavier": Choice(), "kaiming": Choice(),
    "orthogonal": Choice(),
}

BYTES_PER_VALUE: dict[DType, int] = {"float32": 4, "float16": 2, "bfloat16": 2}


class Optimizer(Record):
    """A training optimizer: its arguments with their defaults (torch's own, except SGD's lr
    and momentum: torch has no default lr for SGD, and momentum 0)."""

    defaults: dict[str, float | bool]
    positional: tuple[str, ...] = ("lr",)

    @property
    def choice(self) -> Choice:
        return Choice(self.positional, tuple(self.defaults))


OPTIMIZERS: dict[OptimizerName, Optimizer] = {
    "sgd": Optimizer({"lr": 0.01, "momentum": 0.9, "dampening": 0.0, "nesterov": False,
                      "weight_decay": 0.0}),
    "adam": Optimizer({"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                       "weight_decay": 0.0}),
    "adamw": Optimizer({"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                        "weight_decay": 0.01}),
}


class OptimizerState(Record):
    """What an optimizer keeps per parameter, for the memory planner and its views."""

    title: str
    buffers: int
    note: str


# The memory planner's choices: each optimizer, with SGD with momentum apart from plain SGD.
OPTIMIZER_STATE: dict[PlannerOptimizer, OptimizerState] = {
    "sgd": OptimizerState("SGD", 0, "plain SGD keeps no state"),
    "momentum": OptimizerState("SGD with momentum", 1, "SGD with momentum keeps 1 buffer per "
                               "parameter (its velocity)"),
    "adam": OptimizerState("Adam", 2, "Adam keeps 2 buffers per parameter (exp_avg, "
                           "exp_avg_sq)"),
    "adamw": OptimizerState("AdamW", 2, "AdamW keeps 2 buffers per parameter (exp_avg, "
                            "exp_avg_sq)"),
}

class Amp(Record):
    """A mixed-precision policy (PyTorch autocast): the low-precision type its listed ops run
    at, and the bytes of the gradient scaler it needs (fp16's GradScaler keeps a float32
    scale, an int32 growth tracker and a float32 found-inf flag on the device; bf16 needs
    none)."""

    dtype: DType
    scaler_bytes: int


AMPS: dict[AmpName, Amp] = {
    "bf16": Amp("bfloat16", 0),
    "fp16": Amp("float16", 12),
}
# The train: section's precision as the autocast policy it runs (fp32: none).
PRECISION_AMP: dict[Precision, AmpName | None] = {"fp32": None, "bf16": "bf16"}

SCHEDULES: dict[ScheduleName, Choice] = {
    "none": Choice(), "step": Choice(("every", "gamma")), "plateau": Choice(("factor", "patience")),
    "cosine": Choice(), "sgdr": Choice(("period", "mult")),
}


class Augment(Record):
    """An augmentation step: its arguments (all numbers) and which of them it needs."""

    positional: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()


AUGMENTS: dict[AugmentName, Augment] = {
    "hflip": Augment(),
    "rotate": Augment(("deg",), ("deg",), ("deg",)),
    "color_jitter": Augment((), (), ("brightness", "contrast", "saturation", "hue")),
    "resize": Augment(("size",), ("size",), ("size",)),
    "random_crop": Augment(("size", "pad"), ("size",), ("size", "pad")),
    "scale": Augment(("min", "max"), ("min", "max"), ("min", "max")),
}


class Builtin(Record):
    """What is known of a built-in dataset before loading it."""

    classes: int
    shape: tuple[int, int, int]  # CxHxW of its images
    samples: int


class Dataset(Record):
    """A dataset: its arguments, and for a built-in one what is known before loading it."""

    choice: Choice = Choice()
    builtin: Builtin | None = None


DATASETS: dict[DatasetName, Dataset] = {
    "digits": Dataset(builtin=Builtin(10, (1, 8, 8), 1797)),
    "mnist5k": Dataset(builtin=Builtin(10, (1, 28, 28), 5000)),
    "folder": Dataset(Choice(("path",))), "synthetic": Dataset(Choice(("classes", "n"))),
}

INIT_NAMES: tuple[InitName, ...] = get_args(InitName)
DTYPES: tuple[DType, ...] = get_args(DType)
DEVICES: tuple[Device, ...] = get_args(Device)
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
CHECKPOINTS: tuple[CheckpointMode, ...] = get_args(CheckpointMode)
