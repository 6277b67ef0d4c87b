"""Writing files whole or not at all: every file archspec writes goes through `write_atomic`,
a set of them (a build) through `replace_set`."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def write_atomic(path: str | Path, data: str | bytes | Iterable[str]) -> None:
    """Write a file whole or not at all: a temporary file beside it, then a rename. `data`
    may be text in pieces (`views.table.render_pieces`), each written as it comes."""
    target = Path(path)
    try:
        _write(target, data)
    except OSError as exc:
        # Name the file asked for, not the temporary one or the folder the error came from.
        raise type(exc)(exc.errno, exc.strerror, str(target)) from None


def _write(target: Path, data: str | bytes | Iterable[str]) -> None:
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "it is a directory", str(target))
    pieces = [data] if isinstance(data, str | bytes) else data
    if target.exists() and not target.is_file():
        # A device or a pipe (`-o /dev/stdout`): written in place; a rename would replace it.
        with target.open("wb") as handle:
            _put(handle, pieces)
        return
    if target.is_symlink():
        target = target.resolve()  # replace the file the link names, not the link
    target.parent.mkdir(parents=True, exist_ok=True)
    import tempfile  # here: `table` and `check` writing to stdout never pay its ~0.5 ms

    try:  # a file replaced keeps its permissions; a new one gets what open() would give it
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            _put(handle, pieces)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _put(handle: BinaryIO, pieces: Iterable[str | bytes]) -> None:
    for piece in pieces:
        handle.write(piece.encode("utf-8") if isinstance(piece, str) else piece)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class OutputSetError(Exception):
    """A folder a set of outputs cannot replace its old set in."""


@contextmanager
def replace_set(out: Path, names: Iterable[str]) -> Iterator[Path]:
    """Replace the files `names` in folder `out` as one set: the body writes the new set into
    the staging folder it is given; on a normal exit that folder, with hard links to the other
    files of `out`, takes `out`'s place in one atomic exchange (renameat2). A kill at any
    moment leaves `out` holding the old set or the new one, never a mix. `out` may hold other
    files (other networks' builds), not folders."""
    import shutil  # here, as tempfile: ~2.5 ms of imports a command not writing a set skips
    import tempfile

    owned = set(names)
    if out.exists() and not out.is_dir():
        raise OutputSetError(f"cannot write into {out}: it is not a directory")
    others = sorted(entry for entry in out.iterdir() if entry.name not in owned) \
        if out.is_dir() else []
    folders = [entry.name for entry in others if entry.is_dir() or not entry.is_file()]
    if folders:
        raise OutputSetError(f"cannot write into {out}: it holds {', '.join(folders[:3])}, "
                             "not only files; a build folder is replaced as a whole, so "
                             "choose a folder of its own")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".new"))
    except OSError as exc:
        raise OutputSetError(f"cannot write into {out}: {exc.strerror or exc}") from None
    try:
        os.chmod(stage, stat.S_IMODE(out.stat().st_mode) if out.is_dir() else 0o777 & ~_umask())
        yield stage
        for entry in others:
            try:
                os.link(entry, stage / entry.name)
            except OSError:  # a file system without hard links
                shutil.copy2(entry, stage / entry.name)
        if not out.exists():
            os.rename(stage, out)
        elif not _exchange(stage, out):
            # No atomic exchange here: move the old set aside, then the new one in.
            aside = stage.with_suffix(".old")
            os.rename(out, aside)
            os.rename(stage, out)
            stage = aside
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    import ctypes

    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second),
                 rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(second))
