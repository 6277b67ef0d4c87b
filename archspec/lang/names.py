"""Naming: expanded nodes become IR layers, named by the user or after their kind (`conv3`)."""

from __future__ import annotations

from archspec.core.diagnostics import Diagnostics
from archspec.core.source import Span
from archspec.ir import INPUT_NODE, Layer
from archspec.kinds import registry as reg
from archspec.lang.expand import Node


def finish(nodes: list[Node], header_activation: bool, diags: Diagnostics) -> list[Layer]:
    """The nodes as layers: the classifier's implicit activation dropped (when the header
    adds one), every layer named, inputs referring to names."""
    if header_activation:
        _drop_classifier_activation(nodes)
        _warn_double_activation(nodes, diags)
    _warn_softmax_output(nodes, diags)
    alias: dict[int, int] = {}
    for index, node in enumerate(nodes, start=1):
        if node.removed:
            alias[index] = node.inputs[0]
    names = _names(nodes, diags)
    layers: list[Layer] = []
    for index, node in enumerate(nodes, start=1):
        if node.removed:
            continue
        inputs = []
        for i in node.inputs:
            while i in alias:
                i = alias[i]
            inputs.append(names.get(i, INPUT_NODE))
        layers.append(Layer(
            name=names[index], kind=node.kind, args=node.args, inputs=tuple(inputs),
            span=node.span, written=node.written, implicit=node.implicit,
            origin=names.get(node.origin) if node.origin else None, scopes=node.scopes,
            named=node.user_name is not None and names[index] == node.user_name))
    return layers


def _drop_classifier_activation(nodes: list[Node]) -> None:
    last = None
    for index, node in enumerate(nodes, start=1):
        if not node.implicit and reg.kind_of(node.kind).header_activation:
            last = index
    for node in nodes:
        if node.implicit and node.origin == last and \
                reg.kind_of(node.kind).family == "activation":
            node.removed = True


def _warn_double_activation(nodes: list[Node], diags: Diagnostics) -> None:
    """A written activation right after the one the `activation` header inserted."""
    for node in nodes:
        if node.implicit or node.removed or reg.kind_of(node.kind).family != "activation":
            continue
        before = nodes[node.inputs[0] - 1] if node.inputs[0] else None
        if before is not None and before.implicit and not before.removed \
                and reg.kind_of(before.kind).family == "activation":
            origin = nodes[(before.origin or 1) - 1]
            diags.warning(
                "activation", f"`{node.written}` follows `{origin.written}`, which the "
                f"`activation` header already follows with {before.kind}: two activations "
                "in a row", node.span, hint=f"remove `{node.written}`, or the `activation` header")


def _warn_softmax_output(nodes: list[Node], diags: Diagnostics) -> None:
    """A network that ends in SOFTMAX: training's cross-entropy takes logits and applies
    log-softmax itself, so the softmax would be applied twice."""
    last = next((n for n in reversed(nodes) if not n.removed), None)
    if last is not None and last.kind == "SOFTMAX":
        diags.warning(
            "softmax", "the network ends in SOFTMAX, but `archspec train`'s cross-entropy "
            "applies log-softmax to the output itself: the scores go through softmax twice, "
            "which trains slowly and to a worse loss", last.span,
            hint="end with the classifier's FC; apply softmax when you read probabilities out")


def _names(nodes: list[Node], diags: Diagnostics) -> dict[int, str]:
    names: dict[int, str] = {}
    used: dict[str, Span | None] = {}  # a user's name → where; generated → None
    for index, node in enumerate(nodes, start=1):
        if node.user_name is None or node.removed:
            continue
        if node.user_name == INPUT_NODE:
            diags.error("name", f"`{INPUT_NODE}` names the network's input; choose "
                        "another name", node.name_span or node.span)
            continue
        if node.user_name in used:
            first = used.get(node.user_name)
            hint = f"the first is at line {first.line}" if first else None
            if first is not None and first == node.name_span:
                hint = "a named layer inside a repeat or block is copied; remove the name"
            diags.error("name", f"the name `{node.user_name}` is used twice",
                        node.name_span or node.span, hint=hint)
            continue
        used[node.user_name] = node.name_span or node.span
        names[index] = node.user_name
    counters: dict[str, int] = {}
    for index, node in enumerate(nodes, start=1):
        if node.removed or node.implicit:
            continue
        short = reg.kind_of(node.kind).short
        counters[short] = counters.get(short, 0) + 1  # named layers keep their place
        if index not in names:
            joint = "_" if short[-1].isdigit() else ""  # relu6_1, not relu61
            names[index] = _fresh(f"{short}{joint}{counters[short]}", used)
    for index, node in enumerate(nodes, start=1):
        if node.removed or index in names:
            continue
        base = names.get(node.origin or 0, "layer")
        names[index] = _fresh(f"{base}_{reg.kind_of(node.kind).short}", used)
    return names


def _fresh(name: str, used: dict[str, Span | None]) -> str:
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{name}_{n}"
    used[candidate] = None
    return candidate
