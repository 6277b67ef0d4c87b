"""archspec: a declarative architecture-spec compiler for convolutional networks."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archspec.backends.torch.build import to_torch
    from archspec.ir import Network, TrainingPlan
    from archspec.lang.frontend import Spec, SpecError, load, load_network, loads

__all__ = ["Network", "Spec", "SpecError", "TrainingPlan", "load", "load_network", "loads",
           "to_torch"]
__version__ = "0.1.0"

# Each public name's module, imported at the name's first use: `import archspec` alone
# imports nothing else, so the command line (archspec.cli.run) starts its imports (pydantic's
# among them) with the cycle collector paused (docs/table.md, Speed); and torch only when a
# module is built (`archspec.to_torch`).
_HOMES = {"Network": "archspec.ir", "TrainingPlan": "archspec.ir",
          "Spec": "archspec.lang.frontend", "SpecError": "archspec.lang.frontend",
          "load": "archspec.lang.frontend", "load_network": "archspec.lang.frontend",
          "loads": "archspec.lang.frontend", "to_torch": "archspec.backends.torch.build"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    # A subpackage or module (`archspec.ir`), as when this package imported them itself.
    try:
        return importlib.import_module(f"archspec.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"archspec.{name}":
            raise
    raise AttributeError(f"module 'archspec' has no attribute {name!r}")


def __dir__() -> list[str]:
    # the public names too, as when they were imported here (completion, help(archspec))
    return sorted({*globals(), *__all__})
