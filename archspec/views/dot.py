"""Diagrams: a network as Graphviz DOT text (archspec writes it), rendered by Graphviz's `dot`.

Two levels of detail:

- `full`: one box per IR layer, implicit ones included; repeats and blocks become clusters.
- `compact`: batch norm and activations fold into the layer they follow (and an implied
  flatten into its FC); a repeated run collapses to its last repetition, marked `xN` on the
  box (one box a repetition) or on a cluster around it. A box stands for every layer folded
  into it: it shows the output shape of the last one and the parameters of all of them.

No torch here: the diagram is drawn from the IR, its shapes and the analysis `archspec table`
shows (`archspec.analysis.report`): the same parameter, activation and MAC figures.
"""

from __future__ import annotations

import html
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import graphviz

from archspec.analysis import fold
from archspec.analysis.diff import DiffReport
from archspec.analysis.report import Report, build_report, group_params
from archspec.core.diagnostics import Diagnostic, Severity, printable
from archspec.core.files import write_atomic
from archspec.core.limits import MAX_DRAWN_BOXES, MAX_LABEL_CHARS
from archspec.core.text import shape_text
from archspec.ir import INPUT_NODE, Layer, Network, Shape
from archspec.kinds import registry as reg
from archspec.lang.shapes import Shapes
from archspec.views.diff import changes_text

Detail = Literal["compact", "full"]
Rankdir = Literal["TB", "LR"]
FORMATS = ("svg", "png", "pdf", "dot")
OUTPUT_NODE = "network output"  # a space: no layer can have this name
CAPTION = "caption "  # + scope id: the plain-text node naming a cluster
INSTALL_HINT = ("Graphviz's `dot` is not on PATH; install Graphviz "
                "(apt-get install graphviz, or brew install graphviz), or write .dot instead")

FILL: dict[reg.Family, str] = {
    "conv": "#cfe2f3",
    "pool": "#fce5cd",
    "norm": "#d9d2e9",
    "activation": "#d9ead3",
    "fc": "#fff2cc",
    "dropout": "#e6e6e6",
    "reshape": "#ffffff",
    "resample": "#fde9d9",
    "join": "#f4cccc",
}
CLUSTER_STYLE = {"style": "rounded,dashed", "color": "#888888"}
# `draw --diff`: the outline of an added or changed box, and a removed layer's ghost.
MARK_STYLE = {"added": {"color": "#38761d", "penwidth": "3"},
              "changed": {"color": "#e69138", "penwidth": "3"}}
GHOST_STYLE = {"style": "rounded,dashed", "color": "#999999", "fontcolor": "#999999",
               "fillcolor": "white"}
ERROR_STYLE = {"color": "#cc0000", "penwidth": "3"}  # a layer with a shape error
GHOST = "removed "  # + the layer's name in the old network: a ghost's node id
ENDS_FILL = "#434343"  # input and output nodes: dark, white text


class GraphvizMissing(RuntimeError):
    """Rendering needs Graphviz's `dot` executable and it is not on PATH."""

    def __init__(self) -> None:
        super().__init__(INSTALL_HINT)


class RenderError(RuntimeError):
    """Graphviz's `dot` refused or crashed on a diagram; the message is its first line."""


@dataclass
class Box:
    """One drawn node: a main layer and the layers folded into it."""

    main: Layer
    layers: list[Layer] = field(default_factory=list)
    # What each merged repetition folded into its main layer (`BN`, `RELU`), as written.
    folded: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.main.name


@dataclass(frozen=True)
class Highlight:
    """What `draw --diff` marks on the network it draws: each added or changed layer's status
    and note, the removed layers of the old network as ghosts (node id → label lines) and
    the ghosts' edges, whose ends are layer names of the drawn network, ghost ids, the
    input or the output."""

    title: str
    inputs: str | None  # `3x32x32 → 1x32x32` when the input changed
    marks: dict[str, tuple[str, str]]
    ghosts: dict[str, list[str]]
    edges: list[tuple[str, str]]


