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
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from archspec.analysis.cost import checkpoint_pieces
from archspec.analysis.report import Report, build_report, first_over
from archspec.analysis.units import keyed, runs, stack_parts
from archspec.backends.torch.layers import DEFAULTS, HELPERS, JOINS, LAYERS, MODULE_ATTRIBUTES
from archspec.core.diagnostics import Diagnostic, Diagnostics, Severity
from archspec.core.limits import DEFAULT_MAX_BUILD_PARAMS
from archspec.core.text import align, shape_text
from archspec.ir import INPUT_NODE, ArgValue, Layer, Module, Network, Shape
from archspec.kinds import registry as reg
from archspec.lang.shapes import Shapes, infer

LINE_LIMIT = 99
_WORD = re.compile(r"[^A-Za-z0-9_]")
INPUT_VAR = "x"
# Names the generated module uses itself; a layer called one of these is renamed.
_RESERVED = frozenset({INPUT_VAR, "self", "super", "torch", "nn", "OrderedDict", "model",
                       "module", "build", "INPUT_SHAPE"}) | MODULE_ATTRIBUTES
# Module names a generated file must not take: on sys.path (the README's snippet puts the
# build folder first) it would be imported in their place, by torch itself (`math.py`,
# `typing.py`) or by the user's code. The standard library, torch and what it imports, and the
# packages a model's users commonly import beside it.
_TAKEN_MODULES = frozenset(sys.stdlib_module_names) | {
    "torch", "torchvision", "torchaudio", "torchgen", "torchinfo", "typing_extensions",
    "numpy", "scipy", "sympy", "mpmath", "networkx", "jinja2", "filelock", "fsspec", "triton",
    "PIL", "kornia", "sklearn", "matplotlib", "pandas", "onnx", "onnxruntime", "onnxscript",
    "mlxtend", "lark", "pydantic", "graphviz", "archspec"}
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
    """Where each (non-join) layer lives in the built module: `features.conv1`, `relu3`,
    `layer1.0.conv1`; a flatten that is a step of `forward` has no module."""
    if keyed(network):
        return _hier_paths(network)
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
    is a keyword (`class` -> `class_`), would shadow a module of the standard library, of
    torch or of a package its users import (`random` -> `random_`, `torch` -> `torch_`), or
    is no identifier (`3d-net` -> `net_3d_net`)."""
    text = _WORD.sub("_", network.name)
    if not text or not (text[0].isalpha() or text[0] == "_"):
        text = "net_" + text
    if keyword.iskeyword(text) or text in _TAKEN_MODULES:
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
    if keyed(network):
        return _emit_tree(network, known, report, origin)
    names = _idents(network)
    units = _units(network, names)
    cls = class_name(network)
    sequential = any(unit.sequential for unit in units)
    lines = [
        *_preamble(network, known, origin, ordered=sequential),
        f"class {cls}(nn.Module):",
        *_docstring(network, report, names, units),
        "",
        "    def __init__(self) -> None:",
        "        super().__init__()",
    ]
    for unit in units:
        if unit.attr is not None:
            lines.extend(_module_lines(unit, known, names))
    pieces = _flat_pieces(network, units, names)
    lines += ["", "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
              *_forward(network, units, names), *_piece_methods(pieces), "", "",
              *_build(network, known, cls, pieces)]
    return "\n".join(lines) + "\n"


def _preamble(network: Network, known: dict[str, Shape], origin: str | None,
              ordered: bool) -> list[str]:
    """The module's docstring, imports (OrderedDict when a Sequential is keyed), INPUT_SHAPE
    and the helper classes it uses, in front of the network's own classes."""
    return [
        '"""' + _sentence(f"{network.name}: {network.description or 'a network'}", 80),
        "",
        "Generated by archspec from " + (_text(origin, 60) if origin else "a .arch spec")
        + "; regenerate it rather than editing it.",
        '"""',
        "",
        *(["from collections import OrderedDict", ""] if ordered else []),
        "import torch",
        "import torch.utils.checkpoint",
        "from torch import nn",
        "",
        f"INPUT_SHAPE = {_literal(network.input.shape)}",
        "",
        "",
        *_helpers(network, known),
    ]


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
    """The graph's straight runs and joins, in order (`analysis.units`), as attributes."""
    layers = network.layers
    spans = runs(network)
    taken = set(names.values())
    parts = stack_parts(network, spans)
    if parts:
        return [_Unit(layers[first:last + 1], _unique(title, taken), sequential=True,
                      title=title) for first, last, title in parts]
    found: list[_Unit] = []
    for run in (layers[first:last + 1] for first, last in spans):
        if reg.kind_of(run[0].kind).family == "join":
            found.append(_Unit(tuple(run), None))
            continue
        if len(run) == 1:
            found.append(_Unit(tuple(run), names[run[0].name]))
            continue
        attr = _unique(f"{names[run[0].name]}_to_{names[run[-1].name]}", taken)
        taken.add(attr)
        found.append(_Unit(tuple(run), attr, sequential=True))
    return found


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
    if all(unit.attr is not None for unit in units):
        # No joins, so a plain stack: thread one variable through, as torchvision's VGG does.
        body = [f"        x = self.{unit.attr}(x)" for unit in units[:-1]]
        final = f"self.{units[-1].attr}(x)" if units else "x"
        return [*body, f"        return {final}"]
    var = {INPUT_NODE: INPUT_VAR} | names
    return _statements(units, var, var[network.output])


