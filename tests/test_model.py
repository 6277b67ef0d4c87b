"""core.model.Frozen: its fast model_construct and its validated build the instances pydantic's
would."""

from __future__ import annotations

from collections.abc import Iterator
from types import NoneType, UnionType
from typing import Annotated, Literal, Union, get_args, get_origin

import pytest
from conftest import SPECS
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

import archspec
from archspec.core.model import Frozen, made, vouched
from archspec.core.source import Span
from archspec.ir import (
    AugmentSpec,
    DataSpec,
    InitScheme,
    Layer,
    Module,
    Network,
    OptimizerSpec,
    ScheduleSpec,
    Scope,
    TrainingPlan,
)
from archspec.lang.frontend import load


def models(value: object) -> Iterator[Frozen]:
    """Every archspec model reachable from a value."""
    if isinstance(value, Frozen):
        yield value
        for name in type(value).model_fields:
            yield from models(getattr(value, name))
    elif isinstance(value, tuple | list):
        for item in value:
            yield from models(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from models(item)


def same(ours: BaseModel, theirs: BaseModel) -> None:
    assert type(ours) is type(theirs)
    assert list(ours.__dict__.items()) == list(theirs.__dict__.items())  # order too
    assert ours.model_fields_set == theirs.model_fields_set
    assert ours.__pydantic_extra__ == theirs.__pydantic_extra__
    assert ours.__pydantic_private__ == theirs.__pydantic_private__
    assert repr(ours) == repr(theirs)
    assert ours == theirs


def pydantics(cls: type[Frozen], **values: object) -> BaseModel:
    return BaseModel.model_construct.__func__(cls, **values)  # type: ignore[attr-defined]


def test_every_model_of_a_spec_is_built_as_pydantic_builds_it():
    # Each model given its fields in reverse order, then each field left out in turn (its
    # default taken, or pydantic's own path where it has none).
    seen = set()
    for name in ("resnet18.arch", "googlenet.arch", "zoo/efficientnet_b0.arch"):
        network, _ = archspec.load_network(SPECS / name)
        for model in models(network):
            values = dict(reversed(model.__dict__.items()))
            cls = type(model)
            same(cls.model_construct(**values), pydantics(cls, **values))
            seen.add(cls)
            for left_out in values:
                part = {k: v for k, v in values.items() if k != left_out}
                same(cls.model_construct(**part), pydantics(cls, **part))
    assert {Layer, Scope, Span, Module, Network} <= seen


def test_every_span_and_layer_the_front_end_makes_is_pydantics():
    """The front end makes spans and layers with `made` (every field given, the order not
    checked): each is what pydantic's model_construct makes of the same fields."""
    count = 0
    for path in [*sorted(SPECS.glob("*.arch")), SPECS / "zoo" / "resnet50.arch"]:
        for model in models(load(path).network):
            if type(model) in (Span, Layer):
                fields = {name: getattr(model, name) for name in type(model).model_fields}
                same(model, pydantics(type(model), **fields))
                count += 1
    assert count > 1_000


def test_made_goes_to_model_construct_where_pydantic_must_run():
    class Hooked(Frozen):
        value: int

        def model_post_init(self, context: object) -> None:
            pass

    fields = {"value": 1}
    same(made(Hooked, fields), pydantics(Hooked, **fields))


def test_a_shared_set_of_names_is_not_the_instances_to_change():
    a = Span.model_construct(start=0, end=1, line=1, col=1, end_line=1, end_col=2)
    b = a.model_copy(update={"end": 2})
    assert b.model_fields_set == a.model_fields_set
    assert Span.model_construct(start=0, end=1, line=1, col=1, end_line=1, end_col=2) \
        .model_fields_set == set(Span.model_fields)
    scope = Scope.model_construct(id=1, index=0, count=2, label="x")
    assert scope.call is None and scope.model_fields_set == {"id", "index", "count", "label"}


def test_unknown_names_and_an_explicit_set_go_to_pydantic():
    span = Span.model_construct(start=0, end=1, line=1, col=1, end_line=1, end_col=2, other=3)
    same(span, pydantics(Span, start=0, end=1, line=1, col=1, end_line=1, end_col=2, other=3))
    given = {"start"}
    span = Span.model_construct(given, start=0, end=1, line=1, col=1, end_line=1, end_col=2)
    assert span.model_fields_set is given


def test_defaults_built_unvalidated_are_what_validation_gives():
    # The IR's defaults (a spec without `init` or `train:`) are built with model_construct,
    # so `table` builds no validator for them; each is what pydantic's validation makes.
    for cls in (InitScheme, DataSpec, ScheduleSpec):
        assert cls.model_construct() == cls.model_validate({})
    plan = TrainingPlan.model_construct()
    assert plan == TrainingPlan.model_validate({"data": {}, "optimizer": {}, "schedule": {}})
    assert plan.optimizer == OptimizerSpec.model_validate({})
    assert plan.optimizer.model_fields_set == OptimizerSpec.model_validate({}).model_fields_set


# Frozen.validated builds the `train:` section's and `init`'s models without pydantic's
# validator where `vouched` vouches for the values: the instance must be the one pydantic's
# validation makes, and every value it vouches for one that pydantic accepts. Values as the
# spec's settings give them (args.literal: str, int, float, bool) and as the section gathers
# them (instances, tuples, dicts), right and wrong.
VALIDATED: tuple[type[Frozen], ...] = (DataSpec, OptimizerSpec, ScheduleSpec, AugmentSpec,
                                       InitScheme, TrainingPlan)
WORDS = sorted({word for cls in VALIDATED for info in cls.model_fields.values()
                for member in (info.annotation, *get_args(info.annotation))
                if get_origin(member) is Literal for word in get_args(member)})
SPAN = Span.model_construct(start=0, end=1, line=1, col=1, end_line=1, end_col=2)
NUMBERS = st.one_of(st.integers(-3, 40), st.integers(), st.floats(), st.sampled_from(
    [0, 1, 2, 0.0, 0.5, 1.0, 1e-9, 1000, 1000.0, 2**31 - 1, 2**31, 2**53 + 1, -0.0]))
VALUES = st.one_of(
    NUMBERS, st.booleans(), st.none(), st.sampled_from(WORDS), st.text(max_size=3),
    st.sampled_from(["0.5", "1", "true", "1e-3"]),  # what lax pydantic would convert
    st.dictionaries(st.sampled_from(["size", "deg", "min", "max", "hue"]),
                    st.one_of(NUMBERS, st.booleans(), st.text(max_size=2)), max_size=3),
    st.sampled_from([DataSpec.model_construct(), ScheduleSpec.model_construct(),
                     TrainingPlan.model_construct().optimizer, {"batch": SPAN}, {1: SPAN},
                     (AugmentSpec.model_construct(name="hflip"),), (), ("hflip",)]))


INSTANCES: dict[object, st.SearchStrategy[Frozen]] = {cls: st.just(instance) for cls, instance in [
    (DataSpec, DataSpec.model_construct()), (ScheduleSpec, ScheduleSpec.model_construct()),
    (OptimizerSpec, TrainingPlan.model_construct().optimizer), (Span, SPAN),
    (AugmentSpec, AugmentSpec.model_construct(name="hflip"))]}


def fitting(annotation: object) -> st.SearchStrategy[object]:
    """Values of the annotation's type (within its bounds or not)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return st.sampled_from(args)
    if origin is Annotated:
        return fitting(args[0])
    if origin in (Union, UnionType):
        return st.one_of([fitting(arg) for arg in args])
    if origin is tuple:
        return st.lists(fitting(args[0]), max_size=2).map(tuple)
    if origin is dict:
        return st.dictionaries(st.text(max_size=3), fitting(args[1]), max_size=2)
    simple = {float: NUMBERS, int: NUMBERS, bool: st.booleans(), str: st.text(max_size=3),
              NoneType: st.none()}
    return simple[annotation] if annotation in simple else INSTANCES[annotation]


def case(cls: type[Frozen]) -> st.SearchStrategy[tuple[type[Frozen], dict[str, object]]]:
    """Some of the class's fields (or an unknown one), each given a value of its type or any."""
    fields = {name: st.one_of(fitting(info.annotation), fitting(info.annotation), VALUES)
              for name, info in cls.model_fields.items()} | {"other": VALUES}
    return st.tuples(st.just(cls), st.lists(st.sampled_from(list(fields)), max_size=4).flatmap(
        lambda names: st.fixed_dictionaries({name: fields[name] for name in names})))


CASES = st.sampled_from(VALIDATED).flatmap(case)


@given(CASES)
@settings(max_examples=3000, deadline=None)
def test_what_vouched_builds_is_what_validation_builds(
        case: tuple[type[Frozen], dict[str, object]]) -> None:
    cls, values = case
    ours = vouched(cls, values)
    try:
        theirs = cls(**values)
    except (ValidationError, TypeError):  # TypeError: OptimizerSpec's validator, name={}
        assert ours is None, (cls, values)
        return
    if ours is not None:
        assert list(map(repr, ours.__dict__.items())) == list(map(repr, theirs.__dict__.items()))
        assert [type(v) for v in ours.__dict__.values()] == \
            [type(v) for v in theirs.__dict__.values()]
        assert ours.model_fields_set == theirs.model_fields_set


def test_vouched_takes_what_the_specs_give() -> None:
    # Every spec's `train:` section and `init` is built without a validator (test_table.py
    # checks no validator is built at all); these are settings as a section writes them.
    assert vouched(OptimizerSpec, {"name": "sgd", "lr": 0.01, "momentum": 0.9,
                                   "weight_decay": 5e-4}) == OptimizerSpec(
        name="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4)
    assert vouched(AugmentSpec, {"name": "rotate", "args": {"deg": 20}}) == AugmentSpec(
        name="rotate", args={"deg": 20.0})
    assert vouched(TrainingPlan, {"batch": 128, "checkpoint": 4, "spans": {"batch": SPAN}}) \
        == TrainingPlan(batch=128, checkpoint=4, spans={"batch": SPAN})
    for refused in ({"batch": 0}, {"batch": True}, {"checkpoint": "every"}, {"other": 1},
                    {"batch": 1.0}):
        assert vouched(TrainingPlan, refused) is None, refused
    assert vouched(OptimizerSpec, {"name": "adam", "momentum": 0.9}) is None  # not adam's


@pytest.mark.parametrize(("cls", "values"), [
    (InitScheme, {"name": "normal", "std": True}),
    (OptimizerSpec, {"name": "sgd", "lr": True}),
    (OptimizerSpec, {"name": "sgd", "lr": 0.1, "momentum": "0.5"}),
    (OptimizerSpec, {"name": "sgd", "lr": 0.1, "nesterov": 1}),
    (ScheduleSpec, {"name": "step", "every": 2.0}),
    (DataSpec, {"name": "synthetic", "classes": "3"}),
    (AugmentSpec, {"name": "rotate", "args": {"deg": True}}),
])
def test_a_setting_takes_no_value_of_another_type(cls: type[Frozen],
                                                  values: dict[str, object]) -> None:
    # a spec's settings are strict: neither vouched nor pydantic converts a bool or a string
    assert vouched(cls, values) is None
    with pytest.raises(ValidationError):
        cls.validated(**values)


def test_a_setting_takes_an_int_for_a_float() -> None:
    assert OptimizerSpec.validated(name="sgd", lr=1).lr == 1.0
    assert type(OptimizerSpec(name="sgd", lr=1).lr) is float
    assert type(InitScheme.validated(name="normal", std=1).std) is float


def test_validated_refuses_as_pydantic_does() -> None:
    with pytest.raises(ValidationError) as caught:
        OptimizerSpec.validated(name="sgd", lr=-1)
    assert [e["msg"] for e in caught.value.errors()] == ["Input should be greater than 0"]
