"""What changed between two networks: layers matched structurally, arguments and costs compared.

`compare` aligns the two lowered graphs and gathers every figure into a frozen `DiffReport`;
`archspec.views.diff` renders it as text, markdown or JSON and `archspec.views.dot` draws
it. The figures are the ones `archspec table` shows (`archspec.analysis.report`); nothing is
computed twice.

Matching. A graph is read as a series-parallel tree: the chain from the input to the output,
where a join (concat, residual add) holds its branches, each the chain from the fork to one of
the join's inputs (the fork is the join's immediate dominator). Two chains are aligned by an
edit distance over their layers: a layer added or removed costs 2 per layer (a join with its
branches), a pair of one kind with other arguments 2, a pair of two kinds of one family
(MAXPOOL and AVGPOOL, RELU and TANH) 3, an equal pair 0; two joins pair at the cost of
aligning their branches, branch by branch. A name the spec gave in both files pairs those
two layers and no others. Ties are broken by the layers' content, never by which file is
first, so the diff of B against A is the diff of A against B turned around.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from archspec.analysis.report import Report, Row, build_report
from archspec.core.model import Frozen
from archspec.core.text import shape_text
from archspec.ir import INPUT_NODE, ArgValue, Layer, Network, Shape, TrainingPlan
from archspec.kinds import registry as reg
from archspec.lang.shapes import Shapes

VERSION = 1
Status = Literal["same", "changed", "added", "removed"]
Figure = Literal["output_shape", "params", "macs", "activations", "receptive_field"]

_SKIP = 2  # an added or removed layer
_CHANGED = 2  # a pair whose arguments differ
_KIND = 3  # a pair of two kinds of one family
_DP_CELLS = 250_000  # beyond this an alignment is greedy (linear time, not always optimal)
_WINDOW = 64  # how far the greedy alignment looks ahead for a layer to pair


class Figures(Frozen):
    """Per sample: what `archspec table` counts for a layer, a group of layers or a network."""

    params: int
    macs: int
    activations: int
    activation_bytes: int

    def __add__(self, other: Figures) -> Figures:
        return Figures(params=self.params + other.params, macs=self.macs + other.macs,
                       activations=self.activations + other.activations,
                       activation_bytes=self.activation_bytes + other.activation_bytes)

    def __sub__(self, other: Figures) -> Figures:
        return Figures(params=self.params - other.params, macs=self.macs - other.macs,
                       activations=self.activations - other.activations,
                       activation_bytes=self.activation_bytes - other.activation_bytes)


ZERO = Figures(params=0, macs=0, activations=0, activation_bytes=0)


class LayerSide(Frozen):
    """One layer as one of the two files has it, with its figures (None in a sketch)."""

    name: str
    kind: str
    written: str
    line: int
    col: int
    implicit: bool
    origin: str | None
    args: dict[str, ArgValue] | None
    stage: str | None  # `stage 2 (112x112)` or `classifier`, by the size of the layer's input
    block: str | None  # the outermost block call it came from: `down(128) at 13:1`
    output_shape: Shape | None
    receptive_field: tuple[int, int] | None
    figures: Figures | None


class ArgChange(Frozen):
    """One argument `old → new`, None where a kind lacks it. `name` is `kind` when the two
    kinds differ, and `arguments` (the layers as written) when a side lacks its arguments
    (a sketch: `CONV → CONV(6, 5)`)."""

    name: str
    old: ArgValue | None
    new: ArgValue | None


class Entry(Frozen):
    """A layer of A, of B, or a matched pair; `effects` names the figures a pair differs in."""

    status: Status
    a: LayerSide | None
    b: LayerSide | None
    changes: tuple[ArgChange, ...] = ()
    effects: tuple[Figure, ...] = ()

    @property
    def side(self) -> LayerSide:
        """B's layer where there is one, else A's."""
        side = self.b or self.a
        assert side is not None
        return side


class Consequence(Frozen):
    """A change and what follows from it: the entries after it, up to the next change, whose
    figures differ although their arguments do not. `causes` are entry indices (a layer, and
    the implicit layers added or removed with it); none for the network's own changes (its
    input). `delta` is B - A over the causes and every entry up to the next change."""

    causes: tuple[int, ...]
    affected: tuple[int, ...]
    delta: Figures | None


class Group(Frozen):
    """A stage or block of each network, side by side (None where a side has none)."""

    a: str | None
    b: str | None
    figures_a: Figures | None
    figures_b: Figures | None


class FieldChange(Frozen):
    """A network or training setting `old → new`, with its lines (None where not written)."""

    field: str
    old: str
    new: str
    line_a: int | None
    line_b: int | None


class Totals(Frozen):
    params: int
    macs: int
    activations: int  # the input included, as `archspec table` counts them
    activation_bytes: int
    output_shape: Shape
    receptive_field: tuple[int, int] | None  # of the output

    @property
    def figures(self) -> Figures:
        return Figures(params=self.params, macs=self.macs, activations=self.activations,
                       activation_bytes=self.activation_bytes)


class NetworkInfo(Frozen):
    file: str
    name: str
    description: str
    layers: int
    totals: Totals | None  # None for a sketch


class DiffReport(Frozen):
    version: int = VERSION
    a: NetworkInfo
    b: NetworkInfo
    network: tuple[FieldChange, ...]
    plan: tuple[FieldChange, ...]
    entries: tuple[Entry, ...]
    consequences: tuple[Consequence, ...]
    stages: tuple[Group, ...]
    blocks: tuple[Group, ...]

    @property
    def identical(self) -> bool:
        return not (self.network or self.plan
                    or any(e.status != "same" for e in self.entries))


@dataclass(frozen=True)
class Loaded:
    """One side's input: its file name, network and shapes."""

    file: str
    network: Network
    shapes: Shapes