def _statements(units: list[_Unit], var: dict[str, str], out: str) -> list[str]:
    """A flat graph's units as the statements of a `forward` that returns `out`, each
    variable deleted after its last reader."""
    reads = [tuple(var[name] for name in unit.layers[0].inputs) for unit in units]
    targets = [var[unit.last.name] for unit in units]
    lines = []
    for unit, args, target, dead in zip(units, reads, targets, _frees(targets, reads, out),
                                        strict=True):
        if unit.attr is None:
            lines.append(f"        # {_comment(unit.last, 88)}")
            lines.extend(_fill(f"        {target} = ", JOINS[unit.last.kind](args)))
        else:
            lines.append(f"        {target} = self.{unit.attr}({args[0]})")
        lines.extend(_del_lines(dead))
    lines.append(f"        return {out}")
    return lines


@dataclass(frozen=True)
class _Piece:
    """One of `analysis.cost.checkpoint_pieces` in the module: its layer count and what runs
    it, a module's path or a method of the network's class (whose lines `method` holds)."""

    size: int
    path: str
    method: tuple[str, ...] = ()


def _piece_method(name: str, layers: tuple[str, ...], body: list[str]) -> _Piece:
    """A piece that no one module runs (a branched group, a flatten step) as a method."""
    doc = _text(f"Forward from {layers[0]} to {layers[-1]}: one of PIECES.", 80) \
        if len(layers) > 1 else _text(f"Forward's {layers[0]}: one of PIECES.", 80)
    return _Piece(len(layers), name, (
        "", f"    def {name}(self, x: torch.Tensor) -> torch.Tensor:", f'        """{doc}"""',
        *body))


def _piece_methods(pieces: list[_Piece]) -> list[str]:
    return [line for piece in pieces for line in piece.method]


def _flat_pieces(network: Network, units: list[_Unit], names: dict[str, str]) -> list[_Piece]:
    """The pieces of a flat module: a layer by its path, a branched group as a method that
    runs its units."""
    paths = layer_paths(network)
    found = []
    for piece in checkpoint_pieces(network):
        if piece.unit is not None and piece.layers[0] in paths:
            found.append(_Piece(len(piece.layers), paths[piece.layers[0]]))
            continue
        inside = set(piece.layers)
        chosen = [unit for unit in units if unit.layers[0].name in inside]
        assert sum(len(unit.layers) for unit in chosen) == len(piece.layers)
        var = {INPUT_NODE: INPUT_VAR} | names | {chosen[0].layers[0].inputs[0]: INPUT_VAR}
        found.append(_piece_method(f"_piece_{names[piece.layers[-1]]}", piece.layers,
                                   _statements(chosen, var, var[piece.layers[-1]])))
    return found


def _frees(targets: list[str], reads: list[tuple[str, ...]], out: str) -> list[list[str]]:
    """Per statement of a `forward`, the variables to `del` after it: what it reads or assigns
    that no later statement reads before assigning it again (`out`, returned, is kept). So the
    module holds each intermediate only until its last reader, as the planner counts
    (`analysis.cost.inference_peak`), not until `forward` returns."""
    live = {out}
    frees: list[list[str]] = []
    for target, args in zip(reversed(targets), reversed(reads), strict=True):
        frees.append([v for v in dict.fromkeys((*args, target)) if v not in live])
        live.discard(target)
        live.update(args)
    return frees[::-1]


def _del_lines(names: list[str]) -> list[str]:
    if not names:
        return []
    if len(names) == 1:
        return [f"        del {names[0]}"]
    return _fill("        del ", "(" + ", ".join(names) + ")")


