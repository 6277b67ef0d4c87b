"""What a run's figures mean: evaluation at the training scale, optimizer defaults and their
located errors, seeding without overlap, weight decay's scope, sync_bn, metrics.json's schema."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import quiet_trainer, tiny_spec, write_tiny

from archspec.cli import main
from archspec.ir import AugmentSpec, TrainingPlan
from archspec.lang.frontend import loads
from archspec.runtime.plan import read_plan, write_plan
from archspec.runtime.train import augment
from archspec.runtime.train import trainer as trainer_module
from archspec.runtime.train.distributed import World
from archspec.runtime.train.preflight import check
from archspec.runtime.train.trainer import epoch_order, make_optimizer, parameter_groups

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"

pytestmark = pytest.mark.usefixtures("one_thread")


def text_of(extra: str) -> str:
    """TINY without an optimizer line (the plan's default), `extra` from line 10."""
    return tiny_spec(extra, optimizer=None)


def plan_of(extra: str) -> TrainingPlan:
    spec = loads(text_of(extra), "tiny.arch")
    assert spec.ok and spec.network is not None and spec.network.plan is not None, \
        spec.render()
    return spec.network.plan


def errors_of(extra: str) -> list[str]:
    spec = loads(text_of(extra), "tiny.arch")
    return [f"{d.span.line}:{d.span.col}: {d.message}" for d in spec.diagnostics]


def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str, name: str,
        *argv: str) -> dict[str, Any]:
    path = write_tiny(tmp_path, extra, name=f"{name}.arch", optimizer=None)
    status = main(["train", str(path), "--out", str(tmp_path / name), *argv])
    _out, err = capsys.readouterr()
    assert status == 0, err
    return json.loads((tmp_path / name / "metrics.json").read_text())


# -- evaluation at the training scale ----------------------------------------------------------


def test_evaluation_resizes_and_centre_crops_as_training_did() -> None:
    chain = (AugmentSpec(name="hflip"), AugmentSpec(name="resize", args={"size": 12}),
             AugmentSpec(name="random_crop", args={"size": 8, "pad": 1}),
             AugmentSpec(name="rotate", args={"deg": 30}))
    twin = augment.for_evaluation(chain)
    assert twin is not None
    images = torch.rand(3, 1, 8, 8)
    resized = augment.build(chain[1:2], 1)(images)  # type: ignore[misc]
    padded = torch.nn.functional.pad(resized, (1, 1, 1, 1))  # 14x14
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    assert torch.equal(twin(images), padded[..., 3:11, 3:11])
    assert torch.equal(torch.rand(1), before)  # it drew nothing: training's draws unchanged
    # Flips, rotations, colour and a zoom range centred on 1 change nothing at evaluation.
    assert augment.for_evaluation((AugmentSpec(name="hflip"),
                                   AugmentSpec(name="scale", args={"min": 0.9, "max": 1.1}),
                                   AugmentSpec(name="rotate", args={"deg": 10}))) is None
    zoom = augment.for_evaluation((AugmentSpec(name="scale", args={"min": 1.2, "max": 1.4}),))
    assert zoom is not None and not torch.equal(zoom(images), images)


def test_val_and_test_images_go_through_the_evaluation_twin(tmp_path: Path) -> None:
    trainer = quiet_trainer(text_of("  augment resize(12) - random_crop(8)\n"), tmp_path)
    model = trainer._model()
    val = trainer.data.val
    predicted = trainer.predict(model, val)
    twin = augment.for_evaluation(trainer.plan.augment)
    assert twin is not None
    model.eval()
    with torch.no_grad():
        expected = model(trainer.data.normalise(twin(val.x))).softmax(dim=1)
        unscaled = model(trainer.data.normalise(val.x)).softmax(dim=1)
    assert torch.allclose(predicted, expected, atol=1e-6)
    assert not torch.allclose(predicted, unscaled, atol=1e-3)


