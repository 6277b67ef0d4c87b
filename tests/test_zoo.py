"""specs/zoo/ against torchvision: every spec's figures equal those measured on torchvision's
own module (tests/reference/torchvision_zoo.json), at its native input size and another."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from conftest import ROOT, SPECS
from test_pytorch import assert_matches_analysis

from archspec.analysis.report import Report, build_report
from archspec.backends.torch.build import to_torch
from archspec.lang.frontend import Spec, load, loads

ZOO = sorted((SPECS / "zoo").glob("*.arch"))
REFERENCE = json.loads((ROOT / "tests" / "reference" / "torchvision_zoo.json").read_text())
# Adaptive pools make torchvision's nets size-agnostic: non-square, odd, and not 224.
OTHER_INPUT = (3, 193, 241)


def spec_at(path: Path, shape: tuple[int, ...] | None = None) -> Spec:
    text = path.read_text()
    if shape is not None:
        size = "x".join(map(str, shape))
        text, n = re.subn(r"^input \S+$", f"input {size}", text, count=1, flags=re.M)
        assert n == 1, f"{path.name}: no input line to resize"
    spec = loads(text, str(path))
    assert spec.ok and spec.network is not None, spec.render()
    return spec


def report_of(spec: Spec) -> Report:
    assert spec.network is not None
    return build_report(spec.network, spec.shapes, batch=1)


def test_the_zoo_is_torchvisions_29_classification_cnns() -> None:
    assert sorted(path.stem for path in ZOO) == sorted(REFERENCE)
    for path in ZOO:
        network = load(path).network
        assert network is not None and network.name == path.stem
        # The comment naming the source: torchvision's constructor.
        assert REFERENCE[path.stem]["constructor"].split("(")[0] in path.read_text()


@pytest.mark.parametrize("path", ZOO, ids=lambda p: p.stem)
def test_params_buffers_and_input_are_torchvisions(path: Path) -> None:
    ref, spec = REFERENCE[path.stem], spec_at(path)
    assert spec.network is not None
    assert list(spec.network.input.shape) == ref["input"]
    totals = report_of(spec).totals
    assert (totals.params, totals.buffers) == (ref["params"], ref["buffers"])


# torchinfo 1.8 counts an nn.Linear's parameters once per sample, not once per position, and
# leaves out a parameter that a module with children holds itself. ConvNeXt's blocks have
# both: torchvision writes the two pointwise layers as nn.Linear on channels-last tensors
# (CONV1 here, counted at every position: 4.47 G mult-adds in all, torchinfo says 0.32 G),
# and the layer scale is CNBlock.layer_scale (SCALE here, a layer of its own: its output is in
# the forward/backward bytes, its parameters in the parameter bytes; torchinfo's total
# parameter count does include them). The other 28 nets use no such layer.
TORCHINFO_UNDERCOUNTS = {"convnext_tiny"}


def torchinfo_blind_spots(spec: Spec, report: Report) -> tuple[int, int, int]:
    """The mult-adds, forward/backward bytes and parameter bytes (float32) that torchinfo
    does not see."""
    assert spec.network is not None
    pointwise = {layer.name for layer in spec.network.layers
                 if layer.kind == "CONV" and layer.args and layer.args["kernel"] == 1}
    macs = sum((row.weights + row.biases) * (math.prod(row.output_shape[1:]) - 1)
               for row in report.rows if row.name in pointwise)
    scales = [row for row in report.rows if row.kind == "SCALE"]
    macs += sum(row.weights + row.biases for row in scales)
    return (macs, 2 * 4 * sum(math.prod(row.output_shape) for row in scales),
            4 * sum(row.weights + row.biases for row in scales))


@pytest.mark.parametrize("path", ZOO, ids=lambda p: p.stem)
def test_torchinfo_figures_are_torchinfos(path: Path) -> None:
    ref = REFERENCE[path.stem]["torchinfo_1_8"]
    spec = spec_at(path)
    report = report_of(spec)
    ti = report.torchinfo
    macs, output_bytes, param_bytes = 0, 0, 0
    if path.stem in TORCHINFO_UNDERCOUNTS:
        macs, output_bytes, param_bytes = torchinfo_blind_spots(spec, report)
        assert macs > 10 * ref["total_mult_adds"]  # most of the work is what it misses
    assert (ti.total_mult_adds, ti.input_bytes, ti.forward_backward_bytes, ti.params_bytes) == (
        ref["total_mult_adds"] + macs, ref["input_bytes"],
        ref["forward_backward_bytes"] + output_bytes, ref["params_bytes"] + param_bytes)


@pytest.mark.parametrize("path", ZOO, ids=lambda p: p.stem)
def test_same_params_at_another_input_size(path: Path) -> None:
    spec = spec_at(path, OTHER_INPUT)
    assert spec.network is not None and spec.shapes[spec.network.output] == (1000,)
    assert report_of(spec).totals.params == REFERENCE[path.stem]["params"]


def squeezed(shape: Sequence[int]) -> tuple[int, ...]:
    """A shape without its trailing 1s: a 1x1 convolution's weight (out, in, 1, 1) holds what
    ConvNeXt's nn.Linear on channels-last tensors holds as (out, in)."""
    shape = tuple(shape)
    while shape and shape[-1] == 1:
        shape = shape[:-1]
    return shape


