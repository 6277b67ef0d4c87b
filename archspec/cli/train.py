"""`archspec train FILE|PLAN`: run a spec's training plan, resumably, on one or more processes."""

from __future__ import annotations

import os
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archspec.analysis.report import build_report
from archspec.catalog import DEVICES
from archspec.cli.common import (
    EXIT_ERRORS,
    EXIT_OK,
    EXIT_USAGE,
    STDIN,
    UsageError,
    load_or_report,
    output_folder,
    whole_number,
)
from archspec.cli.options import Arguments, Options
from archspec.core.diagnostics import printable, render_all
from archspec.core.limits import MAX_INT
from archspec.ir import TrainingPlan
from archspec.lang.frontend import Spec
from archspec.runtime.plan import (
    PlanFileError,
    is_plan_file,
    plan_path,
    read_plan,
    resolve,
    write_plan,
)

if TYPE_CHECKING:
    from archspec.runtime.train import distributed
    from archspec.runtime.train.data import Data

HELP = "train a spec (or a compiled .plan.json) as its train: section says"
# --nproc and --threads are capped at the CPUs this process may run on: more processes or
# intra-op threads than that only contend (and 10^9 threads abort in the OpenMP runtime).
CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
CPU_COUNT = whole_number(1, CPUS, "the CPUs this process may use")


def add_arguments(options: Options) -> None:
    options.add_argument("input", metavar="FILE|PLAN",
                        help="an .arch spec, or a plan: a .plan.json (or any file holding a "
                             "JSON object)")
    options.add_argument("--out", metavar="DIR",
                        help="where checkpoints, history, metrics and curves go "
                             "(default runs/NETWORK)")
    options.add_argument("--epochs", type=whole_number(1, MAX_INT), metavar="N",
                        help="override the plan's epochs")
    options.add_argument("--device", choices=DEVICES, help="override the plan's device")
    options.add_argument("--resume", action="store_true",
                        help="continue from DIR/checkpoint.pt if it is there (with --epochs: "
                             "extend a finished run)")
    options.add_argument("--force", action="store_true",
                        help="replace the run already in DIR (without it, train refuses)")
    options.add_argument("--nproc", type=CPU_COUNT, default=1, metavar="N",
                        help="processes on this machine, under torchrun with DDP (default 1; "
                             f"at most the {CPUS} CPUs this process may use)")
    options.add_argument("--threads", type=CPU_COUNT, metavar="N",
                        help="CPU threads per process (default $OMP_NUM_THREADS, else 1; at "
                             f"most the {CPUS} CPUs this process may use)")


def _load(path: str) -> tuple[Spec, TrainingPlan] | None:
    if path != STDIN and is_plan_file(path):
        if not Path(path).is_file():
            print(f"archspec: error: cannot read {path}: no such file", file=sys.stderr)
            return None
        try:
            loaded = read_plan(path)
        except PlanFileError as exc:
            print(f"archspec: error: {exc}", file=sys.stderr)
            return None
        if loaded.spec.diagnostics:
            print(loaded.spec.render(), file=sys.stderr)
        return (loaded.spec, loaded.plan) if loaded.plan is not None else None
    spec = load_or_report(path)
    if spec is None or spec.network is None:
        return None
    return spec, resolve(spec.network)


def run(args: Arguments) -> int:
    if args.force and args.resume:
        raise UsageError("--resume continues the run in --out and --force replaces it: "
                         "give one of them")
    loaded = _load(args.input)
    if loaded is None:
        return EXIT_ERRORS if Path(args.input).is_file() else EXIT_USAGE
    spec, plan = loaded
    overrides = {key: value for key, value in (("epochs", args.epochs), ("device", args.device))
                 if value is not None}
    plan = plan.model_copy(update=overrides)
    # Imported here, not at the top: the CLI's other commands must not pay for torch.
    from archspec.runtime.train import distributed

    world = distributed.join(plan.device)  # a world of one unless started by torchrun
    try:
        code = _run(args, spec, plan, world)
    finally:
        distributed.leave(world)
    if world.distributed:
        # A torchrun worker ends here, without the interpreter's teardown: gloo's threads,
        # destroyed with the C++ statics at exit, can abort a finished process ("terminate
        # called without an active exception"), and torchrun then fails the whole run.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _run(args: Arguments, spec: Spec, plan: TrainingPlan,
         world: distributed.World) -> int:
    from archspec.runtime.train import distributed, preflight, rundir

    assert spec.network is not None
    if args.device == "cuda" and not preflight.cuda_available():
        print("archspec: error: --device cuda, but torch sees no CUDA device here",
              file=sys.stderr)
        return EXIT_USAGE
    ready, diagnostics = preflight.check(spec, plan, max(args.nproc, world.size))
    if diagnostics and world.main:
        print(render_all(diagnostics, spec.source), file=sys.stderr)
    if ready is None:
        return EXIT_ERRORS
    out = output_folder(args.out) if args.out is not None else Path("runs") / spec.network.name
    try:
        # Every rank 0 holds the folder (other ranks write nothing); the launcher of --nproc
        # holds it for its workers.
        with rundir.claim(out, resume=args.resume, force=args.force,
                          plan_file=plan_path(out, spec.network).name) if world.main \
                else nullcontext():
            if args.nproc > 1 and not distributed.launched():
                return distributed.launch(_worker_argv(args, out), args.nproc,
                                          env=rundir.hold_for_workers(out))
            return _train(args, spec, plan, ready.data, out, world)
    except rundir.RunFolderError as exc:
        raise UsageError(str(exc)) from None


