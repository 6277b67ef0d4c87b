"""The planner's training-step peak, plain and under build(checkpoint=...), beside what the
compiled module really holds.

    python benches/checkpoint.py [--side 64] [--batch 8] [--every N ...] [SPEC ...]

For each spec (default: ResNet-18, GoogLeNet of specs/, ResNet-50 and DenseNet-121 of the
zoo), plain, checkpointed by blocks (when it calls one) and every N layers (default 10): the
planner's saved_bytes and its predicted peak of one SGD
with momentum step (`memory.training_peak_bytes`, archspec.analysis.timeline), and the peak
archspec.runtime.meter.peak_bytes measures in the same state (benches/memory.py's
`training_peak`: the momentum made by a first step, gradients set to None, then forward,
cross-entropy, backward, step; parameters, buffers, momentum, the batch and labels held).
Both totals and their ratio (issue #15 and #17's goal: within 5%), and the same for what the
step holds beyond the parameters, buffers and momentum, where the plan's terms differ.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from memory import training_peak

import archspec
from archspec.analysis.report import build_report
from archspec.core.diagnostics import Diagnostics
from archspec.lang.shapes import infer

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ["specs/resnet18.arch", "specs/googlenet.arch", "specs/zoo/resnet50.arch",
           "specs/zoo/densenet121.arch"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--every", type=int, nargs="+", default=[10])
    parser.add_argument("specs", nargs="*", default=DEFAULT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    mb = 1e6
    print(f"{'spec':28} {'checkpoint':10} {'saved MB':>9} {'planned MB':>11} "
          f"{'measured MB':>11} {'ratio':>6} {'beyond state: planned':>22} {'measured':>9} "
          f"{'ratio':>6}")
    for name in args.specs:
        network, shapes = archspec.load_network(ROOT / name)
        shape = network.input.shape
        small = network.model_copy(update={"input": network.input.model_copy(
            update={"shape": (shape[0], args.side, args.side)})})
        diags = Diagnostics()
        small_shapes = infer(small, diags)
        if len(shape) == 3 and shape[1] > args.side and not diags.has_errors:
            # else at its own size (a flat input; AlexNet's windows need more than 64)
            network, shapes = small, small_shapes
        blocks = ("blocks",) if any(m.kind == "block" for m in network.modules) else ()
        for checkpoint in (None, *blocks, *args.every):
            torch.manual_seed(0)
            module = archspec.to_torch(network, shapes, checkpoint=checkpoint)
            x = torch.randn(args.batch, *network.input.shape)
            classes = shapes[network.output]
            assert classes is not None
            y = torch.randint(0, classes[0], (args.batch,))
            measured = training_peak(module, x, y)
            memory = build_report(network, shapes, batch=args.batch, dtype="float32",
                                  optimizer="momentum", checkpoint=checkpoint).memory
            planned, state = memory.training_peak_bytes, memory.training_peak.state_bytes
            shown = "-" if checkpoint is None else checkpoint if checkpoint == "blocks" \
                else f"every {checkpoint}"
            print(f"{name:28} {shown:10} {memory.saved_bytes / mb:9.2f} "
                  f"{planned / mb:11.2f} {measured / mb:11.2f} {planned / measured:6.3f} "
                  f"{(planned - state) / mb:22.2f} {(measured - state) / mb:9.2f} "
                  f"{(planned - state) / (measured - state):6.3f}")


if __name__ == "__main__":
    main()