# --- the graph as a tree ---------------------------------------------------------------------

@dataclass(eq=False)
class _Item:
    """A layer of a chain; a join also holds its branches (chains, maybe empty)."""

    layer: Layer
    branches: tuple[tuple[_Item, ...], ...] = ()
    size: int = 1  # layers in it, branches included
    args: str = ""  # the arguments as compared (`_canonical`), as text
    content: str = ""  # kind, arguments and branches: equal content, equal layers
    key: tuple[str, ...] = ()  # the content, then the name: for ties

    def layers(self) -> Iterator[Layer]:
        for branch in self.branches:
            for item in branch:
                yield from item.layers()
        yield self.layer


def _tree(network: Network) -> tuple[_Item, ...]:
    """The chain from input to output, joins holding their branches; a flat chain in
    topological order if the graph is not series-parallel from its input."""
    by_name = {layer.name: layer for layer in network.layers}
    idom: dict[str, str] = {}
    depth = {INPUT_NODE: 0}
    for layer in network.layers:
        head = layer.inputs[0]
        for other in layer.inputs[1:]:
            while head != other:
                if depth[head] >= depth[other]:
                    head = idom[head]
                else:
                    other = idom[other]
        idom[layer.name] = head if len(layer.inputs) > 1 else layer.inputs[0]
        depth[layer.name] = depth[idom[layer.name]] + 1

    def chain(end: str, stop: str) -> tuple[_Item, ...]:
        items = []
        node = end
        while node != stop:
            layer = by_name[node]
            branches = tuple(chain(i, idom[node]) for i in layer.inputs) \
                if len(layer.inputs) > 1 else ()
            items.append(_item(layer, branches))
            node = idom[node]
        return tuple(reversed(items))

    tree = chain(network.output, INPUT_NODE)
    if sum(item.size for item in tree) != len(network.layers):
        return tuple(_item(layer, ()) for layer in network.layers)
    return tree


def _item(layer: Layer, branches: tuple[tuple[_Item, ...], ...]) -> _Item:
    canonical = _canonical(layer)
    args = repr(sorted(canonical.items()) if canonical is not None else None)
    inner = [[i.content for i in b] for b in branches]
    if reg.kind_of(layer.kind).commutative:
        inner.sort()
    content = repr((layer.kind, args, inner))
    return _Item(layer, branches, 1 + sum(i.size for b in branches for i in b), args, content,
                 (content, layer.name, str(layer.named)))


