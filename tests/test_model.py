"""core.model.Frozen: its fast model_construct builds the instance pydantic's would."""

from __future__ import annotations

from collections.abc import Iterator

from conftest import SPECS
from pydantic import BaseModel

import archspec
from archspec.analysis.report import Memory, Row, build_report
from archspec.core.model import Frozen
from archspec.core.source import Span
from archspec.ir import (
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


def test_every_model_of_a_spec_and_its_report_is_built_as_pydantic_builds_it():
    # Each model given its fields in reverse order, then each field left out in turn (its
    # default taken, or pydantic's own path where it has none).
    seen = set()
    for name in ("resnet18.arch", "googlenet.arch", "zoo/efficientnet_b0.arch"):
        network, shapes = archspec.load_network(SPECS / name)
        for model in models((network, build_report(network, shapes))):
            values = dict(reversed(model.__dict__.items()))
            cls = type(model)
            same(cls.model_construct(**values), pydantics(cls, **values))
            seen.add(cls)
            for left_out in values:
                part = {k: v for k, v in values.items() if k != left_out}
                same(cls.model_construct(**part), pydantics(cls, **part))
    assert {Layer, Scope, Span, Module, Network, Row, Memory} <= seen


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
