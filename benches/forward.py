"""Forward time of a compiled VGG-style network against a hand-written `nn.Sequential`.

    python benches/forward.py [--full] [--rounds N] [--batch 8]

Both models hold the same layers and the same weights (copied across, outputs checked equal);
they run interleaved, inference mode, on the CPU, and the script prints each one's median
time per forward pass and the ratio compiled / hand-written, which should be 1.00 within the
noise. Best-of-N is the steadier figure on a shared machine; the median and the
interquartile range over the rounds show the noise. By default the net is
VGG16's layout at a quarter of its width on 64x64 inputs, which a 2-core machine runs in tens
of milliseconds; `--full` runs the real VGG16 on 224x224 (seconds per pass).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from archspec.backends.torch.build import to_torch
from archspec.lang.frontend import loads

VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def spec_text(cfg: tuple[int | str, ...], size: int, hidden: int, classes: int) -> str:
    """The `.arch` spec of the network: convs and pools as CS231n writes them."""
    body = " - ".join("POOL2" if v == "M" else f"CONV3-{v}" for v in cfg)
    return (f"network vggstyle\ninput 3x{size}x{size}\nactivation relu\n\n{body}\n"
            f"FC-{hidden} - DROPOUT(0.5) - FC-{hidden} - DROPOUT(0.5) - FC-{classes}\n")


def handwritten(cfg: tuple[int | str, ...], size: int, hidden: int, classes: int
                ) -> nn.Sequential:
    """The same network as one would write it by hand (torchvision's `make_layers`)."""
    layers: list[nn.Module] = []
    channels = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
            size //= 2
        else:
            assert isinstance(v, int)
            layers += [nn.Conv2d(channels, v, 3, padding=1), nn.ReLU()]
            channels = v
    layers += [nn.Flatten(), nn.Linear(channels * size * size, hidden), nn.ReLU(),
               nn.Dropout(0.5), nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(0.5),
               nn.Linear(hidden, classes)]
    return nn.Sequential(*layers)


def timed(model: nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    model(x)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="real VGG16 at 224x224")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.full:
        cfg, size, hidden, classes = VGG16, 224, 4096, 1000
    else:
        cfg = tuple(v if v == "M" else v // 4 for v in VGG16)
        size, hidden, classes = 64, 512, 10
    network = loads(spec_text(cfg, size, hidden, classes)).network
    assert network is not None
    torch.manual_seed(0)
    compiled = to_torch(network).eval()
    hand = handwritten(cfg, size, hidden, classes).eval()
    with torch.no_grad():
        for mine, theirs in zip(compiled.parameters(), hand.parameters(), strict=True):
            theirs.copy_(mine)
    x = torch.randn(args.batch, 3, size, size)
    times: dict[str, list[float]] = {"compiled": [], "hand-written": []}
    with torch.inference_mode():
        assert torch.equal(compiled(x), hand(x)), "the two models disagree"
        for _ in range(3):  # warm-up
            timed(compiled, x), timed(hand, x)
        for i in range(args.rounds):
            order = [("compiled", compiled), ("hand-written", hand)]
            for name, model in order if i % 2 else order[::-1]:
                times[name].append(timed(model, x))
    params = sum(p.numel() for p in compiled.parameters())
    print(f"{'VGG16' if args.full else 'VGG16 layout, quarter width'}: input "
          f"{args.batch}x3x{size}x{size}, {params:,} parameters, {args.rounds} rounds, "
          f"{torch.get_num_threads()} threads")
    for name, values in times.items():
        q1, median, q3 = statistics.quantiles(values, n=4)
        print(f"  {name:13} best {min(values) * 1000:8.2f} ms  median {median * 1000:8.2f} ms"
              f"  (IQR {q1 * 1000:.2f}-{q3 * 1000:.2f})")
    for label, stat in (("best", min), ("median", statistics.median)):
        ratio = stat(times["compiled"]) / stat(times["hand-written"])
        print(f"  ratio compiled / hand-written ({label}): {ratio:.3f}")


if __name__ == "__main__":
    main()
