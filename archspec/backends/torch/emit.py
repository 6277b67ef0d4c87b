"""The PyTorch emitter: writes a network as the source of a standalone Python module.

`emit` turns the IR into a standalone module file (what `archspec compile` writes);
`build.to_torch` executes that same source and calls its `build()`, so the file on disk and
the module built in process are one code path. Nothing from the spec reaches the source
except identifiers made safe here and literals written with `repr`; free text (descriptions,
layer spellings) only appears inside comments and docstrings, with quotes, backslashes and
line breaks removed.
"""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from archspec.analysis.report import Report, build_report, first_over
from archspec.backends.torch.layers import DEFAULTS, HELPERS, JOINS, LAYERS, MODULE_ATTRIBUTES
from archspec.core.diagnostics import Diagnostic, Diagnostics, Severity
from archspec.core.limits import DEFAULT_MAX_BUILD_PARAMS
from archspec.core.text import align, shape_text
from archspec.ir import INPUT_NODE, ArgValue, Layer, Network, Shape
from archspec.kinds import registry as reg
from archspec.lang.shapes import Shapes, infer

LINE_LIMIT = 99
_WORD = re.compile(r"[^A-Za-z0-9_]")
INPUT_VAR = "x"
# Names the generated module uses itself; a layer called one of these is renamed.
_RESERVED = frozenset({INPUT_VAR, "self", "super", "torch", "nn", "OrderedDict", "model",
                       "module", "build", "INPUT_SHAPE"}) | MODULE_ATTRIBUTES
# Families whose weights the spec's `init` scheme sets.
_INIT_FAMILIES = ("conv", "fc")
# Each scheme: the statement that initialises `module.weight`, and what the docstring says.
_INIT: dict[str, tuple[str, str]] = {
    "normal": ("nn.init.normal_(module.weight, std={std})", "normal(std={std}), biases zero"),
    "xavier": ("nn.init.xavier_uniform_(module.weight)", "xavier (Glorot uniform), biases zero"),
    "kaiming": ('nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")',
                "kaiming (He normal, fan_in, ReLU gain), biases zero"),
    "orthogonal": ("nn.init.orthogonal_(module.weight)", "orthogonal, biases zero"),
}


class BuildError(ValueError):
    """A network that cannot be built: invalid, a sketch, or over the parameter limit."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(f"{d.span.line}:{d.span.col}: {d.severity}: {d.message}"
                                   for d in self.diagnostics))


def checked_shapes(network: Network, shapes: Shapes | None = None) -> dict[str, Shape]:
    """Every layer's shape, inferring them if not given; BuildError if any is unknown."""
    if shapes is None:
        diags = Diagnostics()
        shapes = infer(network, diags)
        if diags.has_errors:
            raise BuildError(diags.errors)
    missing = [layer for layer in network.layers
               if layer.args is None or shapes.get(layer.name) is None]
    if missing:
        raise BuildError([_error("build", f"{layer.name}: cannot be built: "
                                 + ("it lacks arguments" if layer.args is None
                                    else "its shape is unknown"), layer)
                          for layer in missing])
    return {name: shape for name, shape in shapes.items() if shape is not None}


def size_error(network: Network, report: Report, max_params: int) -> Diagnostic | None:
    """An error about the whole network when its parameters pass `max_params`, else None.

    It is located at the layer where the running total passes the limit (the network has no
    place of its own in the source), and says so: that layer is where, not what, is at fault.
    """
    row = first_over(report, max_params)
    if row is None:
        return None
    layer = next(layer for layer in network.layers if layer.name == row.name)
    return _error("limit", f"the network has {report.totals.params:,} parameters, over the "
                  f"build limit of {max_params:,} (--max-params); the running total passes "
                  f"the limit at {layer.name}", layer)


def layer_paths(network: Network) -> dict[str, str]:
    """Where each (non-join) layer lives in the built module: `features.conv1`, `relu3`..."""
    names = _idents(network)
    paths: dict[str, str] = {}
    for unit in _units(network, names):
        if unit.attr is None:
            continue
        for layer in unit.layers:
            ident = names[layer.name]
            paths[layer.name] = f"{unit.attr}.{ident}" if unit.sequential else ident
    return paths


def module_name(network: Network) -> str:
    """A file name `import` can take for the generated module: the network's name, unless it
    is a keyword (`class` -> `class_`), shadows a module the file imports (`torch` ->
    `torch_`) or is no identifier (`3d-net` -> `net_3d_net`)."""
    text = _WORD.sub("_", network.name)
    if not text or not (text[0].isalpha() or text[0] == "_"):
        text = "net_" + text
    if keyword.iskeyword(text) or text in ("torch", "collections"):
        text += "_"
    return text