def _build(network: Network, shapes: dict[str, Shape], cls: str, pieces: Sequence[_Piece],
           blocks: Sequence[str] = ()) -> list[str]:
    """`SPEC_LINES`, `check_weights`, `BLOCKS`, `PIECES` and `build(weights=None,
    checkpoint=None)`: a new model with the spec's init, or with a state_dict file's tensors,
    checked before loading; `checkpoint="blocks"` runs each outermost call of a block class
    (`blocks`) under torch.utils.checkpoint, `checkpoint=N` forward's pieces N layers at a
    time."""
    scheme = network.init
    classes = list(dict.fromkeys(
        _call(layer, shapes)[0] for layer in network.layers
        if reg.kind_of(layer.kind).family in _INIT_FAMILIES))
    listed = f"{blocks[0]}," if len(blocks) == 1 else ", ".join(blocks)
    head = [*_spec_lines(network, shapes), *_WEIGHTS,
            "# The classes of the spec's blocks: build(checkpoint=\"blocks\") recomputes each "
            "call.", *_fill("BLOCKS: tuple[type[nn.Module], ...] = ", f"({listed})"), "", "",
            *_CHECKPOINT_BLOCKS, *_PIECES_NOTE, "PIECES: tuple[tuple[int, str], ...] = (",
            *(f"    ({piece.size}, {piece.path!r})," for piece in pieces), ")", "", "",
            *_CHECKPOINT_EVERY, *_build_signature(cls)]
    load = ["    if weights is not None:", "        load_weights(model, weights)",
            "    if isinstance(checkpoint, str):", "        checkpoint_blocks(model, checkpoint)",
            "    elif checkpoint is not None:", "        checkpoint_every(model, checkpoint)",
            "    return model"]
    if scheme.name == "torch" or not classes:
        return [*head, f'    """A new {cls} with PyTorch\'s default initialisation, or the '
                "tensors of a",
                '    state_dict file (see load_weights); checkpoint="blocks" runs each block call,',
                "    checkpoint=N the network N layers at a time, under torch.utils.checkpoint",
                '    (see checkpoint_blocks, checkpoint_every)."""', f"    model = {cls}()", *load]
    statement, doc = _INIT[scheme.name]
    std = _literal(scheme.std)
    kinds = classes[0] if len(classes) == 1 else f"({', '.join(classes)})"
    return [*head, f'    """A new {cls} with the spec\'s init: {doc.format(std=std)};',
            '    or the tensors of a state_dict file (see load_weights); checkpoint="blocks" runs',
            "    each block call, checkpoint=N the network N layers at a time, under",
            '    torch.utils.checkpoint (see checkpoint_blocks, checkpoint_every)."""',
            f"    model = {cls}()",
            "    for module in model.modules():",
            f"        if isinstance(module, {kinds}):",
            f"            {statement.format(std=std)}",
            "            if module.bias is not None:",
            "                nn.init.zeros_(module.bias)", *load]


def _build_signature(cls: str) -> list[str]:
    line = f"def build(weights: str | None = None, checkpoint: str | int | None = None) -> {cls}:"
    if len(line) <= LINE_LIMIT:
        return [line]
    return ["def build(", "    weights: str | None = None, checkpoint: str | int | None = None",
            f") -> {cls}:"]


def _spec_lines(network: Network, shapes: dict[str, Shape]) -> list[str]:
    """`SPEC_LINES`: the spec line of each module that holds tensors, by its path."""
    paths = layer_paths(network)
    lines = ["# Where each module holding tensors is written in the spec, for load_weights.",
             "SPEC_LINES = {"]
    for layer in network.layers:
        if layer.name not in paths or not _holds_tensors(layer, shapes):
            continue
        lines.append(f"    {paths[layer.name]!r}: {_text(_note(layer), 60)!r},")
    return [*lines, "}", "", ""]


def _holds_tensors(layer: Layer, shapes: dict[str, Shape]) -> bool:
    """Whether the layer's module has parameters or buffers (a conv, BN, FC, PReLU...)."""
    if layer.args is None:
        return False
    cost = reg.kind_of(layer.kind).cost
    if cost is None:
        return False
    found = cost(layer.args, shapes[layer.inputs[0]], shapes[layer.name])
    return bool(found.weights or found.biases or found.buffers)


# Activation checkpointing of the generated module: each outermost block call saves its input
# alone for backward and runs its forward again there (non-reentrant, as PyTorch advises).
_CHECKPOINT_BLOCKS = '''def checkpoint_blocks(model: nn.Module, checkpoint: str) -> None:
    """Run each outermost call of a class in BLOCKS under torch.utils.checkpoint."""
    if checkpoint != "blocks":
        raise ValueError(f"checkpoint={checkpoint!r}: the choice is 'blocks' or a number of "
                         "layers")
    if not BLOCKS:
        raise ValueError("checkpoint='blocks': the spec calls no block")

    def forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return torch.utils.checkpoint.checkpoint(super(type(self), self).forward, x,
                                                 use_reentrant=False)

    classes: dict[type, type] = {}
    stack = list(model.children())
    while stack:
        module = stack.pop()
        if isinstance(module, BLOCKS):
            block = type(module)
            if block not in classes:
                classes[block] = with_forward(block, forward)
            module.__class__ = classes[block]
        else:
            stack.extend(module.children())


def with_forward(cls: type, forward: object) -> type:
    """A subclass of `cls` of the same name whose forward is `forward`: a module given it as
    its class runs it, and so does a deep copy (torch's AveragedModel), with no reference
    cycle between a module and its own method keeping either alive."""
    return type(cls.__name__, (cls,), {"forward": forward, "__module__": cls.__module__})


'''.splitlines()

_PIECES_NOTE = [
    "# forward in pieces with one input and one output each (archspec.analysis.cost's",
    "# checkpoint_pieces): the layers each holds, and the module (by its path) or the method",
    "# that runs it. build(checkpoint=N) runs them N layers at a time (see checkpoint_every).",
]

