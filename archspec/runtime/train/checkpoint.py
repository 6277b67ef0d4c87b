"""Checkpoints: everything a run needs to continue exactly where it stopped, written atomically.

A checkpoint is one file holding the model, optimizer and scheduler states, every random
generator a run draws from (torch, numpy, Python; CUDA where used), the epoch reached, the
history so far and the weights of finished ensemble members and snapshots. It is written to a
temporary file and renamed, so a run killed at any moment leaves the previous one whole.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archspec.core.files import write_atomic

FILENAME = "checkpoint.pt"


def rng_state() -> dict[str, Any]:
    """The state of every generator this process draws from."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                             "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getvalue())


def load(path: Path) -> dict[str, Any]:
    # Our own file, holding numpy and Python generator states: not weights-only.
    return torch.load(path, map_location="cpu", weights_only=False)


def cpu_copy(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A detached CPU copy of a state dict (kept for snapshots and finished members)."""
    return {key: value.detach().to("cpu", copy=True) for key, value in state_dict.items()}
