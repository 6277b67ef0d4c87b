"""What weight initialisation does to activations and gradients, layer by layer.

The lecture's study, for any spec: unit-gaussian input goes through the module that
`archspec.backends.torch.build.to_torch` builds (with the spec's `init`, or another scheme
put in its place), forward hooks take every layer's output and tensor hooks its gradient when the
backward pass of a random linear loss reaches it. The figures are gathered once into `Probe`
records; the text table, the JSON and the plot are views of them.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from archspec.backends.torch.build import to_torch
from archspec.backends.torch.emit import layer_paths
from archspec.core.files import write_atomic
from archspec.core.json_text import strict_json
from archspec.core.text import align
from archspec.ir import InitScheme, Network
from archspec.kinds import registry as reg
from archspec.lang.shapes import Shapes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# A bounded activation's unit is saturated within 1 - SATURATION of a bound (the registry's
# `bounds`): tanh |y| > 0.99; sigmoid y < 0.01 or y > 0.99.
SATURATION = 0.99
COLLAPSE = 1e-2  # an activation std (the input is unit gaussian) below this collapsed, and a
# gradient whose per-sample norm is below this fraction of the output gradient's vanished
EXPLODE = 1e2  # above this (the same measures), exploded
MOSTLY = 0.5  # a layer is called saturated or dead when more than this fraction is
HISTOGRAM_VALUES = 20_000  # values kept per layer for the plot's histograms
MEMORY_BUDGET = 512 * 2**20  # bytes of activations and gradients held at once
PLOT_LAYERS = 12  # at most this many histograms per row


def scheme_text(init: InitScheme) -> str:
    """The scheme as a spec writes it: `normal(std=0.01)`, `kaiming`."""
    return f"normal(std={init.std:g})" if init.name == "normal" else init.name


@dataclass(frozen=True)
class LayerProbe:
    """One layer's figures. `saturated` is None for kinds that neither saturate nor die."""

    name: str
    kind: str
    mean: float
    std: float
    grad_mean: float | None
    grad_std: float | None
    saturated: float | None
    values: np.ndarray = field(repr=False, compare=False)
    # The per-sample gradient norm (root mean square over the samples) over the output's.
    # Per-element figures depend on the layer's size: a 64x32x32 map spreads the gradient of
    # ten outputs over 65,536 elements, so its gradient std is small while nothing vanished.
    grad_norm: float | None = None

    @property
    def post_activation(self) -> bool:
        """An output after a nonlinearity: the rows the lecture's tables print."""
        return reg.kind_of(self.kind).family == "activation"

    @property
    def flags(self) -> list[str]:
        words = []
        if not (math.isfinite(self.mean) and math.isfinite(self.std)):
            words.append("non-finite")
        elif self.std < COLLAPSE:
            words.append("collapsed")
        elif self.std > EXPLODE:
            words.append("exploded")
        if self.grad_norm is not None and not math.isfinite(self.grad_norm):
            words.append("grad non-finite")
        elif self.grad_norm is not None and self.grad_norm < COLLAPSE:
            words.append("grad vanished")
        elif self.grad_norm is not None and self.grad_norm > EXPLODE:
            words.append("grad exploded")
        if self.saturated is not None and self.saturated > MOSTLY:
            words.append("dead" if reg.kind_of(self.kind).dies else "saturated")
        return words

    def as_json(self) -> dict[str, object]:
        """The figures (written by `render_json`, null for those that are not finite:
        `flags` then says `non-finite` or `grad non-finite`)."""
        return {"name": self.name, "kind": self.kind, "mean": self.mean, "std": self.std,
                "grad_mean": self.grad_mean, "grad_std": self.grad_std,
                "grad_norm": self.grad_norm, "saturated": self.saturated, "flags": self.flags}


