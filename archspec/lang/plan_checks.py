"""What a spec's training plan asks that is known before anything runs: built-in datasets'
classes and images against the network, and the memory its data, augmented batches and kept
weights would take, estimated from the plan and the shapes alone."""

from __future__ import annotations

import math
from collections.abc import Callable

from archspec.catalog import DATASETS
from archspec.core.diagnostics import Diagnostics
from archspec.core.limits import MAX_RUN_BYTES
from archspec.core.source import Span
from archspec.core.text import binary
from archspec.ir import Network, Shape, TrainingPlan
from archspec.kinds import registry as reg
from archspec.lang.shapes import Shapes

# How far a built-in dataset's images may be scaled up before it is worth a warning.
MAX_UPSCALE = 4


def image_shape(input_shape: Shape, native_channels: int) -> tuple[int, int, int] | None:
    """The CxHxW images are brought to: the input itself, or for `input N` a square image of
    the data's own channels, 1 or 3; None when no square image fills N features."""
    if len(input_shape) == 3:
        return input_shape[0], input_shape[1], input_shape[2]
    (features,) = input_shape
    for channels in dict.fromkeys((native_channels, 1, 3)):
        side = math.isqrt(features // channels)
        if channels * side * side == features:
            return channels, side, side
    return None


def check(network: Network, shapes: Shapes, diags: Diagnostics) -> None:
    """Check a valid network's own plan; findings go on the plan's lines."""
    plan = network.plan
    if plan is None:
        return
    output = shapes.get(network.output)
    builtin = DATASETS[plan.data.name].builtin
    classes = builtin.classes if builtin else plan.data.classes
    # Without a `data` line the default synthetic data is checked when training starts
    # (a network that only drafts a plan need not end in 10 units).
    if "data" in plan.spans and plan.data.name != "folder" and output is not None \
            and len(output) == 1:
        classes_fit(plan.data.name, classes, output[0], plan.spans["data"], diags)
    if plan.checkpoint == "blocks" and not any(m.kind == "block" for m in network.modules):
        diags.error("train", "`checkpoint blocks` needs a block call: the spec calls no block",
                    plan.spans.get("checkpoint", network.input.span))
    elif isinstance(plan.checkpoint, int) and plan.checkpoint >= len(network.layers):
        diags.error("train", f"`checkpoint every {plan.checkpoint}`: all "
                    f"{len(network.layers)} layers make one segment, the last, which runs "
                    f"without checkpointing; choose N below {len(network.layers)}",
                    plan.spans.get("checkpoint", network.input.span))
    errors = diags.error_count
    resources(network, shapes, plan, diags)
    if diags.error_count == errors:  # a plan too large to run needs no advice on image size
        _upscaled(network, plan, diags)


def classes_fit(data: str, classes: int, units: int, span: Span, diags: Diagnostics,
                warn: bool = True) -> None:
    """A class without an output unit cannot be learnt (an error); units without a class are
    only never a target (a warning, unless `warn` is off: the network still trains, as the
    contract's VGG16 on digits does)."""
    if units < classes:
        diags.error("train", f"data {data} has {classes:,} classes but the network ends in "
                    f"{units:,} units", span,
                    hint=f"end the network with FC-{classes}, or train it on other data")
    elif units > classes and warn:
        diags.warning("train", f"data {data} has {classes:,} classes; the network ends in "
                      f"{units:,} units, so {units - classes:,} of them are never a target",
                      span, hint=f"end the network with FC-{classes} to train it for this data")


def resources(network: Network, shapes: Shapes, plan: TrainingPlan,
              diags: Diagnostics) -> None:
    """What a plan (the spec's, or a run's with its options) would take: synthetic's images
    per class, data that fits the input, and the memory of its dataset, one augmented batch
    and its kept weights. `check` runs it on the spec's plan, the trainer's preflight on the
    plan a run uses (the default one included, for a spec without `train:`)."""
    out_span = network.layer(network.output).span

    def where(key: str) -> Span:
        return plan.spans.get(key, out_span)

    _data(network, plan, where("data"), diags)
    _augment(network.input.shape, plan, where("augment"), diags)
    _kept_weights(network, shapes, plan, where, diags)


def _data(network: Network, plan: TrainingPlan, span: Span, diags: Diagnostics) -> None:
    spec = plan.data
    builtin = DATASETS[spec.name].builtin
    if spec.name == "synthetic" and spec.n < 3 * spec.classes:
        diags.error("train", f"synthetic(classes={spec.classes:,}, n={spec.n:,}) gives fewer "
                    "than 3 images a class (one each for train, val and test)", span,
                    hint=f"n={3 * spec.classes:,} or more")
        return
    if spec.name == "folder":
        return  # its images are counted when training starts
    shape = image_shape(network.input.shape, builtin.shape[0] if builtin else 1)
    if shape is None:
        diags.error("train", f"the images of data {spec.name} cannot fill `input "
                    f"{network.input.shape[0]}`: it is not C x S x S pixels for 1 or 3 "
                    "channels", span)
        return
    pixels = math.prod(shape)
    if builtin is not None:
        # float32 images at the input size, and the resized copy they are made from
        samples, need = builtin.samples, 2 * builtin.samples * pixels * 4
    else:  # float64 prototypes and noise while generated, then the float32 images
        samples, need = spec.n, (spec.classes + 3 * spec.n) * pixels * 8 + spec.n * pixels * 4
    if need > MAX_RUN_BYTES:
        diags.error("train", f"data {spec.name} would hold {samples:,} images of "
                    f"{'x'.join(map(str, shape))} in memory: {_amount(need)}, over the "
                    f"limit of {binary(MAX_RUN_BYTES)}", span)


def _upscaled(network: Network, plan: TrainingPlan, diags: Diagnostics) -> None:
    """A built-in dataset's images scaled up more than MAX_UPSCALE times to the input."""
    builtin = DATASETS[plan.data.name].builtin
    shape = image_shape(network.input.shape, builtin.shape[0]) if builtin else None
    if builtin is None or shape is None or "data" not in plan.spans:
        return
    native = builtin.shape
    scale = max(shape[1] // native[1], shape[2] // native[2])
    if scale > MAX_UPSCALE:
        diags.warning("train", f"the images of data {plan.data.name} are {native[1]}x"
                      f"{native[2]}; the input is {shape[1]}x{shape[2]}, so they are scaled "
                      f"up {scale} times and the network sees nothing finer than the original "
                      "pixels", plan.spans["data"])


def _augment(input_shape: Shape, plan: TrainingPlan, span: Span, diags: Diagnostics) -> None:
    """The largest images the chain makes on the way (a crop's padding, a resize), a batch."""
    if not plan.augment or len(input_shape) != 3:
        return
    channels, height, width = input_shape
    side = (float(height), float(width))
    peak, made = side, "the input size"
    for step in plan.augment:
        if step.name == "random_crop":
            pad = step.args.get("pad", 0)
            padded = (side[0] + 2 * pad, side[1] + 2 * pad)
            if padded[0] * padded[1] > peak[0] * peak[1]:
                peak, made = padded, f"random_crop pads to {padded[0]:.0f}x{padded[1]:.0f}"
            side = (step.args["size"], step.args["size"])
        elif step.name == "resize":
            side = (step.args["size"], step.args["size"])
            if side[0] * side[1] > peak[0] * peak[1]:
                peak, made = side, f"resize makes {side[0]:.0f}x{side[1]:.0f}"
    need = 2 * plan.batch * channels * peak[0] * peak[1] * 4  # a float32 batch in and out
    if need > MAX_RUN_BYTES:
        diags.error("train", f"augment holds {plan.batch:,} images of {channels}x"
                    f"{peak[0]:.0f}x{peak[1]:.0f} a batch ({made}): {_amount(need)}, over "
                    f"the limit of {binary(MAX_RUN_BYTES)}", span)


def _amount(need: float) -> str:
    return f"about {binary(int(need))}" if need < 2.0**80 else "more than any machine holds"


def _kept_weights(network: Network, shapes: Shapes, plan: TrainingPlan,
                  where: Callable[[str], Span], diags: Diagnostics) -> None:
    """Snapshots and finished ensemble members are kept as float32 copies of the weights."""
    copies, key = max((plan.snapshots, "snapshots"), (plan.ensemble, "ensemble"))
    if copies == 1:
        return
    params = 0
    for layer in network.layers:
        out, inp = shapes.get(layer.name), shapes.get(layer.inputs[0])
        if layer.args is not None and out is not None and inp is not None:
            cost = reg.kind_of(layer.kind).cost(layer.args, inp, out)
            params += cost.weights + cost.biases + cost.buffers
    need = copies * params * 4
    if need > MAX_RUN_BYTES:
        diags.error("train", f"{key} {copies:,} keeps {copies:,} copies of the network's "
                    f"{params:,} parameters and buffers: {_amount(need)}, over the limit of "
                    f"{binary(MAX_RUN_BYTES)}", where(key))