# Checkpointing every N layers: forward's pieces in segments of at most N layers (a larger
# piece alone; `analysis.cost.segment_runs`, the rule the planner follows), each but the last
# under torch.utils.checkpoint, as torch's checkpoint_sequential leaves the last.
_CHECKPOINT_EVERY = '''def checkpoint_every(model: nn.Module, layers: int) -> None:
    """Run forward's PIECES in segments of at most `layers` layers (a larger piece alone),
    each but the last under torch.utils.checkpoint: a segment keeps its input alone for
    backward and runs its forward again there."""
    if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
        raise ValueError(f"checkpoint={layers!r}: the choice is 'blocks' or a number of "
                         "layers, at least 1")
    segments: list[list[str]] = []  # the paths of each segment's pieces
    count = 0
    for size, path in PIECES:
        if not segments or count + size > layers:
            segments.append([])
            count = 0
        segments[-1].append(path)
        count += size
    if len(segments) == 1:
        raise ValueError(f"checkpoint={layers}: the network makes one segment, the last, "
                         "which runs without checkpointing")

    def run(model: nn.Module, paths: list[str], x: torch.Tensor) -> torch.Tensor:
        for path in paths:
            piece = model
            for part in path.split("."):
                piece = getattr(piece, part)
            x = piece(x)
        return x

    def forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
        *checkpointed, last = self.checkpoint_segments
        for paths in checkpointed:
            x = torch.utils.checkpoint.checkpoint(run, self, paths, x, use_reentrant=False)
        return run(self, last, x)

    model.checkpoint_segments = segments
    model.__class__ = with_forward(type(model), forward)


'''.splitlines()


# The generated module's weights loader: every key checked before anything is loaded.
_WEIGHTS = '''def load_weights(model: nn.Module, path: str) -> None:
    """Load a state_dict file (read with weights_only=True: tensors, never code) strictly.
    Before loading, every tensor missing from the file, unexpected in it or of another shape
    is reported, with the spec line of its module; ValueError if any."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a state_dict (a dict of tensors)")
    own = model.state_dict()
    problems = []
    for key, tensor in own.items():
        where = SPEC_LINES.get(key.rpartition(".")[0], "")
        theirs = state.get(key)
        if theirs is None:
            problems.append(f"{where}: {key} {list(tensor.shape)} is missing from the file")
        elif not isinstance(theirs, torch.Tensor) or theirs.shape != tensor.shape:
            shape = list(theirs.shape) if isinstance(theirs, torch.Tensor) else "no tensor"
            problems.append(f"{where}: {key} is {shape} in the file, {list(tensor.shape)} "
                            "in the spec")
    problems += [f"{key!r} in the file has no place in the spec" for key in state
                 if key not in own]
    if problems:
        raise ValueError(f"{path} does not fit the spec:\\n  " + "\\n  ".join(problems))
    model.load_state_dict(state, strict=True)


'''.splitlines()


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
    return _docstring_rows(network, report, _renames(network, names, units))


def _docstring_rows(network: Network, report: Report, renames: list[str]) -> list[str]:
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
            *_note_lines("renamed attributes: ", renames),
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


# --- the hierarchy: named groups and block calls as submodules -----------------------------
#
# A spec with named groups or block calls is emitted as torchvision writes its models: one
# class per block (an nn.Sequential subclass when its body is a plain chain), each named group
# an nn.Sequential keyed by name or position, the network class composing them. Constructors
# are first built as data (`_Ctor`) with the spec's values in them; the calls of one block
# that share a structure become one class, each value that differs between them a
# constructor argument (the block's parameter it equals, `in_channels`, or `valueN`).


@dataclass
class _Box:
    """A submodule as the emitter sees it: its layers in order and its direct members."""

    path: tuple[str, ...]
    module: Module | None  # None for the network itself
    layers: list[Layer]
    members: list[Layer | _Box]  # layers (steps included) and boxes, in order

    @property
    def key(self) -> str:
        return self.path[-1]

    @property
    def items(self) -> list[Layer | _Box]:
        return [m for m in self.members
                if isinstance(m, _Box) or not reg.forward_step(m.kind, m.implicit)]

    @property
    def classed(self) -> bool:
        """Written as a class of its own: a block call, or a named group with steps (an
        nn.Sequential with a forward of its own)."""
        return self.module is not None and (self.module.kind == "block"
                                            or not self.module.sequential)


@dataclass
class _Ctor:
    """A constructor call as data: positional and keyword arguments (values, or code once
    resolved), or an nn.Sequential's items."""

    func: str
    args: list[tuple[str, object]]
    items: list[_Item] | None = None


@dataclass
class _Item:
    key: str
    note: str  # `line 4: CONV3-64`
    ctor: _Ctor
    general: str = ""  # `line 4: CONV`: the note a class keeps when its calls write otherwise


@dataclass(frozen=True)
class _Step:
    """One statement of a `forward`: `target = expr`, reading the variables `reads`."""

    target: str
    expr: str
    reads: tuple[str, ...]
    note: str | None = None


@dataclass
class _Class:
    name: str
    boxes: list[_Box]
    signature: list[tuple[str, str]]  # (argument, type)
    calls: list[list[tuple[str, object]]]  # per box, its arguments' values
    source: list[str]


def _tree(network: Network) -> _Box:
    modules = {module.path: module for module in network.modules}
    root = _Box((), None, [], [])
    boxes: dict[tuple[str, ...], _Box] = {(): root}
    for layer in network.layers:
        box = root
        root.layers.append(layer)
        for depth in range(1, len(layer.path)):
            prefix = layer.path[:depth]
            child = boxes.get(prefix)
            if child is None:
                child = boxes[prefix] = _Box(prefix, modules[prefix], [], [])
                box.members.append(child)
            child.layers.append(layer)
            box = child
        box.members.append(layer)
    return root


