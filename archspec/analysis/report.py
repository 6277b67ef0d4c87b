"""The numbers behind `archspec table`, computed once into a Report of named tuples.

`build_report` runs the analyses of `archspec.analysis.cost` over a valid spec;
`archspec.views.table` renders the result as text, markdown, CSV or JSON without computing
anything itself.
"""

from __future__ import annotations

# Named tuples (`core.record`), not pydantic models: the report is archspec's own arithmetic on
# the validated IR, never validated itself, and a named tuple is made at a tenth of a pydantic
# model class's cost at every start (~0.02 ms against ~0.25), a row in a third of the memory.
import math
from collections.abc import Iterable, Sequence
from functools import cached_property
from itertools import chain
from operator import attrgetter
from typing import Literal

from archspec.analysis import cost, timeline
from archspec.catalog import (
    AMPS,
    BYTES_PER_VALUE,
    OPTIMIZER_STATE,
    OPTIMIZERS,
    PRECISION_AMP,
    AmpName,
    Checkpoint,
    Device,
    DType,
    PlannerOptimizer,
)
from archspec.core.record import Record
from archspec.ir import INPUT_NODE, Layer, Network, Shape, TrainingPlan
from archspec.kinds import registry as reg
from archspec.lang.shapes import Shapes

# torchinfo sizes its input with sys.getsizeof(tensor.untyped_storage()): the bytes plus the
# 64-byte Python object around them.
TORCHINFO_STORAGE_OVERHEAD = 64


class Row(Record):
    """One layer (or, folded, a layer with the implicit layers it caused). Counts are per
    sample; `training_bytes` is at the report's batch size."""

    name: str
    kind: str
    written: str  # as the user wrote it: `CONV3-64`
    implicit: bool
    members: tuple[str, ...]  # the layers of the row: itself, or folded with its implicit ones
    folds: tuple[str, ...]  # kinds of the implicit members folded in (not views): ("RELU",)
    input_shape: Shape
    output_shape: Shape
    weights: int
    biases: int
    buffers: int
    buffer_bytes: int  # the buffers' bytes (BN's counter is an int64 whatever the dtype)
    weights_formula: str  # CS231n's: weights only, `(3*3*3)*64`
    formula: str  # every parameter: `(3*3*3)*64 + 64`
    activations: int  # values this row adds to forward memory (0: runs in place or a view)
    activation_bytes: int  # those values at the dtype, per sample
    macs: int  # multiply-accumulates, weights only (biases not counted)
    receptive_field: tuple[int, int] | None
    jump: tuple[int, int] | None
    saved_bytes: int  # kept for backward per sample: its output if any layer saves it, extras
    training_bytes: int  # params, gradients, optimizer state, buffers, saved (autocast's
    # weight copies included): at the batch

    @property
    def params(self) -> int:
        return self.weights + self.biases

    @property
    def flops(self) -> int:
        return 2 * self.macs


class InputInfo(Record):
    shape: Shape
    order: str
    activations: int
    activation_bytes: int
    saved_bytes: int  # per sample: the input batch is on the device during training
    training_bytes: int  # the batch of them
    receptive_field: tuple[int, int] | None  # (1, 1) for a map, None for a flat input
    jump: tuple[int, int] | None


class Totals(Record):
    """Per sample. `activations` includes the input (CS231n's TOTAL memory)."""

    params: int
    params_no_bias: int
    trainable_params: int
    buffers: int
    activations: int
    activation_bytes: int
    macs: int
    flops: int


class Fit(Record):
    budget_bytes: int
    training_batch: int
    inference_batch: int


class TrainingPeak(Record):
    """The most one training step holds (`archspec.analysis.timeline`), in bytes: the
    parameters, buffers, optimizer state and scaler (`state_bytes`), and at the moment of
    the peak (its `phase`: forward, loss, backward, recompute or step, and `layer`) the
    activations and kept tensors, the input batch and labels included, the gradients of
    activations in flight, the weight gradients made so far and temporaries (the optimizer
    step's, `step_bytes`, when it peaks there)."""

    bytes: int
    phase: str
    layer: str
    state_bytes: int
    activations_bytes: int
    activation_gradients_bytes: int
    weight_gradients_bytes: int
    temporaries_bytes: int
    step_bytes: int  # the optimizer step's temporaries, wherever the peak is


