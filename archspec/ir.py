"""The validated IR: frozen pydantic models of a network graph and its training plan."""

# No `from __future__ import annotations`: pydantic would evaluate each field's annotation
# string as it makes the class (~0.9 ms of every start for these models).
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StrictInt, model_validator

from archspec.catalog import (
    OPTIMIZERS,
    AugmentName,
    DatasetName,
    Device,
    DType,
    InitName,
    OptimizerName,
    Precision,
    ScheduleName,
)
from archspec.core.limits import MAX_INT
from archspec.core.model import Frozen
from archspec.core.source import Span

ArgValue = int | float | bool | str | tuple[int, int]
INPUT_NODE = "input"  # the name layers use for the network's input
Shape = tuple[int, ...]
InputOrder = Literal["chw", "hwc", "flat"]


class Scope(Frozen):
    """One level of repetition or block expansion a layer came from (for compact views)."""

    id: int
    index: int
    count: int
    label: str
    call: Span | None = None  # where a block was called (None for repeats)


class Layer(Frozen):
    """A node of the graph. `args` is None only for a sketch layer with missing arguments."""

    name: str
    kind: str
    args: dict[str, ArgValue] | None
    inputs: tuple[str, ...]
    span: Span
    written: str
    implicit: bool = False
    origin: str | None = None
    scopes: tuple[Scope, ...] = ()
    named: bool = False  # the spec gave this name (`conv1: CONV...`); else it was generated
    # Where the layer sits in the module hierarchy: the keys of the named groups and block
    # calls around it, then its own (`("layer1", "0", "conv1")`); `(name,)` at the top level.
    path: tuple[str, ...] = ()


class Module(Frozen):
    """A named group or a block call: one submodule of the generated module's hierarchy."""

    path: tuple[str, ...]  # its key in each enclosing module, outermost first
    kind: Literal["group", "block"]
    block: str | None = None  # the block a call calls
    label: str  # as written: `basic(64)`, `layer1`
    span: Span
    params: dict[str, ArgValue] = Field(default_factory=dict)  # a call's bound parameters
    sequential: bool  # its items form one plain chain (no join, no implied flatten inside)


class InputSpec(Frozen):
    shape: Shape
    order: InputOrder
    span: Span


class Setting(Frozen):
    """A spec's setting (`init`, a `train:` call's arguments) as its text writes it: each value
    of its field's type, never converted from another (`std=true` is not 1.0, `lr="0.5"` not
    0.5; an int where a float is asked is taken, as pydantic's strict mode takes it)."""

    model_config = ConfigDict(strict=True)


class InitScheme(Setting):
    name: InitName = "torch"
    std: float = Field(0.01, gt=0)


class DataSpec(Setting):
    name: DatasetName = "synthetic"
    path: str | None = None
    classes: int = Field(10, ge=2, le=MAX_INT)
    n: int = Field(512, ge=1, le=MAX_INT)