def class_name(network: Network) -> str:
    """The network's name in CamelCase, made a safe class name (`vgg16` → `Vgg16`)."""
    text = "".join(part[:1].upper() + part[1:]
                   for part in _WORD.sub("_", network.name).split("_"))
    if not text or not text[0].isalpha():
        text = "Net" + text
    if keyword.iskeyword(text) or text in _RESERVED or text in HELPERS:
        text += "Net"
    return text


# --- the emitter ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Unit:
    """One step of `forward`: a run of layers held by one attribute, or a join expression."""

    layers: tuple[Layer, ...]
    attr: str | None  # None for a join
    sequential: bool = False  # the attribute holds an nn.Sequential of the layers
    title: str | None = None  # a plain stack's part, `features` or `classifier`, as wanted

    @property
    def last(self) -> Layer:
        return self.layers[-1]


def emit(network: Network, shapes: Shapes | None = None, *, origin: str | None = None,
         max_params: int = DEFAULT_MAX_BUILD_PARAMS, report: Report | None = None) -> str:
    """The network as the source of a standalone Python module that imports only torch.

    `report` is the network's `archspec.analysis.report` (built here if not given): its rows give
    the table in the class docstring and the parameter count checked against `max_params`.
    """
    known = checked_shapes(network, shapes)
    report = report or build_report(network, dict(known))
    error = size_error(network, report, max_params)
    if error is not None:
        raise BuildError([error])
    names = _idents(network)
    units = _units(network, names)
    cls = class_name(network)
    sequential = any(unit.sequential for unit in units)
    lines = [
        '"""' + _sentence(f"{network.name}: {network.description or 'a network'}", 80),
        "",
        "Generated by archspec from " + (_text(origin, 60) if origin else "a .arch spec")
        + "; regenerate it rather than editing it.",
        '"""',
        "",
        *(["from collections import OrderedDict", ""] if sequential else []),
        "import torch",
        "from torch import nn",
        "",
        f"INPUT_SHAPE = {_literal(network.input.shape)}",
        "",
        "",
        *_helpers(network, known),
        f"class {cls}(nn.Module):",
        *_docstring(network, report, names, units),
        "",
        "    def __init__(self) -> None:",
        "        super().__init__()",
    ]
    for unit in units:
        if unit.attr is not None:
            lines.extend(_module_lines(unit, known, names))
    lines += ["", "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
              *_forward(network, units, names), "", "", *_build(network, known, cls)]
    return "\n".join(lines) + "\n"


def _idents(network: Network) -> dict[str, str]:
    """A safe Python identifier per layer name, unique, never a keyword or a Module attribute."""
    def safe(name: str) -> bool:
        return (name.isascii() and name.isidentifier() and not keyword.iskeyword(name)
                and not keyword.issoftkeyword(name) and not name.startswith("_")
                and name not in _RESERVED)

    names = {layer.name: layer.name for layer in network.layers if safe(layer.name)}
    taken = set(names.values())
    for layer in network.layers:
        if layer.name not in names:
            word = _WORD.sub("_", layer.name).strip("_")
            ident = _unique(f"layer_{word}" if word else "layer", taken)
            names[layer.name] = ident
            taken.add(ident)
    return names


def _unique(base: str, taken: Iterable[str]) -> str:
    used = set(taken)
    ident, n = base, 1
    while ident in used or not ident.isidentifier() or ident in _RESERVED:
        n += 1
        ident = f"{base}_{n}"
    return ident


def _units(network: Network, names: dict[str, str]) -> list[_Unit]:
    """Split the graph into straight runs (one consumer each) and joins, in order."""
    consumers: dict[str, int] = {}
    for layer in network.layers:
        for name in layer.inputs:
            consumers[name] = consumers.get(name, 0) + 1
    runs: list[list[Layer]] = []
    for layer in network.layers:
        is_join = reg.kind_of(layer.kind).family == "join"
        prev = runs[-1][-1] if runs else None
        extends = (prev is not None and not is_join
                   and reg.kind_of(prev.kind).family != "join"
                   and layer.inputs == (prev.name,) and consumers.get(prev.name) == 1)
        if extends:
            runs[-1].append(layer)
        else:
            runs.append([layer])
    taken = set(names.values())
    if len(runs) == 1 and reg.kind_of(runs[0][0].kind).family != "join":
        return [_Unit(tuple(part), _unique(title, taken), sequential=True, title=title)
                for part, title in _stack_parts(runs[0])]
    units: list[_Unit] = []
    for run in runs:
        if reg.kind_of(run[0].kind).family == "join":
            units.append(_Unit(tuple(run), None))
            continue
        if len(run) == 1:
            units.append(_Unit(tuple(run), names[run[0].name]))
            continue
        attr = _unique(f"{names[run[0].name]}_to_{names[run[-1].name]}", taken)
        taken.add(attr)
        units.append(_Unit(tuple(run), attr, sequential=True))
    return units


