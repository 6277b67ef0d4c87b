"""Every form of the language contract (docs/language.md) parses to the graph it means: kinds,
arguments, edges."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from conftest import ROOT, all_specs
from hypothesis import given, settings
from hypothesis import strategies as st

from archspec.ir import Layer, Network
from archspec.lang import expr, header, syntax
from archspec.lang.frontend import Spec, load, loads

CONV_DEFAULTS = {"stride": 1, "pad": 0, "dilation": 1, "groups": 1, "bias": True}


def spec_of(body: str, header: str = "network t\ninput 3x32x32\n") -> Spec:
    return loads(header + body, "t.arch")


def network(body: str, header: str = "network t\ninput 3x32x32\n") -> Network:
    """The lowered network of a spec that must be free of errors."""
    spec = spec_of(body, header)
    assert spec.ok, spec.render()
    assert spec.network is not None
    return spec.network


def kinds(net: Network) -> list[str]:
    return [layer.kind for layer in net.layers]


def chain_edges(net: Network) -> bool:
    """True when every layer reads exactly the one before it (a plain stack)."""
    previous = "input"
    for layer in net.layers:
        if layer.inputs != (previous,):
            return False
        previous = layer.name
    return True


def conv(filters: int, kernel: int | tuple[int, int], **kw: object) -> dict[str, object]:
    return {"filters": filters, "kernel": kernel, **CONV_DEFAULTS, **kw}


def pool(kernel: int, stride: int | None = None, pad: int = 0) -> dict[str, object]:
    return {"kernel": kernel, "stride": stride or kernel, "pad": pad, "ceil": False}


def by_name(net: Network) -> dict[str, Layer]:
    return {layer.name: layer for layer in net.layers}


# -- a whole file and its header ------------------------------------------------------------


def test_the_contract_example_parses_whole() -> None:
    text = """\
# VGG16 (Simonyan & Zisserman, 2014) as in the CS231n table
network vgg16 "VGG16, configuration D"
input 3x224x224
activation relu

[CONV3-64]*2 - POOL2
[CONV3-128]*2 - POOL2
[CONV3-256]*3 - POOL2
[CONV3-512]*3 - POOL2
[CONV3-512]*3 - POOL2
FC-4096 - DROPOUT(0.5) - FC-4096 - DROPOUT(0.5) - FC-1000

train:
  data digits
  batch 128
  epochs 30
  optimizer sgd(lr=0.01, momentum=0.9, weight_decay=5e-4)
  schedule plateau(factor=0.1, patience=3)
  augment hflip - rotate(20) - color_jitter(hue=0.05, saturation=0.05)
  seed 0