def _keys(chain: tuple[_Item, ...]) -> tuple[tuple[str, ...], ...]:
    return tuple(item.key for item in chain)


def _canonical(layer: Layer) -> dict[str, Any] | None:
    """The arguments as compared: sizes as pairs (`3` and `3x3` are one size)."""
    if layer.args is None:
        return None
    sizes = _sizes(layer.kind)
    return {name: reg.pair(value) if name in sizes and isinstance(value, int | tuple) else value
            for name, value in layer.args.items()}


@functools.cache
def _sizes(kind: str) -> frozenset[str]:
    """The parameters of a kind that are sizes (`kernel`, `stride`, `pad`...)."""
    return frozenset(p.name for p in reg.kind_of(kind).params if p.type in ("size", "pad"))


# --- alignment -------------------------------------------------------------------------------

Op = tuple[_Item | None, _Item | None]  # (a, b): a pair, a removal (a, None), an addition


@dataclass
class _Aligner:
    shared: frozenset[str]  # names both specs gave
    cache: dict[tuple[int, int], tuple[int, list[Op]]] = field(default_factory=dict)

    def pairable(self, x: _Item, y: _Item) -> bool:
        a, b = x.layer, y.layer
        anchored = (a.named and a.name in self.shared) or (b.named and b.name in self.shared)
        if anchored and (a.name != b.name or not (a.named and b.named)):
            return False
        if a.kind == b.kind:
            return True
        return reg.kind_of(a.kind).family == reg.kind_of(b.kind).family

    def equal(self, x: _Item, y: _Item) -> bool:
        """One layer (or join with its branches) in both, by content; names aside."""
        return x.content == y.content and self.pairable(x, y)

    def branches(self, x: _Item, y: _Item) -> list[tuple[tuple[_Item, ...], tuple[_Item, ...]]]:
        """The branches of two paired joins, paired: first with first (a branch only one
        has, with nothing); for a commutative join of two branches (`+`), crossed when that
        is cheaper (`( A + ID )` is `( ID + A )`), the pairs then ordered by content."""
        n = max(len(x.branches), len(y.branches))
        pairs = [(x.branches[i] if i < len(x.branches) else (),
                  y.branches[i] if i < len(y.branches) else ()) for i in range(n)]
        if len(x.branches) == len(y.branches) == 2 and x.layer.kind == y.layer.kind \
                and reg.kind_of(x.layer.kind).commutative:
            (a0, b0), (a1, b1) = pairs
            if self.align(a0, b1)[0] + self.align(a1, b0)[0] < \
                    self.align(a0, b0)[0] + self.align(a1, b1)[0]:
                return sorted([(a0, b1), (a1, b0)],
                              key=lambda p: min(_keys(p[0]), _keys(p[1])))
        return pairs

    def pair_cost(self, x: _Item, y: _Item) -> int:
        cost = 0 if x.layer.kind == y.layer.kind else _KIND
        if cost == 0 and x.args != y.args:
            cost = _CHANGED
        for bx, by in self.branches(x, y):
            cost += self.align(bx, by)[0]
        return cost

    def align(self, a: Sequence[_Item], b: Sequence[_Item]) -> tuple[int, list[Op]]:
        """The cheapest alignment of two chains (cost, operations in order)."""
        memo = (id(a), id(b))
        if memo in self.cache:
            return self.cache[memo]
        head = 0
        while head < min(len(a), len(b)) and self.equal(a[head], b[head]):
            head += 1
        tail = 0
        while tail < min(len(a), len(b)) - head and self.equal(a[-1 - tail], b[-1 - tail]):
            tail += 1
        # Equal heads and tails pair at once; the table aligns what lies between.
        mid_a, mid_b = a[head:len(a) - tail], b[head:len(b) - tail]
        if len(mid_a) * len(mid_b) > _DP_CELLS:
            cost, ops = self._linear(mid_a, mid_b)
        else:
            cost, ops = self._table(mid_a, mid_b)
        result = (cost, self._slide([*zip(a[:head], b[:head], strict=True), *ops,
                                     *zip(a[len(a) - tail:], b[len(b) - tail:], strict=True)]))
        self.cache[memo] = result
        return result

    def _slide(self, ops: list[Op]) -> list[Op]:
        """Move each run of added (or removed) layers past the equal pairs after it while
        the run's first layer is like them, so that layers added to a run of equal ones are
        the last of it (VGG19's fourth convolution of a stage, not its first). The cost
        stays the same."""
        i = 0
        while i < len(ops):
            x, y = ops[i]
            if (x is None) == (y is None):
                i += 1
                continue
            side = 0 if x is None else 1  # the empty side of the run
            end = i
            while end < len(ops) and ops[end][side] is None:
                end += 1
            while end < len(ops) and None not in ops[end]:
                a, b = ops[end]
                first = ops[i][1 - side]
                assert a is not None and b is not None and first is not None
                if not self.equal(a, b):
                    break
                if side == 0 and self.equal(a, first):
                    ops[i:end + 1] = [(a, first), *ops[i + 1:end], (None, b)]
                elif side == 1 and self.equal(first, b):
                    ops[i:end + 1] = [(first, b), *ops[i + 1:end], (a, None)]
                else:
                    break
                i, end = i + 1, end + 1
            i = max(i + 1, end)
        return ops

    def _table(self, a: Sequence[_Item], b: Sequence[_Item]) -> tuple[int, list[Op]]:
        n, m = len(a), len(b)
        cost = [[0] * (m + 1) for _ in range(n + 1)]
        for i in range(n - 1, -1, -1):
            cost[i][m] = cost[i + 1][m] + _SKIP * a[i].size
        for j in range(m - 1, -1, -1):
            cost[n][j] = cost[n][j + 1] + _SKIP * b[j].size
        pairs: dict[tuple[int, int], int] = {}
        for i in range(n - 1, -1, -1):
            row, below = cost[i], cost[i + 1]
            for j in range(m - 1, -1, -1):
                best = min(below[j] + _SKIP * a[i].size, row[j + 1] + _SKIP * b[j].size)
                if self.pairable(a[i], b[j]):
                    pairs[i, j] = self.pair_cost(a[i], b[j])
                    best = min(best, below[j + 1] + pairs[i, j])
                row[j] = best
        ops: list[Op] = []
        i = j = 0
        while i < n or j < m:
            here = cost[i][j]
            if (i, j) in pairs and cost[i + 1][j + 1] + pairs[i, j] == here:
                ops.append((a[i], b[j]))
                i, j = i + 1, j + 1
                continue
            drop = i < n and cost[i + 1][j] + _SKIP * a[i].size == here
            add = j < m and cost[i][j + 1] + _SKIP * b[j].size == here
            if drop and (not add or a[i].key <= b[j].key):  # by content: symmetric
                ops.append((a[i], None))
                i += 1
            else:
                ops.append((None, b[j]))
                j += 1
        return cost[0][0], ops

    def _linear(self, a: Sequence[_Item], b: Sequence[_Item]) -> tuple[int, list[Op]]:
        """For very long chains, in linear time: pair the heads where they pair; else skip,
        on the side where it is shorter, to the nearest layer (within _WINDOW) that pairs
        with the other side's head; else drop both heads."""
        ops: list[Op] = []
        cost = i = j = 0
        while i < len(a) and j < len(b):
            if self.pairable(a[i], b[j]):
                ops.append((a[i], b[j]))
                cost += self.pair_cost(a[i], b[j])
                i, j = i + 1, j + 1
                continue
            skip_a = next((k for k in range(1, _WINDOW) if i + k < len(a)
                           and self.pairable(a[i + k], b[j])), None)
            skip_b = next((k for k in range(1, _WINDOW) if j + k < len(b)
                           and self.pairable(a[i], b[j + k])), None)
            if skip_a is not None and (skip_b is None or skip_a <= skip_b):
                take_a, take_b = skip_a, 0
            elif skip_b is not None:
                take_a, take_b = 0, skip_b
            else:
                take_a, take_b = 1, 1
            ops += [(x, None) for x in a[i:i + take_a]] + [(None, y) for y in b[j:j + take_b]]
            cost += _SKIP * (sum(x.size for x in a[i:i + take_a])
                             + sum(y.size for y in b[j:j + take_b]))
            i, j = i + take_a, j + take_b
        ops += [(x, None) for x in a[i:]] + [(None, y) for y in b[j:]]
        cost += _SKIP * (sum(x.size for x in a[i:]) + sum(y.size for y in b[j:]))
        return cost, ops

    def flatten(self, ops: list[Op]) -> Iterator[tuple[Layer | None, Layer | None]]:
        """Layer pairs in topological order: a join's branches before the join."""
        for x, y in ops:
            if x is not None and y is not None:
                for bx, by in self.branches(x, y):
                    yield from self.flatten(self.align(bx, by)[1])
                yield x.layer, y.layer
            elif x is not None:
                yield from ((layer, None) for layer in x.layers())
            elif y is not None:
                yield from ((None, layer) for layer in y.layers())