class Memory(Record):
    """Training and inference footprints at `batch`, in bytes."""

    batch: int
    batch_source: str
    dtype: DType
    bytes_per_value: int
    optimizer: PlannerOptimizer
    optimizer_source: str
    optimizer_buffers: int
    params_bytes: int
    buffers_bytes: int
    gradients_bytes: int
    optimizer_bytes: int
    amp: AmpName | None  # the autocast policy planned, None for one dtype throughout
    amp_source: str
    amp_device: Device  # whose autocast op lists the plan follows
    activations_bytes: int  # saved for backward: activations, masks, indices, the input
    autocast_copies_bytes: int  # autocast's low-precision weight copies kept for backward
    saved_bytes: int  # everything autograd keeps for backward but the parameters
    checkpoint: Checkpoint | None  # build(checkpoint=...) planned: "blocks", N layers, or None
    checkpoint_source: str
    recompute_macs: int  # the forward run again in backward: every checkpointed layer's MACs
    segment_peak_bytes: int  # the largest segment's saved tensors while it is recomputed
    autocast_cache_bytes: int  # every cast weight and bias autocast caches for the forward
    scaler_bytes: int  # fp16's gradient scaler
    training_bytes: int  # every component at once (the per-layer column sums to it)
    training_peak_bytes: int  # the predicted peak of one training step
    training_peak: TrainingPeak
    inference_activations_bytes: int  # the peak alive at once without autograd
    inference_bytes: int
    fit: Fit | None
    assumptions: tuple[str, ...]


class TorchinfoTotals(Record):
    """The summary footer torchinfo 1.8 prints, computed under its conventions."""

    input_shape: tuple[int, ...]
    total_params: int
    trainable_params: int
    total_mult_adds: int
    input_bytes: int
    forward_backward_bytes: int
    params_bytes: int

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    @property
    def total_bytes(self) -> int:
        return self.input_bytes + self.forward_backward_bytes + self.params_bytes


class Report:
    """Every figure of one network's table: its input, rows, totals, memory plan and
    torchinfo's footer, and the folded rows when first read."""

    def __init__(self, network: Network, shapes: Shapes, input: InputInfo,
                 rows: tuple[Row, ...], totals: Totals, memory: Memory,
                 torchinfo: TorchinfoTotals) -> None:
        self.network = network.name
        self.description = network.description
        self.input = input
        self.rows = rows
        self.totals = totals
        self.memory = memory
        self.torchinfo = torchinfo
        self._network = network  # what `folded` is worked out from
        self._shapes = shapes

    @cached_property
    def folded(self) -> tuple[Row, ...]:
        """The rows as `table --fold` shows them, a layer with what folds into it
        (`fold.groups`): made when first read, as only `--fold` and the cs231n style read
        them (at 100k layers they take about as long as the rows)."""
        from archspec.analysis import fold  # imported by those alone

        own = {row.name: row for row in self.rows}
        by_name = {layer.name: layer for layer in self._network.layers}
        return tuple(
            own[owner] if names == [owner]  # a layer alone: its own row, the same Row
            else _folded(by_name[owner], [own[name] for name in names], self._shapes)
            for owner, names in fold.groups(self._network))


def resolve_optimizer(plan: TrainingPlan | None, override: PlannerOptimizer | None
                      ) -> tuple[PlannerOptimizer, str]:
    """The optimizer the memory plan assumes, and where it came from."""
    if override is not None:
        return override, "--optimizer"
    spec = (plan or TrainingPlan.model_construct()).optimizer
    name: PlannerOptimizer = spec.name
    if name == "sgd" and (spec.momentum or 0) > 0:
        name = "momentum"
    return name, "the train: section" if plan is not None else "the default plan"


def resolve_amp(plan: TrainingPlan | None, override: AmpName | None, device: Device | None
                ) -> tuple[AmpName | None, str, Device]:
    """The autocast policy the memory plan assumes, where it came from, and its device (the
    --device given, else the train: section's, else cpu)."""
    where: Device = device or (plan.device if plan is not None else "cpu")
    if override is not None:
        return override, "--amp", where
    if plan is not None and PRECISION_AMP[plan.precision] is not None:
        return PRECISION_AMP[plan.precision], "the train: section", where
    return None, "none", where


