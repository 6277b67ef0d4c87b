"""Activation checkpointing in the built module: build(checkpoint="blocks") and
build(checkpoint=N) compute the same outputs and gradients as the plain module, save less for
backward, and save what the planner counts, to the byte."""

from __future__ import annotations

import copy
import json

import pytest
from conftest import SPECS, quiet_trainer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_memory import BATCH, SMALL, ZOO, autograd_saved, cheap

import archspec
from archspec.analysis import cost
from archspec.analysis.cost import checkpoint_pieces, segment_runs
from archspec.analysis.report import build_report
from archspec.backends.torch.emit import emit
from archspec.cli import main
from archspec.core.diagnostics import Diagnostics
from archspec.ir import Network
from archspec.lang.shapes import infer
from archspec.testing import networks
from archspec.views.table import render_pieces


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


# A flat graph (no named modules) with a top-level residual and a concat: its branched groups
# are pieces that no one module runs, written as methods of the network's class.
FLAT = """network flat
input 3x16x16
CONV3-8 - (CONV3-8 - RELU - CONV3-8 + ID) - (CONV1-4 | CONV3-4 | ID) - POOL2 - FC-10
"""
# The same shapes with a block call inside the top-level residual.
TREE = """network tree
input 3x16x16
block unit(c): [CONV3-$c - RELU - CONV3-$c]
CONV3-8 - (unit(8) + ID) - (CONV1-4 | CONV3-4 | ID) - POOL2 - FC-10
"""


def _load(name: str):
    if name in ("flat", "tree"):
        spec = archspec.loads(FLAT if name == "flat" else TREE, f"{name}.arch")
        assert spec.network is not None
        return spec.network, spec.shapes
    return cheap(*archspec.load_network(SPECS / name))


@pytest.mark.parametrize(("name", "checkpoint"), [
    ("resnet18.arch", "blocks"), ("zoo/resnet50.arch", "blocks"), ("resnet18.arch", 8),
    ("lenet5.arch", 4), ("zoo/mobilenet_v3_small.arch", 5), ("flat", 1), ("tree", 2)])
def test_checkpointing_gives_the_same_outputs_and_gradients(name, checkpoint) -> None:
    torch = pytest.importorskip("torch")
    network, shapes = _load(name)
    out, grads, saved = _run(network, shapes, None)
    out_ck, grads_ck, saved_ck = _run(network, shapes, checkpoint)
    torch.testing.assert_close(out_ck, out)
    assert grads_ck.keys() == grads.keys()
    for key, grad in grads.items():
        torch.testing.assert_close(grads_ck[key], grad, msg=key)
    assert saved_ck < saved


def test_checkpoint_takes_blocks_or_a_number_of_layers() -> None:
    pytest.importorskip("torch")
    flat = archspec.load_network(SPECS / "lenet5.arch")
    with pytest.raises(ValueError, match="calls no block"):
        archspec.to_torch(*flat, checkpoint="blocks")
    resnet = archspec.load_network(SPECS / "resnet18.arch")
    with pytest.raises(ValueError, match="the choice is 'blocks' or a number of layers"):
        archspec.to_torch(*resnet, checkpoint="all")
    for bad in (0, -3, True, 2.5):
        with pytest.raises(ValueError, match=f"checkpoint={bad!r}: .* at least 1"):
            archspec.to_torch(*resnet, checkpoint=bad)
    with pytest.raises(ValueError, match="checkpoint=69: the network makes one segment"):
        archspec.to_torch(*resnet, checkpoint=69)
    archspec.to_torch(*resnet, checkpoint=68)  # two segments: the first is checkpointed


@pytest.mark.parametrize(("name", "checkpoint"), [("resnet18.arch", "blocks"),
                                                ("resnet18.arch", 8)])
def test_a_deep_copy_of_a_checkpointed_model_runs_its_own_weights(name, checkpoint) -> None:
    """The checkpointed forward is its module's class's: copy.deepcopy (torch's AveragedModel
    makes one) runs the copy's layers, not the original's."""
    torch = pytest.importorskip("torch")
    network, shapes = _load(name)
    model = archspec.to_torch(network, shapes, checkpoint=checkpoint).eval()
    copied = copy.deepcopy(model)
    with torch.no_grad():
        for param in copied.parameters():
            param.zero_()
    x = torch.randn(1, *network.input.shape)
    assert (copied(x) == 0).all() and (model(x) != 0).any()


