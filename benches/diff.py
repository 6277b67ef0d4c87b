"""`archspec diff` speed: the comparison beside what it reuses (the two reports).

    python benches/diff.py

For chains of 1k and 4k layers: two equal networks, one with a layer changed near the start,
one with a layer inserted in the middle, and one of another shape throughout (CONV-RELU pairs
against plain CONVs, which no alignment can take in its stride). Prints the seconds to build
the two reports (`archspec table`'s work, twice) and those of `compare` on top: the alignment
(an edit-distance table up to 250,000 cells, a greedy linear pass beyond) and the entries.
"""

from __future__ import annotations

import time

from archspec.analysis.diff import Loaded, compare
from archspec.analysis.report import build_report
from archspec.lang.frontend import loads

HEADER = "network bench\ninput 8x16x16\n\n"


def spec(words: list[str]) -> Loaded:
    loaded = loads(HEADER + " - ".join([*words, "FC-10"]) + "\n", "bench.arch")
    assert loaded.ok and loaded.network is not None, loaded.render()[:2000]
    return Loaded("bench.arch", loaded.network, loaded.shapes)


def pairs(n: int) -> dict[str, tuple[list[str], list[str]]]:
    base = ["CONV3-8"] * n
    return {
        "equal": (base, base),
        "one changed": (base, ["CONV3-8"] * 3 + ["CONV(8, 3, pad=1, bias=false)"]
                        + ["CONV3-8"] * (n - 4)),
        "one inserted": (base, [*base[:n // 2], "BN", *base[n // 2:]]),
        "other shape": (base, ["CONV3-8", "RELU"] * (n // 2)),
    }


def main() -> None:
    print(f"{'pair':<14}{'layers':>8}{'reports s':>11}{'compare s':>11}{'entries':>9}")
    for n in (1_000, 4_000):
        for name, (a, b) in pairs(n).items():
            old, new = spec(a), spec(b)
            start = time.perf_counter()
            for side in (old, new):
                build_report(side.network, side.shapes)
            reports = time.perf_counter() - start
            start = time.perf_counter()
            report = compare(old, new)
            total = time.perf_counter() - start
            print(f"{name:<14}{n:>8,}{reports:>11.2f}{total - reports:>11.2f}"
                  f"{len(report.entries):>9,}")


if __name__ == "__main__":
    main()