@pytest.mark.parametrize("path", ZOO, ids=lambda p: p.stem)
def test_module_has_torchvisions_tensors_and_gives_1x1000(path: Path) -> None:
    """Built on the meta device (no memory, no arithmetic): every tensor of torchvision's
    state_dict has its twin of the same shape, and each layer's shape is the analysis's."""
    spec = spec_at(path)
    assert spec.network is not None
    with torch.device("meta"):
        model = to_torch(spec.network, spec.shapes)
        batch = torch.empty(1, *spec.network.input.shape)
    ours = Counter(squeezed(t.shape) for t in model.state_dict().values())
    theirs = Counter(squeezed(shape) for _key, shape in REFERENCE[path.stem]["state_dict"])
    assert ours == theirs
    assert_matches_analysis(spec.network, model, batch)  # output (1, 1000) included
    assert spec.shapes[spec.network.output] == (1000,)


@pytest.mark.slow
@pytest.mark.parametrize("path", ZOO, ids=lambda p: p.stem)
def test_real_forward(path: Path) -> None:
    """A real forward on the CPU at the native size (the other size is checked on meta)."""
    torch.manual_seed(0)
    spec = spec_at(path)
    assert spec.network is not None
    model = to_torch(spec.network, spec.shapes).eval()
    with torch.no_grad():
        out = model(torch.randn(1, *spec.network.input.shape))
    assert out.shape == (1, 1000) and torch.isfinite(out).all()


# The specs written with torchvision's names (layers, groups, block calls): their modules'
# state_dicts are torchvision's, key for key in order, and take its weights with strict=True.
NAMED = ("alexnet", "vgg16", "vgg16_bn", "resnet18", "resnet50", "mobilenet_v2",
         "densenet121")


@pytest.mark.parametrize("name", NAMED)
def test_named_specs_have_torchvisions_state_dict_keys_in_order(name: str) -> None:
    spec = spec_at(SPECS / "zoo" / f"{name}.arch")
    assert spec.network is not None
    with torch.device("meta"):
        model = to_torch(spec.network, spec.shapes)
    ours = [(key, list(tensor.shape)) for key, tensor in model.state_dict().items()]
    assert ours == [(key, shape) for key, shape in REFERENCE[name]["state_dict"]]
    weights = {key: torch.empty(shape, device="meta") for key, shape in ours}
    model.load_state_dict(weights, strict=True, assign=True)


def test_readme_shows_the_zoo_spec_as_it_is() -> None:
    readme = (ROOT / "README.md").read_text()
    source = "specs/zoo/efficientnet_b0.arch"
    shown = readme.split(f"from `{source}`:\n\n```\n", 1)[1].split("```", 1)[0]
    assert "( A * B )" in readme and "block se(" in shown and "block mbconv(" in shown
    lines = [line for line in (ROOT / source).read_text().splitlines(keepends=True)
             if not line.startswith("#")]
    assert shown in "".join(lines)  # the spec's lines as they are, its comments left out