# --- the report ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Side:
    """One network's rows and groupings, for building LayerSides."""

    loaded: Loaded
    report: Report | None
    rows: dict[str, Row]
    stages: dict[str, str]
    blocks: dict[str, str]

    @classmethod
    def of(cls, loaded: Loaded) -> _Side:
        network = loaded.network
        report = build_report(network, loaded.shapes) if network.complete else None
        rows = {row.name: row for row in report.rows} if report else {}
        return cls(loaded, report, rows, _stages(rows), _blocks(network))

    def layer(self, layer: Layer) -> LayerSide:
        row = self.rows.get(layer.name)
        return LayerSide(
            name=layer.name, kind=layer.kind, written=layer.written, line=layer.span.line,
            col=layer.span.col, implicit=layer.implicit, origin=layer.origin,
            args=dict(layer.args) if layer.args is not None else None,
            stage=self.stages.get(layer.name), block=self.blocks.get(layer.name),
            output_shape=self.loaded.shapes.get(layer.name),
            receptive_field=row.receptive_field if row else None,
            figures=_figures(row) if row else None)

    @property
    def input(self) -> Figures | None:
        """What the input adds to the totals (its activations); None for a sketch."""
        if self.report is None:
            return None
        return Figures(params=0, macs=0, activations=self.report.input.activations,
                       activation_bytes=self.report.input.activation_bytes)

    def info(self) -> NetworkInfo:
        network, report = self.loaded.network, self.report
        totals = None
        if report is not None:
            t = report.totals
            totals = Totals(params=t.params, macs=t.macs, activations=t.activations,
                            activation_bytes=t.activation_bytes,
                            output_shape=report.rows[-1].output_shape,
                            receptive_field=report.rows[-1].receptive_field)
        return NetworkInfo(file=self.loaded.file, name=network.name,
                           description=network.description, layers=len(network.layers),
                           totals=totals)


