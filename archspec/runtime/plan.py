"""Training plans as files: `<network>.plan.json`, the trainer's single input.

A plan file holds the spec's text (so the trainer rebuilds exactly the network that was
compiled) and the resolved `TrainingPlan`, every default written out. No torch here: `compile`
writes plans without importing it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from archspec.core.files import write_atomic
from archspec.ir import Network, TrainingPlan
from archspec.lang.frontend import Spec, loads

SUFFIX = ".plan.json"
FORMAT = 1


class PlanFileError(ValueError):
    """A plan file that cannot be read: not JSON, not a plan, or written by another format."""


@dataclass(frozen=True)
class LoadedPlan:
    """A plan file read back: the spec rebuilt from its text, and the plan to run."""

    spec: Spec
    plan: TrainingPlan


def resolve(network: Network) -> TrainingPlan:
    """The network's plan with every default filled in (a spec without `train:` gets them all)."""
    return network.plan if network.plan is not None else TrainingPlan()


def document(spec: Spec, plan: TrainingPlan | None = None) -> dict[str, Any]:
    """The JSON document of a valid spec's plan (or of `plan`, an adjusted copy of it)."""
    assert spec.network is not None, "only a loaded network has a plan"
    return {
        "format": FORMAT,
        "network": spec.network.name,
        "source": {"path": spec.source.path, "text": spec.source.text},
        "plan": (plan or resolve(spec.network)).model_dump(mode="json"),
    }


def plan_path(directory: str | Path, network: Network) -> Path:
    return Path(directory) / f"{network.name}{SUFFIX}"


def write_plan(spec: Spec, directory: str | Path, plan: TrainingPlan | None = None) -> Path:
    """Write `<directory>/<network>.plan.json` atomically and return its path."""
    assert spec.network is not None, "only a loaded network has a plan"
    path = plan_path(directory, spec.network)
    write_atomic(path, json.dumps(document(spec, plan), indent=2) + "\n")
    return path


def is_plan_file(path: str | Path) -> bool:
    return str(path).endswith(SUFFIX)


def read_plan(path: str | Path) -> LoadedPlan:
    """Read a plan file; the spec is re-checked from its text, so its findings stay located."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanFileError(f"{path}: not a readable plan file: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PlanFileError(f"{path}: not an archspec plan (format {FORMAT})")
    source = data.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("text"), str):
        raise PlanFileError(f"{path}: the plan has no spec text under source.text")
    try:
        plan = TrainingPlan.model_validate(data.get("plan"))
    except ValidationError as exc:
        problems = "; ".join(f"plan.{'.'.join(map(str, e['loc']))}: {e['msg']}"
                             for e in exc.errors())
        raise PlanFileError(f"{path}: {problems}") from exc
    spec = loads(source["text"], str(source.get("path") or path))
    return LoadedPlan(spec, plan)
