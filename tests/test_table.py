"""`archspec table` and the analyses behind it, checked against figures measured elsewhere:
tests/reference/networks.json, torchinfo run on the module built from the spec, and what
autograd really saves for backward."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, SPECS, python_c
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

# At the top: imported inside a running @given test, test_memory's own @given tests are
# nested ones to hypothesis (a failed health check when this file runs alone).
from test_memory import autograd_saved

import archspec
from archspec import cli
from archspec.analysis import cost, fold
from archspec.analysis import report as report_module
from archspec.analysis.report import Report, at_depth, build_report
from archspec.cli import main
from archspec.cli import parser as argparse_reader
from archspec.cli import table as table_cli
from archspec.core.diagnostics import Diagnostics
from archspec.core.json_text import JsonList, json_flat, json_item, json_pieces
from archspec.core.text import metric
from archspec.ir import Network
from archspec.lang.shapes import Shapes, infer
from archspec.testing import networks
from archspec.views import dot
from archspec.views.table import layer_data, render, render_pieces

# Seed networks of the reference and the specs that write them.
SEEDS = {"lenet5": "lenet5", "alexnet_cs231n": "alexnet", "zfnet_cs231n": "zfnet",
         "vgg16": "vgg16"}
TORCHVISION = {"torchvision_vgg16": "vgg16", "torchvision_vgg19": "vgg19",
               "torchvision_resnet18": "resnet18"}


def report(spec: str, **options) -> Report:
    network, shapes = archspec.load_network(SPECS / f"{spec}.arch")
    return build_report(network, shapes, **options)


def report_text(text: str, **options) -> Report:
    spec = archspec.loads(text)
    assert spec.ok, spec.render()
    assert spec.network is not None
    return build_report(spec.network, spec.shapes, **options)


def table(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["table", *args])
    out, err = capsys.readouterr()
    return code, out, err


# --- the reference figures -----------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_seed_totals(seed: str, reference: dict) -> None:
    ref, totals = reference[seed], report(SEEDS[seed]).totals
    assert totals.params == ref["params"]
    assert totals.params_no_bias == ref["params_without_biases"]
    assert totals.activations == ref["activations_including_input"]
    assert totals.macs == ref["macs_weights_only"]
    assert totals.flops == 2 * ref["macs_weights_only"]


@pytest.mark.parametrize("seed", SEEDS)
def test_seed_layers(seed: str, reference: dict) -> None:
    """Row by row: the reference tabulates the input and each layer that makes a new tensor,
    as the folded rows with activations do (ReLU and dropout run in place)."""
    r = report(SEEDS[seed])
    ours = [(list(r.input.shape), r.input.activations, 0, 0, 0)]
    ours += [(list(row.output_shape), row.activations, row.weights, row.biases, row.macs)
             for row in r.folded if row.activations]
    theirs = [(layer["out_shape"], layer["activations"], layer["weights"], layer["biases"],
               layer["macs"]) for layer in reference[seed]["layers"]]
    assert ours == theirs


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_totals(name: str, reference: dict) -> None:
    ref, r = reference[name], report(TORCHVISION[name], batch=1)
    assert r.totals.params == ref["params"]
    batch_norms = sum(1 for row in r.rows if row.kind == "BN")
    # Each BN also counts torch's num_batches_tracked, one integer.
    assert r.totals.buffers == ref["bn_running_stat_elements"] + batch_norms
    ti = r.torchinfo
    raw = ref["torchinfo_raw"]
    assert (ti.total_params, ti.trainable_params, ti.total_mult_adds, ti.input_bytes,
            ti.forward_backward_bytes, ti.params_bytes) == (
        raw["total_params"], raw["trainable_params"], raw["total_mult_adds"],
        raw["total_input_bytes"], raw["total_output_bytes"], raw["total_param_bytes"])


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchinfo_style_prints_what_torchinfo_printed(name: str, reference: dict,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    code, out, _ = table(str(SPECS / f"{TORCHVISION[name]}.arch"), "--style", "torchinfo",
                         "--batch", "1", capsys=capsys)
    assert code == 0
    printed = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    for key, value in reference[name]["torchinfo_printed_totals"].items():
        label = next(k for k in printed if k.startswith(key))
        assert printed[label] == value, key


# --- torchinfo itself, on the module built from the spec -----------------------------------

RANDOM = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def shapes_of(network: Network) -> Shapes:
    diags = Diagnostics()
    shapes = infer(network, diags)
    assert not diags.has_errors
    return shapes


# The larger networks run in the slow lane; resnet18 keeps a branchy one in the fast lane.
BIG = pytest.mark.slow


@pytest.mark.parametrize(("spec", "batch"), [("lenet5", 1), ("cs231n_pattern", 3),
                                             pytest.param("alexnet", 1, marks=BIG),
                                             ("resnet18", 2),
                                             pytest.param("googlenet", 1, marks=BIG)])
def test_torchinfo_conventions_match_torchinfo(spec: str, batch: int) -> None:
    network, shapes = archspec.load_network(SPECS / f"{spec}.arch")
    assert_torchinfo_agrees(network, shapes, batch)


@RANDOM
@given(networks(max_size=10, max_channels=6), st.integers(1, 3))
def test_torchinfo_conventions_on_random_networks(network: Network, batch: int) -> None:
    assert_torchinfo_agrees(network, shapes_of(network), batch)


def assert_torchinfo_agrees(network: Network, shapes: Shapes, batch: int) -> None:
    torch = pytest.importorskip("torch")
    torchinfo = pytest.importorskip("torchinfo")
    module = archspec.to_torch(network, shapes)
    with torch.no_grad():
        stats = torchinfo.summary(module, input_size=(batch, *network.input.shape),
                                  verbose=0, device="cpu")
    ti = build_report(network, shapes, batch=batch).torchinfo
    assert (ti.total_params, ti.trainable_params, ti.total_mult_adds, ti.input_bytes,
            ti.forward_backward_bytes, ti.params_bytes) == (
        stats.total_params, stats.trainable_params, stats.total_mult_adds, stats.total_input,
        stats.total_output_bytes, stats.total_param_bytes)
    printed = _footer("Total params" + str(stats).split("Total params", 1)[1])
    assert _footer(render(build_report(network, shapes, batch=batch), style="torchinfo")) \
        == printed


def _footer(text: str) -> dict[str, str]:
    # torchinfo 1.8 on Python 3.11+ prints its unit enum whole: (Units.MEGABYTES) for (M).
    text = re.sub(r"\(Units\.([A-Z])[A-Z]*\)", r"(\1)", text)
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


# --- memory --------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", ["lenet5", "cs231n_pattern", pytest.param("alexnet", marks=BIG),
                                  "resnet18", pytest.param("googlenet", marks=BIG)])
def test_saved_for_backward_is_what_autograd_saves(spec: str) -> None:
    network, shapes = archspec.load_network(SPECS / f"{spec}.arch")
    assert_saved_agrees(network, shapes)


@RANDOM
@given(networks(max_size=10, max_channels=6))
def test_saved_for_backward_on_random_networks(network: Network) -> None:
    """Every kind, header and branch archspec.testing draws: GELU and leaky ReLU keep their
    input, LRN its intermediates, BN 1-d and 2-d, pools with ceil, groups, repeats."""
    assert_saved_agrees(network, shapes_of(network))


# Each ends with a RELU, which keeps its output: where the flatten after it copies, the FC
# keeps the copy, a second tensor.
@pytest.mark.parametrize("body", [
    "LAYERNORM - RELU",  # LayerNorm2d leaves the map channels last: flattened, it is copied
    "LAYERNORM - CONV1-4 - MAXPOOL(kernel=1, stride=1, pad=0, ceil=false) - BN - RELU",  # kept
    "LAYERNORM - SOFTMAX",  # softmax writes contiguous: the flatten is a view
    "(LAYERNORM + ID) - RELU",  # a sum is laid out as its first branch
    "(ID + LAYERNORM) - RELU",
    "((GAP - CONV1-3 - SIGMOID) * LAYERNORM) - RELU",  # a broadcast gate decides nothing
    "(LAYERNORM | ID) - RELU",  # a concat is channels last only when every branch is
    "(LAYERNORM | LAYERNORM) - RELU",
    "LAYERNORM - GAP - RELU",  # one position (or one channel): the two layouts are the same
    "LAYERNORM - CONV1-1 - RELU",
])
def test_a_flatten_of_a_channels_last_map_is_a_copy(body: str) -> None:
    spec = archspec.loads(f"network t\ninput 3x3x2\n{body} - FC-1\n")
    assert spec.ok and spec.network is not None, spec.render()
    assert_saved_agrees(spec.network, spec.shapes)


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("body", [
    "LAYERNORM - SLICE(0, 2) - GROUPNORM(2)",  # channels last: a channel slice skips values
    "LAYERNORM - SLICE(0, 2) - DROPOUT(0) - GROUPNORM(1)",  # so does its very tensor
    "LAYERNORM - GAP - SLICE(0, 2) - GROUPNORM(1)",  # one position: no gap, no copy
    "CONV1-3 - SLICE(0, 2) - GROUPNORM(2)",  # contiguous: with one sample, no copy
])
def test_a_channel_slice_of_a_channels_last_map_skips_values_of_one_sample(
        body: str, batch: int) -> None:
    """GROUPNORM computes on a contiguous copy of a strided input: a channel slice of a map
    laid out channels last is strided whatever the batch (each position's channels are
    together), where a contiguous map's is only with more than one sample."""
    spec = archspec.loads(f"network t\ninput 3x3x2\n{body} - RELU - FC-1\n")
    assert spec.ok and spec.network is not None, spec.render()
    assert_saved_agrees(spec.network, spec.shapes, batch)


