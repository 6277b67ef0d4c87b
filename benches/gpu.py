"""On a GPU: the compiled module's memory and bf16/channels_last training speed, beside by hand.

    python benches/gpu.py [--nets resnet50,...] [--batch 2] [--train-batch 8] [--speed-batch 64]
    python benches/gpu.py --device cpu --size 64 --speed-batch 2 --steps 2   # a smoke run

Issue #15's GPU measurements, in one prepared script (nothing here runs without being asked):
  memory  for ResNet-50, GoogLeNet, DenseNet-121 and EfficientNet-B0 (specs/zoo/), the module
          `archspec.to_torch` builds and the hand-written one of benches/memory.py, each on the
          device: `torch.cuda.max_memory_allocated` above what is allocated before the call
          (parameters, buffers, the input), for inference (`module(x)` under no_grad) and for
          one SGD-with-momentum training step after a first one has made the momentum
          buffers (the peak minus the parameters, buffers, momentum and the batch). Ratio
          compiled/hand: the goal is at most 1.02. Not on CPU: benches/memory.py measures CPU
          memory tensor by tensor.
  speed   ResNet-50 training in bf16 autocast with channels_last inputs and weights, SGD with
          momentum, cross-entropy: after `--warmup` steps, `--rounds` rounds of `--steps` steps
          each, the compiled and the hand-written module alternating (A B B A ...), the device
          synchronized around each round; images a second of each (median over the rounds) and
          the ratio of the compiled module's to the hand-written one's.
Prints one table per part. Without CUDA (and without `--device cpu`) it says so and stops.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from memory import NETWORKS
from torch import nn

import archspec

ZOO = Path(__file__).resolve().parent.parent / "specs" / "zoo"


def built(name: str, size: int, device: torch.device) -> tuple[nn.Module, nn.Module]:
    """The compiled and the hand-written network at `size` pixels, on the device, seeded."""
    text = (ZOO / f"{name}.arch").read_text(encoding="utf-8")
    spec = archspec.loads(text.replace("input 3x224x224", f"input 3x{size}x{size}"))
    assert spec.network is not None and spec.ok, spec.render()
    torch.manual_seed(0)
    compiled = archspec.to_torch(spec.network, spec.shapes).to(device)
    hand = NETWORKS[name]().to(device)
    counts = [sum(p.numel() for p in m.parameters()) for m in (compiled, hand)]
    assert counts[0] == counts[1], f"{name}: parameters differ {counts}"
    return compiled, hand


def above_resting(run: Callable[[], object], device: torch.device) -> int:
    """The most `run` allocates on the device above what is allocated when it starts."""
    torch.cuda.synchronize(device)
    resting = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    run()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - resting


def sgd_step(module: nn.Module, x: torch.Tensor, y: torch.Tensor,
             optimizer: torch.optim.Optimizer) -> Callable[[], None]:
    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(module(x), y).backward()
        optimizer.step()
    return step


def peaks(module: nn.Module, batch: int, train_batch: int, size: int,
           device: torch.device) -> tuple[int, int]:
    """Inference and training-step bytes above the resting allocation."""
    x = torch.randn(batch, 3, size, size, device=device)
    module.eval()
    with torch.no_grad():
        inference = above_resting(lambda: module(x), device)
    module.train()
    x = torch.randn(train_batch, 3, size, size, device=device)
    y = torch.randint(0, 1000, (train_batch,), device=device)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.01, momentum=0.9)
    step = sgd_step(module, x, y, optimizer)
    step()  # makes the momentum buffers
    optimizer.zero_grad(set_to_none=True)
    return inference, above_resting(step, device)


def speed(nets: dict[str, nn.Module], args: argparse.Namespace,
          device: torch.device) -> dict[str, float]:
    """Median images a second of bf16 channels_last training, the modules alternating."""
    x = torch.randn(args.speed_batch, 3, args.size, args.size, device=device).to(
        memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (args.speed_batch,), device=device)
    steps = {}
    for label, module in nets.items():
        module.to(memory_format=torch.channels_last).train()
        optimizer = torch.optim.SGD(module.parameters(), lr=0.01, momentum=0.9)

        def step(module: nn.Module = module, optimizer: torch.optim.Optimizer = optimizer
                 ) -> None:
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.bfloat16):
                loss = F.cross_entropy(module(x), y)
            loss.backward()
            optimizer.step()
        steps[label] = step
        for _ in range(args.warmup):
            step()
    rates: dict[str, list[float]] = {label: [] for label in steps}
    order = list(steps)
    for round_ in range(args.rounds):
        for label in order if round_ % 2 == 0 else order[::-1]:
            synchronize(device)
            start = time.perf_counter()
            for _ in range(args.steps):
                steps[label]()
            synchronize(device)
            rates[label].append(args.steps * args.speed_batch / (time.perf_counter() - start))
    return {label: statistics.median(values) for label, values in rates.items()}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu, a smoke run")
    parser.add_argument("--nets", default=",".join(NETWORKS), help="comma-separated")
    parser.add_argument("--size", type=int, default=224, help="image side (default 224)")
    parser.add_argument("--batch", type=int, default=2, help="inference batch (default 2)")
    parser.add_argument("--train-batch", type=int, default=8, help="training batch (default 8)")
    parser.add_argument("--speed-batch", type=int, default=64,
                        help="ResNet-50's training batch for the speed part (default 64)")
    parser.add_argument("--warmup", type=int, default=5, help="steps before timing (default 5)")
    parser.add_argument("--steps", type=int, default=20, help="steps a round (default 20)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds each (default 6)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("benches/gpu.py: no CUDA device here (torch.cuda.is_available() is False); "
                 "--device cpu runs the speed part as a smoke test")
    print(f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}, "
          f"torch {torch.__version__}")
    mb = 1e6
    if device.type == "cuda":
        print(f"\n{'network':<16}{'':>10}{'archspec':>12}{'by hand':>12}{'ratio':>8}")
        for name in args.nets.split(","):
            compiled, hand = built(name, args.size, device)
            ours, theirs = (peaks(m, args.batch, args.train_batch, args.size, device)
                            for m in (compiled, hand))
            for i, label in enumerate((f"inference b{args.batch}",
                                       f"training b{args.train_batch}")):
                print(f"{name:<16}{label:>10}{ours[i] / mb:>10.1f}MB{theirs[i] / mb:>10.1f}MB"
                      f"{ours[i] / theirs[i]:>8.3f}")
            del compiled, hand
            torch.cuda.empty_cache()
    compiled, hand = built("resnet50", args.size, device)
    rates = speed({"archspec": compiled, "by hand": hand}, args, device)
    print(f"\nResNet-50, bf16 autocast, channels_last, batch {args.speed_batch}, "
          f"{args.size}x{args.size}: median of {args.rounds} rounds of {args.steps} steps")
    for label, rate in rates.items():
        print(f"{label:<10}{rate:>10.1f} img/s")
    print(f"{'ratio':<10}{rates['archspec'] / rates['by hand']:>10.3f} (archspec / by hand)")


if __name__ == "__main__":
    main()
