"""Run folders: one run writes a folder at a time (a lock file), and a run is replaced only
with `--force`."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK = ".archspec-run.lock"
# Set by `train --nproc N` for its torchrun workers: the launcher holds this folder's lock.
HELD = "ARCHSPEC_RUN_LOCK_HELD"
# What a run writes besides its plan; `--force` removes them before a new run starts.
OUTPUTS = ("checkpoint.pt", "history.csv", "metrics.json", "curves.png", "model.pt")


class RunFolderError(Exception):
    """A run folder this run may not write: not a folder, in use, or holding another run."""


def outputs(out: Path) -> list[Path]:
    """The run outputs present in `out` (model-N.pt of an ensemble included)."""
    if not out.is_dir():
        return []
    found = [out / name for name in OUTPUTS if (out / name).exists()]
    return found + sorted(out.glob("model-*.pt"))


@contextmanager
def claim(out: Path, *, resume: bool, force: bool, plan_file: str) -> Iterator[None]:
    """Hold `out` for one run: create it, lock it (another run into it fails at once), and
    refuse a folder that holds a run unless it is resumed (`resume`) or replaced (`force`,
    which removes the old outputs first). A folder where the run's lock, plan (`plan_file`)
    or an output is a directory is refused first, before anything in it is written."""
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"cannot train into {out}: it is not a directory")
    folders = [path.name for path in [out / LOCK, out / plan_file, *outputs(out)]
               if path.is_dir()]
    if folders:
        raise RunFolderError(f"cannot train into {out}: {', '.join(folders)} "
                             f"{'is a directory' if len(folders) == 1 else 'are directories'}"
                             ", where the run writes a file")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunFolderError(f"cannot train into {out}: {exc.strerror or exc}") from None
    with _locked(out):
        present = outputs(out)
        if present and not resume:
            if not force:
                names = ", ".join(path.name for path in present)
                raise RunFolderError(f"{out} holds a run ({names}); continue it with --resume, "
                                     "replace it with --force, or choose another --out")
            for path in present:
                path.unlink()
        yield


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    if os.environ.get(HELD) == str(out.resolve()):
        yield  # a torchrun worker of `train --nproc`: its launcher holds the lock
        return
    path = out / LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise RunFolderError(f"cannot lock {path}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise RunFolderError(f"{out} is in use by another run{who}; wait for it to end "
                                 "or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def hold_for_workers(out: Path) -> dict[str, str]:
    """The environment that tells this process's torchrun workers the lock is held."""
    return {**os.environ, HELD: str(out.resolve())}