def resolve_checkpoint(plan: TrainingPlan | None,
                       override: Checkpoint | Literal["none"] | None
                       ) -> tuple[Checkpoint | None, str]:
    """The activation checkpointing the memory plan assumes, and where it came from:
    `--checkpoint` (its `none` over the train: section's), else the train: section's."""
    if override is not None:
        return (None if override == "none" else override), "--checkpoint"
    if plan is not None and plan.checkpoint:
        return plan.checkpoint, "the train: section"
    return None, "none"


def build_report(network: Network, shapes: Shapes, *, batch: int | None = None,
                 dtype: DType | None = None, optimizer: PlannerOptimizer | None = None,
                 fit: int | None = None, amp: AmpName | None = None,
                 device: Device | None = None,
                 checkpoint: Checkpoint | Literal["none"] | None = None) -> Report:
    """Every figure `archspec table` shows, for a valid (complete) network. Under an autocast
    policy (`amp`, or the train: section's precision) the parameters are float32 and the
    saved tensors have the types autocast gives them on `device`; ValueError when the dtype
    asked for is not float32 (that is pure low-precision training, a case of its own).
    `checkpoint` (or the train: section's) plans build(checkpoint=...): `"blocks"`, each
    outermost block call, or N, the network N layers at a time (`cost.checkpoint_segments`),
    keeps its input alone, its forward runs again in backward, and the training total adds
    the largest segment's saved tensors, held while it is recomputed; ValueError when it
    would checkpoint nothing. `"none"` plans none whatever the train: section says."""
    if batch is None:
        batch, batch_source = (network.plan.batch, "the train: section") if network.plan \
            else (1, "the default")
    else:
        batch_source = "--batch"
    header = dtype is None  # the spec's `dtype` header, not --dtype
    dtype = dtype or network.dtype
    bpv = BYTES_PER_VALUE[dtype]
    opt, opt_source = resolve_optimizer(network.plan, optimizer)
    per_param = (2 + OPTIMIZER_STATE[opt].buffers) * bpv  # value, gradient, optimizer state
    amp_name, amp_source, amp_device = resolve_amp(network.plan, amp, device)
    policy = None
    if amp_name is not None and dtype != "float32":
        if amp_source != "--amp":  # the plan's autocast over low-precision parameters
            amp_name, amp_source = None, "none"  # casts nothing: the pure case
        else:
            raise ValueError(f"{amp_name} autocast keeps float32 parameters; {dtype} "
                             "throughout is pure low-precision training, planned without "
                             "--amp" + (f" (the spec's dtype header; --dtype float32 --amp "
                                        f"{amp_name} plans autocast over it)" if header else ""))
    if amp_name is not None:
        policy = cost.Autocast(amp_device, BYTES_PER_VALUE[AMPS[amp_name].dtype])

    rules = cost.layer_rules(network, shapes)
    fields = cost.receptive_fields(network, shapes, rules)
    costs = cost.layer_costs(network, shapes, rules)
    values = cost.values(shapes)
    plain_keep = cost.keeping(network, shapes, bpv, policy, batch, rules=rules)
    kept = cost.saved_for_backward(network, values, plain_keep)
    checkpoint, checkpoint_source = resolve_checkpoint(network.plan, checkpoint)
    segments = cost.checkpoint_segments(network, checkpoint) if checkpoint else {}
    if checkpoint and not segments:
        raise ValueError(cost.checkpoint_problem(network, checkpoint))
    by_segment: dict[tuple[str, ...], list[str]] = {}
    for name, segment in segments.items():
        by_segment.setdefault(segment, []).append(name)
    # The largest segment's saved tensors, per sample and per batch (stats, weight copies).
    seg_sample, seg_fixed = max(
        ((sum(kept[n].per_sample for n in names),
          sum(kept[n].per_batch + kept[n].copies for n in names))
         for names in by_segment.values()), key=lambda p: p[0] * batch + p[1], default=(0, 0))
    segment_peak = seg_sample * batch + seg_fixed
    if segments:
        keep = cost.keeping(network, shapes, bpv, policy, batch, segments, rules)
        kept = cost.saved_for_backward(network, values, keep)
    else:
        keep = plain_keep
    rows = _rows(network, shapes, values, fields, kept, costs, batch, bpv, per_param)

    inp = network.input.shape
    weights, biases, buffers, buffers_bytes, activations, _, macs, _, _ = _sums(rows)
    params = weights + biases
    activations += math.prod(inp)
    totals = Totals(
        params=params, params_no_bias=weights, trainable_params=params, buffers=buffers,
        activations=activations, activation_bytes=activations * bpv, macs=macs, flops=2 * macs)

    saved_sample = sum(k.per_sample for k in kept.values())
    saved_batch = sum(k.per_batch for k in kept.values())
    copies = sum(k.copies for k in kept.values())
    scaler = AMPS[amp_name].scaler_bytes if amp_name else 0
    cache = _autocast_cache(network, costs, policy)
    spans = cost.lifetimes(network, keep.storages)
    evaluating = cost.eval_storage(network, keep.storages)
    peak = cost.inference_peak(network, values, spans if evaluating is keep.storages
                               else cost.lifetimes(network, evaluating)) * bpv
    fixed_inference = params * bpv + buffers_bytes
    fixed_training = (params * per_param + buffers_bytes + saved_batch + copies + scaler
                      + seg_fixed)
    state = params * per_param - params * bpv + buffers_bytes + scaler  # all but gradients
    step = _step_bytes(rows, opt, _decays(network.plan, opt, opt_source), amp_device, bpv)
    moment = timeline.training_peak(
        network, values, keep, plain_keep, batch=batch,
        weight_bytes={name: (part.weights + part.biases) * bpv
                      for name, part in costs.items() if part.weights or part.biases},
        segments=segments, spans=spans, cache_bytes=cache - copies, step_bytes=step,
        budget=None if fit is None else fit - state)
    budget = None if fit is None else Fit(
        budget_bytes=fit,
        training_batch=(moment.largest_batch or 0) if fit > state else 0,
        inference_batch=cost.largest_batch(fixed_inference, peak, fit))
    memory = Memory(
        batch=batch, batch_source=batch_source, dtype=dtype, bytes_per_value=bpv,
        optimizer=opt, optimizer_source=opt_source,
        optimizer_buffers=OPTIMIZER_STATE[opt].buffers, params_bytes=params * bpv,
        buffers_bytes=buffers_bytes, gradients_bytes=params * bpv,
        optimizer_bytes=params * OPTIMIZER_STATE[opt].buffers * bpv,
        amp=amp_name, amp_source=amp_source, amp_device=amp_device,
        activations_bytes=saved_sample * batch + saved_batch,
        autocast_copies_bytes=copies,
        saved_bytes=saved_sample * batch + saved_batch + copies,
        checkpoint=checkpoint, checkpoint_source=checkpoint_source,
        recompute_macs=sum(costs[name].macs for name in segments),
        segment_peak_bytes=segment_peak, autocast_cache_bytes=cache, scaler_bytes=scaler,
        training_bytes=fixed_training + (saved_sample + seg_sample) * batch,
        training_peak_bytes=state + moment.total,
        training_peak=TrainingPeak(
            bytes=state + moment.total, phase=moment.phase, layer=moment.layer,
            state_bytes=state, activations_bytes=moment.activations,
            activation_gradients_bytes=moment.activation_gradients,
            weight_gradients_bytes=moment.weight_gradients,
            temporaries_bytes=moment.temporaries, step_bytes=step),
        inference_activations_bytes=peak * batch,
        inference_bytes=fixed_inference + peak * batch, fit=budget,
        assumptions=_assumptions(dtype, bpv, opt, amp_name, amp_device))

    return Report(
        network, shapes,
        input=InputInfo(
            shape=inp, order=network.input.order, activations=math.prod(inp),
            activation_bytes=math.prod(inp) * bpv, saved_bytes=kept[INPUT_NODE].per_sample,
            training_bytes=kept[INPUT_NODE].per_sample * batch,
            receptive_field=_size(fields[INPUT_NODE]), jump=_jump(fields[INPUT_NODE])),
        rows=rows, totals=totals, memory=memory,
        torchinfo=_torchinfo(network, shapes, costs, rows, params, batch, bpv))