"""
    spec = loads(text, "vgg16.arch")
    # The network and plan parse whole and check without error, as the contract shows it:
    # digits' 10 classes use 10 of VGG16's 1000 units and its 8x8 images are scaled up, both
    # legal and both worth a warning.
    assert spec.ok
    assert [(d.span.line, d.severity.value, d.message) for d in spec.diagnostics] == [
        (14, "warning", "data digits has 10 classes; the network ends in 1,000 units, so 990 "
         "of them are never a target"),
        (14, "warning", "the images of data digits are 8x8; the input is 224x224, so they "
         "are scaled up 28 times and the network sees nothing finer than the original pixels")]
    net = spec.network
    assert net is not None
    assert (net.name, net.description) == ("vgg16", "VGG16, configuration D")
    real = [layer for layer in net.layers if not layer.implicit]
    assert [layer.kind for layer in real].count("CONV") == 13
    assert [layer.kind for layer in real].count("MAXPOOL") == 5
    assert [layer.kind for layer in real].count("FC") == 3
    assert chain_edges(net)
    assert spec.shapes[net.output] == (1000,)
    plan = net.plan
    assert plan is not None
    assert (plan.data.name, plan.batch, plan.epochs, plan.seed) == ("digits", 128, 30, 0)
    assert (plan.optimizer.name, plan.optimizer.lr, plan.optimizer.momentum,
            plan.optimizer.weight_decay) == ("sgd", 0.01, 0.9, 5e-4)
    assert (plan.schedule.name, plan.schedule.factor, plan.schedule.patience) == (
        "plateau", 0.1, 3)
    assert [(a.name, a.args) for a in plan.augment] == [
        ("hflip", {}), ("rotate", {"deg": 20}),
        ("color_jitter", {"hue": 0.05, "saturation": 0.05})]


@pytest.mark.parametrize(("line", "shape", "order"), [
    ("input 3x224x224", (3, 224, 224), "chw"),
    ("input 224x224x3 hwc", (3, 224, 224), "hwc"),
    ("input 224×224×3 HWC", (3, 224, 224), "hwc"),
    ("input 1x28x32 chw", (1, 28, 32), "chw"),
    ("input 500", (500,), "flat"),
])
def test_input_orders(line: str, shape: tuple[int, ...], order: str) -> None:
    body = "FC-10\n" if order == "flat" else "CONV3-8\n"
    net = network(body, f"network t\n{line}\n")
    assert (net.input.shape, net.input.order) == (shape, order)


def test_network_description_is_optional_and_unescaped() -> None:
    assert network("FC-2", "network plain\ninput 4\n").description == ""
    assert network("FC-2", 'network q "say \\"hi\\""\ninput 4\n').description == 'say "hi"'


def test_activation_after_every_conv_and_fc_but_the_classifier() -> None:
    net = network("CONV3-8 - POOL2 - CONV3-8 - FC-32 - FC-10",
                  "network t\ninput 3x8x8\nactivation relu\n")
    assert kinds(net) == ["CONV", "RELU", "MAXPOOL", "CONV", "RELU", "FLATTEN", "FC", "RELU",
                          "FC"]
    relus = [layer for layer in net.layers if layer.kind == "RELU"]
    assert all(r.implicit for r in relus)
    assert [r.origin for r in relus] == ["conv1", "conv2", "fc1"]
    assert chain_edges(net)


def test_a_bare_word_means_the_same_everywhere_and_each_layer_has_its_own_arguments() -> None:
    """A bare word's arguments are worked out once (`Expander._layer`): the same wherever it
    stands, in a block or not, with `defaults` applied; each layer holds its own dict; a word
    that fails is reported at each place, and an argument list is read at its own place."""
    spec = spec_of("block b(c): [CONV3-$c - CONV3-8]\n"
                   "CONV3-8 - b(8) - CONV3-8 - CONV3-8(stride=2) - CONV3 - CONV3\n",
                   "network t\ninput 8x32x32\ndefaults CONV(bias=false)\n")
    convs = [layer for layer in spec.network.layers if layer.kind == "CONV"]
    assert [c.args for c in convs[:4]] == [conv(8, 3, pad=1, bias=False)] * 4
    assert convs[4].args == conv(8, 3, pad=1, bias=False, stride=2)
    assert [c.args for c in convs[5:]] == [None, None]  # sketches: CONV3 lacks its filters
    assert len({id(c.args) for c in convs[:5]}) == 5
    assert [(d.code, d.span.line, d.span.col) for d in spec.errors] == [
        ("missing-argument", 5, 48), ("missing-argument", 5, 56)]


def test_activation_with_arguments() -> None:
    net = network("FC-8 - FC-2", "network t\ninput 4\nactivation leakyrelu(slope=0.2)\n")
    assert [(layer.kind, layer.args) for layer in net.layers] == [
        ("FC", {"units": 8, "bias": True}), ("LEAKYRELU", {"slope": 0.2}),
        ("FC", {"units": 2, "bias": True})]


def test_batchnorm_goes_between_conv_and_activation() -> None:
    net = network("CONV3-8 - CONV3-8", "network t\ninput 3x8x8\nbatchnorm\nactivation relu\n")
    assert kinds(net) == ["CONV", "BN", "RELU", "CONV", "BN"]
    assert [layer.origin for layer in net.layers] == [None, "conv1", "conv1", None, "conv2"]
    assert chain_edges(net)


def test_defaults_several_kinds_on_one_line_reach_implicit_layers_too() -> None:
    net = network("CONV3-8 - CONV(4, 1, bias=true) - POOL2",
                  "network t\ninput 3x8x8\nbatchnorm\n"
                  "defaults CONV(bias=false) BN(eps=0.001) POOL(stride=1)\n")
    layers = by_name(net)
    assert layers["conv1"].args == conv(8, 3, pad=1, bias=False)
    assert layers["conv2"].args == conv(4, 1)  # written arguments win over defaults
    assert layers["conv1_bn"].args == {"eps": 0.001, "momentum": 0.1}
    assert layers["pool1"].args == pool(2, stride=1)


@pytest.mark.parametrize(("line", "name", "std"), [
    ("", "torch", 0.01),
    ("init torch", "torch", 0.01),
    ("init normal(std=0.02)", "normal", 0.02),
    ("init normal(0.05)", "normal", 0.05),
    ("init xavier", "xavier", 0.01),
    ("init KAIMING", "kaiming", 0.01),
    ("init orthogonal", "orthogonal", 0.01),
])
def test_init_schemes(line: str, name: str, std: float) -> None:
    net = network("FC-2", f"network t\ninput 4\n{line}\n")
    assert (net.init.name, net.init.std) == (name, std)


@pytest.mark.parametrize(("line", "dtype"), [
    ("", "float32"), ("dtype float32", "float32"), ("dtype float16", "float16"),
    ("dtype bfloat16", "bfloat16")])
def test_dtype(line: str, dtype: str) -> None:
    assert network("FC-2", f"network t\ninput 4\n{line}\n").dtype == dtype


def test_keywords_and_kinds_are_case_insensitive_names_are_not() -> None:
    upper = network("Conv3-8 - pool2 - Fc-10", "NETWORK t\nINPUT 3x8x8\nActivation ReLU\n")
    lower = network("CONV3-8 - POOL2 - FC-10", "network t\ninput 3x8x8\nactivation relu\n")
    assert kinds(upper) == kinds(lower)
    assert [layer.args for layer in upper.layers] == [layer.args for layer in lower.layers]
    named = network("A: FC-2 - a: FC-2", "network t\ninput 4\n")
    assert [layer.name for layer in named.layers] == ["A", "a"]


def test_comments_and_blank_lines_are_ignored() -> None:
    net = network("# a comment line\n\nCONV3-8 # trailing comment\n  # indented comment\n"
                  "- POOL2 # another\n")
    assert kinds(net) == ["CONV", "MAXPOOL"]


def test_any_text_in_comments_and_strings() -> None:
    net = network("CONV3-8 # naïve — ×2\n", 'network t "Réseau — 3×3"\n# café\ninput 3x8x8\n')
    assert net.description == "Réseau — 3×3"
    assert kinds(net) == ["CONV"]


def test_windows_line_endings_and_tabs() -> None:
    text = "network t\r\ninput 3x8x8\r\n\tCONV3-8 -\r\n\tPOOL2\r\ntrain:\r\n\tbatch 4\r\n"
    spec = loads(text)
    assert spec.ok, spec.render()
    assert spec.network is not None and spec.network.plan is not None
    assert kinds(spec.network) == ["CONV", "MAXPOOL"]
    assert spec.network.plan.batch == 4


# -- chains, shorthands, repeats ------------------------------------------------------------


def test_dash_and_arrow_mean_the_same() -> None:
    dashes = network("CONV3-8 - RELU - POOL2")
    arrows = network("CONV3-8 -> RELU → POOL2")
    tight = network("CONV3-8-RELU-POOL2")
    assert kinds(dashes) == kinds(arrows) == kinds(tight) == ["CONV", "RELU", "MAXPOOL"]
    assert chain_edges(dashes) and chain_edges(arrows) and chain_edges(tight)


def test_consecutive_lines_join_into_one_chain() -> None:
    net = network("CONV3-8 -\n  POOL2\nCONV3-16\n-> POOL2\n")
    assert kinds(net) == ["CONV", "MAXPOOL", "CONV", "MAXPOOL"]
    assert chain_edges(net)


def test_brackets_continue_a_line() -> None:
    net = network("[CONV3-8 -\n   RELU]*2 - (CONV1-4\n | CONV3-4)\n")
    assert kinds(net) == ["CONV", "RELU", "CONV", "RELU", "CONV", "CONV", "CONCAT"]


@pytest.mark.parametrize(("written", "kind", "args"), [
    ("CONV3-64", "CONV", conv(64, 3, pad=1)),
    ("CONV5-6", "CONV", conv(6, 5, pad=2)),
    ("CONV3-128/2", "CONV", conv(128, 3, stride=2, pad=1)),
    ("CONV1-16", "CONV", conv(16, 1)),
    ("CONV(96, 11, stride=4)", "CONV", conv(96, 11, stride=4)),
    ("CONV(64, 7x1, pad=same)", "CONV", conv(64, (7, 1), pad=(3, 0))),
    ("CONV(8, 3, dilation=2, pad=same)", "CONV", conv(8, 3, dilation=2, pad=2)),
    ("CONV(8, 3, groups=1, bias=false)", "CONV", conv(8, 3, bias=False)),
    ("POOL2", "MAXPOOL", pool(2)),
    ("POOL3/2", "MAXPOOL", pool(3, 2)),
    ("MAXPOOL2", "MAXPOOL", pool(2)),
    ("POOL(3, 2, pad=1)", "MAXPOOL", pool(3, 2, pad=1)),
    ("POOL(2, ceil=true)", "MAXPOOL", {**pool(2), "ceil": True}),
    ("AVGPOOL2", "AVGPOOL", pool(2)),
    ("AVGPOOL3/1", "AVGPOOL", pool(3, 1)),
    ("GAP", "GAP", {}),
    ("NORM", "NORM", {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}),
    ("LRN(size=3)", "NORM", {"size": 3, "alpha": 1e-4, "beta": 0.75, "k": 2.0}),
    ("BN", "BN", {"eps": 1e-5, "momentum": 0.1}),
    ("BATCHNORM(eps=1e-3)", "BN", {"eps": 1e-3, "momentum": 0.1}),
    ("RELU", "RELU", {}),
    ("TANH", "TANH", {}),
    ("SIGMOID", "SIGMOID", {}),
    ("GELU", "GELU", {}),
    ("LEAKYRELU", "LEAKYRELU", {"slope": 0.01}),
    ("LEAKYRELU(0.1)", "LEAKYRELU", {"slope": 0.1}),
    ("SOFTMAX", "SOFTMAX", {}),
    ("DROPOUT", "DROPOUT", {"p": 0.5}),
    ("DROPOUT(0.3)", "DROPOUT", {"p": 0.3}),
    ("DROPOUT(p=0.3)", "DROPOUT", {"p": 0.3}),
    ("DROPOUT(keep=0.8)", "DROPOUT", {"p": 0.2}),
    ("FLATTEN", "FLATTEN", {}),
])
def test_each_layer_kind_and_shorthand(written: str, kind: str, args: dict) -> None:
    net = network(written, "network t\ninput 8x16x16\n")
    layer = net.layers[0]
    assert (layer.kind, layer.args, layer.written, layer.inputs) == (
        kind, args, written, ("input",))


def test_written_arguments_override_what_a_shorthand_implies() -> None:
    net = network("CONV3-64(pad=0) - CONV3-64(stride=2) - CONV3-8(1, 0)",
                  "network t\ninput 3x8x8\ndefaults CONV(pad=2)\n")
    assert [layer.args for layer in net.layers] == [
        conv(64, 3), conv(64, 3, stride=2, pad=1), conv(8, 3)]


def test_dropout_written_p_or_keep_beats_a_default() -> None:
    net = network("DROPOUT - DROPOUT(0.3) - DROPOUT(keep=0.6)",
                  "network t\ninput 4\ndefaults DROPOUT(keep=0.9)\n")
    assert [layer.args for layer in net.layers] == [{"p": 0.1}, {"p": 0.3}, {"p": 0.4}]


@pytest.mark.parametrize("written", ["FC-4096", "FC(4096)", "FC(units=4096)", "fc-4096"])
def test_fc_forms(written: str) -> None:
    net = network(written, "network t\ninput 100\n")
    assert [(layer.kind, layer.args) for layer in net.layers] == [
        ("FC", {"units": 4096, "bias": True})]


def test_lenet_one_liner() -> None:
    net = network("[CONV5-6-POOL2-CONV5-16-POOL2-FC-120-FC-84-FC-10]",
                  "network lenet\ninput 1x32x32\n")
    assert kinds(net) == ["CONV", "MAXPOOL", "CONV", "MAXPOOL", "FLATTEN", "FC", "FC", "FC"]
    assert [layer.args for layer in net.layers if layer.kind in ("CONV", "FC")] == [
        conv(6, 5, pad=2), conv(16, 5, pad=2), {"units": 120, "bias": True},
        {"units": 84, "bias": True}, {"units": 10, "bias": True}]
    assert chain_edges(net)


def test_a_dash_before_digits_with_a_space_separates() -> None:
    spec = spec_of("CONV3 - 64")
    [error] = spec.errors
    assert (error.span.line, error.span.col, error.code) == (3, 9, "syntax")
    assert error.hint is not None and "CONV3-64" in error.hint


@pytest.mark.parametrize("repeat", ["*3", "x3", "X3", "×3", " * 3", "x 3"])
def test_repeat_spellings(repeat: str) -> None:
    net = network(f"[CONV3-8 - RELU]{repeat}")
    assert kinds(net) == ["CONV", "RELU"] * 3
    assert chain_edges(net)
    scopes = [layer.scopes for layer in net.layers]
    assert [s[-1].index for s in scopes] == [0, 0, 1, 1, 2, 2]
    assert {s[-1].count for s in scopes} == {3}


def test_nested_repeats_and_grouping_without_count() -> None:
    net = network("[[CONV3-8]*2 - POOL2]*3 - [FC-10]")
    assert kinds(net) == ["CONV", "CONV", "MAXPOOL"] * 3 + ["FLATTEN", "FC"]
    assert chain_edges(net)
    first = net.layers[0]
    assert [(s.index, s.count) for s in first.scopes] == [(0, 3), (0, 2)]
    assert net.layers[-1].scopes == ()


def test_cs231n_pattern_with_leading_input() -> None:
    net = network("INPUT -> [[CONV3-32 -> RELU]*2 -> POOL2]*3 -> [FC-256 -> RELU]*2 -> FC-10")
    assert kinds(net) == (["CONV", "RELU", "CONV", "RELU", "MAXPOOL"] * 3
                          + ["FLATTEN", "FC", "RELU", "FC", "RELU", "FC"])
    assert net.layers[0].inputs == ("input",)
    assert chain_edges(net)


def test_implied_flatten_only_before_the_first_fc_after_spatial_layers() -> None:
    net = network("CONV3-8 - FC-16 - FC-4", "network t\ninput 3x4x4\n")
    assert kinds(net) == ["CONV", "FLATTEN", "FC", "FC"]
    flatten = net.layers[1]
    assert (flatten.implicit, flatten.origin, flatten.inputs) == (True, "fc1", ("conv1",))
    flat = network("FC-16 - FC-4", "network t\ninput 48\n")
    assert kinds(flat) == ["FC", "FC"]
    explicit = network("CONV3-8 - FLATTEN - FC-4", "network t\ninput 3x4x4\n")
    assert kinds(explicit) == ["CONV", "FLATTEN", "FC"]


# -- names and branches ---------------------------------------------------------------------


def test_named_layers_and_generated_names() -> None:
    net = network("conv1: CONV(96, 11, stride=4) - POOL3/2 - CONV3-8 - stem_out: RELU",
                  "network t\ninput 3x227x227\n")
    assert [layer.name for layer in net.layers] == ["conv1", "pool1", "conv2", "stem_out"]
    assert net.layers[0].args == conv(96, 11, stride=4)


def test_concat_branches() -> None:
    net = network("CONV3-8 - (CONV1-4 | CONV3-6 - RELU | POOL3/1(pad=1)) - CONV1-2")
    layers = by_name(net)
    assert kinds(net) == ["CONV", "CONV", "CONV", "RELU", "MAXPOOL", "CONCAT", "CONV"]
    assert layers["conv2"].inputs == layers["conv3"].inputs == layers["pool1"].inputs == (
        "conv1",)
    assert layers["concat1"].inputs == ("conv2", "relu1", "pool1")
    assert layers["conv4"].inputs == ("concat1",)


def test_residual_with_identity() -> None:
    net = network("CONV3-8 - (CONV3-8 - BN + ID) - RELU")
    layers = by_name(net)
    assert kinds(net) == ["CONV", "CONV", "BN", "ADD", "RELU"]
    assert layers["add1"].inputs == ("bn1", "conv1")
    assert layers["relu1"].inputs == ("add1",)


def test_multiply_join_gates_channels() -> None:
    """`( A * B )` multiplies its branches: a squeeze-and-excitation gate (Cx1x1) broadcasts
    over the map's height and width."""
    net = network("CONV3-8 - (ID * GAP - CONV1-2 - RELU - CONV1-8 - SIGMOID)")
    layers = by_name(net)
    assert kinds(net) == ["CONV", "GAP", "CONV", "RELU", "CONV", "SIGMOID", "MUL"]
    assert layers["mul1"].inputs == ("conv1", "sigmoid1")
    assert layers["mul1"].written == "×"


