"""Learning-rate schedules: the plan's `schedule` as a torch scheduler, stepped at the right time.

`step` and `plateau` move once an epoch (plateau on the validation loss); `cosine` and `sgdr`
move every batch, so their curves are smooth and an SGDR cycle ends exactly at an epoch
boundary, where a snapshot is taken.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim import lr_scheduler as sched

from archspec.ir import ScheduleSpec


class Schedule:
    """One plan schedule bound to an optimizer; the trainer calls the two hooks."""

    def __init__(self, optimizer: Optimizer, spec: ScheduleSpec, epochs: int,
                 steps_per_epoch: int) -> None:
        self.spec = spec
        self.optimizer = optimizer
        self.scheduler: Any
        if spec.name == "step":
            self.scheduler = sched.StepLR(optimizer, step_size=spec.every, gamma=spec.gamma)
        elif spec.name == "plateau":
            self.scheduler = sched.ReduceLROnPlateau(optimizer, mode="min", factor=spec.factor,
                                                     patience=spec.patience)
        elif spec.name == "cosine":
            self.scheduler = sched.CosineAnnealingLR(optimizer,
                                                     T_max=epochs * steps_per_epoch)
        elif spec.name == "sgdr":
            self.scheduler = sched.CosineAnnealingWarmRestarts(
                optimizer, T_0=spec.period * steps_per_epoch, T_mult=spec.mult)
        else:
            self.scheduler = None

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def after_batch(self) -> None:
        if self.spec.name in ("cosine", "sgdr"):
            self.scheduler.step()

    def after_epoch(self, val_loss: float) -> None:
        if self.spec.name == "step":
            self.scheduler.step()
        elif self.spec.name == "plateau":
            self.scheduler.step(val_loss)

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict() if self.scheduler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state)


def snapshot_epochs(spec: ScheduleSpec, epochs: int, snapshots: int) -> list[int]:
    """The epochs whose weights join a snapshot ensemble: the last `snapshots` cycle ends."""
    return spec.cycle_ends(epochs)[-snapshots:] if snapshots > 1 else []


def lr_curve(spec: ScheduleSpec, lr: float, epochs: int, steps_per_epoch: int,
             val_losses: list[float] | None = None) -> list[float]:
    """The learning rate of every batch of a run, without training (for docs and tests)."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=lr)
    schedule = Schedule(optimizer, spec, epochs, steps_per_epoch)
    curve = []
    for epoch in range(epochs):
        for _ in range(steps_per_epoch):
            curve.append(schedule.lr)
            optimizer.step()
            schedule.after_batch()
        schedule.after_epoch(val_losses[epoch] if val_losses else 0.0)
    return curve