def at_depth(rows: Sequence[Row], network: Network, depth: int) -> tuple[Row, ...]:
    """The rows folded to `depth` levels of the module hierarchy, as torchinfo's `depth=`:
    the layers inside one named group or block call at that depth become one row (named by
    its path, written as the spec calls it), with their figures summed, the first one's
    input, the last one's output, receptive field and jump. A flat spec is unchanged."""
    modules = {module.path: module for module in network.modules}
    paths = {layer.name: layer.path for layer in network.layers}
    runs: list[tuple[tuple[str, ...], list[Row]]] = []
    for row in rows:
        path = paths[row.name]
        key = path[:depth] if len(path) > depth else (*path, "")
        if runs and runs[-1][0] == key and key[-1]:
            runs[-1][1].append(row)
        else:
            runs.append((key, [row]))
    folded = []
    for key, run in runs:
        if not key[-1]:
            folded.append(run[0])
            continue
        module = modules[key]
        folded.append(_summed(run, name=".".join(key), kind=module.kind.upper(),
                              written=module.label, implicit=False, folds=(),
                              weights_formula="", formula=""))
    return tuple(folded)


def _folded(principal: Layer, members: list[Row], shapes: Shapes) -> Row:
    """A layer's row with what folds into it (`fold.groups`: an implied flatten, batch norm,
    activations): its members' own rows summed. Only the formulas are the group's: an FC
    after its implied flatten names the map the flatten reads (7*7*512), not the vector."""
    first = members[0]
    pieces = [row.formula for row in members]
    at = [row.name for row in members].index(principal.name)
    main = members[at].weights_formula
    if at:  # the principal reads what the first member reads
        part = cost.layer_cost(principal, shapes, first.input_shape)
        main = part.formula
        pieces[at] = _formula(part)
    return _summed(members, name=principal.name, kind=principal.kind,
                   written=principal.written, implicit=principal.implicit,
                   folds=tuple([row.kind for i, row in enumerate(members)
                                if i != at and not reg.kind_of(row.kind).view]),
                   weights_formula=main, formula=" + ".join(filter(None, pieces)))