def test_a_repeat_inside_a_multiply_stays_a_repeat() -> None:
    """`]*N` (and `]* N`) is a repeat; `*` between chains inside parentheses multiplies."""
    net = network("([CONV3-8]*2 * [CONV3-8] * 2)")
    assert kinds(net) == ["CONV", "CONV", "CONV", "CONV", "MUL"]
    assert by_name(net)["mul1"].inputs == ("conv2", "conv4")


def test_branches_nest_and_repeat() -> None:
    net = network("CONV3-8 - [((CONV3-4 | CONV1-4) + ID)]*2")
    assert kinds(net) == ["CONV"] + ["CONV", "CONV", "CONCAT", "ADD"] * 2
    layers = by_name(net)
    assert layers["add1"].inputs == ("concat1", "conv1")
    assert layers["conv4"].inputs == layers["conv5"].inputs == ("add1",)


def test_branch_runs_from_the_network_input() -> None:
    net = network("(CONV3-8 | CONV1-8)")
    assert [layer.inputs for layer in net.layers] == [("input",), ("input",),
                                                      ("conv1", "conv2")]


# -- blocks ---------------------------------------------------------------------------------


def test_blocks_with_params_defaults_and_repeat_counts() -> None:
    header = ("network t\ninput 16x8x8\ndefaults CONV(bias=false)\n"
              "block basic(c, s=1): (CONV3-$c/$s - BN - RELU - CONV3-$c - BN + ID) - RELU\n"
              "block stack(c, n): [CONV3-$c]*$n\n"
              "block head(units=10): FC($units)\n")
    net = network("basic(16) - basic(c=16, s=1) - stack(8, 3) - head - head(units=5)", header)
    assert kinds(net) == (["CONV", "BN", "RELU", "CONV", "BN", "ADD", "RELU"] * 2
                          + ["CONV"] * 3 + ["FLATTEN", "FC", "FC"])
    convs = [layer for layer in net.layers if layer.kind == "CONV"]
    assert convs[0].args == conv(16, 3, pad=1, bias=False)
    assert [c.args["filters"] for c in convs] == [16, 16, 16, 16, 8, 8, 8]
    fcs = [layer.args for layer in net.layers if layer.kind == "FC"]
    assert fcs == [{"units": 10, "bias": True}, {"units": 5, "bias": True}]
    first = by_name(net)["basic1.add1"]  # a block call is a module: its layers sit inside
    assert first.inputs == ("basic1.bn2", "input")
    assert net.layers[0].scopes[0].label == "basic(16)"