@dataclass(frozen=True)
class Probe:
    """A network under one init scheme: input figures and every layer's, in graph order."""

    network: str
    init: str
    samples: int
    seed: int
    input_mean: float
    input_std: float
    layers: tuple[LayerProbe, ...]
    unseen: tuple[str, ...] = ()  # joins the built module computes inside another expression

    @property
    def findings(self) -> list[str]:
        """What stops being finite, collapses, explodes, saturates or dies, in words."""
        found = [text for flag in _NON_FINITE_FLAGS
                 if (text := _non_finite_finding(self.layers, flag)) is not None]
        found += [text for flag in _SCALE_FLAGS
                 if (text := _scale_finding(self.layers, flag)) is not None]
        saturated = [p.name for p in self.layers if "saturated" in p.flags]
        if saturated:
            found.append(f"{_names(saturated)} saturate: most outputs sit in the flat tails of "
                         "the nonlinearity, where almost no gradient passes")
        dead = [p.name for p in self.layers if "dead" in p.flags]
        if dead:
            found.append(f"{_names(dead)}: most units are dead, zero for all {self.samples} "
                         "samples, so their weights get no gradient")
        return found or ["no layer's activations or gradients collapse or explode"]

    def as_json(self) -> dict[str, object]:
        return {"network": self.network, "init": self.init, "samples": self.samples,
                "seed": self.seed, "input": {"mean": self.input_mean, "std": self.input_std},
                "layers": [layer.as_json() for layer in self.layers],
                "unseen": list(self.unseen), "findings": self.findings}


