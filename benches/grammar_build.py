"""What building the parser costs each process, beside what lark's pickle cache would save.

    python benches/grammar_build.py

archspec builds its LALR tables afresh in every process (`lang/parser.py`): lark's cache
(`Lark(cache=...)`) is a pickle at a predictable path in the shared temp folder, which
another local user could plant to run code as whoever runs archspec next. This prints the
best of 7 builds without the cache and with it, the cache file in a private temporary folder
of this run's own (the first build writes it, the others read it).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from unittest import mock

import lark

from archspec.lang import parser


def best_build(cache: str | bool) -> float:
    real = lark.Lark
    times = []
    for _ in range(7):
        parser._lark.cache_clear()
        with mock.patch.object(parser, "Lark", lambda *a, **k: real(*a, cache=cache, **k)):
            start = time.perf_counter()
            parser._lark()
            times.append(time.perf_counter() - start)
    return min(times) * 1000


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as private:
        uncached, cached = best_build(False), best_build(str(Path(private) / "grammar"))
    print(f"parser build: {uncached:.1f} ms without a cache (what every start pays), "
          f"{cached:.1f} ms from lark's pickle cache (not used), best of 7")
