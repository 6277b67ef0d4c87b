"""Checkpoints: everything a run needs to continue exactly where it stopped, written atomically.

A checkpoint is one file holding the model, optimizer and scheduler states, every random
generator a run draws from (torch, numpy, Python; CUDA where used) as plain tensors and
numbers, the epoch reached, the history so far and the weights of finished ensemble members
and snapshots. It is written to a temporary file and renamed, so a run killed at any moment
leaves the previous one whole. It is read with `torch.load(weights_only=True)` (no pickled
object is ever rebuilt), then its format number, a SHA-256 digest of its contents (a flipped
byte in a tensor is caught) and the type of every field are checked before anything is used.
"""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archspec.core.files import write_atomic

FILENAME = "checkpoint.pt"
FORMAT = 2
# Nesting a checkpoint never exceeds (state dicts are a few levels deep); past it, tampered.
_MAX_DEPTH = 32


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or does not hold what a run needs."""


def rng_state() -> dict[str, Any]:
    """The state of every generator this process draws from, as tensors and plain numbers."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64),
                   "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` returned; CheckpointError if the values do not fit."""
    numpy, python = state["numpy"], state["python"]
    try:
        torch.set_rng_state(state["torch"])
        keys = numpy["keys"].numpy()
        if keys.shape != (624,) or keys.min() < 0 or keys.max() >= 2**32:
            raise ValueError("numpy's generator state is not 624 32-bit words")
        np.random.set_state(("MT19937", keys.astype(np.uint32), numpy["pos"],
                             numpy["has_gauss"], numpy["cached_gaussian"]))
        random.setstate((python["version"], tuple(python["state"].tolist()),
                         python["gauss_next"]))
        if "cuda" in state:
            torch.cuda.set_rng_state_all(state["cuda"])
    except (ValueError, TypeError, RuntimeError, OverflowError) as exc:
        raise CheckpointError(f"its random generator states do not fit: {_first_line(exc)}") \
            from None


def save(path: Path, state: dict[str, Any]) -> None:
    """Write `state` (the trainer's fields) with the format number and digest added."""
    body = {"format": FORMAT, **state}
    body["digest"] = _digest(body)
    buffer = io.BytesIO()
    torch.save(body, buffer)
    write_atomic(path, buffer.getvalue())


def load(path: Path) -> dict[str, Any]:
    """A checkpoint's fields, checked; CheckpointError (one line) for anything else."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds (zip, unpickling, EOF, OS) for bad files
        raise CheckpointError(f"{path}: not a readable archspec checkpoint "
                              f"({_first_line(exc)})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an archspec checkpoint of format {FORMAT}")
    try:
        _check(state)
        digest = _digest({key: value for key, value in state.items() if key != "digest"})
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    if digest != state["digest"]:
        raise CheckpointError(f"{path}: damaged: its contents do not match their SHA-256 "
                              "digest")
    return state


def write_weights(out: Path, finished: list[dict[str, Any]]) -> list[Path]:
    """Plain state dicts beside the checkpoint, loadable with `torch.load` and
    `load_state_dict`: model.pt for a single model, model-1.pt... for each member or snapshot
    of an ensemble, in the order metrics.json lists them."""
    weights = [state for member in finished for state in member["snapshots"] or
               [member["weights"]]]
    names = ["model.pt"] if len(weights) == 1 else [f"model-{i}.pt"
                                                    for i in range(1, len(weights) + 1)]
    paths = []
    for name, state in zip(names, weights, strict=True):
        buffer = io.BytesIO()
        torch.save(state, buffer)
        write_atomic(out / name, buffer.getvalue())
        paths.append(out / name)
    return paths


def same_form(saved: Any, template: Any) -> bool:
    """Whether a saved state has the form of a fresh one: the same keys, lengths and types
    (tensors of the same dtype). A torch `load_state_dict` trusts its input's form, and one a
    file edited on purpose can break with any exception."""
    if isinstance(template, torch.Tensor):
        return isinstance(saved, torch.Tensor) and saved.dtype == template.dtype
    if isinstance(template, dict):
        return isinstance(saved, dict) and saved.keys() == template.keys() and all(
            same_form(saved[key], value) for key, value in template.items())
    if isinstance(template, list | tuple):
        return type(saved) is type(template) and len(saved) == len(template) and all(
            same_form(a, b) for a, b in zip(saved, template, strict=True))
    return type(saved) is type(template)


def optimizer_fits(saved: Any, optimizer: torch.optim.Optimizer) -> bool:
    """A saved optimizer state fits this optimizer: its groups have the fresh ones' form, and
    each parameter's buffers are a step count or tensors of the parameter's shape."""
    fresh = optimizer.state_dict()
    if not isinstance(saved, dict) or saved.keys() != fresh.keys() or not same_form(
            saved["param_groups"], fresh["param_groups"]) or not isinstance(saved["state"], dict):
        return False
    params = [param for group in optimizer.param_groups for param in group["params"]]
    for index, buffers in saved["state"].items():
        if type(index) is not int or not 0 <= index < len(params) or not isinstance(
                buffers, dict):
            return False
        for value in buffers.values():
            if isinstance(value, torch.Tensor):
                if value.dim() and value.shape != params[index].shape:
                    return False
            elif type(value) not in (int, float):
                return False
    return True


def cpu_copy(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A detached CPU copy of a state dict (kept for snapshots and finished members)."""
    return {key: value.detach().to("cpu", copy=True) for key, value in state_dict.items()}