def _summed(rows: Sequence[Row], *, name: str, kind: str, written: str, implicit: bool,
            folds: tuple[str, ...], weights_formula: str, formula: str) -> Row:
    """One row standing for several (`_folded`, `at_depth`): every count and byte figure the
    sum of theirs (the training bytes too: each row's is linear in its own figures), the
    first one's input, the last one's output, receptive field and jump."""
    first, last = rows[0], rows[-1]
    (weights, biases, buffers, buffer_bytes, activations, activation_bytes, macs, saved,
     training) = _sums(rows)
    return Row(
        name=name, kind=kind, written=written, implicit=implicit,
        members=tuple(chain.from_iterable(row.members for row in rows)), folds=folds,
        input_shape=first.input_shape, output_shape=last.output_shape,
        weights=weights, biases=biases, buffers=buffers, buffer_bytes=buffer_bytes,
        weights_formula=weights_formula, formula=formula, activations=activations,
        activation_bytes=activation_bytes, macs=macs, receptive_field=last.receptive_field,
        jump=last.jump, saved_bytes=saved, training_bytes=training)


# The figures of a row that add up over rows (`_summed`, the totals), in `_sums`' order.
_FIGURES = ("weights", "biases", "buffers", "buffer_bytes", "activations", "activation_bytes",
            "macs", "saved_bytes", "training_bytes")
_figures = attrgetter(*_FIGURES)


def _sums(rows: Sequence[Row]) -> list[int]:
    """Each of `_FIGURES` summed over the rows, in one pass over them."""
    if not rows:
        return [0] * len(_FIGURES)
    return list(map(sum, zip(*map(_figures, rows), strict=True)))


def group_params(report: Report, groups: Iterable[tuple[str, Iterable[str]]]
                 ) -> dict[str, int]:
    """The weights and biases of each group of layers a view shows as one, by the group's
    name: a compact diagram's box, which stands for a layer, what folds into it and every
    repetition of a collapsed run."""
    params = {row.name: row.params for row in report.rows}
    return {name: sum(params[layer] for layer in layers) for name, layers in groups}


def first_over(report: Report, max_params: int) -> Row | None:
    """The row at which the running parameter total passes `max_params`, or None."""
    running = 0
    for row in report.rows:
        running += row.params
        if running > max_params:
            return row
    return None