@pytest.mark.slow
def test_lenet5_trained_on_resized_crops_is_scored_at_that_scale(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Scored at the original scale, this run reached 92.1% (the audit).
    path = tmp_path / "lenet.arch"
    path.write_text((SPECS / "lenet5_mnist.arch").read_text().replace(
        "augment rotate(10) - random_crop(28, pad=2)", "augment resize(36) - random_crop(28)"))
    status = main(["train", str(path), "--out", str(tmp_path / "run"), "--epochs", "10"])
    _out, err = capsys.readouterr()
    assert status == 0, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.96


# -- optimizers: PyTorch's defaults, impossible combinations at check -------------------------


def test_bare_adam_and_adamw_take_pytorchs_defaults(tmp_path: Path) -> None:
    adam = plan_of("  optimizer adam\n").optimizer
    assert (adam.lr, adam.weight_decay, adam.beta1, adam.beta2, adam.eps) == (
        1e-3, 0.0, 0.9, 0.999, 1e-8)
    assert adam.momentum is None and adam.nesterov is None
    adamw = plan_of("  optimizer adamw\n").optimizer
    assert (adamw.lr, adamw.weight_decay) == (1e-3, 0.01)
    default = torch.optim.AdamW([torch.zeros(1, requires_grad=True)]).defaults
    assert (default["lr"], default["weight_decay"], default["eps"]) == (1e-3, 0.01, 1e-8)
    sgd = plan_of("").optimizer
    assert (sgd.name, sgd.lr, sgd.momentum, sgd.dampening, sgd.nesterov) == (
        "sgd", 0.01, 0.9, 0.0, False)
    # The plan file states them, so a run shows what it trained with.
    spec = loads(text_of("  optimizer adamw\n"), str(tmp_path / "tiny.arch"))
    document = json.loads(write_plan(spec, tmp_path).read_text())
    assert document["plan"]["optimizer"] == {
        "name": "adamw", "lr": 1e-3, "weight_decay": 0.01, "beta1": 0.9, "beta2": 0.999,
        "eps": 1e-8, "momentum": None, "dampening": None, "nesterov": None}
    assert read_plan(tmp_path / "tiny.plan.json").plan.optimizer == adamw
    # And the torch optimizer gets them.
    model = torch.nn.Linear(2, 2)
    built = make_optimizer(plan_of("  optimizer adamw(beta2=0.99)\n"), model)
    assert isinstance(built, torch.optim.AdamW)
    group = built.param_groups[0]
    assert (group["lr"], group["betas"], group["eps"], group["weight_decay"]) == (
        1e-3, (0.9, 0.99), 1e-8, 0.01)


@pytest.mark.parametrize(("line", "expected"), [
    ("optimizer sgd(momentum=0, nesterov=true)", "10:29: nesterov=true needs momentum > 0"),
    ("optimizer sgd(nesterov=true, dampening=0.5)", "10:32: nesterov=true needs dampening=0"),
    ("optimizer adam(beta1=1)", "10:24: beta1 must be less than 1"),
    ("optimizer adamw(beta2=-0.1)", "10:25: beta2 must be greater than or equal to 0"),
    ("optimizer adam(eps=-1e-8)", "10:22: eps must be greater than or equal to 0"),
    ("optimizer sgd(dampening=2)", "10:27: dampening must be less than or equal to 1"),
    ("optimizer adam(momentum=0.9)", "10:18: `adam` has no argument `momentum`"),
    ("optimizer sgd(beta1=0.9)", "10:17: `sgd` has no argument `beta1`"),
])
def test_combinations_torch_rejects_are_located_errors(line: str, expected: str) -> None:
    assert errors_of(f"  {line}\n") == [expected]


def test_every_accepted_optimizer_builds_in_torch() -> None:
    model = torch.nn.Linear(2, 2)
    for line in ("sgd(momentum=0)", "sgd(nesterov=true)", "sgd(dampening=0.5)",
                 "adam(beta1=0, beta2=0, eps=0)", "adamw(weight_decay=0)"):
        make_optimizer(plan_of(f"  optimizer {line}\n"), model).step()


# -- seeding: (seed, member, epoch) hashed, no overlap ------------------------------------------


def test_seeds_s_and_s_plus_1_share_no_epoch_order() -> None:
    world = World()
    orders = {(seed, member, epoch): tuple(epoch_order(300, seed, member, epoch, world).tolist())
              for seed in (0, 1, 2) for member in (0, 1) for epoch in range(12)}
    assert len(set(orders.values())) == len(orders)  # no two (seed, member, epoch) alike
    for order in orders.values():
        assert sorted(order) == list(range(300))
    # Determined by the keys alone: a resumed run walks the same orders.
    assert orders[(1, 0, 3)] == tuple(epoch_order(300, 1, 0, 3, world).tolist())


def test_ranks_split_each_epoch_as_distributed_sampler_does() -> None:
    whole = epoch_order(10, 4, 0, 2, World())
    shards = [epoch_order(10, 4, 0, 2, World(rank=r, size=3)) for r in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]
    padded = torch.cat([whole, whole[:2]])  # padded with its head to 12
    assert all(torch.equal(shards[r], padded[r::3]) for r in range(3))


def test_members_and_seeds_start_from_unrelated_weights(tmp_path: Path) -> None:
    def first_weights(seed: int, member: int) -> torch.Tensor:
        trainer = quiet_trainer(text_of(f"  seed {seed}\n"), tmp_path)
        return next(trainer._build(member).model.parameters()).detach().clone()

    # With seed + member seeding, seed 1's first model was seed 0's member 1.
    assert not torch.equal(first_weights(1, 0), first_weights(0, 1))
    assert not torch.equal(first_weights(0, 0), first_weights(0, 1))
    assert torch.equal(first_weights(1, 0), first_weights(1, 0))


# -- weight decay's scope, sync_bn ------------------------------------------------------------


def test_weight_decay_skips_biases_and_norm_parameters_by_default() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4),
                                torch.nn.Flatten(), torch.nn.Linear(4, 2))
    decayed, plain = parameter_groups(model, 5e-4, norm_and_bias=False)
    assert decayed["weight_decay"] == 5e-4 and plain["weight_decay"] == 0.0
    assert {id(p) for p in decayed["params"]} == {id(model[0].weight), id(model[3].weight)}
    assert len(plain["params"]) == 4  # two biases, BatchNorm's scale and shift
    (everything,) = parameter_groups(model, 5e-4, norm_and_bias=True)
    assert len(everything["params"]) == 6 and everything["weight_decay"] == 5e-4
    optimizer = make_optimizer(plan_of("  optimizer sgd(weight_decay=1e-3)\n"), model)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [1e-3, 0.0]
    plan = plan_of("  optimizer sgd(weight_decay=1e-3)\n  decay_norm_and_bias true\n")
    assert [g["weight_decay"] for g in make_optimizer(plan, model).param_groups] == [1e-3]


