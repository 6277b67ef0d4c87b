"""Static analyses over the IR and its shapes: parameters, work, receptive fields, memory.

Pure functions that read the registry's rules (`cost`, `window`, `saves`, `view`,
`in_place`, `global_view`); no kind is special-cased here and torch is never imported.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from itertools import chain
from operator import attrgetter

from archspec.analysis import units
from archspec.catalog import Checkpoint
from archspec.core.record import Record
from archspec.ir import INPUT_NODE, Layer, Network, Shape
from archspec.kinds import registry as reg
from archspec.lang.shapes import Shapes

# A number of bytes, then B, or a prefix (k or K, M, G, T) with an optional i (1024s) and B.
# Patterns, compiled (and cached by `re`) when a size is first read: most runs read none.
_SIZE = r"\s*(\d+(?:\.\d+)?)\s*(?:([kKMGT])(i)?)?(B)?\s*"
_BITS = r"\s*\d+(?:\.\d+)?\s*[kmgtKMGT]?i?b\s*"
_POWERS = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4}


class Field(Record):
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
    return 0 if layer.kind in _ADDS_NOTHING else values[layer.name]


_ADDS_NOTHING = frozenset(kind.name for kind in reg.KINDS if kind.view or kind.in_place)


class Rule(Record):
    """What the registry's rules say of one layer, from its kind, arguments and shapes alone
    (`layer_rules`): the layers of a long chain of the same words share one."""

    kind: reg.LayerKind
    cost: reg.Cost | None  # None for a sketch's layer (no arguments)
    params: bool  # it has weights or biases
    # How its window or field step moves the receptive field: extent, stride, the output's
    # grid and upsampling; None when neither applies (`kind.global_view` says the rest).
    reach: tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]] | None
    still: bool  # its reach is one pixel at stride 1: the field stays (on the same grid)
    field_from: tuple[bool, ...]  # a join's branches that set its receptive field
    saved: reg.Saved | None  # what autograd keeps of it; None for a join or a sketch's layer
    same: bool  # its output is its input's storage: a view, or its very input (DROPOUT(p=0))
    strided: bool  # its output is a view that skips values of each sample (a channel SLICE)
    # its output is laid out channels last whatever its inputs' layout (LAYERNORM on a map)
    permutes: bool


def layer_rules(network: Network, shapes: Shapes) -> list[Rule]:
    """Every layer's `Rule`, in order, for the analyses that read them: the registry's rules
    run once per distinct kind, arguments and input shapes (as `lang.shapes.infer` runs its
    shape rules, whose output shape they give), which a long network repeats. Analyse only a
    valid spec, with `infer`'s shapes."""
    rules: list[Rule] = []
    known: dict[tuple[object, ...], Rule] = {}
    append = rules.append
    for layer in network.layers:
        args = layer.args
        if args is None:  # a sketch's layer: nothing to share
            append(_rule(layer, None, shapes))
            continue
        # The output's shape follows from the key (`infer` made it with the same rules).
        inputs = layer.inputs
        ins = (shapes[inputs[0]],) if len(inputs) == 1 else tuple(map(shapes.__getitem__, inputs))
        key = reg.rules_key(layer.kind, args, ins)
        rule = known.get(key)
        if rule is None:
            rule = known[key] = _rule(layer, args, shapes)
        append(rule)
    return rules


def _rule(layer: Layer, args: reg.Args | None, shapes: Shapes) -> Rule:
    """A layer's `Rule`, from the registry's rules for its arguments and shapes."""
    kind = reg.kind_of(layer.kind)
    if args is None:
        return Rule(kind, None, False, None, False, (), None, kind.view, False, False)
    out = shape_of(shapes, layer.name)
    ins = [shape_of(shapes, name) for name in layer.inputs]
    inp = ins[0]
    cost = kind.cost(args, inp, out)
    reach = None
    if kind.window is not None and (window := kind.window(args)) is not None:
        reach = ((window.extent(0), window.extent(1)), window.stride, (out[1], out[2]), (1, 1))
    elif kind.step is not None:
        step = kind.step(args, inp)
        reach = (step.extent, step.stride, (out[1], out[2]), step.up)
    join = kind.join is not None
    return Rule(kind, cost, bool(cost.weights or cost.biases), reach,
                reach is not None and reach[0] == reach[1] == reach[3] == (1, 1),
                tuple(kind.field_from(ins, out)) if join else (),
                None if join else kind.saves(args, inp, out),
                kind.view or kind.returns_input(args), kind.strided(args, inp),
                kind.channels_last([False] * len(ins), ins, out))


