"""What the parser costs a process: from the stored tables, built, and from lark's cache.

    python benches/grammar_build.py

archspec reads its LALR tables from `lang/tables.py` (its runtime, `lang/lalr.py`, runs
them) and has lark build them only when that module is stale (`lang/parser.py`); this is what a
build costs. lark's cache (`Lark(cache=...)`) is a pickle at a predictable path in the shared
temp folder, which another local user could plant to run code as whoever runs archspec next.
This prints the best of 7 loads of the runtime from the stored tables (the module imported
again from its bytecode each time), and of 7 builds without
lark's cache and with it, the cache file in a private temporary folder of this run's own (the
first build writes it, the others read it).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import lark

from archspec.lang import parser


def best_build(cache: str | bool) -> float:
    real = lark.Lark
    grammar = parser.grammar_text()
    times = []
    for _ in range(7):
        with mock.patch.object(lark, "Lark", lambda *a, **k: real(*a, cache=cache, **k)):
            start = time.perf_counter()
            parser.build_tables(grammar)
            times.append(time.perf_counter() - start)
    return min(times) * 1000


def best_load() -> float:
    times = []
    for _ in range(7):
        parser._tables.cache_clear()
        parser._runtime.cache_clear()
        sys.modules.pop("archspec.lang.tables", None)
        start = time.perf_counter()
        parser._runtime()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as private:
        uncached, cached = best_build(False), best_build(str(Path(private) / "grammar"))
    print(f"parser: {best_load():.1f} ms from lang/tables.py (what a start pays), "
          f"{uncached:.1f} ms built from the grammar (stale tables), {cached:.1f} ms "
          "from lark's pickle cache (not used), best of 7")
