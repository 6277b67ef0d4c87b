"""Activation checkpointing in the built module: build(checkpoint="blocks") computes the same
outputs and gradients as the plain module and saves less for backward."""

from __future__ import annotations

import pytest
from conftest import SPECS
from test_memory import cheap

import archspec


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