def layer_costs(network: Network, shapes: Shapes, rules: Sequence[Rule] | None = None
                ) -> dict[str, reg.Cost]:
    """Every layer's cost rule, by name: computed once for the analyses that read them.
    `rules`: `layer_rules`, when the caller has them."""
    if rules is None:
        rules = layer_rules(network, shapes)
    costs: dict[str, reg.Cost] = {}
    for layer, rule in zip(network.layers, rules, strict=True):
        if rule.cost is None:
            raise ValueError(f"{layer.name} lacks arguments: analyse only a complete spec")
        costs[layer.name] = rule.cost
    return costs


def torchinfo_macs(layer: Layer, cost: reg.Cost, shapes: Shapes) -> int:
    """Mult-adds per sample as torchinfo 1.8 counts them: every parameter (bias included)
    once per output position for a layer whose weights slide over its input in a window (a
    convolution: torchinfo's `Conv*` modules), once per sample for any other. `cost` is the
    layer's (`layer_cost`)."""
    params = cost.weights + cost.biases
    if not params or layer.kind not in _CONVS or layer.args is None:
        return params
    return params * math.prod(shape_of(shapes, layer.name)[1:])


_CONVS = frozenset(kind.name for kind in reg.KINDS if kind.family == "conv")


def receptive_fields(network: Network, shapes: Shapes, rules: Sequence[Rule] | None = None
                     ) -> dict[str, Field | None]:
    """Receptive field and jump of every tensor, branch-aware (a join takes the largest of the
    inputs its `field_from` names: all, or for a multiply the map and not its broadcast
    gate); None throughout for a flat input, which has no pixels. `rules`: `layer_rules`,
    when the caller has them."""
    if rules is None:
        rules = layer_rules(network, shapes)
    fields: dict[str, Field | None] = {INPUT_NODE: None}
    if len(network.input.shape) == 3:
        _c, h, w = network.input.shape
        fields[INPUT_NODE] = Field((1, 1), (1, 1), (h, w))
    for layer, rule in zip(network.layers, rules, strict=True):
        field = fields[layer.inputs[0]]
        if rule.field_from:
            field = _joined(rule.field_from, [fields[name] for name in layer.inputs])
        elif field is not None:  # None: a flat tensor, which has no pixels
            if (reach := rule.reach) is not None:
                if not rule.still or field.grid != reach[2]:
                    field = _slide(field, *reach)
            elif rule.kind.global_view:  # one window over the whole grid
                field = _slide(field, field.grid, field.grid, (1, 1))
        fields[layer.name] = field
    return fields


def _joined(sets: tuple[bool, ...], ins: list[Field | None]) -> Field | None:
    """A join's field: the largest of the branches that set it (`sets`, its `field_from`)."""
    if any(f is None for f in ins):
        return None
    known = [f for f in ins if f is not None]
    known = [f for f, used in zip(known, sets, strict=True) if used] or known
    return Field((max(f.size[0] for f in known), max(f.size[1] for f in known)),
                 (max(f.jump[0] for f in known), max(f.jump[1] for f in known)), known[0].grid)


def _slide(field: Field, extent: tuple[int, int], stride: tuple[int, int],
           grid: tuple[int, int], up: tuple[int, int] = (1, 1)) -> Field:
    """A window of `extent` taken every `stride` positions: the field grows by the extent in
    the input's jumps, and the jump multiplies by the stride; upsampling by `up` divides it
    (whole input pixels, at least 1)."""
    (size0, size1), (jump0, jump1), _grid = field
    next0, next1 = jump0 * stride[0] // up[0], jump1 * stride[1] // up[1]
    return Field((size0 + (extent[0] - 1) * jump0, size1 + (extent[1] - 1) * jump1),
                 (next0 if next0 > 1 else 1, next1 if next1 > 1 else 1), grid)


class Kept(Record):
    """Bytes autograd keeps for backward, split by how they scale with the batch; `copies`
    are autocast's low-precision copies of the layer's weights, kept for its backward."""

    per_sample: int
    per_batch: int
    copies: int = 0


_NOTHING = Kept(0, 0)


class Autocast(Record):
    """Mixed precision as the planner follows it: whose op lists apply (`device`) and the
    low-precision type's bytes per value; the parameters and the input stay float32."""

    device: str
    low: int


FP32 = 4  # bytes of a float32 value


class Piece(Record):
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


class Keeping(Record):
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
    saved.update(chain.from_iterable(keep.tensors.values()),
                 chain.from_iterable(keep.frames.values()))
    extra, width = keep.extra, keep.width
    kept: dict[str, Kept] = {}
    made: dict[tuple[int, int], Kept] = {}  # one Kept for equal figures (`keeping`'s are shared)
    for name in keep.recorded:  # the input, then every layer
        tensor = values[name] * width[name] if name in saved else 0
        own = extra.get(name, _NOTHING)
        key = (id(own), tensor)
        found = made.get(key)
        if found is None:
            found = made[key] = Kept(own.per_sample + tensor, own.per_batch, own.copies)
        kept[name] = found
    return kept


