"""The plan's `augment` chain as kornia augmentations, and its deterministic evaluation twin.

Training batches go through kornia modules that run on the batch's device and draw every
sample's parameters separately (`same_on_batch=False`) from torch's generator, so a checkpoint
of that generator makes augmented runs resumable. Validation and test images go through
`for_evaluation`: the chain's geometry without its randomness, so a model is scored at the
scale it was trained at.
"""

from __future__ import annotations

import kornia.augmentation as K
import kornia.geometry.transform as KT
import torch
import torch.nn.functional as F
from torch import nn

from archspec.ir import AugmentSpec


def build(chain: tuple[AugmentSpec, ...], channels: int) -> nn.Module | None:
    """An nn.Sequential of kornia augmentations, or None for an empty chain."""
    steps: list[nn.Module] = []
    for step in chain:
        args = step.args
        if step.name == "hflip":
            steps.append(K.RandomHorizontalFlip(p=0.5))
        elif step.name == "rotate":
            steps.append(K.RandomRotation(degrees=args["deg"], p=1.0))
        elif step.name == "color_jitter":
            # Grey images have no saturation or hue: only brightness and contrast apply.
            colour = channels == 3
            jitter = {"brightness": args.get("brightness", 0.0),
                      "contrast": args.get("contrast", 0.0),
                      "saturation": args.get("saturation", 0.0) if colour else 0.0,
                      "hue": args.get("hue", 0.0) if colour else 0.0}
            if any(jitter.values()):
                steps.append(K.ColorJitter(**jitter, p=1.0))
        elif step.name == "resize":
            steps.append(_resize(step))
        elif step.name == "random_crop":
            side = int(args["size"])
            steps.append(K.RandomCrop((side, side), padding=int(args.get("pad", 0))))
        else:  # scale: zoom in or out around the centre
            steps.append(K.RandomAffine(degrees=0.0, scale=(args["min"], args["max"]), p=1.0))
    return nn.Sequential(*steps) if steps else None


class Evaluation(nn.Module):
    """The chain's geometry, deterministic, for val and test images; draws nothing at random.

    `resize(size)` resizes exactly as in training; `random_crop(size, pad)` pads as in training
    and keeps the centre `size` x `size` square; `scale(min, max)` zooms around the centre by
    the range's middle, (min + max) / 2 (nothing for a range centred on 1); `hflip`, `rotate`
    and `color_jitter` are left out (their mean is the unchanged image).
    """

    def __init__(self, chain: tuple[AugmentSpec, ...]) -> None:
        super().__init__()
        self.chain = chain
        self.resizers = nn.ModuleList(_resize(step) for step in chain if step.name == "resize")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        resizers = iter(self.resizers)
        for step in self.chain:
            if step.name == "resize":
                x = next(resizers)(x)
            elif step.name == "random_crop":
                side, pad = int(step.args["size"]), int(step.args.get("pad", 0))
                x = F.pad(x, (pad, pad, pad, pad)) if pad else x
                top, left = (x.shape[-2] - side) // 2, (x.shape[-1] - side) // 2
                x = x[..., top:top + side, left:left + side]
            elif step.name == "scale":
                zoom = (step.args["min"] + step.args["max"]) / 2
                if zoom != 1:
                    x = KT.scale(x, torch.full((len(x),), zoom, device=x.device, dtype=x.dtype))
        return x


def for_evaluation(chain: tuple[AugmentSpec, ...]) -> nn.Module | None:
    """The chain's evaluation counterpart, or None where it changes no image."""
    changes = any(step.name in ("resize", "random_crop") or (
        step.name == "scale" and step.args["min"] + step.args["max"] != 2) for step in chain)
    return Evaluation(chain) if changes else None


def _resize(step: AugmentSpec) -> nn.Module:
    side = int(step.args["size"])
    return K.Resize((side, side), antialias=True)