def test_pieces_cut_where_one_tensor_alone_is_alive() -> None:
    """Each piece has one input: a branched group is one piece, a plain chain is cut between
    its layers, a block call is never cut inside; together they are every layer in order."""
    for name in ("flat", "tree"):
        network, _ = _load(name)
        pieces = checkpoint_pieces(network)
        assert [n for piece in pieces for n in piece.layers] == [
            layer.name for layer in network.layers]
        assert [len(piece.layers) for piece in pieces] == [1, 4, 3, 1, 1, 1]
        assert [piece.unit is None for piece in pieces] == [False, True, True, False, False,
                                                            False]
    network, _ = archspec.load_network(SPECS / "zoo" / "resnet50.arch")
    units = [piece.unit for piece in checkpoint_pieces(network)]
    assert ("layer1", "0") in units and ("layer1",) not in units  # a chain group is looked into
    assert segment_runs([1, 1, 5, 1, 2], 2) == [[0, 1], [2], [3], [4]]
    assert segment_runs([1, 1, 1], 10) == [[0, 1, 2]]


def _blocks_called(path) -> bool:
    network, _ = archspec.load_network(path)
    return any(module.kind == "block" for module in network.modules)


# Each spec with each checkpointing: blocks where it calls one, and every 1 and every 8
# layers. The zoo runs in the slow lane (about 2 minutes); specs/ in the fast one.
CASES = [pytest.param(path, checkpoint, marks=[pytest.mark.slow] if path in ZOO else [],
                      id=f"{path.relative_to(SPECS).as_posix()}-{checkpoint}")
         for path in (*SMALL, *ZOO)
         for checkpoint in ((("blocks",) if _blocks_called(path) else ()) + (1, 8))]


@pytest.mark.parametrize("amp", [None, "bf16"])
@pytest.mark.parametrize(("path", "checkpoint"), CASES)
def test_planned_saved_bytes_under_checkpointing_are_what_autograd_saves(path, checkpoint,
                                                                         amp) -> None:
    """With non-reentrant checkpoint, autograd's hooks see each segment's input in the
    forward (kept only while a layer inside saves something), beside what the layers outside
    segments save: the plan counts the same, to the byte, in float32 and under bf16
    autocast."""
    network, shapes = cheap(*archspec.load_network(path))
    memory = build_report(network, shapes, batch=BATCH, dtype="float32", amp=amp,
                          device="cpu", checkpoint=checkpoint).memory
    assert memory.saved_bytes == autograd_saved(network, shapes, amp, checkpoint=checkpoint)
    # Not always less than without checkpointing: every 1 layer keeps each layer's input, a
    # convolution's output that a ReLU after it would not keep (AlexNet: 13.7 MB for 13.2).
    plain = build_report(network, shapes, batch=BATCH, dtype="float32", amp=amp,
                         device="cpu").memory
    assert 0 < memory.segment_peak_bytes <= plain.saved_bytes
    assert 0 < memory.recompute_macs <= build_report(network, shapes).totals.macs


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks(max_size=10, max_channels=6), st.integers(1, 6))
def test_every_n_layers_on_random_networks(network: Network, every: int) -> None:
    """Flat graphs with top-level branches, named groups and block calls, every kind: the
    checkpointed module computes what the plain one does and holds what the plan counts."""
    torch = pytest.importorskip("torch")
    diags = Diagnostics()
    shapes = infer(network, diags)
    assert not diags.has_errors
    if cost.checkpoint_problem(network, every) is not None:  # one segment: refused
        with pytest.raises(ValueError, match="one segment"):
            archspec.to_torch(network, shapes, checkpoint=every)
        return
    plan = build_report(network, shapes, batch=BATCH, checkpoint=every).memory
    assert plan.saved_bytes == autograd_saved(network, shapes, None, checkpoint=every)
    x = torch.randn(BATCH, *network.input.shape)
    outs = []
    for checkpoint in (None, every):
        torch.manual_seed(0)
        module = archspec.to_torch(network, shapes, checkpoint=checkpoint).train()
        torch.manual_seed(1)
        outs.append(module(x))
    torch.testing.assert_close(outs[1], outs[0])


