"""What `archspec train` costs per epoch beyond a hand-written PyTorch loop doing the same work.

    python benches/train_overhead.py [SPEC] [--epochs 31] [--device cpu|cuda]

archspec's side is `archspec train SPEC --out TMP --epochs E --threads 1`, run in this process
through the command line's own entry point (`archspec.cli.main`): the spec's whole plan, with
its augmentation, its schedule, a validation pass and a checkpoint (and history.csv) after
every epoch, then the test scores, metrics.json, curves.png and model.pt. The one thing added
is a pause at the start of each of its epochs (the Trainer the command builds is a subclass
whose `_epoch` first calls back), where the hand-written loop runs its own epochs.

The hand-written loop is what a user writes for the same plan with torch and kornia: the same
network built by `to_torch` from the same spec, the same data split, the same kornia
augmentations on each batch followed by standardisation, the same optimizer (weight decay on
weights, not on biases and norms), the schedule as a `torch.optim.lr_scheduler` stepped when
archspec steps it, running loss and accuracy, a validation pass in eval mode (its images
through the chain's evaluation geometry: a `random_crop`'s padding and centre crop, a
`resize`), and `torch.save` of the model, optimizer and scheduler states after every epoch.

Epochs interleave A B B A A B B A ...: pair k is archspec's epoch k and the hand loop's, and
which of the two runs first alternates from pair to pair. Both run in this one process with
one thread (OMP_NUM_THREADS and MKL_NUM_THREADS set to 1 before torch loads, and
`torch.set_num_threads(1)`), and with deterministic algorithms on, which `archspec train` sets
on the CPU for the whole run. The first pair is warm-up. The script prints each side's median
epoch by the wall clock and by the process's CPU time, and the ratio archspec / hand of each
pair: its median, quartiles and range.
"""

from __future__ import annotations

import os

os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # before torch sizes its pools

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import kornia.augmentation as K
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import lr_scheduler

from archspec.backends.torch.build import to_torch
from archspec.cli import main as archspec_main
from archspec.ir import TrainingPlan
from archspec.lang.frontend import load
from archspec.runtime.plan import resolve
from archspec.runtime.train import data as datasets
from archspec.runtime.train import trainer

ROOT = Path(__file__).resolve().parent.parent
Clock = tuple[float, float]  # (wall seconds, CPU seconds)


def clock() -> Clock:
    return time.perf_counter(), time.process_time()


def since(start: Clock) -> Clock:
    now = clock()
    return now[0] - start[0], now[1] - start[1]


# -- the hand-written loop -------------------------------------------------------------------------


