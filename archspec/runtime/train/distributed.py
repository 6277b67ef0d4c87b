"""Running on several processes: torchrun launch, process groups, and the few collectives used.

`archspec train --nproc N` re-runs itself under `python -m torch.distributed.run`; each
process then finds RANK / WORLD_SIZE / LOCAL_RANK in its environment (also when started by a
multi-node `torchrun` line), joins the group (gloo on CPU, nccl on GPU) and trains its shard.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def launched() -> bool:
    """True inside a process started by torchrun."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def launch(argv: Sequence[str], nproc: int, env: dict[str, str] | None = None) -> int:
    """Run `archspec ARGV` as `nproc` processes on this machine under torchrun."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", "-m", "archspec", *argv]
    return subprocess.call(command, env=env)


def join(device: str) -> World:
    """Join the process group torchrun set up; a single process is a world of one."""
    if not launched():
        return World()
    world = World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]),
                  int(os.environ.get("LOCAL_RANK", "0")))
    if world.distributed and not dist.is_initialized():
        if device == "cuda":
            torch.cuda.set_device(world.local_rank)  # nccl's collectives use the current GPU
        dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
    return world


def leave(world: World) -> None:
    """Leave the group together: a rank that tears down while another still talks to it
    makes gloo abort the other."""
    if world.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def all_sum(world: World, values: torch.Tensor) -> torch.Tensor:
    if world.distributed:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def from_main(world: World, values: torch.Tensor) -> torch.Tensor:
    """Rank 0's values on every rank (so every rank takes the same decisions)."""
    if world.distributed:
        dist.broadcast(values, src=0)
    return values


def gather(world: World, obj: Any) -> list[Any]:
    """Every rank's object, in rank order (on every rank)."""
    if not world.distributed:
        return [obj]
    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, obj)
    return out