def assert_saved_agrees(network: Network, shapes: Shapes, batch: int = 2) -> None:
    """Every distinct storage autograd's saved-tensor hook sees (parameters aside), plus the
    input batch, equals the planner's figure: per-sample tensors and per-batch BN stats."""
    memory = build_report(network, shapes, batch=batch, dtype="float32").memory
    assert memory.activations_bytes == autograd_saved(network, shapes, None, batch)


def test_dropout_that_drops_nothing_saves_no_mask() -> None:
    """torch's dropout returns its input when p=0: autograd keeps no mask."""
    spec = archspec.loads("network t\ninput 6\nFC-8 - DROPOUT(p=0) - FC-8 - DROPOUT(keep=1) "
                          "- FC-2 - DROPOUT(0.5)\n")
    assert spec.ok and spec.network is not None
    assert_saved_agrees(spec.network, spec.shapes)


@pytest.mark.parametrize("body", [
    "(ID * GAP - CONV1-3 - SIGMOID)",  # on the input: autograd keeps only the map
    "CONV3-4 - (ID * GAP - CONV1-2 - RELU - CONV1-4 - SIGMOID)",  # both factors
    "CONV3-4 - (CONV1-4 * ID) - (ID * ID)",  # equal shapes; x*x keeps x once
])
def test_a_product_keeps_each_factor_whose_partner_needs_a_gradient(body: str) -> None:
    spec = archspec.loads(f"network t\ninput 3x6x6\n{body}\n")
    assert spec.ok and spec.network is not None
    assert_saved_agrees(spec.network, spec.shapes)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_buffer_bytes_are_the_state_dict_buffers(dtype: str) -> None:
    """BN's running statistics at the dtype, its num_batches_tracked an int64."""
    torch = pytest.importorskip("torch")
    network, shapes = archspec.load_network(SPECS / "resnet18.arch")
    module = archspec.to_torch(network, shapes).to(getattr(torch, dtype))
    counters = [v for k, v in module.state_dict().items() if k.endswith("num_batches_tracked")]
    assert counters and all(c.dtype == torch.int64 for c in counters)
    memory = build_report(network, shapes, dtype=dtype).memory  # type: ignore[arg-type]
    assert memory.buffers_bytes == sum(b.nbytes for b in module.buffers())


def live_peak(network: Network, shapes: Shapes, batch: int) -> int:
    """The most activation bytes alive at once while the built module runs without autograd,
    watched op by op (archspec.runtime.meter): every storage an op returns counts until
    nothing holds it; parameters and buffers are not activations; the input batch counts."""
    torch = pytest.importorskip("torch")
    from archspec.runtime.meter import peak_bytes

    module = archspec.to_torch(network, shapes).eval()
    x = torch.randn(batch, *network.input.shape)
    with torch.no_grad():
        return peak_bytes(lambda: module(x), held=[x],
                          ignored=[*module.parameters(), *module.buffers()])


# LRN (googlenet's NORM) is six torch ops whose temporaries the meter sees; the planner counts
# layer outputs only.
COMPOSITE = {"googlenet"}
BIG_SPECS = {"alexnet", "googlenet", "vgg16", "vgg19", "zfnet"}


@pytest.mark.parametrize("spec", [
    pytest.param(p.stem, marks=BIG) if p.stem in BIG_SPECS else p.stem
    for p in sorted(SPECS.glob("*.arch")) if p.stem != "sketch"])
def test_inference_peak_is_what_the_module_holds(spec: str) -> None:
    """The generated forward frees each intermediate after its last reader (a `del`), so the
    planner's figure is what the module holds, branches and blocks included (resnet18 had
    held every block's values until its `forward` returned)."""
    network, shapes = archspec.load_network(SPECS / f"{spec}.arch")
    ours = build_report(network, shapes, batch=2, dtype="float32").memory
    measured = live_peak(network, shapes, 2)
    if spec in COMPOSITE:
        assert ours.inference_activations_bytes <= measured
    else:
        assert ours.inference_activations_bytes == measured


@pytest.mark.parametrize("body", [
    # a plain stack is `features` then `classifier`: the caller holds the map the classifier
    # reads until the classifier returns, past its flatten
    "CONV1-2 - UPSAMPLE(2) - FC-600 - FC-600 - FC-10",
    "CONV1-2 - LAYERNORM - UPSAMPLE(2) - FC-1000",  # its flatten a copy, which both hold
    # after a join, a straight run is one nn.Sequential: the sum it reads lives through it
    "(CONV1-4 + ID) - UPSAMPLE(2) - CONV1-4 - CONV1-2 - GAP",
    # in eval mode a dropout returns its very input: no tensor of its own
    "[DROPOUT(0.5)]*2 - CONV1-4 - GAP",
    "CONV1-4 - STOCHASTICDEPTH(0.2) - FLATTEN - DROPOUT(0.5) - FC-3",
])
def test_inference_peak_counts_what_the_module_holds_in_eval_mode(body: str) -> None:
    spec = archspec.loads(f"network t\ninput 4x8x8\n{body}\n")
    assert spec.ok and spec.network is not None, spec.render()
    ours = build_report(spec.network, spec.shapes, batch=1, dtype="float32").memory
    assert ours.inference_activations_bytes == live_peak(spec.network, spec.shapes, 1)


def _small(path: Path) -> Network:
    """A zoo network at a cheap input size (64x64; Inception v3 needs 96)."""
    text = path.read_text()
    for size in (64, 96):
        spec = archspec.loads(re.sub(r"(?m)^input 3x\d+x\d+", f"input 3x{size}x{size}", text))
        if spec.ok and spec.network is not None:
            return spec.network
    raise AssertionError(f"{path.name} loads at neither 64 nor 96")


@BIG
@pytest.mark.parametrize("path", sorted((SPECS / "zoo").glob("*.arch")), ids=lambda p: p.stem)
def test_inference_peak_of_every_zoo_network_is_what_its_module_holds(path: Path) -> None:
    """Block classes and named groups too: a submodule's caller holds its argument until the
    submodule returns, which the planner counts (DenseNet's transitions, ResNet's blocks)."""
    network = _small(path)
    shapes = infer(network, Diagnostics())
    ours = build_report(network, shapes, batch=1, dtype="float32").memory
    assert ours.inference_activations_bytes == live_peak(network, shapes, 1)


def test_memory_adds_up() -> None:
    r = report("resnet18", batch=8, optimizer="adam")
    m = r.memory
    assert m.params_bytes == m.gradients_bytes == r.totals.params * 4
    assert m.optimizer_bytes == 2 * m.params_bytes
    assert m.training_bytes == (m.params_bytes + m.gradients_bytes + m.optimizer_bytes
                                + m.buffers_bytes + m.activations_bytes)
    # The per-layer column sums to the total, folded or not.
    for rows in (r.rows, r.folded):
        assert sum(row.training_bytes for row in rows) + r.input.training_bytes \
            == m.training_bytes


@pytest.mark.parametrize(("checkpoint", "amp"), [("blocks", None), (10, None), (10, "bf16")])
def test_the_column_follows_the_checkpointed_plan(checkpoint: str | int, amp: str | None
                                                  ) -> None:
    """Checkpointed, a layer inside a segment keeps nothing, and the column (rows and input
    alike) is that plan's: it sums to the training total less the largest segment's saved
    tensors while it is recomputed, which no one layer holds. Before, the rows showed the
    plain plan and the input row the checkpointed one, summing to neither."""
    r = report("resnet18", batch=4, checkpoint=checkpoint, amp=amp)
    m = r.memory
    segments = cost.checkpoint_segments(archspec.load_network(SPECS / "resnet18.arch")[0],
                                        checkpoint)
    last = {segment: name for name, segment in segments.items()}  # keeps the next one's input
    inside = [row for row in r.rows if row.name in segments
              and row.name != last[segments[row.name]]]
    assert inside and all(row.saved_bytes == 0 for row in inside)
    for rows in (r.rows, r.folded):
        assert sum(row.training_bytes for row in rows) + r.input.training_bytes \
            + m.segment_peak_bytes == m.training_bytes


