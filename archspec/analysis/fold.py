"""Folding: which layers a compact view shows as one, the rule `table --fold` and `draw` share.

A layer folds into the one that stands for it: an implied flatten into the FC it was implied
for; batch norm or an activation, written or implied, into the layer it follows when it is
that layer's only consumer in the same scope (`CONV3-64 - BN - RELU` is one row, one box).
"""

from __future__ import annotations

from collections import Counter
from itertools import chain

from archspec.ir import INPUT_NODE, Layer, Network
from archspec.kinds import registry as reg


def owners(network: Network) -> dict[str, str]:
    """Every layer's name mapped to the layer it folds into (itself when it stands alone)."""
    by_name = {layer.name: layer for layer in network.layers}
    reads = Counter(chain.from_iterable(layer.inputs for layer in network.layers))
    owner: dict[str, str] = {}
    for layer in network.layers:
        if reg.kind_of(layer.kind).view and layer.implicit and layer.origin is not None:
            owner[layer.name] = layer.origin
        elif _follows(layer, by_name, reads):
            owner[layer.name] = owner[layer.inputs[0]]
        else:
            owner[layer.name] = layer.name
    return owner


def groups(network: Network) -> list[tuple[str, list[str]]]:
    """(the layer that stands for the group, every member in graph order), in graph order
    of the groups' first members."""
    owner = owners(network)
    members: dict[str, list[str]] = {}
    for layer in network.layers:
        members.setdefault(owner[layer.name], []).append(layer.name)
    return list(members.items())


def _follows(layer: Layer, by_name: dict[str, Layer], reads: Counter[str]) -> bool:
    """Batch norm or an activation that is the only reader of a layer in its own scope
    (`reads`: how many times each tensor is read)."""
    if layer.kind != "BN" and reg.kind_of(layer.kind).family != "activation":
        return False
    if len(layer.inputs) != 1 or layer.inputs[0] == INPUT_NODE:
        return False
    source = by_name[layer.inputs[0]]
    return reads[source.name] == 1 and source.scopes == layer.scopes