class OptimizerSpec(Setting):
    """An optimizer with each of its own arguments resolved; the others are None."""

    name: OptimizerName = "sgd"
    # Sane upper bounds: past float32's range (3.4e38) torch's step overflows with a
    # traceback, and no run trains with a learning rate or decay anywhere near 1000.
    lr: float = Field(gt=0, le=1000)
    weight_decay: float = Field(ge=0, le=1000)
    momentum: float | None = Field(None, ge=0, lt=1)
    dampening: float | None = Field(None, ge=0, le=1)
    nesterov: bool | None = None
    beta1: float | None = Field(None, ge=0, lt=1)
    beta2: float | None = Field(None, ge=0, lt=1)
    eps: float | None = Field(None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        return _optimizer_args(data) if isinstance(data, dict) else data

    def conflicts(self) -> list[tuple[str, str]]:
        """(argument, why) for each combination torch's optimizer rejects."""
        found = []
        if self.nesterov and not self.momentum:
            found.append(("nesterov", "nesterov=true needs momentum > 0"))
        if self.nesterov and self.dampening:
            found.append(("dampening", "nesterov=true needs dampening=0"))
        return found


def _optimizer_args(data: dict[str, Any]) -> dict[str, Any]:
    """An optimizer's arguments with its defaults added; ValueError for one it does not take."""
    optimizer = OPTIMIZERS.get(data.get("name", "sgd"))
    defaults = optimizer.defaults if optimizer is not None else {}
    foreign = sorted(key for key, value in data.items()
                     if key not in defaults and key != "name" and value is not None)
    if defaults and foreign:
        raise ValueError(f"{data.get('name', 'sgd')} has no argument {foreign[0]}")
    return defaults | data


class ScheduleSpec(Setting):
    name: ScheduleName = "none"
    every: int = Field(30, ge=1, le=MAX_INT)
    gamma: float = Field(0.1, gt=0, le=1)
    factor: float = Field(0.1, gt=0, lt=1)
    patience: int = Field(5, ge=0, le=MAX_INT)
    period: int = Field(10, ge=1, le=MAX_INT)
    mult: int = Field(1, ge=1, le=MAX_INT)

    def cycle_ends(self, epochs: int) -> Sequence[int]:
        """Epochs (1-based) at whose end an SGDR cycle finishes, within `epochs`. Cycles of
        one length are a range, so a long run with short cycles costs no memory."""
        if self.name != "sgdr":
            return []
        if self.mult == 1:
            return range(self.period, epochs + 1, self.period)
        ends, length, end = [], self.period, self.period
        while end <= epochs:
            ends.append(end)
            length *= self.mult
            end += length
        return ends


class AugmentSpec(Setting):
    name: AugmentName
    args: dict[str, float] = Field(default_factory=dict)


class TrainingPlan(Frozen):
    """The `train:` section with every default resolved; the trainer's single input. The
    defaults are archspec's own values, built without validation (a validator built for them
    costs a `table` without a `train:` section ~20 ms: pydantic's plugin loader)."""

    data: DataSpec = Field(default_factory=DataSpec.model_construct)
    batch: int = Field(64, ge=1)
    epochs: int = Field(10, ge=1)
    optimizer: OptimizerSpec = Field(
        default_factory=lambda: OptimizerSpec.model_construct(**_optimizer_args({})))
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec.model_construct)
    augment: tuple[AugmentSpec, ...] = ()
    ensemble: int = Field(1, ge=1)
    snapshots: int = Field(1, ge=1)
    seed: int = Field(0, ge=0)
    decay_norm_and_bias: bool = False
    sync_bn: bool = False
    device: Device = "cpu"
    precision: Precision = "fp32"
    # build(checkpoint=...) of the generated module: "blocks", or every N layers
    checkpoint: Literal["blocks"] | Annotated[StrictInt, Field(ge=1, le=MAX_INT)] | None = None
    channels_last: bool = False
    spans: dict[str, Span] = Field(default_factory=dict)

    def augmented_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """The image size after the augment chain (resize and random_crop change it)."""
        for step in self.augment:
            if step.name in ("resize", "random_crop"):
                side = int(step.args["size"])
                size = (side, side)
        return size


class Network(Frozen):
    """A whole spec, lowered: layers in topological order, the last one is the output."""

    name: str
    description: str = ""
    input: InputSpec
    dtype: DType = "float32"
    init: InitScheme = Field(default_factory=InitScheme.model_construct)
    layers: tuple[Layer, ...]
    modules: tuple[Module, ...] = ()  # the named groups and block calls, outermost first
    plan: TrainingPlan | None = None

    @property
    def output(self) -> str:
        return self.layers[-1].name if self.layers else INPUT_NODE

    @property
    def complete(self) -> bool:
        """False for a sketch: some layer lacks arguments, so it can be drawn but not built."""
        return all(layer.args is not None for layer in self.layers)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)
