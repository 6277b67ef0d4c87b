"""The catalog declares each list of choices once: its names and its facts agree, and every
reader (lowering, back end, runtime factories) takes every name."""

from __future__ import annotations

from typing import get_args

import pytest
import torch
from torch import nn

from archspec import catalog
from archspec.ir import AugmentSpec, OptimizerSpec, ScheduleSpec, TrainingPlan
from archspec.lang.frontend import loads


@pytest.mark.parametrize(("names", "facts"), [
    (catalog.InitName, catalog.INIT_SCHEMES), (catalog.DType, catalog.BYTES_PER_VALUE),
    (catalog.OptimizerName, catalog.OPTIMIZERS),
    (catalog.PlannerOptimizer, catalog.OPTIMIZER_STATE),
    (catalog.ScheduleName, catalog.SCHEDULES), (catalog.AugmentName, catalog.AUGMENTS),
    (catalog.DatasetName, catalog.DATASETS),
])
def test_each_list_and_its_facts_name_the_same_choices(names: object, facts: dict) -> None:
    assert tuple(facts) == get_args(names)


def test_the_planner_has_every_training_optimizer() -> None:
    assert set(catalog.OPTIMIZERS) <= set(catalog.OPTIMIZER_STATE)


def spec(header: str = "", train: str = "") -> str:
    return (f"network t\ninput 3x8x8\n{header}\nCONV3-4 - GAP - FLATTEN - FC-10\n"
            + (f"train:\n{train}\n" if train else ""))


@pytest.mark.parametrize("name", catalog.INIT_NAMES)
def test_every_init_scheme_is_read_and_emitted(name: str) -> None:
    from archspec.backends.torch.build import to_torch

    loaded = loads(spec(f"init {name}"))
    assert loaded.ok and loaded.network is not None, loaded.render()
    assert loaded.network.init.name == name
    assert isinstance(to_torch(loaded.network), nn.Module)


@pytest.mark.parametrize("name", catalog.DTYPES)
def test_every_dtype_is_read(name: str) -> None:
    loaded = loads(spec(f"dtype {name}"))
    assert loaded.ok and loaded.network is not None and loaded.network.dtype == name


@pytest.mark.parametrize("name", catalog.OPTIMIZERS)
def test_every_optimizer_is_read_and_built(name: str) -> None:
    from archspec.runtime.train.trainer import make_optimizer

    loaded = loads(spec(train=f"  optimizer {name}(0.05)"))
    assert loaded.ok and loaded.network is not None and loaded.network.plan is not None
    assert loaded.network.plan.optimizer.name == name
    model = nn.Linear(2, 2)
    optimizer = make_optimizer(loaded.network.plan, model)
    assert optimizer.param_groups[0]["lr"] == 0.05


@pytest.mark.parametrize("name", catalog.SCHEDULES)
def test_every_schedule_is_read_and_built(name: str) -> None:
    from archspec.runtime.train.schedules import Schedule

    loaded = loads(spec(train=f"  schedule {name}"))
    assert loaded.ok and loaded.network is not None and loaded.network.plan is not None
    optimizer = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    schedule = Schedule(optimizer, ScheduleSpec(name=name), epochs=4, steps_per_epoch=2)
    assert (schedule.scheduler is None) == (name == "none")


SAMPLE_ARGS = {"rotate": {"deg": 10.0}, "resize": {"size": 8.0}, "random_crop": {"size": 8.0},
               "scale": {"min": 0.9, "max": 1.1}, "color_jitter": {"brightness": 0.1}}


@pytest.mark.parametrize("name", catalog.AUGMENTS)
def test_every_augmentation_is_built(name: str) -> None:
    from archspec.runtime.train import augment

    module = augment.build((AugmentSpec(name=name, args=SAMPLE_ARGS.get(name, {})),), 3)
    assert module is not None
    assert module(torch.rand(2, 3, 8, 8)).shape == (2, 3, 8, 8)


def test_optimizer_defaults_come_from_the_catalog() -> None:
    for name, optimizer in catalog.OPTIMIZERS.items():
        spec_ = OptimizerSpec.model_validate({"name": name})
        assert {key: getattr(spec_, key) for key in optimizer.defaults} == optimizer.defaults
    assert TrainingPlan().optimizer.name == "sgd"
