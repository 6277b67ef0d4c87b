"""`archspec draw`: DOT text, SVG rendered by the real Graphviz, and the path without it.

The SVG tests parse what `dot` drew (xml.etree) and count nodes and edges. The expected
counts are worked out by hand from the specs in the comments, not read back from the code.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT, SPECS, all_specs
from hypothesis import HealthCheck, given, settings

from archspec.analysis.report import Report, build_report, group_params
from archspec.cli import main
from archspec.ir import INPUT_NODE
from archspec.lang.frontend import load, load_network, loads
from archspec.testing import specs
from archspec.views import dot

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def require_dot() -> None:
    """The real `dot`: CI installs it (scripts/test), so there a missing one is a failure."""
    if shutil.which("dot") is None:
        if os.environ.get("CI"):
            pytest.fail("Graphviz's dot is missing in CI; scripts/test should install it")
        pytest.skip("Graphviz's dot is not installed here")


@dataclass
class Drawn:
    """What `dot` drew: node id -> its label text, and the edges as (tail, head)."""

    nodes: dict[str, str]
    edges: list[tuple[str, str]]
    header: str

    def titled(self, title: str) -> list[str]:
        """Ids of the nodes whose label starts with `title`."""
        return [n for n, text in self.nodes.items() if text.split(" ")[0] == title]

    def into(self, node: str) -> list[str]:
        return [tail for tail, head in self.edges if head == node]


def draw_svg(name: str, detail: dot.Detail = "compact") -> Drawn:
    network, shapes = load_network(SPECS / f"{name}.arch")
    svg = dot.render(dot.dot_source(network, shapes, detail=detail), "svg")
    root = ET.fromstring(svg)
    nodes: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    for group in root.iter(f"{SVG}g"):
        title = group.findtext(f"{SVG}title", "")
        text = " ".join((t.text or "").strip() for t in group.iter(f"{SVG}text"))
        if group.get("class") == "node" and not title.startswith(dot.CAPTION):
            nodes[title] = text
        elif group.get("class") == "edge":
            tail, head = title.split("->")
            edges.append((tail, head))
    graph = root.find(f"{SVG}g")
    assert graph is not None
    header = " ".join((t.text or "").strip() for t in graph.findall(f"{SVG}text"))
    return Drawn(nodes, edges, header)


@pytest.mark.usefixtures("require_dot")
def test_googlenet_compact_svg_shows_nine_concat_joins() -> None:
    drawn = draw_svg("googlenet")
    # stem CONV7-64/2 POOL NORM CONV1-64 CONV3-192 NORM POOL = 7 boxes; each of the nine
    # inception modules has 6 convs, 1 pool and the concat = 8; two POOL3/2 between
    # modules; GAP, DROPOUT, FC; input and output: 7 + 72 + 2 + 3 + 2.
    assert len(drawn.nodes) == 86
    # stem chain from input: 7 edges; per module, branch 1x1: 2, 1x1-3x3: 3, 1x1-5x5: 3,
    # pool-1x1: 3 (into, along, out to concat) = 11; concat -> POOL3/2 twice; the tail
    # concat -> GAP -> DROPOUT -> FC -> output: 4.
    assert len(drawn.edges) == 7 + 9 * 11 + 2 + 4
    concats = drawn.titled("concat")
    assert len(concats) == 9
    # The joined shapes: the paper's Table 1 output depths, at 28, 14 and 7 pixels.
    joined = [next(w for w in drawn.nodes[c].split(" ") if re.fullmatch(r"\d+x\d+x\d+", w))
              for c in concats]  # each box also shows its path: inception1.concat1
    assert joined == ["256x28x28", "480x28x28", "512x14x14", "512x14x14", "512x14x14",
                      "528x14x14", "832x14x14", "832x7x7", "1024x7x7"]
    for concat in concats:
        assert len(drawn.into(concat)) == 4
    assert drawn.nodes["input"] == "input 3x224x224"
    assert drawn.nodes[dot.OUTPUT_NODE] == "output 1000"
    assert any(text.startswith("CONV7-64/2 RELU 64x112x112") for text in drawn.nodes.values())
    assert "googlenet" in drawn.header and "MACs" in drawn.header


@pytest.mark.usefixtures("require_dot")
def test_resnet18_compact_svg_shows_eight_residual_adds(reference: dict) -> None:
    drawn = draw_svg("resnet18")
    # stem conv(+BN+ReLU) and pool; five basic blocks of 3 boxes (conv, conv, + with its
    # ReLU); three down blocks of 4 (conv, conv, 1x1 shortcut conv, +); GAP, FC; in, out.
    assert len(drawn.nodes) == 2 + 5 * 3 + 3 * 4 + 2 + 2
    # input -> conv -> pool: 2; basic: in->conv, conv->conv, conv->+, in->+ (skip) = 4;
    # down: the same plus in->shortcut instead of the skip, shortcut->+ = 5; + -> GAP ->
    # FC -> output: 3.
    assert len(drawn.edges) == 2 + 5 * 4 + 3 * 5 + 3
    adds = drawn.titled("+")
    assert len(adds) == 8
    for add in adds:
        assert len(drawn.into(add)) == 2
        assert "RELU" in drawn.nodes[add]  # the ReLU after the add is folded into it
    assert any(t.startswith("CONV7-64/2 BN · RELU 64x112x112 9,536 params")
               for t in drawn.nodes.values())
    params = reference["torchvision_resnet18"]["params"]
    assert f"{params:,} params" in drawn.header


@pytest.mark.usefixtures("require_dot")
@pytest.mark.parametrize("path", all_specs(), ids=lambda p: p.stem)
def test_full_detail_draws_every_layer_and_every_input(path: Path) -> None:
    spec = load(path)
    assert spec.network is not None and spec.drawable
    svg = dot.render(dot.dot_source(spec.network, spec.shapes, detail="full"), "svg")
    root = ET.fromstring(svg)
    drawn = [(g.get("class"), g.findtext(f"{SVG}title", "")) for g in root.iter(f"{SVG}g")]
    nodes = [t for c, t in drawn if c == "node" and not t.startswith(dot.CAPTION)]
    assert len(nodes) == len(spec.network.layers) + 2  # and input, output
    edges = [t for c, t in drawn if c == "edge"]
    assert len(edges) == sum(len(layer.inputs) for layer in spec.network.layers) + 1
    # one caption a cluster: a block expansion, or a whole repeated run
    scopes = {scope.id for layer in spec.network.layers for scope in layer.scopes}
    assert len(drawn) - len(nodes) - len(edges) - 1 == 2 * len(scopes)  # 1: the graph


def test_vgg16_golden_dot(golden) -> None:
    network, shapes = load_network(SPECS / "vgg16.arch")
    golden("vgg16_compact.dot", dot.dot_source(network, shapes, detail="compact"))
    golden("vgg16_full.dot", dot.dot_source(network, shapes, detail="full"))


def test_compact_folds_repeats_and_implicit_layers() -> None:
    network, shapes = load_network(SPECS / "vgg16.arch")
    source = dot.dot_source(network, shapes)
    # [CONV3-256]*3 with its implied ReLUs is one box marked x3, holding all three convs'
    # parameters: (3*3*128+1)*256 + 2 * (3*3*256+1)*256.
    assert source.count("<b>CONV3-256</b> &#215;3") == 1
    assert f"{(9 * 128 + 1) * 256 + 2 * (9 * 256 + 1) * 256:,} params" in source
    assert "RELU</font>" in source
    nested, nested_shapes = load_network(SPECS / "cs231n_pattern.arch")
    pattern = dot.dot_source(nested, nested_shapes)
    # [[CONV3-32 -> RELU]*2 -> POOL2]*3: a cluster marked x3 around one box marked x2.
    assert 'label="×3"' in pattern and "<b>CONV3-32</b> &#215;2" in pattern


def test_a_boxs_parameters_are_the_analysis_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    network, shapes = load_network(SPECS / "vgg16.arch")
    report = build_report(network, shapes)
    convs = [layer.name for layer in network.layers if layer.written == "CONV3-256"]
    assert len(convs) == 3
    assert group_params(report, [("run", convs)]) == {
        "run": (9 * 128 + 1) * 256 + 2 * (9 * 256 + 1) * 256}
    # The diagram formats what the analysis gives it and adds nothing up itself.
    given = {"conv7": 1_234_567}  # the box of the [CONV3-256]*3 run stands as its last conv

    def analysed(_report: Report, groups: Iterable[tuple[str, Iterable[str]]]
                 ) -> dict[str, int]:
        return {name: given.get(name, 0) for name, _layers in groups}

    monkeypatch.setattr(dot, "group_params", analysed)
    source = dot.dot_source(network, shapes)
    assert source.count(" params<") == 1 and "1,234,567 params" in source


def test_sketch_draws_without_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["draw", str(SPECS / "sketch.arch")]) == 0
    captured = capsys.readouterr()
    out = captured.out
    # Missing arguments are what a sketch is: a note, not `error:` lines beside exit code 0.
    assert "note: a sketch; 6 layer(s) lack arguments" in captured.err
    assert "error:" not in captured.err
    assert "a sketch: sizes not given" in out
    assert "<b>CONV</b>" in out and "params" not in out.replace("a sketch", "")
    assert "x32x32" in out  # the input's shape is known; no layer has one


def test_rankdir_and_bad_suffix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["draw", str(SPECS / "lenet5.arch"), "--rankdir", "LR"]) == 0
    assert "rankdir=LR" in capsys.readouterr().out
    assert main(["draw", str(SPECS / "lenet5.arch"), "-o", str(tmp_path / "x.jpg")]) == 2
    assert "must end in .svg, .png, .pdf, .dot" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.usefixtures("require_dot")
@pytest.mark.parametrize("suffix", ["svg", "png", "pdf"])
def test_renders_each_format(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"lenet5.{suffix}"
    assert main(["draw", str(SPECS / "lenet5.arch"), "-o", str(out)]) == 0
    magic = {"svg": b"<?xml", "png": b"\x89PNG", "pdf": b"%PDF"}[suffix]
    assert out.read_bytes().startswith(magic)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary left behind


def test_without_dot_only_dot_text_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    out = tmp_path / "out"
    assert main(["draw", str(SPECS / "vgg16.arch"), "-o", str(out / "vgg16.svg")]) != 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert "apt-get install graphviz" in err[0] and "brew install graphviz" in err[0]
    assert not out.exists()
    assert main(["draw", str(SPECS / "vgg16.arch"), "-o", str(out / "vgg16.dot")]) == 0
    assert (out / "vgg16.dot").read_text().startswith("digraph vgg16 {")
    network, shapes = load_network(SPECS / "lenet5.arch")
    assert dot.render_files(network, shapes, out / "lenet5") == [out / "lenet5.dot"]


@pytest.mark.usefixtures("require_dot")
def test_render_files_writes_dot_and_svg(tmp_path: Path) -> None:
    network, shapes = load_network(SPECS / "resnet18.arch")
    written = dot.render_files(network, shapes, tmp_path / "resnet18")
    assert written == [tmp_path / "resnet18.dot", tmp_path / "resnet18.svg"]
    ET.fromstring(written[1].read_bytes())


def test_draw_does_not_import_torch(tmp_path: Path) -> None:
    code = ("import sys; from archspec.cli import main; "
            f"rc = main(['draw', 'specs/googlenet.arch', '-o', {str(tmp_path / 'g.dot')!r}]); "
            "assert rc == 0; assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


_NODE = re.compile(r'^\t+("[^"]+"|\S+) \[label=(.*)\]$', re.MULTILINE)
_EDGE = re.compile(r'^\t+("[^"]+"|\S+) -> ("[^"]+"|\S+)$', re.MULTILINE)
_PARAMS = re.compile(r"([\d,]+) params<")


def _graph(source: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Boxes (id -> label) and drawn edges of DOT text; cluster captions left out."""
    nodes = {name.strip('"'): label for name, label in _NODE.findall(source)
             if not name.strip('"').startswith(dot.CAPTION)}
    edges = [(a.strip('"'), b.strip('"')) for a, b in _EDGE.findall(source)]
    return nodes, edges


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_random_networks_lose_nothing_when_drawn(text: str) -> None:
    spec = loads(text, "<random>")
    assert spec.network is not None
    network, shapes = spec.network, spec.shapes
    report = dot.analyse(network, shapes)
    assert report is not None
    order = {INPUT_NODE: -1, **{layer.name: i for i, layer in enumerate(network.layers)},
             dot.OUTPUT_NODE: len(network.layers)}

    full_nodes, full_edges = _graph(dot.dot_source(network, shapes, detail="full"))
    assert set(full_nodes) == set(order)
    assert len(full_edges) == sum(len(layer.inputs) for layer in network.layers) + 1

    nodes, edges = _graph(dot.dot_source(network, shapes, detail="compact"))
    # Folding and collapsing repeats keep the graph a forward-running, connected DAG...
    assert all(order[tail] < order[head] for tail, head in edges)
    assert {head for _, head in edges} == set(nodes) - {INPUT_NODE}
    assert {tail for tail, _ in edges} == set(nodes) - {dot.OUTPUT_NODE}
    # ...and every parameter stays in some box: the boxes add up to the header's total.
    for labels in (full_nodes.values(), nodes.values()):
        boxed = sum(int(n.replace(",", "")) for label in labels for n in _PARAMS.findall(label))
        assert boxed == report.totals.params