def test_a_block_default_may_name_an_earlier_parameter() -> None:
    header = "network t\ninput 3x8x8\nblock b(c, d=$c): CONV3-$c - CONV3-$d\n"
    net = network("b(4) - b(4, 8)", header)
    assert [(layer.args or {}).get("filters") for layer in net.layers] == [4, 4, 4, 8]


def test_blocks_call_blocks() -> None:
    header = ("network t\ninput 8x8x8\nblock unit(c): CONV3-$c - RELU\n"
              "block pair(c): unit($c) - unit($c)\n")
    net = network("pair(8) - pair(4)", header)
    assert [(layer.kind, (layer.args or {}).get("filters")) for layer in net.layers] == [
        ("CONV", 8), ("RELU", None), ("CONV", 8), ("RELU", None),
        ("CONV", 4), ("RELU", None), ("CONV", 4), ("RELU", None)]


# -- the train section ----------------------------------------------------------------------


def test_train_section_every_setting() -> None:
    body = ("FC-5\n\ntrain:\n  data synthetic(classes=5, n=64)\n  batch 16\n  epochs 14\n"
            "  optimizer adamw(lr=1e-3, weight_decay=0.01)\n  schedule sgdr(period=2, mult=2)\n"
            "  augment hflip - rotate(20) - color_jitter(brightness=0.1, contrast=0.1, "
            "saturation=0.1, hue=0.05) - resize(32) - random_crop(32, pad=4) - scale(0.8, 1.2)\n"
            "  snapshots 3\n  seed 7\n")
    plan = network(body, "network t\ninput 3x32x32\n").plan
    assert plan is not None
    assert (plan.data.name, plan.data.classes, plan.data.n) == ("synthetic", 5, 64)
    assert (plan.batch, plan.epochs, plan.snapshots, plan.seed) == (16, 14, 3, 7)
    assert plan.schedule.cycle_ends(plan.epochs) == [2, 6, 14]  # the three snapshots
    assert (plan.optimizer.name, plan.optimizer.lr, plan.optimizer.weight_decay) == (
        "adamw", 1e-3, 0.01)
    assert (plan.schedule.name, plan.schedule.period, plan.schedule.mult) == ("sgdr", 2, 2)
    assert [a.name for a in plan.augment] == ["hflip", "rotate", "color_jitter", "resize",
                                              "random_crop", "scale"]
    assert plan.augment[4].args == {"size": 32, "pad": 4}
    assert plan.augment[5].args == {"min": 0.8, "max": 1.2}
    assert plan.spans["batch"].line == 7