def _rows(network: Network, shapes: Shapes, values: dict[str, int],
          fields: dict[str, cost.Field | None], kept: dict[str, cost.Kept],
          costs: dict[str, reg.Cost], batch: int, bpv: int, per_param: int) -> tuple[Row, ...]:
    """Every layer's row. A layer like one before it in all that makes a row (kind, as
    written, implicit or not, its shapes, cost and saved tensors: a long chain repeats a few
    layers) gets a copy of that row with its own name, members, receptive field and jump
    (~0.3 µs, against ~4 µs to work one out): made of the other fields' values, taken once
    from the first row like it."""
    seen: dict[tuple[object, ...], tuple[tuple[object, ...], ...]] = {}
    rows = []
    for layer in network.layers:
        name = layer.name
        key = (layer.kind, layer.written, layer.implicit, costs[name], kept[name],
               shapes[layer.inputs[0]], shapes[name])
        like = seen.get(key)
        if like is None:
            row = _row(layer, shapes, values, fields, kept, costs, batch, bpv, per_param)
            seen[key] = (row[1:_MEMBERS], row[_MEMBERS + 1:_FIELD], row[_FIELD + 2:])
        else:
            field = fields[name]
            before, between, after = like
            row = _new_row(Row, (name, *before, (name,), *between, _size(field), _jump(field),
                                 *after))
        rows.append(row)
    return tuple(rows)


# Where a row's own fields stand among the others (`_rows`): the name first, the members,
# then the receptive field and the jump, side by side.
_MEMBERS, _FIELD = Row._fields.index("members"), Row._fields.index("receptive_field")
if Row._fields[0] != "name" or not 0 < _MEMBERS < _FIELD or Row._fields[_FIELD + 1] != "jump":
    raise TypeError("_rows copies a Row by its fields' places: name first, then members, "
                    "then receptive_field and jump side by side")
_new_row = tuple.__new__


def _row(layer: Layer, shapes: Shapes, values: dict[str, int],
         fields: dict[str, cost.Field | None], kept: dict[str, cost.Kept],
         costs: dict[str, reg.Cost], batch: int, bpv: int, per_param: int) -> Row:
    """One layer's row, worked out (a folded row sums its members' rows: `_folded`)."""
    name = layer.name
    part, own, field = costs[name], kept[name], fields[name]
    activations = cost.new_activations(layer, values)
    buffer_bytes = part.buffer_bytes(bpv)
    return Row(
        name=name, kind=layer.kind, written=layer.written, implicit=layer.implicit,
        members=(name,), folds=(), input_shape=cost.input_shape(layer, shapes),
        output_shape=cost.shape_of(shapes, name), weights=part.weights,
        biases=part.biases, buffers=part.buffers, buffer_bytes=buffer_bytes,
        weights_formula=part.formula, formula=_formula(part),
        activations=activations, activation_bytes=activations * bpv, macs=part.macs,
        receptive_field=_size(field), jump=_jump(field), saved_bytes=own.per_sample,
        training_bytes=(part.weights + part.biases) * per_param + buffer_bytes
        + own.per_sample * batch + own.per_batch + own.copies)


def _formula(part: reg.Cost) -> str:
    """Every parameter of a layer as the table writes it: `(3*3*3)*64 + 64`."""
    return f"{part.formula} + {part.biases}" if part.biases and part.formula else part.formula


def _size(field: cost.Field | None) -> tuple[int, int] | None:
    return field.size if field else None


def _jump(field: cost.Field | None) -> tuple[int, int] | None:
    return field.jump if field else None


def _torchinfo(network: Network, shapes: Shapes, costs: dict[str, reg.Cost],
               rows: tuple[Row, ...], params: int, batch: int, bpv: int) -> TorchinfoTotals:
    outputs = sum(math.prod(r.output_shape) for r in rows if r.params)
    return TorchinfoTotals(
        input_shape=(batch, *network.input.shape), total_params=params, trainable_params=params,
        total_mult_adds=batch * sum(cost.torchinfo_macs(layer, costs[layer.name], shapes)
                                    for layer in network.layers),
        input_bytes=batch * math.prod(network.input.shape) * bpv + TORCHINFO_STORAGE_OVERHEAD,
        # x2 for gradients, for layers that own parameters only: torchinfo's convention.
        forward_backward_bytes=2 * batch * outputs * bpv, params_bytes=params * bpv)


def _autocast_cache(network: Network, costs: dict[str, reg.Cost],
                    policy: cost.Autocast | None) -> int:
    """The low-precision copies of every weight and bias autocast casts (the layers whose
    rule runs them low), cached for the forward and dropped when the autocast region ends."""
    if policy is None:
        return 0
    total = 0
    for layer in network.layers:
        rule = reg.kind_of(layer.kind).autocast
        if rule is not None and rule[policy.device].runs == "low":
            part = costs[layer.name]
            total += (part.weights + part.biases) * policy.low
    return total