def _walk(box: _Box) -> Iterable[_Box]:
    yield box
    for member in box.members:
        if isinstance(member, _Box):
            yield from _walk(member)


def _top_keys(root: _Box) -> dict[str, str]:
    """A safe attribute name per top-level key (`def -> layer_def`), as `_idents` does."""
    keys = [m.key if isinstance(m, _Box) else m.path[-1] for m in root.members]
    safe = {key: key for key in keys if _safe_ident(key)}
    taken = set(safe.values())
    for key in keys:
        if key not in safe:
            word = _WORD.sub("_", key).strip("_")
            safe[key] = _unique(f"layer_{word}" if word else "layer", taken)
            taken.add(safe[key])
    return safe


def _safe_ident(name: str) -> bool:
    return (name.isascii() and name.isidentifier() and not keyword.iskeyword(name)
            and not keyword.issoftkeyword(name) and not name.startswith("_")
            and name not in _RESERVED)


def _hier_paths(network: Network) -> dict[str, str]:
    root = _tree(network)
    top = _top_keys(root)
    return {layer.name: ".".join((top[layer.path[0]], *layer.path[1:]))
            for layer in network.layers if not reg.forward_step(layer.kind, layer.implicit)}


def _layer_ctor(layer: Layer, shapes: dict[str, Shape], omit: bool) -> _Ctor:
    assert layer.args is not None
    call = LAYERS[layer.kind](layer.args, shapes[layer.inputs[0]])
    defaults = DEFAULTS[call.cls]
    args: list[tuple[str, object]] = [("", value) for value in call.args]
    for key, value in call.kwargs:
        if omit and key in defaults and type(defaults[key]) is type(value) \
                and defaults[key] == value:
            continue
        args.append((key, value))
    return _Ctor(call.cls if call.cls in HELPERS else f"nn.{call.cls}", args)


def _note(layer: Layer) -> str:
    return f"line {layer.span.line}: {layer.written}" + (" (implicit)" if layer.implicit else "")


def _items(box: _Box, shapes: dict[str, Shape], classes: dict[tuple[str, ...], _Class],
           omit: bool) -> list[_Item]:
    """The constructors of a box's items, with the spec's values in them."""
    found = []
    for member in box.items:
        if isinstance(member, Layer):
            found.append(_Item(member.path[-1], _note(member),
                               _layer_ctor(member, shapes, omit),
                               f"line {member.span.line}: {member.kind}"))
            continue
        assert member.module is not None
        note = f"line {member.module.span.line}: {member.module.label}"
        if member.classed:
            cls = classes[member.path]
            values = cls.calls[cls.boxes.index(member)]
            found.append(_Item(member.key, note, _Ctor(cls.name, list(values)),
                               f"line {member.module.span.line}: {cls.name}"))
        else:
            found.append(_Item(member.key, note, _Ctor("nn.Sequential", [],
                                                      _items(member, shapes, classes, omit)),
                               note))
    return found


def _values(items: list[_Item]) -> list[object]:
    out: list[object] = []
    for item in items:
        out.extend(value for _, value in item.ctor.args)
        if item.ctor.items is not None:
            out.extend(_values(item.ctor.items))
    return out


def _skeleton(items: list[_Item]) -> tuple[object, ...]:
    """The items with their values left out: what calls of one class must share."""
    return tuple((item.key, item.ctor.func, tuple(kw for kw, _ in item.ctor.args),
                  _skeleton(item.ctor.items) if item.ctor.items is not None else None)
                 for item in items)


def _resolve(items: list[_Item], code: Iterable[str], notes: list[str] | None) -> list[_Item]:
    """The items with each value replaced by its code, in `_values` order."""
    codes = iter(code)
    note_iter = iter(notes) if notes is not None else None

    def go(inner: list[_Item]) -> list[_Item]:
        out = []
        for item in inner:
            args: list[tuple[str, object]] = [(kw, next(codes)) for kw, _ in item.ctor.args]
            note = next(note_iter) if note_iter is not None else item.note
            sub = go(item.ctor.items) if item.ctor.items is not None else None
            out.append(_Item(item.key, note, _Ctor(item.ctor.func, args, sub), item.general))
        return out

    return go(items)


def _notes(items: list[_Item]) -> list[tuple[str, str]]:
    out = []
    for item in items:
        out.append((item.note, item.general))
        if item.ctor.items is not None:
            out.extend(_notes(item.ctor.items))
    return out


def _type(value: object) -> str:
    if isinstance(value, tuple):
        return "tuple[int, int]"
    return type(value).__name__


def _param_name(name: str, taken: set[str]) -> str:
    return _unique(name if _safe_ident(name) else f"p_{_WORD.sub('_', name)}", taken)


