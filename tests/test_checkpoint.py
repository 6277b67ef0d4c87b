"""Activation checkpointing in the built module: build(checkpoint="blocks") computes the same
outputs and gradients as the plain module and saves less for backward."""

from __future__ import annotations

import json

import pytest
from conftest import SPECS
from test_memory import BATCH, SMALL, ZOO, autograd_saved, cheap

import archspec
from archspec.analysis.report import build_report
from archspec.cli import main


def _run(network, shapes, checkpoint):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = archspec.to_torch(network, shapes, checkpoint=checkpoint).train()
    x = torch.randn(2, *network.input.shape, generator=torch.Generator().manual_seed(1))
    saved: list[int] = []

    def pack(t):
        saved.append(t.untyped_storage().nbytes())
        return t.detach()

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = module(x)
    out.square().sum().backward()
    return out, {k: p.grad for k, p in module.named_parameters()}, sum(saved)


@pytest.mark.parametrize("name", ["resnet18.arch", "zoo/resnet50.arch"])
def test_checkpointed_blocks_give_the_same_outputs_and_gradients(name) -> None:
    torch = pytest.importorskip("torch")
    network, shapes = cheap(*archspec.load_network(SPECS / name))
    out, grads, saved = _run(network, shapes, None)
    out_ck, grads_ck, saved_ck = _run(network, shapes, "blocks")
    torch.testing.assert_close(out_ck, out)
    assert grads_ck.keys() == grads.keys()
    for key, grad in grads.items():
        torch.testing.assert_close(grads_ck[key], grad, msg=key)
    assert saved_ck < saved / 2


def test_checkpoint_needs_block_calls_and_the_word_blocks() -> None:
    pytest.importorskip("torch")
    flat = archspec.load_network(SPECS / "lenet5.arch")
    with pytest.raises(ValueError, match="calls no block"):
        archspec.to_torch(*flat, checkpoint="blocks")
    with pytest.raises(ValueError, match="the choice is 'blocks'"):
        archspec.to_torch(*archspec.load_network(SPECS / "resnet18.arch"), checkpoint="all")


def _blocks_called(path) -> bool:
    network, _ = archspec.load_network(path)
    return any(module.kind == "block" for module in network.modules)


CALLING = [p for p in (*SMALL, *ZOO) if _blocks_called(p)]


@pytest.mark.parametrize("amp", [None, "bf16"])
@pytest.mark.parametrize("path", CALLING, ids=lambda p: p.stem)
def test_planned_saved_bytes_under_checkpointing_are_what_autograd_saves(path, amp) -> None:
    """With non-reentrant checkpoint, autograd's hooks see each segment's input in the
    forward, beside what the layers outside segments save: the plan counts the same, to the
    byte, in float32 and under bf16 autocast."""
    network, shapes = cheap(*archspec.load_network(path))
    memory = build_report(network, shapes, batch=BATCH, dtype="float32", amp=amp,
                          device="cpu", checkpoint="blocks").memory
    assert memory.saved_bytes == autograd_saved(network, shapes, amp, checkpoint="blocks")
    plain = build_report(network, shapes, batch=BATCH, dtype="float32", amp=amp,
                         device="cpu").memory
    assert memory.saved_bytes < plain.saved_bytes
    assert 0 < memory.segment_peak_bytes <= plain.saved_bytes
    assert 0 < memory.recompute_macs < build_report(network, shapes).totals.macs


def test_the_planner_refuses_checkpointing_a_spec_without_blocks() -> None:
    with pytest.raises(ValueError, match="calls no block"):
        build_report(*archspec.load_network(SPECS / "lenet5.arch"), checkpoint="blocks")


def test_table_plans_checkpointing_and_fits_more(capsys) -> None:
    path = str(SPECS / "resnet18.arch")
    batches = []
    for extra in ([], ["--checkpoint", "blocks"]):
        assert main(["table", path, "--format", "json", "--fit", "2GiB", *extra]) == 0
        batches.append(json.loads(capsys.readouterr().out)["memory"]["fit"]["training_batch"])
    assert batches[1] > batches[0] > 0
    assert main(["table", path, "--checkpoint", "blocks"]) == 0
    assert "checkpointed (blocks): saved for backward keeps each outermost block call's " \
        "input" in capsys.readouterr().out
    assert main(["table", str(SPECS / "lenet5.arch"), "--checkpoint", "blocks"]) == 2
    assert capsys.readouterr().err == "archspec: error: checkpoint='blocks': the spec calls " \
        "no block\n"
