"""Everything checked before a run starts, reported as located diagnostics on the spec.

The front end already rejects malformed settings (a negative lr, an unknown schedule, an
augment chain that does not end at the input size, snapshots without SGDR). What needs the
world outside the spec, or the run's own epochs (`--epochs`), is checked here: the data
folder and its classes, the dataset against the network's output, enough SGDR cycles for the
snapshots, the device, SyncBatchNorm on several CPU processes, and checkpointing that would
checkpoint nothing (a network with no place to cut); and, for the plan the run
really uses (a spec without `train:` gets the default one), the memory its data, augmented
batches and kept weights would take (`plan_checks.resources`), before anything is allocated.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from archspec.analysis import cost
from archspec.backends.torch.emit import name_clashes
from archspec.catalog import DATASETS
from archspec.core.diagnostics import Diagnostic, Diagnostics
from archspec.core.source import Span
from archspec.ir import TrainingPlan
from archspec.lang import plan_checks
from archspec.lang.frontend import Spec
from archspec.runtime.train import data


@dataclass(frozen=True)
class Ready:
    """A run that passed every check: its dataset is loaded."""

    data: data.Data


def check(spec: Spec, plan: TrainingPlan,
          processes: int = 1) -> tuple[Ready | None, list[Diagnostic]]:
    """Check a valid spec's plan for a run on `processes` processes and load its data;
    diagnostics are located in the spec."""
    assert spec.network is not None
    network = spec.network
    diags = Diagnostics()
    output = spec.shapes.get(network.output)
    out_span = network.layer(network.output).span

    def where(key: str, fallback: Span = out_span) -> Span:
        return plan.spans.get(key, fallback)

    if output is None or len(output) != 1:
        diags.error("train", f"the network ends in {output}, not one score per class; "
                    "end it with FC-<classes>", out_span)
    builtin = DATASETS[plan.data.name].builtin
    classes = builtin.classes if builtin else plan.data.classes
    if plan.data.name == "folder":
        try:
            classes = len(data.folder_classes(data.resolve_folder(plan.data,
                                                                  spec.source.path)))
        except data.DataError as exc:
            diags.error("train", str(exc), where("data"))
            classes = 0
    if classes and output is not None and len(output) == 1:  # `check` gave the warning
        plan_checks.classes_fit(plan.data.name, classes, output[0], where("data"), diags,
                                warn=False)
    cycles = len(plan.schedule.cycle_ends(plan.epochs))
    if plan.snapshots > 1 and plan.schedule.name == "sgdr" and cycles < plan.snapshots:
        diags.error("train", f"{plan.epochs} epochs of sgdr(period={plan.schedule.period}, "
                    f"mult={plan.schedule.mult}) end {cycles} cycles, fewer than snapshots "
                    f"{plan.snapshots}", where("snapshots"))
    if plan.device == "cuda" and not cuda_available():
        diags.error("train", "device cuda, but torch sees no CUDA device here",
                    where("device"))
    if plan.sync_bn and processes > 1 and plan.device == "cpu":
        diags.error("train", "sync_bn needs device cuda: torch's SyncBatchNorm runs on GPUs "
                    "only; on the CPU write `sync_bn false`", where("sync_bn"))
    if plan.channels_last and len(network.input.shape) != 3:
        diags.error("train", "channels_last needs an image input (CxHxW)",
                    where("channels_last"))
    for clash in name_clashes(network):  # what only a build finds (`check` says it too)
        diags.error(clash.code, clash.message, clash.span)
    problem = cost.checkpoint_problem(network, plan.checkpoint) if plan.checkpoint else None
    if problem is not None:  # what `check` cannot see: a network with no place to cut
        diags.error("train", problem, where("checkpoint"))
    if not diags.has_errors:  # the memory the run's data and weights would take
        plan_checks.resources(network, spec.shapes, plan, diags)
    if diags.has_errors:
        return None, diags.sorted()
    try:
        loaded = data.load(plan.data, network.input.shape, spec.source.path)
    except data.DataError as exc:
        diags.error("train", str(exc), where("data"))
        return None, diags.sorted()
    return Ready(loaded), diags.sorted()


def cuda_available() -> bool:
    return torch.cuda.is_available()
