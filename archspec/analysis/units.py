"""How the generated module groups the layers it runs: the emitter lays them out so, the
memory planner counts what each group's caller holds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import chain
from operator import eq, not_

from archspec.ir import Layer, Network
from archspec.kinds import registry as reg


def keyed(network: Network) -> bool:
    """Whether the module's keys are the spec's: it has named groups or block calls, or
    names a layer (`conv1: CONV...`): each name is an attribute (`conv1.weight`), as the
    model `archspec import` read had them. A plain stack that names none is laid out as
    torchvision lays out VGG, `features` and `classifier`; another unnamed graph in runs."""
    return bool(network.modules) or any(layer.named for layer in network.layers)


def runs(network: Network) -> list[tuple[int, int]]:
    """An unkeyed graph split into straight runs (each layer the one reader of the one
    before it) and joins (a run of their own), in order: the first and last step (layer
    index) of each. The module runs each run of two or more layers as one `nn.Sequential`,
    whose caller holds its input until it returns; a plain stack, one run, as its parts
    (`stack_split`). Worked out a whole list at a time, for 100k-layer specs."""
    layers = network.layers
    if not layers:
        return []
    names = [layer.name for layer in layers]
    inputs = [layer.inputs for layer in layers]
    if layers[0].kind not in _JOINS and all(map(eq, inputs[1:], zip(names))):
        return [(0, len(layers) - 1)]  # a plain stack (a join reads more than one layer)
    joins = [layer.kind in _JOINS for layer in layers]
    readers = Counter(chain.from_iterable(inputs))
    # Layer i goes on with layer i-1's run where neither is a join, it reads that layer
    # alone, and nothing else reads that layer.
    goes_on = map(all, zip(map(not_, joins[1:]), map(not_, joins),
                           map(eq, inputs[1:], zip(names)),
                           map((1).__eq__, map(readers.__getitem__, names)), strict=False))
    starts = [0, *(at for at, on in enumerate(goes_on, 1) if not on)]
    return list(zip(starts, [start - 1 for start in starts[1:]] + [len(layers) - 1],
                    strict=True))


def stack_split(layers: Sequence[Layer]) -> int:
    """Where a plain stack's spatial `features` end and its flat `classifier` begins, as
    torchvision lays out VGG: the first layer whose output is flat (each part an
    `nn.Sequential`; the length where there is none)."""
    return next((at for at, layer in enumerate(layers) if layer.kind in _FLAT), len(layers))


def sequentials(network: Network) -> list[tuple[int, int]]:
    """The first and last step of each run of layers an unkeyed module runs as one
    `nn.Sequential` (none for a keyed one, whose submodules are the spec's own:
    `Layer.path`)."""
    if keyed(network):
        return []
    found = runs(network)
    if len(found) == 1 and network.layers[0].kind not in _JOINS:
        end = found[0][1]
        split = stack_split(network.layers)
        return [(first, last) for first, last in ((0, split - 1), (split, end))
                if first <= last]
    return [(first, last) for first, last in found if last > first]


_JOINS = frozenset(kind.name for kind in reg.JOINS)
_FLAT = frozenset(kind.name for kind in reg.KINDS if kind.out_rank == 1)