@pytest.mark.parametrize(("line", "field", "value"), [
    ("data digits", "data", "digits"),
    ("data mnist5k", "data", "mnist5k"),
    ('data folder("imgs/train")', "data", "folder"),
    ("optimizer sgd(lr=0.1, momentum=0.5, nesterov=true)", "optimizer", "sgd"),
    ("optimizer adam(lr=3e-4)", "optimizer", "adam"),
    ("schedule none", "schedule", "none"),
    ("schedule step(every=30, gamma=0.1)", "schedule", "step"),
    ("schedule plateau(factor=0.5, patience=2)", "schedule", "plateau"),
    ("schedule cosine", "schedule", "cosine"),
])
def test_train_choices(line: str, field: str, value: str) -> None:
    plan = network(f"FC-10\ntrain:\n  {line}\n", "network t\ninput 4\n").plan
    assert plan is not None
    assert getattr(plan, field).name == value
    if value == "folder":
        assert plan.data.path == "imgs/train"
    if value == "sgd":
        assert (plan.optimizer.lr, plan.optimizer.momentum, plan.optimizer.nesterov) == (
            0.1, 0.5, True)


def test_a_settings_arguments_take_expressions() -> None:
    # `{EXPR}` stands anywhere a number may (the contract): in a setting's arguments too,
    # worked out from numbers alone (a `$param` there is an error: tests/bad)
    plan = network("FC-10\ntrain:\n  optimizer sgd(lr={0.05*2}, momentum={9/10})\n"
                   "  schedule step({10*3}, {1/10})\n  augment rotate({10+10})\n",
                   "network t\ninput 3x8x8\n").plan
    assert plan is not None
    assert (plan.optimizer.lr, plan.optimizer.momentum) == (0.1, 0.9)
    assert (plan.schedule.every, plan.schedule.gamma) == (30, 0.1)
    assert plan.augment[0].args == {"deg": 20}