def _unify(boxes: list[_Box], item_lists: list[list[_Item]], shapes: dict[str, Shape]
           ) -> tuple[list[tuple[str, str]], list[list[tuple[str, object]]], list[_Item]]:
    """One class for boxes of one structure: its signature, each box's arguments, and the
    items with each value written as a literal or an argument."""
    columns = list(zip(*(_values(items) for items in item_lists), strict=True))
    params = [box.module.params if box.module else {} for box in boxes]
    inputs = [shapes[box.layers[0].inputs[0]][0] for box in boxes]
    names = list(params[0]) if params else []
    taken: set[str] = set()
    chosen: dict[str, str] = {}  # a source (block parameter, in_channels, valueN) → argument
    order: list[str] = []
    code: list[str] = []
    extra = 0

    def use(source: str, base: str) -> str:
        if source not in chosen:
            chosen[source] = _param_name(base, taken)
            taken.add(chosen[source])
            order.append(source)
        return chosen[source]

    for column in columns:
        if all(type(v) is type(column[0]) and v == column[0] for v in column):
            code.append(_Code(_code(column[0])))
            continue
        found = None
        for name in names:
            if all(type(p.get(name)) is type(v) and p.get(name) == v
                   for p, v in zip(params, column, strict=True)):
                found = use(f"param:{name}", name)
                break
        if found is None and all(v == c for v, c in zip(column, inputs, strict=True)):
            found = use("in", "in_channels")
        if found is None:
            for name in names:
                found = _scaled(name, params, column, use)
                if found:
                    break
        if found is None:
            extra += 1
            found = use(f"value:{len(code)}", f"value{extra}")
        code.append(_Code(found))
    notes = [list(n) for n in zip(*(_notes(items) for items in item_lists), strict=True)]
    kept = [n[0][0] if all(x[0] == n[0][0] for x in n) else n[0][1] for n in notes]
    items = _resolve(item_lists[0], code, kept)
    signature = []
    calls: list[list[tuple[str, object]]] = [[] for _ in boxes]
    for source in order:
        arg = chosen[source]
        for i in range(len(boxes)):
            if source == "in":
                value: object = inputs[i]
            elif source.startswith("param:"):
                value = params[i][source[6:]]
            else:  # a value of no parameter: its column
                value = columns[int(source[6:])][i]
            calls[i].append((arg, value))
        signature.append((arg, _type(calls[0][-1][1])))
    return signature, calls, items