@pytest.mark.parametrize(("optimizer", "buffers"), [("sgd", 0), ("momentum", 1), ("adam", 2),
                                                    ("adamw", 2)])
def test_optimizer_state(optimizer: str, buffers: int) -> None:
    m = report("lenet5", optimizer=optimizer).memory
    assert m.optimizer_bytes == buffers * m.params_bytes


def test_optimizer_and_batch_come_from_the_plan() -> None:
    m = report("vgg16").memory  # train: batch 128, sgd momentum 0.9
    assert (m.batch, m.optimizer, m.optimizer_source) == (128, "momentum", "the train: section")
    plain = report_text("network n\ninput 4\nFC-2\ntrain:\n  optimizer sgd(momentum=0)\n").memory
    assert (plain.batch, plain.optimizer) == (64, "sgd")


def test_inference_peak_is_the_largest_live_set() -> None:
    # The input (192, held by the caller) while RELU (256) reads CONV's output (256).
    r = report_text("network n\ninput 3x8x8\nCONV(4, 3, pad=1) - RELU\n", batch=1)
    assert r.memory.inference_activations_bytes == (192 + 256 + 256) * 4
    # A pool frees the CONV output it read: input 192 + pool 64 + FC 10 at the end.
    r = report_text("network n\ninput 3x8x8\nCONV(4, 3, pad=1) - POOL2 - FC-10\n", batch=1)
    assert r.memory.inference_activations_bytes == (192 + 256 + 64) * 4
    # A residual's add reads the input and the branch: 64 + 64 (conv) + 64 (relu), then the
    # conv output is freed before the add's 64 arrive.
    r = report_text("network n\ninput 1x8x8\n(CONV(1, 3, pad=1) - RELU + ID)\n", batch=1)
    assert r.memory.inference_activations_bytes == 3 * 64 * 4


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 10**12))
def test_fit_is_the_largest_batch_that_fits(budget: int) -> None:
    """Training: the predicted peak of a step (the timeline's), not the upper bound."""
    fit = report("lenet5", fit=budget).memory.fit
    assert fit is not None
    for batch, field in ((fit.training_batch, "training_peak_bytes"),
                         (fit.inference_batch, "inference_bytes")):
        assert getattr(report("lenet5", batch=batch + 1).memory, field) > budget
        if batch:
            assert getattr(report("lenet5", batch=batch).memory, field) <= budget


@settings(max_examples=200)
@given(st.integers(0, 10**15), st.integers(2, 3))
def test_metric_rounds_to_significant_figures(n: int, digits: int) -> None:
    text = metric(n, digits)
    if n < 1000:
        assert text == str(n)
        return
    scale = 1000 ** ("KMGT".index(text[-1]) + 1)
    mantissa = float(text[:-1])
    assert 1 <= mantissa < 1000 or text[-1] == "T"  # no suffix above T
    assert len(text[:-1].replace(".", "").lstrip("0")) == max(digits, len(str(int(mantissa))))
    assert abs(mantissa * scale - n) <= 0.5 * 10 ** (math.floor(math.log10(n)) + 2 - digits)


def test_sizes() -> None:
    assert cost.parse_size("16GiB") == 16 * 2**30
    assert cost.parse_size("16GB") == 16 * 10**9
    assert cost.parse_size("1.5 MiB") == 3 * 2**19
    assert cost.parse_size("2048") == 2048
    assert cost.parse_size("2048B") == 2048
    assert [cost.parse_size(f"2{u}") for u in ("KB", "kB", "MB", "TB", "KiB", "MiB", "TiB")] \
        == [2000, 2000, 2 * 10**6, 2 * 10**12, 2048, 2 * 2**20, 2 * 2**40]
    with pytest.raises(ValueError, match="not a memory size"):
        cost.parse_size("lots")


@pytest.mark.parametrize("text", ["16Gb", "16gb", "16Gib", "512Mb", "8 b"])
def test_bits_are_refused(text: str) -> None:
    """A lower-case b is bits: `16Gb` is 2 GB, not 16; refused rather than guessed."""
    with pytest.raises(ValueError, match="lower-case b means bits"):
        cost.parse_size(text)


@pytest.mark.parametrize("text", ["16G", "16Gi", "16GIB", "16 GiB of memory", "-1GB"])
def test_sizes_need_a_byte_unit(text: str) -> None:
    with pytest.raises(ValueError, match="not a memory size"):
        cost.parse_size(text)


# --- receptive fields ----------------------------------------------------------------------

def test_three_stacked_3x3_convs_see_7x7() -> None:
    r = report_text("network n\ninput 3x32x32\n[CONV3-8]*3\n")
    assert [row.receptive_field for row in r.rows] == [(3, 3), (5, 5), (7, 7)]


def test_receptive_field_of_vgg16_pool5() -> None:
    pool5 = next(row for row in report("vgg16").rows if row.name == "pool5")
    assert (pool5.receptive_field, pool5.jump) == ((212, 212), (32, 32))


def test_join_takes_the_largest_branch() -> None:
    r = report_text("network n\ninput 3x32x32\n(CONV1-4 | CONV3-4 | CONV5-4 - CONV3-4)\n")
    join = r.rows[-1]
    assert join.kind == "CONCAT"
    assert join.receptive_field == (7, 7)


def test_a_broadcast_gate_keeps_the_field_of_the_map_it_gates() -> None:
    """Each value of `map * gate` is one map value times one channel's gate: the product sees
    what the map sees (RF 3, jump 1 here), not the gate's whole-image GAP field."""
    r = report_text("network n\ninput 3x8x8\nCONV3-16 - "
                    "(ID * GAP - CONV1-4 - RELU - CONV1-16 - SIGMOID)\n")
    gap, mul = r.rows[1], r.rows[-1]
    assert (gap.receptive_field, gap.jump) == ((10, 10), (8, 8))
    assert mul.kind == "MUL"
    assert (mul.receptive_field, mul.jump) == ((3, 3), (1, 1))
    both = report_text("network n\ninput 3x8x8\n(CONV3-4 * CONV5-4)\n").rows[-1]
    assert both.receptive_field == (5, 5)  # two full-size maps: the larger field


def test_flat_input_has_no_receptive_field() -> None:
    assert all(row.receptive_field is None for row in report("init_relu").rows)


_LAYERS = st.one_of(
    st.builds(lambda k, s, d: f"CONV(2, {k}, stride={s}, dilation={d})",
              st.sampled_from([1, 2, 3, 5]), st.integers(1, 2), st.integers(1, 2)),
    st.builds(lambda k, s: f"AVGPOOL({k}, stride={s})", st.integers(1, 3), st.integers(1, 2)),
)


