"""One training step as the compiled module runs it, event by event, and the most it holds.

A pure model (no torch) of `optimizer.zero_grad(set_to_none=True)`, `loss =
F.cross_entropy(module(x), y)`, `loss.backward()`, `optimizer.step()` on the module archspec
builds, with the optimizer's state already made (a step after the first):

- forward: each layer's output is allocated (a view is its source), with what its backward
  node keeps beside it (statistics, indices, masks, autocast's casts and weight copies:
  `cost.keeping`); the generated `forward` drops a tensor after its last reader
  (`cost.lifetimes`), but a tensor a node keeps lives on until that node's backward;
- the loss: log-softmax's output (float32, kept for its backward) and the scalar loss (held
  by the caller through backward), then backward's seed and the gradients of both;
- backward, in autograd's order on CPU (reverse of creation: the engine runs the ready node
  made last): each node makes a gradient for each input that needs one and its weights'
  gradients (which `.grad` steals, so they fill up as backward goes; under autocast the
  gradient of a low-precision weight copy, cast up to float32 by a node of its own after
  the layer's node has freed what it kept), then frees the
  gradient it read and what it kept. A gradient that reaches a tensor read by several layers
  is added into the first one in place when nothing else shares that one's storage, else
  into a new tensor (autograd's `InputBuffer`); a join that keeps nothing of its inputs (a
  residual add, a concatenation) passes its gradient on (a concatenation as slices of it),
  as does a view that keeps every value (a flatten), while a view of a part (a channel
  slice) makes a gradient of its input's size; a product by a broadcast gate makes the full
  product before summing it down;
- checkpointing (`segments`: layer -> segment, as `cost.checkpoint_segments` gives): a
  segment's layers keep nothing, its checkpoint its inputs; in backward, when the first
  of its nodes that needs a kept tensor runs, the segment's forward runs again up to its
  last layer that keeps anything (torch's non-reentrant checkpoint stops early), making
  what its layers keep as without checkpointing, which its nodes free as backward goes;
- the optimizer's step, with every gradient made: the temporaries its update makes
  (`step_bytes`, from the report).

Every amount is linear in the batch, so the largest batch under a budget is exact.
Not counted: temporaries a layer makes and frees inside itself (LRN is six torch ops), a
kernel's own workspace, the allocator's caching and rounding.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import accumulate, chain
from typing import NamedTuple

from archspec.analysis import cost
from archspec.ir import INPUT_NODE, Network
from archspec.kinds import registry as reg

LABEL_BYTES = 8  # a class index per sample, int64
LOSS_BYTES = 4  # cross-entropy's log-softmax and its gradients are float32


class Peak(NamedTuple):
    """The most a training step holds beyond the parameters, buffers and optimizer state,
    when (`phase`: forward, loss, backward, recompute or step) and at which layer, and what
    is alive then: activations (outputs, what nodes keep, the input batch and labels, the
    loss's tensors), gradients of activations, gradients of weights, and temporaries (the
    optimizer step's, a broadcast product's, an autocast weight copy's gradient)."""

    total: int
    phase: str
    layer: str
    activations: int
    activation_gradients: int
    weight_gradients: int
    temporaries: int
    largest_batch: int | None  # the largest batch whose peak fits `budget`, when one is given


Size = tuple[int, int]  # bytes per sample and bytes whatever the batch
NONE: Size = (0, 0)


class _Live:
    """Reference-counted tensors alive at once, activations apart from gradients, and the
    step's peak so far. Every amount is linear in the batch, so the largest batch under a
    budget is the least over the moments of the step."""

    __slots__ = ("acts", "allocs", "batch", "best", "budget", "grads", "largest", "refs", "top",
                 "weights")

    def __init__(self, batch: int, budget: int | None) -> None:
        self.batch = batch
        self.budget = budget
        self.refs: dict[object, int] = {}
        self.allocs: dict[object, tuple[Size, list[int]]] = {}
        self.acts = [LABEL_BYTES, 0]
        self.grads = [0, 0]
        self.weights = 0
        self.top = -1
        self.best: tuple[str, str, Size, Size, int, Size] | None = None
        self.largest: int | None = None

    def alloc(self, key: object, size: Size, grad: bool = False, refs: int = 1) -> None:
        """A new tensor of `size`, an activation's or a gradient's, and its `refs`."""
        into = self.grads if grad else self.acts
        self.refs[key] = refs
        self.allocs[key] = (size, into)
        into[0] += size[0]
        into[1] += size[1]

    def hold(self, key: object) -> None:
        self.refs[key] += 1

    def release(self, key: object) -> None:
        refs = self.refs[key] - 1
        if refs:
            self.refs[key] = refs
            return
        del self.refs[key]
        size, into = self.allocs.pop(key)
        into[0] -= size[0]
        into[1] -= size[1]

    def mark(self, phase: str, layer: str, temporary: Size = NONE) -> None:
        """A moment the step may peak at: what is alive now, plus a `temporary`."""
        sample = self.acts[0] + self.grads[0] + temporary[0]
        fixed = self.acts[1] + self.grads[1] + temporary[1] + self.weights
        if self.budget is not None:
            self._fits(max(0, self.budget - fixed) // sample)
        if sample * self.batch + fixed > self.top:
            self.top = sample * self.batch + fixed
            self.best = (phase, layer, (self.acts[0], self.acts[1]),
                         (self.grads[0], self.grads[1]), self.weights, temporary)

    def forward(self, layers: Sequence[str], samples: Sequence[int], fixeds: Sequence[int]
                ) -> None:
        """The forward's moments at once, one `mark` each: at the i-th `layers[i]` has run
        and activations of `samples[i]` bytes per sample and `fixeds[i]` bytes are alive
        beyond what is alive now."""
        sample = self.acts[0] + self.grads[0]
        fixed = self.acts[1] + self.grads[1] + self.weights
        if self.budget is not None:
            budget = self.budget - fixed
            self._fits(min(max(0, budget - more_fixed) // (sample + more)
                           for more, more_fixed in zip(samples, fixeds, strict=True)))
        totals = [(sample + more) * self.batch + fixed + more_fixed
                  for more, more_fixed in zip(samples, fixeds, strict=True)]
        top = max(totals)
        if top > self.top:
            at = totals.index(top)  # the first moment of the most, as `mark` keeps
            self.top = top
            self.best = ("forward", layers[at], (self.acts[0] + samples[at],
                                                 self.acts[1] + fixeds[at]),
                         (self.grads[0], self.grads[1]), self.weights, NONE)

    def _fits(self, batch: int) -> None:
        """A moment's largest batch under the budget: the step's is the least of them."""
        self.largest = batch if self.largest is None else min(self.largest, batch)

    def peak(self) -> Peak:
        """The moment the step held the most, and what it held then."""
        assert self.best is not None
        phase, layer, acts, grads, weights, temporary = self.best
        batch = self.batch
        return Peak(self.top, phase, layer, acts[0] * batch + acts[1],
                    grads[0] * batch + grads[1], weights, temporary[0] * batch + temporary[1],
                    self.largest)


def training_peak(network: Network, values: Mapping[str, int], kept: cost.Keeping,
                  plain: cost.Keeping, *, batch: int, weight_bytes: Mapping[str, int],
                  segments: Mapping[str, tuple[str, ...]],
                  spans: tuple[dict[str, int], dict[str, int]] | None = None,
                  cache_bytes: int = 0, step_bytes: int = 0, budget: int | None = None
                  ) -> Peak:
    """The peak of one training step beyond the parameters, buffers and optimizer state (see
    the module's docstring), at `batch`. `values`: each tensor's values per sample
    (`cost.values`); `kept` says what each node keeps (`cost.keeping`
    with the `segments`), `plain` what it keeps without checkpointing (the same without
    segments); `weight_bytes` each layer's parameters' bytes (its gradients'), `spans`
    `cost.lifetimes` when already known, `cache_bytes` the autocast weight cache
    held through the forward beyond the copies nodes keep, `step_bytes` the optimizer step's
    temporaries. With a `budget` (bytes left beyond the parameters, buffers and optimizer
    state), also the largest batch whose peak fits it."""
    storage, width, recorded = kept.storages, kept.width, kept.recorded
    layers = network.layers
    sample = {name: values[name] * width[name] for name in width}  # bytes, by storage
    sizes = {name: (sample[tensor], 0) for name, tensor in storage.items()}  # by layer
    # A gradient has its tensor's own shape, whatever storage the tensor shares: a view's
    # (a slice's, a flatten's of one) is the size of its own values, not of its input's.
    grad_sizes = {name: (values[name] * width[tensor], 0) for name, tensor in storage.items()}

    def extras(keep: cost.Keeping) -> dict[str, Size]:  # what each node keeps of its own
        return {name: (own.per_sample, own.per_batch + own.copies)
                for name, own in keep.extra.items()
                if own.per_sample or own.per_batch or own.copies}

    kept_extra = extras(kept)
    plain_extra = extras(plain) if plain is not kept else kept_extra

    live = _Live(batch, budget)
    live.alloc(INPUT_NODE, sizes[INPUT_NODE])  # the caller holds the batch throughout
    live.alloc("cache", (0, cache_bytes))

    # Forward, its moments at once: at each layer what it allocates (its output, what its
    # node keeps of its own) joins what is alive, and a tensor is freed after its last
    # reader unless a node or a checkpoint keeps it (each takes it at a layer no later than
    # that reader, so nothing kept is freed before backward).
    born, last_use = spans or cost.lifetimes(network)
    end = len(layers)
    holds = Counter(chain(*kept.tensors.values(), *kept.frames.values()))
    allocated, allocated_fixed, freed = [0] * end, [0] * end, [0] * (end + 1)
    for name, step in born.items():
        if name != INPUT_NODE:
            allocated[step] += sample[name]
            if name not in holds and last_use[name] < end:
                freed[last_use[name] + 1] += sample[name]
    for step, layer in enumerate(layers):
        if layer.name in kept_extra:
            allocated[step] += kept_extra[layer.name][0]
            allocated_fixed[step] += kept_extra[layer.name][1]
    live.forward([layer.name for layer in layers],
                 list(accumulate(map(operator.sub, allocated, freed))),
                 list(accumulate(allocated_fixed)))
    # What outlives it: each tensor kept (a reference for each keeper), the output (its
    # caller's until the loss is made: `lifetimes` ends it there) and what the nodes keep
    # of their own.
    result = storage[network.output]
    for name, count in holds.items():
        if name != INPUT_NODE:
            live.alloc(name, sizes[name], refs=count + (name == result))
    if result not in holds and result != INPUT_NODE:
        live.alloc(result, sizes[result])
    live.refs[INPUT_NODE] += holds[INPUT_NODE]
    for name, extra in kept_extra.items():
        live.alloc(("extra", name), extra)

    # Checkpointed segments: their layers in order. A segment's checkpoint keeps its inputs
    # from its first layer until the first of its layers that keeps anything (run plain) has
    # run its backward; each segment runs again once in backward.
    members: dict[tuple[str, ...], list[str]] = {}
    for layer in layers:
        if layer.name in segments:
            members.setdefault(segments[layer.name], []).append(layer.name)

    def keeps(name: str) -> bool:
        return bool(plain.tensors.get(name)) or name in plain_extra

    frame_ends = {next(n for n in names if keeps(n)): segment
                  for segment, names in members.items() if segment in kept.frames}

    # The loss: log-softmax (kept), then its gradient and the output's.
    out = network.output
    classes = values[out] * LOSS_BYTES
    live.alloc("log_softmax", (classes, 0))
    live.alloc("loss", (0, LOSS_BYTES))  # the scalar, held through backward
    live.alloc("total_weight", (0, LOSS_BYTES))  # nll_loss's sum of weights, kept
    live.mark("loss", out)
    if result != INPUT_NODE:
        live.release(result)
    live.release("cache")
    live.alloc("seed", (0, LOSS_BYTES), True)  # backward's seed: ones_like(loss)
    live.alloc("nll_grad", (classes, 0), True)
    live.mark("loss", out)
    live.release("seed")
    live.alloc(("grad", out), grad_sizes[out], True)
    live.mark("loss", out)
    live.release("nll_grad")
    live.release("log_softmax")
    grads: dict[str, object] = {out: ("grad", out)}  # layer -> the key of its gradient

    by_name = {layer.name: layer for layer in layers}
    redone: set[tuple[str, ...]] = set()

    def key(name: str, segment: tuple[str, ...]) -> object:  # a recomputed tensor is new
        return ("again", name) if segments.get(name) == segment else name

    def recompute(segment: tuple[str, ...]) -> None:
        names = members[segment]
        names = names[:max(i for i, n in enumerate(names) if keeps(n)) + 1]  # early stop
        inside = set(names)
        last: dict[str, int] = {}
        for i, name in enumerate(names):
            for read in by_name[name].inputs:
                if storage[read] in inside:
                    last[storage[read]] = i
        ends: dict[int, list[str]] = {}
        for i, name in enumerate(names):
            if storage[name] == name:
                ends.setdefault(last.get(name, i), []).append(name)
        for i, name in enumerate(names):
            if storage[name] == name:
                live.alloc(key(name, segment), sizes[name])
            for tensor in plain.tensors.get(name, ()):
                live.hold(key(tensor, segment))
            if name in plain_extra:
                live.alloc(("again extra", name), plain_extra[name])
            live.mark("recompute", name)
            for tensor in ends.get(i, ()):
                live.release(key(tensor, segment))

    alloc, release, mark = live.alloc, live.release, live.mark
    for layer in reversed(layers):
        name = layer.name
        grad = grads.pop(name, None)
        if grad is None:
            continue
        segment = segments.get(name)
        if segment is not None and segment not in redone and keeps(name):
            redone.add(segment)
            recompute(segment)
        kind = reg.kind_of(layer.kind)
        made: list[tuple[str, object]] = []
        temporary = NONE
        for read in dict.fromkeys(layer.inputs):
            if not recorded[read]:
                continue
            if _passes(kind, layer.args, values[read], values[name]):
                live.hold(grad)
                made.append((read, grad))
            else:
                alloc(("grad", name, read), grad_sizes[read], True)
                made.append((read, ("grad", name, read)))
                if kind.join is not None and grad_sizes[read] != grad_sizes[name]:
                    # the full product, before it is summed down to the broadcast factor
                    temporary = (temporary[0] + grad_sizes[name][0], temporary[1])
        own_plain = plain.extra.get(name)
        copies = own_plain.copies if own_plain is not None else 0
        if copies:  # autocast: the gradient of the low weight copy, cast up by its own node
            mark("backward", name, (temporary[0], temporary[1] + copies))
        else:
            live.weights += weight_bytes.get(name, 0)
            mark("backward", name, temporary)
        release(grad)
        if segment is not None and segment in redone:
            for tensor in plain.tensors.get(name, ()):
                release(key(tensor, segment))
            if name in plain_extra:
                release(("again extra", name))
        if name in kept_extra:
            release(("extra", name))
        for tensor in kept.tensors.get(name, ()):
            release(tensor)
        if name in frame_ends:
            for tensor in kept.frames[frame_ends.pop(name)]:
                release(tensor)
        if copies:
            live.weights += weight_bytes.get(name, 0)
            mark("backward", name, (0, copies))
        for read, new in made:
            old = grads.get(read)
            if old is None:
                grads[read] = new
            elif live.refs[old] == 1 and old != new:  # added in place
                release(new)
            else:  # into a new tensor
                alloc(("sum", name, read), grad_sizes[read], True)
                mark("backward", name)
                release(old)
                release(new)
                grads[read] = ("sum", name, read)

    for segment in frame_ends.values():  # backward is done: autograd frees its graph
        for tensor in kept.frames[segment]:
            live.release(tensor)
    live.mark("step", "", (0, step_bytes))
    return live.peak()


def _passes(kind: reg.LayerKind, args: object, read: int, out: int) -> bool:
    """Whether a layer's backward hands its input the very gradient it got (or slices of it)
    rather than a new one: a join that keeps none of its inputs (add, concatenation), a view
    that keeps every value (flatten: `read` and `out`, the values per sample of its input and
    of its own output, are equal; a slice's backward makes a gradient of its input's size), a
    layer that returns its input (dropout at p=0)."""
    if kind.join is not None:
        return not any(kind.saves_inputs([True] * 2))
    if kind.view:
        return read == out
    return args is not None and kind.returns_input(args)  # type: ignore[arg-type]