def highlight(report: DiffReport, old: Network) -> Highlight:
    """The marks for drawing the report's new network (B) with what changed from A."""
    marks: dict[str, tuple[str, str]] = {}
    partner: dict[str, str] = {INPUT_NODE: INPUT_NODE}
    # An implicit layer added or removed with its origin (its activation, the flatten implied
    # before an FC) goes with it: no note of its own, no ghost of its own.
    added = {e.b.name for e in report.entries if e.status == "added" and e.b}
    gone = {e.a.name for e in report.entries if e.status == "removed" and e.a}
    removed: dict[str, str] = {}  # A layer → its ghost
    ghosts: dict[str, list[str]] = {}
    companions = []
    for entry in report.entries:
        a, b = entry.a, entry.b
        if a is not None and b is not None:
            partner[a.name] = b.name
            if entry.status == "changed":
                marks[b.name] = ("changed", changes_text(entry.changes))
        elif b is not None:
            with_origin = b.implicit and b.origin in added
            marks[b.name] = ("added", "" if with_origin else f"{b.name} added")
        elif a is not None and a.implicit and a.origin in gone:
            companions.append(a)
        elif a is not None:
            removed[a.name] = GHOST + a.name
            ghosts[removed[a.name]] = [a.written, f"{a.name} removed"]
    for a in companions:
        assert a.origin is not None
        removed[a.name] = removed[a.origin]
        ghosts[removed[a.name]][0] += f" +{a.kind}"
    edges: list[tuple[str, str]] = []
    for layer in old.layers:
        for name in layer.inputs:
            if name in removed and layer.name not in removed:  # a ghost's edge out
                edges.append((removed[name], partner[layer.name]))
        if layer.name in removed:
            edges += [(removed[i] if i in removed else partner[i], removed[layer.name])
                      for i in layer.inputs]
    if old.output in removed:
        edges.append((removed[old.output], OUTPUT_NODE))
    counts = {s: sum(1 for m in marks.values() if m[0] == s and m[1]) for s in ("added", "changed")}
    title = (f"changes from {report.a.name} ({report.a.file}): {counts['added']} added, "
             f"{counts['changed']} changed, {len(ghosts)} removed")
    inputs = next((f"{c.old} → {c.new}" for c in report.network if c.field == "input"), None)
    return Highlight(title, inputs, marks, ghosts,
                     [e for e in dict.fromkeys(edges) if e[0] != e[1]])


def has_dot() -> bool:
    """True when Graphviz's `dot` executable is on PATH."""
    return shutil.which("dot") is not None


def layer_errors(network: Network, diagnostics: list[Diagnostic]) -> dict[str, str]:
    """Each error's message by the layer it is on (the first layer at the error's span: the
    written one, not the implicit layers that share its span)."""
    found: dict[str, str] = {}
    for diagnostic in diagnostics:
        layer = next((layer for layer in network.layers if layer.span == diagnostic.span), None)
        if diagnostic.severity is Severity.ERROR and layer is not None:
            found.setdefault(layer.name, diagnostic.message)
    return found


def analyse(network: Network, shapes: Shapes) -> Report | None:
    """The analysis `archspec table` shows (header totals, parameters per layer); None for a
    sketch, whose sizes are not given."""
    known = all(shapes.get(layer.name) is not None for layer in network.layers)
    return build_report(network, shapes) if network.complete and known else None


def _boxes(network: Network, detail: Detail) -> tuple[list[Box], dict[str, str]]:
    """The boxes to draw, in topological order, and the box id of every layer."""
    by_name = {layer.name: layer for layer in network.layers}
    owner = {layer.name: layer.name for layer in network.layers} if detail == "full" \
        else fold.owners(network)
    boxes: dict[str, Box] = {}
    for layer in network.layers:
        box = boxes.setdefault(owner[layer.name], Box(by_name[owner[layer.name]]))
        box.layers.append(layer)
    for box in boxes.values():
        box.folded.append(tuple(layer.written for layer in box.layers if layer is not box.main))
    if detail == "compact":
        _collapse_repeats(boxes, owner)
    return list(boxes.values()), owner


def _collapse_repeats(boxes: dict[str, Box], owner: dict[str, str]) -> None:
    """Merge every repetition of a repeated run into its last one, box by box, outside in."""
    depth = 0
    while True:
        runs: dict[int, dict[int, list[Box]]] = {}
        for box in boxes.values():
            if len(box.main.scopes) > depth and box.main.scopes[depth].count > 1:
                scope = box.main.scopes[depth]
                runs.setdefault(scope.id, {}).setdefault(scope.index, []).append(box)
        if not any(len(box.main.scopes) > depth for box in boxes.values()):
            return
        for iterations in runs.values():
            order = sorted(iterations)
            last = iterations[order[-1]]
            earlier: dict[str, list[Layer]] = {target.id: [] for target in last}
            for index in order[:-1]:
                for box, target in zip(iterations[index], last, strict=True):
                    earlier[target.id].extend(box.layers)
                    target.folded.extend(box.folded)
                    del boxes[box.id]
                    for layer in box.layers:
                        owner[layer.name] = target.id
            for target in last:
                target.layers[:0] = earlier[target.id]
        depth += 1