def test_ensemble_setting() -> None:
    plan = network("FC-2\ntrain:\n  ensemble 4\n", "network t\ninput 4\n").plan
    assert plan is not None and plan.ensemble == 4


def test_no_train_section_means_no_plan_and_an_empty_one_means_defaults() -> None:
    assert network("FC-2", "network t\ninput 4\n").plan is None
    plan = network("FC-2\ntrain:\n", "network t\ninput 4\n").plan
    assert plan is not None and plan.batch == 64


# -- sketches -------------------------------------------------------------------------------


def test_a_bare_sketch_parses_into_the_whole_graph() -> None:
    spec = spec_of("[CONV-POOL-CONV-POOL-FC-FC]")
    assert spec.network is not None and spec.drawable and not spec.ok
    assert kinds(spec.network) == ["CONV", "MAXPOOL", "CONV", "MAXPOOL", "FLATTEN", "FC", "FC"]
    assert all(layer.args is None for layer in spec.network.layers if not layer.implicit)
    assert chain_edges(spec.network)
    assert [(d.span.line, d.span.col) for d in spec.errors] == [
        (3, 2), (3, 7), (3, 12), (3, 17), (3, 22), (3, 25)]
    assert {d.code for d in spec.errors} == {"missing-argument"}


@pytest.mark.parametrize("path", all_specs(), ids=lambda p: p.stem)
def test_every_seed_spec_checks(path: Path) -> None:
    spec = load(path)
    if path.stem == "sketch":
        assert spec.drawable and not spec.ok
    else:
        assert spec.ok, spec.render()
        assert not spec.errors


def test_every_header_keyword_has_its_reader() -> None:
    # The parser guesses misspelt keywords from syntax.HEADER_KEYWORDS; the lowering reads
    # each with its own reader: the two lists must be the same.
    assert set(header._READERS) == set(syntax.HEADER_KEYWORDS)


def test_sgdr_cycles_of_one_length_cost_no_memory() -> None:
    """snapshots with sgdr(period=1) over 2^31-1 epochs: the cycle ends are a range."""
    from archspec.ir import ScheduleSpec

    ends = ScheduleSpec(name="sgdr", period=1).cycle_ends(2**31 - 1)
    assert len(ends) == 2**31 - 1 and list(ends[-2:]) == [2**31 - 2, 2**31 - 1]
    assert list(ScheduleSpec(name="sgdr", period=2, mult=2).cycle_ends(14)) == [2, 6, 14]


# -- contract v2's kinds --------------------------------------------------------------------


def test_modern_kinds_and_their_aliases() -> None:
    net = network("CONV3-8 - RELU6 - relu6 - HARDSWISH - HARDSIGMOID - SILU - SWISH - MISH - SELU"
                  " - ELU - PRELU - LAYERNORM - GROUPNORM(2) - SCALE - DROPPATH(0.1)"
                  " - STOCHASTICDEPTH(0.2) - SLICE(0, 4) - SHUFFLE(2) - GMP")
    assert kinds(net) == ["CONV", "RELU6", "RELU6", "HARDSWISH", "HARDSIGMOID", "SILU", "SILU",
                          "MISH", "SELU", "ELU", "PRELU", "LAYERNORM", "GROUPNORM", "SCALE",
                          "STOCHASTICDEPTH", "STOCHASTICDEPTH", "SLICE", "SHUFFLE", "GMP"]
    layers = by_name(net)
    assert layers["relu6_1"].args == {} and "relu6_2" in layers  # a digit, then `_n`
    assert layers["elu1"].args == {"alpha": 1.0}
    assert layers["prelu1"].args == {"per_channel": False}
    assert layers["scale1"].args == {"init": 1e-6}
    assert layers["groupnorm1"].args == {"groups": 2, "eps": 1e-5}


def test_generated_names_count_each_kind_and_block_apart() -> None:
    """Each short name counts its own: blocks `b1` and `b1_` give `b1_1` and `b1_1` (the
    second made unique: `b1_1_2`), not `b1_1` and `b1_2`."""
    spec = loads("network t\ninput 3x8x8\nblock b1(c): [CONV3-$c]\nblock b1_(c): [CONV3-$c]\n"
                 "b1(8) - b1_(8) - b1(8) - b1_(8) - RELU6 - RELU6 - FC-10\n")
    assert spec.network is not None and not spec.diagnostics
    assert [layer.name for layer in spec.network.layers] == [
        "b1_1.0", "b1_1_2.0", "b1_2.0", "b1_2_2.0", "relu6_1", "relu6_2", "fc1_flatten", "fc1"]


