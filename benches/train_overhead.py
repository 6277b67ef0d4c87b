"""Training throughput of archspec's runner against a minimal hand-written PyTorch loop.

    python benches/train_overhead.py [SPEC] [--epochs 12] [--device cpu|cuda]
                                     [--bf16] [--channels-last]

Both train the same network (built by `to_torch` from SPEC, default LeNet-5 on mnist5k), on
the same in-memory training split, with the same batch size and optimizer; the spec's
augmentation is left out of both, so what differs is only the loop around the steps. The
runner is archspec's `Trainer` epoch (seeded DistributedSampler order, per-batch
standardisation, schedule step, running loss and accuracy; then validation and an atomic
checkpoint, which its rate leaves out); the hand loop is `randperm`, slice, forward, loss,
backward, step on pre-standardised tensors. Deterministic algorithms are on for both, as
`archspec train` runs on the CPU.

Epochs alternate, runner then hand loop, so both see the same load on a shared machine; the
first epoch of each is warm-up. The script prints both rates (median and best epoch) side by
side and the runner's overhead: the median over epoch pairs of the time-per-image ratio.
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

from archspec.frontend import load
from archspec.ir import TrainingPlan
from archspec.plan import resolve
from archspec.pytorch import to_torch
from archspec.train.data import Data
from archspec.train.distributed import World
from archspec.train.preflight import check
from archspec.train.progress import Progress
from archspec.train.trainer import Trainer, make_optimizer

ROOT = Path(__file__).resolve().parent.parent


def runner_epochs(spec_path: Path, plan: TrainingPlan, data: Data, out: Path
                  ) -> Iterator[float]:
    """archspec's Trainer, one epoch at a time: its own images/s for the training batches."""
    spec = load(spec_path)
    trainer = Trainer(spec, plan, data, out, World(),
                      Progress(plan.epochs, io.StringIO(), enabled=False))
    member = trainer._build(0)
    for epoch in range(plan.epochs):
        trainer._epoch(member, epoch)  # batches, then validation (not in the rate)
        trainer._save(member, epoch + 1)
        yield trainer.history[-1]["images_per_s"]


def hand_epochs(spec_path: Path, plan: TrainingPlan, data: Data, device: torch.device
                ) -> Iterator[float]:
    """The minimal loop one writes by hand, one epoch at a time: images/s."""
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
        started = time.perf_counter()
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
        yield len(y) / (time.perf_counter() - started)


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
        "epochs": args.epochs, "augment": (), "device": args.device,
        "precision": "bf16" if args.bf16 else "fp32", "channels_last": args.channels_last})
    ready, diagnostics = check(spec, plan)
    assert ready is not None, diagnostics
    device = torch.device(args.device)
    torch.use_deterministic_algorithms(args.device == "cpu")

    ours: list[float] = []
    theirs: list[float] = []
    # Epochs alternate (runner, hand, runner, ...) so both see the same machine load; the
    # first epoch of each is warm-up. The overhead is the median of adjacent-epoch ratios.
    with tempfile.TemporaryDirectory() as out:
        pairs = zip(runner_epochs(spec_path, plan, ready.data, Path(out)),
                    hand_epochs(spec_path, plan, ready.data, device), strict=True)
        for epoch, (mine, hand) in enumerate(pairs):
            if epoch:
                ours.append(mine)
                theirs.append(hand)
    ratios = [hand / mine for mine, hand in zip(ours, theirs, strict=True)]
    runner_rate, hand_rate = statistics.median(ours), statistics.median(theirs)
    print(f"{spec.network.name} on {plan.data.name}: {len(ready.data.train)} training images, "
          f"batch {plan.batch}, {plan.optimizer.name}, {args.device}, {plan.precision}"
          f"{', channels_last' if plan.channels_last else ''}, "
          f"{torch.get_num_threads()} threads, {args.epochs} epochs each")
    print(f"{'loop':<28} {'images/s (median)':>18} {'best':>10}")
    print(f"{'archspec train (Trainer)':<28} {runner_rate:>18,.0f} {max(ours):>10,.0f}")
    print(f"{'hand-written loop':<28} {hand_rate:>18,.0f} {max(theirs):>10,.0f}")
    print(f"runner overhead: {100 * (statistics.median(ratios) - 1):+.1f}% time per image "
          f"(median of {len(ratios)} paired epochs), "
          f"{100 * (max(theirs) / max(ours) - 1):+.1f}% (best epoch against best epoch)")


if __name__ == "__main__":
    main()
