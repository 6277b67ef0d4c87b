"""Views of a DiffReport: text, markdown and JSON. Formatting only: every figure comes from
`archspec.analysis.diff` (which takes them from `archspec.analysis.report`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Literal

from archspec.analysis.diff import (
    ArgChange,
    Consequence,
    DiffReport,
    Entry,
    Figures,
    Group,
    LayerSide,
)
from archspec.core.diagnostics import printable
from archspec.core.text import align, binary, count, metric, shape_text
from archspec.ir import ArgValue
from archspec.views.table import markdown_text as _md
from archspec.views.table import pair

Format = Literal["text", "markdown", "json"]
_SHORT_NAMES = 4  # a longer list of layer names is shortened to `first … last (N)`


def render(report: DiffReport, fmt: Format = "text") -> str:
    if fmt == "json":
        return to_json(report)
    if report.identical:
        return printable(f"{_title(report)}: identical networks") + "\n"
    markdown = fmt == "markdown"
    sections = [_summary(report), _short(report, markdown), _details(report, markdown),
                _groups("Stages (each layer by the size of the map it reads)", report.stages,
                        report, markdown, every=True),
                _groups("Blocks (block calls)", report.blocks, report, markdown, every=False),
                _totals(report, markdown)]
    if markdown:
        title, counts = sections[0].split("\n")
        sections[0] = f"## {_md(title)}\n\n{_md(counts)}"
    text = "\n\n".join(s for s in sections if s)
    # Names, written layers and file names come from the files: no line may hold a control
    # character (the markdown escapes its own cells and lines as well).
    return "\n".join(printable(line) for line in text.split("\n")) + "\n"


def to_json(report: DiffReport) -> str:
    data = report.model_dump(mode="json")
    data["identical"] = report.identical
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


# --- values ----------------------------------------------------------------------------------

def value(v: ArgValue | None) -> str:
    """An argument as the spec writes it: `3`, `3x5`, `true`, `0.5`; `?` where not given."""
    if v is None:
        return "?"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple):
        return shape_text(v)
    return f"{v:g}" if isinstance(v, float) else str(v)


def _signed(delta: int, unit: Callable[[int], str]) -> str:
    if delta == 0:
        return "0"
    return ("+" if delta > 0 else "-") + unit(abs(delta))


def _arrow(old: str, new: str) -> str:
    return old if old == new else f"{old} → {new}"


def _names(names: Sequence[str]) -> str:
    unique = list(dict.fromkeys(names))
    if len(unique) > _SHORT_NAMES:
        return f"{unique[0]} … {unique[-1]} ({len(unique)})"
    return ", ".join(unique)


def _values(values: Sequence[str]) -> str:
    """One value when all are equal (`ceil false → true`); a few as they are (`384, 384,
    256`); a longer list with its runs counted (`64 ×3, 128 ×4, 256 ×6, 512 ×3`)."""
    if len(set(values)) == 1:
        return values[0]
    if len(values) <= _SHORT_NAMES:
        return ", ".join(values)
    runs: list[list[Any]] = []
    for v in values:
        if runs and runs[-1][0] == v:
            runs[-1][1] += 1
        else:
            runs.append([v, 1])
    return ", ".join(f"{v} ×{n}" if n > 1 else v for v, n in runs)


def _name(entry: Entry) -> str:
    if entry.a is not None and entry.b is not None:
        return _arrow(entry.a.name, entry.b.name)
    return entry.side.name


def _title(report: DiffReport) -> str:
    return f"{report.a.name} ({report.a.file}) → {report.b.name} ({report.b.file})"


def _where(report: DiffReport, entry: Entry) -> str:
    places = []
    if entry.a is not None:
        places.append(f"{report.a.file}:{entry.a.line}:{entry.a.col}")
    if entry.b is not None:
        places.append(f"{report.b.file}:{entry.b.line}:{entry.b.col}")
    return " → ".join(places)


def changes_text(changes: Sequence[ArgChange]) -> str:
    """`kernel 11 → 7, stride 4 → 2`."""
    return ", ".join(f"{c.name} {value(c.old)} → {value(c.new)}" for c in changes)


# --- summary and short form ------------------------------------------------------------------

def _principal(report: DiffReport) -> list[bool]:
    """Per entry: False for an implicit layer added or removed with its origin (shown with
    it, not counted on its own)."""
    companions = {i for c in report.consequences for i in c.causes[1:]}
    return [i not in companions for i in range(len(report.entries))]


def _summary(report: DiffReport) -> str:
    principal = _principal(report)
    counts = {status: sum(1 for i, e in enumerate(report.entries)
                          if e.status == status and principal[i])
              for status in ("changed", "added", "removed")}
    parts = [f"{counts['changed']} layer(s) changed, {counts['added']} added, "
             f"{counts['removed']} removed"]
    parts += [f"{c.field} {c.old} → {c.new}" for c in report.network]
    a, b = report.a.totals, report.b.totals
    if a is not None and b is not None:
        parts.append(f"parameters {count(a.params)} → {count(b.params)} "
                     f"({_signed(b.params - a.params, count)})")
    if report.plan:
        parts.append(f"{len(report.plan)} training setting(s) differ")
    return f"{_title(report)}\n{'; '.join(parts)}"


def _short(report: DiffReport, markdown: bool) -> str:
    """One line per kind of change, as a lecture slide says it: `conv3, conv4, conv5:
    filters 384, 384, 256 → 512, 1024, 512`."""
    lines = [f"{c.field}: {c.old} → {c.new}" for c in report.network]
    runs: dict[tuple[str, ...], list[Entry]] = {}
    for entry in report.entries:
        if entry.status == "changed":
            key = (entry.side.kind, *(c.name for c in entry.changes))
            runs.setdefault(key, []).append(entry)
    for run in runs.values():
        items = []
        for position, change in enumerate(run[0].changes):
            olds = [value(e.changes[position].old) for e in run]
            news = [value(e.changes[position].new) for e in run]
            items.append(f"{change.name} {_values(olds)} → {_values(news)}")
        joined = "; " if len(run) > 1 else ", "
        lines.append(f"{_names([_name(e) for e in run])}: {joined.join(items)}")
    lines += _moves(report)
    lines += [f"{c.field}: {c.old} → {c.new}" for c in report.plan]
    if markdown:
        return "### In short\n\n" + "\n".join(f"- {_md(line)}" for line in lines)
    return "In short:\n" + "\n".join(f"  {line}" for line in lines)


def _moves(report: DiffReport) -> list[str]:
    """Added and removed layers by how they are written; a layer written alike that one
    network lost and the other gained is said to move (SqueezeNet 1.1's pools: `moved:
    POOL3/2 pool2 (after fire3 → after fire2)`), each at the layer written before it."""
    principal = _principal(report)
    after: list[str] = []  # per entry: the written layer before it in its own network
    last = ["input", "input"]
    for entry in report.entries:
        after.append(last[1 if entry.b is not None else 0])
        for k, side in enumerate((entry.a, entry.b)):
            if side is not None and not side.implicit:
                last[k] = side.name
    found: dict[str, dict[str, list[int]]] = {"added": {}, "removed": {}}
    for i, entry in enumerate(report.entries):
        if entry.status in found and principal[i]:
            found[entry.status].setdefault(entry.side.written, []).append(i)
    moved = []
    for written, gone in found["removed"].items():
        come = found["added"].get(written, [])
        for i, j in zip(gone, come, strict=False):
            names = _arrow(report.entries[i].side.name, report.entries[j].side.name)
            moved.append(f"{written} {names} (after {after[i]} → after {after[j]})")
        found["added"][written] = come[len(gone):]
        found["removed"][written] = gone[len(come):]
    lines = [f"moved: {', '.join(moved)}"] if moved else []
    for status in ("added", "removed"):
        shown = [f"{w} ({_names([report.entries[i].side.name for i in where])})"
                 for w, where in found[status].items() if where]
        if shown:
            lines.append(f"{status}: {', '.join(shown)}")
    return lines


# --- each change and what follows from it ----------------------------------------------------

_COLUMNS = ("", "layer", "output", "params", "MACs", "activations", "RF")


def _shape(side: LayerSide | None) -> str:
    if side is None or side.output_shape is None:
        return "-" if side is None else "?"
    return shape_text(side.output_shape)


def _figure(side: LayerSide | None, get: Callable[[Figures], int],
            unit: Callable[[int], str]) -> str:
    if side is None:
        return "-"
    return "?" if side.figures is None else unit(get(side.figures))


def _cells(entry: Entry) -> list[str]:
    mark = {"same": "", "changed": "~", "added": "+", "removed": "-"}[entry.status]

    def both(show: Callable[[LayerSide | None], str]) -> str:
        if entry.status == "added":
            return show(entry.b)
        if entry.status == "removed":
            return show(entry.a)
        return _arrow(show(entry.a), show(entry.b))

    def rf(side: LayerSide | None) -> str:
        return "-" if side is None or side.figures is None else pair(side.receptive_field)

    return [mark, _name(entry), both(_shape),
            both(lambda s: _figure(s, lambda f: f.params, count)),
            both(lambda s: _figure(s, lambda f: f.macs, metric)),
            both(lambda s: _figure(s, lambda f: f.activations, count)), both(rf)]


def _cost(delta: Figures | None) -> str:
    if delta is None:
        return "cost: unknown (a sketch has no sizes)"
    return (f"cost: params {_signed(delta.params, count)}, MACs {_signed(delta.macs, metric)}, "
            f"activations {_signed(delta.activations, count)} "
            f"({_signed(delta.activation_bytes, binary)})")


def _heading(report: DiffReport, consequence: Consequence) -> str:
    if not consequence.causes:
        return "; ".join(f"{c.field} {c.old} → {c.new}"
                         + (f" (line {c.line_a} → {c.line_b})" if c.line_a and c.line_b else "")
                         for c in report.network)
    first = report.entries[consequence.causes[0]]
    companions = [report.entries[i].side.kind for i in consequence.causes[1:]]
    written = first.side.written + "".join(f" +{k}" for k in companions)
    if first.status == "changed":
        assert first.a is not None and first.b is not None
        written = _arrow(first.a.written, first.b.written)
    line = f"{first.status} {_name(first)}: {written} ({_where(report, first)})"
    if first.changes:
        line += f"\n    {changes_text(first.changes)}"
    return line


def _details(report: DiffReport, markdown: bool) -> str:
    blocks = []
    for consequence in report.consequences:
        rows = [_cells(report.entries[i]) for i in (*consequence.causes, *consequence.affected)]
        heading = _heading(report, consequence)
        cost = _cost(consequence.delta)
        if markdown:
            first, *rest = heading.split("\n")
            text = f"#### {_md(first)}\n\n" + "".join(f"{_md(line.strip())}\n\n"
                                                       for line in rest)
            text += (_md_table(list(_COLUMNS), rows) + "\n\n" if rows else "") + cost
        else:
            table = align([list(_COLUMNS), *rows], {3, 4, 5}) if rows else []
            text = "\n".join([heading, *(f"    {line}" for line in table), f"    {cost}"])
        blocks.append(text)
    if not blocks:
        return ""
    title = "Changes, each with what it changes downstream"
    body = "\n\n".join(blocks)
    return f"### {title}\n\n{body}" if markdown else f"{title}:\n\n{body}"


# --- stages, blocks, totals ------------------------------------------------------------------

def _pair_figures(a: Figures | None, b: Figures | None, get: Callable[[Figures], int],
                  unit: Callable[[int], str]) -> str:
    if a is None and b is None:
        return "?"
    if a is None or b is None:
        known = a or b
        assert known is not None
        return unit(get(known)) if a is None else f"{unit(get(known))} → -"
    old, new = get(a), get(b)
    if old == new:
        return unit(old)
    return f"{unit(old)} → {unit(new)} ({_signed(new - old, unit)})"


def _groups(title: str, groups: Sequence[Group], report: DiffReport, markdown: bool,
            every: bool) -> str:
    shown = [g for g in groups if every or g.figures_a != g.figures_b or g.a is None
             or g.b is None]
    if not shown:
        return ""
    head = [report.a.name, report.b.name, "params", "MACs", "activation memory"]
    rows = [[g.a or "-", g.b or "-",
             _pair_figures(g.figures_a, g.figures_b, lambda f: f.params, count),
             _pair_figures(g.figures_a, g.figures_b, lambda f: f.macs, metric),
             _pair_figures(g.figures_a, g.figures_b, lambda f: f.activation_bytes, binary)]
            for g in shown]
    if markdown:
        return f"### {title}\n\n" + _md_table(head, rows)
    return f"{title}:\n" + "\n".join(f"  {line}" for line in align([head, *rows], ()))


def _total(label: str, a: Figures | None, b: Figures | None, get: Callable[[Figures], int],
           unit: Callable[[int], str]) -> list[str]:
    cells = [unit(get(f)) if f is not None else "?" for f in (a, b)]
    if a is None or b is None:
        return [label, *cells, "?"]
    old, new = get(a), get(b)
    return [label, *cells, _signed(new - old, unit) + (f" ({(new - old) / old:+.1%})"
                                                        if old else "")]


def _totals(report: DiffReport, markdown: bool) -> str:
    a, b = report.a.totals, report.b.totals
    fa, fb = (a.figures if a else None), (b.figures if b else None)
    rows = [_total("parameters", fa, fb, lambda f: f.params, count),
            _total("MACs", fa, fb, lambda f: f.macs, count),
            _total("activations (input included)", fa, fb, lambda f: f.activations, count),
            _total("activation memory", fa, fb, lambda f: f.activation_bytes, binary),
            ["output", *(shape_text(t.output_shape) if t else "?" for t in (a, b)), ""],
            ["output receptive field", *(pair(t.receptive_field) if t else "?"
                                         for t in (a, b)), ""]]
    head = ["", report.a.name, report.b.name, "change"]
    title = "Totals, per sample"
    if markdown:
        return f"### {title}\n\n" + _md_table(head, rows)
    return f"{title}:\n" + "\n".join(f"  {row}" for row in align([head, *rows], {1, 2, 3}))


# --- markdown --------------------------------------------------------------------------------

def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(_md(h) for h in head) + " |",
             "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
