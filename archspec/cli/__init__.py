"""The `archspec` command line: one sub-command per module of this package (check.py, ...)."""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import io
import os
import sys
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import TextIO

from archspec.cli.options import Arguments, Options

# Each module has HELP, add_arguments(options) and run(args) -> exit code, and may say
# PAUSE_COLLECTOR = True (main). Imported on demand, so `archspec table` never pays for the
# modules of `train` or `draw`.
COMMANDS: tuple[str, ...] = ("check", "compile", "diff", "draw", "import", "probe", "table",
                             "train")


def command_module(name: str) -> ModuleType:
    return importlib.import_module(f"archspec.cli.{name}")


# What commands hand to `keep` where run() runs them: never freed, as the process ends
# without the interpreter's teardown (`_end`). None where a program calls main().
_kept: list[object] | None = None


def keep(*objects: object) -> None:
    """Keep what a command made alive until the process ends, where run() runs the command:
    the process then ends with os._exit and never frees it, so freeing it one object at a
    time as the command returns is wasted (a 100k-layer spec and its report are ~1M objects:
    ~0.1-0.2 s of a 3 s `table --format json`). They are handed to gc.freeze() too, as
    start-up's objects are: made with the collector paused, they would otherwise all be in
    its youngest generation when it runs again, and its next pass would scan them. A program
    that calls main() frees them as usual: nothing is kept."""
    if _kept is not None:
        _kept.extend(objects)
        gc.freeze()


def command_options(name: str) -> Options:
    """Command `name`'s options, as its module declares them."""
    options = Options()
    command_module(name).add_arguments(options)
    return options


def run() -> int:
    """The `archspec` process (its console script, `python -m archspec`): main() on the
    command line, once the command's module is imported and everything start-up made is
    handed to gc.freeze(). Those objects (pydantic's and archspec's modules, classes and
    schemas, the registry: ~26,000 the collector tracks) live as long as the process, so the
    collector need not scan them again in the command's own collections: ~20 ms of CPU less
    for `archspec table` (docs/table.md, Speed). Not main()'s doing: a program that calls
    main() keeps its collector as it was. The process then ends without the interpreter's
    teardown where nothing waits for it (`_end`), and what the command made and handed to
    `keep` is not freed before it. Where run() returns instead (the interpreter ends the
    process) or raises (argparse's SystemExit), that is freed as it returns, and a main()
    called after it keeps nothing, as a program's."""
    global _kept
    argv = sys.argv[1:]
    collecting = gc.isenabled()
    gc.disable()  # while start-up makes them (~8 ms of collections over them otherwise)
    try:
        import archspec.cli.common  # noqa: F401  # what main() needs, whatever the command

        if argv and argv[0] in COMMANDS:
            command_module(argv[0])
        gc.freeze()
    finally:
        if collecting:
            gc.enable()
    _kept = []  # freed by the end of the process (`keep`)
    try:
        return _end(main(argv))
    finally:  # reached only where the process goes on: _end did not end it
        _kept = None