def test_adaptive_pools_take_an_output_size() -> None:
    net = network("POOL2 - AVGPOOL(out=7) - MAXPOOL(out=3x2) - AVGPOOL(out=1)")
    layers = by_name(net)
    assert layers["avgpool1"].args == {"out": 7}
    assert layers["pool2"].args == {"out": (3, 2)}
    assert layers["pool1"].args == {"kernel": 2, "stride": 2, "pad": 0, "ceil": False}
    spec = spec_of("AVGPOOL(out=7) - MAXPOOL(out=3x2)")
    assert [spec.shapes[n] for n in ("avgpool1", "pool1")] == [(3, 7, 7), (3, 3, 2)]


def test_deconv_shorthand_upsamples_by_its_stride() -> None:
    spec = spec_of("DECONV2-16/2 - DECONV(4, 3, stride=2, pad=1, output_pad=1) - "
                   "UPSAMPLE(2) - UPSAMPLE(3, mode=bilinear)")
    assert spec.ok, spec.render()
    layers = by_name(spec.network)
    assert layers["deconv1"].args == {"filters": 16, "kernel": 2, "stride": 2, "pad": 0,
                                      "dilation": 1, "groups": 1, "bias": True,
                                      "output_pad": 0}
    assert [spec.shapes[n] for n in ("deconv1", "deconv2", "upsample1", "upsample2")] == [
        (16, 64, 64), (4, 128, 128), (4, 256, 256), (4, 768, 768)]


# -- {expressions} --------------------------------------------------------------------------


def test_expressions_stand_wherever_a_number_may() -> None:
    """In a shorthand, an argument, a repeat count, a block argument and a parameter default:
    + - * / // %, parentheses, min and max; a whole float is a whole number."""
    header = ("network t\ninput 8x8x8\n"
              "block mb(i, e, k=3, wide={$i*$e}): CONV1-{$i*$e} - "
              "CONV({$wide}, $k, pad=same, groups={$i*$e}) - "
              "(ID * GAP - CONV1-{max(1, $i//4)} - CONV1-{$wide} - SIGMOID)\n"
              "block st(c, n): [CONV{$n+2}-{$c/2}]*{$n % 3 + 1}\n")
    net = network("mb(8, 6) - st(c={2*(3+5)}, n=1) - FC({min(10, 3*4) - -2})", header)
    layers = by_name(net)
    assert layers["mb1.conv1"].args is not None and layers["mb1.conv1"].args["filters"] == 48
    assert layers["mb1.conv2"].args is not None and layers["mb1.conv2"].args["groups"] == 48
    assert layers["mb1.conv3"].args is not None and layers["mb1.conv3"].args["filters"] == 2
    assert [layer.written for layer in net.layers if layer.kind == "CONV"][-2:] == [
        "CONV3-8", "CONV3-8"]  # two repeats of a 3x3 with 16/2 filters, written with values
    assert layers["fc1"].args == {"units": 12, "bias": True}
    scopes = {scope.label for layer in net.layers for scope in layer.scopes}
    assert "st(c=16, n=1)" in scopes


def test_an_unused_block_reports_only_what_its_text_causes() -> None:
    """Its parameters stand in as 1: `{$c/($s-1)}` divides by zero only for the stand-in,
    so it is not reported; a parameter it lacks is."""
    spec = spec_of("CONV3-8", "network t\ninput 3x8x8\n"
                   "block u(c, s): CONV1-{$c/($s-1)} - CONV1-{$x}\n")
    assert [(d.span.line, d.span.col, d.message) for d in spec.diagnostics] == [
        (3, 43, "block `u` has no parameter `$x`")]


@pytest.mark.parametrize("block", [
    "block b(c, wide={$c*4}): CONV1-$wide",  # docs/language.md's own form, never called
    "block b(c=2, wide={$c*4}): CONV1-$wide",  # every value known
    "block b(c, s=1, mid={$c//2}): CONV1-$mid - CONV3-$c/$s",  # 0 filters for the stand-in
    "block b(c, k={$c+1}): CONV{$k}-8 - CONV3-{$c-1}",  # an even kernel, 0 filters
])
def test_an_unused_blocks_default_computed_from_its_parameters_is_not_judged(block: str) -> None:
    """A default computed from a parameter without a value stands in as that parameter
    does: what only the stand-in causes is not reported."""
    spec = spec_of("block used(c): CONV3-$c\nused(8)", f"network t\ninput 3x32x32\n{block}\n")
    assert spec.ok, spec.render()


def test_an_unused_blocks_default_is_still_checked() -> None:
    spec = spec_of("CONV3-8", "network t\ninput 3x8x8\nblock u(c, w={4/0}): CONV1-$w\n")
    assert [(d.span.line, d.span.col, d.message) for d in spec.diagnostics] == [
        (3, 16, "in `{4/0}`: division by zero")]


@pytest.mark.parametrize("body", ["CONV3-8", "b(4)", "b(w=3)", "b(c=1) - b(w=2, c=1)"])
def test_a_default_using_a_later_parameter_is_one_error_at_the_definition(body: str) -> None:
    """Defaults come from the parameters before them, whatever the calls give: the block
    is refused at its line, its calls add nothing."""
    spec = spec_of(body, "network t\ninput 3x8x8\nblock b(w={$c*4}, c=2): CONV1-$w\n")
    assert [(d.span.line, d.span.col, d.message) for d in spec.diagnostics] == [
        (3, 12, "the default of `w` uses `$c`, no earlier parameter of block `b`")]


