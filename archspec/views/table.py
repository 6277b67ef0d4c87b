"""Views of a Report: text, markdown, CSV and JSON, in three styles. Formatting only: every
number comes from `archspec.analysis.report`, none is computed here."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from archspec.analysis.report import Memory, Report, Row
from archspec.catalog import OPTIMIZER_STATE
from archspec.core.diagnostics import printable
from archspec.core.text import align, binary, count, metric, shape_text

Format = Literal["text", "markdown", "csv", "json"]
Style = Literal["default", "cs231n", "torchinfo"]

_RULE = "=" * 90


def render(report: Report, fmt: Format = "text", style: Style = "default",
           fold: bool = False, rows: Sequence[Row] | None = None) -> str:
    """The report in a format; `style` shapes text and markdown, CSV and JSON hold all data.
    `rows` replaces the report's (the hierarchy folded to a depth: `report.at_depth`)."""
    return "".join(render_pieces(report, fmt, style, fold, rows))


def render_pieces(report: Report, fmt: Format = "text", style: Style = "default",
                  fold: bool = False, rows: Sequence[Row] | None = None) -> Iterator[str]:
    """`render` in pieces, made as they are taken: JSON a chunk of rows at a time (a writer
    need not hold a 100k-layer document whole), the other formats in one piece."""
    if rows is None:
        rows = report.folded if fold else report.rows
    if fmt == "json":
        from archspec.views.table_json import to_json  # the other formats never import json

        yield from to_json(report, rows)
    else:
        yield _render(report, fmt, style, rows)


def _render(report: Report, fmt: Format, style: Style, rows: Sequence[Row]) -> str:
    if fmt == "csv":
        return to_csv(report, rows)
    markdown = fmt == "markdown"
    if style == "cs231n":
        return cs231n(report, markdown)
    if style == "torchinfo":
        return torchinfo(report, markdown)
    return default(report, rows, markdown)


# --- numbers -------------------------------------------------------------------------------

def hwc(shape: Sequence[int]) -> tuple[int, ...]:
    """The CS231n slides' order: HxWxC for a map, 1x1xN for a vector."""
    return (shape[1], shape[2], shape[0]) if len(shape) == 3 else (1, 1, *shape)


def pair(value: tuple[int, int] | None) -> str:
    """A receptive field or jump, the same in every view: `3` when square, `3x5` when not,
    `-` where there is none (a flat input has no pixels)."""
    if value is None:
        return "-"
    return str(value[0]) if value[0] == value[1] else shape_text(value)


# --- default ---------------------------------------------------------------------------------

_COLUMNS = ("name", "layer", "output", "params", "formula", "activations", "MACs", "RF", "jump",
            "training")
_NUMERIC = {"params", "activations", "MACs", "RF", "jump", "training"}


def _cells(report: Report, rows: Sequence[Row]) -> list[list[str]]:
    first = ["input", "INPUT", shape_text(report.input.shape), "0", "",
             count(report.input.activations), "0", pair(report.input.receptive_field),
             pair(report.input.jump), binary(report.input.training_bytes)]
    return [first, *([r.name, r.written + "".join(f" +{k}" for k in r.folds),
                      shape_text(r.output_shape), count(r.params), r.formula,
                      count(r.activations) if r.activations else "-", metric(r.macs),
                      pair(r.receptive_field), pair(r.jump), binary(r.training_bytes)]
                     for r in rows)]


