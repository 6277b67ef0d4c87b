"""Activation checkpointing in the built module: build(checkpoint="blocks") computes the same
outputs and gradients as the plain module and saves less for backward."""

from __future__ import annotations

import json

import pytest
from conftest import SPECS, quiet_trainer
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


# The zoo's block-calling specs run in the slow lane (about 40 s); specs/ in the fast one.
CALLING = [pytest.param(p, marks=pytest.mark.slow) if p in ZOO else p
           for p in (*SMALL, *ZOO) if _blocks_called(p)]


@pytest.mark.parametrize("amp", [None, "bf16"])
@pytest.mark.parametrize("path", CALLING, ids=lambda p: p.relative_to(SPECS).as_posix())
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


SECTION = """network tiny
input 3x16x16
block b(c): (CONV3-$c - RELU + ID)
CONV3-8 - b(8) - b(8) - GAP - FC-10
train:
  batch 4
  checkpoint blocks
"""


def test_the_train_section_checkpoints_the_trainers_model_and_the_plan(tmp_path) -> None:
    pytest.importorskip("torch")
    from archspec.lang.frontend import loads

    spec = loads(SECTION, "tiny.arch")
    assert spec.network is not None and spec.network.plan is not None
    assert spec.network.plan.checkpoint == "blocks"
    assert build_report(spec.network, spec.shapes).memory.checkpoint == "blocks"
    trainer = quiet_trainer(SECTION, tmp_path)
    model = trainer._model()
    wrapped = [name for name, module in model.named_modules() if "forward" in vars(module)]
    assert wrapped == ["b1", "b2"]  # the two block calls run under torch.utils.checkpoint


def test_checkpoint_blocks_without_a_block_is_an_error_at_its_line(tmp_path, capsys) -> None:
    path = tmp_path / "flat.arch"
    path.write_text("network flat\ninput 3x16x16\nCONV3-8 - GAP - FC-10\ntrain:\n"
                    "  checkpoint blocks\n")
    assert main(["check", str(path)]) == 1
    assert f"{path}:5:3: error: `checkpoint blocks` needs a block call: the spec calls no " \
        "block" in capsys.readouterr().err