def _stack_parts(run: list[Layer]) -> list[tuple[list[Layer], str]]:
    """A plain stack as torchvision lays it out: spatial `features`, then a flat `classifier`."""
    split = next((i for i, layer in enumerate(run)
                  if reg.kind_of(layer.kind).out_rank == 1), len(run))
    parts = [(run[:split], "features"), (run[split:], "classifier")]
    return [(part, title) for part, title in parts if part]


def _module_lines(unit: _Unit, shapes: dict[str, Shape], names: dict[str, str]) -> list[str]:
    assert unit.attr is not None
    if not unit.sequential:
        layer = unit.last
        return [f"        # {_comment(layer, 88)}",
                *_wrap(f"        self.{unit.attr} = ", _call(layer, shapes), "")]
    lines = [f"        self.{unit.attr} = nn.Sequential(OrderedDict(["]
    for layer in unit.layers:
        lines.append(f"            # {_comment(layer, 84)}")
        lines.extend(_wrap(f'            ("{names[layer.name]}", ', _call(layer, shapes), "),"))
    lines.append("        ]))")
    return lines


def _call(layer: Layer, shapes: dict[str, Shape]) -> tuple[str, list[str]]:
    """`nn.Class` and its arguments as code: repr'd literals, torch's defaults left out."""
    assert layer.args is not None
    call = LAYERS[layer.kind](layer.args, shapes[layer.inputs[0]])
    defaults = DEFAULTS[call.cls]
    args = [_literal(value) for value in call.args]
    for key, value in call.kwargs:
        if key in defaults and type(defaults[key]) is type(value) and defaults[key] == value:
            continue
        args.append(f"{key}={_literal(value)}")
    return (call.cls if call.cls in HELPERS else f"nn.{call.cls}"), args


def _helpers(network: Network, shapes: dict[str, Shape]) -> list[str]:
    """The source of each module torch.nn lacks that the network uses, once, in order."""
    used = dict.fromkeys(LAYERS[layer.kind](layer.args, shapes[layer.inputs[0]]).cls
                         for layer in network.layers if layer.args is not None
                         and reg.kind_of(layer.kind).join is None)
    return [line for cls in used if cls in HELPERS
            for line in (*HELPERS[cls].splitlines(), "", "")]


def _wrap(prefix: str, call: tuple[str, list[str]], suffix: str) -> list[str]:
    func, args = call
    line = f"{prefix}{func}({', '.join(args)}){suffix}"
    if len(line) <= LINE_LIMIT:
        return [line]
    indent = " " * (len(prefix) - len(prefix.lstrip()) + 4)
    return [f"{prefix}{func}(", *(f"{indent}{arg}," for arg in args),
            f"{indent[:-4]}){suffix}"]


def _fill(prefix: str, expr: str) -> list[str]:
    """An expression of identifiers and operators, wrapped inside parentheses if too long."""
    if len(prefix) + len(expr) <= LINE_LIMIT:
        return [prefix + expr]
    indent = " " * (len(prefix) - len(prefix.lstrip()) + 4)
    lines = [f"{prefix}("]
    for word in expr.split(" "):
        if lines[-1] != f"{prefix}(" and len(lines[-1]) + 1 + len(word) <= LINE_LIMIT:
            lines[-1] += " " + word
        else:
            lines.append(indent + word)
    return [*lines, indent[:-4] + ")"]