def test_expressions_outside_a_block_are_numbers() -> None:
    net = network("[CONV1-{2*8}]*{3 % 2 + 1} - DROPOUT({1/4})")
    assert kinds(net) == ["CONV", "CONV", "DROPOUT"]
    assert by_name(net)["dropout1"].args == {"p": 0.25}
    assert by_name(net)["conv1"].written == "CONV1-16"


_EXPRESSIONS = st.recursive(
    st.integers(0, 99).map(str) | st.sampled_from(["$a", "$b", "0.5"]),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "//", "%"]), inner).map(
            lambda t: f"{t[0]} {t[1]} {t[2]}"),
        inner.map(lambda e: f"({e})"), inner.map(lambda e: f"-{e}"),
        st.tuples(st.sampled_from(["min", "max"]), inner, inner).map(
            lambda t: f"{t[0]}({t[1]}, {t[2]})")),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(_EXPRESSIONS, st.integers(-9, 9), st.integers(-9, 9))
def test_expressions_compute_what_python_does(text: str, a: int, b: int) -> None:
    """Precedence, associativity, floor division and modulo of negatives: Python's."""
    try:
        want = eval(text.replace("$a", f"({a})").replace("$b", f"({b})"))
    except ZeroDivisionError:
        with pytest.raises(expr.ExprError, match="division by zero"):
            expr.evaluate(expr.parse(text), lambda name, i, j: {"a": a, "b": b}[name])
        return
    got = expr.evaluate(expr.parse(text), lambda name, i, j: {"a": a, "b": b}[name])
    assert got == pytest.approx(want) and (isinstance(got, int) or not float(got).is_integer())


def test_an_expression_in_defaults_is_worked_out_once() -> None:
    net = network("CONV3-8", "network t\ninput 8x8x8\ndefaults CONV(groups={2*2})\n")
    assert by_name(net)["conv1"].args is not None
    assert by_name(net)["conv1"].args["groups"] == 4
    spec = spec_of("CONV3-8", "network t\ninput 8x8x8\ndefaults CONV(groups={$g})\n")
    assert [d.message for d in spec.errors] == ["`$g` is a block parameter, used outside a block"]


@settings(max_examples=300, deadline=None)
@given(st.text(st.one_of(st.characters(max_codepoint=0x7F),
                         st.sampled_from(["×", "→", "é", "\x85", "\ufffd", '"', "#", "\n"])),
               max_size=30))
def test_a_bad_character_is_found_as_both_patterns_find_it(text: str) -> None:
    """parser._bad_character looks at ASCII text with one small pattern (in ASCII both
    forbid the same control characters): it finds what the two patterns find, a character
    forbidden anywhere or one forbidden outside comments and strings."""
    from archspec.lang import parser

    found = [m.span() for m in (re.search(parser._BAD_ANYWHERE, text),
                                re.search(parser._BAD_CHAR, parser._masked(text))) if m]
    bad = parser._bad_character(text)
    assert (bad.span() if bad else None) == min(found, default=None)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(
    st.sampled_from(["e", "E", "e+", "e-", ".", "x", " ", "#", '"', "\n", "CONV", "-"]),
    st.sampled_from([1, 2, 308, 309, 310]).map(lambda n: "9" * n), st.integers(0, 400).map(str)),
    max_size=8))
def test_a_number_beyond_floating_point_is_found_as_reading_every_number_finds_it(
        pieces: list[str]) -> None:
    """parser._huge_number reads numbers only where one may be huge (an exponent, 309
    digits): it finds what reading every number outside comments and strings finds."""
    from archspec.lang import parser

    text = "".join(pieces)
    want = next((m.span() for m in re.finditer(parser._NUMBER_TEXT, parser._masked(text))
                 if not math.isfinite(float(m.group()))), None)
    found = parser._huge_number(text)
    assert (found.span() if found else None) == want


# -- the examples of docs/language.md -------------------------------------------------------

_FENCED = r"(?ms)(?:^<!-- (check|not checked): ([^\n]*?) -->\n)?^```(\w*)\n(.*?)^```"


def _doc_examples() -> list[tuple[int, str]]:
    """Each untagged fenced block of docs/language.md (``` text is output) as a whole spec,
    with its line. The example stands where a `<!-- check: A ; ... ; B -->` line before it
    puts `...`, between those lines (A, B: a header line, layers); without one, after
    `input 3x32x32`. `network example` leads unless the example names its network.
    `<!-- not checked: WHY -->` marks one that is wrong on purpose."""
    text = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    examples = []
    for m in re.finditer(_FENCED, text):
        marker, context, tag, block = m.groups()
        if tag or marker == "not checked":
            continue
        whole = re.search(r"(?im)^network ", block) is not None
        lines = (context or ("..." if whole else "input 3x32x32 ; ...")).split(" ; ")
        spec = "\n".join(block if line == "..." else line for line in lines)
        if not whole:
            spec = "network example\n" + spec
        examples.append((text.count("\n", 0, m.start(4)) + 1, spec + "\n"))
    return examples


def test_docs_examples_check_as_written() -> None:
    examples = _doc_examples()
    assert len(examples) >= 9
    for line, text in examples:
        spec = loads(text, f"docs/language.md:{line}")
        assert spec.ok, spec.render()
