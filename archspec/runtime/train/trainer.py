"""The training loop: one plan, run on in-memory data, checkpointed every epoch.

A run trains `ensemble` members one after another; every random stream (a member's initial
weights, its augmentation and dropout draws on each rank, its data order in each epoch) is
seeded from a hash of (seed, member, stream, rank or epoch), so no two runs, members or epochs
share one. Each epoch walks a permutation of the training split (with several processes every
rank walks its own shard), augments and standardises every batch, steps the optimizer and the
schedule, then measures the validation split with the model in eval mode (dropout off,
BatchNorm on its running statistics) and the augment chain's evaluation counterpart. After the
last epoch the val and test splits are scored by every member (or every SGDR snapshot) and by
their averaged probabilities.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from archspec.backends.torch.build import to_torch
from archspec.ir import TrainingPlan
from archspec.lang.frontend import Spec
from archspec.runtime.train import augment, checkpoint, report
from archspec.runtime.train.data import Data, Split
from archspec.runtime.train.distributed import World, all_sum, from_main, gather
from archspec.runtime.train.progress import Progress
from archspec.runtime.train.schedules import Schedule, snapshot_epochs

EVAL_BATCH = 1024
# The random streams of a member: its initial weights, its augmentation and dropout draws (one
# stream per rank), its data order (one per epoch).
WEIGHTS, DRAWS, ORDER = 0, 1, 2


class ResumeError(ValueError):
    """A checkpoint that does not belong to this plan."""


@dataclass(frozen=True)
class Scores:
    accuracy: float
    loss: float


@dataclass
class _Member:
    """One model in training, with everything that is checkpointed alongside it."""

    index: int
    model: nn.Module
    stepper: nn.Module  # the model, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    snapshots: list[dict[str, torch.Tensor]]


def stream_seed(seed: int, member: int, stream: int, index: int = 0) -> int:
    """A 63-bit seed for one random stream, hashed by numpy's SeedSequence from its keys:
    streams of different keys are unrelated (seed s + 1 does not replay seed s shifted)."""
    state = np.random.SeedSequence([seed, member, stream, index]).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(1))


def epoch_order(n: int, seed: int, member: int, epoch: int, world: World) -> torch.Tensor:
    """This rank's shard of the epoch's permutation of n samples, as DistributedSampler shards:
    the permutation is padded with its own head to a multiple of the world size, and rank r
    takes every world-size-th sample from r."""
    generator = torch.Generator().manual_seed(stream_seed(seed, member, ORDER, epoch))
    order = torch.randperm(n, generator=generator)
    total = -(-n // world.size) * world.size
    order = order.repeat(-(-total // n))[:total]
    return order[world.rank::world.size]


def parameter_groups(model: nn.Module, decay: float,
                     norm_and_bias: bool) -> list[dict[str, Any]]:
    """Weight decay on the weight matrices and kernels only, unless norm_and_bias: biases and
    normalisation scales and shifts (every parameter of one dimension) are left undecayed."""
    params = list(model.parameters())
    if norm_and_bias or not decay:
        return [{"params": params, "weight_decay": decay}]
    return [{"params": [p for p in params if p.ndim > 1], "weight_decay": decay},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]


def make_optimizer(plan: TrainingPlan, model: nn.Module) -> torch.optim.Optimizer:
    spec = plan.optimizer
    groups = parameter_groups(model, spec.weight_decay, plan.decay_norm_and_bias)
    if spec.name == "sgd":
        return torch.optim.SGD(groups, lr=spec.lr, momentum=spec.momentum or 0.0,
                               dampening=spec.dampening or 0.0, nesterov=bool(spec.nesterov))
    assert spec.beta1 is not None and spec.beta2 is not None and spec.eps is not None
    cls = torch.optim.Adam if spec.name == "adam" else torch.optim.AdamW
    return cls(groups, lr=spec.lr, betas=(spec.beta1, spec.beta2), eps=spec.eps)


def score(probabilities: torch.Tensor, labels: torch.Tensor) -> Scores:
    """Accuracy and log-loss (mean negative log-probability of the true class)."""
    picked = probabilities[torch.arange(len(labels)), labels].clamp_min(1e-12)
    accuracy = (probabilities.argmax(dim=1) == labels).double().mean().item()
    return Scores(accuracy, -picked.log().double().mean().item())


def fixed_length(plan: TrainingPlan) -> str | None:
    """Why a run of `plan` cannot continue to other epochs (`--resume --epochs 30` after 20),
    or None: the epochs it trained depend on their total under cosine (it anneals over the
    whole run), with snapshots (the run's last cycle ends) and in an ensemble (its earlier
    members finished at the old total)."""
    return ("its cosine schedule anneals over all of its epochs"
            if plan.schedule.name == "cosine" else
            "its snapshots are the last cycle ends of its epochs" if plan.snapshots > 1
            else "its earlier ensemble members trained for that many epochs"
            if plan.ensemble > 1 else None)


class Trainer:
    def __init__(self, spec: Spec, plan: TrainingPlan, data: Data, out: Path, world: World,
                 progress: Progress) -> None:
        assert spec.network is not None
        self.spec = spec
        self.network = spec.network
        self.plan = plan
        self.data = data
        self.out = out
        self.world = world
        self.progress = progress
        self.device = torch.device("cpu" if plan.device == "cpu" else f"cuda:{world.local_rank}")
        image = len(self.network.input.shape) == 3
        self.channels_last = plan.channels_last and image
        self.augment = augment.build(plan.augment, self.network.input.shape[0]) \
            if plan.augment and image else None
        self.evaluation = augment.for_evaluation(plan.augment) if image else None
        # Augmentations work on [0, 1] pixels, so batches are standardised after them; without
        # augmentation the training images are standardised once, here.
        self.train_x = data.train.x if self.augment else data.normalise(data.train.x)
        self.snapshot_at = set(snapshot_epochs(plan.schedule, plan.epochs, plan.snapshots))
        # The global batch is the plan's; each of N processes takes a share of it.
        self.batch = -(-plan.batch // world.size)
        shard = -(-len(data.train) // world.size)  # DistributedSampler pads to equal shards
        steps, last = divmod(shard, self.batch)
        # A last batch of one sample is dropped: BatchNorm cannot normalise a single sample.
        self.steps_per_epoch = steps + (last > 1)
        self.history: list[dict[str, float]] = []
        self.finished: list[dict[str, Any]] = []  # per finished member: weights, snapshots
        self._resume_point: tuple[int, dict[str, Any] | None] | None = None

    # -- building -----------------------------------------------------------------------------

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16,
                              enabled=self.plan.precision == "bf16")

    def _model(self) -> nn.Module:
        model = to_torch(self.network, self.spec.shapes,
                         checkpoint=self.plan.checkpoint).to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def _build(self, index: int) -> _Member:
        seed = self.plan.seed
        torch.manual_seed(stream_seed(seed, index, WEIGHTS))  # the same weights on every rank
        model = self._model()
        if self.world.distributed and self.plan.sync_bn:
            # BatchNorm statistics over the global batch (all ranks), as one process sees it.
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        torch.manual_seed(stream_seed(seed, index, DRAWS, self.world.rank))
        stepper: nn.Module = model
        if self.world.distributed:
            stepper = DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        optimizer = make_optimizer(self.plan, model)
        schedule = Schedule(optimizer, self.plan.schedule, self.plan.epochs,
                            self.steps_per_epoch)
        return _Member(index, model, stepper, optimizer, schedule, [])

    # -- the loop -----------------------------------------------------------------------------

    def fit(self, resume: bool) -> dict[str, Any] | None:
        """Train every member; rank 0 returns the metrics, other ranks None."""
        # Deterministic kernels + checkpointed generators: a resumed run is bit-exact (CPU).
        previous = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(self.device.type == "cpu" or previous)
        try:
            return self._fit(resume)
        finally:
            torch.use_deterministic_algorithms(previous)

    def _fit(self, resume: bool) -> dict[str, Any] | None:
        start, state = self._resume_point or self._load(resume)
        for index in range(start, self.plan.ensemble):
            if self.plan.ensemble > 1:
                self.progress.prefix = f"[member {index + 1}/{self.plan.ensemble}] "
            member = self._build(index)
            first_epoch = self._restore(member, state) if state and index == start else 0
            for epoch in range(first_epoch, self.plan.epochs):
                self._epoch(member, epoch)
                if epoch + 1 in self.snapshot_at:
                    member.snapshots.append(checkpoint.cpu_copy(member.model.state_dict()))
                done = epoch + 1 == self.plan.epochs
                if done:
                    self.finished.append({
                        "weights": checkpoint.cpu_copy(member.model.state_dict()),
                        "snapshots": member.snapshots})
                self._save(member, epoch + 1)
        if not self.world.main:
            return None
        metrics = self._evaluate()
        checkpoint.write_weights(self.out, self.finished)
        return metrics

    def _epoch(self, member: _Member, epoch: int) -> None:
        model = member.stepper
        model.train()
        order = epoch_order(len(self.data.train), self.plan.seed, member.index, epoch,
                            self.world)
        batches = order.split(self.batch)[: self.steps_per_epoch]
        lr = member.schedule.lr
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        seen = 0
        started = time.perf_counter()
        for step, index in enumerate(batches, start=1):
            x, y = self._batch(index)
            with self._autocast():
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
            member.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            member.optimizer.step()
            member.schedule.after_batch()
            loss_sum.add_(loss.detach(), alpha=len(y))
            correct.add_((logits.detach().argmax(dim=1) == y).sum())
            seen += len(y)
            if self.progress.due():
                elapsed = time.perf_counter() - started
                self.progress.batch(epoch + 1, step, len(batches), loss_sum.item() / seen,
                                    correct.item() / seen, member.schedule.lr,
                                    seen * self.world.size / max(elapsed, 1e-9))
        # Collectives take tensors on the process's device (nccl has no CPU tensors).
        seen_t = torch.tensor(seen, dtype=torch.float64, device=self.device)
        totals = all_sum(self.world, torch.stack([loss_sum, correct.double(), seen_t])).cpu()
        seconds = time.perf_counter() - started
        val = self.evaluate(member.model, self.data.val)
        val_loss, val_accuracy = from_main(self.world, torch.tensor(
            [val.loss, val.accuracy], dtype=torch.float64, device=self.device)).tolist()
        member.schedule.after_epoch(val_loss)
        row = {"member": member.index, "epoch": epoch + 1, "lr": lr,
               "train_loss": totals[0].item() / totals[2].item(),
               "train_accuracy": totals[1].item() / totals[2].item(),
               "val_loss": val_loss, "val_accuracy": val_accuracy,
               "images_per_s": totals[2].item() / seconds, "seconds": seconds}
        self.history.append(row)
        self.progress.epoch(row)

    def _batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.train_x[index].to(self.device, non_blocking=True)
        y = self.data.train.y[index].to(self.device, non_blocking=True)
        if self.augment is not None:
            x = self.data.normalise(self.augment(x))
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    @torch.no_grad()
    def predict(self, model: nn.Module, split: Split) -> torch.Tensor:
        """Class probabilities for a split, in eval mode (the model is left in train mode),
        its images through the augment chain's evaluation counterpart."""
        model.eval()
        out = []
        for start in range(0, len(split), EVAL_BATCH):
            x = split.x[start:start + EVAL_BATCH].to(self.device)
            if self.evaluation is not None:
                x = self.evaluation(x)
            x = self.data.normalise(x)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with self._autocast():
                logits = model(x)
            out.append(logits.float().softmax(dim=1).cpu())
        model.train()
        return torch.cat(out)

    def evaluate(self, model: nn.Module, split: Split) -> Scores:
        return score(self.predict(model, split), split.y)

    # -- results ------------------------------------------------------------------------------

    def _evaluate(self) -> dict[str, Any]:
        """Score every kept model (each member's last epoch, or each snapshot) and their
        average on the val and test splits; metrics.json's schema is in docs/train.md."""
        model = self._model()
        splits = {"val": self.data.val, "test": self.data.test}
        parts: list[dict[str, Any]] = []
        probabilities: dict[str, list[torch.Tensor]] = {"val": [], "test": []}
        for index, member in enumerate(self.finished):
            rows = [row for row in self.history if row["member"] == index]
            best = max(rows, key=lambda row: row["val_accuracy"])
            weights = member["snapshots"] or [member["weights"]]
            epochs = sorted(self.snapshot_at) if member["snapshots"] else [self.plan.epochs]
            for epoch, state in zip(epochs, weights, strict=True):
                model.load_state_dict(state)
                entry: dict[str, Any] = {"member": index, "epoch": epoch}
                for name, split in splits.items():
                    probs = self.predict(model, split)
                    probabilities[name].append(probs)
                    scores = score(probs, split.y)
                    entry |= {f"{name}_accuracy": scores.accuracy, f"{name}_loss": scores.loss}
                entry |= {"best_val_accuracy": best["val_accuracy"],
                          "best_val_epoch": best["epoch"]}
                parts.append(entry)
        averaged = {name: score(torch.stack(probs).mean(dim=0), splits[name].y)
                    for name, probs in probabilities.items()}
        scored = {"val_accuracy": averaged["val"].accuracy, "val_loss": averaged["val"].loss,
                  "test_accuracy": averaged["test"].accuracy,
                  "test_loss": averaged["test"].loss}
        ensemble: dict[str, Any] | None = None
        if len(parts) > 1:
            ensemble = {
                "kind": "snapshots" if self.plan.snapshots > 1 else "ensemble",
                "size": len(parts), **scored,
                "mean_member_test_accuracy": sum(p["test_accuracy"] for p in parts) / len(parts),
                "mean_member_test_loss": sum(p["test_loss"] for p in parts) / len(parts),
            }
        metrics: dict[str, Any] = {
            "network": self.network.name, "data": self.plan.data.name,
            "epochs": self.plan.epochs, "seed": self.plan.seed, "processes": self.world.size,
            "device": self.device.type, **scored,
            "val_images": len(self.data.val), "test_images": len(self.data.test),
            "train_seconds": sum(row["seconds"] for row in self.history),
            "images_per_s": sum(row["images_per_s"] for row in self.history)
            / len(self.history),
            "members": parts, "ensemble": ensemble,
        }
        report.write_metrics(self.out / "metrics.json", metrics)
        report.plot_curves(self.out / "curves.png", self.history,
                           f"{self.network.name} on {self.plan.data.name}")
        return metrics

    # -- checkpoints --------------------------------------------------------------------------

    def _save(self, member: _Member, epoch: int) -> None:
        rng = gather(self.world, checkpoint.rng_state())
        if not self.world.main:
            return
        checkpoint.save(self.out / checkpoint.FILENAME, {
            "plan": self.plan.model_dump(mode="json", exclude={"spans"}),
            "source": self.spec.source.text,
            "processes": self.world.size,
            "member": member.index, "epoch": epoch,
            "model": member.model.state_dict(),
            "optimizer": member.optimizer.state_dict(),
            "schedule": member.schedule.state_dict(),
            "snapshots": member.snapshots,
            "finished": self.finished,
            "history": self.history,
            "rng": rng,
        })
        report.write_history(self.out / "history.csv", self.history)

    def load_checkpoint(self) -> bool:
        """Read and check the run folder's checkpoint, if there is one, before anything is
        written: ResumeError if it is unreadable or cannot continue this plan; whether there
        was one to continue. `fit` then continues from it. Each process reads its own
        machine's run folder, and they agree: one that cannot resume, or that would continue
        from elsewhere than the others (its machine's folder lacks the checkpoint), stops them
        all with ResumeError; alone, it would leave the others waiting for it at their first
        collective."""
        try:
            member, state = point = self._load(resume=True)
        except ResumeError as exc:
            mine: tuple[str | None, tuple[int, int] | None] = (str(exc), None)
        else:
            mine = (None, (member, state["epoch"] if state else 0))
        every = gather(self.world, mine)
        for rank, (why, _) in enumerate(every):
            if why is not None:
                raise ResumeError(f"process {rank}: {why}" if self.world.distributed else why)
        if len({where for _, where in every}) > 1:
            points = ", ".join(f"process {rank} {self._from(where)}"
                               for rank, (_, where) in enumerate(every))
            raise ResumeError(f"cannot resume: the processes would continue from different "
                              f"points ({points}); a run over several machines resumes from a "
                              "run folder every machine sees")
        self._resume_point = point
        return point != (0, None)

    def _from(self, where: tuple[int, int] | None) -> str:
        """Where a process would continue: `from epoch 5`, `from the start`."""
        member, epoch = where or (0, 0)
        if (member, epoch) == (0, 0):
            return "from the start"
        return (f"from member {member + 1}, epoch {epoch}" if self.plan.ensemble > 1
                else f"from epoch {epoch}")

    def _load(self, resume: bool) -> tuple[int, dict[str, Any] | None]:
        """The member to start with, and the checkpoint to continue it from (if any)."""
        path = self.out / checkpoint.FILENAME
        if not resume or not path.is_file():
            return 0, None
        try:
            state = checkpoint.load(path)
        except checkpoint.CheckpointError as exc:
            raise ResumeError(f"cannot resume: {exc}") from None
        mine = self.plan.model_dump(mode="json", exclude={"spans"})
        saved = state["plan"]
        if {k: v for k, v in saved.items() if k != "epochs"} != \
                {k: v for k, v in mine.items() if k != "epochs"} \
                or state["source"] != self.spec.source.text:
            raise ResumeError(f"{path} was written by another spec or plan; "
                              "train into a fresh --out directory, or replace it (--force, without "
                              "--resume)")
        if state["processes"] != self.world.size:
            raise ResumeError(f"{path} was written by {state['processes']} process(es); "
                              f"resume with --nproc {state['processes']}")
        self._check_epochs(path, saved.get("epochs"), state)
        self._check_progress(path, saved["epochs"], state)
        self.history = state["history"]
        self.finished = state["finished"]
        if state["epoch"] < self.plan.epochs:
            # An extended run continues its last member, which is no longer finished.
            self.finished = self.finished[: state["member"]]
        elif state["member"] + 1 < self.plan.ensemble:
            return state["member"] + 1, None  # that member had finished: the next starts afresh
        return state["member"], state

    def _check_progress(self, path: Path, saved_epochs: int, state: dict[str, Any]) -> None:
        """The checkpoint's counts agree with each other and with the plan (a file whose
        digest was recomputed after editing is still not trusted to)."""
        member, epoch, ensemble = state["member"], state["epoch"], self.plan.ensemble
        finished = member + (epoch == saved_epochs)
        rows = state["history"]
        fields = set(report.HISTORY_FIELDS)
        if not (member < ensemble and epoch >= 1 and len(state["finished"]) == finished
                and len(state["snapshots"]) <= self.plan.snapshots
                and len(rows) == member * saved_epochs + epoch
                and all(set(row) == fields for row in rows)):
            raise ResumeError(f"cannot resume: {path}: its member, epoch, history and "
                              "finished members do not agree with each other or the plan")

    def _check_epochs(self, path: Path, saved: Any, state: dict[str, Any]) -> None:
        """A run may continue to other epochs (`--resume --epochs 30` after 20) only where the
        epochs already trained do not depend on the total (`fixed_length`)."""
        if type(saved) is not int or state["epoch"] > saved:
            raise ResumeError(f"cannot resume: {path}: its plan's epochs do not fit its state")
        wanted = self.plan.epochs
        if wanted == saved:
            return
        if state["epoch"] > wanted:
            raise ResumeError(f"{path} has trained {state['epoch']} epochs, more than "
                              f"--epochs {wanted}")
        why = fixed_length(self.plan)
        if why is not None:
            raise ResumeError(f"{path} is a {saved}-epoch run and {why}; it cannot continue to "
                              f"{wanted} epochs (train afresh with --epochs {wanted} --force)")

    def _restore(self, member: _Member, state: dict[str, Any]) -> int:
        try:
            member.model.load_state_dict(state["model"])
            if not checkpoint.optimizer_fits(state["optimizer"], member.optimizer) or \
                    not checkpoint.same_form(state["schedule"], member.schedule.state_dict()):
                raise ValueError("its optimizer or schedule state has another form")
            member.optimizer.load_state_dict(state["optimizer"])
            member.schedule.load_state_dict(state["schedule"])
            checkpoint.set_rng_state(state["rng"][self.world.rank])
        except (checkpoint.CheckpointError, RuntimeError, ValueError, KeyError,
                TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            raise ResumeError(f"cannot resume from {self.out / checkpoint.FILENAME}: its "
                              f"states do not fit this network: {first[:160]}") from None
        member.snapshots = state["snapshots"]
        return state["epoch"]
