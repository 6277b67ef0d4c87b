"""ONNX export: the generated module written as an .onnx file by torch's exporter."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import torch

from archspec.backends.torch.build import to_torch
from archspec.ir import Network
from archspec.lang.shapes import Shapes


def export_onnx(network: Network, shapes: Shapes, path: Path, weights: str | None = None
                ) -> None:
    """Write the network (as `to_torch` builds it, with the state_dict file `weights` if
    given, in eval mode) to `path` with torch's exporter (torch.export, then onnxscript),
    weights inside the file, the batch dynamic; the input is `input`, the output `output`."""
    model = to_torch(network, shapes, weights=weights).eval()
    example = torch.zeros(2, *network.input.shape)
    batch = torch.export.Dim("batch", min=1)
    # The exporter reports its progress on stdout and warns of what it skips: archspec
    # says what it wrote itself.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(path), dynamo=True, external_data=False,
                          input_names=["input"], output_names=["output"],
                          dynamic_shapes=({0: batch},), verbose=False)
