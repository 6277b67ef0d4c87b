"""The plan's `augment` chain as kornia augmentations: on whole batches, random per sample.

kornia runs on the batch's device (GPU-ready) and draws every sample's parameters separately
(`same_on_batch=False`) from torch's generator, so a checkpoint of that generator makes
augmented runs resumable.
"""

from __future__ import annotations

import kornia.augmentation as K
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
            side = int(args["size"])
            steps.append(K.Resize((side, side), antialias=True))
        elif step.name == "random_crop":
            side = int(args["size"])
            steps.append(K.RandomCrop((side, side), padding=int(args.get("pad", 0))))
        else:  # scale: zoom in or out around the centre
            steps.append(K.RandomAffine(degrees=0.0, scale=(args["min"], args["max"]), p=1.0))
    return nn.Sequential(*steps) if steps else None
