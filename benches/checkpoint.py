"""The planner's memory under build(checkpoint=...) beside what the module really holds.

    python benches/checkpoint.py [--side 64] [--batch 2] [--every N ...] [SPEC ...]

For each spec (default: ResNet-18, ResNet-50 of the zoo and GoogLeNet of specs/), plain,
checkpointed by blocks (when it calls one) and every N layers (default 10): the planner's
saved_bytes and segment_peak_bytes, and the activation peak of one forward and backward
measured with archspec.runtime.meter.peak_bytes, the parameters, their pre-made gradients
and the buffers ignored (the input batch counted). The meter also
sees what the planner does not count: the gradients of activations in flight and each
layer's weight gradient before it is accumulated.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import archspec
from archspec.analysis.report import build_report
from archspec.core.diagnostics import Diagnostics
from archspec.lang.shapes import infer
from archspec.runtime.meter import peak_bytes

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ["specs/resnet18.arch", "specs/zoo/resnet50.arch", "specs/googlenet.arch"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", type=int, default=64)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--every", type=int, nargs="+", default=[10])
    parser.add_argument("specs", nargs="*", default=DEFAULT)
    args = parser.parse_args()
    print(f"{'spec':28} {'checkpoint':10} {'saved MB':>9} {'segment MB':>10} "
          f"{'planned MB':>10} {'measured MB':>11}")
    for name in args.specs:
        network, _ = archspec.load_network(ROOT / name)
        shape = network.input.shape
        network = network.model_copy(update={"input": network.input.model_copy(
            update={"shape": (shape[0], args.side, args.side)})})
        shapes = infer(network, Diagnostics())
        blocks = ("blocks",) if any(m.kind == "block" for m in network.modules) else ()
        for checkpoint in (None, *blocks, *args.every):
            module = archspec.to_torch(network, shapes, checkpoint=checkpoint).train()
            params = list(module.parameters())
            for param in params:
                param.grad = torch.zeros_like(param)
            x = torch.randn(args.batch, *network.input.shape)
            ignored = [*params, *(p.grad for p in params if p.grad is not None),
                       *module.buffers()]
            measured = peak_bytes(lambda m=module, x=x: m(x).sum().backward(), held=[x],
                                  ignored=ignored)
            memory = build_report(network, shapes, batch=args.batch, dtype="float32",
                                  checkpoint=checkpoint).memory
            planned = memory.saved_bytes + memory.segment_peak_bytes
            shown = "-" if checkpoint is None else checkpoint if checkpoint == "blocks" \
                else f"every {checkpoint}"
            print(f"{name:28} {shown:10} {memory.saved_bytes / 1e6:9.2f} "
                  f"{memory.segment_peak_bytes / 1e6:10.2f} {planned / 1e6:10.2f} "
                  f"{measured / 1e6:11.2f}")


if __name__ == "__main__":
    main()
