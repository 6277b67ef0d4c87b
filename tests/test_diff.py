"""`archspec diff` and `draw --diff`: golden diffs of the seed pairs, exit codes, graphs written
differently, name anchoring, branches, and properties over random networks."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import python_c
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from archspec.analysis.diff import ArgChange, DiffReport, Loaded, compare
from archspec.cli import main
from archspec.core.diagnostics import Diagnostics
from archspec.ir import Network
from archspec.lang.frontend import load, loads
from archspec.lang.shapes import infer
from archspec.testing import networks
from archspec.views import dot
from archspec.views.diff import render, to_json

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
PAIRS = {"alexnet_zfnet": ("alexnet", "zfnet"), "vgg16_vgg19": ("vgg16", "vgg19"),
         "sketch_lenet5": ("sketch", "lenet5")}
FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def side(path: str | Path) -> Loaded:
    spec = load(path)
    assert spec.network is not None and spec.drawable, spec.render()
    return Loaded(str(Path(path).relative_to(ROOT)), spec.network, spec.shapes)


def text_side(text: str, name: str = "<a>") -> Loaded:
    spec = loads(text, name)
    assert spec.ok and spec.network is not None, spec.render()
    return Loaded(name, spec.network, spec.shapes)


def seed(a: str, b: str) -> DiffReport:
    return compare(side(SPECS / f"{a}.arch"), side(SPECS / f"{b}.arch"))


def changed(report: DiffReport) -> list[tuple[str, str | None, str | None]]:
    return [(e.status, e.a.name if e.a else None, e.b.name if e.b else None)
            for e in report.entries if e.status != "same"]


# --- the seed pairs --------------------------------------------------------------------------

@pytest.mark.parametrize("pair", sorted(PAIRS))
@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_seed_pairs_match_their_golden_diffs(pair: str, fmt: str, golden: Any) -> None:
    suffix = {"text": "txt", "markdown": "md", "json": "json"}[fmt]
    golden(f"diff_{pair}.{suffix}", render(seed(*PAIRS[pair]), fmt))  # type: ignore[arg-type]


def test_alexnet_to_zfnet_reads_like_the_slide() -> None:
    text = render(seed("alexnet", "zfnet"))
    assert "conv1: kernel 11 → 7, stride 4 → 2, pad 0 → 1\n" in text
    assert "conv3, conv4, conv5: filters 384, 384, 256 → 512, 1024, 512\n" in text
    # What the two specs also differ in: the input, CONV2's stride, the pools' ceil mode.
    assert "input: 3x227x227 → 3x224x224\n" in text
    assert "conv2: stride 1 → 2, pad 2 → 0\n" in text
    assert "pool1, pool2, pool3: ceil false → true\n" in text
    # each change at its line in both files
    assert "(specs/alexnet.arch:7:8 → specs/zfnet.arch:9:1)" in text


def test_vgg19_is_vgg16_with_three_more_convolutions() -> None:
    report = seed("vgg16", "vgg19")
    added = [e.b for e in report.entries if e.status == "added" and e.b and not e.b.implicit]
    assert [(b.name, b.written, b.stage) for b in added] == [
        ("conv8", "CONV3-256", "stage 3 (56x56)"), ("conv12", "CONV3-512", "stage 4 (28x28)"),
        ("conv16", "CONV3-512", "stage 5 (14x14)")]
    assert not [e for e in report.entries if e.status in ("changed", "removed")]
    assert report.a.totals and report.b.totals
    assert report.b.totals.params - report.a.totals.params == 5_309_696
    assert "parameters 138,357,544 → 143,667,240 (+5,309,696)" in render(report)
    # the stages' parameters add up to the change, each stage's to its added conv
    deltas = [g.figures_b.params - g.figures_a.params for g in report.stages
              if g.figures_a and g.figures_b]
    assert deltas == [0, 0, 590_080, 2_359_808, 2_359_808, 0]


def test_each_change_costs_what_the_totals_say() -> None:
    """The consequences partition the entries: their deltas add up to the totals' change."""
    for a, b in PAIRS.values():
        report = seed(a, b)
        if report.a.totals is None or report.b.totals is None:
            continue
        total = report.b.totals.figures - report.a.totals.figures
        deltas = [c.delta for c in report.consequences]
        assert all(d is not None for d in deltas)
        assert sum((d for d in deltas if d is not None), total - total) == total, (a, b)