def default(report: Report, rows: Sequence[Row], markdown: bool) -> str:
    cells = _cells(report, rows)
    if markdown:
        lines = ["| " + " | ".join(_COLUMNS) + " |",
                 "|" + "|".join("---:" if c in _NUMERIC else "---" for c in _COLUMNS) + "|"]
        lines += ["| " + " | ".join(map(markdown_text, row)) + " |" for row in cells]
        table = "\n".join(lines)
        summary = "\n".join(f"- {line}" for line in _summary(report))
        notes = "\n".join(f"- {a}" for a in report.memory.assumptions)
        return (f"## {_title(report, markdown=True)}\n\n{table}\n\n{summary}\n\n"
                f"Assumptions:\n\n{notes}\n")
    head, *body = align([list(_COLUMNS), *cells],
                        {i for i, name in enumerate(_COLUMNS) if name in _NUMERIC})
    rule = "-" * max(len(line) for line in (head, *body))
    summary = "\n".join(_summary(report))
    notes = "\n".join(f"  - {a}" for a in report.memory.assumptions)
    rows_text = "\n".join(body)
    return (f"{_title(report)}\n{rule}\n{head}\n{rule}\n{rows_text}\n"
            f"{rule}\n{summary}\nAssumptions:\n{notes}\n")


def _title(report: Report, markdown: bool = False) -> str:
    """`name: description`; the description is free text from the file, escaped for where it
    goes (markup characters backslashed, so it cannot open a link, an image or HTML)."""
    if not report.description:
        return report.network
    text = markdown_text(report.description) if markdown else printable(report.description)
    return f"{report.network}: {text}"


def markdown_text(text: str) -> str:
    """Text inside markdown (from a file, or a formula's `*`): escaped (`printable`), and the
    characters that could start markup backslashed, so it cannot open emphasis, a link, an
    image, HTML or a table cell."""
    return _MARKDOWN.sub(r"\\\g<0>", printable(text))


# What could start markup inside a heading: emphasis, code, links and images, HTML, a table
# cell's edge, math; other punctuation (`-`, `(`) means nothing there and stays plain.
_MARKDOWN = re.compile(r"[\\`*_\[\]<>!|#~&$]")


def _summary(report: Report) -> list[str]:
    t, m = report.totals, report.memory
    lines = [
        f"params: {count(t.params)} = weights {count(t.params_no_bias)} + biases "
        f"{count(t.params - t.params_no_bias)}; trainable {count(t.trainable_params)}, "
        f"buffers {count(t.buffers)} (batch-norm running statistics)",
        f"activations: {count(t.activations)} values per sample, the input included "
        f"({binary(t.activation_bytes)} as {m.dtype}); '-' = runs in place or is a view",
        f"MACs: {count(t.macs)} per sample ({metric(t.macs)}), weights only, biases not "
        f"counted; FLOPs = 2 x MACs = {metric(t.flops)}",
        f"memory at batch {m.batch} (from {m.batch_source}), {_precision(m)}, "
        f"{OPTIMIZER_STATE[m.optimizer].title} (from {m.optimizer_source}):",
        f"  training  {binary(m.training_bytes)} = params {binary(m.params_bytes)} + gradients "
        f"{binary(m.gradients_bytes)} + optimizer state {binary(m.optimizer_bytes)} + buffers "
        f"{binary(m.buffers_bytes)} + saved for backward {binary(m.saved_bytes)}"
        + (f" + gradient scaler {m.scaler_bytes} B" if m.scaler_bytes else "")
        + (f" + the largest {_SEGMENT[m.checkpoint == 'blocks']}'s saved tensors while it "
           f"is recomputed {binary(m.segment_peak_bytes)}" if m.checkpoint else ""),
        _peak_line(m),
        *([f"  checkpointed ({_checkpoint(m)}): saved for backward keeps "
           f"{_SEGMENTS[m.checkpoint == 'blocks']}; backward runs "
           f"{metric(m.recompute_macs)} MACs per sample of forward again"]
          if m.checkpoint else []),
        *([f"  saved for backward {binary(m.saved_bytes)} = activations, masks, indices and "
           f"the input {binary(m.activations_bytes)} + autocast's weight copies "
           f"{binary(m.autocast_copies_bytes)}; during the forward autocast also caches "
           f"{binary(m.autocast_cache_bytes)} of cast weights and biases"] if m.amp else []),
        f"  inference {binary(m.inference_bytes)} = params {binary(m.params_bytes)} + buffers "
        f"{binary(m.buffers_bytes)} + peak activations {binary(m.inference_activations_bytes)}",
    ]
    if m.fit is not None:
        lines.append(f"  fits in {binary(m.fit.budget_bytes)}: training "
                     f"{_largest(m.fit.training_batch)}, inference "
                     f"{_largest(m.fit.inference_batch)}")
    return lines


