"""Shape inference: the reference networks layer by layer, and the window rule against torch."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import SPECS
from hypothesis import given, settings
from hypothesis import strategies as st

from archspec.kinds.registry import Window
from archspec.lang.frontend import load, loads

# spec file -> the reference network (tests/reference/networks.json) it reproduces
REFERENCE_SPECS = {"lenet5": "lenet5", "alexnet": "alexnet_cs231n", "zfnet": "zfnet_cs231n",
                   "vgg16": "vgg16"}


@pytest.mark.parametrize(("spec", "key"), REFERENCE_SPECS.items())
def test_reference_shapes_layer_by_layer(spec: str, key: str, reference: dict) -> None:
    loaded = load(SPECS / f"{spec}.arch")
    assert loaded.ok, loaded.render()
    assert loaded.network is not None
    ours = [list(loaded.network.input.shape)] + [
        list(loaded.shapes[layer.name] or ()) for layer in loaded.network.layers
        if not layer.implicit and layer.kind in ("CONV", "MAXPOOL", "AVGPOOL", "NORM", "FC")]
    theirs = [layer["out_shape"] for layer in reference[key]["layers"]]
    assert ours == theirs


def test_hwc_input_is_stored_channels_first() -> None:
    spec = loads("network t\ninput 227x227x3 hwc\nCONV(96, 11, stride=4)\n")
    assert spec.shapes["conv1"] == (96, 55, 55)


def test_joins() -> None:
    spec = loads("network t\ninput 8x16x16\n"
                 "(CONV1-4 | CONV3-6 | POOL3/1(pad=1)) - (CONV3-18 + ID) - GAP - FC-3\n")
    assert spec.ok, spec.render()
    assert (spec.shapes["concat1"], spec.shapes["add1"], spec.shapes["gap1"]) == (
        (18, 16, 16), (18, 16, 16), (18, 1, 1))
    assert spec.shapes["fc1_flatten"] == (18,)


@settings(max_examples=150, deadline=timedelta(seconds=5))
@given(size=st.integers(1, 40), kernel=st.integers(1, 7), stride=st.integers(1, 4),
       pad=st.integers(0, 3), dilation=st.integers(1, 3), ceil=st.booleans(),
       pool=st.booleans())
def test_window_rule_matches_torch(size: int, kernel: int, stride: int, pad: int,
                                   dilation: int, ceil: bool, pool: bool) -> None:
    """Our output size is torch's, or both say the window does not fit."""
    import torch
    import torch.nn.functional as F

    if pool:
        dilation = 1
        pad = min(pad, kernel // 2)  # torch's rule, which archspec reports as an error
    else:
        ceil = False
    ours = Window(kernel=(kernel, kernel), stride=(stride, stride), pad=(pad, pad),
                  dilation=(dilation, dilation), ceil=ceil).out(size, 0)
    x = torch.zeros(1, 1, size, size)
    try:
        if pool:
            out = F.max_pool2d(x, kernel, stride, pad, ceil_mode=ceil)
        else:
            out = F.conv2d(x, torch.zeros(1, 1, kernel, kernel), stride=stride, padding=pad,
                           dilation=dilation)
        theirs = out.shape[-1]
    except RuntimeError:
        theirs = 0
    assert max(ours, 0) == theirs


@settings(max_examples=150, deadline=timedelta(seconds=5))
@given(size=st.integers(1, 40), kernel=st.integers(1, 7), stride=st.integers(1, 4),
       pad=st.integers(0, 3), dilation=st.integers(1, 3), ceil=st.booleans(),
       pool=st.booleans())
def test_rows_read_are_those_with_a_gradient(size: int, kernel: int, stride: int, pad: int,
                                             dilation: int, ceil: bool, pool: bool) -> None:
    """A row is read exactly when the summed output has a gradient there (average pooling
    and a conv of ones: every tap contributes, nothing cancels)."""
    import torch
    import torch.nn.functional as F

    if pool:
        dilation, pad = 1, min(pad, kernel // 2)
    else:
        ceil = False
    window = Window(kernel=(kernel, 1), stride=(stride, 1), pad=(pad, 0),
                    dilation=(dilation, 1), ceil=ceil)
    if window.out(size, 0) < 1:
        return
    x = torch.ones(1, 1, size, 1, requires_grad=True)
    if pool:
        out = F.avg_pool2d(x, (kernel, 1), (stride, 1), (pad, 0), ceil_mode=ceil)
    else:
        out = F.conv2d(x, torch.ones(1, 1, kernel, 1), stride=(stride, 1), padding=(pad, 0),
                       dilation=(dilation, 1))
    out.sum().backward()
    assert x.grad is not None
    assert list(window.reads(size, 0)) == (x.grad[0, 0, :, 0] != 0).int().tolist()


@pytest.mark.parametrize(("body", "found"), [
    # CONV1-16/2 on 33x33 reads every other row and column: 800 of 1,089 pixels unread.
    ("input 3x33x33\nCONV1-16/2 - FC-2\n",
     ["3:1: warning: conv1: a 1x1 window with stride 2x2 leaves 16 of 33 rows and 16 of 33 "
      "columns of its 33x33 input unread: 800 of 1,089 pixels (73%)"]),
    ("input 3x32x32\nPOOL3/2 - FC-2\n",
     ["3:1: warning: pool1: a 3x3 window with stride 2x2 leaves the last row and the last "
      "column of its 32x32 input unread: 63 of 1,024 pixels (6%)"]),
    # torchvision's downsampling block: the 3x3/2 (pad 1) branch reads what the 1x1/2 skips.
    ("input 8x32x32\n(CONV(16, 3, stride=2, pad=1) - RELU - CONV3-16 + CONV1-16/2) - FC-2\n",
     []),
    # Two 1x1/2 branches skip the same pixels: both are told, with what no layer reads.
    ("input 8x32x32\n(CONV1-8/2 + CONV1-8/2) - FC-2\n",
     [f"3:{col}: warning: conv{n}: a 1x1 window with stride 2x2 leaves 16 of 32 rows and 16 "
      "of 32 columns of its 32x32 input unread; with the other layers that read it, 768 of "
      "1,024 pixels (75%) are read by none" for n, col in ((1, 2), (2, 14))]),
    ("input 8x32x32\n(CONV1-8/2 | POOL2) - FC-2\n", []),  # the pool reads every pixel
])
def test_pixels_never_read(body: str, found: list[str]) -> None:
    spec = loads("network t\n" + body)
    assert [f"{d.span.line}:{d.span.col}: {d.severity.value}: {d.message}"
            for d in spec.diagnostics] == found


def test_a_warning_from_nested_blocks_names_every_call() -> None:
    spec = loads("network t\nblock inner(c): CONV($c, 1, stride=2)\nblock outer(c): inner($c)\n"
                 "input 3x33x33\nouter(4) - FC-2\n")
    [warning] = spec.diagnostics
    assert (warning.span.line, warning.hint) == (2, (
        "from `outer(4)` at line 5 → `inner(4)` at line 3; adjust pad or stride, or set "
        "ceil=true on a pool"))


def test_a_window_warning_comes_once_per_written_layer() -> None:
    """Each copy of the repeat skips pixels (32, 16 and 8 rows in); one warning, the first."""
    spec = loads("network t\ninput 3x32x32\n[CONV(8, 1, stride=2)]*3 - FC-2\n")
    assert [d.message.split(":")[0] for d in spec.diagnostics] == ["conv1"]


@pytest.mark.parametrize(("body", "found"), [
    ("(CONV1-4 - (CONV1-4/2 | CONV3-4/2) | CONV1-4 - CONV1-4/2)", "3:48: conv5"),
    ("(CONV1-4 - CONV1-4/2 | CONV1-4 - (CONV1-4/2 | CONV3-4/2))", "3:12: conv2"),
])
def test_layers_alike_warn_by_their_own_readers(body: str, found: str) -> None:
    """Both CONV1-4/2 read a 4x8x8 map with the same arguments, so what the registry's rules
    say of them is worked out once; only the one no sibling covers is told, in either order."""
    spec = loads(f"network t\ninput 4x8x8\n{body} - FC-2\n")
    assert [f"{d.span.line}:{d.span.col}: {d.message.split(':')[0]}"
            for d in spec.diagnostics] == [found]
    assert spec.ok and spec.shapes["concat2"] == (12, 4, 4)