@settings(max_examples=25, deadline=None)
@given(st.lists(_LAYERS, min_size=1, max_size=5))
def test_receptive_field_is_what_a_gradient_reaches(layers: list[str]) -> None:
    """Back-propagate from one output value of an all-ones network: the input pixels that get
    a gradient span exactly the receptive field. No padding anywhere, so no field is cut short
    by zeros in an intermediate map (with `same` padding a field can run into an inner map's
    border while its input pixels stay clear of the input's border)."""
    torch = pytest.importorskip("torch")
    spec = archspec.loads("network n\ninput 1x96x96\n" + " - ".join(layers) + "\n")
    assume(spec.ok)  # pad 0 can shrink a map below one pixel
    assert spec.network is not None
    network, shapes = spec.network, spec.shapes
    last = build_report(network, shapes).rows[-1]
    module = archspec.to_torch(network, shapes)
    for p in module.parameters():
        torch.nn.init.ones_(p)
    x = torch.ones(1, *network.input.shape, requires_grad=True)
    y = module(x)
    y[0, 0, y.shape[-2] // 2, y.shape[-1] // 2].backward()
    rows, cols = torch.nonzero(x.grad[0, 0], as_tuple=True)
    reached = (int(rows.max() - rows.min()) + 1, int(cols.max() - cols.min()) + 1)
    assert reached == last.receptive_field


# --- folding and formulas ------------------------------------------------------------------

def test_folding_keeps_totals_and_moves_implicit_layers() -> None:
    r = report_text("network n\ninput 3x32x32\nbatchnorm\nactivation relu\n"
                    "CONV3-8 - POOL2 - FC-10\n")
    assert [row.kind for row in r.rows] == ["CONV", "BN", "RELU", "MAXPOOL", "FLATTEN", "FC"]
    assert [row.implicit for row in r.rows] == [False, True, True, False, True, False]
    assert [(row.kind, row.folds) for row in r.folded] == [
        ("CONV", ("BN", "RELU")), ("MAXPOOL", ()), ("FC", ())]
    for field in ("params", "macs", "activations", "saved_bytes", "training_bytes"):
        assert sum(getattr(x, field) for x in r.rows) == sum(getattr(x, field) for x in r.folded)
    conv = r.folded[0]
    assert conv.formula == "(3*3*3)*8 + 8 + 8 + 8"
    assert conv.output_shape == (8, 32, 32)
    assert r.folded[-1].weights_formula == "16*16*8*10"  # the fan-in before the flatten


def test_folded_rows_are_made_when_first_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only `--fold` and the cs231n style read the folded rows (at 100k layers about as long
    to make as the rows): building the report and the other views make none."""
    calls = []
    groups = fold.groups
    monkeypatch.setattr(fold, "groups", lambda network: calls.append(network) or groups(network))
    r = report("vgg16")
    for fmt in ("text", "markdown", "csv", "json"):
        render(r, fmt)
    render(r, style="torchinfo")
    assert not calls and "folded" not in r.__dict__
    assert "CONV3-64: [224x224x64]" in render(r, style="cs231n")
    assert r.folded is r.folded and len(calls) == 1  # made once, kept
    assert [row.folds for row in r.folded][:2] == [("RELU",), ("RELU",)]


def test_rows_alike_are_copies_with_their_own_name_and_fields(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A layer like one before it (kind, as written, shapes, cost and saved tensors) gets a
    copy of that row with its own name, members, receptive field and jump: each row is the
    one worked out for its layer alone, whatever the plan."""
    network, shapes = archspec.load_network(SPECS / "zoo" / "resnet18.arch")
    options = [{}, {"batch": 8, "amp": "bf16"}, {"checkpoint": 3}]
    worked_out = []
    row = report_module._row
    monkeypatch.setattr(report_module, "_row",
                        lambda layer, *rest: worked_out.append(layer) or row(layer, *rest))
    made = [build_report(network, shapes, **kw).rows for kw in options]
    assert len(worked_out) < len(options) * len(network.layers)  # some rows were copies

    def alone(network: Network, shapes: Shapes, *rest: Any) -> tuple[report_module.Row, ...]:
        return tuple(row(layer, shapes, *rest) for layer in network.layers)

    monkeypatch.setattr(report_module, "_rows", alone)
    for rows, kw in zip(made, options, strict=True):
        expected = build_report(network, shapes, **kw).rows
        assert [row._asdict() for row in rows] == [row._asdict() for row in expected]
        assert all(type(ours) is report_module.Row for ours in rows)


def test_table_fold_and_draw_fold_the_same_layers() -> None:
    # Written batch norm and activations fold like the implied ones, in the table as in the
    # diagram (before, `table --fold` kept them as rows of their own while `draw` folded them).
    text = ("network n\ninput 3x16x16\n"
            "CONV3-8 - BN - RELU - POOL2 - CONV3-8 - RELU - FC-10 - SOFTMAX\n")
    r = report_text(text)
    assert [(row.kind, row.folds) for row in r.folded] == [
        ("CONV", ("BN", "RELU")), ("MAXPOOL", ()), ("CONV", ("RELU",)), ("FC", ("SOFTMAX",))]
    spec = archspec.loads(text)
    assert spec.network is not None
    boxes, _ = dot._boxes(spec.network, "compact")
    assert {row.name: list(row.members) for row in r.folded} == {
        box.main.name: [layer.name for layer in box.layers] for box in boxes}


def test_grouped_conv_formula() -> None:
    row = report_text("network n\ninput 8x8x8\nCONV(16, 3, groups=4, bias=false)\n").rows[0]
    assert (row.weights_formula, row.weights, row.biases) == ("(3*3*2)*16", 288, 0)


def test_buffers_are_not_trainable() -> None:
    t = report_text("network n\ninput 3x8x8\nCONV3-4 - BN\n").totals
    assert (t.params, t.trainable_params, t.buffers) == (3 * 3 * 3 * 4 + 4 + 8, 120, 9)


# --- the command ---------------------------------------------------------------------------

CS231N_VGG16 = """\
INPUT: [224x224x3]  memory: 224*224*3=150K  params: 0
CONV3-64: [224x224x64]  memory: 224*224*64=3.2M  params: (3*3*3)*64 = 1,728
CONV3-64: [224x224x64]  memory: 224*224*64=3.2M  params: (3*3*64)*64 = 36,864
POOL2: [112x112x64]  memory: 112*112*64=800K  params: 0
CONV3-128: [112x112x128]  memory: 112*112*128=1.6M  params: (3*3*64)*128 = 73,728
CONV3-128: [112x112x128]  memory: 112*112*128=1.6M  params: (3*3*128)*128 = 147,456
POOL2: [56x56x128]  memory: 56*56*128=400K  params: 0
CONV3-256: [56x56x256]  memory: 56*56*256=800K  params: (3*3*128)*256 = 294,912
CONV3-256: [56x56x256]  memory: 56*56*256=800K  params: (3*3*256)*256 = 589,824
CONV3-256: [56x56x256]  memory: 56*56*256=800K  params: (3*3*256)*256 = 589,824
POOL2: [28x28x256]  memory: 28*28*256=200K  params: 0
CONV3-512: [28x28x512]  memory: 28*28*512=400K  params: (3*3*256)*512 = 1,179,648
CONV3-512: [28x28x512]  memory: 28*28*512=400K  params: (3*3*512)*512 = 2,359,296
CONV3-512: [28x28x512]  memory: 28*28*512=400K  params: (3*3*512)*512 = 2,359,296
POOL2: [14x14x512]  memory: 14*14*512=100K  params: 0
CONV3-512: [14x14x512]  memory: 14*14*512=100K  params: (3*3*512)*512 = 2,359,296
CONV3-512: [14x14x512]  memory: 14*14*512=100K  params: (3*3*512)*512 = 2,359,296
CONV3-512: [14x14x512]  memory: 14*14*512=100K  params: (3*3*512)*512 = 2,359,296
POOL2: [7x7x512]  memory: 7*7*512=25K  params: 0
FC-4096: [1x1x4096]  memory: 4096  params: 7*7*512*4096 = 102,760,448
FC-4096: [1x1x4096]  memory: 4096  params: 4096*4096 = 16,777,216
FC-1000: [1x1x1000]  memory: 1000  params: 4096*1000 = 4,096,000
"""


def test_cs231n_vgg16_rows(capsys: pytest.CaptureFixture[str]) -> None:
    """The lecture's table, typed from the slide (the slide labels its FC rows `FC`; the spec
    writes `FC-4096`). The total is the true sum of the rows, not the slide's 24M."""
    code, out, _ = table(str(SPECS / "vgg16.arch"), "--style", "cs231n", capsys=capsys)
    assert code == 0
    rows, totals = out.split("\n\n")
    assert rows + "\n" == CS231N_VGG16
    assert totals.splitlines() == [
        "TOTAL memory: 15.2M * 4 bytes ~= 61MB / image (only forward! ~*2 for bwd)",
        "TOTAL params: 138M parameters (not counting biases; 138,357,544 with them)"]


def test_cs231n_implicit_batchnorm_has_its_own_line(capsys: pytest.CaptureFixture[str],
                                                    tmp_path) -> None:
    """The `batchnorm` header's BN is a line of its own, as a written BN is: the conv line
    counts the conv's weights alone, and every line's memory is its own tensor's."""
    implicit = tmp_path / "hb.arch"
    implicit.write_text("network t\ninput 3x32x32\nbatchnorm\nCONV3-32 - POOL2 - FC-10\n")
    explicit = tmp_path / "eb.arch"
    explicit.write_text("network t\ninput 3x32x32\nCONV3-32 - BN - POOL2 - FC-10\n")
    lines = [
        "INPUT: [32x32x3]  memory: 32*32*3=3.1K  params: 0",
        "CONV3-32: [32x32x32]  memory: 32*32*32=33K  params: (3*3*3)*32 = 864",
        "BN: [32x32x32]  memory: 32*32*32=33K  params: 32",
        "POOL2: [16x16x32]  memory: 16*16*32=8.2K  params: 0",
        "FC-10: [1x1x10]  memory: 10  params: 16*16*32*10 = 81,920",
        "",
        "TOTAL memory: 76.8K * 4 bytes ~= 310KB / image (only forward! ~*2 for bwd)",
        "TOTAL params: 82.8K parameters (not counting biases; 82,890 with them)"]
    for path in (implicit, explicit):
        code, out, _ = table(str(path), "--style", "cs231n", capsys=capsys)
        assert (code, out.splitlines()) == (0, lines), path


@RANDOM
@given(networks(max_size=10, max_channels=6))
def test_cs231n_lines_add_up(network: Network) -> None:
    """Whatever the headers insert, the lines' parameters add to the weights total, their
    memory is their own output's (`H*W*C=`, never a sum of several tensors), and each line
    is a row of the unfolded table with activations."""
    r = build_report(network, shapes_of(network))
    lines = render(r, style="cs231n").split("\n\n")[0].splitlines()[1:]
    made = [row for row in r.rows if row.activations]
    assert len(lines) == len(made)
    weights = 0
    for line, row in zip(lines, made, strict=True):
        params = line.rsplit("params: ", 1)[1]
        weights += int(params.rsplit(" = ", 1)[-1].replace(",", ""))
        memory = line.split("  memory: ", 1)[1].split("  params: ")[0]
        assert memory.startswith("*".join(map(str, row.output_shape[1:] + row.output_shape[:1]))
                                 + "=") if len(row.output_shape) == 3 else memory == str(
            row.activations)
    assert weights == r.totals.params_no_bias


@pytest.mark.parametrize("text", ["network n\ninput 3x8x4\nCONV3-2 - FC-2\n",
                                  "network n\ninput 6\nFC-4 - RELU - FC-2\n"])
def test_receptive_fields_read_the_same_in_every_view(text: str) -> None:
    """Text, markdown and CSV write a field and a jump one way (`3`, `10x6`, `-`), the input
    row included; JSON holds the same pairs as lists."""
    r = report_text(text)
    want = [(_pair(r.input.receptive_field), _pair(r.input.jump))]
    want += [(_pair(row.receptive_field), _pair(row.jump)) for row in r.rows]
    lines = render(r).splitlines()
    body = lines[lines.index(next(x for x in lines if x.startswith("input "))):][:len(want)]
    assert [tuple(x.split()[-4:-2]) for x in body] == want  # RF jump 12.00 KiB
    md = [x.split(" | ") for x in render(r, "markdown").splitlines() if x.startswith("| ")]
    assert [(cells[7], cells[8]) for cells in md[1:]] == want
    rows = list(csv.DictReader(io.StringIO(render(r, "csv"))))
    assert [(x["receptive_field"], x["jump"]) for x in rows] == want
    data = json.loads(render(r, "json"))
    assert [data["input"]["receptive_field"], *(x["receptive_field"] for x in data["layers"])] \
        == [list(f) if f else None for f in (r.input.receptive_field,
                                             *(row.receptive_field for row in r.rows))]


def _pair(value: tuple[int, int] | None) -> str:
    if value is None:
        return "-"
    return str(value[0]) if value[0] == value[1] else f"{value[0]}x{value[1]}"


@pytest.mark.parametrize(("name", "args"), [
    ("table_vgg16.txt", ()),
    ("table_vgg16_fold.txt", ("--fold", "--fit", "16GiB")),
    ("table_vgg16_cs231n.txt", ("--style", "cs231n")),
    ("table_vgg16_torchinfo.txt", ("--style", "torchinfo", "--batch", "1")),
    ("table_vgg16.md", ("--format", "markdown", "--fold")),
    ("table_vgg16.csv", ("--format", "csv")),
    ("table_vgg16.json", ("--format", "json", "--fold", "--batch", "32", "--optimizer", "adam",
                          "--fit", "80GB")),
])
def test_golden_vgg16(name: str, args: tuple[str, ...], golden,
                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = table("specs/vgg16.arch", *args, capsys=capsys)
    assert code == 0
    golden(name, out)


@pytest.mark.parametrize(("name", "args"), [
    ("table_resnet18_every4_bf16.txt", ("specs/resnet18.arch", "--checkpoint", "every", "4",
                                        "--amp", "bf16", "--batch", "8", "--fit", "2GiB")),
    ("table_googlenet_blocks_fp16.txt", ("specs/googlenet.arch", "--checkpoint", "blocks",
                                         "--amp", "fp16", "--device", "cuda", "--optimizer",
                                         "adam", "--batch", "4", "--fit", "4GiB")),
])
def test_golden_memory_plans(name: str, args: tuple[str, ...], golden,
                             capsys: pytest.CaptureFixture[str]) -> None:
    """Every figure of a branched network's plan under checkpointing, autocast and --fit,
    pinned: what autograd keeps, the training-step timeline (its forward marked at once, its
    backward's passed, summed and in-place gradients, the segments recomputed) and the
    largest batch, which the VGG16 goldens (one chain, no checkpoint) do not reach."""
    code, out, _ = table(*args, capsys=capsys)
    assert code == 0
    golden(name, out)


def test_json_is_stable(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = table(str(SPECS / "resnet18.arch"), "--format", "json", capsys=capsys)
    assert code == 0
    data = json.loads(out)
    assert set(data) >= {"network", "input", "layers", "totals", "memory"}
    assert set(data["layers"][0]) >= {"name", "kind", "output_shape", "params",
                                      "params_no_bias", "activations", "macs",
                                      "receptive_field", "implicit"}
    assert set(data["totals"]) == {"params", "params_no_bias", "trainable_params", "buffers",
                                   "activations", "activation_bytes", "macs", "flops"}
    assert data["totals"]["params"] == sum(layer["params"] for layer in data["layers"])
    assert data["layers"][0]["output_shape"] == [64, 112, 112]


def test_dtype_halves_the_bytes(capsys: pytest.CaptureFixture[str]) -> None:
    full = report("lenet5", batch=4)
    half = report("lenet5", batch=4, dtype="bfloat16")
    assert half.totals.activation_bytes * 2 == full.totals.activation_bytes
    assert half.memory.inference_bytes * 2 == full.memory.inference_bytes


def test_output_file(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "vgg16.csv"
    code, out, _ = table(str(SPECS / "vgg16.arch"), "--format", "csv", "-o", str(target),
                         capsys=capsys)
    assert (code, out) == (0, "")
    assert target.read_text().startswith("name,kind,written,output_shape")


def test_json_is_written_in_pieces_to_a_file_as_to_stdout(
        tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """A long network's JSON comes in pieces, a chunk of rows each (written as they are made:
    100k layers' document is never held whole); the file gets what stdout gets."""
    spec = tmp_path / "long.arch"
    spec.write_text("network long\ninput 8x4x4\n[CONV3-8 - RELU]*400 - FC-10\n")
    network, shapes = archspec.load_network(spec)
    pieces = list(render_pieces(build_report(network, shapes), "json"))
    assert sum(len(piece) > 10_000 for piece in pieces) >= 3  # 802 rows, 256 a chunk
    code, out, _ = table(str(spec), "--format", "json", capsys=capsys)
    assert code == 0 and out == "".join(pieces)
    target = tmp_path / "long.json"
    assert table(str(spec), "--format", "json", "-o", str(target), capsys=capsys)[0] == 0
    assert target.read_text() == out


@pytest.mark.parametrize("fold", [False, True])
@pytest.mark.parametrize("text", [
    "network long\ninput 8x12x12\n[CONV3-8 - BN - RELU]*40 - POOL2 - [CONV3-8 - RELU]*40 - "
    "FC-10\n",
    "network flat\ninput 12\n[FC-8 - RELU]*40 - FC-3\n",  # no receptive field: null
])
def test_json_rows_alike_are_each_their_own(text: str, fold: bool) -> None:
    """A row like one written before in all but its name, receptive field, jump and members
    (a long chain's) is written from that row's text (`views.table_json._Layers`): the document
    is still json.dumps's, and each row's data its own."""
    r = report_text(text)
    rows = r.folded if fold else r.rows
    out = render(r, "json", fold=fold)
    data = json.loads(out)
    assert out == json.dumps(data, indent=2) + "\n"
    assert data["layers"] == [json.loads(json.dumps(layer_data(row))) for row in rows]
    long = text.startswith("network long")
    assert len({(layer["receptive_field"] or [0])[0] for layer in data["layers"]}) > (
        40 if long else 0)
    assert len({(layer["jump"] or [0])[0] for layer in data["layers"]}) > (1 if long else 0)


def test_output_file_needs_its_directory(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """`-o` writes a file and creates no folders: a missing (or file) parent, or a directory
    as the target, is a one-line usage error, and nothing is created."""
    (tmp_path / "file").write_text("")
    for target in (tmp_path / "missing" / "dir" / "x.md", tmp_path / "file" / "x.md",
                   tmp_path):
        code, out, err = table(str(SPECS / "vgg16.arch"), "-o", str(target), capsys=capsys)
        assert (code, out) == (2, "")
        assert err.count("\n") == 1 and err.startswith(f"archspec: error: cannot write {target}")
    assert not (tmp_path / "missing").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_sketch_is_located_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = table(str(SPECS / "sketch.arch"), capsys=capsys)
    assert (code, out) == (1, "")
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) >= 6
    assert all(line.startswith(f"{SPECS / 'sketch.arch'}:6:") for line in errors)
    assert "Traceback" not in err


def test_bad_options_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (("--fit", "lots"), ("--batch", "0"), ("--dtype", "int8")):
        with pytest.raises(SystemExit) as exit_:
            main(["table", str(SPECS / "vgg16.arch"), *args])
        assert exit_.value.code == 2
    assert "not a memory size" in capsys.readouterr().err


@pytest.mark.parametrize(("size", "message"), [
    ("16Gb", "a lower-case b means bits: '16Gb'"), ("16gb", "lower-case b means bits"),
    ("0", "expected a positive memory size, got '0'"), ("0GiB", "positive memory size"),
    ("0.1", "positive memory size")])
def test_bad_fit_is_a_usage_error(size: str, message: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["table", str(SPECS / "vgg16.arch"), "--fit", size])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


UNSHOWN_VALUES = {"batch": ["4"], "amp": ["bf16"], "device": ["cuda"],
                  "checkpoint": ["every", "3"], "optimizer": ["adam"], "fit": ["8GiB"],
                  "fold": [], "depth": ["1"]}


@pytest.mark.parametrize(("style", "name"), [(style, name) for style, names in
                                             table_cli.NOT_SHOWN.items() for name in names])
def test_an_option_the_style_does_not_show_is_refused(style: str, name: str,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`--style cs231n --fit 8GiB` would print what `--style cs231n` prints: a usage error
    (exit 2, nothing written) that names the option; CSV and JSON, which hold every figure
    whatever the style, take it."""
    spec, option = "specs/resnet18.arch", [f"--{name}", *UNSHOWN_VALUES[name]]
    with monkeypatch.context() as unchecked:  # the premise: the option changes nothing shown
        unchecked.setattr(table_cli, "NOT_SHOWN", {})
        for fmt in ("text", "markdown"):
            plain = table(spec, "--style", style, "--format", fmt, capsys=capsys)
            assert table(spec, "--style", style, "--format", fmt, *option, capsys=capsys) == plain
    code, out, err = table(spec, "--style", style, *option, capsys=capsys)
    assert (code, out) == (2, "")
    assert f"does not show what --{name} changes" in err
    code, out, _ = table(spec, "--style", style, "--format", "csv", *option, capsys=capsys)
    assert code == 0 and out.startswith("name,kind,")


def test_output_dash_is_standard_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    # `-o -` writes where no `-o` writes, as `-` reads standard input; no file named `-`.
    monkeypatch.chdir(tmp_path)
    spec = str(SPECS / "lenet5.arch")
    assert table(spec, "-o", "-", capsys=capsys) == table(spec, capsys=capsys)
    drawn = []
    for extra in (["-o", "-"], []):
        assert main(["draw", spec, *extra]) == 0
        drawn.append(capsys.readouterr().out)
    assert drawn[0] == drawn[1] and drawn[0].startswith("digraph lenet5 {")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["check", "-", "-"], ["diff", "-", "-"],
                                     ["probe", "-", "specs/lenet5.arch", "-"],
                                     ["draw", "--diff", "-", "-"]])
def test_standard_input_given_twice_is_a_usage_error(command: list[str],
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # It can be read once: the second `-` read nothing (diff said the spec had no network).
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(
        (SPECS / "lenet5.arch").read_bytes())))
    assert main(command) == 2
    assert capsys.readouterr().err == ("archspec: error: `-` (standard input) is given 2 "
                                       "times; it can be read once\n")


def test_a_pipe_is_read_as_a_file_is() -> None:
    # /dev/stdin and a shell's `<(...)` name pipes: read as a file is, to the size limit.
    text = (SPECS / "lenet5.arch").read_text()
    done = subprocess.run([sys.executable, "-m", "archspec", "check", "/dev/stdin"], cwd=ROOT,
                          input=text, capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (0, "/dev/stdin: ok: lenet5, 12 layers, "
                                                 "1x32x32 -> 10\n")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("command", [["--help"], ["--version"], ["table", "--help"]])
def test_help_that_standard_output_cannot_take_is_an_error(command: list[str]) -> None:
    # argparse drops a failed write of its help and exits 0; here it is one error line, exit 2.
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "archspec", *command], cwd=ROOT,
                              stdout=full, stderr=subprocess.PIPE, text=True)
    assert (done.returncode, done.stderr) == (
        2, "archspec: error: cannot write standard output: No space left on device\n")


def test_an_unrecognized_argument_is_said_with_the_commands_usage(
        capsys: pytest.CaptureFixture[str]) -> None:
    # argparse says it with the top parser's usage (`archspec [-h] [--version] COMMAND ...`).
    with pytest.raises(SystemExit) as exited:
        main(["table", str(SPECS / "vgg16.arch"), "--checkpoint", "every", "3", "4"])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert err.startswith("usage: archspec table [-h]")
    assert err.endswith("\narchspec table: error: unrecognized arguments: 4\n")


@pytest.mark.parametrize("command", [["table", "net.arch", "-o", "out.txt/"],
                                     ["draw", "net.arch", "-o", "out.svg/"]])
def test_an_output_named_as_a_folder_is_refused(command: list[str], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    # `out.svg/` names a folder that is not there: no file `out.svg` written in its place.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.arch").write_text((SPECS / "lenet5.arch").read_text())
    assert main(command) == 2
    assert capsys.readouterr().err == (f"archspec: error: cannot write {command[-1]}: the "
                                       "name ends in /, a folder's\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.arch"]


@pytest.mark.parametrize("command", [["table", "net.arch", "-o", "./net.arch"],
                                     ["draw", "net.dot", "-o", "net.dot"],
                                     ["draw", "--diff", "net.arch", "old.dot", "-o", "old.dot"]])
def test_an_output_that_is_an_input_is_refused(command: list[str], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    # It would be replaced by what was made of it: the spec lost, exit 0.
    monkeypatch.chdir(tmp_path)
    text = (SPECS / "lenet5.arch").read_text()
    for name in ("net.arch", "net.dot", "old.dot"):
        (tmp_path / name).write_text(text)
    assert main(command) == 2
    output, given = command[-1], command[-3]
    assert capsys.readouterr().err == (f"archspec: error: cannot write {output}: it is the "
                                       f"input {given}, which it would replace\n")
    assert all((tmp_path / name).read_text() == text for name in ("net.arch", "net.dot",
                                                                   "old.dot"))


def test_output_keeps_a_replaced_files_permissions(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    # `-o` replaces a file by a rename; the file keeps its mode, as an editor's save does.
    private, fresh = tmp_path / "private.txt", tmp_path / "fresh.txt"
    private.write_text("old")
    private.chmod(0o600)
    spec = str(SPECS / "lenet5.arch")
    assert table(spec, "-o", str(private), capsys=capsys)[0] == 0
    assert table(spec, "-o", str(fresh), capsys=capsys)[0] == 0
    assert private.stat().st_mode & 0o777 == 0o600 and private.read_text() != "old"
    mask = os.umask(0)
    os.umask(mask)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~mask


def test_every_spec_tabulates(capsys: pytest.CaptureFixture[str]) -> None:
    for path in SPECS.glob("*.arch"):
        if path.stem != "sketch":
            assert table(str(path), "--fold", capsys=capsys)[0] == 0, path


@pytest.mark.parametrize("command", [["table", "specs/vgg16.arch", "--style", "cs231n"],
                                     ["table", "specs/googlenet.arch", "--format", "json"],
                                     ["check", "specs/resnet18.arch"],
                                     ["diff", "specs/vgg16.arch", "specs/vgg16.arch"]])
def test_torch_is_never_imported(command: list[str]) -> None:
    code = ("import sys\nfrom archspec.cli import main\n"
            f"status = main({command!r})\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\nsys.exit(status)\n")
    done = python_c(code)
    assert done.returncode == 0, done.stderr


def test_the_text_table_imports_no_json() -> None:
    # The parser's tables are a module (lang/tables.py) and the JSON writers import json
    # where they write: text, markdown and CSV tables never pay its import (docs/table.md,
    # Speed). Without site's `.pth` hooks, which may import json themselves.
    code = ("import io, sys\nfrom contextlib import redirect_stdout\n"
            "from archspec.cli import main\nwith redirect_stdout(io.StringIO()):\n"
            "    status = [main(['table', 'specs/vgg16.arch', *fmt]) for fmt in\n"
            "              ([], ['--format', 'markdown'], ['--format', 'csv'])]\n"
            "print(status, [m for m in sys.modules if m == 'json' or m.startswith('json.')])\n")
    done = python_c(code, check=True, site_hooks=False)
    assert done.stdout == "[0, 0, 0] []\n"


def test_import_archspec_is_lazy_and_lists_its_public_names() -> None:
    # archspec's public names are imported at first use (PEP 562), yet dir() lists them as
    # when the package imported them itself, and `from archspec import *` gives each.
    code = ("import sys, archspec\n"
            "heavy = [m for m in ('pydantic', 'archspec.ir') if m in sys.modules]\n"
            "listed = [n for n in archspec.__all__ if n not in dir(archspec)]\n"
            "names = {}\nexec('from archspec import *', names)\n"
            "print(heavy, listed, sorted(set(archspec.__all__) - set(names)))\n")
    done = python_c(code, check=True)
    assert done.stdout == "[] [] []\n"


def test_archspecs_modules_are_its_attributes_after_import_archspec() -> None:
    # as when the package imported them itself: `import archspec; archspec.ir.Layer`
    code = ("import archspec\n"
            "print(archspec.ir.Layer.__name__, archspec.lang.__name__,"
            " archspec.catalog.__name__)\n"
            "try:\n    archspec.nothing\nexcept AttributeError as exc:\n    print(exc)\n")
    done = python_c(code, check=True)
    assert done.stdout == ("Layer archspec.lang archspec.catalog\n"
                           "module 'archspec' has no attribute 'nothing'\n")


# What start-up relies on (docs/table.md, Speed): archspec builds its own data (the IR, its
# defaults, the report, the findings) without validating it, and the `train:` section's and
# `init`'s settings without a validator where the values are plain (core.model.vouched;
# tests/test_model.py checks it against pydantic's): for every spec, pydantic builds no
# validator, so its plugin loader, which imports importlib.metadata, is never imported, nor is
# torch, nor lark (lang/lalr.py parses every line that parses), nor argparse (a plain command
# line is read by cli/options.py), nor shutil (argparse's help formatter imports it when set
# up: cli.parser._Formatter waits until it formats something). The
# command loads no pydantic plugins unless the user says otherwise. The process starts without
# site's `.pth` hooks (conftest.python_c), which on some machines import shutil themselves.
NEVER_IMPORTED = ["argparse", "importlib.metadata", "lark", "pydantic.plugin._loader", "shutil",
                  "torch"]


@pytest.mark.parametrize("env", [{}, {"PYDANTIC_DISABLE_PLUGINS": ""}])
def test_table_and_check_build_no_validator(env: dict[str, str]) -> None:
    specs = sorted(str(path.relative_to(ROOT)) for path in SPECS.glob("**/*.arch"))
    code = ("import io, json, os, sys\nfrom contextlib import redirect_stdout, redirect_stderr\n"
            "from pydantic import BaseModel\nfrom archspec.cli import main\n"
            "with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):\n"
            f"    status = [main([*command, spec]) for spec in {specs!r}\n"
            "              for command in (['table'], ['check'], ['check', '--format', 'json'])]\n"
            "def models(cls):\n    for sub in cls.__subclasses__():\n"
            "        yield sub\n        yield from models(sub)\n"
            "print(json.dumps([status, sorted(m.__name__ for m in models(BaseModel)\n"
            "    if m.__module__.startswith('archspec') and m.__pydantic_complete__),\n"
            f"    [name for name in {NEVER_IMPORTED!r} if name in sys.modules],\n"
            "    os.environ['PYDANTIC_DISABLE_PLUGINS']]))\n")
    environ = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    done = python_c(code, check=True, env=environ | env, site_hooks=False)
    status, complete, imported, plugins = json.loads(done.stdout)
    assert len(specs) > 40 and "specs/vgg16.arch" in specs  # zoo/ too; vgg16 has `train:`
    assert status == [1 if "sketch" in spec else 0 for spec in specs for _ in range(3)]
    assert complete == []
    assert imported == []
    assert plugins == env.get("PYDANTIC_DISABLE_PLUGINS", "__all__")


@pytest.mark.parametrize("columns", ["100", "57"])
def test_help_and_usage_are_argparses_own(monkeypatch: pytest.MonkeyPatch, columns: str) -> None:
    # cli._Formatter sets itself up only when it formats: the same help and usage as
    # argparse's own formatter, at any terminal width.
    monkeypatch.setenv("COLUMNS", columns)
    ours = argparse_reader.build_parser()
    monkeypatch.setattr(argparse_reader, "_Formatter", argparse.HelpFormatter)
    theirs = argparse_reader.build_parser()
    assert ours.format_help() == theirs.format_help()
    for name in cli.COMMANDS:
        mine, its = (next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
                     .choices[name] for p in (ours, theirs))
        assert (mine.prog, mine.format_usage(), mine.format_help()) == \
            (its.prog, its.format_usage(), its.format_help())


def test_the_process_freezes_what_start_up_made_and_main_does_not() -> None:
    # `archspec` (run) hands start-up's objects to gc.freeze() (docs/table.md, Speed); a
    # program calling main() keeps its collector as it was. The output is the same. The atexit
    # handler reads the freeze count once run() has ended: it runs, as handlers do, where one
    # is registered (run() then leaves the ending to the interpreter).
    code = ("import atexit, contextlib, gc, io, json, sys\nfrom archspec.cli import main, run\n"
            "out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out):\n"
            "    status = main(['table', 'specs/vgg16.arch'])\n"
            "called = [status, out.getvalue(), gc.get_freeze_count()]\n"
            "atexit.register(lambda: print(json.dumps([called, gc.get_freeze_count()])))\n"
            "sys.argv = ['archspec', 'table', 'specs/vgg16.arch']\n"
            "sys.exit(run())\n")
    done = python_c(code, check=True)
    golden = (ROOT / "tests" / "golden" / "table_vgg16.txt").read_text()
    run_text, _, last = done.stdout.rpartition("\n[")
    (status, text, frozen), run_frozen = json.loads("[" + last)
    assert status == 0
    assert text == run_text + "\n" == golden
    assert frozen == 0
    assert run_frozen > 10_000  # ~26,000 for this command


def test_the_process_ends_without_the_interpreters_teardown() -> None:
    # Nothing waits for it (no atexit handler, no other thread): run() ends the process as
    # soon as its output is out, before the interpreter's teardown, which the audit hook would
    # see; the exit status is the command's, its output whole. With a handler registered, the
    # interpreter ends it as usual.
    code = ("import atexit, os, sys\nfrom archspec.cli import run\n"
            "def hook(event, args, write=os.write):\n"
            "    if event == 'cpython.PyInterpreterState_Clear':\n"
            "        write(1, b'torn down\\n')\n"
            "sys.addaudithook(hook)\n{}\n"
            "sys.argv = ['archspec', *{}]\nsys.exit(run())\n")
    # Without the site's .pth hooks, which may register handlers of their own (coverage's).
    done = python_c(code.format("", ["table", "specs/vgg16.arch"]), check=True,
                    site_hooks=False)
    assert done.stdout == (ROOT / "tests" / "golden" / "table_vgg16.txt").read_text()
    bad = ["check", "tests/bad/argument_twice.arch"]
    ended = python_c(code.format("", bad), site_hooks=False)
    assert ended.returncode == 1 and ended.stdout == ""
    assert "argument_twice.arch:4:10: error: CONV gets `filters` twice" in ended.stderr
    kept = python_c(code.format("atexit.register(print, 'at exit')", bad), site_hooks=False)
    assert kept.returncode == 1 and kept.stdout == "at exit\ntorn down\n"
    assert kept.stderr == ended.stderr
    # logging's own handler (registered as it is imported) is run here, not waited for.
    logged = python_c(code.format(
        "import logging\nclass Handler(logging.Handler):\n"
        "    def close(self, write=os.write):\n        write(1, b'closed\\n')\n"
        "logging.getLogger().addHandler(Handler())", bad), site_hooks=False)
    assert logged.returncode == 1 and logged.stdout == "closed\n"
    assert logged.stderr == ended.stderr


def test_the_process_keeps_what_the_command_made_and_main_frees_it(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # Where run() runs the command (the process then ends with os._exit), `table` hands its
    # spec and report to cli.keep, so they are not freed one object at a time as it returns
    # (~0.14 s of a 100k-layer JSON table); called by a program, main() keeps nothing.
    assert main(["table", "specs/vgg16.arch"]) == 0 and cli._kept is None
    monkeypatch.setattr(cli, "_kept", [])
    # keep's gc.freeze() counted, not run: it would freeze this test process's every object
    # (and each garbage cycle not yet collected) for the rest of the session.
    frozen: list[None] = []
    monkeypatch.setattr(cli.gc, "freeze", lambda: frozen.append(None))
    assert main(["table", "specs/vgg16.arch"]) == 0 and len(frozen) == 1
    spec, report = cli._kept
    assert spec.network.name == "vgg16" and isinstance(report, Report)
    assert capsys.readouterr().out.count("vgg16") == 2


def test_a_run_that_does_not_end_the_process_leaves_main_keeping_nothing() -> None:
    # Where run() returns (an atexit handler registered: the interpreter ends the process) or
    # raises (argparse's SystemExit for --help), the process goes on: a main() called after it
    # frees what its command made and leaves the collector as it was, as main() does alone.
    code = ("import atexit, contextlib, gc, io, json, sys\nfrom archspec import cli\n"
            "atexit.register(lambda: None)\nseen = []\nfreeze = gc.freeze\n"
            "for argv in (['table', 'specs/vgg16.arch'], ['table', '--help']):\n"
            "    sys.argv = ['archspec', *argv]\n"
            "    gc.freeze = freeze\n"
            "    with contextlib.redirect_stdout(io.StringIO()), "
            "contextlib.suppress(SystemExit):\n"
            "        seen.append(cli.run())\n"
            "    gc.freeze = lambda: seen.append('frozen')\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        seen.append(cli.main(['table', 'specs/vgg16.arch']))\n"
            "    seen.append(cli._kept)\n"
            "print(json.dumps(seen, default=lambda o: type(o).__name__))\n")
    done = python_c(code, check=True)
    assert json.loads(done.stdout) == [0, 0, None, 0, None]


@pytest.mark.parametrize("name", ["table_vgg16_fold.txt", "table_vgg16_cs231n.txt",
                                  "table_vgg16_torchinfo.txt"])
def test_docs_show_the_current_output(name: str) -> None:
    doc = (ROOT / "docs" / "table.md").read_text()
    assert (ROOT / "tests" / "golden" / name).read_text() in doc, f"docs/table.md: update {name}"


MARKUP = ('network t "<img src=x onerror=alert(1)> [a](javascript:x) *b* \\\\ \x0c\ufffe\u202e"\n'
          "input 4\nFC-2\n")


def test_the_description_is_escaped_in_markdown_and_text(tmp_path) -> None:
    spec = tmp_path / "t.arch"
    spec.write_text(MARKUP, encoding="utf-8")
    assert main(["table", str(spec), "--format", "markdown", "-o", str(tmp_path / "t.md")]) == 0
    title = (tmp_path / "t.md").read_text().splitlines()[0]
    assert title == ("## t: \\<img src=x onerror=alert(1)\\> \\[a\\](javascript:x) "
                     "\\*b\\* \\\\ \\\\x0c\\\\ufffe\\\\u202e")
    text = render(report_text(MARKUP)).splitlines()[0]
    assert text == "t: <img src=x onerror=alert(1)> [a](javascript:x) *b* \\ \\x0c\\ufffe\\u202e"


def test_saved_for_backward_of_every_v2_kind() -> None:
    """Each contract-v2 kind in one network: activations keep their input, LAYERNORM and
    GROUPNORM their means and inverse deviations too, stochastic depth its per-sample mask,
    adaptive max pools their indices, a 1x1 adaptive average pool (a mean) nothing."""
    from test_pytorch import V2_KINDS

    spec = archspec.loads(V2_KINDS)
    assert spec.ok and spec.network is not None
    assert_saved_agrees(spec.network, spec.shapes)


@pytest.mark.parametrize("batch", [1, 2])
def test_groupnorm_keeps_a_contiguous_copy_of_a_channel_slice(batch: int) -> None:
    """torch's group_norm computes on `input.contiguous()` and saves that: a copy for a
    channel slice of a batch, the slice's own storage for a batch of one (hypothesis found
    SLICE(0, 1) - (... + GROUPNORM(1)) planned 16 bytes short)."""
    for body in ("SLICE(0, 1) - GROUPNORM(1)",
                 "SLICE(0, 1) - (CONV1-1 - CONV1-1 + GROUPNORM(1))",
                 "SLICE(0, 2) - GROUPNORM(2)"):  # every channel: no copy
        spec = archspec.loads(f"network n\ninput 2x4x4\n{body}\n")
        assert spec.ok and spec.network is not None
        assert_saved_agrees(spec.network, spec.shapes, batch)


def test_depth_folds_the_hierarchy_as_torchinfo_does(capsys: pytest.CaptureFixture[str]) -> None:
    """--depth 1 shows torchvision's top-level modules of ResNet-18, each figure the sum of
    its layers'; --depth 2 each block call; a flat spec is the same at any depth."""
    spec = archspec.load(SPECS / "zoo" / "resnet18.arch")
    assert spec.network is not None
    report = build_report(spec.network, spec.shapes)
    top = at_depth(report.rows, spec.network, 1)
    assert [r.name for r in top] == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2",
                                     "layer3", "layer4", "avgpool", "fc_flatten", "fc"]
    layer2 = top[5]
    inside = [r for r in report.rows if r.name.startswith("layer2.")]
    assert layer2.params == sum(r.params for r in inside) == 525_568
    assert layer2.macs == sum(r.macs for r in inside)
    assert (layer2.input_shape, layer2.output_shape) == ((64, 56, 56), (128, 28, 28))
    assert layer2.receptive_field == inside[-1].receptive_field
    assert sum(r.params for r in top) == report.totals.params
    second = [r.name for r in at_depth(report.rows, spec.network, 2)]
    assert second[4:7] == ["layer1.0", "layer1.1", "layer2.0"]
    assert main(["table", str(SPECS / "zoo" / "resnet18.arch"), "--depth", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.split()[:2] == ["layer2", "layer2"] and "525,568" in line
               for line in lines)
    assert main(["table", str(SPECS / "vgg16.arch")]) == 0
    flat = capsys.readouterr().out
    assert main(["table", str(SPECS / "vgg16.arch"), "--depth", "1"]) == 0
    assert capsys.readouterr().out == flat


JSON_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text()
                | st.integers(-10**40, 10**40))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(), inner, max_size=4), max_leaves=20)


def json_indented(value: object) -> str:
    """The document json_pieces writes, whole."""
    return "".join(json_pieces(value))


@given(JSON_VALUES)
def test_json_indented_is_json_dumps(value: object) -> None:
    """The table's JSON writer (the pure-Python encoder that json.dumps runs with `indent`
    took seconds a 100k-layer table) writes what json.dumps(value, indent=2) writes, NaN,
    non-ASCII text and empty containers included."""
    assert json_indented(value) == json.dumps(value, indent=2)
    if isinstance(value, list):  # an iterator is written as the list of its elements
        assert json_indented(iter(value)) == json.dumps(value, indent=2)
        # and a list of items each written whole at their indent (the table's rows)
        assert json_indented(JsonList(value, json_item)) == json.dumps(value, indent=2)


@given(st.lists(JSON_SCALARS, max_size=5), st.integers(0, 3))
def test_a_flat_list_is_written_as_json_dumps_at_its_indent(items: list, depth: int) -> None:
    pad = "  " * depth
    assert json_flat(items, pad) == json.dumps(items, indent=2).replace("\n", "\n" + pad)
    assert json_flat(tuple(items), pad) == json_flat(items, pad)


def test_json_indented_writes_long_lists_in_chunks_as_json_dumps() -> None:
    """Long lists go to pydantic-core's encoder a chunk at a time; what it writes otherwise
    than json (floats from 1e-9 to 1e-4, a None key, non-ASCII text, DEL, a lone surrogate
    it cannot encode) is written as json writes it, in whichever chunk it falls."""
    row = {"name": "conv1", "shape": [64, 224, 224], "field": None, "implicit": False,
           "folds": [], "more": {}, "big": 10**30, "ratio": 0.25, "tiny": 1e-300}
    odd = [1e-05, -3.5e-07, 1e-09, 9.99e-05, {None: 1}, "é→😀\x7f\x01", "\ud800",
           float("nan"), float("-inf"), -0.0, (1, 2), {"1e-5": "e-9"}]
    for at in (0, 255, 256, 700):
        for thing in odd:
            value = {"layers": [row] * 800, "n": 1}
            value["layers"][at] = thing
            expected = json.dumps(value, indent=2)
            assert json_indented(value) == expected
            value["layers"] = iter(value["layers"])
            assert json_indented(value) == expected


@pytest.mark.parametrize("command", ["table", "check", "train"])
def test_a_one_shot_command_runs_with_the_collector_paused(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str) -> None:
    """`table`, `check`, `compile`, `diff` and `draw` say PAUSE_COLLECTOR: cli.main runs them
    with the cycle collector paused (what they make is freed as they return), and turns it
    back on after; `train`, which runs for long, keeps it as it is."""
    import gc

    seen: list[bool] = []
    module = cli.command_module(command)
    monkeypatch.setattr(module, "run", lambda args: seen.append(gc.isenabled()) or 0)
    assert gc.isenabled()
    assert main([command, str(SPECS / "vgg16.arch")]) == 0
    assert seen == [command == "train"]
    assert gc.isenabled()