def _figures(row: Row) -> Figures:
    return Figures(params=row.params, macs=row.macs, activations=row.activations,
                   activation_bytes=row.activation_bytes)


def _stages(rows: dict[str, Row]) -> dict[str, str]:
    """Each layer's stage: the run of layers reading one spatial size (VGG's five), numbered
    in order; layers that read or make a flat vector are the classifier."""
    sizes: dict[tuple[int, int], int] = {}
    stages = {}
    for name, row in rows.items():
        if len(row.input_shape) != 3 or len(row.output_shape) != 3:
            stages[name] = "classifier"
            continue
        size = (row.input_shape[1], row.input_shape[2])
        number = sizes.setdefault(size, len(sizes) + 1)
        stages[name] = f"stage {number} ({shape_text(size)})"
    return stages


def _blocks(network: Network) -> dict[str, str]:
    """The outermost block call of each layer made by one: `basic(64) at 13:1` (the repeats
    of a call are one block)."""
    found = {}
    for layer in network.layers:
        call = next((s for s in layer.scopes if s.call is not None), None)
        if call is not None and call.call is not None:
            found[layer.name] = f"{call.label} at {call.call.line}:{call.call.col}"
    return found


def compare(a: Loaded, b: Loaded) -> DiffReport:
    """Everything `archspec diff` shows: B against A."""
    side_a, side_b = _Side.of(a), _Side.of(b)
    shared = frozenset(x.name for x in a.network.layers if x.named) & \
        frozenset(y.name for y in b.network.layers if y.named)
    aligner = _Aligner(shared)
    tree_a, tree_b = _tree(a.network), _tree(b.network)
    entries = tuple(_entry(x, y, side_a, side_b)
                    for x, y in aligner.flatten(aligner.align(tree_a, tree_b)[1]))
    network = _network_changes(a.network, b.network)
    inputs = side_b.input - side_a.input if side_a.input and side_b.input else None
    return DiffReport(
        a=side_a.info(), b=side_b.info(), network=network,
        plan=_plan_changes(a.network.plan, b.network.plan),
        entries=entries, consequences=_consequences(entries, bool(network), inputs),
        stages=_linked(entries, lambda side: side.stage),
        blocks=_linked(entries, lambda side: side.block))