def keeping(network: Network, shapes: Shapes, bytes_per_value: int,
            autocast: Autocast | None = None, batch: int = 2,
            segments: Mapping[str, tuple[str, ...]] | None = None,
            rules: Sequence[Rule] | None = None) -> Keeping:
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
    slice is contiguous and no copy is made (unless the map is laid out channels last). A
    flatten of a map laid out channels last (after a LAYERNORM) is a copy, which a following
    FC keeps. `rules`: `layer_rules`, when the caller has them."""
    if rules is None:
        rules = layer_rules(network, shapes)
    segments = segments or {}
    split = batch > 1  # whether a channel slice skips values (one sample: if channels last)
    storage = {INPUT_NODE: INPUT_NODE}  # the tensor behind each output
    strided: set[str] = set()  # the outputs that skip values of each sample
    # the outputs laid out channels last, followed only where a layer makes one
    last: set[str] | None = set() if any(map(attrgetter("permutes"), rules)) else None
    width = {INPUT_NODE: FP32 if autocast else bytes_per_value}  # bytes a value, per tensor
    tensors: dict[str, tuple[str, ...]] = {}
    extra: dict[str, Kept] = {}
    recorded = {INPUT_NODE: False}
    entering: dict[tuple[str, ...], dict[str, None]] = {}  # each segment's inputs, in order
    saving: set[tuple[str, ...]] = set()  # the segments whose layers save anything
    owns: dict[tuple[int, int, int, int], Kept] = {}  # one Kept for equal figures
    for layer, rule in zip(network.layers, rules, strict=True):
        name, inputs = layer.name, layer.inputs
        first = inputs[0]
        source = storage[first]
        same = rule.same
        cost = rule.cost
        kind = rule.kind
        # its input laid out channels last where that differs from contiguous
        permuted = last is not None and cost is not None and first in last and _permuted(
            shape_of(shapes, first))
        if last is not None and cost is not None:
            if kind.channels_last([read in last for read in inputs],
                                  [shape_of(shapes, read) for read in inputs],
                                  shape_of(shapes, name)):
                last.add(name)
            elif same and kind.copies_channels_last and permuted:
                same = False  # reshaped: a copy
        tensor = storage[name] = source if same else name
        # a channel slice skips values with more than one sample, or of one sample laid out
        # channels last (each position's channels are together); so does a view of a slice
        if (rule.strided and (split or permuted)) or (
                same and cost is not None and first in strided):
            strided.add(name)
        if len(inputs) == 1:
            ins = None
            have = width[source]
            grad = rule.params or recorded[first]
        else:
            ins = [width[storage[read]] for read in inputs]
            have = ins[0]
            grad = rule.params or any(map(recorded.__getitem__, inputs))
        if autocast is None:
            policy, runs = _AT_INPUT, have
        else:
            policy = _autocast_rule(kind, autocast)
            runs = have if policy.runs == "input" else _runs_width(policy.runs, ins or [have],
                                                                  autocast)
        if not same:
            width[name] = FP32 if policy.out_fp32 else runs
        recorded[name] = grad
        keeps: tuple[str, ...] = ()  # the tensors this layer keeps, once each, in order
        own = None  # its own further bytes
        saved = rule.saved
        # A layer no gradient flows through (or a sketch's) keeps nothing.
        if cost is not None and grad and saved is None:  # a join
            flags = kind.saves_inputs([recorded[read] for read in inputs])
            keeps = tuple(dict.fromkeys(
                storage[read] for read, keep in zip(inputs, flags, strict=True) if keep))
        elif cost is not None and grad and saved is not None:  # no join: it reads one input
            casts = 0
            if saved.input:
                if have == runs and not (kind.contiguous_input and first in strided):
                    keeps = (source,)
                else:  # its own contiguous copy, or autocast's cast of its input for it
                    casts = math.prod(shape_of(shapes, first)) * runs
            if saved.output and (not keeps or tensor != source):
                keeps += (tensor,)
            if autocast is None:
                stat, copies = runs, 0
            else:
                stat = FP32 if policy.stats_fp32 else runs
                copies = cost.weights * runs if policy.runs == "low" and (
                    not policy.copy_needs_input_grad or recorded[first]) else 0
            if casts or copies or saved.stats or saved.extra_bytes or saved.extra:
                key = (id(saved), stat, casts, copies)
                own = owns.get(key)
                if own is None:
                    own = owns[key] = Kept(saved.extra * stat + saved.extra_bytes + casts,
                                           saved.stats * stat, copies)
        if not segments or (segment := segments.get(name)) is None:
            if keeps:
                tensors[name] = keeps
            if own is not None:
                extra[name] = own
            continue
        entering.setdefault(segment, {}).update(
            (storage[read], None) for read in inputs if segments.get(read) != segment)
        if keeps or own is not None:
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


def _permuted(shape: Shape) -> bool:
    """Whether a map's channels-last layout differs from the contiguous one: not with one
    channel or one position."""
    return len(shape) == 3 and shape[0] > 1 and shape[1] * shape[2] > 1


def _autocast_rule(kind: reg.LayerKind, autocast: Autocast | None) -> reg.Autocast:
    """The kind's rule on the policy's device; without autocast every layer runs at its
    input's type (joins too: one type throughout)."""
    if autocast is None:
        return _AT_INPUT
    assert kind.autocast is not None, f"{kind.name} states no autocast rule"
    return kind.autocast[autocast.device]


