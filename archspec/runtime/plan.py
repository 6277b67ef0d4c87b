"""Training plans as files: `<network>.plan.json`, the trainer's single input.

A plan file holds the spec's text (so the trainer rebuilds exactly the network that was
compiled), the spec's path relative to the plan file's folder (so that its errors are located,
and a relative `folder("path")` found, from any working directory and in a project moved
whole), and the resolved `TrainingPlan`, every default written out. No torch here: `compile`
writes plans without importing it.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archspec.core.files import write_atomic
from archspec.core.limits import MAX_INT, MAX_SOURCE_BYTES
from archspec.ir import Network, TrainingPlan
from archspec.lang.frontend import Spec, loads

SUFFIX = ".plan.json"
FORMAT = 2  # 1 held the spec's path relative to the folder `compile` ran in
# A plan holds a spec (at most MAX_SOURCE_BYTES) JSON-escaped, and a few hundred bytes more.
MAX_PLAN_BYTES = 8 * MAX_SOURCE_BYTES
# What `train --epochs/--device` may change in a plan file (`train` writes them into the run's).
OVERRIDES = frozenset({"epochs", "device"})


class PlanFileError(ValueError):
    """A plan file that cannot be read: not JSON, not a plan, or written by another format."""


@dataclass(frozen=True)
class LoadedPlan:
    """A plan file read back: the spec rebuilt from its text, and the plan to run."""

    spec: Spec
    plan: TrainingPlan | None  # None when the spec text has errors (spec.diagnostics says)


def resolve(network: Network) -> TrainingPlan:
    """The network's plan with every default filled in (a spec without `train:` gets them all)."""
    return network.plan if network.plan is not None else TrainingPlan()


def document(spec: Spec, directory: str | Path,
             plan: TrainingPlan | None = None) -> dict[str, Any]:
    """The JSON document of a valid spec's plan (or of `plan`, an adjusted copy of it), for a
    plan file in `directory`."""
    assert spec.network is not None, "only a loaded network has a plan"
    path = spec.source.path
    if not _is_name(path):  # relative to the plan's folder, whatever the working directory
        path = os.path.relpath(os.path.abspath(path), os.path.abspath(directory))
    return {
        "format": FORMAT,
        "network": spec.network.name,
        "source": {"path": path, "text": spec.source.text},
        "plan": (plan or resolve(spec.network)).model_dump(mode="json"),
    }


def plan_path(directory: str | Path, network: Network) -> Path:
    return Path(directory) / f"{network.name}{SUFFIX}"


def write_plan(spec: Spec, directory: str | Path, plan: TrainingPlan | None = None) -> Path:
    """Write `<directory>/<network>.plan.json` atomically and return its path."""
    assert spec.network is not None, "only a loaded network has a plan"
    path = plan_path(directory, spec.network)
    write_atomic(path, json.dumps(document(spec, directory, plan), indent=2) + "\n")
    return path


def is_plan_file(path: str | Path) -> bool:
    """Whether `train` reads `path` as a plan: its name ends in `.plan.json`, or it is a file
    whose first non-blank character is `{`, a JSON object (a plan copied to `plan.json`),
    which no spec starts with (it starts with `network NAME` or a comment)."""
    if str(path).endswith(SUFFIX):
        return True
    if not Path(path).is_file():  # no file, a folder, a pipe: read, if at all, as a spec
        return False
    # Unreadable: the spec reader says why. A few KB read, not the file it then reads whole.
    with contextlib.suppress(OSError), Path(path).open("rb") as handle:
        while chunk := handle.read(4096):
            if start := chunk.lstrip():
                return start[:1] == b"{"
    return False


def read_plan(path: str | Path) -> LoadedPlan:
    """Read a plan file. Its spec text goes through the whole front end again (the same checks
    as `archspec check`, errors located in that text), and its plan must be the one that text
    gives, but for what `train` overrides (`epochs`, `device`): the file is not trusted to hold
    anything the front end has not checked. PlanFileError (one line) for anything else."""
    try:
        with Path(path).open("rb") as handle:
            raw = handle.read(MAX_PLAN_BYTES + 1)
        if len(raw) > MAX_PLAN_BYTES:
            raise PlanFileError(f"{path}: larger than a plan file can be "
                                f"({MAX_PLAN_BYTES // 2**20} MiB)")
        data = json.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        if isinstance(exc, PlanFileError):
            raise
        reason = "nested too deeply" if isinstance(exc, RecursionError) else _first_line(exc)
        raise PlanFileError(f"{path}: not a readable plan file: {reason}") from None
    if not isinstance(data, dict) or not isinstance(data.get("format"), int):
        raise PlanFileError(f"{path}: not an archspec plan (format {FORMAT})")
    if data["format"] != FORMAT:
        raise PlanFileError(f"{path}: a plan of format {_short(data['format'])}; this archspec "
                            f"reads format {FORMAT}: compile the spec again")
    source = data.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("text"), str):
        raise PlanFileError(f"{path}: the plan has no spec text under source.text")
    origin = source.get("path")
    if not isinstance(origin, str) or not origin:
        origin = str(path)
    elif not _is_name(origin):  # the file's own path is relative to the plan's folder
        origin = os.path.normpath(os.path.join(os.path.dirname(path), origin))
    spec = loads(source["text"], origin)
    if not spec.ok or spec.network is None:
        return LoadedPlan(spec, None)
    return LoadedPlan(spec, _checked_plan(path, data.get("plan"), resolve(spec.network)))


def _checked_plan(path: str | Path, written: Any, expected: TrainingPlan) -> TrainingPlan:
    """The spec's plan with the file's overrides, if the file's plan is that plan otherwise."""
    if not isinstance(written, dict):
        raise PlanFileError(f"{path}: the plan has no `plan` mapping")
    mine = expected.model_dump(mode="json", exclude={"spans"})
    for key in sorted(set(mine) | set(written) - {"spans"}):
        if key in OVERRIDES or written.get(key) == mine.get(key):
            continue
        raise PlanFileError(f"{path}: plan.{key} is not what its spec text says "
                            f"({_short(written.get(key))}, the text gives {_short(mine.get(key))})"
                            "; a plan file's plan is its spec's, with only epochs and device "
                            "overridden: edit the spec and compile again")
    epochs, device = written.get("epochs"), written.get("device")
    if type(epochs) is not int or not 1 <= epochs <= MAX_INT:
        raise PlanFileError(f"{path}: plan.epochs is {_short(epochs)}, not a whole number "
                            f"from 1 to {MAX_INT:,}")
    if device not in ("cpu", "cuda"):
        raise PlanFileError(f"{path}: plan.device is {_short(device)}, not cpu or cuda")
    return expected.model_copy(update={"epochs": epochs, "device": device})


def _is_name(path: str) -> bool:
    """Whether a spec's path names no file: `<stdin>`, or `<input>` for a spec from text."""
    return path.startswith("<") and path.endswith(">")


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, int) or abs(value) < 10**30 \
        else "a huge number"
    return text if len(text) <= 40 else text[:37] + "..."


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    line = lines[0] if lines else type(exc).__name__
    return line if len(line) <= 160 else line[:157] + "..."
