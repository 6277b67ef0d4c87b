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

The forward's moments are worked out at once (lists and prefix sums: nothing a node or a
checkpoint keeps is freed before backward), and so are backward's for a plain chain (each
layer reads the one before it alone; no join, autocast weight copy or checkpoint), where
each gradient is made by the next layer and freed by its own, and each kept tensor is freed
by its first keeper; any other network's backward is played event by event. Both ways give
the same moments (tests/test_peak.py).

Every amount is linear in the batch, so the largest batch under a budget is exact.
Not counted: temporaries a layer makes and frees inside itself (LRN is six torch ops), a
kernel's own workspace, the allocator's caching and rounding.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate, chain, filterfalse, repeat
from operator import attrgetter

from archspec.analysis import cost
from archspec.core.record import Record
from archspec.ir import INPUT_NODE, Network
from archspec.kinds import registry as reg

LABEL_BYTES = 8  # a class index per sample, int64
LOSS_BYTES = 4  # cross-entropy's log-softmax and its gradients are float32


class Peak(Record):
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
    state), also the largest batch whose peak fits it.

    What is alive is counted as bytes per sample and bytes whatever the batch, activations
    apart from gradients. Three kinds of things live: tensors several owners may hold (a
    layer's output, kept by the nodes that read it: by name in `refs`, their bytes per
    sample in `sample`), gradients (numbered as made, reference-counted in `grad_refs`: a
    gradient passed on is held by each input it reaches) and bytes of one owner that frees
    them once (what a node keeps of its own, the loss's tensors). Every amount is linear in
    the batch, so the largest batch under a budget is the least over the step's moments."""
    storage, width, recorded = kept.storages, kept.width, kept.recorded
    layers = network.layers
    names = list(map(attrgetter("name"), layers))
    sample: dict[object, int] = dict(zip(  # bytes
        width, map(operator.mul, map(values.__getitem__, width), width.values()), strict=True))

    def grad_size(name: str) -> int:
        # A gradient has its tensor's own shape, whatever storage the tensor shares: a
        # view's (a slice's, a flatten's of one) is the size of its own values, not of its
        # input's.
        return values[name] * width[storage[name]]

    def extras(keep: cost.Keeping) -> dict[str, Size]:  # what each node keeps of its own
        return {name: (own.per_sample, own.per_batch + own.copies)
                for name, own in keep.extra.items()
                if own.per_sample or own.per_batch or own.copies}

    # Whether a layer's backward passes its gradient on to an input (`_passes`) depends on its
    # kind alone but for a view or a layer that may return its input: the network's kinds are
    # classified once (`_passing`).
    passing = {kind: _passing(reg.kind_of(kind)) for kind in set(map(attrgetter("kind"), layers))}
    nodes = [INPUT_NODE, *names]
    passed = None
    if not segments and not kept.frames and not any(map(attrgetter("copies"),
                                                        plain.extra.values())):
        grad_at = list(map(operator.mul, map(values.__getitem__, nodes),  # by node
                           map(width.__getitem__, map(storage.__getitem__, nodes))))
        passed = _chain_passes(network, nodes, passing, values, grad_at)
    # What each node keeps of its own, for backward event by event (a plain chain's is
    # worked out at once from `kept.extra`).
    kept_extra = extras(kept) if passed is None else {}
    plain_extra = extras(plain) if passed is None and plain is not kept else kept_extra

    # What is alive, the step's peak so far (`top`, and what was alive then: `best`) and the
    # largest batch under the budget so far.
    acts, acts_fixed = LABEL_BYTES + sample[INPUT_NODE], cache_bytes
    grads = grads_fixed = weights = 0
    refs: dict[object, int] = {INPUT_NODE: 1}  # the caller holds the batch throughout
    grad_refs: list[int] = []
    grad_sizes: list[int] = []
    top = -1
    best: tuple[str, str, Size, Size, int, Size] = ("", "", NONE, NONE, 0, NONE)
    largest: int | None = None

    def mark(phase: str, layer: str, temporary: Size = NONE) -> None:
        """A moment the step may peak at: what is alive now, plus a `temporary`."""
        nonlocal top, best, largest
        per_sample = acts + grads + temporary[0]
        fixed = acts_fixed + grads_fixed + temporary[1] + weights
        if budget is not None:
            fits = max(0, budget - fixed) // per_sample
            largest = fits if largest is None else min(largest, fits)
        if per_sample * batch + fixed > top:
            top = per_sample * batch + fixed
            best = (phase, layer, (acts, acts_fixed), (grads, grads_fixed), weights, temporary)

    def release(key: object) -> None:
        """A reference to a tensor dropped: the last one frees it."""
        nonlocal acts
        count = refs[key] - 1
        if count:
            refs[key] = count
        else:
            del refs[key]
            acts -= sample[key]

    def gradient(size: int) -> int:
        """A new gradient of `size` bytes per sample, with one reference; its number."""
        nonlocal grads
        grad_refs.append(1)
        grad_sizes.append(size)
        grads += size
        return len(grad_refs) - 1

    def release_gradient(grad: int) -> None:
        """A reference to a gradient dropped: the last one frees it."""
        nonlocal grads
        count = grad_refs[grad] = grad_refs[grad] - 1
        if not count:
            grads -= grad_sizes[grad]

    def moments(phase: str, layers: Sequence[str], at_sample: Sequence[int],
                at_fixed: Sequence[int], at_grads: Sequence[int] | None = None,
                at_weights: Sequence[int] | None = None) -> None:
        """Moments at once, as `mark` each in turn: at the i-th `layers[i]` has run, with
        activations of `at_sample[i]` bytes per sample and `at_fixed[i]` bytes, gradients of
        `at_grads[i]` bytes per sample (and `grads_fixed`), weight gradients of
        `at_weights[i]` bytes and no temporary; without `at_grads` or `at_weights`, the
        gradients or weight gradients alive now throughout."""
        nonlocal top, best, largest

        def per_sample() -> Iterable[int]:  # beyond `more_sample`
            return at_sample if at_grads is None else map(operator.add, at_sample, at_grads)

        def fixed() -> Iterable[int]:  # beyond `more_fixed`
            return at_fixed if at_weights is None else map(operator.add, at_fixed, at_weights)

        more_sample = grads if at_grads is None else 0
        more_fixed = grads_fixed + (weights if at_weights is None else 0)
        if budget is not None:
            fits = min(max(0, budget - more_fixed - bytes_fixed) // (more_sample + bytes_sample)
                       for bytes_sample, bytes_fixed in zip(per_sample(), fixed(), strict=True))
            largest = fits if largest is None else min(largest, fits)
        totals = list(map(operator.add, map(operator.mul, per_sample(), repeat(batch)),
                          fixed()))
        most = max(totals)
        if most + more_sample * batch + more_fixed > top:
            at = totals.index(most)  # the first moment of the most
            top = most + more_sample * batch + more_fixed
            best = (phase, layers[at], (at_sample[at], at_fixed[at]),
                    (grads if at_grads is None else at_grads[at], grads_fixed),
                    weights if at_weights is None else at_weights[at], NONE)

    # Forward, its moments at once: at each layer what it allocates (its output, what its
    # node keeps of its own) joins what is alive, and a tensor is freed after its last
    # reader unless a node or a checkpoint keeps it (each takes it at a layer no later than
    # that reader, so nothing kept is freed before backward). The most is the first moment
    # of the most, as `mark` keeps.
    born, last_use = spans or cost.lifetimes(network, kept.storages)
    end = len(layers)
    holds = Counter(chain(*kept.tensors.values(), *kept.frames.values()))
    # Layer i makes the tensor born at step i, if any.
    allocated = map(operator.mul, map(born.__contains__, names),
                    map(sample.get, names, repeat(0)))
    freed = [0] * (end + 1)
    for name in filterfalse(holds.__contains__, born):  # the tensors no node keeps
        if name != INPUT_NODE and last_use[name] < end:
            freed[last_use[name] + 1] += sample[name]
    own = list(map(kept.extra.get, names, repeat(cost.Kept(0, 0))))  # by step
    own_sample = list(map(attrgetter("per_sample"), own))
    own_fixed = list(map(operator.add, map(attrgetter("per_batch"), own),
                         map(attrgetter("copies"), own)))
    del own
    # (each list has a moment more than the forward, the first: what is alive now)
    moments("forward", names, list(accumulate(map(operator.sub, map(
        operator.add, allocated, own_sample), freed), initial=acts))[1:],
        list(accumulate(own_fixed, initial=acts_fixed))[1:])
    del freed
    # What outlives it: each tensor kept (a reference for each keeper), the output (its
    # caller's until the loss is made: `lifetimes` ends it there) and what the nodes keep
    # of their own.
    result = storage[network.output]
    refs[INPUT_NODE] += holds.pop(INPUT_NODE, 0)
    if result != INPUT_NODE:
        holds[result] += 1
    refs.update(holds)
    acts += sum(map(sample.__getitem__, holds))
    acts += sum(map(attrgetter("per_sample"), kept.extra.values()))
    acts_fixed += sum(map(attrgetter("per_batch"), kept.extra.values())) + sum(
        map(attrgetter("copies"), kept.extra.values()))

    # Checkpointed segments: their layers in order. A segment's checkpoint keeps its inputs
    # from its first layer until the first of its layers that keeps anything (run plain) has
    # run its backward; each segment runs again once in backward.
    members: dict[tuple[str, ...], list[str]] = {}
    for name in names if segments else ():
        if name in segments:
            members.setdefault(segments[name], []).append(name)

    def keeps(name: str) -> bool:
        return bool(plain.tensors.get(name)) or name in plain_extra

    frame_ends = {next(n for n in names if keeps(n)): segment
                  for segment, names in members.items() if segment in kept.frames}

    # The loss: log-softmax (kept), then its gradient and the output's.
    out = network.output
    classes = values[out] * LOSS_BYTES
    acts += classes  # log-softmax
    acts_fixed += 2 * LOSS_BYTES  # the scalar loss, held through backward; nll_loss's sum
    mark("loss", out)
    if result != INPUT_NODE:
        release(result)
    acts_fixed -= cache_bytes
    grads_fixed += LOSS_BYTES  # backward's seed: ones_like(loss)
    nll_grad = gradient(classes)
    mark("loss", out)
    grads_fixed -= LOSS_BYTES
    grad_of = {out: gradient(grad_size(out))}  # layer -> its gradient
    mark("loss", out)
    release_gradient(nll_grad)
    acts -= classes

    by_name = {layer.name: layer for layer in layers} if segments else {}  # for `recompute`
    redone: set[tuple[str, ...]] = set()

    def key(name: str, segment: tuple[str, ...]) -> object:  # a recomputed tensor is new
        return ("again", name) if segments.get(name) == segment else name

    def recompute(segment: tuple[str, ...]) -> None:
        nonlocal acts, acts_fixed
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
                sample["again", name] = sample[name]
                refs["again", name] = 1
                acts += sample[name]
            for tensor in plain.tensors.get(name, ()):
                refs[key(tensor, segment)] += 1
            if name in plain_extra:
                acts += plain_extra[name][0]
                acts_fixed += plain_extra[name][1]
            mark("recompute", name)
            for tensor in ends.get(i, ()):
                release(key(tensor, segment))

    if passed is not None:
        # A plain chain (each layer reads the one before it alone, no join, no weight copy,
        # nothing checkpointed): backward's moments at once, as the forward's. Layer i's
        # backward runs when every layer after it records its output (from the output down
        # to `first`); it holds its own gradient and the one it makes for its input (when
        # recorded and not passed on: a gradient passed on is its input's, of the same
        # size), the weight gradients made so far, and what the loss left alive but what the
        # layers after it freed: what their nodes kept of their own, and each tensor whose
        # last keeper in backward's order (the first layer that keeps it) they were, the
        # input batch apart (its caller holds it).
        count = len(names)
        records = list(map(recorded.__getitem__, nodes))
        outputs = records[1:count]  # whether each layer's output is recorded, but the last's
        first = count - 1 - outputs[::-1].index(False) if False in outputs else 0
        # Each tensor kept, paired with each step that keeps it, from the last step to the
        # first: the dict keeps the last pair, the first keeper's.
        keepers = list(map(kept.tensors.get, reversed(names), repeat(())))
        last_keeper = dict(zip(chain.from_iterable(keepers), chain.from_iterable(
            map(repeat, range(count - 1, -1, -1), map(len, keepers))), strict=True))
        del keepers
        last_keeper.pop(INPUT_NODE, None)
        frees = [0] * count  # by step (those before `first` never run)
        for step, size in zip(last_keeper.values(), map(sample.__getitem__, last_keeper),
                              strict=True):
            frees[step] += size
        del last_keeper
        # In backward's order, from the output down to `first`; what each layer frees after
        # its moment is gone from the next (a moment more than backward's at the end: what
        # is alive after it).
        run = slice(first, count)
        at_sample = list(accumulate(map(operator.neg, map(
            operator.add, reversed(own_sample[run]), reversed(frees[run]))), initial=acts))
        at_fixed = list(accumulate(map(operator.neg, reversed(own_fixed[run])),
                                   initial=acts_fixed))
        making = map(operator.mul, map(operator.mul, grad_at[run], records[run]),
                     map(operator.not_, passed[run]))  # for each one's input
        at_grads = list(map(operator.add, grad_at[first + 1:], making))[::-1]
        grads = grad_at[first] * records[first]  # after backward: the input's, if recorded
        del grad_at, records, passed, frees, own_sample, own_fixed  # (100k-layer chains)
        at_weights = list(accumulate(reversed(list(map(weight_bytes.get, names[run],
                                                        repeat(0)))), initial=weights))
        del at_weights[0]  # each layer's own weights' gradients are made at its moment
        moments("backward", names[run][::-1], at_sample, at_fixed, at_grads, at_weights)
        acts, acts_fixed, weights = at_sample[-1], at_fixed[-1], at_weights[-1]
    else:
        # Backward, event by event.
        backward = names[::-1]
        for layer, name, own_plain, extra, tensors, weight in zip(
                reversed(layers), backward, map(plain.extra.get, backward),
                map(kept_extra.get, backward), map(kept.tensors.get, backward, repeat(())),
                map(weight_bytes.get, backward, repeat(0)), strict=True):
            grad = grad_of.pop(name, None)
            if grad is None:
                continue
            segment = segments.get(name) if segments else None
            if segment is not None and segment not in redone and keeps(name):
                redone.add(segment)
                recompute(segment)
            passes, join = passing[layer.kind]
            inputs = layer.inputs
            made: list[tuple[str, int]] = []
            temporary = NONE
            for read in dict.fromkeys(inputs) if len(inputs) > 1 else inputs:
                if not recorded[read]:
                    continue
                if passes is not False and (
                        passes is True or _passes(reg.kind_of(layer.kind), layer.args,
                                                  values[read], values[name])):
                    grad_refs[grad] += 1
                    made.append((read, grad))
                else:
                    size = values[read] * width[storage[read]]  # `gradient(grad_size(read))`
                    grad_refs.append(1)
                    grad_sizes.append(size)
                    grads += size
                    made.append((read, len(grad_refs) - 1))
                    if join and size != grad_size(name):
                        # the full product, before it is summed down to the broadcast factor
                        temporary = (temporary[0] + grad_size(name), temporary[1])
            copies = own_plain.copies if own_plain is not None else 0
            if copies:  # autocast: the gradient of the low weight copy, cast up by its own node
                mark("backward", name, (temporary[0], temporary[1] + copies))
            else:
                weights += weight
                mark("backward", name, temporary)
            release_gradient(grad)
            if segment is not None and segment in redone:
                for tensor in plain.tensors.get(name, ()):
                    release(key(tensor, segment))
                if name in plain_extra:
                    acts -= plain_extra[name][0]
                    acts_fixed -= plain_extra[name][1]
            if extra is not None:
                acts -= extra[0]
                acts_fixed -= extra[1]
            for tensor in tensors:
                release(tensor)
            if name in frame_ends:
                for tensor in kept.frames[frame_ends.pop(name)]:
                    release(tensor)
            if copies:
                weights += weight
                mark("backward", name, (0, copies))
            for read, new in made:
                old = grad_of.get(read)
                if old is None:
                    grad_of[read] = new
                elif grad_refs[old] == 1 and old != new:  # added in place
                    release_gradient(new)
                else:  # into a new tensor
                    grad_of[read] = gradient(grad_size(read))
                    mark("backward", name)
                    release_gradient(old)
                    release_gradient(new)

    for segment in frame_ends.values():  # backward is done: autograd frees its graph
        for tensor in kept.frames[segment]:
            release(tensor)
    mark("step", "", (0, step_bytes))
    phase, layer_name, (act_sample, act_fixed), (grad_sample, grad_fixed), weights, temporary \
        = best
    return Peak(top, phase, layer_name, act_sample * batch + act_fixed,
                grad_sample * batch + grad_fixed, weights,
                temporary[0] * batch + temporary[1], largest)


def _chain_passes(network: Network, nodes: Sequence[str],
                  passing: Mapping[str, tuple[bool | None, bool]], values: Mapping[str, int],
                  grad_at: Sequence[int]) -> list[bool] | None:
    """Whether each layer of a plain chain passes its gradient on to its input (`_passes`),
    or None when the network is none: each layer reads the one before it alone (`nodes`:
    the input, then the layers), the last is the output, no join, and a layer that passes
    its gradient on has one of its input's size (`grad_at`, by node)."""
    layers = network.layers
    if (network.output != nodes[-1] or any(join for _, join in passing.values())
            or not all(map(operator.eq, map(attrgetter("inputs"), layers), zip(nodes)))):
        return None
    passes = list(map({kind: rule for kind, (rule, _) in passing.items()}.__getitem__,
                      map(attrgetter("kind"), layers)))
    step = -1
    for _ in range(passes.count(None)):  # a view or a layer that may return its input
        step = passes.index(None, step + 1)
        passes[step] = _passes(reg.kind_of(layers[step].kind), layers[step].args,
                               values[nodes[step]], values[nodes[step + 1]])
    if any(grad_at[step] != grad_at[step + 1] for step, rule in enumerate(passes) if rule):
        return None
    return passes  # type: ignore[return-value]


def _passing(kind: reg.LayerKind) -> tuple[bool | None, bool]:
    """How `_passes` goes for a kind: always (True), never (False) or it depends on the
    layer (None); and whether the kind is a join."""
    if kind.join is not None:
        return _passes(kind, None, 0, 0), True
    if kind.view or kind.returns_input is not reg.LayerKind._field_defaults["returns_input"]:
        return None, False
    return False, False


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
