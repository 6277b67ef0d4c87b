"""Independent ensembles and SGDR snapshot ensembles against single models, over several seeds.

    python benches/ensembles.py [--members 3] [--epochs 10] [--seeds 0 1 2 3 4]
                                [--threads 1] [--spec specs/lenet5_mnist.arch]

The lecture's claims: an ensemble of independently trained models adds about 2% accuracy, and
the snapshots of one SGDR run give an ensemble "for free". For every seed this trains, with
archspec's own Trainer and the spec's data, network, batch, optimizer and augmentation
(default: LeNet-5 on mnist5k):

- `ensemble N` of E epochs each (the spec's schedule): the independent ensemble, and each of
  its members as a single model of E epochs;
- one run of N*E epochs with the spec's schedule: a single model of the ensemble's cost;
- one run of N*E epochs of `sgdr(period=E)` with `snapshots N`: the snapshot ensemble (the
  same cost), and its last snapshot alone.

It prints the test accuracy and log-loss of each as the mean and sample standard deviation
over the seeds, then every seed's figures. Seeds are hashed into every random stream
(docs/train.md, Seeding), so the seeds' runs share no initial weights and no data order; the
split is the same for all (SPLIT_SEED), so the spread is over training randomness only.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from archspec.ir import ScheduleSpec, TrainingPlan
from archspec.lang.frontend import load
from archspec.runtime.plan import resolve
from archspec.runtime.train.data import Data
from archspec.runtime.train.distributed import World
from archspec.runtime.train.preflight import check
from archspec.runtime.train.progress import Progress
from archspec.runtime.train.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent
ROWS = ("single model, E epochs (the ensemble's members)", "independent ensemble of N",
        "single model, N*E epochs", "SGDR snapshot ensemble of N",
        "SGDR run's last snapshot alone")


def fit(spec_path: Path, plan: TrainingPlan, data: Data) -> dict[str, Any]:
    spec = load(spec_path)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(spec, plan, data, Path(out), World(),
                          Progress(plan.epochs, io.StringIO(), enabled=False))
        metrics = trainer.fit(resume=False)
    assert metrics is not None
    return metrics


def one_seed(spec_path: Path, base: TrainingPlan, data: Data, members: int, epochs: int,
             seed: int) -> dict[str, list[tuple[float, float]]]:
    """(test accuracy, test log-loss) of each row's model(s) for one seed."""
    plan = base.model_copy(update={"seed": seed})
    ensemble = fit(spec_path, plan.model_copy(update={"ensemble": members, "epochs": epochs}),
                   data)
    long = fit(spec_path, plan.model_copy(update={"epochs": members * epochs}), data)
    snapshots = fit(spec_path, plan.model_copy(update={
        "epochs": members * epochs, "snapshots": members,
        "schedule": ScheduleSpec(name="sgdr", period=epochs, mult=1)}), data)

    def figures(metrics: dict[str, Any]) -> tuple[float, float]:
        return metrics["test_accuracy"], metrics["test_loss"]

    return {ROWS[0]: [figures(m) for m in ensemble["members"]],
            ROWS[1]: [figures(ensemble)],
            ROWS[2]: [figures(long)],
            ROWS[3]: [figures(snapshots)],
            ROWS[4]: [figures(snapshots["members"][-1])]}


def spread(values: list[float], percent: bool) -> str:
    scale, digits = (100, 2) if percent else (1, 4)
    mean = statistics.fmean(values) * scale
    std = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    return f"{mean:.{digits}f}{'%' if percent else ''} ± {std:.{digits}f}"


def markdown(rows: list[tuple[str, ...]]) -> str:
    """A markdown table: the first row is the header; numbers right-aligned."""
    lines = ["| " + " | ".join(rows[0]) + " |",
             "|---|" + "---:|" * (len(rows[0]) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", default=str(ROOT / "specs" / "lenet5_mnist.arch"))
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10, help="epochs of one member (E)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    spec_path = Path(args.spec)
    spec = load(spec_path)
    assert spec.ok and spec.network is not None, spec.render()
    base = resolve(spec.network).model_copy(update={"ensemble": 1, "snapshots": 1})
    ready, diagnostics = check(spec, base)
    assert ready is not None, diagnostics
    started = time.perf_counter()
    cpu = time.process_time()
    per_seed = {seed: one_seed(spec_path, base, ready.data, args.members, args.epochs, seed)
                for seed in args.seeds}
    n, e = args.members, args.epochs
    print(f"{spec.network.name} on {base.data.name} ({len(ready.data.test)} test images), "
          f"batch {base.batch}, {base.optimizer.name}(lr={base.optimizer.lr}), schedule "
          f"{base.schedule.name} (snapshots: sgdr(period={e})), N = {n}, E = {e}, seeds "
          f"{' '.join(map(str, args.seeds))}, {args.threads} thread(s); "
          f"{time.perf_counter() - started:.0f} s wall, {time.process_time() - cpu:.0f} s CPU")
    print("mean ± sample std over seeds (the single-model row: over every member of every "
          "seed)")
    rows = [("model", "epochs trained", "test accuracy", "test log-loss")]
    costs = (f"{e}", f"{n} x {e}", f"{n * e}", f"{n * e}", f"{n * e}")
    for name, cost in zip(ROWS, costs, strict=True):
        pairs = [pair for seed in args.seeds for pair in per_seed[seed][name]]
        rows.append((name.replace("N*E", str(n * e)).replace("E", str(e)).replace("N", str(n)),
                     cost, spread([a for a, _ in pairs], True),
                     spread([loss for _, loss in pairs], False)))
    print(markdown(rows))
    print("\nper seed (test accuracy / log-loss)")
    header = ("seed", "independent ensemble", f"single model, {n * e} epochs",
              "snapshot ensemble", "last snapshot")
    lines = [header]
    for seed in args.seeds:
        lines.append((str(seed), *(f"{a:.2%} / {loss:.4f}" for a, loss in
                                   (per_seed[seed][name][0] for name in ROWS[1:]))))
    print(markdown(lines))


if __name__ == "__main__":
    main()