def inference_peak(network: Network, values: Mapping[str, int],
                   spans: tuple[dict[str, int], dict[str, int]]) -> int:
    """The most activation values alive at once in a forward pass without autograd, per
    sample: each tensor lives from the layer that makes it to its last reader (`spans`:
    `lifetimes` of the `eval_storage`). `values`: `values(shapes)`."""
    born, last_use = spans
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


def lifetimes(network: Network, storage: Mapping[str, str]
              ) -> tuple[dict[str, int], dict[str, int]]:
    """The step (layer index) at which each tensor is made and the last at which the compiled
    module's `forward` holds it: its last reader, the input (the caller holds it) and the
    output to the end (`len(layers)`); views share their source's storage (`storage`: the
    `Keeping`'s, or its `eval_storage` for inference). The `forward` frees each as this
    counts (a `del` after its last reader), and a block or named group is a submodule whose
    caller holds its argument until it returns: a tensor entering one lives to the
    submodule's last layer, as does the input of each straight run an unkeyed module runs as
    an `nn.Sequential` (`units`)."""
    end = len(network.layers)
    born = {INPUT_NODE: 0}
    last_use = {INPUT_NODE: 0}
    inside: dict[str, tuple[str, ...]] = {}  # the modules around a layer, for those in one
    entering: dict[tuple[str, ...], set[str]] = {}  # submodule -> tensors its caller holds
    module_end: dict[tuple[str, ...], int] = {}
    for step, layer in enumerate(network.layers):
        name, inputs = layer.name, layer.inputs
        if storage[name] == name:
            born[name] = last_use[name] = step
        for read in inputs:  # in order: the last reader sets it last
            last_use[storage[read]] = step
        if len(layer.path) < 2:
            continue
        path = inside[name] = layer.path[:-1]
        for depth in range(1, len(path) + 1):
            module = path[:depth]
            module_end[module] = step
            entering.setdefault(module, set()).update(
                storage[read] for read in inputs if inside.get(read, ())[:depth] != module)
    for module, names in entering.items():
        for tensor in names:
            last_use[tensor] = max(last_use[tensor], module_end[module])
    for first, last in units.sequentials(network):  # each caller holds its input
        tensor = storage[network.layers[first].inputs[0]]
        last_use[tensor] = max(last_use[tensor], last)
    last_use[INPUT_NODE] = last_use[storage[network.output]] = end
    return born, last_use


def eval_storage(network: Network, storage: Mapping[str, str]) -> Mapping[str, str]:
    """The tensor behind each output when the module runs in eval mode (inference): as in a
    training forward (`storage`, the `Keeping`'s), but a layer that then returns its very
    input (dropout) is its input's tensor, as is a view of it."""
    if not any(layer.kind in _SAME_IN_EVAL for layer in network.layers):
        return storage
    found = {INPUT_NODE: storage[INPUT_NODE]}
    for layer in network.layers:
        name = layer.name
        same = layer.kind in _SAME_IN_EVAL or storage[name] != name
        found[name] = found[layer.inputs[0]] if same else name
    return found


_SAME_IN_EVAL = frozenset(kind.name for kind in reg.KINDS if kind.identity_in_eval)


def largest_batch(fixed: int, per_sample: int, budget: int) -> int:
    """The largest batch whose memory (fixed + batch * per_sample bytes) fits the budget."""
    return max(0, budget - fixed) // per_sample


def parse_size(text: str) -> int:
    """`16GiB` → 17179869184, `16GB` → 16 * 10**9, `512MiB`, `2048` (bytes). A unit needs
    its B: `16G` could be either power, and a lower-case b means bits (`16Gb`), refused."""
    match = re.fullmatch(_SIZE, text)
    if match is None or (match.group(2) and not match.group(4)):
        why = ("a lower-case b means bits" if re.fullmatch(_BITS, text)
               else "not a memory size")
        raise ValueError(f"{why}: {text!r} (write bytes with B/KB/MB/GB or KiB/MiB/GiB, "
                         "e.g. 16GiB, 500MB or 2048)")
    prefix = (match.group(2) or "").upper()
    base = 1024 if match.group(3) else 1000
    return int(float(match.group(1)) * base ** _POWERS[prefix])