# -- checking -------------------------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 160 else line[:157] + "..."


def _whole(minimum: int) -> Callable[[Any], bool]:
    return lambda value: type(value) is int and value >= minimum


def _weights(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())


def _plain(value: Any) -> bool:
    """JSON-like data only (no tensors), as a plan's dump is."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(map(_plain, value))
    return value is None or isinstance(value, str | int | float)


def _rng(value: Any) -> bool:
    if not isinstance(value, dict) or not isinstance(value.get("torch"), torch.Tensor):
        return False
    numpy, python = value.get("numpy"), value.get("python")
    return (isinstance(numpy, dict) and isinstance(numpy.get("keys"), torch.Tensor)
            and type(numpy.get("pos")) is int and type(numpy.get("has_gauss")) is int
            and type(numpy.get("cached_gaussian")) is float
            and isinstance(python, dict) and type(python.get("version")) is int
            and isinstance(python.get("state"), torch.Tensor)
            and (python.get("gauss_next") is None or type(python["gauss_next"]) is float))


_FIELDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "digest": ("a hex string", lambda v: isinstance(v, str)),
    "plan": ("a plain mapping", lambda v: isinstance(v, dict) and _plain(v)),
    "source": ("text", lambda v: isinstance(v, str)),
    "processes": ("a whole number from 1", _whole(1)),
    "member": ("a whole number from 0", _whole(0)),
    "epoch": ("a whole number from 0", _whole(0)),
    "model": ("a state dict", _weights),
    "optimizer": ("a mapping", lambda v: isinstance(v, dict)),
    "schedule": ("a mapping", lambda v: isinstance(v, dict)),
    "snapshots": ("a list of state dicts", lambda v: isinstance(v, list) and all(map(
        _weights, v))),
    "finished": ("a list of members' weights", lambda v: isinstance(v, list) and all(
        isinstance(m, dict) and _weights(m.get("weights")) and isinstance(
            m.get("snapshots"), list) and all(map(_weights, m["snapshots"])) for m in v)),
    "history": ("a list of rows", lambda v: isinstance(v, list) and all(
        isinstance(row, dict) and all(type(x) in (int, float) for x in row.values())
        for row in v)),
    "rng": ("a list of generator states", lambda v: isinstance(v, list) and all(map(_rng, v))),
}


def _check(state: dict[str, Any]) -> None:
    for key, (what, ok) in _FIELDS.items():
        if key not in state:
            raise CheckpointError(f"it has no `{key}`")
        if not ok(state[key]):
            raise CheckpointError(f"its `{key}` is not {what}")
    if len(state["rng"]) != state["processes"]:
        raise CheckpointError("its generator states do not match its process count")


def _digest(value: Any) -> str:
    digest = hashlib.sha256()
    _feed(digest, value, 0)
    return digest.hexdigest()


def _feed(digest: Any, value: Any, depth: int) -> None:
    """Hash a value's structure and contents (tensors by dtype, shape and bytes)."""
    if depth > _MAX_DEPTH:
        raise CheckpointError(f"it is nested deeper than {_MAX_DEPTH} levels")
    if isinstance(value, torch.Tensor):
        flat = value.detach().to("cpu").reshape(-1).contiguous()
        digest.update(f"T{flat.dtype}{tuple(value.shape)};".encode())
        digest.update(memoryview(flat.view(torch.uint8).numpy()))
    elif isinstance(value, dict):
        digest.update(f"{{{len(value)};".encode())
        for key, item in value.items():
            _feed(digest, key, depth + 1)
            _feed(digest, item, depth + 1)
    elif isinstance(value, list | tuple):
        digest.update(f"[{len(value)};".encode())
        for item in value:
            _feed(digest, item, depth + 1)
    elif value is None or isinstance(value, str | int | float | bool):
        digest.update(f"{type(value).__name__}:{value!r};".encode())
    else:
        raise CheckpointError(f"it holds a {type(value).__name__}, which no checkpoint holds")
