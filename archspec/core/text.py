"""Text formatting shared by every view: counts, metric and binary sizes, shapes, columns."""

from __future__ import annotations

import math
from collections.abc import Container, Sequence


def count(n: int) -> str:
    return f"{n:,}"


def many(n: int, noun: str) -> str:
    """`1 channel`, `3 channels`: a count and its noun, singular or plural."""
    return f"{n} {noun}{'s' * (n != 1)}"


def significant(x: float, digits: int) -> str:
    """`x` (> 0) to `digits` significant figures: 150.5 → 150, 3.21 → 3.2, 0.5 → 0.50."""
    places = digits - 1 - math.floor(math.log10(x))
    # Rounding may carry into a new digit (0.9996 → 1.00): count places from the result.
    places = digits - 1 - math.floor(math.log10(round(x, places)))
    return f"{round(x, places):.{max(places, 0)}f}"


def metric(n: float, digits: int = 3) -> str:
    """`86.7M`, `1.85G`, `150K`: powers of 1000, to `digits` significant figures; a count
    under 1000 as it is."""
    if n < 1000:
        return str(n)
    rounded = float(significant(n, digits))  # 999,600 → 1,000,000: `1.00M`, not `1000K`
    for suffix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6)):
        if rounded >= scale:
            return significant(n / scale, digits) + suffix
    return significant(n / 1e3, digits) + "K"


def binary(n: int) -> str:
    """Bytes in powers of 1024: `553.43 MiB`, `10.28 GiB`."""
    for suffix, power in (("TiB", 4), ("GiB", 3), ("MiB", 2), ("KiB", 1)):
        if n >= 1024**power:
            return f"{n / 1024**power:.2f} {suffix}"
    return f"{n} B"


def shape_text(shape: Sequence[int]) -> str:
    """`64x56x56`, or `4096` for a flat vector."""
    return "x".join(str(d) for d in shape)


def align(rows: Sequence[Sequence[str]], right: Container[int]) -> list[str]:
    """Rows as text columns two spaces apart, column i right-aligned when i is in `right`
    (the table, the probe report and the generated module's docstring all use it)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                      for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
            for row in rows]
