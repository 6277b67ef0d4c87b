"""Front-end speed: parse + validate (lower, shapes) generated specs of 1k, 10k and 100k layers.

    python benches/parse.py [--repeat N]

Two generated forms per size: every layer written out (the parser's work grows with the file),
and one `[...]*N` repeat (the lowering's work grows with the expansion). Prints the best time
per size (of N runs, ten times as many for 1k layers, whose times are short and noisy) and
the growth ratio to the previous size; linear growth is a ratio near 10.

Then what a mistake costs beside the valid spec it spoils: one error inside a 99,999-copy
repeat is found once, and blocks the body never calls are checked at the cost of their text.
"""

from __future__ import annotations

import argparse
import time

from archspec.lang.frontend import loads

HEADER = "network bench\ninput 8x16x16\n"
UNIT = ("CONV3-8", "BN", "RELU", "POOL1")  # shape-preserving: 8x16x16 throughout


def written(layers: int) -> str:
    """Every layer written out, ten a line (consecutive lines join into one chain)."""
    words = [UNIT[i % len(UNIT)] for i in range(layers - 2)] + ["FC-10"]  # + implied flatten
    lines = [" - ".join(words[i:i + 10]) for i in range(0, len(words), 10)]
    return HEADER + "\n".join(lines) + "\n"


def repeated(layers: int) -> str:
    """One repeat of two layers, expanded by the lowering, then the flatten and the FC."""
    return HEADER + f"[CONV3-8 - RELU]*{(layers - 2) // 2} - FC-10\n"


def best(text: str, repeat: int) -> tuple[float, int]:
    times = []
    count = 0
    for _ in range(repeat):
        start = time.perf_counter()
        spec = loads(text, "bench.arch")
        times.append(time.perf_counter() - start)
        if not spec.ok or spec.network is None:
            raise SystemExit(f"generated spec is invalid:\n{spec.render()[:2000]}")
        count = len(spec.network.layers)
    return min(times), count


# (label, spec text, whether it is valid): each mistake beside the spec it spoils
MISTAKES = (
    ("valid [RELU]*99999", HEADER + "[RELU]*99999\n", True),
    ("error [QQQ]*99999", HEADER + "[QQQ]*99999\n", False),
    ("20 blocks called", HEADER + "".join(f"block b{i}: [FC-2]*4999\n" for i in range(20))
     + " - ".join(f"b{i}" for i in range(20)) + "\n", True),
    ("20 blocks unused", HEADER + "".join(f"block b{i}: [FC-2]*4999 - QQ{i}\n"
                                          for i in range(20)) + "FC-2\n", False),
)


def mistakes(repeat: int) -> None:
    print(f"\n{'spec':<22}{'seconds':>10}{'findings':>10}")
    for label, text, valid in MISTAKES:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            spec = loads(text, "bench.arch")
            times.append(time.perf_counter() - start)
        if spec.ok != valid:
            raise SystemExit(f"{label}: expected {'valid' if valid else 'errors'}:\n"
                             f"{spec.render()[:2000]}")
        print(f"{label:<22}{min(times):>10.3f}{len(spec.diagnostics):>10}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (best is shown)")
    args = parser.parse_args()
    loads(HEADER + "FC-10\n")  # build the grammar once, outside the timings
    print(f"{'form':<10}{'layers':>9}{'bytes':>10}{'seconds':>10}{'layers/s':>12}{'growth':>8}")
    for form, make in (("written", written), ("repeated", repeated)):
        previous = None
        for size in (1_000, 10_000, 100_000):
            text = make(size)
            seconds, count = best(text, args.repeat * max(1, 10_000 // size))
            growth = f"{seconds / previous:.1f}x" if previous else "-"
            print(f"{form:<10}{count:>9,}{len(text):>10,}{seconds:>10.3f}"
                  f"{count / seconds:>12,.0f}{growth:>8}")
            previous = seconds
    mistakes(args.repeat)


if __name__ == "__main__":
    main()