def _names(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 4 else f"{names[0]} ... {names[-1]} " \
        f"({len(names)} layers)"


# Each non-finite flag: the sentence's subject.
_NON_FINITE_FLAGS: dict[str, str] = {"non-finite": "activations",
                                     "grad non-finite": "gradients"}


def _non_finite_finding(layers: Sequence[LayerProbe], flag: str) -> str | None:
    """`activations are not finite (inf or nan) in 18 of 20 layers, first at fc2`: where the
    values stop being finite (for gradients, the layer nearest the output)."""
    hit = [p for p in layers if flag in p.flags]
    if not hit:
        return None
    backward = flag.startswith("grad")
    first = hit[-1] if backward else hit[0]
    return (f"{_NON_FINITE_FLAGS[flag]} are not finite (inf or nan) in {len(hit)} of "
            f"{len(layers)} layers, {'nearest the output' if backward else 'first'} at "
            f"{first.name}")


# Each scale flag: the sentence's subject and verb, what is measured, and the bound crossed.
_SCALE_FLAGS: dict[str, tuple[str, str, str]] = {
    "collapsed": ("activations collapse", "std", f"below {COLLAPSE:g}"),
    "exploded": ("activations explode", "std", f"above {EXPLODE:g}"),
    "grad vanished": ("gradients vanish", "per-sample gradient norm",
                      f"below {COLLAPSE:g} x the output's"),
    "grad exploded": ("gradients explode", "per-sample gradient norm",
                      f"above {EXPLODE:g} x the output's"),
}


def _scale_finding(layers: Sequence[LayerProbe], flag: str) -> str | None:
    """`activations collapse in 14 of 20 layers: std below 0.01 first at fc4 (0.00238), ...`;
    for gradients the figure is the norm ratio (`grad_norm`)."""
    hit = [p for p in layers if flag in p.flags]
    if not hit:
        return None
    headline, measure, bound = _SCALE_FLAGS[flag]
    backward = flag.startswith("grad")

    def value(p: LayerProbe) -> float:
        figure = p.grad_norm if backward else p.std
        assert figure is not None  # a flagged figure exists
        return figure

    # Gradients flow backwards: their trouble starts at the layer nearest the output.
    first = hit[-1] if backward else hit[0]
    worst = (min if bound.startswith("below") else max)(hit, key=value)
    text = (f"{headline} in {len(hit)} of {len(layers)} layers: {measure} {bound} "
            f"{'nearest the output' if backward else 'first'} at {first.name} "
            f"({value(first):.3g})")
    if worst is not first:
        text += f", reaching {value(worst):.3g} at {worst.name}"
    return text


# -- measuring ---------------------------------------------------------------------------------


class _Moments:
    """Mean and (population) standard deviation merged chunk by chunk, in float64."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0

    def add(self, tensor: torch.Tensor) -> None:
        x = tensor.detach().double()
        n = x.numel()
        mean = x.mean().item()
        m2 = ((x - mean) ** 2).sum().item()
        total = self.n + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.n * n / total
        self.n = total

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.n)


class _Recorder:
    """Everything measured about one layer while the chunks go through."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.act = _Moments()
        self.grad = _Moments()
        self.tails = 0
        self.alive: torch.Tensor | None = None
        self.values: np.ndarray | None = None

    def forward(self, output: torch.Tensor) -> None:
        y = output.detach()
        self.act.add(y)
        kind = reg.kind_of(self.kind)
        if kind.bounds is not None:
            low, high = kind.bounds
            margin = 1 - SATURATION
            self.tails += int(((y < low + margin) | (y > high - margin)).sum())
        elif kind.dies:
            fired = (y != 0).any(dim=0)  # nan is not zero: a unit that is nan is not dead
            self.alive = fired if self.alive is None else self.alive | fired
        if self.values is None:
            flat = y.flatten()
            self.values = flat[:: max(1, flat.numel() // HISTOGRAM_VALUES)].float().numpy()
        if output.requires_grad:
            output.register_hook(self.backward)

    def backward(self, grad: torch.Tensor) -> None:
        self.grad.add(grad)

    def saturated(self) -> float | None:
        kind = reg.kind_of(self.kind)
        if kind.bounds is not None:
            return self.tails / self.act.n
        if kind.dies and self.alive is not None:
            return 1.0 - self.alive.double().mean().item()
        return None


def _hook_points(model: nn.Module, network: Network) -> dict[str, tuple[nn.Module, bool]]:
    """Where each layer's output can be seen: the output of its own module, or for a join
    (an expression in `forward`) the input of a module that takes only it, or the output of
    the whole model. A join that feeds only other joins cannot be seen and is left out."""
    modules = {name: model.get_submodule(path) for name, path in layer_paths(network).items()}
    sole_consumer = {layer.inputs[0]: modules[layer.name] for layer in reversed(network.layers)
                     if len(layer.inputs) == 1 and layer.name in modules}
    points: dict[str, tuple[nn.Module, bool]] = {}
    for layer in network.layers:
        if layer.name in modules:
            points[layer.name] = (modules[layer.name], False)
        elif layer.name == network.output:
            points[layer.name] = (model, False)
        elif layer.name in sole_consumer:
            points[layer.name] = (sole_consumer[layer.name], True)
    return points


def _chunks(network: Network, shapes: Shapes, samples: int) -> list[int]:
    """Batch sizes that add up to `samples`, as even as possible, each small enough for the
    outputs, their gradients and what autograd saves to fit MEMORY_BUDGET, and never 1 (batch
    norm needs two samples) unless only one sample is asked for."""
    per_sample = sum(math.prod(shapes[layer.name]) for layer in network.layers)
    per_sample += math.prod(network.input.shape)
    fits = max(2, MEMORY_BUDGET // (3 * 4 * per_sample))
    count = max(1, samples // fits)
    return [samples // count + (i < samples % count) for i in range(count)]


def _norm(moments: _Moments, elements: int) -> float:
    """The per-sample norm, as the root mean square over the samples: sqrt(elements * E[g^2])."""
    return math.sqrt(elements * (moments.mean ** 2 + moments.std ** 2))


def probe(network: Network, shapes: Shapes, *, init: InitScheme | None = None,
          samples: int = 1000, seed: int = 0) -> Probe:
    """Build the network (with `init` in place of the spec's), feed `samples` unit-gaussian
    inputs in training mode, backpropagate `sum(output * G)` with unit-gaussian G, and
    measure every layer. The same seed gives the same input and draws the same weights."""
    if init is not None:
        network = network.model_copy(update={"init": init})
    torch.manual_seed(seed)
    model = to_torch(network, shapes)
    for module in model.modules():
        if getattr(module, "inplace", False):
            module.inplace = False  # an in-place op would overwrite a hooked output
    for parameter in model.parameters():
        # Only gradients with respect to outputs are measured: the input carries requires_grad,
        # so backward skips every weight gradient (a third of its work and their memory).
        parameter.requires_grad_(False)
    model.train()
    points = _hook_points(model, network)
    recorders = {name: _Recorder(network.layer(name).kind) for name in points}
    handles = []
    for name, (module, as_input) in points.items():
        record = recorders[name].forward
        if as_input:
            handles.append(module.register_forward_pre_hook(
                lambda _m, args, record=record: record(args[0])))
        else:
            handles.append(module.register_forward_hook(
                lambda _m, _args, out, record=record: record(out)))
    generator = torch.Generator().manual_seed(seed)
    seen = _Moments()
    try:
        for batch in _chunks(network, shapes, samples):
            x = torch.randn((batch, *network.input.shape), generator=generator)
            seen.add(x)
            output = model(x.requires_grad_())
            upstream = torch.randn(output.shape, generator=generator)
            (output * upstream).sum().backward()
    finally:
        for handle in handles:
            handle.remove()
    # The gradient arriving at the output is G: per sample, its norm is about sqrt(elements).
    out_elements = math.prod(shapes[network.output] or (1,))
    output = recorders.get(network.output)
    reference = (_norm(output.grad, out_elements) if output is not None and output.grad.n
                 else math.sqrt(out_elements))
    layers = []
    for layer in network.layers:
        rec = recorders.get(layer.name)
        if rec is None:
            continue
        assert rec.values is not None
        elements = math.prod(shapes[layer.name] or (1,))
        layers.append(LayerProbe(
            name=layer.name, kind=layer.kind, mean=rec.act.mean, std=rec.act.std,
            grad_mean=rec.grad.mean if rec.grad.n else None,
            grad_std=rec.grad.std if rec.grad.n else None,
            saturated=rec.saturated(), values=rec.values,
            grad_norm=(_norm(rec.grad, elements) / reference
                       if rec.grad.n and reference > 0 else None)))
    return Probe(network=network.name, init=scheme_text(network.init), samples=samples,
                 seed=seed, input_mean=seen.mean, input_std=seen.std, layers=tuple(layers),
                 unseen=tuple(layer.name for layer in network.layers
                              if layer.name not in recorders))


# -- views -------------------------------------------------------------------------------------


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def render_text(probes: Sequence[Probe]) -> str:
    """One table per probe (rows after a nonlinearity marked `*`), then a side-by-side
    comparison of the deviations when several schemes ran on one network."""
    blocks = [_render_one(p) for p in probes]
    if len(probes) > 1 and len({p.network for p in probes}) == 1:
        blocks.append(_render_comparison(probes))
    return "\n\n".join(blocks) + "\n"


def _render_one(p: Probe) -> str:
    rows = [["*" if layer.post_activation else "", layer.name, layer.kind, _num(layer.mean),
             _num(layer.std), _num(layer.grad_mean), _num(layer.grad_std),
             _num(layer.grad_norm),
             "-" if layer.saturated is None else f"{layer.saturated:.1%}",
             ", ".join(layer.flags)] for layer in p.layers]
    header = ["", "layer", "kind", "mean", "std", "grad mean", "grad std", "grad norm",
              "sat/dead", "flags"]
    lines = [f"{p.network}: init {p.init}, {p.samples} unit-gaussian samples, seed {p.seed}",
             f"input: mean {_num(p.input_mean)}, std {_num(p.input_std)}",
             *align([header, *rows], range(3, 9)),
             *(["* output after a nonlinearity (the rows of the lecture's table)"]
               if any(layer.post_activation for layer in p.layers) else []),
             f"sat/dead: tanh |y| > {SATURATION:g}, sigmoid y < {1 - SATURATION:.2g} or > "
             f"{SATURATION:g}, ReLU units zero for every sample",
             "grad: d/dy of sum(output * G), G unit gaussian; grad norm: its per-sample norm "
             "over the output's",
             *([f"not seen: {', '.join(p.unseen)} (joins that feed only joins)"]
               if p.unseen else []),
             "findings:", *(f"- {text}" for text in p.findings)]
    return "\n".join(lines)


def _render_comparison(probes: Sequence[Probe]) -> str:
    header = ["", "layer", "kind"]
    for p in probes:
        header += [f"std {p.init}", f"grad std {p.init}"]
    rows = []
    for i, layer in enumerate(probes[0].layers):
        row = ["*" if layer.post_activation else "", layer.name, layer.kind]
        for p in probes:
            row += [_num(p.layers[i].std), _num(p.layers[i].grad_std)]
        rows.append(row)
    return "\n".join([f"{probes[0].network}: deviations side by side",
                      *align([header, *rows], range(3, len(header)))])


def render_json(probes: Sequence[Probe]) -> str:
    """One object for one probe, a list of them for several; strict JSON (`strict_json`)."""
    data: object = probes[0].as_json() if len(probes) == 1 else [p.as_json() for p in probes]
    return strict_json(data) + "\n"


def _shown(p: Probe) -> list[LayerProbe]:
    """The layers the plot shows: those after a nonlinearity if any, at most PLOT_LAYERS."""
    layers = [layer for layer in p.layers if layer.post_activation] or list(p.layers)
    if len(layers) <= PLOT_LAYERS:
        return layers
    picks = np.linspace(0, len(layers) - 1, PLOT_LAYERS).round().astype(int)
    return [layers[i] for i in sorted(set(picks))]


def plot(probes: Sequence[Probe], path: str) -> None:
    """The lecture's picture, one row per probe: mean and std per layer, the gradient norm,
    then a histogram of each layer's outputs. Written atomically as PNG."""
    buffer = io.BytesIO()
    make_figure(probes).savefig(buffer, format="png", dpi=110)
    write_atomic(path, buffer.getvalue())


def make_figure(probes: Sequence[Probe]) -> Figure:
    """The plot's figure. The x axes are ticked with the shown layers' names: when layers
    are skipped, a plain count would not say which layer a point is."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = max(len(_shown(p)) for p in probes)
    figure = Figure(figsize=(7 + 1.45 * columns, 2.9 * len(probes)), layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(len(probes), 2 + columns, width_ratios=[2.6, 2.6] + [1] * columns)
    for row, p in enumerate(probes):
        shown = _shown(p)
        steps = range(1, len(shown) + 1)
        label = "layer (output after its nonlinearity)" if shown[0].post_activation else "layer"
        curves = figure.add_subplot(grid[row, 0])
        curves.plot(steps, [layer.mean for layer in shown], "o-", label="mean")
        curves.plot(steps, [layer.std for layer in shown], "s-", label="std")
        curves.set_title(f"{p.network}, init {p.init}", fontsize=9, loc="left")
        curves.set_xlabel(label, fontsize=8)
        _layer_ticks(curves, shown)
        curves.legend(fontsize=7)
        grads = figure.add_subplot(grid[row, 1])
        stds = [layer.std for layer in shown]
        grad_norms = [layer.grad_norm or math.nan for layer in shown]
        grads.semilogy(steps, stds, "s--", color="tab:orange", label="std")
        grads.semilogy(steps, grad_norms, "^-", color="tab:red", label="gradient norm")
        known = [v for v in (*stds, *grad_norms) if math.isfinite(v) and v > 0]
        grads.set_ylim(min([*known, 0.1]) / 3, max([*known, 1.0]) * 3)
        grads.set_title("std; gradient norm / output's; log scale", fontsize=9, loc="left")
        grads.legend(fontsize=7)
        grads.set_xlabel(label, fontsize=8)
        _layer_ticks(grads, shown)
        values = np.concatenate([layer.values for layer in shown])
        values = values[np.isfinite(values)]  # the bins span finite values; nan and inf fall out
        low, high = np.percentile(values, [0.1, 99.9]) if values.size else (0.0, 0.0)
        if high <= low:
            low, high = low - 1.0, high + 1.0
        for column, layer in enumerate(shown):
            ax = figure.add_subplot(grid[row, 2 + column])
            ax.hist(layer.values, bins=40, range=(float(low), float(high)), color="tab:blue")
            ax.set_title(f"{layer.name}\nstd {layer.std:.3g}", fontsize=8)
            ax.set_yticks([])
            ax.tick_params(labelsize=6)
    return figure


def _layer_ticks(axes: Axes, shown: Sequence[LayerProbe]) -> None:
    slanted = len(shown) > 4
    axes.set_xticks(range(1, len(shown) + 1), [layer.name for layer in shown],
                    rotation=45 if slanted else 0, ha="right" if slanted else "center")
    axes.tick_params(labelsize=7)
