"""How the generated module groups the layers it runs: the emitter lays them out so, the
memory planner counts what each group's caller holds."""

from __future__ import annotations

from collections import Counter
from itertools import chain
from operator import eq, not_

from archspec.ir import Network
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
    (`stack_parts`). Worked out a whole list at a time, for 100k-layer specs."""
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


def stack_parts(network: Network, found: list[tuple[int, int]]) -> list[tuple[int, int, str]]:
    """A plain stack (its `runs`, `found`, are one run that is no join) as torchvision lays
    out VGG: spatial `features`, then a flat `classifier` from the first layer whose output
    is flat, each an `nn.Sequential`: the first and last step and the title of each part
    there is. None of them for any other graph."""
    layers = network.layers
    if len(found) != 1 or layers[0].kind in _JOINS:
        return []
    split = next((at for at, layer in enumerate(layers) if layer.kind in _FLAT), len(layers))
    return [(first, last, title) for first, last, title in (
        (0, split - 1, "features"), (split, len(layers) - 1, "classifier")) if first <= last]


def sequentials(network: Network) -> list[tuple[int, int]]:
    """The first and last step of each run of layers an unkeyed module runs as one
    `nn.Sequential` (none for a keyed one, whose submodules are the spec's own:
    `Layer.path`)."""
    if keyed(network):
        return []
    found = runs(network)
    parts = stack_parts(network, found)
    if parts:
        return [(first, last) for first, last, _ in parts]
    return [(first, last) for first, last in found if last > first]


_JOINS = frozenset(kind.name for kind in reg.JOINS)
_FLAT = frozenset(kind.name for kind in reg.KINDS if kind.out_rank == 1)