# What a checkpointed segment is, by whether it is a block call: (every N, blocks).
_SEGMENT = ("segment", "block call")
_SEGMENTS = ("the input of each segment but the last, which runs plain",
             "each outermost block call's input")


def _checkpoint(m: Memory) -> str:
    """`blocks`, or `every 4 layers`: the checkpointing planned, as table's option says it,
    and where it came from."""
    what = "blocks" if m.checkpoint == "blocks" else f"every {m.checkpoint} layers"
    return f"{what}, from {m.checkpoint_source}"


def _peak_line(m: Memory) -> str:
    p = m.training_peak
    where = {"step": "in the optimizer step", "loss": "at the loss"}.get(
        p.phase, f"in {p.phase} at {p.layer}")
    return (f"  training-step peak {binary(p.bytes)} ({where}) = params, buffers and "
            f"optimizer state {binary(p.state_bytes)} + activations and kept tensors "
            f"{binary(p.activations_bytes)} + activation gradients "
            f"{binary(p.activation_gradients_bytes)} + weight gradients "
            f"{binary(p.weight_gradients_bytes)}"
            + (f" + temporaries {binary(p.temporaries_bytes)}" if p.temporaries_bytes else ""))


def _precision(m: Memory) -> str:
    if m.amp is not None:
        return f"{m.amp} autocast on {m.amp_device} (from {m.amp_source}), float32 parameters"
    return m.dtype if m.dtype == "float32" else f"{m.dtype} throughout (pure low precision)"


def _largest(batch: int) -> str:
    return f"up to batch {batch:,}" if batch else "not even at batch 1"


# --- cs231n ----------------------------------------------------------------------------------

def cs231n(report: Report, markdown: bool) -> str:
    """The CS231n VGG16 table: one line per layer that makes a new tensor (ReLU and dropout run
    in place and are left out, as on the slide), shapes HxWxC, weights without biases. An
    implicit layer that makes a tensor (the `batchnorm` header's BN) has its own line, as an
    explicit one does; an FC's formula names the map its implied flatten reads (7*7*512)."""
    lines = [(f"INPUT: [{shape_text(hwc(report.input.shape))}]", _memory(report.input.shape,
                                                                  report.input.activations), "0")]
    own = {r.name: r for r in report.rows}
    for group in report.folded:
        for r in (own[name] for name in group.members):
            if r.activations:
                formula = group.weights_formula if r.name == group.name else r.weights_formula
                lines.append((f"{r.written}: [{shape_text(hwc(r.output_shape))}]",
                              _memory(r.output_shape, r.activations),
                              _weights(formula, r.weights)))
    t, m = report.totals, report.memory
    total = (f"TOTAL memory: {metric(t.activations)} * {m.bytes_per_value} bytes ~= "
             f"{metric(t.activation_bytes, 2)}B / image (only forward! ~*2 for bwd)")
    params = (f"TOTAL params: {metric(t.params_no_bias)} parameters (not counting biases; "
              f"{count(t.params)} with them)")
    if markdown:
        table = ["| layer | memory | params |", "|---|---:|---:|"]
        table += ["| " + " | ".join(map(markdown_text, line)) + " |" for line in lines]
        return "\n".join([*table, "", markdown_text(total), "", params]) + "\n"
    return "\n".join([*(f"{a}  memory: {b}  params: {c}" for a, b, c in lines), "", total,
                      params]) + "\n"


def _weights(formula: str, weights: int) -> str:
    """`(3*3*3)*64 = 1,728`; a count that is its own formula (BN's one scale per channel,
    `8`) once, not `8 = 8`; `0` for a layer without weights."""
    if not weights:
        return "0"
    return count(weights) if formula == str(weights) else f"{formula} = {count(weights)}"


def _memory(shape: Sequence[int], activations: int) -> str:
    if len(shape) == 3 and activations == math.prod(shape):
        return f"{'*'.join(str(d) for d in hwc(shape))}={metric(activations, 2)}"
    return str(activations)


