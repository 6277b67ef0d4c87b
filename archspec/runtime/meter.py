"""Live tensor bytes, op by op: the peak a module really holds, to set beside the planner's."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class _Meter(TorchDispatchMode):
    """Counts every storage an op returns until only the meter still refers to it.

    A storage is counted once however many tensors view it; it is alive while any tensor,
    autograd's saved tensors included, holds it: the meter keeps one reference of its own and
    looks, before and after each op, for storages it alone still holds (those are freed).
    """

    def __init__(self, held: Iterable[torch.Tensor], ignored: Iterable[torch.Tensor]) -> None:
        super().__init__()
        self.ignored = {t.untyped_storage().data_ptr() for t in ignored}
        self.storages: dict[int, torch.UntypedStorage] = {}
        self.live = 0
        self.peak = 0
        for tensor in held:
            self._track(tensor)
        self.peak = self.live

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key and key not in self.storages and key not in self.ignored:
            self.storages[key] = storage
            self.live += storage.nbytes()

    def _sweep(self) -> None:
        freed = [key for key, storage in self.storages.items()
                 if torch._C._storage_Use_Count(storage._cdata) == 1]
        for key in freed:
            self.live -= self.storages.pop(key).nbytes()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        self._sweep()
        out = func(*args, **(kwargs or {}))
        for value in tree_flatten(out)[0]:
            if isinstance(value, torch.Tensor):
                self._track(value)
        self.peak = max(self.peak, self.live)
        return out


def peak_bytes(run: Callable[[], object], held: Iterable[torch.Tensor] = (),
               ignored: Iterable[torch.Tensor] = ()) -> int:
    """The most bytes of tensor storage alive at once while `run` runs: the `held` tensors
    (counted while alive: parameters, optimizer state, the input batch) and every tensor an
    op makes (outputs, autograd's saved tensors, gradients); never the storages of the
    `ignored` tensors and their views (parameters, when only activations are wanted; an op
    such as `t` returns a view of a weight). Not counted: what a kernel
    allocates and frees inside one op (workspaces), the allocator's caching and rounding."""
    meter = _Meter(held, ignored)
    with meter:
        run()
    return meter.peak
