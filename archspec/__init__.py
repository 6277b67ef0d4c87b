"""archspec: a declarative architecture-spec compiler for convolutional networks."""

from __future__ import annotations

from typing import Any

from archspec.ir import Network, TrainingPlan
from archspec.lang.frontend import Spec, SpecError, load, load_network, loads

__all__ = ["Network", "Spec", "SpecError", "TrainingPlan", "load", "load_network", "loads",
           "to_torch"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # torch is imported only when a module is built: `archspec.to_torch` loads it lazily.
    if name == "to_torch":
        from archspec.backends.torch.build import to_torch

        return to_torch
    raise AttributeError(f"module 'archspec' has no attribute {name!r}")