# --- torchinfo -------------------------------------------------------------------------------

def torchinfo(report: Report, markdown: bool) -> str:
    """torchinfo 1.8's footer, figure for figure (MB = 10^6 bytes)."""
    ti = report.torchinfo
    unit, value = _readable(ti.total_mult_adds)
    items = [
        ("Total params", count(ti.total_params)),
        ("Trainable params", count(ti.trainable_params)),
        ("Non-trainable params", count(ti.non_trainable_params)),
        (f"Total mult-adds ({unit})", value),
        ("Input size (MB)", f"{ti.input_bytes / 1e6:0.2f}"),
        ("Forward/backward pass size (MB)", f"{ti.forward_backward_bytes / 1e6:0.2f}"),
        ("Params size (MB)", f"{ti.params_bytes / 1e6:0.2f}"),
        ("Estimated Total Size (MB)", f"{ti.total_bytes / 1e6:0.2f}"),
    ]
    title = (f"{report.network} under torchinfo 1.8's conventions, input size "
             f"{tuple(ti.input_shape)}")
    if markdown:
        return "\n".join([f"{markdown_text(title)}:", "", "| | |", "|---|---:|",
                          *(f"| {k} | {v} |" for k, v in items)]) + "\n"
    head = "\n".join(f"{k}: {v}" for k, v in items[:4])
    tail = "\n".join(f"{k}: {v}" for k, v in items[4:])
    return f"{_RULE}\n{title}\n{_RULE}\n{head}\n{_RULE}\n{tail}\n{_RULE}\n"


def _readable(n: int) -> tuple[str, str]:
    """torchinfo's to_readable and format_output_num: T, G or M, two decimals unless whole."""
    unit, scale = next(((u, s) for u, s in (("T", 1e12), ("G", 1e9)) if n >= s), ("M", 1e6))
    value = n / scale
    return unit, f"{int(value):,d}" if value.is_integer() else f"{value:,.2f}"


# --- data ------------------------------------------------------------------------------------

def layer_data(r: Row) -> dict[str, Any]:
    """A row's data: its shapes, fields and members as tuples (JSON arrays), `folds` a list."""
    return {"name": r.name, "kind": r.kind, "written": r.written, "folds": list(r.folds),
            "output_shape": r.output_shape, "params": r.params,
            "params_no_bias": r.weights, "biases": r.biases, "buffers": r.buffers,
            "formula": r.formula, "activations": r.activations,
            "activation_bytes": r.activation_bytes, "macs": r.macs,
            "flops": r.flops,
            "receptive_field": r.receptive_field, "jump": r.jump,
            "implicit": r.implicit,
            "members": r.members, "saved_bytes_per_sample": r.saved_bytes,
            "training_bytes": r.training_bytes}


_CSV = ("name", "kind", "written", "output_shape", "params", "params_no_bias", "biases",
        "buffers", "formula", "activations", "activation_bytes", "macs", "flops",
        "receptive_field", "jump", "implicit", "members", "saved_bytes_per_sample",
        "training_bytes")


def to_csv(report: Report, rows: Sequence[Row]) -> str:
    """One row per layer, the input first; shapes as `64x224x224`, receptive fields and jumps
    as the text table writes them (`pair`)."""
    import csv  # here: the other formats never pay its import (~0.5 ms)

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_CSV)
    inp = report.input
    writer.writerow(["input", "INPUT", "INPUT", shape_text(inp.shape), 0, 0, 0, 0, "",
                     inp.activations, inp.activation_bytes, 0, 0, pair(inp.receptive_field),
                     pair(inp.jump), False, "", inp.saved_bytes, inp.training_bytes])
    for r in rows:
        data = layer_data(r)
        data.update(output_shape=shape_text(r.output_shape),
                    receptive_field=pair(r.receptive_field), jump=pair(r.jump),
                    members=";".join(r.members))
        writer.writerow(data[k] for k in _CSV)
    return out.getvalue()
