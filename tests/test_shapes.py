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
