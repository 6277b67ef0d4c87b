"""The public PyTorch API, kept where users import it: `to_torch`, `layer_paths`, `emit`."""

from __future__ import annotations

from archspec.backends.torch.build import to_torch
from archspec.backends.torch.emit import BuildError, emit, layer_paths, module_name

__all__ = ["BuildError", "emit", "layer_paths", "module_name", "to_torch"]