def _entry(x: Layer | None, y: Layer | None, side_a: _Side, side_b: _Side) -> Entry:
    a = side_a.layer(x) if x is not None else None
    b = side_b.layer(y) if y is not None else None
    if x is None or y is None or a is None or b is None:
        return Entry(status="added" if x is None else "removed", a=a, b=b)
    changes = [ArgChange(name="kind", old=x.kind, new=y.kind)] if x.kind != y.kind else []
    old, new = _canonical(x) or {}, _canonical(y) or {}
    if x.args is None or y.args is None:  # a sketch: the layers as written
        changes += [ArgChange(name="arguments", old=x.written, new=y.written)] \
            if x.args != y.args else []
    else:
        # One kind: its arguments in the registry's order; two kinds: by name (symmetric).
        given = {*x.args, *y.args}
        names = [p.name for p in reg.kind_of(x.kind).params if p.name in given] \
            if x.kind == y.kind else sorted(given)
        changes += [ArgChange(name=n, old=x.args.get(n), new=y.args.get(n))
                    for n in names if old.get(n) != new.get(n)]
    effects: list[Figure] = []
    if a.output_shape != b.output_shape:
        effects.append("output_shape")
    if a.figures is not None and b.figures is not None:
        effects += [f for f in ("params", "macs", "activations")
                    if getattr(a.figures, f) != getattr(b.figures, f)]
    if a.receptive_field != b.receptive_field:
        effects.append("receptive_field")
    return Entry(status="changed" if changes else "same", a=a, b=b, changes=tuple(changes),
                 effects=tuple(effects))


def _delta(entry: Entry) -> Figures | None:
    a = entry.a.figures if entry.a else ZERO
    b = entry.b.figures if entry.b else ZERO
    return None if a is None or b is None else b - a


def _consequences(entries: Sequence[Entry], network: bool, inputs: Figures | None
                  ) -> tuple[Consequence, ...]:
    """Each change with the unchanged entries after it (up to the next change) that it
    affects. An implicit layer added or removed with its origin is part of that change (the
    origin first, though an implied flatten comes before its FC). The
    network's own changes (its input; `inputs` is what the input itself adds, None when
    unknown) come first, with the entries before any layer's change."""
    found: list[Consequence] = []
    causes: list[int] = []
    members: list[int] = []

    def close() -> None:
        if not causes and not network:
            return
        deltas = [_delta(entries[i]) for i in causes + members]
        found.append(Consequence(causes=tuple(causes),
                                 delta=_sum(deltas if causes else [inputs, *deltas]),
                                 affected=tuple(i for i in members if entries[i].effects)))

    for index, entry in enumerate(entries):
        if entry.status == "same":
            members.append(index)
            continue
        side = entry.side
        first = entries[causes[0]] if causes and not members else None
        if first is not None and entry.status != "changed" and first.status == entry.status:
            if side.implicit and side.origin == first.side.name:  # its activation, its BN
                causes.append(index)
                continue
            if first.side.implicit and first.side.origin == side.name:  # its implied flatten
                causes.insert(0, index)
                continue
        close()
        causes, members = [index], []
    close()
    return tuple(found)