def _literal(value: ArgValue | Shape) -> str:
    """A Python literal for a validated argument; anything else is refused."""
    if isinstance(value, bool | int):
        return repr(value)
    if isinstance(value, str):  # a registry "mode" (`nearest`), one of a fixed set of words
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f"float({str(value)!r})"
    if isinstance(value, tuple):
        inner = ", ".join(_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    raise TypeError(f"no literal for {value!r} in generated code")


def _forward(network: Network, units: list[_Unit], names: dict[str, str]) -> list[str]:
    var = {INPUT_NODE: INPUT_VAR} | names
    if all(unit.attr is not None for unit in units):
        # No joins, so a plain stack: thread one variable through, as torchvision's VGG does.
        body = [f"        x = self.{unit.attr}(x)" for unit in units[:-1]]
        final = f"self.{units[-1].attr}(x)" if units else "x"
        return [*body, f"        return {final}"]
    lines = []
    for unit in units:
        out = var[unit.last.name]
        args = tuple(var[name] for name in unit.layers[0].inputs)
        if unit.attr is None:
            lines.append(f"        # {_comment(unit.last, 88)}")
            lines.extend(_fill(f"        {out} = ", JOINS[unit.last.kind](args)))
        else:
            lines.append(f"        {out} = self.{unit.attr}({args[0]})")
    lines.append(f"        return {var[network.output]}")
    return lines


def _build(network: Network, shapes: dict[str, Shape], cls: str) -> list[str]:
    scheme = network.init
    classes = list(dict.fromkeys(
        _call(layer, shapes)[0] for layer in network.layers
        if reg.kind_of(layer.kind).family in _INIT_FAMILIES))
    head = [f"def build() -> {cls}:"]
    if scheme.name == "torch" or not classes:
        return [*head, f'    """A new {cls} with PyTorch\'s default initialisation."""',
                f"    return {cls}()"]
    statement, doc = _INIT[scheme.name]
    std = _literal(scheme.std)
    kinds = classes[0] if len(classes) == 1 else f"({', '.join(classes)})"
    return [*head, f'    """A new {cls} with the spec\'s init: {doc.format(std=std)}."""',
            f"    model = {cls}()",
            "    for module in model.modules():",
            f"        if isinstance(module, {kinds}):",
            f"            {statement.format(std=std)}",
            "            if module.bias is not None:",
            "                nn.init.zeros_(module.bias)",
            "    return model"]


def _renames(network: Network, names: dict[str, str], units: list[_Unit]) -> list[str]:
    """What the module calls otherwise than the spec: `def -> layer_def`, and a stack part
    whose name a layer took (`the stack's features part -> features_2`)."""
    notes = [f"{_text(layer.name, 40)} -> {names[layer.name]}" for layer in network.layers
             if names[layer.name] != layer.name]
    notes += [f"the stack's {unit.title} part -> {unit.attr} (a layer is named {unit.title})"
              for unit in units if unit.title is not None and unit.attr != unit.title]
    return notes


def _docstring(network: Network, report: Report, names: dict[str, str],
               units: list[_Unit]) -> list[str]:
    """The summary table (archspec.analysis.report's figures): one row per layer, named as in
    the spec and in `table`, then the attributes the module had to name otherwise."""
    rows = [("layer", "spec", "output", "params", "MACs"),
            ("input", "", shape_text(report.input.shape), "", "")]
    rows += [(_text(row.name, 40), _text(row.written, 24), shape_text(row.output_shape),
              f"{row.params:,}", f"{row.macs:,}") for row in report.rows]
    table = align(rows, range(3, 5))
    totals = report.totals
    return ['    """' + _sentence(network.description or network.name, 80), "",
            f"    Input {shape_text(report.input.shape)} (channels first, no batch); "
            f"{totals.params:,} parameters;", f"    {totals.macs:,} multiply-accumulates "
            "per sample (weights only).", "",
            *(f"    {row}" for row in table),
            *_note_lines("renamed attributes: ", _renames(network, names, units)),
            '    """']


def _note_lines(head: str, items: list[str]) -> list[str]:
    """`head` and the items, comma-separated, wrapped under the docstring's indent."""
    if not items:
        return []
    lines = ["", f"    {head}"]
    for i, item in enumerate(items):
        word = item + ("," if i < len(items) - 1 else "")
        if lines[-1].endswith(": ") or len(lines[-1]) + 1 + len(word) <= LINE_LIMIT - 4:
            lines[-1] += word if lines[-1].endswith(": ") else " " + word
        else:
            lines.append("        " + word)
    return lines


def _comment(layer: Layer, limit: int) -> str:
    """Where a layer came from: `line 6: CONV3-64 (x2 #1)`, safe for a comment."""
    notes = [scope.label if scope.count == 1 else f"{scope.label} #{scope.index + 1}"
             for scope in layer.scopes]
    if layer.implicit:
        notes.append(f"implicit, for {layer.origin}" if layer.origin else "implicit")
    text = f"line {layer.span.line}: {layer.written}"
    return _text(text + (f" ({', '.join(notes)})" if notes else ""), limit)


def _sentence(text: str, limit: int) -> str:
    return _text(text, limit).rstrip(".") + "."


def _text(text: str, limit: int) -> str:
    """Free text made safe inside a comment or docstring: one printable line, no quotes."""
    clean = "".join(ch if ch.isprintable() else " " for ch in text)
    clean = " ".join(clean.replace("\\", "/").replace('"', "'").split())
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


def _error(code: str, message: str, layer: Layer) -> Diagnostic:
    return Diagnostic(severity=Severity.ERROR, code=code, message=message, span=layer.span)
