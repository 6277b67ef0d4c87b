"""The memory plan under mixed precision: autocast's saved tensors, its weight copies and the
other components, checked against what autograd's saved-tensor hooks see in the module
archspec builds (on CPU, where autocast runs bf16 and fp16)."""

from __future__ import annotations

import json
import weakref

import pytest
from conftest import SPECS, all_specs
from hypothesis import HealthCheck, given, settings

import archspec
from archspec.analysis.report import build_report
from archspec.catalog import AMPS, DEVICES
from archspec.cli import main
from archspec.core.diagnostics import Diagnostics
from archspec.ir import Network
from archspec.kinds import registry as reg
from archspec.lang.shapes import Shapes, infer
from archspec.testing import networks

BATCH = 2
# The zoo at 224x224 takes minutes on a small CPU: its specs run at this side where their
# layers allow it (adaptive pools make the classifier's input the same), else at their own.
CHEAP_SIDE = 64
VALID = [p for p in all_specs() if p.name != "sketch.arch"]
SMALL = [p for p in VALID if p.parent == SPECS]
ZOO = [p for p in VALID if p.parent != SPECS]


def test_every_kind_states_how_it_runs_under_autocast_on_every_device() -> None:
    """A kind added without its autocast rule fails here, not in a user's memory plan."""
    for kind in (*reg.KINDS, *reg.JOINS):
        assert kind.autocast is not None, kind.name
        assert set(kind.autocast) == set(DEVICES), kind.name


def autograd_saved(network: Network, shapes: Shapes, amp: str | None,
                   batch: int = BATCH, checkpoint: str | int | None = None) -> int:
    """The bytes of every distinct storage autograd's saved-tensor hook sees in one training
    forward of the built module (parameters and buffers aside) and still holds when the
    forward ends, plus the input batch. (A checkpointed segment whose layers save nothing
    lets go of its input, which the hook saw: only what is held at the end counts.)"""
    torch = pytest.importorskip("torch")
    module = archspec.to_torch(network, shapes, checkpoint=checkpoint).train()
    owned = {t.data_ptr() for t in (*module.parameters(), *module.buffers())}
    held: list[weakref.ref] = []

    def pack(t):
        # Detached: the same storage, kept alive as autograd would, but not the tensor
        # itself, which for an op's output holds its grad_fn that holds the saved tensor: a
        # cycle no collector frees (each VGG of the zoo leaked 0.5-0.8 GB, and the suite was
        # OOM-killed at 18 GB). Autograd holds the detached tensor alone: the weak reference
        # dies when autograd lets it go.
        kept = t.detach()
        if t.data_ptr() not in owned:
            held.append(weakref.ref(kept))
        return kept

    x = torch.randn(batch, *network.input.shape)
    low = getattr(torch, AMPS[amp].dtype) if amp else torch.float32
    with torch.autocast("cpu", dtype=low, enabled=amp is not None), \
            torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = module(x)
    storages = {x.untyped_storage().data_ptr(): x.untyped_storage().nbytes()}
    for ref in held:
        if (tensor := ref()) is not None:
            storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
    del out
    return sum(storages.values())


def cheap(network: Network, shapes: Shapes) -> tuple[Network, Shapes]:
    """The network at CHEAP_SIDE x CHEAP_SIDE when every layer still has a shape there."""
    if len(network.input.shape) != 3 or network.input.shape[1] <= CHEAP_SIDE:
        return network, shapes
    small = network.model_copy(update={"input": network.input.model_copy(
        update={"shape": (network.input.shape[0], CHEAP_SIDE, CHEAP_SIDE)})})
    diags = Diagnostics()
    small_shapes = infer(small, diags)
    return (network, shapes) if diags.has_errors else (small, small_shapes)


def assert_plan_is_autograd(network: Network, shapes: Shapes, amp: str | None) -> None:
    memory = build_report(network, shapes, batch=BATCH, dtype="float32",
                          amp=amp, device="cpu").memory  # type: ignore[arg-type]
    assert memory.saved_bytes == autograd_saved(network, shapes, amp)


@pytest.mark.parametrize("path", SMALL, ids=lambda p: p.stem)
def test_saved_bytes_under_bf16_autocast_are_what_autograd_saves(path) -> None:
    assert_plan_is_autograd(*archspec.load_network(path), "bf16")


@pytest.mark.slow
@pytest.mark.parametrize("path", ZOO, ids=lambda p: p.stem)
def test_zoo_saved_bytes_under_bf16_autocast_are_what_autograd_saves(path) -> None:
    network, shapes = cheap(*archspec.load_network(path))
    assert_plan_is_autograd(network, shapes, "bf16")
    assert_plan_is_autograd(network, shapes, None)


@pytest.mark.parametrize("name", ["resnet18", "googlenet", "alexnet"])
def test_fp16_autocast_saves_like_bf16(name: str) -> None:
    """fp16 runs the same op lists: the same bytes, and a gradient scaler beside them."""
    network, shapes = cheap(*archspec.load_network(SPECS / f"{name}.arch"))
    assert_plan_is_autograd(network, shapes, "fp16")
    fp16 = build_report(network, shapes, amp="fp16").memory
    bf16 = build_report(network, shapes, amp="bf16").memory
    assert fp16.saved_bytes == bf16.saved_bytes
    assert (fp16.scaler_bytes, bf16.scaler_bytes) == (12, 0)
    assert fp16.training_bytes == bf16.training_bytes + 12


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks(max_size=10, max_channels=6))
def test_saved_bytes_under_autocast_on_random_networks(network: Network) -> None:
    """Every kind, join and header archspec.testing draws, with casts both ways: float32
    layers (LRN's output, a layer scale) feeding bf16 ones and joins of mixed types."""
    diags = Diagnostics()
    shapes = infer(network, diags)
    assert not diags.has_errors
    assert_plan_is_autograd(network, shapes, "bf16")


