"""Static analyses over the IR and its shapes: parameters, work, receptive fields, memory.

Pure functions that read the registry's rules (`cost`, `window`, `saves`, `view`,
`in_place`, `global_view`); no kind is special-cased here and torch is never imported.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from archspec.catalog import Checkpoint
from archspec.ir import INPUT_NODE, Layer, Network, Shape
from archspec.kinds import registry as reg
from archspec.lang.shapes import Shapes

# A number of bytes, then B, or a prefix (k or K, M, G, T) with an optional i (1024s) and B.
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:([kKMGT])(i)?)?(B)?\s*")
_BITS = re.compile(r"\s*\d+(?:\.\d+)?\s*[kmgtKMGT]?i?b\s*")
_POWERS = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4}


class Field(NamedTuple):
    """A receptive field (input pixels one output value sees) and its jump (effective
    stride: input pixels between neighbouring output values), both height by width."""

    size: tuple[int, int]
    jump: tuple[int, int]
    grid: tuple[int, int]  # the positions the layer's output values sit on


def shape_of(shapes: Shapes, name: str) -> Shape:
    shape = shapes[name]
    if shape is None:
        raise ValueError(f"{name} has no shape: analyse only a valid spec")
    return shape


def input_shape(layer: Layer, shapes: Shapes) -> Shape:
    """The shape a layer reads (its first input's; joins read several of one size)."""
    return shape_of(shapes, layer.inputs[0])


def layer_cost(layer: Layer, shapes: Shapes, inp: Shape | None = None) -> reg.Cost:
    """The registry's cost rule for one layer; `inp` overrides the input shape for a folded
    row whose first member is a flatten (the formula then names the unflattened fan-in)."""
    if layer.args is None:
        raise ValueError(f"{layer.name} lacks arguments: analyse only a complete spec")
    kind = reg.kind_of(layer.kind)
    return kind.cost(layer.args, inp or input_shape(layer, shapes), shape_of(shapes, layer.name))


def values(shapes: Shapes) -> dict[str, int]:
    """Values per sample of every tensor (the input and each layer's output), by name:
    worked out once for the analyses that count them."""
    counts = {name: math.prod(shape) for name, shape in shapes.items() if shape is not None}
    if len(counts) < len(shapes):
        shape_of(shapes, next(name for name in shapes if name not in counts))  # raises
    return counts


def new_activations(layer: Layer, values: Mapping[str, int]) -> int:
    """Values a layer adds to memory in the forward pass, per sample: its output, or nothing
    for a view or a layer that may run in place (CS231n's count, ReLU folded into its CONV).
    `values`: `values(shapes)`."""
    kind = reg.kind_of(layer.kind)
    if kind.view or kind.in_place:
        return 0
    return values[layer.name]


def layer_costs(network: Network, shapes: Shapes) -> dict[str, reg.Cost]:
    """Every layer's cost rule, by name: computed once for the analyses that read them."""
    return {layer.name: layer_cost(layer, shapes) for layer in network.layers}


def torchinfo_macs(layer: Layer, cost: reg.Cost, shapes: Shapes) -> int:
    """Mult-adds per sample as torchinfo 1.8 counts them: every parameter (bias included)
    once per output position for a layer whose weights slide over its input in a window (a
    convolution: torchinfo's `Conv*` modules), once per sample for any other. `cost` is the
    layer's (`layer_cost`)."""
    kind = reg.kind_of(layer.kind)
    params = cost.weights + cost.biases
    if not params or kind.family != "conv" or layer.args is None:
        return params
    return params * math.prod(shape_of(shapes, layer.name)[1:])


def receptive_fields(network: Network, shapes: Shapes) -> dict[str, Field | None]:
    """Receptive field and jump of every tensor, branch-aware (a join takes the largest of the
    inputs its `field_from` names: all, or for a multiply the map and not its broadcast
    gate); None throughout for a flat input, which has no pixels."""
    fields: dict[str, Field | None] = {INPUT_NODE: None}
    if len(network.input.shape) == 3:
        _c, h, w = network.input.shape
        fields[INPUT_NODE] = Field((1, 1), (1, 1), (h, w))
    for layer in network.layers:
        kind = reg.kind_of(layer.kind)
        field = fields[layer.inputs[0]]
        if kind.join is not None:
            field = _joined(kind, layer, fields, shapes)
        elif field is not None:
            field = _through(kind, layer, field, shapes)
        fields[layer.name] = field
    return fields


def _through(kind: reg.LayerKind, layer: Layer, field: Field, shapes: Shapes) -> Field:
    """The field of a layer's output, from its input's: grown by its window or the field
    `step` of its kind, or one window over the whole grid (a global view)."""
    if kind.window is not None and layer.args is not None and (
            window := kind.window(layer.args)) is not None:
        out = shape_of(shapes, layer.name)
        return _slide(field, (window.extent(0), window.extent(1)), window.stride,
                      (out[1], out[2]))
    if kind.step is not None and layer.args is not None:
        step = kind.step(layer.args, input_shape(layer, shapes))
        out = shape_of(shapes, layer.name)
        return _slide(field, step.extent, step.stride, (out[1], out[2]), step.up)
    if kind.global_view:  # one window over the whole grid
        return _slide(field, field.grid, field.grid, (1, 1))
    return field


def _joined(kind: reg.LayerKind, layer: Layer, fields: dict[str, Field | None],
            shapes: Shapes) -> Field | None:
    """A join's field: the largest of the branches that set it (`field_from`)."""
    ins = [fields[name] for name in layer.inputs]
    if any(f is None for f in ins):
        return None
    known = [f for f in ins if f is not None]
    sets = kind.field_from([shape_of(shapes, name) for name in layer.inputs],
                           shape_of(shapes, layer.name))
    known = [f for f, used in zip(known, sets, strict=True) if used] or known
    return Field((max(f.size[0] for f in known), max(f.size[1] for f in known)),
                 (max(f.jump[0] for f in known), max(f.jump[1] for f in known)), known[0].grid)


def _slide(field: Field, extent: tuple[int, int], stride: tuple[int, int],
           grid: tuple[int, int], up: tuple[int, int] = (1, 1)) -> Field:
    """A window of `extent` taken every `stride` positions: the field grows by the extent in
    the input's jumps, and the jump multiplies by the stride; upsampling by `up` divides it
    (whole input pixels, at least 1)."""
    return Field((field.size[0] + (extent[0] - 1) * field.jump[0],
                  field.size[1] + (extent[1] - 1) * field.jump[1]),
                 (max(1, field.jump[0] * stride[0] // up[0]),
                  max(1, field.jump[1] * stride[1] // up[1])), grid)


class Kept(NamedTuple):
    """Bytes autograd keeps for backward, split by how they scale with the batch; `copies`
    are autocast's low-precision copies of the layer's weights, kept for its backward."""

    per_sample: int
    per_batch: int
    copies: int = 0


class Autocast(NamedTuple):
    """Mixed precision as the planner follows it: whose op lists apply (`device`) and the
    low-precision type's bytes per value; the parameters and the input stay float32."""

    device: str
    low: int


FP32 = 4  # bytes of a float32 value


class Piece(NamedTuple):
    """A piece of forward with one input and one output: its layers in order, and the path
    of the one layer, block call or named group it is (None for a branched group)."""

    layers: tuple[str, ...]
    unit: tuple[str, ...] | None


def checkpoint_pieces(network: Network) -> list[Piece]:
    """The network's forward cut wherever one tensor alone is alive: a piece has one input
    and one output, so a run of pieces can be recomputed from its input alone. A block call
    and a named group with joins are never cut inside (each is one call of its own class); a
    named group written as a plain chain (an nn.Sequential) is cut between its items; a
    branched group (a fork to its join) is one piece. Every layer counts, implicit ones and
    joins included: the table's rows without --fold."""
    layers = network.layers
    chains = {m.path for m in network.modules if m.kind == "group" and m.sequential}
    born = {INPUT_NODE: -1} | {layer.name: i for i, layer in enumerate(layers)}
    last = dict(born)
    for step, layer in enumerate(layers):
        for name in layer.inputs:
            last[name] = step
    last[network.output] = len(layers)
    crossing = [0] * (len(layers) + 2)  # tensors alive across gap g (after layer g - 1)
    for name, step in born.items():
        if last[name] > step:
            crossing[step + 1] += 1
            crossing[last[name] + 1] -= 1
    units = [_unit(layer.path, chains) for layer in layers]
    pieces: list[Piece] = []
    start, alive = 0, crossing[0]
    for step, layer in enumerate(layers):
        alive += crossing[step + 1]
        end = step + 1 == len(layers) or units[step + 1] != units[step]
        if end and alive == 1 and last[layer.name] > step:
            pieces.append(Piece(tuple(lay.name for lay in layers[start:step + 1]),
                                units[step] if units[start] == units[step] else None))
            start = step + 1
    return pieces


def _unit(path: tuple[str, ...], chains: set[tuple[str, ...]]) -> tuple[str, ...]:
    """What a layer at `path` belongs to that forward calls whole: the layer itself, or the
    outermost block call or named group with joins around it, looking into plain chains."""
    depth = 1
    while depth < len(path) and path[:depth] in chains:
        depth += 1
    return path[:depth]


def segment_runs(sizes: Sequence[int], every: int) -> list[list[int]]:
    """Pieces of `sizes` layers grouped into segments of at most `every` layers, in order (a
    larger piece a segment of its own): the indices of each segment's pieces. The generated
    module's checkpoint_every groups PIECES by this same rule."""
    runs: list[list[int]] = []
    count = 0
    for index, size in enumerate(sizes):
        if not runs or count + size > every:
            runs.append([])
            count = 0
        runs[-1].append(index)
        count += size
    return runs


def checkpoint_segments(network: Network, checkpoint: Checkpoint = "blocks"
                        ) -> dict[str, tuple[str, ...]]:
    """Each checkpointed layer with its segment: the layers the generated module's
    build(checkpoint=...) runs under torch.utils.checkpoint. `"blocks"`: each outermost
    block call, named by its path. A number N: the pieces of the top-level forward
    (`checkpoint_pieces`) N layers at a time (`segment_runs`), each segment but the last
    (whose forward backward needs at once, as torch's checkpoint_sequential leaves it),
    named by its first and last layers. Empty when nothing would be checkpointed."""
    segments: dict[str, tuple[str, ...]] = {}
    if checkpoint == "blocks":
        calls = {module.path for module in network.modules if module.kind == "block"}
        for layer in network.layers:
            outer = next((layer.path[:i] for i in range(1, len(layer.path))
                          if layer.path[:i] in calls), None)
            if outer is not None:
                segments[layer.name] = outer
        return segments
    pieces = checkpoint_pieces(network)
    for run in segment_runs([len(piece.layers) for piece in pieces], checkpoint)[:-1]:
        names = [name for index in run for name in pieces[index].layers]
        for name in names:
            segments[name] = (names[0], names[-1])
    return segments


def checkpoint_problem(network: Network, checkpoint: Checkpoint) -> str | None:
    """Why `checkpoint` would checkpoint nothing in this network, or None."""
    if checkpoint_segments(network, checkpoint):
        return None
    if checkpoint == "blocks":
        return "checkpoint blocks: the spec calls no block"
    if len(checkpoint_pieces(network)) == 1:
        return (f"checkpoint every {checkpoint}: the network has no place between its layers "
                "where one tensor alone is alive, so it makes one segment")
    return (f"checkpoint every {checkpoint}: all {len(network.layers)} layers make one "
            "segment, the last, which runs without checkpointing; choose N below "
            f"{len(network.layers)}")


class Keeping(NamedTuple):
    """Who keeps what for backward: `tensors` names, per layer, the tensors (by the layer
    that allocated each, see `storages`) its backward node holds, `frames` per checkpointed
    segment whose layers save anything the inputs its checkpoint keeps instead; `extra` a
    layer's own further bytes (statistics, indices, masks, casts, weight copies); `width`
    the bytes a value of each tensor; `recorded` whether a layer's output needs a gradient
    (autograd records it)."""

    storages: dict[str, str]
    width: dict[str, int]
    recorded: dict[str, bool]
    tensors: dict[str, tuple[str, ...]]
    extra: dict[str, Kept]
    frames: dict[tuple[str, ...], tuple[str, ...]]


def saved_for_backward(network: Network, values: Mapping[str, int], keep: Keeping
                       ) -> dict[str, Kept]:
    """What autograd keeps for the backward pass (`keep`, from `keeping`), attributed to the
    layer (or `input`) whose tensor it is, the input batch included. Each tensor counts once
    however many layers or checkpoints keep it; a view is its source's tensor. `values`:
    `values(shapes)`."""
    saved = {INPUT_NODE}  # the input batch is on the device whoever saves it
    for names in (*keep.tensors.values(), *keep.frames.values()):
        saved.update(names)
    kept: dict[str, Kept] = {}
    for name in (INPUT_NODE, *(layer.name for layer in network.layers)):
        own = keep.extra.get(name, _NONE_KEPT)
        tensor = values[name] * keep.width[name] if name in saved else 0
        kept[name] = Kept(own.per_sample + tensor, own.per_batch, own.copies)
    return kept


def keeping(network: Network, shapes: Shapes, bytes_per_value: int,
            autocast: Autocast | None = None, batch: int = 2,
            segments: Mapping[str, tuple[str, ...]] | None = None,
            costs: Mapping[str, reg.Cost] | None = None) -> Keeping:
    """What each layer's backward node keeps, as the module archspec builds runs it (nothing
    in place). Autograd records a layer only once a gradient flows through it: layers before
    the first one with parameters (a pool or an activation on the input) keep nothing. In a
    checkpointed segment (`segments`: layer -> segment) the layers keep nothing; the
    checkpoint keeps the segment's inputs instead, and only when one of its layers would
    save something (else nothing holds the checkpoint's frame, which frees them).

    Under `autocast` each tensor has its own type, from each kind's `autocast` rule for the
    device: a layer that casts its input keeps the cast copy (a new tensor for each layer
    that casts it: autocast caches only parameters), and one that runs at low precision keeps
    the low-precision copy of its weights. A kind that computes on a contiguous copy of a
    strided input (GROUPNORM after a channel SLICE) keeps that copy; with a `batch` of one a
    slice is contiguous and no copy is made. `costs`: each layer's `layer_cost`, when the
    caller has them."""
    costs = costs or layer_costs(network, shapes)
    storage = _storage(network)
    segments = segments or {}
    strided = _strided(network, shapes) if batch > 1 else set()
    width = {INPUT_NODE: FP32 if autocast else bytes_per_value}  # bytes a value, per tensor
    tensors: dict[str, tuple[str, ...]] = {}
    extra: dict[str, Kept] = {}
    recorded = {INPUT_NODE: False}
    entering: dict[tuple[str, ...], dict[str, None]] = {}  # each segment's inputs, in order
    saving: set[tuple[str, ...]] = set()  # the segments whose layers save anything
    for layer in network.layers:
        name, inputs = layer.name, layer.inputs
        cost = costs[name]
        kind = reg.kind_of(layer.kind)
        rule = _autocast_rule(kind, autocast)
        ins = [width[storage[read]] for read in inputs]
        runs = _runs_width(rule.runs, ins, autocast)
        if storage[name] == name:
            width[name] = FP32 if rule.out_fp32 else runs
        recorded[name] = grad = bool(cost.weights or cost.biases) or any(
            map(recorded.__getitem__, inputs))
        adds: dict[str, None] = {}  # the tensors this layer keeps, once each, in order
        own = _NONE_KEPT
        if layer.args is None or not grad:
            pass  # no gradient flows through it (or a sketch's layer): it keeps nothing
        elif kind.join is not None:
            keeps = kind.saves_inputs([recorded[read] for read in inputs])
            adds.update((storage[read], None)
                        for read, keep in zip(inputs, keeps, strict=True) if keep)
        else:
            rule_saved = kind.saves(layer.args, input_shape(layer, shapes),
                                    shape_of(shapes, name))
            casts = 0
            if rule_saved.input:
                for read, have in zip(inputs, ins, strict=True):
                    if kind.contiguous_input and read in strided:  # its own contiguous copy
                        casts += math.prod(shape_of(shapes, read)) * runs
                    elif have == runs:
                        adds[storage[read]] = None
                    else:  # autocast's cast of this input, made for this layer
                        casts += math.prod(shape_of(shapes, read)) * runs
            if rule_saved.output:
                adds[storage[name]] = None
            stat = FP32 if autocast and rule.stats_fp32 else runs
            copies = cost.weights * runs if autocast and rule.runs == "low" and (
                not rule.copy_needs_input_grad or recorded[inputs[0]]) else 0
            if rule_saved.extra or rule_saved.extra_bytes or casts or rule_saved.stats or copies:
                own = Kept(rule_saved.extra * stat + rule_saved.extra_bytes + casts,
                           rule_saved.stats * stat, copies)
        segment = segments.get(name)
        if segment is None:
            if adds:
                tensors[name] = tuple(adds)
            if own is not _NONE_KEPT:
                extra[name] = own
            continue
        entering.setdefault(segment, {}).update(
            (storage[read], None) for read in inputs if segments.get(read) != segment)
        if adds or own is not _NONE_KEPT:
            saving.add(segment)
    frames = {segment: tuple(entering[segment]) for segment in entering if segment in saving}
    return Keeping(storage, width, recorded, tensors, extra, frames)


def _runs_width(runs: reg.Runs, ins: list[int], autocast: Autocast | None) -> int:
    """The bytes a value of the type a layer computes in: autocast's low type, float32, its
    (first) input's, or the widest of its inputs'."""
    if runs == "input":
        return ins[0]
    if runs == "widest":
        return max(ins)
    if runs == "fp32":
        return FP32
    return autocast.low if autocast else 0


_AT_INPUT = reg.Autocast("input")  # every layer without autocast
_NONE_KEPT = Kept(0, 0)


def _autocast_rule(kind: reg.LayerKind, autocast: Autocast | None) -> reg.Autocast:
    """The kind's rule on the policy's device; without autocast every layer runs at its
    input's type (joins too: one type throughout)."""
    if autocast is None:
        return _AT_INPUT
    assert kind.autocast is not None, f"{kind.name} states no autocast rule"
    return kind.autocast[autocast.device]


def inference_peak(network: Network, values: Mapping[str, int],
                   spans: tuple[dict[str, int], dict[str, int]] | None = None) -> int:
    """The most activation values alive at once in a forward pass without autograd, per
    sample: each tensor lives from the layer that makes it to its last reader (`lifetimes`,
    or `spans` when already known). `values`: `values(shapes)`."""
    born, last_use = spans or lifetimes(network)
    change = [0] * (len(network.layers) + 2)  # values allocated (+) and freed (-) at each step
    for name, step in born.items():
        size = values[name]
        change[step] += size
        change[last_use[name] + 1] -= size
    alive, peak = 0, 0
    for delta in change:
        alive += delta
        peak = max(peak, alive)
    return peak


def lifetimes(network: Network, storage: Mapping[str, str] | None = None
              ) -> tuple[dict[str, int], dict[str, int]]:
    """The step (layer index) at which each tensor is made and the last at which the compiled
    module's `forward` holds it: its last reader, the input (the caller holds it) and the
    output to the end (`len(layers)`); views share their source's storage (`storage`, the
    `Keeping`'s when at hand). The `forward` frees each as this counts (a `del` after its
    last reader), and a block or named group is a submodule whose caller holds its argument
    until it returns: a tensor entering one lives to the submodule's last layer."""
    storage = storage or _storage(network)
    end = len(network.layers)
    born = {INPUT_NODE: 0}
    last_use = {INPUT_NODE: 0}
    path = {INPUT_NODE: ()} | {layer.name: layer.path[:-1] for layer in network.layers}
    entering: dict[tuple[str, ...], set[str]] = {}  # submodule -> tensors its caller holds
    module_end: dict[tuple[str, ...], int] = {}
    for step, layer in enumerate(network.layers):
        name = layer.name
        if storage[name] == name:
            born[name] = last_use[name] = step
        for read in layer.inputs:  # in order: the last reader sets it last
            last_use[storage[read]] = step
        inside = path[name]
        for depth in range(1, len(inside) + 1):
            module = inside[:depth]
            module_end[module] = step
            entering.setdefault(module, set()).update(
                storage[read] for read in layer.inputs if path[read][:depth] != module)
    for module, names in entering.items():
        for tensor in names:
            last_use[tensor] = max(last_use[tensor], module_end[module])
    last_use[INPUT_NODE] = last_use[storage[network.output]] = end
    return born, last_use


def _storage(network: Network) -> dict[str, str]:
    """The tensor (named by the layer that allocated it) behind every layer's output."""
    storage = {INPUT_NODE: INPUT_NODE}
    for layer in network.layers:
        kind = reg.kind_of(layer.kind)
        same = kind.view or (layer.args is not None and kind.returns_input(layer.args))
        storage[layer.name] = storage[layer.inputs[0]] if same else layer.name
    return storage


def _strided(network: Network, shapes: Shapes) -> set[str]:
    """The layers whose output is a view that skips values of each sample (a channel
    SLICE, and views of it): not contiguous once the batch holds more than one sample."""
    strided: set[str] = set()
    for layer in network.layers:
        if layer.args is None:
            continue
        kind = reg.kind_of(layer.kind)
        same = kind.view or kind.returns_input(layer.args)
        if kind.strided(layer.args, input_shape(layer, shapes)) or (
                same and layer.inputs[0] in strided):
            strided.add(layer.name)
    return strided


def largest_batch(fixed: int, per_sample: int, budget: int) -> int:
    """The largest batch whose memory (fixed + batch * per_sample bytes) fits the budget."""
    return max(0, budget - fixed) // per_sample


def parse_size(text: str) -> int:
    """`16GiB` → 17179869184, `16GB` → 16 * 10**9, `512MiB`, `2048` (bytes). A unit needs
    its B: `16G` could be either power, and a lower-case b means bits (`16Gb`), refused."""
    match = _SIZE.fullmatch(text)
    if match is None or (match.group(2) and not match.group(4)):
        why = ("a lower-case b means bits" if _BITS.fullmatch(text)
               else "not a memory size")
        raise ValueError(f"{why}: {text!r} (write bytes with B/KB/MB/GB or KiB/MiB/GiB, "
                         "e.g. 16GiB, 500MB or 2048)")
    prefix = (match.group(2) or "").upper()
    base = 1024 if match.group(3) else 1000
    return int(float(match.group(1)) * base ** _POWERS[prefix])