def test_the_plan_says_where_its_checkpointing_came_from() -> None:
    """As batch, optimizer and amp do: the train: section's setting, --checkpoint over it,
    or none."""
    text = ("network t\ninput 3x16x16\nCONV3-8 - RELU - CONV3-8 - RELU - GAP - FC-10\n"
            "train:\n  checkpoint every 2\n")
    spec = archspec.loads(text)
    assert spec.network is not None
    sources = [(m.checkpoint, m.checkpoint_source) for m in (
        build_report(spec.network, spec.shapes).memory,
        build_report(spec.network, spec.shapes, checkpoint=3).memory,
        build_report(*archspec.load_network(SPECS / "lenet5.arch")).memory)]
    assert sources == [(2, "the train: section"), (3, "--checkpoint"), (None, "none")]
    # --checkpoint none plans the plain step over the train: section's setting.
    off = build_report(spec.network, spec.shapes, checkpoint="none").memory
    assert (off.checkpoint, off.checkpoint_source) == (None, "--checkpoint")
    unset = archspec.loads(text.replace("checkpoint every 2", "seed 0"))
    assert unset.network is not None
    assert off == build_report(unset.network, unset.shapes).memory._replace(
        checkpoint_source="--checkpoint")
    assert "checkpointed (every 2 layers, from the train: section): " in "\n".join(
        render_pieces(build_report(spec.network, spec.shapes), "text", "default"))


def test_the_planner_refuses_checkpointing_a_spec_without_blocks() -> None:
    with pytest.raises(ValueError, match="calls no block"):
        build_report(*archspec.load_network(SPECS / "lenet5.arch"), checkpoint="blocks")


def test_table_plans_checkpointing_and_fits_more(capsys) -> None:
    path = str(SPECS / "resnet18.arch")
    memories = []
    for extra in ([], ["--checkpoint", "blocks"], ["--checkpoint", "every", "10"]):
        assert main(["table", path, "--format", "json", "--fit", "2GiB", *extra]) == 0
        memories.append(json.loads(capsys.readouterr().out)["memory"])
    assert [m["checkpoint"] for m in memories] == [None, "blocks", 10]
    memory = build_report(*archspec.load_network(path), checkpoint=10, fit=2 * 2**30).memory
    assert memory.fit is not None
    assert memories[2] == memory._asdict() | {
        "fit": memory.fit._asdict(), "training_peak": memory.training_peak._asdict(),
        "assumptions": list(memory.assumptions)}
    batches = [m["fit"]["training_batch"] for m in memories]
    assert min(batches[1:]) > batches[0] > 0
    assert main(["table", path, "--checkpoint", "blocks"]) == 0
    assert "checkpointed (blocks, from --checkpoint): saved for backward keeps each " \
        "outermost block call's input" in capsys.readouterr().out
    assert main(["table", path, "--checkpoint", "every", "10"]) == 0
    assert "checkpointed (every 10 layers, from --checkpoint): saved for backward keeps " \
        "the input of each segment but the last, which runs plain" in capsys.readouterr().out
    assert main(["table", str(SPECS / "lenet5.arch"), "--checkpoint", "blocks"]) == 2
    # The option's words, as the sibling `checkpoint every 69: ...` (not build()'s repr).
    assert capsys.readouterr().err == "archspec: error: checkpoint blocks: the spec calls " \
        "no block\n"
    assert main(["table", path, "--checkpoint", "every", "69"]) == 2
    assert capsys.readouterr().err == "archspec: error: checkpoint every 69: all 69 layers " \
        "make one segment, the last, which runs without checkpointing; choose N below 69\n"


@pytest.mark.parametrize(("words", "message"), [
    (["every", "0"], "every N: expected a whole number from 1 to 2,147,483,647, got '0'"),
    (["every", "x"], "every N: expected a whole number from 1 to 2,147,483,647, got 'x'"),
    (["every", "99999999999"],
     "every N: expected a whole number from 1 to 2,147,483,647, got '99999999999'"),
    (["every"], "expected `blocks`, `every N` or `none`, got 'every'"),
    (["all"], "expected `blocks`, `every N` or `none`, got 'all'"),
])
def test_table_refuses_a_bad_checkpoint(words, message, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["table", str(SPECS / "resnet18.arch"), "--checkpoint", *words])
    assert exit_.value.code == 2
    assert f"error: argument --checkpoint: {message}\n" in capsys.readouterr().err