def _scaled(name: str, params: list[dict[str, ArgValue]], column: tuple[object, ...],
            use: Callable[[str, str], str]) -> str | None:
    """`c * 4` when a column is a block parameter times a constant (a division is left to
    an argument of its own: `k // 3` would fit kernels 1 and 3 and read as nonsense)."""
    base = [p.get(name) for p in params]
    if not all(type(b) is int and type(v) is int and b > 0 for b, v in zip(base, column,
                                                                          strict=True)):
        return None
    first, value = base[0], column[0]
    assert isinstance(first, int) and isinstance(value, int)
    if value % first == 0 and all(v == b * (value // first)  # type: ignore[operator]
                                  for b, v in zip(base, column, strict=True)):
        return f"{use(f'param:{name}', name)} * {value // first}"
    return None


def _classes(root: _Box, shapes: dict[str, Shape], taken: set[str]
             ) -> dict[tuple[str, ...], _Class]:
    """A class per block (per structure its calls take) and per named group with steps,
    built innermost first, so a class's items can call the classes inside it."""
    depth: dict[tuple[str, ...], int] = {}
    first: dict[str, int] = {}
    families: dict[str, list[_Box]] = {}
    for order, box in enumerate(_walk(root)):
        if not box.classed:
            continue
        assert box.module is not None
        outer = [b for b in (box.path[:i] for i in range(1, len(box.path))) if b in depth]
        depth[box.path] = 1 + max((depth[b] for b in outer), default=0)
        family = f"block:{box.module.block}" if box.module.kind == "block" \
            else f"group:{'.'.join(box.path)}"
        families.setdefault(family, []).append(box)
        first.setdefault(family, order)
    ranked = sorted(families, key=lambda f: (-max(depth[b.path] for b in families[f]),
                                             first[f]))
    classes: dict[tuple[str, ...], _Class] = {}
    for family in ranked:
        boxes = families[family]
        for omit in (True, False):
            lists = [_items(box, shapes, classes, omit) for box in boxes]
            kinds = [(_skeleton(items), _forward_text(box)) for box, items in
                     zip(boxes, lists, strict=True)]
            if omit and len(set(kinds)) > 1:
                continue  # a default left out in one call only: try writing them all
            break
        groups: dict[object, list[int]] = {}
        for index, kind in enumerate(kinds):
            groups.setdefault(kind, []).append(index)
        module = boxes[0].module
        assert module is not None
        base = _camel(module.block or module.label)
        for members in groups.values():
            name = _unique(base, taken)
            taken.add(name)
            chosen = [boxes[i] for i in members]
            signature, calls, items = _unify(chosen, [lists[i] for i in members], shapes)
            cls = _Class(name, chosen, signature, calls, [])
            cls.source = _class_source(cls, items)
            for box in chosen:
                classes[box.path] = cls
    return classes


def _camel(name: str) -> str:
    text = "".join(part[:1].upper() + part[1:] for part in _WORD.sub("_", name).split("_"))
    return text if text and text[0].isalpha() else "Block" + text


def _forward_text(box: _Box) -> tuple[str, ...]:
    if box.module is not None and box.module.sequential:
        return ()
    return tuple(f"{s.target} = {s.expr}" for s in _steps(box, {}))


def _access(key: str) -> str:
    if key.isdigit():  # an item of a named group (an nn.Sequential) keyed by its position
        return f"self[{key}]"
    return f"self.{key}" if key.isidentifier() and not keyword.iskeyword(key) \
        else f'self._modules["{key}"]'


def _var(key: str, taken: set[str]) -> str:
    word = _WORD.sub("_", key)
    base = word if word.isidentifier() and not keyword.iskeyword(word) \
        and word not in _RESERVED else f"v_{word}"
    name = _unique(base, taken)
    taken.add(name)
    return name


def _steps(box: _Box, top: dict[str, str]) -> list[_Step]:
    """A module's `forward` as statements: each member on what it reads; a value's variable
    is reused as `x` once nothing later reads what `x` held."""
    produced: dict[str, int] = {}  # a layer's name → the step that gives it
    # a variable's stem, expr, reads, note
    raw: list[tuple[str, str, tuple[int, ...], str | None]] = []
    reads: tuple[int, ...]
    for member in box.members:
        first = member.layers[0] if isinstance(member, _Box) else member
        if isinstance(member, _Box):
            reads = (produced.get(first.inputs[0], -1),)
            key = top.get(member.key, member.key)
            assert member.module is not None
            stem = f"{member.module.block or 'group'}_{key}" if key.isdigit() else key
            raw.append((stem, f"{_access(key)}({{}})", reads, None))
            produced[member.layers[-1].name] = len(raw) - 1
            continue
        reads = tuple(produced.get(name, -1) for name in member.inputs)
        key = top.get(member.path[-1], member.path[-1])
        stem = f"{reg.kind_of(member.kind).short}_{key}" if key.isdigit() else key
        if reg.kind_of(member.kind).family == "join":
            holes = tuple("{}" for _ in reads)
            raw.append((stem, JOINS[member.kind](holes), reads,
                        _text(f"line {member.span.line}: {member.written}", 88)))
        elif reg.forward_step(member.kind, member.implicit):
            raw.append((stem, "torch.flatten({}, 1)", reads, None))
        else:
            raw.append((stem, f"{_access(key)}({{}})", reads, None))
        produced[member.name] = len(raw) - 1
    last_read: dict[int, int] = {}
    for index, (_, _, reads, _) in enumerate(raw):
        for value in reads:
            last_read[value] = index
    names: dict[int, str] = {-1: INPUT_VAR}
    taken = {INPUT_VAR}
    in_x = -1
    steps = []
    for index, (stem, expr, reads, note) in enumerate(raw):
        args = [names[value] for value in reads]
        if last_read.get(in_x, -1) <= index:
            names[index] = INPUT_VAR
            in_x = index
        else:
            names[index] = _var(stem, taken)
        steps.append(_Step(names[index], expr.format(*args), tuple(args), note))
    return steps


def _forward_lines(box: _Box, top: dict[str, str]) -> list[str]:
    lines = ["", "    def forward(self, x: torch.Tensor) -> torch.Tensor:"]
    steps = _steps(box, top)
    out = steps[-1].target if steps else INPUT_VAR
    frees = _frees([s.target for s in steps], [s.reads for s in steps], out)
    for step, dead in zip(steps, frees, strict=True):
        if step.note:
            lines.append(f"        # {step.note}")
        lines.extend(_fill(f"        {step.target} = ", step.expr))
        lines.extend(_del_lines(dead))
    lines.append(f"        return {out}")
    return lines


class _Code(str):
    """Code that stands for a value in a class's body: a literal or a constructor argument."""


def _code(value: object) -> str:
    """A resolved value's code, or the literal of a spec's value."""
    if isinstance(value, _Code):
        return value
    assert isinstance(value, bool | int | float | str | tuple)
    return _literal(value)


def _ctor_lines(ctor: _Ctor, prefix: str, suffix: str, indent: str) -> list[str]:
    if ctor.items is None:
        args = [f"{kw}={_code(v)}" if kw else _code(v) for kw, v in ctor.args]
        return _wrap(prefix, (ctor.func, args), suffix)
    return _sequence(ctor.items, f"{prefix}nn.Sequential(", suffix, indent)


def _sequence(items: list[_Item], head: str, suffix: str, indent: str) -> list[str]:
    """An nn.Sequential's items after `head` (which ends in an open parenthesis): positional
    when keyed 0, 1, ..., else an OrderedDict of the keys."""
    positional = [item.key for item in items] == [str(i) for i in range(len(items))]
    inner = indent + "    "
    lines = [head + ("" if positional else "OrderedDict([")]
    for item in items:
        lines.append(f"{inner}# {_text(item.note, LINE_LIMIT - len(inner) - 2)}")
        start = inner if positional else f'{inner}("{item.key}", '
        lines.extend(_ctor_lines(item.ctor, start, "," if positional else "),", inner))
    lines.append(indent + (")" if positional else "]))") + suffix)
    return lines


def _init_lines(items: list[_Item], top: dict[str, str]) -> list[str]:
    lines = []
    for item in items:
        key = top.get(item.key, item.key)
        lines.append(f"        # {_text(item.note, 88)}")
        if key.isidentifier() and not keyword.iskeyword(key):
            lines.extend(_ctor_lines(item.ctor, f"        self.{key} = ", "", "        "))
        else:
            lines.extend(_ctor_lines(item.ctor, f'        self.add_module("{key}", ', ")",
                                     "        "))
    return lines


def _class_source(cls: _Class, items: list[_Item]) -> list[str]:
    box = cls.boxes[0]
    assert box.module is not None
    where = sorted({b.module.span.line for b in cls.boxes if b.module is not None})
    lines_text = ", ".join(map(str, where[:6])) + (", ..." if len(where) > 6 else "")
    what = f"Block `{box.module.block}`" if box.module.kind == "block" \
        else f"Group `{box.module.label}`"
    doc = _text(f"{what} of the spec, used at line{'s' * (len(where) > 1)} {lines_text}.", 88)
    params = [f"{name}: {kind}" for name, kind in cls.signature]
    define = [f"    def __init__({', '.join(['self', *params])}) -> None:"]
    if len(define[0]) > LINE_LIMIT:
        define = ["    def __init__(", "        self,", *(f"        {p}," for p in params),
                  "    ) -> None:"]
    if box.module.sequential or box.module.kind == "group":
        # A named group is an nn.Sequential keyed by position, its joins and implied flatten
        # steps of a forward of its own when it has them.
        head = [f"class {cls.name}(nn.Sequential):", f'    """{doc}"""', "", *define]
        forward = [] if box.module.sequential else _forward_lines(box, {})
        return [*head, *_sequence(items, "        super().__init__(", "", "        "),
                *forward, "", ""]
    return [f"class {cls.name}(nn.Module):", f'    """{doc}"""', "", *define,
            "        super().__init__()",
            *_init_lines(items, {}), *_forward_lines(box, {}), "", ""]


def name_clashes(network: Network) -> list[Diagnostic]:
    """The names inside a named group or block call that PyTorch cannot key (`forward:
    CONV3-8` in `g: [...]`: nn.Module has an attribute `forward`), as located errors. At the
    top level such a name is renamed (`layer_forward`); inside, it would change the key."""
    return _clashes(_tree(network))


def _clashes(root: _Box) -> list[Diagnostic]:
    """`name_clashes` of the module tree `_tree` made."""
    return [Diagnostic(severity=Severity.ERROR, code="name", message=f"`{key}` cannot name "
                       "a submodule: PyTorch's nn.Module has an attribute of that name",
                       span=member.span if isinstance(member, Layer)
                       else member.module.span if member.module else member.layers[0].span)
            for box in _walk(root) if box.module is not None
            for member in box.items
            if (key := member.key if isinstance(member, _Box) else member.path[-1])
            in MODULE_ATTRIBUTES]


def _emit_tree(network: Network, known: dict[str, Shape], report: Report,
               origin: str | None) -> str:
    """The source for a spec with named groups or block calls: a class per block, then the
    network's class composing them."""
    root = _tree(network)
    clashes = _clashes(root)
    if clashes:
        raise BuildError(clashes)
    top = _top_keys(root)
    renames = [f"{_text(key, 40)} -> {ident}" for key, ident in top.items() if key != ident]
    cls = class_name(network)
    classes = _classes(root, known, {cls, *HELPERS, *_RESERVED})
    defined = list(dict.fromkeys(id(c) for c in classes.values()))
    by_id = {id(c): c for c in classes.values()}
    items = _items(root, known, classes, True)
    blocks = [by_id[k].name for k in defined
              if any(b.module is not None and b.module.kind == "block" for b in by_id[k].boxes)]
    pieces = _tree_pieces(network, root, top)
    body = [*(line for k in defined for line in by_id[k].source),
            f"class {cls}(nn.Module):", *_docstring_rows(network, report, renames), "",
            "    def __init__(self) -> None:", "        super().__init__()",
            *_init_lines(items, top), *_forward_lines(root, top), *_piece_methods(pieces)]
    ordered = any("OrderedDict([" in line and not line.lstrip().startswith(("#", '"""'))
                  for line in body)
    lines = [*_preamble(network, known, origin, ordered),
             *body, "", "", *_build(network, known, cls, pieces, blocks)]
    return "\n".join(lines) + "\n"


def _tree_pieces(network: Network, root: _Box, top: dict[str, str]) -> list[_Piece]:
    """The pieces of a module with a hierarchy: a layer, block call or named group by its
    path; a branched group at the top (or a flatten step, which has no module) as a method
    that runs its members."""
    modules = {module.path for module in network.modules}
    paths = _hier_paths(network)
    path_of = {layer.name: layer.path for layer in network.layers}
    found = []
    for piece in checkpoint_pieces(network):
        unit = piece.unit
        if unit is not None and (unit in modules or piece.layers[0] in paths):
            found.append(_Piece(len(piece.layers), ".".join((top[unit[0]], *unit[1:]))))
            continue
        inside = set(piece.layers)
        members = [m for m in root.members
                   if (m.layers[0] if isinstance(m, _Box) else m).name in inside]
        assert sum(len(m.layers) if isinstance(m, _Box) else 1 for m in members) \
            == len(piece.layers)
        box = _Box((), None, [], members)
        found.append(_piece_method(f"_piece_{top[path_of[piece.layers[-1]][0]]}", piece.layers,
                                   _forward_lines(box, top)[2:]))
    return found
