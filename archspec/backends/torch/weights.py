"""A state_dict file checked against a spec before it is loaded: each tensor missing from
the file, unexpected in it or of another shape, as a diagnostic at its layer's spec line."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from archspec.backends.torch.build import to_torch
from archspec.backends.torch.emit import layer_paths
from archspec.core.diagnostics import Diagnostic, Severity, printable
from archspec.ir import Network
from archspec.lang.shapes import Shapes


class WeightsFileError(ValueError):
    """A file that is no state_dict torch can read with weights_only=True."""


def read_state(path: str | Path) -> dict[object, object]:
    """The file's state_dict, read with weights_only=True (tensors, never code)."""
    try:
        with warnings.catch_warnings():  # torch's warnings about a broken file: reported below
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise  # cannot be read at all: the command line's one-line error
    except Exception as exc:  # any failure of torch's unpickler on a bad file
        # An empty or cut-short file raises a bare EOFError: say so, not `()`.
        text = str(exc).strip()
        why = (printable(text.splitlines()[0])[:200] if text
               else "the file ends early" if isinstance(exc, EOFError) else type(exc).__name__)
        raise WeightsFileError(f"{printable(str(path))}: not a state_dict file torch can read "
                               f"with weights_only=True ({why})") from None
    if not isinstance(state, dict):
        raise WeightsFileError(f"{printable(str(path))}: holds a {type(state).__name__}, "
                               "not a state_dict (a dict of tensors)")
    return state


def check_state(network: Network, shapes: Shapes, state: dict[object, object]
                ) -> list[Diagnostic]:
    """Every tensor of the network's module that `state` lacks or has in another shape, at
    its layer's span, and every key of `state` the module has no place for (at the input
    line: the spec does not write it). The module is built on the meta device: no memory."""
    with torch.device("meta"):
        model = to_torch(network, shapes)
    owner = {path: network.layer(name) for name, path in layer_paths(network).items()}
    found: list[Diagnostic] = []
    own = model.state_dict()
    for key, tensor in own.items():
        layer = owner[key.rpartition(".")[0]]
        theirs = state.get(key)
        if theirs is None:
            message = f"the weights file lacks `{key}` {list(tensor.shape)}"
        elif not isinstance(theirs, torch.Tensor) or theirs.shape != tensor.shape:
            got = list(theirs.shape) if isinstance(theirs, torch.Tensor) else "no tensor"
            message = f"`{key}` is {got} in the weights file, {list(tensor.shape)} here"
        else:
            continue
        found.append(Diagnostic(severity=Severity.ERROR, code="weights", message=message,
                                span=layer.span))
    for entry in state:
        if entry not in own:
            text = printable(str(entry))[:120]
            found.append(Diagnostic(
                severity=Severity.ERROR, code="weights", span=network.input.span,
                message=f"the weights file has `{text}`, which no layer of the spec holds"))
    return found
