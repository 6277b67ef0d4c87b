"""Progress: a live bar on a terminal, one plain line per epoch otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR = 24
REDRAW_S = 0.1


class Progress:
    """Reports batches (terminal only, throttled) and epochs. Silent on ranks other than 0."""

    def __init__(self, epochs: int, stream: TextIO | None = None, enabled: bool = True,
                 prefix: str = "") -> None:
        self.stream = stream or sys.stdout
        self.enabled = enabled
        self.live = enabled and self.stream.isatty()
        self.epochs = epochs
        self.prefix = prefix
        self._last = 0.0

    def due(self) -> bool:
        """Whether a batch update would be drawn now (callers skip computing it otherwise)."""
        return self.live and time.perf_counter() - self._last >= REDRAW_S

    def batch(self, epoch: int, done: int, total: int, loss: float, accuracy: float,
              lr: float, images_per_s: float) -> None:
        self._last = time.perf_counter()
        filled = BAR * done // max(total, 1)
        bar = "#" * filled + "." * (BAR - filled)
        self.stream.write(f"\r{self.prefix}epoch {epoch}/{self.epochs} [{bar}] {done}/{total} "
                          f"loss {loss:.4f} acc {accuracy:6.2%} lr {lr:.3g} "
                          f"{images_per_s:,.0f} img/s\x1b[K")
        self.stream.flush()

    def epoch(self, row: dict[str, float]) -> None:
        if not self.enabled:
            return
        line = (f"{self.prefix}epoch {int(row['epoch'])}/{self.epochs}  "
                f"loss {row['train_loss']:.4f} acc {row['train_accuracy']:6.2%}  "
                f"val loss {row['val_loss']:.4f} acc {row['val_accuracy']:6.2%}  "
                f"lr {row['lr']:.3g}  {row['images_per_s']:,.0f} img/s")
        self.stream.write(("\r" + line + "\x1b[K" if self.live else line) + "\n")
        self.stream.flush()