def _decays(plan: TrainingPlan | None, optimizer: PlannerOptimizer, source: str
            ) -> tuple[bool, bool]:
    """Whether the optimizer adds weight decay into the gradients (SGD's and Adam's
    coupled decay: AdamW's decays the weights in place) and whether it is Nesterov's: the
    train: section's, else the catalog's defaults."""
    name = "sgd" if optimizer == "momentum" else optimizer
    if plan is not None and source == "the train: section":
        spec = plan.optimizer
        return spec.weight_decay > 0 and name != "adamw", bool(spec.nesterov)
    defaults = OPTIMIZERS[name].defaults
    return float(defaults["weight_decay"]) > 0 and name != "adamw", False


def _step_bytes(rows: Sequence[Row], optimizer: PlannerOptimizer, decays: tuple[bool, bool],
                device: Device, bpv: int) -> int:
    """The temporaries of the optimizer's step, as torch's implementations make them: on
    CPU one parameter at a time (the largest counts: Adam's `exp_avg_sq.sqrt() / c` holds
    two, a coupled weight decay's `grad.add(param)` and Nesterov's `grad.add(buf)` one
    each), on CUDA every parameter at once (the foreach kernels: Adam's `_foreach_sqrt`, a
    decay's or Nesterov's `_foreach_add`)."""
    decay, nesterov = decays
    adam = optimizer in ("adam", "adamw")
    copies = 2 * adam + decay + (nesterov and not adam)
    if device == "cuda":
        return (adam + decay + (nesterov and not adam)) * sum(r.params for r in rows) * bpv
    return copies * max((max(r.weights, r.biases) for r in rows), default=0) * bpv


def _assumptions(dtype: str, bpv: int, optimizer: PlannerOptimizer, amp: AmpName | None,
                 device: Device) -> tuple[str, ...]:
    state = OPTIMIZER_STATE[optimizer].note
    if amp is None:
        values = (f"values are {dtype}, {bpv} bytes each"
                  + ("" if dtype == "float32" else ": pure low-precision training, "
                     "parameters, gradients and optimizer state included"))
    else:
        low = AMPS[amp].dtype
        values = (f"{amp} autocast as PyTorch runs it on {device}: float32 master "
                  "parameters, gradients and optimizer state; convolutions, linear layers "
                  f"and PReLU run in {low} on a cached {low} copy of their weights (kept for "
                  "backward); other layers run at their input's type, or float32 where the "
                  f"{device} lists say (norm statistics are float32)"
                  + ("; a gradient scaler" if AMPS[amp].scaler_bytes else ""))
    return (
        f"{values}; B/KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024",
        "training = parameters + gradients + optimizer state + buffers + what autograd saves "
        "for backward (each tensor once, the input batch included, as the module archspec "
        "builds runs it: nothing in place), all counted at once; the gradients in flight in "
        "backward are not",
        "training-step peak = parameters, buffers and optimizer state + the most one step "
        "(zero_grad(set_to_none=True), forward, cross-entropy, backward, step) holds at once: "
        "what is alive in forward and kept for backward, the gradients in flight and the "
        "weight gradients made so far, the optimizer step's temporaries; --fit solves it",
        state,
        "max-pool indices and batch norm's num_batches_tracked are int64; dropout masks are "
        "stored at the dtype's size (PyTorch's CPU kernel; CUDA keeps 1 byte a value), and "
        "DROPOUT(p=0) keeps none",
        "inference = parameters + buffers + the most activations alive at once in a forward "
        f"pass without autograd{' or autocast' if amp else ''} (a tensor is freed after its "
        "last reader, the input held throughout, as the compiled module's forward does)",
        "measured (tests/test_memory.py): what autograd saves equals this plan to the byte "
        "for every spec in specs/ and specs/zoo/ in float32 and under bf16 autocast on CPU; "
        "CUDA's autocast lists are planned from torch's source, not measured",
        "measured (tests/test_peak.py): the training-step peak is within 5% of what the "
        "compiled module holds on CPU for every spec in specs/ and specs/zoo/, plain and "
        "checkpointed, in float32 and under bf16 autocast",
        "not counted: the CUDA context, allocator caching and fragmentation, cuDNN "
        "workspaces, temporaries inside a layer (LRN's), a kernel's own workspace",
    )