def _crosses_repetitions(a: Layer, b: Layer) -> bool:
    """An edge from one repetition of a run to the next (drawn once the run is collapsed)."""
    index = {scope.id: scope.index for scope in a.scopes if scope.count > 1}
    return any(index.get(scope.id, scope.index) != scope.index for scope in b.scopes)


def _edges(network: Network, boxes: list[Box], owner: dict[str, str],
           detail: Detail) -> list[tuple[str, str]]:
    """One edge a layer input between boxes (`( ID + ID )` draws two); compact draws each
    pair of boxes once and leaves out the edges between repetitions of a collapsed run."""
    by_name = {layer.name: layer for layer in network.layers}
    edges: list[tuple[str, str]] = []
    for box in boxes:
        for layer in box.layers:
            for name in layer.inputs:
                source = by_name.get(name)  # None for the network input
                if detail == "compact" and source is not None \
                        and _crosses_repetitions(source, layer):
                    continue
                tail = owner.get(name, name)
                if tail != box.id:
                    edges.append((tail, box.id))
    edges.append((owner[network.output], OUTPUT_NODE))
    return edges if detail == "full" else list(dict.fromkeys(edges))


def _repeat_mark(box: Box, single: dict[int, bool]) -> int:
    """The product of the counts of repeated runs this box alone stands for."""
    return math.prod(s.count for s in box.main.scopes if s.count > 1 and single[s.id])


def _clusters(box: Box, single: dict[int, bool], detail: Detail) -> tuple[int, ...]:
    """The ids of the scopes drawn as clusters around a box, outermost first."""
    return tuple(s.id for s in box.main.scopes
                 if detail == "full" or s.count == 1 or not single[s.id])


def _plain(text: str) -> str:
    """Text from the file as Graphviz takes it: control and non-characters (a form feed,
    U+FFFE) escaped, which dot rejects raw, and cut to MAX_LABEL_CHARS (dot refuses an HTML
    label over 16 KB)."""
    text = printable(text)
    return text if len(text) <= MAX_LABEL_CHARS else text[:MAX_LABEL_CHARS - 1] + "…"


def _text(text: str) -> str:
    """`_plain` text inside an HTML-like label."""
    return html.escape(_plain(text))


def _label(title: str, details: list[str], *, size: int = 10, color: str = "") -> str:
    """An HTML-like label: a title (HTML already), then plain-text lines in a smaller font,
    one table row each (rows space the lines more evenly than line breaks)."""
    font = f' color="{color}"' if color else ""
    rows = [f"<font{font}>{title}</font>" if color else title]
    rows += [f'<font{font} point-size="{size}">{_text(line)}</font>' for line in details]
    cells = "".join(f"<tr><td>{row}</td></tr>" for row in rows)
    return f'<<table border="0" cellborder="0" cellspacing="0" cellpadding="1">{cells}</table>>'


def _box_label(box: Box, shapes: Shapes, params: int, mark: int, notes: list[str]) -> str:
    main = box.main
    title = f"<b>{_text(main.written)}</b>"
    if mark > 1:
        title += f" &#215;{mark}"
    # A layer inside a named group or block call shows its path (`layer1.0.conv1`); a box
    # standing for several repetitions shows none (each has its own).
    details = [_text(main.name)] if len(main.path) > 1 and mark <= 1 else []
    folded = max(box.folded, key=len)  # the first repetition of FC-256 ×2 has the flatten
    if folded:
        details.append(" · ".join(folded))
    shape = shapes.get(box.layers[-1].name)
    if shape is not None:
        details.append(shape_text(shape))
    if params:
        details.append(f"{params:,} params")
    return _label(title, [*details, *notes])


def _end_label(title: str, shape: Shape | None, note: str | None = None) -> str:
    details = [shape_text(shape)] if shape is not None else []
    return _label(f"<b>{title}</b>", [*details, *([note] if note else [])], color="white")


def _header(network: Network, report: Report | None, marks: Highlight | None,
            errors: dict[str, str]) -> str:
    title = f"<b>{html.escape(network.name)}</b>"
    if network.description:
        title += f" — {_text(network.description)}"
    if errors:
        lines = [f"{len(errors)} layer(s) with shape errors, outlined in red; sizes after "
                 "them may be unknown"]
    elif report is None:
        lines = ["a sketch: sizes not given"]
    else:
        t = report.totals
        lines = [f"{t.params:,} params · {t.activations:,} activations · {t.macs:,} MACs"]
    return _label(title, [*lines, *([marks.title] if marks else [])], size=14)


