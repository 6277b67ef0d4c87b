"""Training throughput of archspec's runner against a minimal hand-written PyTorch loop.

    python benches/train_overhead.py [SPEC] [--epochs 12] [--device cpu|cuda]
                                     [--bf16] [--channels-last]

Both train the same network (built by `to_torch` from SPEC, default LeNet-5 on mnist5k), on
the same in-memory training split, with the same batch size and optimizer; the spec's
augmentation and schedule are left out of both, so what differs is only the loop around the
steps. The
runner is archspec's `Trainer` epoch (its seeded per-epoch order, per-batch
standardisation, running loss and accuracy; then validation and an atomic
checkpoint, which its rate leaves out); the hand loop is `randperm`, slice, forward, loss,
backward, step on pre-standardised tensors. Deterministic algorithms are on for both, as
`archspec train` runs on the CPU.

Epochs alternate, runner then hand loop, so both see the same load on a shared machine; the
first epoch of each is warm-up. The script prints both rates side by side, by the wall clock
(median and best epoch) and by the process's CPU time (steadier when other work shares the
cores), and the runner's overhead by each: the median over epoch pairs of the ratio of time
per image.
`--bf16` and `--channels-last` set the plan's precision and memory format and give the hand
loop the same.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

from archspec.backends.torch.build import to_torch
from archspec.ir import ScheduleSpec, TrainingPlan
from archspec.lang.frontend import load
from archspec.runtime.plan import resolve
from archspec.runtime.train.data import Data, Split
from archspec.runtime.train.distributed import World
from archspec.runtime.train.preflight import check
from archspec.runtime.train.progress import Progress
from archspec.runtime.train.trainer import Scores, Trainer, make_optimizer

ROOT = Path(__file__).resolve().parent.parent


class TimedTrainer(Trainer):
    """The Trainer, also adding up the CPU time its validation passes take."""

    eval_cpu = 0.0

    def evaluate(self, model: torch.nn.Module, split: Split) -> Scores:
        started = time.process_time()
        try:
            return super().evaluate(model, split)
        finally:
            self.eval_cpu += time.process_time() - started


def runner_epochs(spec_path: Path, plan: TrainingPlan, data: Data, out: Path
                  ) -> Iterator[tuple[float, float]]:
    """archspec's Trainer, one epoch at a time: images/s of its training batches, by the wall
    clock (its own figure) and by CPU time."""
    spec = load(spec_path)
    trainer = TimedTrainer(spec, plan, data, out, World(),
                           Progress(plan.epochs, io.StringIO(), enabled=False))
    member = trainer._build(0)
    for epoch in range(plan.epochs):
        started, evaluated = time.process_time(), trainer.eval_cpu
        trainer._epoch(member, epoch)  # batches, then validation (not in the rates)
        cpu = time.process_time() - started - (trainer.eval_cpu - evaluated)
        trainer._save(member, epoch + 1)
        yield trainer.history[-1]["images_per_s"], len(data.train) / cpu


def hand_epochs(spec_path: Path, plan: TrainingPlan, data: Data, device: torch.device
                ) -> Iterator[tuple[float, float]]:
    """The minimal loop one writes by hand, one epoch at a time: images/s, wall and CPU."""
    spec = load(spec_path)
    assert spec.network is not None
    torch.manual_seed(plan.seed)
    model = to_torch(spec.network, spec.shapes).to(device)
    x = data.normalise(data.train.x).to(device)
    y = data.train.y.to(device)
    if plan.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = make_optimizer(plan, model)
    model.train()
    for _ in range(plan.epochs):
        started, cpu = time.perf_counter(), time.process_time()
        order = torch.randperm(len(y), device=device)
        for index in order.split(plan.batch):
            with torch.autocast(device.type, dtype=torch.bfloat16,
                                enabled=plan.precision == "bf16"):
                logits = model(x[index])
            loss = F.cross_entropy(logits.float(), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        yield (len(y) / (time.perf_counter() - started),
               len(y) / (time.process_time() - cpu))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("spec", nargs="?", default=str(ROOT / "specs" / "lenet5_mnist.arch"))
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--channels-last", action="store_true")
    args = parser.parse_args()

    spec_path = Path(args.spec)
    spec = load(spec_path)
    assert spec.ok and spec.network is not None, spec.render()
    plan = resolve(spec.network).model_copy(update={
        "epochs": args.epochs, "augment": (), "schedule": ScheduleSpec(), "device": args.device,
        "precision": "bf16" if args.bf16 else "fp32", "channels_last": args.channels_last})
    ready, diagnostics = check(spec, plan)
    assert ready is not None, diagnostics
    device = torch.device(args.device)
    torch.use_deterministic_algorithms(args.device == "cpu")

    ours: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    # Epochs alternate (runner, hand, runner, ...) so both see the same machine load; the
    # first epoch of each is warm-up.
    with tempfile.TemporaryDirectory() as out:
        pairs = zip(runner_epochs(spec_path, plan, ready.data, Path(out)),
                    hand_epochs(spec_path, plan, ready.data, device), strict=True)
        for epoch, (mine, hand) in enumerate(pairs):
            if epoch:
                ours.append(mine)
                theirs.append(hand)
    print(f"{spec.network.name} on {plan.data.name}: {len(ready.data.train)} training images, "
          f"batch {plan.batch}, {plan.optimizer.name}, {args.device}, {plan.precision}"
          f"{', channels_last' if plan.channels_last else ''}, "
          f"{torch.get_num_threads()} threads, {len(ours)} paired epochs after a warm-up")
    print(f"{'images/s':<26} {'wall (median)':>14} {'wall (best)':>12} {'CPU time':>10}")
    for name, rates in (("archspec train (Trainer)", ours), ("hand-written loop", theirs)):
        wall = [rate[0] for rate in rates]
        print(f"{name:<26} {statistics.median(wall):>14,.0f} {max(wall):>12,.0f} "
              f"{statistics.median(rate[1] for rate in rates):>10,.0f}")
    # Overhead: extra time per image, the median over adjacent epoch pairs.
    for index, clock in ((0, "wall clock"), (1, "CPU time")):
        ratio = statistics.median(hand[index] / mine[index]
                                  for mine, hand in zip(ours, theirs, strict=True))
        print(f"runner overhead by {clock}: {100 * (ratio - 1):+.1f}% time per image")

if __name__ == "__main__":
    main()
