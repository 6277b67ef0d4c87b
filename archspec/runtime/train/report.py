"""A run's outputs: history.csv (one row per epoch), metrics.json and curves.png."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archspec.core.files import write_atomic
from archspec.core.json_text import strict_json

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn
    from matplotlib.figure import Figure

HISTORY_FIELDS = ("member", "epoch", "lr", "train_loss", "train_accuracy", "val_loss",
                  "val_accuracy", "images_per_s", "seconds")


def write_history(path: Path, rows: list[dict[str, float]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: f"{row[key]:.6g}" if isinstance(row[key], float) else row[key]
                         for key in HISTORY_FIELDS})
    write_atomic(path, buffer.getvalue())


def write_metrics(path: Path, metrics: dict[str, Any]) -> None:
    """Strict JSON: a figure that is not a finite number (the NaN loss of a diverged run) is
    written as null, never as the bare NaN or Infinity that JSON parsers reject."""
    write_atomic(path, strict_json(metrics) + "\n")


def plot_curves(path: Path, rows: list[dict[str, float]], title: str) -> None:
    """curves.png: `curves_figure` as a PNG."""
    buffer = io.BytesIO()
    curves_figure(rows, title).savefig(buffer, format="png", dpi=100)
    write_atomic(path, buffer.getvalue())


def curves_figure(rows: list[dict[str, float]], title: str) -> Figure:
    """Loss, accuracy and learning rate per epoch; one line per ensemble member."""
    # A figure on its own Agg canvas, as probe.py draws: pyplot would switch the whole
    # process's backend and keep the figure in its registry until closed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(13, 3.8), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 3)
    members = sorted({int(row["member"]) for row in rows})
    for member in members:
        mine = [row for row in rows if int(row["member"]) == member]
        epochs = [row["epoch"] for row in mine]
        tag = f" (member {member})" if len(members) > 1 else ""
        for axis, key in ((axes[0], "loss"), (axes[1], "accuracy")):
            axis.plot(epochs, [row[f"train_{key}"] for row in mine], label=f"train{tag}")
            axis.plot(epochs, [row[f"val_{key}"] for row in mine], "--", label=f"val{tag}")
        axes[2].plot(epochs, [row["lr"] for row in mine], label=f"lr{tag}")
    for axis, name in zip(axes, ("loss", "accuracy", "learning rate"), strict=True):
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs: 1, 2, not 1.5
        axis.set_title(name)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    axes[1].legend(fontsize="small")
    axes[2].set_yscale("log")
    figure.suptitle(title)
    return figure