def test_a_spec_with_shape_errors_is_drawn_as_far_as_it_goes_and_fails(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.arch"
    bad.write_text("network bad\ninput 3x8x8\nCONV3-4 - POOL(16) - FC-2\n")
    assert main(["draw", str(bad), "-o", str(tmp_path / "bad.dot")]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:3:11: error: pool1: MAXPOOL window 16x16" in err
    assert "Traceback" not in err
    nodes, edges = _graph((tmp_path / "bad.dot").read_text())
    assert ("conv1", "pool1") in edges and ("pool1", "fc1") in edges
    assert "error: pool1: MAXPOOL window 16x16" in nodes["pool1"]
    # conv1's size is known; pool1 and past it are not (no CxHxW before the error note).
    assert "4x8x8" in nodes["conv1"]
    assert not re.search(r"\d+x\d+x\d+", nodes["pool1"].split("error:")[0])
    source = (tmp_path / "bad.dot").read_text()
    assert source.count(dot.ERROR_STYLE["color"]) == 1


def test_other_errors_draw_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.arch"
    bad.write_text("network bad\ninput 3x8x8\nCONV3-4 - POOLL2 - FC-2\n")
    assert main(["draw", str(bad), "-o", str(tmp_path / "bad.dot")]) == 1
    assert f"{bad}:3:11: error: unknown layer kind `POOLL2`" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["bad.arch"]


@pytest.mark.parametrize(("description", "drawn"), [
    ("a\x0cb", "a\\x0cb"), ("a\ufffeb", "a\\ufffeb"), ("x" * 17_000, "x" * 199 + "…")])
def test_descriptions_the_language_allows_always_render(
        description: str, drawn: str, tmp_path: Path, require_dot: None) -> None:
    spec = tmp_path / "t.arch"
    spec.write_text(f'network t "{description}"\ninput 4\nFC-2\n', encoding="utf-8")
    assert main(["draw", str(spec), "-o", str(tmp_path / "t.svg")]) == 0
    texts = [e.text for e in ET.parse(tmp_path / "t.svg").getroot().iter(f"{SVG}text")]
    assert f" — {drawn}" in texts


def test_a_diagram_past_the_box_limit_is_a_located_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(dot, "MAX_DRAWN_BOXES", 3)
    spec = tmp_path / "t.arch"
    spec.write_text("network t\ninput 4\nFC-8 - FC-8\nFC-8 - FC-8 - FC-2\n")
    assert main(["draw", str(spec), "-o", str(tmp_path / "t.svg")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{spec}:4:8: error: the diagram has 5 boxes, over the 3 that "
                          "Graphviz's dot can lay out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.arch"]
    assert main(["draw", str(spec), "-o", str(tmp_path / "t.dot")]) == 0  # text is fine
    assert dot.render_files(*load_network(spec), tmp_path / "t") == [tmp_path / "t.dot"]


@pytest.mark.slow
def test_the_box_limit_is_one_dot_lays_out(tmp_path: Path, require_dot: None) -> None:
    network, shapes = load_network_text(
        "network t\ninput 4\n" + "FC-2\n" * dot.MAX_DRAWN_BOXES, tmp_path)
    assert dot.size_error(network) is None
    assert dot.render_files(network, shapes, tmp_path / "t")[-1] == tmp_path / "t.svg"


def load_network_text(text: str, tmp_path: Path):
    path = tmp_path / "spec.arch"
    path.write_text(text)
    return load_network(path)


def test_a_dot_failure_is_one_line_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], require_dot: None) -> None:
    """Should `dot` ever refuse a diagram, draw and compile say so in one line, exit 1 and
    leave no file (compile's old build stays whole)."""
    monkeypatch.setattr(dot, "dot_source", lambda *args, **kwargs: "digraph { a -> }")
    assert main(["draw", str(SPECS / "lenet5.arch"), "-o", str(tmp_path / "l.svg")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"archspec: error: cannot draw {tmp_path / 'l.svg'}: Graphviz's dot "
                          "failed: ") and err.count("\n") == 1
    assert main(["compile", str(SPECS / "lenet5.arch"), "-o", str(tmp_path / "build")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("archspec: error: cannot draw lenet5.svg: Graphviz's dot failed: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_multiply_join_is_a_times_node() -> None:
    spec = loads("network se\ninput 3x8x8\nCONV3-8 - (ID * GAP - CONV1-2 - CONV1-8 - SIGMOID)\n")
    assert spec.ok and spec.network is not None
    source = dot.dot_source(spec.network, spec.shapes, detail="full")
    assert "<b>×</b>" in source
    assert source.count("->") == 8  # input, 6 edges inside (two into ×), output


def test_named_groups_and_block_calls_are_clusters() -> None:
    """ResNet-18 with torchvision's names: a cluster per stage (`layer1`...), per block call
    (`basic(64)`, `down(128)`) and per named group inside a block (`downsample`)."""
    spec = load(SPECS / "zoo" / "resnet18.arch")
    assert spec.network is not None
    source = dot.dot_source(spec.network, spec.shapes)
    captions = re.findall(r'"caption \d+" \[label="?([^"\]]+?)"? ', source)
    assert [c for c in captions if c.startswith("layer")] == ["layer1", "layer2", "layer3",
                                                              "layer4"]
    assert captions.count("downsample") == 3
    assert {"basic(64)", "down(128)", "basic(512)"} <= set(captions)