def test_a_sketch_against_its_full_network() -> None:
    report = seed("sketch", "lenet5")
    conv1 = next(e for e in report.entries if e.b and e.b.name == "conv1")
    assert conv1.changes == (ArgChange(name="arguments", old="CONV", new="CONV(6, 5)"),)
    assert report.a.totals is None and report.b.totals is not None
    assert ("added", None, "fc3") in changed(report)


# --- the command -----------------------------------------------------------------------------

def run(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["diff", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_identical_networks_say_so_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run("specs/vgg16.arch", "specs/vgg16.arch", capsys=capsys)
    assert (code, out) == (
        0, "vgg16 (specs/vgg16.arch) → vgg16 (specs/vgg16.arch): identical networks\n")


def test_exit_codes_follow_diff(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run("specs/alexnet.arch", "specs/zfnet.arch", capsys=capsys)[0] == 1
    code, out, err = run("specs/alexnet.arch", str(tmp_path / "none.arch"), capsys=capsys)
    assert (code, out) == (2, "") and "cannot read" in err
    bad = ROOT / "tests" / "bad" / "unknown_kind.arch"
    code, out, err = run("specs/lenet5.arch", str(bad), capsys=capsys)
    assert (code, out) == (2, "")
    assert f"{bad}:4:12: error: unknown layer kind" in err  # located, as `check` gives it


def test_json_is_versioned_sorted_and_stable(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run("specs/alexnet.arch", "specs/zfnet.arch", "--format", "json",
                       capsys=capsys)
    data = json.loads(out)
    assert code == 1 and data["version"] == 1 and data["identical"] is False
    assert out == json.dumps(data, indent=2, sort_keys=True) + "\n"
    assert out == to_json(seed("alexnet", "zfnet"))
    entry = next(e for e in data["entries"] if e["status"] == "changed")
    assert entry["changes"][0] == {"name": "kernel", "old": 11, "new": 7}
    # the fields docs/diff.md documents, no more, no fewer
    assert set(data) == {"version", "identical", "a", "b", "network", "plan", "entries",
                         "consequences", "stages", "blocks"}
    assert set(data["a"]) == {"file", "name", "description", "layers", "totals"}
    assert set(data["a"]["totals"]) == {"params", "macs", "activations", "activation_bytes",
                                        "output_shape", "receptive_field"}
    assert set(entry) == {"status", "a", "b", "changes", "effects"}
    assert set(entry["a"]) == {"name", "kind", "written", "line", "col", "implicit", "origin",
                               "args", "stage", "block", "output_shape", "receptive_field",
                               "figures"}
    assert set(entry["a"]["figures"]) == {"params", "macs", "activations", "activation_bytes"}
    assert set(data["consequences"][0]) == {"causes", "affected", "delta"}
    assert set(data["stages"][0]) == {"a", "b", "figures_a", "figures_b"}
    assert set(data["network"][0]) == {"field", "old", "new", "line_a", "line_b"}


# --- equal graphs, written differently -------------------------------------------------------

HEAD = "network n\ninput 3x16x16\n"


@pytest.mark.parametrize("other", [
    # a repeat written out
    HEAD + "activation relu\nCONV3-8 - CONV3-8 - CONV3-8 - POOL2 - FC-10\n",
    # a block inlined the other way round, a kernel written as a size, explicit activations
    HEAD + "block two(c): CONV3-$c - RELU - CONV3-$c - RELU\n"
           "two(8) - CONV(8, 3x3, pad=1) - RELU - POOL2 - FLATTEN - FC-10\n",
    # the input written height, width, channels (the same input, stored channels first)
    "network n\ninput 16x16x3 hwc\nactivation relu\n[CONV3-8]*3 - POOL2 - FC-10\n",
])
def test_equal_graphs_written_differently_are_identical(other: str) -> None:
    first = text_side(HEAD + "activation relu\n[CONV3-8]*3 - POOL2 - FC-10\n")
    report = compare(first, text_side(other, "<b>"))
    assert report.identical, render(report)
    assert render(report).endswith(": identical networks\n")


def test_the_branches_of_an_add_may_come_in_any_order() -> None:
    add = HEAD + "CONV3-8 - (CONV3-8 - BN + ID) - ({} | POOL3/1(pad=1)) - FC-10\n"
    a = text_side(add.format("CONV1-4").replace("(CONV3-8 - BN + ID)", "(ID + CONV3-8 - BN)"))
    assert compare(a, text_side(add.format("CONV1-4"), "<b>")).identical
    # a concat's order is its channels' order: swapped branches are a change
    swapped = add.format("CONV1-4").replace("(CONV1-4 | POOL3/1(pad=1))",
                                            "(POOL3/1(pad=1) | CONV1-4)")
    assert not compare(a, text_side(swapped, "<b>")).identical
    # crossed, the residual branch still pairs with its counterpart: one argument changed
    b = text_side(add.format("CONV1-4").replace("CONV3-8 - BN +", "CONV3-8 - BN(eps=0.1) +"),
                  "<b>")
    assert changed(compare(a, b)) == [("changed", "bn1", "bn1")]


def test_names_both_specs_give_pair_those_layers() -> None:
    a = text_side(HEAD + "CONV3-8 - keep: CONV3-16 - FC-10\n")
    b = text_side(HEAD + "keep: CONV3-32 - FC-10\n", "<b>")
    report = compare(a, b)
    assert changed(report) == [("removed", "conv1", None), ("changed", "keep", "keep")]
    assert report.entries[1].changes == (ArgChange(name="filters", old=16, new=32),)


def test_a_change_inside_a_branch_is_found_there() -> None:
    base = (SPECS / "googlenet.arch").read_text()
    edited = base.replace("inception(160, 112, 224, 24, 64, 64)",
                          "inception(160, 112, 256, 24, 64, 64)")
    report = compare(text_side(base), text_side(edited, "<b>"))
    [entry] = [e for e in report.entries if e.status != "same"]
    assert entry.changes == (ArgChange(name="filters", old=224, new=256),)
    assert entry.b and entry.b.block == "inception(160, 112, 256, 24, 64, 64) at 13:39"
    # the concat and the next module's 1x1 convolutions see more channels
    affected = {report.entries[i].side.kind for c in report.consequences for i in c.affected}
    assert {"CONCAT", "CONV"} <= affected
    [block] = [g for g in report.blocks if g.figures_a != g.figures_b and g.a and "160" in g.a]
    assert block.figures_a and block.figures_b
    assert block.figures_b.params > block.figures_a.params


def test_a_removed_residual_block_is_removed_whole() -> None:
    base = (SPECS / "resnet18.arch").read_text()
    report = compare(text_side(base),
                     text_side(base.replace("down(256) - basic(256)", "down(256)"), "<b>"))
    removed = [e.a for e in report.entries if e.status == "removed" and e.a]
    assert {a.block for a in removed} == {"basic(256) at 13:13"}
    assert [a.kind for a in removed].count("CONV") == 2 and removed[-1].kind == "RELU"
    assert not [e for e in report.entries if e.status in ("added", "changed")]


# --- properties ------------------------------------------------------------------------------

def loaded(network: Network, name: str) -> Loaded:
    diags = Diagnostics()
    shapes = infer(network, diags)
    assert not diags.has_errors
    return Loaded(name, network, shapes)


def _reverse(data: Any) -> Any:
    """A diff's JSON turned around: A and B swapped, added and removed, old and new."""
    if isinstance(data, list):
        return [_reverse(item) for item in data]
    if not isinstance(data, dict):
        return data
    swap = {"a": "b", "b": "a", "old": "new", "new": "old", "line_a": "line_b",
            "line_b": "line_a", "figures_a": "figures_b", "figures_b": "figures_a"}
    out = {swap.get(k, k): _reverse(v) for k, v in data.items()}
    if out.get("status") in ("added", "removed"):
        out["status"] = {"added": "removed", "removed": "added"}[out["status"]]
    if isinstance(data.get("delta"), dict):
        out["delta"] = {k: -v for k, v in data["delta"].items()}
    return out


@settings(FAST, max_examples=40)
@given(networks())
def test_a_network_against_itself_is_identical(network: Network) -> None:
    report = compare(loaded(network, "a"), loaded(network, "a"))
    assert report.identical and not report.consequences


@settings(FAST, max_examples=100)
@given(networks(max_layers=8), networks(max_layers=8))
def test_diff_b_a_is_diff_a_b_turned_around(a: Network, b: Network) -> None:
    forward = json.loads(to_json(compare(loaded(a, "a"), loaded(b, "b"))))
    backward = json.loads(to_json(compare(loaded(b, "b"), loaded(a, "a"))))
    assert _reverse(forward) == backward


def test_one_kind_with_other_arguments_turns_around() -> None:
    """An adaptive pool and a windowed one are one kind with different arguments: listed in
    the registry's order either way (hypothesis found them in each file's order)."""
    a = text_side("network n\ninput 1x1x1\nMAXPOOL(out=1)\n")
    b = text_side("network n\ninput 1x1x1\nCONV1-1 - MAXPOOL(kernel=1, stride=1)\n", "<b>")
    forward = json.loads(to_json(compare(a, b)))
    assert _reverse(forward) == json.loads(to_json(compare(b, a)))


MUTATIONS = {"CONV": ("filters", "bias"), "FC": ("units", "bias"), "DROPOUT": ("p",),
             "MAXPOOL": ("ceil",), "AVGPOOL": ("ceil",), "BN": ("eps",)}


@settings(FAST, max_examples=100)
@given(networks(), st.data())
def test_one_argument_changed_is_reported_as_exactly_that(network: Network,
                                                          data: st.DataObject) -> None:
    candidates = [i for i, layer in enumerate(network.layers)
                  if layer.kind in MUTATIONS and not layer.implicit and layer.args
                  and any(name in layer.args for name in MUTATIONS[layer.kind])]
    assume(candidates)
    index = data.draw(st.sampled_from(candidates))
    layer = network.layers[index]
    assert layer.args is not None
    name = data.draw(st.sampled_from([n for n in MUTATIONS[layer.kind] if n in layer.args]))
    # (an adaptive pool, `MAXPOOL(out=1)`, has no `ceil`)
    old = layer.args[name]
    new: Any
    if isinstance(old, bool):
        new = not old
    elif isinstance(old, float):
        new = data.draw(st.sampled_from([0.25, 0.3, 0.75]).filter(lambda v: v != old))
    else:
        assert isinstance(old, int)
        new = old + data.draw(st.integers(1, 3))
    mutated = network.model_copy(update={"layers": tuple(
        x.model_copy(update={"args": {**x.args, name: new}}) if i == index and x.args else x
        for i, x in enumerate(network.layers))})
    diags = Diagnostics()
    shapes = infer(mutated, diags)
    assume(not diags.has_errors)
    report = compare(loaded(network, "a"), Loaded("b", mutated, shapes))
    [entry] = [e for e in report.entries if e.status != "same"]
    assert entry.status == "changed" and entry.b is not None and entry.b.name == layer.name
    assert entry.changes == (ArgChange(name=name, old=old, new=new),)
    assert not report.network and not report.plan


# --- draw --diff -----------------------------------------------------------------------------

def drawn(new: str, old: str, detail: str = "compact") -> str:
    a, b = side(SPECS / f"{old}.arch"), side(SPECS / f"{new}.arch")
    marks = dot.highlight(compare(a, b), a.network)
    return dot.dot_source(b.network, b.shapes, detail=detail, marks=marks)  # type: ignore


def node_line(source: str, node: str) -> str:
    return next(line for line in source.splitlines() if line.strip().startswith(f"{node} ["))


def test_draw_diff_outlines_the_added_and_changed_boxes() -> None:
    source = drawn("vgg19", "vgg16")
    for conv in ("conv8", "conv12", "conv16"):  # the last box of each run of four
        line = node_line(source, conv)
        assert 'color="#38761d"' in line and f"{conv} added" in line
    assert 'color="#e69138"' not in source.split("cluster_legend")[0]
    assert "changes from vgg16 (specs/vgg16.arch): 3 added, 0 changed, 0 removed" in source
    zf = drawn("zfnet", "alexnet")
    assert zf.count('color="#e69138" fillcolor="#') == 9  # 8 boxes changed and the input
    assert "3x227x227 → 3x224x224" in node_line(zf, "input")
    assert "filters 384 → 1024" in node_line(zf, "conv4")


def test_draw_diff_shows_removed_layers_as_ghosts() -> None:
    source = drawn("vgg16", "vgg19", detail="full")
    for conv in ("conv8", "conv12", "conv16"):
        ghost = node_line(source, f'"{dot.GHOST}{conv}"')
        assert "dashed" in ghost and f"{conv} removed" in ghost and "+RELU" in ghost
    # conv8 sat between conv7's activation and pool3 in VGG19: so does its ghost in VGG16
    assert f'conv7_relu -> "{dot.GHOST}conv8" [color="#999999" style=dashed]' in source
    assert f'"{dot.GHOST}conv8" -> pool3 [color="#999999" style=dashed]' in source
    assert "cluster_legend" in source


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_draw_diff_command_writes_an_svg(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "d.svg"
    assert main(["draw", "--diff", "specs/zfnet.arch", "specs/alexnet.arch", "-o",
                 str(out)]) == 0
    svg = ET.fromstring(out.read_bytes())
    titles = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}title")]
    assert "cluster_legend" in titles and "conv1" in titles
    assert main(["draw", "--diff", "specs/zfnet.arch"]) == 2  # --diff needs two files
    assert "--diff takes two files" in capsys.readouterr().err


def test_diff_and_draw_diff_never_import_torch() -> None:
    code = ("import sys\nfrom archspec.cli import main\n"
            "assert main(['diff', 'specs/alexnet.arch', 'specs/zfnet.arch']) == 1\n"
            "assert main(['draw', '--diff', 'specs/vgg19.arch', 'specs/vgg16.arch']) == 0\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    done = python_c(code)
    assert done.returncode == 0, done.stderr


def test_docs_show_the_current_output() -> None:
    doc = (ROOT / "docs" / "diff.md").read_text()
    golden = (ROOT / "tests" / "golden" / "diff_alexnet_zfnet.txt").read_text()
    assert golden.split("\nChanges,")[0] in doc, "docs/diff.md: update the AlexNet → ZFNet diff"


@pytest.mark.parametrize("other", ["CONV3-8 - RELU", "CONV3-8 - CONV3-8 - BN"])
def test_long_chains_take_the_linear_path_and_keep_every_layer(other: str) -> None:
    """Past the table's size the alignment is greedy: still each layer once, in order."""
    a = text_side(HEAD + f"[CONV3-8]*600 - [{other}]*300 - FC-10\n")
    b = text_side(HEAD + f"[{other}]*300 - [CONV3-8]*600 - FC-10\n", "<b>")
    report = compare(a, b)
    for k, loaded_side in ((0, a), (1, b)):
        names = [s.name for e in report.entries if (s := (e.a, e.b)[k]) is not None]
        assert names == [layer.name for layer in loaded_side.network.layers]
    assert not report.identical


def test_long_lists_of_values_count_their_runs() -> None:
    a = text_side(HEAD + "CONV3-8 - CONV3-8 - CONV3-8 - CONV3-16 - CONV3-16 - FC-10\n")
    b = text_side(HEAD + "CONV3-16 - CONV3-16 - CONV3-16 - CONV3-32 - CONV3-32 - FC-10\n", "<b>")
    assert "  conv1 … conv5 (5): filters 8 ×3, 16 ×2 → 16 ×3, 32 ×2\n" in render(compare(a, b))


def test_a_layer_lost_in_one_place_and_gained_in_another_moves() -> None:
    a = text_side(HEAD + "CONV3-8 - POOL2 - CONV3-16 - CONV3-24 - CONV3-32 - FC-10\n")
    b = text_side(HEAD + "CONV3-8 - CONV3-16 - CONV3-24 - POOL2 - CONV3-32 - FC-10\n", "<b>")
    text = render(compare(a, b))
    assert "  moved: POOL2 pool1 (after conv1 → after conv3)\n" in text
    assert "added:" not in text and "removed:" not in text


@settings(FAST, max_examples=40)
@given(networks(max_layers=8), networks(max_layers=8))
def test_draw_diff_draws_every_removed_layer_once(a: Network, b: Network) -> None:
    old, new = loaded(a, "a"), loaded(b, "b")
    report = compare(old, new)
    marks = dot.highlight(report, a)
    removed = {e.a.name for e in report.entries if e.status == "removed" and e.a}
    ghosts = {name for name in removed
              if not (a.layer(name).implicit and a.layer(name).origin in removed)}
    assert set(marks.ghosts) == {dot.GHOST + name for name in ghosts}
    source = dot.dot_source(b, new.shapes, marks=marks, detail="full")
    for ghost in marks.ghosts:  # each ghost is drawn, and joined to the graph
        assert f'"{ghost}" [' in source and f'"{ghost}" ->' in source


def test_an_fc_removed_takes_its_implied_flatten_with_it() -> None:
    """The flatten implied before an FC comes before it in the graph, yet is part of it."""
    report = compare(text_side(HEAD + "CONV3-8 - FC-10\n"),
                     text_side(HEAD + "CONV3-8 - GAP\n", "<b>"))
    names = [[report.entries[i].side.name for i in c.causes] for c in report.consequences]
    assert names == [["fc1", "fc1_flatten"], ["gap1"]]
    assert "removed: FC-10 (fc1)\n" in render(report)
    assert set(dot.highlight(report, report_network(HEAD + "CONV3-8 - FC-10\n")).ghosts) == {
        f"{dot.GHOST}fc1"}


def report_network(text: str) -> Network:
    return text_side(text).network