@pytest.mark.parametrize(("words", "value"), [
    (["--checkpoint", "blocks", "FILE"], "blocks"),
    (["--checkpoint", "every", "4", "FILE"], 4),
    (["--checkpoint", "none", "FILE"], None),
    (["FILE", "--checkpoint", "every", "4"], 4),
    (["--check", "every", "4", "FILE", "--format", "json"], 4),  # argparse's prefix
    (["--checkpoint=blocks", "FILE"], "blocks"),
])
def test_table_reads_file_after_the_checkpoints_words(words, value, capsys) -> None:
    # `blocks` and `none` take one word, `every N` two; the word after them is FILE (it was
    # taken as a third word of the option, and FILE reported missing).
    spec = str(SPECS / "resnet18.arch")
    words = [spec if word == "FILE" else word for word in words]
    assert main(["table", *words, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["memory"]["checkpoint"] == value


@pytest.mark.parametrize(("words", "error"), [
    (["blocks", "4"], "unrecognized arguments: 4"),  # FILE already given: one too many
    (["every", "4", "5"], "unrecognized arguments: 5"),
])
def test_table_checkpoint_leaves_surplus_words_to_argparse(words, error, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["table", str(SPECS / "resnet18.arch"), "--checkpoint", *words])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.endswith(f"archspec table: error: {error}\n")


@pytest.mark.parametrize("name", ["flat", "tree"])
def test_generated_pieces_match_golden(name, golden) -> None:
    """A top-level branched group is a method of the network's class that PIECES names."""
    network, shapes = _load(name)
    golden(f"compile_{name}_pieces.py", emit(network, shapes, origin=f"{name}.arch"))


SECTION = """network tiny
input 3x16x16
block b(c): (CONV3-$c - RELU + ID)
CONV3-8 - b(8) - b(8) - GAP - FC-10
train:
  batch 4
  checkpoint blocks
"""


@pytest.mark.parametrize(("setting", "value", "wrapped"), [
    ("blocks", "blocks", ["b1", "b2"]),  # the two block calls run under torch.utils.checkpoint
    ("every 4", 4, [""]),  # the network's forward runs its segments
])
def test_the_train_section_checkpoints_the_trainers_model_and_the_plan(
        tmp_path, setting, value, wrapped) -> None:
    pytest.importorskip("torch")
    from archspec.lang.frontend import loads

    spec = loads(SECTION.replace("checkpoint blocks", f"checkpoint {setting}"), "tiny.arch")
    assert spec.network is not None and spec.network.plan is not None
    assert spec.network.plan.checkpoint == value
    memory = build_report(spec.network, spec.shapes).memory
    assert memory._replace(checkpoint_source="--checkpoint") \
        == build_report(spec.network, spec.shapes, checkpoint=value).memory
    assert (memory.checkpoint, memory.checkpoint_source) == (value, "the train: section")
    trainer = quiet_trainer(SECTION.replace("checkpoint blocks", f"checkpoint {setting}"),
                            tmp_path)
    model = trainer._model()
    # A checkpointed module's class is with_forward's subclass of its own, of the same name.
    assert [name for name, module in model.named_modules()
            if type(module).__name__ == type(module).__base__.__name__] == wrapped


EVERY_RANGE = "`checkpoint every N` takes a whole number of layers, from 1 to 2,147,483,647"


@pytest.mark.parametrize(("setting", "col", "message"), [
    ("every", 3, "write `checkpoint every N`, N a whole number of layers"),
    ("every(4)", 3, "write `checkpoint every N`, N a whole number of layers"),
    ("every 4 5", 3, "write `checkpoint every N`, N a whole number of layers"),
    ("every -4", 20, EVERY_RANGE),
    ("every 4.5", 20, EVERY_RANGE),
    ("every x", 20, EVERY_RANGE),
    ("every 99999999999999999999", 20, EVERY_RANGE),
    ("evry 4", 3, "`checkpoint` takes one of: blocks, every"),
    ("blocks 4", 3, "`checkpoint` takes one of: blocks, every"),
    ("evry", 14, "unknown checkpoint `evry`"),
])
def test_a_bad_checkpoint_setting_is_an_error_at_its_place(setting, col, message) -> None:
    spec = archspec.loads(SECTION.replace("checkpoint blocks", f"checkpoint {setting}"),
                          "tiny.arch")
    assert [(d.span.line, d.span.col, d.message) for d in spec.diagnostics if d.severity ==
            "error"] == [(7, col, message)]


def test_checkpoint_blocks_without_a_block_is_an_error_at_its_line(tmp_path, capsys) -> None:
    path = tmp_path / "flat.arch"
    path.write_text("network flat\ninput 3x16x16\nCONV3-8 - GAP - FC-10\ntrain:\n"
                    "  checkpoint blocks\n")
    assert main(["check", str(path)]) == 1
    assert f"{path}:5:3: error: `checkpoint blocks` needs a block call: the spec calls no " \
        "block" in capsys.readouterr().err


@pytest.mark.parametrize("checkpoint", ["blocks", 8])
def test_a_checkpointed_model_is_freed_when_its_last_reference_goes(checkpoint) -> None:
    """No reference cycle (a module holding a method bound to itself) keeps a checkpointed
    model's weights alive until the cycle collector happens to run."""
    pytest.importorskip("torch")
    import weakref

    model = archspec.to_torch(*_load("resnet18.arch"), checkpoint=checkpoint)
    modules = [weakref.ref(module) for module in model.modules()]
    del model
    assert [ref for ref in modules if ref() is not None] == []