def _sum(figures: Sequence[Figures | None]) -> Figures | None:
    return None if any(f is None for f in figures) else sum(
        (f for f in figures if f is not None), ZERO)


def _linked(entries: Sequence[Entry], label: Callable[[LayerSide], str | None]
            ) -> tuple[Group, ...]:
    """Stages or blocks side by side: a group of A and one of B go together when a layer of
    each is matched (ZFNet's stride-2 CONV2 splits AlexNet's 27x27 stage in two: the three
    are one row); one only A or only B has stands alone. In order of first appearance."""
    parent: dict[tuple[int, str], tuple[int, str]] = {}

    def root(key: tuple[int, str]) -> tuple[int, str]:
        while parent[key] != key:
            key = parent[key]
        return key

    keyed = []
    for entry in entries:
        here = []
        for k, side in enumerate((entry.a, entry.b)):
            name = label(side) if side is not None else None
            if side is not None and name is not None:
                parent.setdefault((k, name), (k, name))
                here.append(((k, name), side.figures))
        if len(here) == 2 and root(here[0][0]) != root(here[1][0]):
            parent[root(here[1][0])] = root(here[0][0])
        keyed += here
    # Per group: the names on each side (A, B), and the figures on each side.
    groups: dict[tuple[int, str], tuple[tuple[list[str], list[str]],
                                        tuple[list[Figures | None], list[Figures | None]]]] = {}
    for (k, name), figures in keyed:
        names, sums = groups.setdefault(root((k, name)), (([], []), ([], [])))
        if name not in names[k]:
            names[k].append(name)
        sums[k].append(figures)
    return tuple(Group(a=", ".join(la) or None, b=", ".join(lb) or None,
                       figures_a=_sum(fa) if la else None, figures_b=_sum(fb) if lb else None)
                 for (la, lb), (fa, fb) in groups.values())


def _network_changes(a: Network, b: Network) -> tuple[FieldChange, ...]:
    found = []
    # The stored shape, channels first: `input 16x16x3 hwc` is how `3x16x16` was written.
    if a.input.shape != b.input.shape:
        found.append(FieldChange(
            field="input", old=_input_text(a), new=_input_text(b),
            line_a=a.input.span.line, line_b=b.input.span.line))
    if a.dtype != b.dtype:
        found.append(FieldChange(field="dtype", old=a.dtype, new=b.dtype, line_a=None,
                                 line_b=None))
    if a.init != b.init:
        found.append(FieldChange(field="init", old=_init_text(a), new=_init_text(b),
                                 line_a=None, line_b=None))
    return tuple(found)


def _input_text(network: Network) -> str:
    text = shape_text(network.input.shape)
    return text if network.input.order != "hwc" else f"{text} (hwc)"


def _init_text(network: Network) -> str:
    init = network.init
    return f"normal(std={init.std:g})" if init.name == "normal" else init.name


def _plan_changes(a: TrainingPlan | None, b: TrainingPlan | None) -> tuple[FieldChange, ...]:
    """The `train:` sections, setting by setting (`optimizer.lr`)."""
    if a is None and b is None:
        return ()
    if a is None or b is None:
        plan = a or b
        assert plan is not None
        line = min((s.line for s in plan.spans.values()), default=None)
        return (FieldChange(field="train", old="present" if a else "none",
                            new="present" if b else "none",
                            line_a=line if a else None, line_b=line if b else None),)
    flat_a, flat_b = _flat(a.model_dump(mode="json", exclude={"spans"})), \
        _flat(b.model_dump(mode="json", exclude={"spans"}))
    return tuple(
        FieldChange(field=f"train.{key}", old=str(flat_a.get(key, "-")),
                    new=str(flat_b.get(key, "-")),
                    line_a=_plan_line(a, key), line_b=_plan_line(b, key))
        for key in dict.fromkeys([*flat_a, *flat_b]) if flat_a.get(key) != flat_b.get(key))


def _plan_line(plan: TrainingPlan, key: str) -> int | None:
    span = plan.spans.get(key.split(".")[0])
    return span.line if span else None


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(_flat(value, f"{prefix}.{key}" if prefix else key))
    return out
