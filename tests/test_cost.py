"""`analysis.cost.layer_rules`: the registry's rules once per distinct layer, shared by the
analyses, which read the same figures as with a fresh rule for every layer."""

from __future__ import annotations

from collections import Counter

from conftest import SPECS
from hypothesis import HealthCheck, given, settings

import archspec
from archspec.analysis import cost, units
from archspec.core.diagnostics import Diagnostics
from archspec.ir import Layer, Network
from archspec.kinds import registry as reg
from archspec.lang.shapes import Shapes, infer
from archspec.testing import networks


def _load(text: str) -> tuple[Network, Shapes]:
    spec = archspec.loads(text)
    assert spec.ok and spec.network is not None, spec.render()
    return spec.network, spec.shapes


def _fresh(network: Network, shapes: Shapes) -> list[cost.Rule]:
    """A rule worked out anew for every layer: what sharing must not change."""
    return [cost._rule(layer, layer.args, shapes) for layer in network.layers]


def _distinct(network: Network, shapes: Shapes) -> int:
    """Layers that differ in kind, arguments (their types too) or shapes, told apart here by
    the arguments' repr (1, 1.0 and True write differently)."""
    return len({(layer.kind, repr(layer.args), shapes[layer.name],
                 *(shapes[name] for name in layer.inputs)) for layer in network.layers})


def test_a_repeated_chain_shares_its_rules() -> None:
    network, shapes = _load("network t\ninput 3x16x16\n" + "CONV3-8 - BN - RELU - " * 30
                            + "GAP - FC-10\n")
    rules = cost.layer_rules(network, shapes)
    assert len(rules) == len(network.layers) > 90
    # The first CONV reads 3 channels, the others 8: two CONV rules, one BN, one RELU...
    assert len({id(rule) for rule in rules}) == _distinct(network, shapes) < 10
    assert rules == _fresh(network, shapes)


def test_arguments_of_other_types_are_not_shared() -> None:
    """DROPOUT(p=0) and DROPOUT(p=0.0) are equal values of different types: each its own rule
    (no rule may read them differently today, but a rule is free to)."""
    network, shapes = _load("network t\ninput 6\nFC-8 - DROPOUT(p=0.0) - DROPOUT(p=0.0) - FC-2\n")
    layers = list(network.layers)
    layers[2] = Layer.model_construct(**{**dict(layers[2]), "args": {"p": 0}})
    network = network.model_copy(update={"layers": layers})
    rules = cost.layer_rules(network, shapes)
    assert rules[1] is not rules[2]
    assert rules[1] == rules[2]  # the same facts, worked out apart


def test_every_spec_reads_the_same_rules_shared() -> None:
    for path in sorted(SPECS.glob("**/*.arch")):
        spec = archspec.load(path)
        if not spec.ok or spec.network is None or not spec.network.complete:
            continue
        rules = cost.layer_rules(spec.network, spec.shapes)
        assert rules == _fresh(spec.network, spec.shapes), path
        assert len({id(rule) for rule in rules}) == _distinct(spec.network, spec.shapes), path


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks(max_size=12, max_channels=6))
def test_random_networks_read_the_same_rules_shared(network: Network) -> None:
    """Repeats, blocks, joins and every kind archspec.testing draws."""
    diags = Diagnostics()
    shapes = infer(network, diags)
    assert not diags.has_errors
    rules = cost.layer_rules(network, shapes)
    assert rules == _fresh(network, shapes)
    assert len({id(rule) for rule in rules}) == _distinct(network, shapes)


def _runs_one_layer_at_a_time(network: Network) -> list[tuple[int, int]]:
    """analysis.units.runs written plainly: a layer goes on with the run before it where
    neither is a join, it reads the layer before alone, and nothing else reads that layer."""
    readers = Counter(name for layer in network.layers for name in layer.inputs)
    joins = {kind.name for kind in reg.JOINS}
    found: list[tuple[int, int]] = []
    for at, layer in enumerate(network.layers):
        before = network.layers[at - 1] if at else None
        if before is not None and layer.kind not in joins and before.kind not in joins \
                and layer.inputs == (before.name,) and readers[before.name] == 1:
            found[-1] = (found[-1][0], at)
        else:
            found.append((at, at))
    return found


@settings(max_examples=60, deadline=None)
@given(networks(max_size=12, max_channels=6))
def test_the_modules_runs_are_found_a_list_at_a_time_as_one_layer_at_a_time(
        network: Network) -> None:
    assert units.runs(network) == _runs_one_layer_at_a_time(network)
