"""The `train:` section: each setting checked and gathered into a validated TrainingPlan."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import ValidationError

from archspec.catalog import (
    AUGMENTS,
    CHECKPOINTS,
    DATASETS,
    DEVICES,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULES,
    Augment,
    Choice,
)
from archspec.core.diagnostics import Diagnostics, suggest
from archspec.core.limits import MAX_INT
from archspec.core.model import Frozen
from archspec.core.source import Source, Span
from archspec.ir import (
    AugmentSpec,
    DataSpec,
    OptimizerSpec,
    ScheduleSpec,
    TrainingPlan,
)
from archspec.lang import syntax as s
from archspec.lang.args import INT, Arguments, must

M = TypeVar("M", bound=Frozen)


class TrainSection:
    """Reads the `train:` settings; `check_plan` then checks the plan against the network."""

    def __init__(self, source: Source, args: Arguments, diags: Diagnostics) -> None:
        self.source = source
        self.args = args
        self.diags = diags

    def read(self, syntax: s.SpecSyntax) -> TrainingPlan | None:
        fields: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        ok = True
        for directive in syntax.train:
            key = directive.keyword.lower()
            handler = _SETTINGS.get(key)
            if handler is None:
                self.diags.error("train", f"unknown train setting `{directive.keyword}`",
                                 directive.keyword_span,
                                 hint=suggest(key, list(_SETTINGS)))
                ok = False
                continue
            if key in spans:
                self.diags.error("train", f"`{key}` is given twice", directive.keyword_span)
                ok = False
                continue
            spans[key] = directive.span
            value = handler(self, directive)
            if value is None:
                ok = False
            else:
                fields[key] = value
        try:
            plan = TrainingPlan.validated(**fields, spans=spans)
        except ValidationError as exc:
            for error in exc.errors():
                key = str(error["loc"][0])
                self.diags.error("train", f"{key} {must(error['msg'])}",
                                 spans.get(key, syntax.train_span or self.source.span(0, 0)))
            return None
        return plan if ok else None

    def check_plan(self, plan: TrainingPlan, shape: tuple[int, ...], fallback: Span) -> None:
        """What a plan asks of the network and of itself (augment size, snapshots)."""

        def where(key: str) -> Span:
            return plan.spans.get(key, fallback)

        if plan.augment and len(shape) != 3:
            self.diags.error("train", "augment needs an image input (CxHxW), not a flat vector",
                             where("augment"))
        elif plan.augment and plan.augmented_size((shape[1], shape[2])) != shape[1:]:
            size = plan.augmented_size((shape[1], shape[2]))
            self.diags.error("train", f"augment ends with {size[0]}x{size[1]} images but the "
                             f"input is {shape[1]}x{shape[2]}; end the chain with "
                             f"random_crop({shape[1]})", where("augment"))
        if plan.snapshots == 1:
            return
        if plan.ensemble > 1:
            self.diags.error("train", "use ensemble or snapshots, not both", where("snapshots"))
        elif plan.schedule.name != "sgdr":
            self.diags.error("train", "snapshots are taken at the ends of SGDR cycles: add "
                             "`schedule sgdr(period=..., mult=...)`", where("snapshots"))
        # Whether the epochs hold enough cycles is checked when training starts: `train
        # --epochs N` may change them.

    def _setting_call(self, directive: s.Directive, choices: tuple[str, ...]) -> s.Call | None:
        if len(directive.items) != 1 or not isinstance(directive.items[0], s.Call):
            self.diags.error("train", f"`{directive.keyword}` takes one of: "
                             + ", ".join(choices), directive.span)
            return None
        call = directive.items[0]
        if call.word.lower() not in choices:
            self.diags.error("train", f"unknown {directive.keyword.lower()} `{call.word}`",
                             call.word_span, hint=suggest(call.word, choices)
                             or "one of " + ", ".join(choices))
            return None
        return call

    def _setting_model(self, directive: s.Directive, model: type[M],
                       choices: Mapping[str, Choice]) -> M | None:
        call = self._setting_call(directive, tuple(choices))
        if call is None:
            return None
        name = call.word.lower()
        values = self.args.model_args(call, choices[name].positional)
        if values is None:
            return None
        allowed = set(choices[name].allowed)
        for key in values:
            if key not in allowed:
                arg = next(a for a in call.args or () if a.name == key)
                self.diags.error("train", f"`{name}` has no argument `{key}`", arg.span,
                                 hint=suggest(key, sorted(allowed)))
                return None
        try:
            return model.validated(name=name, **values)
        except ValidationError as exc:
            self.args.validation(exc, call, positional=choices[name].positional)
            return None

    def _int(self, directive: s.Directive) -> int | None:
        items = directive.items
        signed = len(items) == 1 and bool(  # `seed -1`: the grammar reads `-` as a separator
            self.source.text[directive.keyword_span.end:items[0].span.start].strip())
        low = 0 if directive.keyword.lower() == "seed" else 1
        if len(items) != 1 or not isinstance(items[0], s.Value) or items[0].kind != "number" \
                or not INT.match(items[0].text) or not low <= int(items[0].text) <= MAX_INT \
                or signed:
            self.diags.error("train", f"`{directive.keyword}` takes a whole number from {low} "
                             f"to {MAX_INT:,}", directive.span)
            return None
        return int(items[0].text)

    def _word(self, directive: s.Directive, choices: tuple[str, ...]) -> str | None:
        call = self._setting_call(directive, choices)
        return call.word.lower() if call is not None else None

    def _bool(self, directive: s.Directive) -> bool | None:
        word = self._word(directive, ("true", "false"))
        return None if word is None else word == "true"

    def _data(self, directive: s.Directive) -> DataSpec | None:
        spec = self._setting_model(directive, DataSpec,
                                   {name: d.choice for name, d in DATASETS.items()})
        if spec is not None and spec.name == "folder" and not spec.path:
            self.diags.error("train", 'write `data folder("path")`', directive.span)
            return None
        return spec

    def _optimizer(self, directive: s.Directive) -> OptimizerSpec | None:
        spec = self._setting_model(directive, OptimizerSpec,
                                   {name: o.choice for name, o in OPTIMIZERS.items()})
        if spec is None:
            return None
        call = directive.items[0]
        assert isinstance(call, s.Call)
        for key, message in spec.conflicts():  # at the argument that asks for it
            arg = next((a for a in call.args or () if a.name == key), None)
            self.diags.error("train", message, arg.span if arg else call.span)
        return None if spec.conflicts() else spec

    def _schedule(self, directive: s.Directive) -> ScheduleSpec | None:
        return self._setting_model(directive, ScheduleSpec,
                                   {name: choice for name, choice in SCHEDULES.items()})

    def _augment(self, directive: s.Directive) -> tuple[AugmentSpec, ...] | None:
        out: list[AugmentSpec] = []
        ok = True
        for item in directive.items:  # every step is checked, so all its errors show at once
            if not isinstance(item, s.Call):
                self.diags.error("train", "augment is a chain like `hflip - rotate(20)`",
                                 item.span)
                ok = False
                continue
            name = item.word.lower()
            augment = AUGMENTS.get(name)  # type: ignore[call-overload]
            if augment is None:
                self.diags.error("train", f"unknown augmentation `{item.word}`", item.word_span,
                                 hint=suggest(name, list(AUGMENTS)))
                ok = False
                continue
            values = self.args.model_args(item, augment.positional)
            problem = None if values is None else _check_augment(name, values, augment)
            if problem is not None:
                self.diags.error("train", problem, item.span)
            if values is None or problem is not None:
                ok = False
                continue
            out.append(AugmentSpec.validated(name=name, args=values))
        return tuple(out) if ok else None

    def _device(self, directive: s.Directive) -> str | None:
        return self._word(directive, DEVICES)

    def _precision(self, directive: s.Directive) -> str | None:
        return self._word(directive, PRECISIONS)

    def _checkpoint(self, directive: s.Directive) -> str | int | None:
        """`checkpoint blocks`, or `checkpoint every N`: N layers at a time."""
        items = directive.items
        if not items or not isinstance(items[0], s.Call) or items[0].word.lower() != "every":
            return self._word(directive, CHECKPOINTS)
        every = items[0]
        if every.args is not None or len(items) != 2:
            self.diags.error("train", "write `checkpoint every N`, N a whole number of layers",
                             directive.span)
            return None
        count = items[1]
        gap = self.source.text[every.span.end:count.span.start]
        signed = bool(gap.strip())  # `every -4`: the error's span starts at the sign
        where = self.source.span(every.span.end + len(gap) - len(gap.lstrip()),
                                 count.span.end) if signed else count.span
        if not isinstance(count, s.Value) or count.kind != "number" \
                or not INT.match(count.text) or not 1 <= int(count.text) <= MAX_INT or signed:
            self.diags.error("train", "`checkpoint every N` takes a whole number of layers, "
                             f"from 1 to {MAX_INT:,}", where)
            return None
        return int(count.text)


def _check_augment(name: str, values: dict[str, Any], augment: Augment) -> str | None:
    required, allowed = augment.required, augment.allowed
    for key, value in values.items():
        if key not in allowed:
            return f"`{name}` has no argument `{key}`" + (
                f"; it takes {', '.join(allowed)}" if allowed else "")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"`{name}({key}=...)` is a number"
        if value < 0:
            return f"`{name}({key}=...)` must not be negative"
    for key in required:
        if key not in values:
            return f"`{name}` needs `{key}`"
    if name == "color_jitter" and values.get("hue", 0) > 0.5:
        return "color_jitter hue is at most 0.5"
    if name == "scale" and not 0 < values["min"] <= values["max"]:
        return "scale(min, max) needs 0 < min <= max"
    if name in ("resize", "random_crop") and (values["size"] < 1 or values["size"] != int(
            values["size"])):
        return f"`{name}` size is a whole number of pixels"
    if name == "random_crop" and values.get("pad", 0) != int(values.get("pad", 0)):
        return "`random_crop` pad is a whole number of pixels"
    if name == "rotate" and values["deg"] > 180:
        return "rotate(deg) is at most 180: a turn of up to ±180 degrees reaches every angle"
    if name == "scale" and values["max"] > MAX_ZOOM:
        return f"scale(min, max) zooms by at most {MAX_ZOOM}"
    return None


MAX_ZOOM = 10  # a scale augmentation's largest factor


_SETTINGS: dict[str, Callable[[TrainSection, s.Directive], Any]] = {
    "data": TrainSection._data,
    "batch": TrainSection._int,
    "epochs": TrainSection._int,
    "ensemble": TrainSection._int,
    "snapshots": TrainSection._int,
    "seed": TrainSection._int,
    "optimizer": TrainSection._optimizer,
    "schedule": TrainSection._schedule,
    "augment": TrainSection._augment,
    "device": TrainSection._device,
    "precision": TrainSection._precision,
    "checkpoint": TrainSection._checkpoint,
    "channels_last": TrainSection._bool,
    "decay_norm_and_bias": TrainSection._bool,
    "sync_bn": TrainSection._bool,
}
