"""Naming: expanded nodes become IR layers, named by the user or after their kind (`conv3`)."""

from __future__ import annotations

from archspec.core.diagnostics import Diagnostics
from archspec.core.model import made
from archspec.core.source import Span
from archspec.ir import INPUT_NODE, Layer, Module
from archspec.kinds import registry as reg
from archspec.lang.expand import Box, Node


def finish(nodes: list[Node], boxes: list[Box], header_activation: bool,
           diags: Diagnostics) -> tuple[list[Layer], list[Module]]:
    """The nodes as layers and the boxes as modules: the classifier's implicit activation
    dropped (when the header adds one), every layer named by its path in the hierarchy,
    inputs referring to names."""
    if header_activation:
        _drop_classifier_activation(nodes)
        _warn_double_activation(nodes, diags)
    _warn_softmax_output(nodes, diags)
    paths, names, box_paths, sequential = _paths(nodes, boxes, diags)
    # What each input reads: a removed node's input stands for it (nodes read earlier ones).
    sources = names
    for index, node in enumerate(nodes, start=1):
        if node.removed:
            if sources is names:
                sources = dict(names)
            sources[index] = sources.get(node.inputs[0], INPUT_NODE)
    layers: list[Layer] = []
    read = sources.get
    for index, node in enumerate(nodes, start=1):
        if node.removed:
            continue
        path = paths[index]
        inputs = node.inputs
        user = node.user_name
        layers.append(made(Layer, {
            "name": names[index], "kind": node.kind, "args": node.args,
            "inputs": (read(inputs[0], INPUT_NODE),) if len(inputs) == 1
            else tuple([read(i, INPUT_NODE) for i in inputs]),
            "span": node.span, "written": node.written, "implicit": node.implicit,
            "origin": names.get(node.origin) if node.origin else None, "scopes": node.scopes,
            "named": user is not None and path[-1] == user, "path": path}))
    modules = [Module.model_construct(
                   path=box_paths[number], kind="block" if box.kind == "block" else "group",
                   block=box.block, label=box.label, span=box.span, params=box.params or {},
                   sequential=sequential[number])
               for number, box in enumerate(boxes) if number in box_paths and number]
    return layers, modules


def _paths(nodes: list[Node], boxes: list[Box], diags: Diagnostics) -> tuple[
        dict[int, tuple[str, ...]], dict[int, str], dict[int, tuple[str, ...]], dict[int, bool]]:
    """Each live node's path and name (the path dotted), each live box's path, and whether
    each box is a plain chain (its items keyed by position) rather than a module with a
    `forward` of its own."""
    live: set[int] = set()  # boxes holding a layer
    steps: dict[int, list[int]] = {}  # each box's live steps, in order (its items are layers)
    removed = False
    for index, node in enumerate(nodes, start=1):
        if node.removed:
            removed = True
            continue
        number = node.box
        while number not in live:
            live.add(number)
            number = boxes[number].parent
        if reg.forward_step(node.kind, node.implicit):
            steps.setdefault(node.box, []).append(index)
    sequential = {number: number != 0 and number not in steps for number in live}
    # A named group is keyed by position even with steps (an nn.Sequential with a forward);
    # a block with joins keys its unnamed items by kind.
    positional = {number: sequential[number] or (number != 0 and boxes[number].kind == "group")
                  for number in live}
    paths: dict[int, tuple[str, ...]] = {}
    names: dict[int, str] = {}
    box_paths: dict[int, tuple[str, ...]] = {0: ()}
    for number, box in enumerate(boxes):
        if number not in live:
            continue
        prefix = box_paths[number]
        dotted = ".".join(prefix)
        items = box.items
        if removed or len(live) < len(boxes):
            items = [i for i in items if (i < 0 and -i in live)
                     or (i > 0 and not nodes[i - 1].removed)]
        keys = _keys(nodes, boxes, items, steps.get(number, []), positional[number], box.kind,
                     diags)
        for item, key in keys.items():
            if item < 0:
                box_paths[-item] = (*prefix, key)
            else:
                paths[item] = (*prefix, key)
                names[item] = f"{dotted}.{key}" if dotted else key
    return paths, names, box_paths, sequential


def _keys(nodes: list[Node], boxes: list[Box], items: list[int], steps: list[int],
          positional: bool, where: str, diags: Diagnostics) -> dict[int, str]:
    """The key of each item and step of one box: the spec's name, else the item's position
    (a plain chain, a named group) or a name after its kind or block (`conv3`, `relu5`,
    `basic2`); in a box keyed by position, a step is named after its kind (`add1`,
    `flatten1`)."""
    keys: dict[int, str] = {}
    used: dict[str, Span | None] = {}  # a user's name → where; generated → None
    for item in items:
        owner = boxes[-item] if item < 0 else nodes[item - 1]
        name = owner.user_name
        if name is None:
            continue
        name_span, span = owner.name_span, owner.span
        if where == "top" and name == INPUT_NODE:
            diags.error("name", f"`{INPUT_NODE}` names the network's input; choose "
                        "another name", name_span or span)
            continue
        if name in used:
            first = used.get(name)
            hint = f"the first is at line {first.line}" if first else None
            if first is not None and first == name_span:
                hint = "a named layer inside a repeat is copied; remove the name, or name " \
                    "the repeat"
            within = "" if where == "top" else f" in this {where}"
            diags.error("name", f"the name `{name}` is used twice{within}", name_span or span,
                        hint=hint)
            continue
        used[name] = name_span or span
        keys[item] = name
    if positional:
        for position, item in enumerate(items):
            keys.setdefault(item, str(position))
        counted: dict[str, int] = {}
        for step in steps:
            short = reg.kind_of(nodes[step - 1].kind).short
            counted[short] = counted.get(short, 0) + 1
            keys[step] = _fresh(f"{_stem(short)}{counted[short]}", used)
        return keys
    counters: dict[str, int] = {}
    shorts: dict[str, tuple[str, str]] = {}  # by kind: its short name and its names' stem
    implicit: list[int] = []  # named after the layer they follow, below
    for item in [*items, *steps]:
        if item > 0:
            node = nodes[item - 1]
            if node.implicit:
                implicit.append(item)
                continue
            found = shorts.get(node.kind)
            if found is None:
                short = reg.kind_of(node.kind).short
                found = shorts[node.kind] = (short, _stem(short))
            short, stem = found
        else:
            short = boxes[-item].block or "group"
            stem = _stem(short)
        count = counters[short] = counters.get(short, 0) + 1  # named layers keep their place
        if item not in keys:
            name = f"{stem}{count}"
            if name in used:
                name = _fresh(name, used)
            else:
                used[name] = None
            keys[item] = name
    for item in implicit:
        node = nodes[item - 1]
        short = reg.kind_of(node.kind).short
        base = keys.get(node.origin or 0)
        keys[item] = _fresh(f"{base}_{short}" if base else short, used)
    return keys


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


def _stem(short: str) -> str:
    """What a generated name's number follows: `conv`, `relu6_` (relu6_1, not relu61)."""
    return f"{short}_" if short[-1].isdigit() else short


def _fresh(name: str, used: dict[str, Span | None]) -> str:
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{name}_{n}"
    used[candidate] = None
    return candidate