@pytest.mark.parametrize("sync", [True, False])
def test_sync_bn_converts_batchnorm_under_several_processes(
        tmp_path: Path, sync: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # No GPU and no process group here: DDP (which takes SyncBatchNorm on GPUs only) is
    # replaced by a record of what it was given.
    wrapped: list[torch.nn.Module] = []
    monkeypatch.setattr(trainer_module, "DistributedDataParallel",
                        lambda model, device_ids: wrapped.append(model) or model)
    trainer = quiet_trainer(text_of(f"  sync_bn {str(sync).lower()}\n"), tmp_path,
                            World(0, 2, 0))
    member = trainer._build(0)
    assert wrapped == [member.model]
    kinds = {type(m) for m in member.model.modules()}
    assert (torch.nn.SyncBatchNorm in kinds) == sync
    assert (torch.nn.BatchNorm2d in kinds) == (not sync)


def test_sync_bn_on_several_cpu_processes_is_a_located_error() -> None:
    text = text_of("  sync_bn true\n")
    spec = loads(text, "tiny.arch")
    assert spec.network is not None and spec.network.plan is not None
    assert spec.network.plan.sync_bn and not plan_of("").sync_bn
    _ready, diagnostics = check(spec, spec.network.plan, processes=2)
    assert [(d.span.line, d.message.split(":")[0]) for d in diagnostics] == [
        (10, "sync_bn needs device cuda")]
    ready, diagnostics = check(spec, spec.network.plan, processes=1)  # nothing to sync
    assert ready is not None and not diagnostics


# -- metrics.json against its documented schema -----------------------------------------------

JSON_TYPES = {"string": str, "integer": int, "number": float, "array": list,
              "object": dict, "object or null": dict}


def documented_schema() -> dict[str, str]:
    """The key -> type table under docs/train.md's `metrics.json` heading."""
    text = (ROOT / "docs" / "train.md").read_text()
    section = text.split("### `metrics.json`", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| ([a-z ]+) \|", section, flags=re.MULTILINE)
    assert rows, "docs/train.md has no metrics.json table"
    return dict(rows)


def flatten(value: Any, path: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {path: value} if path and not path.endswith("[]") else {}
    if isinstance(value, dict):
        for key, item in value.items():
            flat |= flatten(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for item in value:
            flat |= flatten(item, f"{path}[]")
    return flat


@pytest.mark.slow
def test_metrics_json_follows_its_documented_schema(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]
                                                    ) -> None:
    schema = documented_schema()
    runs = {"single": run(tmp_path, capsys, "", "single"),
            "ensemble": run(tmp_path, capsys, "  ensemble 2\n", "ensemble"),
            "snapshots": run(tmp_path, capsys, "  schedule sgdr(period=1)\n  snapshots 2\n",
                             "snapshots")}
    seen: set[str] = set()
    for name, metrics in runs.items():
        flat = flatten(metrics)
        seen |= set(flat)
        assert set(flat) <= set(schema), (name, set(flat) - set(schema))
        top = {key for key in schema if "." not in key and "[" not in key}
        assert top <= set(flat), (name, top - set(flat))
        for key, value in flat.items():
            kind = schema[key]
            if value is None:
                assert kind == "object or null", key
            elif kind == "number":
                assert isinstance(value, int | float) and not isinstance(value, bool), key
            else:
                assert isinstance(value, JSON_TYPES[kind]), key
    assert seen == set(schema)  # every documented key occurs

    single, ensemble, snapshots = runs["single"], runs["ensemble"], runs["snapshots"]
    # The run's figures are the scored model's: the single member, or the average.
    assert single["ensemble"] is None and len(single["members"]) == 1
    for key in ("val_accuracy", "val_loss", "test_accuracy", "test_loss"):
        assert single[key] == single["members"][0][key]
        assert ensemble[key] == ensemble["ensemble"][key]
    assert single["members"][0]["epoch"] == single["epochs"]
    assert [m["member"] for m in ensemble["members"]] == [0, 1]
    assert [(m["member"], m["epoch"]) for m in snapshots["members"]] == [(0, 1), (0, 2)]
    history = (tmp_path / "ensemble" / "history.csv").read_text().splitlines()[1:]
    for member in ensemble["members"]:
        rows = [row.split(",") for row in history if row.split(",")[0] == str(member["member"])]
        assert member["best_val_accuracy"] == pytest.approx(max(float(r[6]) for r in rows),
                                                            abs=1e-6)
        # The scored weights are the last epoch's: their val figures are that row's.
        assert member["val_accuracy"] == pytest.approx(float(rows[-1][6]), abs=1e-6)