def _end(code: int) -> int:
    """End the process with `code` at once, where nothing waits for the interpreter's
    teardown: no other thread running and no `atexit` handler registered (torch registers
    some, as do coverage and `weakref.finalize`) but logging's, which this runs itself
    (`logging` registers its shutdown when imported: by asyncio, which older
    typing_extensions import under pydantic). The teardown frees every module, class and
    object one by one (pydantic's and archspec's: ~3 ms of `archspec table`'s ~120) and runs
    the collector over what is left, only for the memory to be handed back whole. main()
    flushed standard output (a failed write is reported there); both streams are flushed
    again here, and a flush that fails leaves the ending to the interpreter. Else `code` is
    returned, for `sys.exit`."""
    logging = sys.modules.get("logging")
    if atexit._ncallbacks() > (logging is not None) or threading.active_count() > 1:
        return code
    try:
        if logging is not None:
            logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return code
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Every failure ends here as one `archspec: error:` line and a non-zero
    exit code, never a traceback: usage errors, files that cannot be read or written, memory,
    an optional library not installed (naming the extra that brings it), and standard output
    cut short (a full disk, a file-size limit, a closed pipe)."""
    # Here, not at the module's top: importing archspec.cli imports nothing heavy, so that
    # run() imports all of it with the collector paused.
    from archspec.cli.common import EXIT_PIPE, EXIT_USAGE, UsageError, missing_extra
    from archspec.lang.frontend import collector_paused

    # No pydantic plugins in archspec's process: pydantic looks for them by reading the entry
    # points of every installed distribution when it builds its first validator (a `train:`
    # section's), ~4 ms here and more the more is installed. A value of the user's own is
    # kept (an empty one lets pydantic load them).
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    argv = list(sys.argv[1:] if argv is None else argv)
    only = argv[0] if argv and argv[0] in COMMANDS else None
    stdout = sys.stdout
    sys.stdout = _checked(stdout)
    try:
        args = _read(argv, only)  # --help and --version write here
        # A command that reads a spec, works on it and ends makes hundreds of thousands of
        # small acyclic objects for a large one: it runs with the cycle collector paused, and
        # what it made is freed (by reference counting) as it returns, before the collector
        # runs again. Paused only around the front end, the collector's first pass after it
        # scanned every object still alive: 0.19 s of CPU of the 100k-layer `table --format
        # json`.
        only = args.command
        pause = getattr(command_module(only), "PAUSE_COLLECTOR", False)
        with collector_paused() if pause else contextlib.nullcontext():
            code = int(args.run(args))
        sys.stdout.flush()  # a write that fails (ENOSPC, EFBIG, EPIPE) fails here, not at exit
        return code
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except ModuleNotFoundError as exc:
        named = missing_extra(exc)
        if named is None:
            raise
        return _fail(f"`archspec {only}` needs {exc.name}, which the {named} extra "
                     f"installs: pip install 'archspec[{named}]'", EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        # The reader left (`archspec check --format json | head -c 10`): stop quietly, as a
        # process killed by SIGPIPE would (128 + 13).
        _drop_stdout()
        return EXIT_PIPE
    except OSError as exc:
        # Calls on a named file carry its name; one without is a write to standard output.
        if exc.filename is None:
            _drop_stdout()
            return _fail(f"cannot write standard output: {exc.strerror or exc}", EXIT_USAGE)
        return _fail(f"{exc.filename}: {exc.strerror or exc}", EXIT_USAGE)
    except MemoryError:
        return _fail("out of memory", EXIT_USAGE)
    finally:
        checked, sys.stdout = sys.stdout, stdout
        if checked is not stdout and isinstance(checked, io.TextIOWrapper):
            with contextlib.suppress(OSError, ValueError):
                checked.detach().detach()  # leave the file open: it is the process's stdout


def _read(argv: list[str], only: str | None) -> Arguments:
    """The command line as argparse reads it: read without argparse where the line is plain
    (cli/options.py), else by argparse, which writes help and --version and refuses a line
    with its usage (SystemExit)."""
    if only is not None:
        args = command_options(only).read(argv[1:])
        if args is not None:
            args.command, args.run = only, command_module(only).run
            return args
    from archspec.cli.parser import parse

    return parse(argv, only)


def _checked(stdout: TextIO) -> TextIO:
    """Standard output whose short writes raise. Unbuffered (PYTHONUNBUFFERED, -u), Python
    writes text straight to the file and drops what a short write (a file-size limit) left
    out; a buffered writer over the same file retries it and raises on failure."""
    raw = getattr(stdout, "buffer", None)
    if not isinstance(raw, io.FileIO):
        return stdout
    return io.TextIOWrapper(io.BufferedWriter(raw), encoding=stdout.encoding,
                            errors=stdout.errors, line_buffering=True)


def _fail(message: str, code: int) -> int:
    print(f"archspec: error: {message}", file=sys.stderr)
    return code


def _drop_stdout() -> None:
    """Point standard output at /dev/null, so the interpreter's last flush of what is still
    buffered cannot fail again (and print a traceback) after the error was reported."""
    with contextlib.suppress(OSError, ValueError):  # ValueError: no file descriptor (capture)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)