def _box_mark(box: Box, marks: Highlight) -> tuple[str, list[str]] | None:
    """A box's status (changed wins over added) and its notes; None when nothing changed."""
    found = [marks.marks[layer.name] for layer in box.layers if layer.name in marks.marks]
    if not found:
        return None
    if len(found) == len(box.layers) and all(s == "added" for s, _ in found):
        return "added", ["added"]
    status = "changed" if any(s == "changed" for s, _ in found) else "added"
    return status, list(dict.fromkeys(note for _, note in found if note))


def _legend(graph: graphviz.Digraph) -> None:
    with graph.subgraph(name="cluster_legend") as legend:
        legend.attr(label="legend", fontsize="11", **CLUSTER_STYLE)
        for status in ("added", "changed"):
            legend.node(f"legend {status}", status, fillcolor="white", **MARK_STYLE[status])
        legend.node("legend removed", "removed", **GHOST_STYLE)
        legend.edge("legend added", "legend changed", style="invis")
        legend.edge("legend changed", "legend removed", style="invis")


def diagram(network: Network, shapes: Shapes, *, detail: Detail = "compact",
            rankdir: Rankdir = "TB", marks: Highlight | None = None,
            errors: dict[str, str] | None = None,
            report: Report | None = None) -> graphviz.Digraph:
    """The network as a graphviz.Digraph: header, input, boxes, clusters, output; with
    `marks`, what changed from another network (outlines, ghosts and a legend); with
    `errors` (layer name → message), those layers outlined in red with their message.
    `report`: the network's default analysis when the caller has it (`analyse` otherwise)."""
    errors = errors or {}
    boxes, owner = _boxes(network, detail)
    report = report or analyse(network, shapes)
    params = group_params(report, ((box.id, (layer.name for layer in box.layers))
                                   for box in boxes)) if report is not None else {}
    single: dict[int, bool] = {}
    for box in boxes:
        for scope in box.main.scopes:
            single[scope.id] = scope.id not in single
    graph = graphviz.Digraph(
        network.name,
        graph_attr={"label": _header(network, report, marks, errors), "labelloc": "t",
                    "rankdir": rankdir,
                    "fontname": "Helvetica", "fontsize": "14", "nodesep": "0.3",
                    "ranksep": "0.3", "newrank": "true", "ordering": "in"},
        node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica",
                   "fontsize": "12", "margin": "0.12,0.04", "penwidth": "0.8"},
        edge_attr={"arrowsize": "0.6", "color": "#555555"},
    )
    ends = {"shape": "box", "style": "filled", "fillcolor": ENDS_FILL, "color": ENDS_FILL}
    if marks is not None and marks.inputs is not None:
        graph.node(INPUT_NODE, _end_label("input", network.input.shape, marks.inputs),
                   **ends | MARK_STYLE["changed"])
    else:
        graph.node(INPUT_NODE, _end_label("input", network.input.shape), **ends)
    tree: dict[tuple[int, ...], list[Box]] = {}
    captions: dict[int, str] = {}
    for box in boxes:
        tree.setdefault(_clusters(box, single, detail), []).append(box)
        for scope in box.main.scopes:
            captions[scope.id] = f"×{scope.count}" if scope.count > 1 else _plain(scope.label)
    order = {box.id: i for i, box in enumerate(boxes)}
    _emit(graph, (), _Layout(tree, captions, order, shapes, params, single, marks, errors))
    graph.node(OUTPUT_NODE, _end_label("output", shapes.get(network.output)), **ends)
    for tail, head in _edges(network, boxes, owner, detail):
        graph.edge(tail, head)
    if marks is not None:
        for ghost, lines in marks.ghosts.items():
            graph.node(ghost, _label(f"<b>{_text(lines[0])}</b>", lines[1:]),
                       **GHOST_STYLE)
        for tail, head in marks.edges:
            graph.edge(owner.get(tail, tail), owner.get(head, head), style="dashed",
                       color="#999999")
        _legend(graph)
    return graph


@dataclass(frozen=True)
class _Layout:
    tree: dict[tuple[int, ...], list[Box]]  # cluster path (scope ids) -> the boxes directly in it
    captions: dict[int, str]  # scope id -> `x3` or the block call
    order: dict[str, int]  # box id -> its place in topological order
    shapes: Shapes
    params: dict[str, int]  # box id -> the weights and biases of its layers (empty: a sketch)
    single: dict[int, bool]  # scope id -> whether one box stands for the whole scope
    marks: Highlight | None  # draw --diff
    errors: dict[str, str]  # layer name -> its shape error