def test_autocast_keeps_weight_copies_and_float32_master_state() -> None:
    """ResNet-18: float32 parameters, gradients and optimizer state; a bf16 copy of every
    convolution and linear weight kept for backward (the first layer's too: a convolution
    keeps its weights whether or not its input needs a gradient)."""
    network, shapes = archspec.load_network(SPECS / "resnet18.arch")
    fp32 = build_report(network, shapes, batch=BATCH).memory
    amp = build_report(network, shapes, batch=BATCH, amp="bf16").memory
    weights = sum(r.weights for r in build_report(network, shapes).rows
                  if r.kind in ("CONV", "FC"))
    biases = sum(r.biases for r in build_report(network, shapes).rows if r.kind in ("CONV", "FC"))
    assert amp.autocast_copies_bytes == 2 * weights
    assert amp.autocast_cache_bytes == 2 * (weights + biases)
    assert (amp.params_bytes, amp.gradients_bytes, amp.optimizer_bytes) == (
        fp32.params_bytes, fp32.gradients_bytes, fp32.optimizer_bytes)
    assert amp.saved_bytes == amp.activations_bytes + amp.autocast_copies_bytes
    assert amp.training_bytes == (amp.params_bytes + amp.gradients_bytes + amp.optimizer_bytes
                                  + amp.buffers_bytes + amp.saved_bytes)
    assert fp32.saved_bytes == fp32.activations_bytes and fp32.autocast_cache_bytes == 0


def test_a_linear_layer_on_the_input_keeps_no_weight_copy() -> None:
    """A matrix product keeps its weights only for its input's gradient: the first FC of an
    MLP keeps the cast input, not the cast weights (init_relu: 10 x FC-500)."""
    network, shapes = archspec.load_network(SPECS / "init_relu.arch")
    memory = build_report(network, shapes, batch=BATCH, amp="bf16").memory
    assert memory.autocast_copies_bytes == 9 * 500 * 500 * 2


def test_the_train_sections_precision_is_the_policy(tmp_path, capsys) -> None:
    text = (SPECS / "resnet18.arch").read_text() + "\ntrain:\n  batch 4\n  precision bf16\n"
    spec = tmp_path / "r.arch"
    spec.write_text(text)
    assert main(["table", str(spec), "--format", "json"]) == 0
    memory = json.loads(capsys.readouterr().out)["memory"]
    network, shapes = archspec.load_network(SPECS / "resnet18.arch")
    expected = build_report(network, shapes, batch=4, amp="bf16").memory
    assert (memory["amp"], memory["amp_source"]) == ("bf16", "the train: section")
    for key in ("saved_bytes", "activations_bytes", "autocast_copies_bytes",
                "autocast_cache_bytes", "scaler_bytes", "params_bytes", "gradients_bytes",
                "optimizer_bytes", "buffers_bytes", "training_bytes"):
        assert memory[key] == getattr(expected, key), key


def test_fit_uses_the_policy(capsys) -> None:
    path = str(SPECS / "resnet18.arch")
    batches = []
    for extra in ([], ["--amp", "bf16"]):
        assert main(["table", path, "--format", "json", "--fit", "2GiB", *extra]) == 0
        batches.append(json.loads(capsys.readouterr().out)["memory"]["fit"]["training_batch"])
    assert batches[1] > batches[0] > 0


def test_autocast_over_low_precision_parameters_is_refused(capsys) -> None:
    """--dtype bfloat16 is pure low-precision training, a case of its own: no autocast."""
    code = main(["table", str(SPECS / "lenet5.arch"), "--amp", "bf16", "--dtype", "bfloat16"])
    assert code == 2
    assert "pure low-precision training" in capsys.readouterr().err
    # From the spec's dtype header, not --dtype: the error says how to plan autocast anyway.
    spec = archspec.loads("network t\ninput 3x8x8\ndtype bfloat16\nCONV3-4 - GAP - FC-2\n")
    assert spec.network is not None
    with pytest.raises(ValueError, match=r"the spec's dtype header; --dtype float32 --amp "
                                         r"bf16 plans autocast over it\)$"):
        build_report(spec.network, spec.shapes, amp="bf16")
    assert build_report(spec.network, spec.shapes, amp="bf16", dtype="float32").memory.amp \
        == "bf16"


def test_the_text_shows_the_breakdown_and_the_measured_band(capsys) -> None:
    assert main(["table", str(SPECS / "lenet5.arch"), "--amp", "fp16", "--batch", "8"]) == 0
    out = capsys.readouterr().out
    assert "fp16 autocast on cpu (from --amp), float32 parameters" in out
    assert "autocast's weight copies" in out and "gradient scaler 12 B" in out
    assert "measured (tests/test_memory.py)" in out


@pytest.mark.parametrize("amp", [None, "bf16"])
@pytest.mark.parametrize("body", ["(DROPOUT(0) * BN)", "CONV1-2 - (DROPPATH(0) * ID)"])
def test_a_dropout_that_drops_nothing_is_its_inputs_tensor(body: str, amp: str | None) -> None:
    """torch returns the input itself at p=0: a product keeping both factors keeps one tensor
    (hypothesis found `(DROPOUT(0) * BN)` counted twice)."""
    spec = archspec.loads(f"network t\ninput 1x3x3\n{body}\n")
    assert spec.ok and spec.network is not None
    assert_plan_is_autograd(spec.network, spec.shapes, amp)