def _worker_argv(args: Arguments, out: Path) -> list[str]:
    argv = ["train", args.input, "--out", str(out)]
    for flag, value in (("--epochs", args.epochs), ("--device", args.device),
                        ("--threads", args.threads)):
        if value is not None:
            argv += [flag, str(value)]
    return argv + ["--resume"] * args.resume


def _train(args: Arguments, spec: Spec, plan: TrainingPlan, data: Data, out: Path,
           world: distributed.World) -> int:
    import torch

    from archspec.runtime.train.progress import Progress
    from archspec.runtime.train.trainer import ResumeError, Trainer

    progress = Progress(plan.epochs, enabled=world.main)
    trainer = Trainer(spec, plan, data, out, world, progress)
    previous = torch.get_num_threads()
    torch.set_num_threads(args.threads or _env_threads())
    try:
        # Checked before anything in the folder is written.
        if args.resume and not trainer.load_checkpoint() and world.main:
            print(f"archspec: note: nothing to resume in {printable(str(out))} (no checkpoint): "
                  "training from the start", file=sys.stderr)
        if world.main:
            write_plan(spec, out, plan)
            print(describe(spec, plan, data, world.size), flush=True)
        metrics = trainer.fit(args.resume)
    except ResumeError as exc:
        if world.main:  # every process stops with the same error: one says it
            print(f"archspec: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        torch.set_num_threads(previous)
    if metrics is not None:
        print(summary(metrics, out))
    return EXIT_OK


def describe(spec: Spec, plan: TrainingPlan, data: Data, processes: int) -> str:
    """The opening line: the model's size, the data, the optimizer, and where they came from."""
    assert spec.network is not None
    network = spec.network
    params = build_report(network, spec.shapes).totals.params
    optimizer = plan.optimizer
    settings = [f"lr={optimizer.lr:g}"]
    if optimizer.name == "sgd":
        settings.append(f"momentum={optimizer.momentum:g}")
        if optimizer.nesterov:
            settings.append("nesterov")
    if optimizer.weight_decay:
        settings.append(f"weight_decay={optimizer.weight_decay:g}")
    split = f"{len(data.train)} train / {len(data.val)} val / {len(data.test)} test"
    text = (f"training {network.name} ({params:,} parameters) on {data.name} data "
            f"({data.classes} classes; {split} images) with {optimizer.name}"
            f"({', '.join(settings)}), schedule {plan.schedule.name}, {plan.epochs} epoch"
            f"{'s' * (plan.epochs != 1)} of batch {plan.batch} on {plan.device} ({processes} "
            f"process{'es' * (processes != 1)})")
    if network.plan is None:
        text += ("\nnote: the spec has no train: section, so this run uses every default: "
                 "synthetic random data (docs/train.md)")
    return text


def _env_threads() -> int:
    """One intra-op thread unless OMP_NUM_THREADS says otherwise (torchrun's default too): on
    a shared machine a pool of threads stalls whenever one of them is descheduled, and the
    small nets archspec trains on a CPU gain little from it (docs/train.md has figures)."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else 1


def summary(metrics: dict[str, Any], out: Path) -> str:
    """The closing lines: the scored model's figures, and members beside their ensemble."""
    lines = [f"test accuracy {metrics['test_accuracy']:.2%}, log-loss {metrics['test_loss']:.4f}"
             f" on {metrics['test_images']} images; val accuracy "
             f"{metrics['val_accuracy']:.2%}; {metrics['train_seconds']:.1f} s training"]
    ensemble = metrics["ensemble"]
    if ensemble is not None:
        lines.append(f"{'model':<24} {'accuracy':>9} {'log-loss':>9}")
        for part in metrics["members"]:
            name = f"member {part['member']}, epoch {part['epoch']}"
            lines.append(f"{name:<24} {part['test_accuracy']:>9.2%} {part['test_loss']:>9.4f}")
        lines.append(f"{'members (mean)':<24} {ensemble['mean_member_test_accuracy']:>9.2%} "
                     f"{ensemble['mean_member_test_loss']:>9.4f}")
        lines.append(f"{ensemble['kind'] + ' of ' + str(ensemble['size']):<24} "
                     f"{ensemble['test_accuracy']:>9.2%} {ensemble['test_loss']:>9.4f}")
    weights = "model.pt" if ensemble is None else f"model-1.pt...model-{ensemble['size']}.pt"
    lines.append(f"wrote {out}/metrics.json, history.csv, curves.png, checkpoint.pt, {weights}")
    return "\n".join(lines)