class HandLoop:
    """The plan written out by hand in torch and kornia, one epoch per call."""

    def __init__(self, spec_path: Path, epochs: int, device: str, out: Path) -> None:
        spec = load(spec_path)
        assert spec.ok and spec.network is not None, spec.render()
        plan = resolve(spec.network)
        self.device = torch.device(device)
        self.out = out
        self.data = datasets.load(plan.data, spec.network.input.shape, str(spec_path))
        self.mean, self.std = self.data.mean.to(self.device), self.data.std.to(self.device)
        self.batch = plan.batch
        self.bf16 = plan.precision == "bf16"
        self.channels_last = plan.channels_last
        self.model = to_torch(spec.network, spec.shapes, checkpoint=plan.checkpoint)
        self.model = self.model.to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.augment = nn.Sequential(*map(kornia_step, plan.augment)) if plan.augment else None
        self.train_x = self.data.train.x.to(self.device)
        if self.augment is None:  # nothing to do on [0, 1] pixels: standardise once
            self.train_x = self.standardise(self.train_x)
        self.train_y = self.data.train.y.to(self.device)
        self.optimizer = hand_optimizer(plan, self.model)
        steps = -(-len(self.train_y) // self.batch)
        self.scheduler, self.per_batch = hand_schedule(plan, self.optimizer, epochs, steps)
        self.order = torch.Generator().manual_seed(plan.seed)
        self.crop = next(((int(s.args["size"]), int(s.args.get("pad", 0)))
                          for s in plan.augment if s.name == "random_crop"), None)
        self.resize = next((int(s.args["size"]) for s in plan.augment if s.name == "resize"),
                           None)

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def epoch(self, epoch: int) -> dict[str, float]:
        """One epoch; the wall seconds of its validation and its checkpoint."""
        self.model.train()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        for index in torch.randperm(len(self.train_y), generator=self.order).split(self.batch):
            if len(index) < 2:
                continue  # BatchNorm cannot normalise one sample
            index = index.to(self.device)
            x, y = self.train_x[index], self.train_y[index]
            if self.augment is not None:
                x = self.standardise(self.augment(x))
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                logits = self.model(x)
            loss = F.cross_entropy(logits.float(), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if self.per_batch:
                self.scheduler.step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.detach().argmax(dim=1) == y).sum()
        validating = time.perf_counter()
        val_accuracy, val_loss = self.score(self.data.val)
        saving = time.perf_counter()
        if isinstance(self.scheduler, lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(val_loss)
        elif self.scheduler is not None and not self.per_batch:
            self.scheduler.step()
        torch.save({"epoch": epoch + 1, "model": self.model.state_dict(),
                    "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict() if self.scheduler else None,
                    "train_loss": loss_sum.item() / len(self.train_y),
                    "train_accuracy": correct.item() / len(self.train_y),
                    "val_loss": val_loss, "val_accuracy": val_accuracy},
                   self.out / "checkpoint.pt")
        return {"validation": saving - validating, "checkpoint": time.perf_counter() - saving}

    @torch.no_grad()
    def score(self, split: datasets.Split) -> tuple[float, float]:
        """Accuracy and mean log-loss on a split, in eval mode."""
        self.model.eval()
        correct, loss = 0, 0.0
        for start in range(0, len(split), 1024):
            x = split.x[start:start + 1024].to(self.device)
            y = split.y[start:start + 1024].to(self.device)
            if self.resize is not None:
                x = F.interpolate(x, size=(self.resize, self.resize), mode="bilinear",
                                  antialias=True)
            if self.crop is not None:
                size, pad = self.crop
                x = F.pad(x, (pad, pad, pad, pad))
                top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
                x = x[..., top:top + size, left:left + size]
            x = self.standardise(x)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                logits = self.model(x).float()
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += int((logits.argmax(dim=1) == y).sum())
        self.model.train()
        return correct / len(split), loss / len(split)

    def finish(self) -> float:
        """The end of the run: test accuracy, and the trained weights saved."""
        accuracy, _ = self.score(self.data.test)
        torch.save(self.model.state_dict(), self.out / "model.pt")
        return accuracy


def kornia_step(step: Any) -> nn.Module:
    args = step.args
    if step.name == "rotate":
        return K.RandomRotation(degrees=args["deg"], p=1.0)
    if step.name == "random_crop":
        size = int(args["size"])
        return K.RandomCrop((size, size), padding=int(args.get("pad", 0)))
    if step.name == "hflip":
        return K.RandomHorizontalFlip(p=0.5)
    if step.name == "resize":
        return K.Resize((int(args["size"]),) * 2, antialias=True)
    raise SystemExit(f"the hand-written loop has no `{step.name}`: take a spec whose augment "
                     "chain uses rotate, random_crop, hflip and resize")


def hand_optimizer(plan: TrainingPlan, model: nn.Module) -> torch.optim.Optimizer:
    """The plan's optimizer as a user writes it: the same torch.optim call as archspec's
    make_optimizer, written again on purpose so that the hand loop runs no archspec code."""
    spec = plan.optimizer
    params = list(model.parameters())
    decayed = params if plan.decay_norm_and_bias else [p for p in params if p.ndim > 1]
    groups = [{"params": decayed, "weight_decay": spec.weight_decay}]
    if len(decayed) < len(params):
        groups.append({"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0})
    if spec.name == "sgd":
        return torch.optim.SGD(groups, lr=spec.lr, momentum=spec.momentum or 0.0,
                               dampening=spec.dampening or 0.0, nesterov=bool(spec.nesterov))
    assert spec.beta1 is not None and spec.beta2 is not None and spec.eps is not None
    adam = torch.optim.Adam if spec.name == "adam" else torch.optim.AdamW
    return adam(groups, lr=spec.lr, betas=(spec.beta1, spec.beta2), eps=spec.eps)


def hand_schedule(plan: TrainingPlan, optimizer: torch.optim.Optimizer, epochs: int,
                  steps: int) -> tuple[Any, bool]:
    """The scheduler, and whether it is stepped after every batch (else after every epoch)."""
    s = plan.schedule
    if s.name == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps), True
    if s.name == "sgdr":
        return lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=s.period * steps,
                                                        T_mult=s.mult), True
    if s.name == "step":
        return lr_scheduler.StepLR(optimizer, step_size=s.every, gamma=s.gamma), False
    if s.name == "plateau":
        return lr_scheduler.ReduceLROnPlateau(optimizer, factor=s.factor,
                                              patience=s.patience), False
    return None, False


# -- interleaving ----------------------------------------------------------------------------------


class Interleaved:
    """Runs the hand loop's epochs in the pauses archspec's run makes, A B B A A B B A ...,
    and times every epoch of both."""

    def __init__(self, hand: HandLoop, epochs: int, report: Callable[[str], None]) -> None:
        self.hand = hand
        self.epochs = epochs
        self.report = report
        self.archspec: list[Clock] = []
        self.handwritten: list[Clock] = []
        # Per epoch, the wall seconds of each side's validation pass and checkpoint.
        self.archspec_phases: list[dict[str, float]] = [{}]
        self.hand_phases: list[dict[str, float]] = []
        self.started = clock()
        self.mark: Clock | None = None  # when archspec's current epoch started
        self.setup: Clock = (0.0, 0.0)
        self.end: Clock = (0.0, 0.0)
        self.printed = 0

    def pause(self, last: bool = False) -> None:
        """Called where archspec's next epoch (or, last, its end of run) would start."""
        if self.mark is None:
            self.setup = since(self.started)
        else:
            self.archspec.append(since(self.mark))
            self.archspec_phases.append({})
            self.progress()
        pauses = len(self.archspec)
        # Pause 2k+1 (after archspec's epoch 2k) runs the hand loop's epochs 2k and 2k+1.
        due = self.epochs if last else min(self.epochs, pauses + pauses % 2)
        while len(self.handwritten) < due:
            started = clock()
            self.hand_phases.append(self.hand.epoch(len(self.handwritten)))
            self.handwritten.append(since(started))
            self.progress()
        self.mark = clock()

    def progress(self) -> None:
        """A line for each pair just completed."""
        while self.printed < min(len(self.archspec), len(self.handwritten)):
            (a, _), (h, _) = self.archspec[self.printed], self.handwritten[self.printed]
            self.printed += 1
            self.report(f"  pair {self.printed:>3}: archspec {a:.2f} s, hand-written {h:.2f} s, "
                        f"ratio {a / h:.3f}{' (warm-up)' * (self.printed == 1)}")

    def phase(self, name: str, started: float) -> None:
        """archspec's current epoch spent the wall time since `started` on `name`."""
        self.archspec_phases[-1][name] = time.perf_counter() - started

    def trainer_class(self) -> type[trainer.Trainer]:
        interleaved = self

        class PausingTrainer(trainer.Trainer):
            def _epoch(self, member: Any, epoch: int) -> None:
                interleaved.pause()
                super()._epoch(member, epoch)

            def evaluate(self, model: nn.Module, split: datasets.Split) -> trainer.Scores:
                started = time.perf_counter()  # the validation pass at each epoch's end
                try:
                    return super().evaluate(model, split)
                finally:
                    interleaved.phase("validation", started)

            def _save(self, member: Any, epoch: int) -> None:
                started = time.perf_counter()
                super()._save(member, epoch)
                interleaved.phase("checkpoint", started)

            def _evaluate(self) -> dict[str, Any]:
                interleaved.pause(last=True)
                started = clock()
                try:
                    return super()._evaluate()
                finally:
                    interleaved.end = since(started)

        return PausingTrainer


# -- the figures -----------------------------------------------------------------------------------


def spread(values: list[float]) -> str:
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return f"{median:>7.3f} {q1:>7.3f}-{q3:<7.3f} {min(values):>7.3f}-{max(values):<7.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("spec", nargs="?", default=str(ROOT / "specs" / "lenet5_mnist.arch"))
    parser.add_argument("--epochs", type=int, default=31,
                        help="epochs of each side; the first pair is warm-up (default 31)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()
    if args.epochs < 3:
        parser.error("--epochs takes at least 3: a warm-up pair and two to compare")
    torch.set_num_threads(1)
    spec_path = Path(args.spec)
    real_stdout = sys.stdout

    def say(line: str) -> None:
        print(line, file=real_stdout, flush=True)

    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "hand").mkdir()
        started = clock()
        hand = HandLoop(spec_path, args.epochs, args.device, Path(tmp, "hand"))
        hand_setup = since(started)
        run = Interleaved(hand, args.epochs, say)
        output = io.StringIO()
        argv = ["train", str(spec_path), "--out", str(Path(tmp, "run")), "--epochs",
                str(args.epochs), "--threads", "1", "--device", args.device]
        say(f"archspec {' '.join(argv[:2])} --epochs {args.epochs} --threads 1 against the "
            f"hand-written loop, epochs interleaved:")
        with mock.patch.object(trainer, "Trainer", run.trainer_class()), \
                contextlib.redirect_stdout(output):
            code = archspec_main(argv)
        if code or len(run.archspec) != args.epochs:
            sys.stderr.write(output.getvalue())
            raise SystemExit(f"archspec train exited {code} after {len(run.archspec)} epochs")
        end = clock()
        accuracy = hand.finish()
        hand_end = since(end)
    load_end = os.getloadavg()[0]

    lines = output.getvalue().splitlines()
    say("\n" + lines[0])
    say(f"{torch.get_num_threads()} thread(s), {args.device}; {args.epochs - 1} epoch pairs "
        f"after a warm-up pair; load average (1 min) {load_start:.2f} at the start, "
        f"{load_end:.2f} at the end")
    images = len(hand.data.train)
    ours, theirs = run.archspec[1:], run.handwritten[1:]
    say(f"\n{'per epoch (median)':<22} {'wall s':>7} {'images/s':>9} {'CPU s':>7} "
        f"{'validation s':>13} {'checkpoint s':>13}")
    for name, times, phases in (("archspec train", ours, run.archspec_phases[1:-1]),
                                ("hand-written loop", theirs, run.hand_phases[1:])):
        wall = statistics.median(t[0] for t in times)
        cpu = statistics.median(t[1] for t in times)
        parts = [statistics.median(p[key] for p in phases) for key in ("validation",
                                                                         "checkpoint")]
        say(f"{name:<22} {wall:>7.3f} {images / wall:>9,.0f} {cpu:>7.3f} {parts[0]:>13.4f} "
            f"{parts[1]:>13.4f}")
    say(f"\n{'archspec / hand':<22} {'median':>7} {'quartiles':^15} {'range':^15}")
    for index, name in ((0, "by the wall clock"), (1, "by CPU time")):
        say(f"{name:<22} " + spread([a[index] / h[index] for a, h in zip(ours, theirs,
                                                                          strict=True)]))
    say(f"\nbefore the first epoch: archspec {run.setup[0]:.2f} s (spec, checks, data, plan "
        f"file), hand-written {hand_setup[0]:.2f} s (spec, data, model; first, so with cold "
        "caches)")
    say(f"after the last epoch: archspec {run.end[0]:.2f} s (test scores, metrics.json, "
        f"curves.png, model.pt), hand-written {hand_end[0]:.2f} s (test accuracy, model.pt)")
    scored = next(line for line in lines if line.startswith("test accuracy "))
    say(f"{scored.split(',')[0]} archspec, {accuracy:.2%} hand-written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