def _emit(graph: graphviz.Digraph, path: tuple[int, ...], layout: _Layout) -> None:
    """Draw the boxes directly inside `path`, then each cluster nested one level deeper."""
    for box in layout.tree.get(path, []):
        family = reg.kind_of(box.main.kind).family
        mark = _repeat_mark(box, layout.single)
        status = _box_mark(box, layout.marks) if layout.marks else None
        style = MARK_STYLE[status[0]] if status else {}
        notes = status[1] if status else []
        errors = [layout.errors[layer.name] for layer in box.layers
                  if layer.name in layout.errors]
        if errors:
            style, notes = ERROR_STYLE, [*notes, *(f"error: {e}" for e in errors)]
        graph.node(box.id, _box_label(box, layout.shapes, layout.params.get(box.id, 0),
                                      mark, notes),
                   fillcolor=FILL[family], **style)
    depth = len(path)
    inner = dict.fromkeys(p[depth] for p in layout.tree if len(p) > depth and p[:depth] == path)
    for scope in inner:
        inside = (*path, scope)
        last = max((box for p, boxes in layout.tree.items() if p[:depth + 1] == inside
                    for box in boxes), key=lambda box: layout.order[box.id])
        with graph.subgraph(name=f"cluster_{scope}") as sub:
            sub.attr(label="", **CLUSTER_STYLE)
            # The caption is a plain-text node right of the last box: edges route around
            # nodes, so none crosses it (they would cross a cluster label).
            tag = f"{CAPTION}{scope}"
            sub.node(tag, layout.captions[scope], shape="plaintext", style="", fontsize="11")
            with sub.subgraph() as row:
                row.attr(rank="same")
                row.edge(last.id, tag, style="invis")
            _emit(sub, inside, layout)


def size_error(network: Network, detail: Detail = "compact") -> Diagnostic | None:
    """An error at the first layer past the limit when the diagram has more boxes than
    Graphviz's `dot` lays out (it crashed on a 60,000-box chain); None when it fits."""
    boxes, _owner = _boxes(network, detail)
    if len(boxes) <= MAX_DRAWN_BOXES:
        return None
    return Diagnostic(
        severity=Severity.ERROR, code="limit", span=boxes[MAX_DRAWN_BOXES].main.span,
        message=f"the diagram has {len(boxes):,} boxes, over the {MAX_DRAWN_BOXES:,} that "
                "Graphviz's dot can lay out; this is the first box past the limit",
        hint="write a .dot file instead, or fold repeated layers into `[...]*N`"
             + (" and draw with --detail compact" if detail == "full" else ""))


def dot_source(network: Network, shapes: Shapes, *, detail: Detail = "compact",
               rankdir: Rankdir = "TB", marks: Highlight | None = None,
               errors: dict[str, str] | None = None, report: Report | None = None) -> str:
    """The DOT text of the diagram (deterministic: same spec, same text)."""
    source: str = diagram(network, shapes, detail=detail, rankdir=rankdir, marks=marks,
                          errors=errors, report=report).source
    return source


def render(source: str, fmt: str) -> bytes:
    """Render DOT text to svg, png or pdf bytes with `dot`; GraphvizMissing without it, and
    RenderError, with dot's first line, where it fails (labels are escaped and the size is
    capped so that it should not)."""
    if not has_dot():
        raise GraphvizMissing
    try:
        rendered: bytes = graphviz.Source(source).pipe(format=fmt, quiet=True)
        return rendered
    except graphviz.CalledProcessError as exc:
        said = (exc.stderr or b"").decode("utf-8", errors="replace").strip().splitlines()
        raise RenderError("Graphviz's dot failed: " + printable(
            said[0] if said else f"exit status {exc.returncode}")) from None


def render_files(network: Network, shapes: Shapes, stem: str | Path, *,
                 detail: Detail = "compact", report: Report | None = None,
                 fits: bool | None = None) -> list[Path]:
    """Write `<stem>.dot`, and `<stem>.svg` when `dot` is on PATH and the diagram is within
    its size limit (`size_error`); the paths written. `report`: as for `diagram`; `fits`:
    whether it is within the limit, when the caller has asked `size_error` already.

    For `archspec compile`: e.g. `render_files(network, shapes, Path("build") / network.name)`.
    """
    source = dot_source(network, shapes, detail=detail, report=report)
    base = Path(stem)
    written = [base.with_name(base.name + ".dot")]
    write_atomic(written[0], source)
    if fits is None:
        fits = size_error(network, detail) is None
    if has_dot() and fits:
        written.append(base.with_name(base.name + ".svg"))
        write_atomic(written[1], render(source, "svg"))
    return written
