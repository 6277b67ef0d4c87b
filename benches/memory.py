"""Peak live activation bytes of the compiled module beside a hand-written one, and the planner's.

    python benches/memory.py [--batch 2] [--train-batch 2] [--size 224] [--nets resnet50,...]

For ResNet-50, GoogLeNet, DenseNet-121 and EfficientNet-B0 (specs/zoo/): the module
`archspec.to_torch` builds and a module written by hand in plain torch, torchvision-style (the
same layers, activations out of place as archspec builds them, DenseNet's layer as
`torch.cat([x, layer(x)], 1)`, which is what the spec's `(ID | ...)` says). Each is measured
with `archspec.runtime.meter.peak_bytes` (every storage an op returns, counted until nothing
holds it, on CPU):
  inference  the input batch and everything alive at once during `module(x)` under no_grad;
  training   one SGD-with-momentum step (forward, cross-entropy, backward, step) after a first
             step has made the momentum buffers: parameters, buffers, momentum, the batch and
             labels, gradients, what autograd saves and the gradients in flight.
Prints both, their ratio (goal: at most 1.02), and the planner's figures beside the compiled
module's: inference activations, and for training the predicted peak of the step
(`memory.training_peak_bytes`, archspec.analysis.timeline; issue #15's goal: within 5%) and
the total that counts every component at once (`memory.training_bytes`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import archspec
from archspec.analysis.report import build_report
from archspec.runtime.meter import peak_bytes

ZOO = Path(__file__).resolve().parent.parent / "specs" / "zoo"


def conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, *,
            eps: float = 1e-5, act: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups,
                                         bias=False), nn.BatchNorm2d(cout, eps=eps)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


# --- ResNet-50 (torchvision.models.resnet50) ----------------------------------------------

class Bottleneck(nn.Module):
    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        self.conv1 = conv_bn(cin, width, 1)
        self.conv2 = conv_bn(width, width, 3, stride)
        self.conv3 = conv_bn(width, width * 4, 1, act=None)
        self.downsample = (conv_bn(cin, width * 4, 1, stride, act=None)
                           if stride != 1 or cin != width * 4 else None)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv3(self.conv2(self.conv1(x)))
        identity = x if self.downsample is None else self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet50(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], 64
        for width, count, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for i in range(count):
                blocks.append(Bottleneck(cin, width, stride if i == 0 else 1))
                cin = width * 4
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(2048, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# --- GoogLeNet (torchvision.models.googlenet(aux_logits=False)) ----------------------------

class Inception(nn.Module):
    def __init__(self, cin: int, c1: int, r3: int, c3: int, r5: int, c5: int, p: int) -> None:
        super().__init__()
        self.branch1 = conv_bn(cin, c1, 1, eps=1e-3)
        self.branch2 = nn.Sequential(conv_bn(cin, r3, 1, eps=1e-3), conv_bn(r3, c3, 3, eps=1e-3))
        self.branch3 = nn.Sequential(conv_bn(cin, r5, 1, eps=1e-3), conv_bn(r5, c5, 3, eps=1e-3))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True),
                                     conv_bn(cin, p, 1, eps=1e-3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class GoogLeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.net = nn.Sequential(
            conv_bn(3, 64, 7, 2, eps=1e-3), pool, conv_bn(64, 64, 1, eps=1e-3),
            conv_bn(64, 192, 3, eps=1e-3), pool,
            Inception(192, 64, 96, 128, 16, 32, 32), Inception(256, 128, 128, 192, 32, 96, 64),
            pool,
            Inception(480, 192, 96, 208, 16, 48, 64), Inception(512, 160, 112, 224, 24, 64, 64),
            Inception(512, 128, 128, 256, 24, 64, 64), Inception(512, 112, 144, 288, 32, 64, 64),
            Inception(528, 256, 160, 320, 32, 128, 128), nn.MaxPool2d(2, 2, ceil_mode=True),
            Inception(832, 256, 160, 320, 32, 128, 128),
            Inception(832, 384, 192, 384, 48, 128, 128))
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(1024, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(F.adaptive_avg_pool2d(self.net(x), 1), 1)
        return self.fc(self.dropout(x))


# --- DenseNet-121 (torchvision.models.densenet121) -----------------------------------------

class DenseLayer(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.norm1, self.relu1 = nn.BatchNorm2d(cin), nn.ReLU()
        self.conv1 = nn.Conv2d(cin, 128, 1, bias=False)
        self.norm2, self.relu2 = nn.BatchNorm2d(128), nn.ReLU()
        self.conv2 = nn.Conv2d(128, 32, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))
        return torch.cat([x, new], 1)


class DenseNet121(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1)]
        channels = 64
        for i, count in enumerate((6, 12, 24, 16)):
            for _ in range(count):
                layers.append(DenseLayer(channels))
                channels += 32
            if i < 3:  # torchvision's _Transition, an nn.Sequential of its own
                layers.append(nn.Sequential(
                    nn.BatchNorm2d(channels), nn.ReLU(),
                    nn.Conv2d(channels, channels // 2, 1, bias=False), nn.AvgPool2d(2)))
                channels //= 2
        layers += [nn.BatchNorm2d(channels), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1)
        return self.classifier(x)


# --- EfficientNet-B0 (torchvision.models.efficientnet_b0) ----------------------------------

class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(channels, squeeze, 1), nn.Conv2d(squeeze, channels, 1)
        self.activation, self.scale_activation = nn.SiLU(), nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = F.adaptive_avg_pool2d(x, 1)
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(scale))))
        return x * scale


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int,
                 drop: float) -> None:
        super().__init__()
        mid = cin * expand
        layers: list[nn.Module] = [] if expand == 1 else [conv_bn(cin, mid, 1, act=nn.SiLU)]
        layers += [conv_bn(mid, mid, k, stride, groups=mid, act=nn.SiLU),
                   SqueezeExcitation(mid, max(1, cin // 4)), conv_bn(mid, cout, 1, act=None)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout
        self.drop = drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if not self.residual:
            return out
        if self.training and self.drop:  # torchvision.ops.stochastic_depth, mode "row"
            keep = 1 - self.drop
            noise = torch.empty((out.shape[0], 1, 1, 1)).bernoulli_(keep).div_(keep)
            out = out * noise
        return out + x


class EfficientNetB0(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn(3, 32, 3, 2, act=nn.SiLU)]
        settings = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2),
                    (6, 3, 2, 40, 80, 3), (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4),
                    (6, 3, 1, 192, 320, 1))
        index, total = 0, sum(s[-1] for s in settings)
        for expand, k, stride, cin, cout, count in settings:
            for i in range(count):
                layers.append(MBConv(cin if i == 0 else cout, cout, k, stride if i == 0 else 1,
                                     expand, 0.2 * index / total))
                index += 1
        layers.append(conv_bn(320, 1280, 1, act=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(0.2)
        self.classifier = nn.Linear(1280, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1)
        return self.classifier(self.dropout(x))


NETWORKS: dict[str, type[nn.Module]] = {
    "resnet50": ResNet50, "googlenet": GoogLeNet, "densenet121": DenseNet121,
    "efficientnet_b0": EfficientNetB0,
}


def inference_peak(module: nn.Module, x: torch.Tensor) -> int:
    module.eval()
    with torch.no_grad():
        return peak_bytes(lambda: module(x), held=[x],
                          ignored=[*module.parameters(), *module.buffers()])


def training_peak(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    module.train()
    optimizer = torch.optim.SGD(module.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(module(x), y).backward()
        optimizer.step()

    step()  # makes the momentum buffers
    optimizer.zero_grad(set_to_none=True)
    state = [t for s in optimizer.state.values() for t in s.values()
             if isinstance(t, torch.Tensor)]
    held = [*module.parameters(), *module.buffers(), *state, x, y]
    torch.manual_seed(0)
    return peak_bytes(step, held=held)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=2, help="inference batch (default 2)")
    parser.add_argument("--train-batch", type=int, default=2, help="training batch (default 2)")
    parser.add_argument("--size", type=int, default=224, help="image side (default 224)")
    parser.add_argument("--nets", default=",".join(NETWORKS), help="comma-separated")
    args = parser.parse_args()
    torch.set_num_threads(1)
    mb = 1e6
    print(f"{'network':<16}{'':>10}{'archspec':>12}{'by hand':>12}{'ratio':>8}"
          f"{'planner':>12}{'planner/archspec':>18}{'all at once':>13}{'/archspec':>10}")
    for name in args.nets.split(","):
        network, shapes = archspec.load_network(ZOO / f"{name}.arch")
        if args.size != network.input.shape[-1]:
            text = (ZOO / f"{name}.arch").read_text(encoding="utf-8")
            spec = archspec.loads(text.replace("input 3x224x224",
                                               f"input 3x{args.size}x{args.size}"))
            assert spec.network is not None and spec.ok, spec.render()
            network, shapes = spec.network, spec.shapes
        torch.manual_seed(0)
        compiled = archspec.to_torch(network, shapes)
        hand = NETWORKS[name]()
        counts = [sum(p.numel() for p in m.parameters()) for m in (compiled, hand)]
        assert counts[0] == counts[1], f"{name}: parameters differ {counts}"
        rows = []
        for label, batch in (("inference", args.batch), ("training", args.train_batch)):
            x = torch.randn(batch, *network.input.shape)
            y = torch.randint(0, 1000, (batch,))
            if label == "inference":
                ours, theirs = inference_peak(compiled, x), inference_peak(hand, x)
                plan = build_report(network, shapes, batch=batch).memory
                predicted, bound = plan.inference_activations_bytes, None
            else:
                ours, theirs = training_peak(compiled, x, y), training_peak(hand, x, y)
                plan = build_report(network, shapes, batch=batch, optimizer="momentum").memory
                predicted, bound = plan.training_peak_bytes, plan.training_bytes
            rows.append((label, batch, ours, theirs, predicted, bound))
        for label, batch, ours, theirs, predicted, bound in rows:
            print(f"{name:<16}{label + f' b{batch}':>10}{ours / mb:>10.1f}MB{theirs / mb:>10.1f}MB"
                  f"{ours / theirs:>8.3f}{predicted / mb:>10.1f}MB{predicted / ours:>18.3f}"
                  + (f"{bound / mb:>11.1f}MB{bound / ours:>10.3f}" if bound else ""))


if __name__ == "__main__":
    main()
