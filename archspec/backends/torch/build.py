"""Builds the module `emit` writes, in process: `to_torch` executes that very source."""

from __future__ import annotations

import linecache
from typing import TYPE_CHECKING, Any

from archspec.backends.torch.emit import emit
from archspec.core.limits import DEFAULT_MAX_BUILD_PARAMS
from archspec.ir import Network
from archspec.lang.shapes import Shapes

if TYPE_CHECKING:  # torch is imported by the module built, not to read `to_torch` (help())
    from torch import nn


def to_torch(network: Network, shapes: Shapes | None = None, *, origin: str | None = None,
             max_params: int = DEFAULT_MAX_BUILD_PARAMS, weights: str | None = None,
             checkpoint: str | int | None = None) -> nn.Module:
    """Build the network as an `nn.Module` with the spec's init applied, or with the tensors
    of the state_dict file `weights` (checked against the spec first: ValueError, every
    tensor missing, unexpected or of another shape at its spec line). `checkpoint="blocks"`
    runs each outermost block call under `torch.utils.checkpoint` (non-reentrant): only its
    input is saved for backward, and its forward runs again there (ValueError if the spec
    calls no block); `checkpoint=N` runs the network's pieces (`cost.checkpoint_pieces`) N
    layers at a time, each segment but the last so (ValueError if that makes one segment).

    The module is the class `emit` writes, executed in process; it allocates on the current
    default device (`with torch.device("meta"): to_torch(net)` builds without memory).
    """
    source = emit(network, shapes, origin=origin, max_params=max_params)
    filename = f"<archspec:{network.name}>"
    # Registered so tracebacks and inspect.getsource show the generated lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {"__name__": f"archspec_generated_{network.name}"}
    exec(compile(source, filename, "exec"), namespace)
    model: nn.Module = namespace["build"](weights, checkpoint)
    return model
