"""A PyTorch model read back into a readable `.arch` spec: torch.fx trace, module tree, blocks.

The per-kind torch facts are `layers.py`'s, read in reverse: each kind's rule is run on probe
arguments to learn which torch constructor argument carries which kind argument.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import keyword
import operator
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import torch
import torch.fx as fx
from torch import nn

from archspec.backends.torch import layers
from archspec.ir import ArgValue
from archspec.kinds import registry

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
LINE_WIDTH = 95


@dataclass(frozen=True)
class Finding:
    """A part of the model with no `.arch` form: its module path, its source line, what."""

    path: str
    where: str
    message: str

    def render(self) -> str:
        at = f" ({self.where})" if self.where else ""
        return f"{self.path or '<model>'}{at}: {self.message}"


class ImportFailed(Exception):
    """The model could not be loaded, or has parts with no `.arch` form."""

    def __init__(self, findings: list[Finding]) -> None:
        super().__init__("\n".join(f.render() for f in findings))
        self.findings = findings


@dataclass
class Imported:
    """The spec's text, the parts left out (a partial spec), and where fx could not trace."""

    text: str
    findings: list[Finding]
    fallback: list[str]


# --- loading the user's callable ------------------------------------------------------------

def load_callable(where: str, name: str) -> Callable[..., Any]:
    """`name` (dotted) in the module `where` (`pkg.mod` or `path/file.py`): imports it, which
    runs the user's code."""
    try:
        if where.endswith(".py"):
            path = Path(where)
            spec = importlib.util.spec_from_file_location(f"_archspec_import_{path.stem}", path)
            if spec is None or spec.loader is None or not path.is_file():
                raise ImportFailed([Finding("", "", f"no such file: {where}")])
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except ImportFailed:
        raise
    except Exception as exc:  # the user's code may raise anything while it loads
        raise ImportFailed([Finding("", "", f"cannot import {where}: "
                                            f"{type(exc).__name__}: {exc}")]) from exc
    obj = module
    for part in name.split("."):
        if not hasattr(obj, part):
            raise ImportFailed([Finding("", "", f"{where} has no attribute {name!r}")])
        obj = getattr(obj, part)
    if not callable(obj):
        raise ImportFailed([Finding("", "", f"{where}:{name} is not callable")])
    return obj


# --- the reverse of layers.LAYERS -----------------------------------------------------------

@dataclass(frozen=True)
class _Slot:
    """A kind argument, as a probe value: where a rule puts it names the torch argument."""

    name: str


class _In:
    """The input's channels (inp[0]): the spec infers them."""


class _Probe(dict[str, Any]):
    def __init__(self, present: frozenset[str]) -> None:
        super().__init__()
        self.present = present

    def __getitem__(self, key: str) -> _Slot:
        return _Slot(key)

    def __contains__(self, key: object) -> bool:
        return key in self.present


def _helper_classes() -> dict[str, type]:
    namespace: dict[str, Any] = {"torch": torch, "nn": nn}
    for source in layers.HELPERS.values():
        exec(source, namespace)
    return {name: namespace[name] for name in layers.HELPERS}


HELPER_CLASSES = _helper_classes()


def torch_class(name: str) -> type:
    found: type = HELPER_CLASSES.get(name) or getattr(nn, name)
    return found


def _is_ours(found: type, cls: str) -> bool:
    """torch.nn's class, or the helper class the emitter writes, by its very source."""
    ours = torch_class(cls)
    if cls not in layers.HELPERS or found is ours:
        return found is ours
    return found.__bases__ == ours.__bases__ and _code(found) == _code(ours)


def _code(cls: type) -> dict[str, tuple[object, ...]]:
    """A class's methods as the names, constants and variables they use (no source to
    compare, and the bytecode varies with the module it was compiled in)."""
    return {name: (fn.__code__.co_names, fn.__code__.co_consts, fn.__code__.co_varnames)
            for name, fn in vars(cls).items() if inspect.isfunction(fn)}


@dataclass(frozen=True)
class _Reverse:
    kind: str
    rank: int  # the input's rank the rule was probed with (BN: 2-d vs 1-d)
    values: tuple[tuple[str, object], ...]  # torch argument name -> _Slot, _In or a constant


def _reverse_table() -> dict[str, list[_Reverse]]:
    table: dict[str, list[_Reverse]] = {}
    for kind, rule in layers.LAYERS.items():
        if kind in ("PRELU", "SCALE"):  # read by module_kind itself: values a flag chooses
            table.setdefault({"PRELU": "PReLU", "SCALE": "Scale"}[kind], []).append(
                _Reverse(kind, 3, ()))
            continue
        seen: set[tuple[str, int]] = set()
        for present in (frozenset(), frozenset({"out"})):
            for rank in (3, 1):
                call = rule(_Probe(present), (_In(),) * rank)  # type: ignore[arg-type]
                params = [p for p in inspect.signature(torch_class(call.cls)).parameters
                          if p != "self"]
                values = tuple(zip(params, call.args, strict=False)) + call.kwargs
                key = (call.cls, hash(repr(values)))
                if key not in seen:
                    seen.add(key)
                    table.setdefault(call.cls, []).append(_Reverse(kind, rank, values))
    return table


REVERSE = _reverse_table()

# torch's names of the values a module keeps, where they differ from its constructor's
_ATTRIBUTE = {"num_features": "num_features", "channels": "weight"}
_IGNORED = frozenset({"inplace", "device", "dtype"})  # no effect on what is computed


def _read(module: nn.Module, name: str) -> object:
    if name == "bias":
        return getattr(module, "bias", None) is not None
    if name == "num_parameters":
        return _weight(module).numel()
    if name == "scale_factor":
        value = module.scale_factor
        return int(value) if isinstance(value, float) and value.is_integer() else value
    if name == "normalized_shape":
        return module.normalized_shape
    return getattr(module, name)


def _weight(module: nn.Module) -> torch.Tensor:
    weight = module.get_parameter("weight")
    return weight


def _plain(value: object) -> object:
    """A torch value as a kind's: (3, 3) -> 3, (7, 1) -> (7, 1)."""
    if isinstance(value, (tuple, list)):
        items = tuple(value)
        if len(set(items)) == 1:
            return items[0]
        return items
    return value


def _same(a: object, b: object) -> bool:
    return _plain(a) == _plain(b)


def module_kind(module: nn.Module, rank: int | None = None
                ) -> tuple[str, dict[str, ArgValue]] | str:
    """The kind and arguments of a torch module, or why it has none."""
    cls = type(module).__name__
    candidates = REVERSE.get(cls)
    if candidates is None or not _is_ours(type(module), cls):
        return f"{cls} has no .arch kind"
    if cls == "PReLU":
        return "PRELU", {"per_channel": _weight(module).numel() > 1}
    if cls == "Scale":  # the helper keeps no init: its weights' common value, if they have one
        weight = _weight(module).detach()
        common = (not weight.is_meta and weight.numel() > 0
                  and bool((weight == weight.flatten()[0]).all()))
        return "SCALE", {"init": float(f"{float(weight.flatten()[0]):.7g}")} if common else {}
    reasons: list[str] = []
    # the rule with the most fixed values first: AdaptiveAvgPool2d(1) is GAP, not AVGPOOL(out=1)
    for rev in sorted(candidates, key=lambda r: -sum(
            not isinstance(v, (_Slot, _In)) for _, v in r.values)):
        if rank is not None and rev.rank != rank and cls in ("LayerNorm",):
            continue
        args: dict[str, ArgValue] = {}
        ok = True
        for name, value in rev.values:
            if isinstance(value, _In):
                continue
            have = _read(module, name)
            if isinstance(value, _Slot):
                args[value.name] = _plain(have)  # type: ignore[assignment]
            elif not _same(have, value):
                ok = False
                reasons.append(f"{name}={have!r}")
        if not ok:
            continue
        given = {name for name, _ in rev.values}
        for name, default in layers.DEFAULTS.get(cls, {}).items():
            if name in given or name in _IGNORED or (not hasattr(module, name) and name != "bias"):
                continue
            if not _same(_read(module, name), default):
                return f"{cls}({name}={_read(module, name)!r}): {rev.kind} has no such setting"
        if cls.startswith("Conv") and getattr(module, "padding_mode", "zeros") != "zeros":
            return f"{cls}(padding_mode={module.padding_mode!r}): CONV pads with zeros only"
        return rev.kind, args
    return f"{cls}({', '.join(reasons)}) has no .arch kind"


# --- text of a layer --------------------------------------------------------------------------

@dataclass(frozen=True)
class Num:
    """A whole number of a layer's text: a block's parameter when its uses differ."""

    value: int
    hint: str
    prefix: str = ""
    default: int | None = None  # left out when every use has this value


Frag: TypeAlias = "str | Num | _BlockUse"


def _value_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "x".join(str(v) for v in value)
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, str):
        return value if _IDENT.match(value) else f'"{value}"'
    return str(value)


def _arg_frag(name: str, value: object) -> list[Frag]:
    if isinstance(value, int) and not isinstance(value, bool):
        return [Num(value, name, f"{name}=")]
    return [f"{name}={_value_text(value)}"]


def layer_text(kind: str, args: dict[str, ArgValue]) -> list[Frag]:
    """The layer as a person writes it: shorthand where it says it all, defaults left out."""
    spec = registry.lookup(kind)
    assert spec is not None
    given: dict[str, Any] = {}
    for param in spec.params:
        if param.name not in args:
            continue
        value = args[param.name]
        default = args.get("kernel") if param.default == "kernel" else param.default
        if value is None or _same(value, default):
            continue
        given[param.name] = value
    head: list[Frag] = [kind]
    square = isinstance(args.get("kernel"), int)
    if kind == "CONV" and square and "out" not in args:
        k = int(args["kernel"])  # type: ignore[arg-type]
        dil = args.get("dilation", 1)
        if isinstance(args.get("stride"), tuple):
            return _call(kind, given, spec)
        if isinstance(dil, int) and k % 2 == 1 and args.get("pad") in (dil * (k - 1) // 2,
                                                                      "same"):
            head = ["CONV", Num(k, "kernel"), "-", Num(int(args["filters"]), "filters"),  # type: ignore[arg-type]
                    Num(int(args.get("stride", 1)), "stride", "/", 1)]  # type: ignore[arg-type]
            given = {n: v for n, v in given.items()
                     if n not in ("kernel", "filters", "stride", "pad")}
        else:
            return _call(kind, given, spec)
    elif kind == "FC":
        head = ["FC-", Num(int(args["units"]), "units")]  # type: ignore[arg-type]
        given.pop("units", None)
    elif kind in ("MAXPOOL", "AVGPOOL") and "out" not in given and isinstance(
            args.get("kernel"), int) and isinstance(args.get("stride"), int):
        head = ["POOL" if kind == "MAXPOOL" else kind, Num(int(args["kernel"]), "kernel"),  # type: ignore[arg-type]
                Num(int(args["stride"]), "stride", "/", int(args["kernel"]))]  # type: ignore[arg-type]
        given.pop("kernel", None)
        given.pop("stride", None)
    else:
        return _call(kind, given, spec)
    if given:
        head.append("(")
        for i, (name, value) in enumerate(given.items()):
            if i:
                head.append(", ")
            head += _arg_frag(name, value)
        head.append(")")
    return head


def _call(kind: str, given: dict[str, Any], spec: registry.LayerKind) -> list[Frag]:
    """`KIND(a, b, name=c)`: the leading arguments by position, the rest by name."""
    order = [p for p in spec.params if p.name in given]
    if not order:
        return [kind]
    out: list[Frag] = [kind, "("]
    positional = True
    for i, param in enumerate(order):
        if i:
            out.append(", ")
        # by position: no argument skipped before it, and required or the kind's only one
        positional = positional and param is spec.params[i] and (
            param.default is registry.REQUIRED or len(spec.params) == 1)
        value = given[param.name]
        if positional and isinstance(value, int) and not isinstance(value, bool):
            out.append(Num(value, param.name))
        elif positional:
            out.append(_value_text(value))
        else:
            out += _arg_frag(param.name, value)
    out.append(")")
    return out


# --- the traced graph as series-parallel items ------------------------------------------------

@dataclass
class Item:
    """A layer (`path` set: a module), a functional step, or a join of branches."""

    owner: tuple[str, ...]  # the module whose forward runs it (a layer: its own path)
    text: list[Frag] = field(default_factory=list)
    path: tuple[str, ...] | None = None
    module: nn.Module | None = None
    join: str | None = None  # the join's operator
    branches: list[list[Item]] = field(default_factory=list)


_JOIN_OPS: dict[Any, str] = {operator.add: "+", operator.iadd: "+", torch.add: "+",
                             operator.mul: "*", operator.imul: "*", torch.mul: "*"}
_FUNCTION_CLASS = {
    "relu": "ReLU", "relu6": "ReLU6", "sigmoid": "Sigmoid", "tanh": "Tanh", "gelu": "GELU",
    "silu": "SiLU", "hardswish": "Hardswish", "hardsigmoid": "Hardsigmoid", "mish": "Mish",
    "selu": "SELU", "elu": "ELU", "leaky_relu": "LeakyReLU", "softmax": "Softmax",
    "adaptive_avg_pool2d": "AdaptiveAvgPool2d", "adaptive_max_pool2d": "AdaptiveMaxPool2d",
    "max_pool2d": "MaxPool2d", "avg_pool2d": "AvgPool2d", "dropout": "Dropout",
    "channel_shuffle": "ChannelShuffle",
}
_FUNCTION_ONLY = frozenset({"training", "inplace", "_stacklevel", "dtype", "input", "self"})


class _Tracer(fx.Tracer):
    """Known kinds stay leaves; a module fx cannot trace through becomes one too (`opaque`)."""

    def __init__(self) -> None:
        super().__init__()
        self.record_stack_traces = True
        self.opaque: dict[str, str] = {}

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        cls = type(m).__name__
        return (cls in REVERSE and _is_ours(type(m), cls)) or super().is_leaf_module(
            m, module_qualified_name) or module_qualified_name in self.opaque

    def call_module(self, m: nn.Module, forward: Callable[..., Any], args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> Any:
        path = self.path_of_module(m)
        if self.is_leaf_module(m, path):
            return super().call_module(m, forward, args, kwargs)
        depth = len(self.module_stack)
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception as exc:  # fx refuses control flow on proxies, and the like
            while len(self.module_stack) > depth:  # what the failed call left pushed
                self.module_stack.popitem()
            self.opaque[path] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:100]}"
            return super().call_module(m, forward, args, kwargs)  # now a leaf


def _where(node: fx.Node) -> str:
    """`FILE:LINE` of the user's call that made the node: the innermost frame of its stack
    that is neither torch's nor this file's (_Tracer.call_module is on a module's stack)."""
    trace = node.stack_trace or ""
    torch_dir = str(Path(torch.__file__).parent)
    frames = [(file, line) for file, line in re.findall(r'File "([^"]+)", line (\d+)', trace)
              if not file.startswith(torch_dir) and file != __file__]
    if not frames:
        return ""
    file, line = frames[-1]
    return f"{Path(file).name}:{line}"


class _Graph:
    """The traced graph read into items; findings for what has no form."""

    def __init__(self, model: nn.Module, gm: fx.GraphModule, tracer: _Tracer,
                 input_shape: tuple[int, ...]) -> None:
        self.model = model
        self.modules = dict(model.named_modules())
        self.findings: list[Finding] = []
        self.nodes = [n for n in gm.graph.nodes]
        self.tracer = tracer
        self.input_shape = input_shape
        self.items: dict[fx.Node, Item | None] = {}  # None: a value, not a tensor step
        self.inputs: dict[fx.Node, list[fx.Node]] = {}
        self.fallback: list[str] = []

    def owner(self, node: fx.Node) -> tuple[str, ...]:
        stack = list((node.meta.get("nn_module_stack") or {}).values())
        return tuple(stack[-1][0].split(".")) if stack and stack[-1][0] else ()

    def fail(self, node: fx.Node, path: str, message: str) -> None:
        self.findings.append(Finding(path, _where(node), message))

    def read(self) -> None:
        for node in self.nodes:
            if node.op in ("placeholder", "output"):
                continue
            self.read_node(node)

    def tensor_inputs(self, node: fx.Node) -> list[fx.Node]:
        return [a for a in node.all_input_nodes if self.items.get(a, True) is not None
                and a.op != "get_attr"]

    def read_node(self, node: fx.Node) -> None:
        owner = self.owner(node)
        here = ".".join(owner)
        if node.op == "call_module":
            path = tuple(str(node.target).split("."))
            module = self.modules[str(node.target)]
            if str(node.target) in self.tracer.opaque:
                self.items[node] = self.opaque(node, path, module)
                self.inputs[node] = self.tensor_inputs(node)[:1]
                return
            found = module_kind(module)
            if isinstance(found, str):
                self.fail(node, str(node.target), found)
                self.items[node] = Item(owner=path, path=path, module=module, text=["?"])
            else:
                self.items[node] = Item(owner=path, path=path, module=module,
                                        text=layer_text(*found))
            self.inputs[node] = self.tensor_inputs(node)[:1]
            return
        target = node.target
        name = getattr(target, "__name__", str(target))
        args = list(node.args)
        if node.op == "call_method" and name in ("size", "dim"):
            self.items[node] = None
            return
        if node.op == "call_function" and target is getattr:
            self.items[node] = None
            return
        if target in _JOIN_OPS or (node.op == "call_method" and name in ("add", "mul")):
            op = _JOIN_OPS.get(target, "+" if name == "add" else "*")
            ins = [a for a in args if isinstance(a, fx.Node)]
            if len(ins) != 2 or len(args) != 2 or node.kwargs:
                self.fail(node, here, f"{name} with a constant: .arch joins only tensors")
            self.items[node] = Item(owner=owner, join=op)
            self.inputs[node] = ins
            return
        if name == "cat":
            tensors = args[0] if args else node.kwargs.get("tensors")
            dim = args[1] if len(args) > 1 else node.kwargs.get("dim", 0)
            if dim not in (1, -3) or not isinstance(tensors, (list, tuple)):
                self.fail(node, here, f"torch.cat along dim {dim}: `|` concatenates channels")
                tensors = tensors if isinstance(tensors, (list, tuple)) else []
            self.items[node] = Item(owner=owner, join="|")
            self.inputs[node] = [t for t in tensors if isinstance(t, fx.Node)]
            return
        ins = [a for a in args if isinstance(a, fx.Node)]
        self.inputs[node] = ins[:1]
        text = self.function_text(node, name, args)
        if text is None:
            self.fail(node, here, f"{node.op} {name}: no .arch form")
            text = ["?"]
        self.items[node] = Item(owner=owner, text=text)

    def function_text(self, node: fx.Node, name: str, args: list[Any]) -> list[Frag] | None:
        rest: list[Any] = args[1:]
        kw: dict[str, Any] = dict(node.kwargs)
        if name == "flatten":  # from the channels on: the batch stays
            start = rest[0] if rest else kw.get("start_dim", 0)
            end = rest[1] if len(rest) > 1 else kw.get("end_dim", -1)
            return ["FLATTEN"] if start == 1 and end == -1 else None
        if name in ("view", "reshape"):
            shape = rest[0] if len(rest) == 1 and isinstance(rest[0], (list, tuple)) else rest
            if len(shape) == 2 and shape[1] == -1 and isinstance(shape[0], fx.Node):
                return ["FLATTEN"]
            return None
        if name == "mean":
            dims = rest[0] if rest else kw.get("dim")
            keep = rest[1] if len(rest) > 1 else kw.get("keepdim", False)
            if dims is not None and sorted(int(d) % 4 for d in dims) == [2, 3]:
                return ["GAP", " - ", "FLATTEN"] if not keep else ["GAP"]
            return None
        cls = _FUNCTION_CLASS.get(name)
        if cls is None:
            return None
        fn = node.target if node.op == "call_function" else None
        bound: dict[str, Any] = {}
        if fn is not None:
            try:
                sig = inspect.signature(fn)  # type: ignore[arg-type]
                bound = dict(sig.bind(*args, **node.kwargs).arguments)
                bound.pop(next(iter(sig.parameters)), None)
            except (TypeError, ValueError):
                if rest or kw:
                    return None
        elif rest or kw:
            return None
        accepted = set(inspect.signature(torch_class(cls)).parameters)
        ctor = {k: v for k, v in bound.items() if k in accepted}
        if name == "softmax":
            ctor["dim"] = bound.get("dim")
        if any(k not in accepted and k not in _FUNCTION_ONLY and v is not None
               for k, v in bound.items()):
            return None
        if any(isinstance(v, fx.Node) for v in ctor.values()):
            return None
        found = module_kind(torch_class(cls)(**ctor))
        return None if isinstance(found, str) else layer_text(*found)

    def opaque(self, node: fx.Node, path: tuple[str, ...], module: nn.Module) -> Item:
        """A module fx could not trace: its leaf modules' calls, recorded by forward hooks,
        when they form one plain chain."""
        key = ".".join(path)
        self.fallback.append(f"{key} ({self.tracer.opaque[key]})")
        calls: list[tuple[str, nn.Module, int, int]] = []
        hooks = []
        for sub, m in module.named_modules():
            if sub and type(m).__name__ in REVERSE:
                def hook(m: nn.Module, inp: tuple[Any, ...], out: Any, sub: str = sub) -> None:
                    calls.append((sub, m, id(inp[0]) if inp else 0, id(out)))
                hooks.append(m.register_forward_hook(hook))
        keep: list[Any] = []

        def outer(m: nn.Module, inp: tuple[Any, ...], out: Any) -> None:
            keep.extend([id(inp[0]), id(out), inp, out])
        hooks.append(module.register_forward_hook(outer))
        try:
            failed = self.run()
        finally:
            for h in hooks:
                h.remove()
        if failed is not None:
            self.fail(node, key, f"fx cannot trace its forward ({self.tracer.opaque[key]}) and "
                      f"the model, run on a zero {'x'.join(map(str, (1, *self.input_shape)))} "
                      f"input to read its layers with hooks, raised {failed}")
            return Item(owner=path, path=path, module=module, text=["?"])
        chain: list[Item] = []
        previous = keep[0] if keep else None
        plain = bool(calls) and bool(keep)
        for sub, m, src, dst in calls:
            plain = plain and src == previous
            previous = dst
            found = module_kind(m)
            full = (*path, *sub.split("."))
            if isinstance(found, str):  # at the line that called the module fx could not trace
                self.fail(node, ".".join(full), found)
            chain.append(Item(owner=full, path=full, module=m,
                              text=["?"] if isinstance(found, str) else layer_text(*found)))
        if not plain or previous != (keep[1] if keep else None):
            self.fail(node, key, "fx cannot trace its forward "
                      f"({self.tracer.opaque[key]}) and its layers, run with hooks, are not "
                      "one plain chain")
        return Item(owner=path, join="chain", branches=[chain])

    def run(self) -> str | None:
        """Runs the model once on a zero input of the input's shape (the hooks record what it
        calls); why it failed (the allocation, or the model's own forward), or None."""
        was = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                self.model(torch.zeros((1, *self.input_shape)))
        except Exception as exc:  # the user's forward may raise anything; memory may run out
            return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
        finally:
            self.model.train(was)
        return None


def _dominators(graph: _Graph, start: fx.Node) -> dict[fx.Node, fx.Node]:
    """The immediate dominator of each step (the fork a join's branches leave from)."""
    order = {n: i for i, n in enumerate(graph.nodes)}
    idom: dict[fx.Node, fx.Node] = {}

    def meet(a: fx.Node, b: fx.Node) -> fx.Node:
        while a is not b:
            if order[a] > order[b]:
                a = idom[a]
            else:
                b = idom[b]
        return a

    for node in graph.nodes:
        if node is start or node not in graph.inputs:
            continue
        preds = graph.inputs[node] or [start]
        d = preds[0]
        for p in preds[1:]:
            d = meet(d, p)
        idom[node] = d
    return idom


def _chain(graph: _Graph, idom: dict[fx.Node, fx.Node], end: fx.Node, start: fx.Node,
           used: set[fx.Node]) -> list[Item]:
    items: list[Item] = []
    node = end
    while node is not start:
        if node not in graph.inputs:
            graph.fail(node, "", "a value that does not come from the input")
            break
        used.add(node)
        item = graph.items[node]
        assert item is not None
        if item.join in ("+", "*", "|"):
            fork = idom[node]
            item.branches = [_chain(graph, idom, inp, fork, used) for inp in graph.inputs[node]]
            items.append(item)
            node = fork
            continue
        if item.join == "chain":
            items.extend(reversed(item.branches[0]))
        else:
            items.append(item)
        ins = graph.inputs[node]
        if not ins:
            break
        node = ins[0]
    items.reverse()
    return items


# --- the module tree: groups, blocks and their text -------------------------------------------

@dataclass
class _Piece:
    """One element of a rendered chain: its text and whether it has a name."""

    frags: list[Frag]
    named: bool
    group: bool = False  # a group, a block call or a repeat: on its own line at the top


@dataclass
class _BlockUse:
    """A block's call: its numbers (a call inside it by reference), and its arguments once the
    block's parameters are known."""

    key: tuple[str, tuple[object, ...]]
    values: list[int | _BlockUse]
    args: list[int] = field(default_factory=list)
    result: str = ""

    def flat(self) -> list[int]:
        out: list[int] = []
        for value in self.values:
            out += value.args if isinstance(value, _BlockUse) else [value]
        return out


@dataclass
class _Block:
    cls: str
    template: tuple[object, ...]
    body: list[Frag]
    uses: list[_BlockUse] = field(default_factory=list)
    name: str = ""
    params: list[str] = field(default_factory=list)


def _snake(name: str) -> str:
    text = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()
    text = re.sub(r"[^a-z0-9_]", "_", text) or "block"
    return text if not text[0].isdigit() else f"b_{text}"


class _Writer:
    def __init__(self, graph: _Graph) -> None:
        self.graph = graph
        self.modules = graph.modules
        self.blocks: dict[tuple[str, tuple[object, ...]], _Block] = {}
        self.seen: dict[tuple[str, ...], int] = {}  # how often each module has run

    def fail(self, path: tuple[str, ...], message: str) -> None:
        self.graph.findings.append(Finding(".".join(path), "", message))

    def chain(self, items: list[Item], scope: tuple[str, ...]) -> list[_Piece]:
        runs: list[tuple[str | None, list[Item]]] = []
        for item in items:
            owner = item.owner
            if owner[:len(scope)] != scope:
                self.fail(owner, f"runs inside the forward of {'.'.join(scope) or 'the model'}"
                          " but belongs to another module: no .arch form")
                continue
            rel = owner[len(scope):]
            child = rel[0] if rel else None
            if runs and runs[-1][0] == child and child is not None and not (
                    item.path is not None and len(rel) == 1):
                runs[-1][1].append(item)
            else:
                runs.append((child, [item]))
        sequential = isinstance(self.modules.get(".".join(scope)),
                                (nn.Sequential, nn.ModuleList)) and scope != ()
        pieces: list[_Piece] = []
        position = 0
        for child, run in runs:
            if child is None:
                for item in run:
                    pieces.append(self.step(item, scope))
                continue
            path = (*scope, child)
            self.seen[path] = uses = self.seen.get(path, 0) + 1
            module = self.modules[".".join(path)]
            stateless = not any(True for _ in module.parameters()) and not any(
                True for _ in module.buffers())
            if uses > 1 and not stateless:
                self.fail(path, "runs in two places of its parent's forward: .arch gives a "
                          "layer with weights one place")
            leaf = run[0].path == path
            label: str | None = child
            if (sequential and child == str(position)) or uses > 1 or (
                    stateless and leaf and not _IDENT.match(child)):
                label = None
            elif not _IDENT.match(child) or keyword.iskeyword(child):
                self.fail(path, f"the name {child!r} is not an .arch name")
                label = None
            if leaf:
                frags = list(run[0].text)
            elif type(module) in (nn.Sequential, nn.ModuleList) and label is not None:
                inner = _fold(self.chain(run, path))
                last = inner[-1].frags[-1] if inner else ""
                if len(inner) == 1 and isinstance(last, str) and last.startswith("]*"):
                    frags = inner[0].frags  # one repeat: `layer1: [basic(64)]*3`
                else:
                    frags = ["[", *_join_pieces(inner, " - "), "]"]
            else:  # a class of its own, or a Sequential at a position: a bracket would unroll
                frags = self.block_call(module, self.chain(run, path))
            position += 1
            if label is not None:
                frags = [f"{label}: ", *frags]
            pieces.append(_Piece(frags, label is not None, not leaf))
        return pieces

    def step(self, item: Item, scope: tuple[str, ...]) -> _Piece:
        if item.join is None:
            return _Piece(list(item.text), False)
        out: list[Frag] = ["( "]
        for i, branch in enumerate(item.branches):
            if i:
                out.append(f" {item.join} ")
            pieces = self.chain(branch, scope)
            out += _join_pieces(pieces, " - ") if pieces else ["ID"]
        out.append(" )")
        return _Piece(out, False)

    def block_call(self, module: nn.Module, pieces: list[_Piece]) -> list[Frag]:
        body = _join_pieces(pieces, " - ")
        cls = type(module).__name__
        template = tuple(("#", f.hint, f.prefix, f.default) if isinstance(f, Num) else
                         ("use", f.key) if isinstance(f, _BlockUse) else f for f in body)
        block = self.blocks.setdefault((cls, template), _Block(cls, template, body))
        use = _BlockUse((cls, template), [f.value if isinstance(f, Num) else f for f in body
                                          if isinstance(f, (Num, _BlockUse))])
        block.uses.append(use)
        return [use]

    def finish(self) -> list[str]:
        """Names each block, decides its parameters, fills in the calls; the block lines.
        A block's inner calls were made first, so their arguments are known by then."""
        taken: set[str] = set()
        lines: list[str] = []
        for block in self.blocks.values():
            base = _snake(block.cls)
            if registry.lookup(base) is not None or base in ("network", "input", "block"):
                base += "_block"
            name, n = base, 2
            while name in taken:
                name, n = f"{base}_{n}", n + 1
            taken.add(name)
            block.name = name
            # the slots: each number, and each argument of an inner call
            slots: list[tuple[str, str, int | None, str | None]] = []  # hint, prefix, default
            inner: dict[int, list[str]] = {}
            for i, frag in enumerate(block.body):
                if isinstance(frag, Num):
                    slots.append((frag.hint, frag.prefix, frag.default, None))
                elif isinstance(frag, _BlockUse):
                    inner_block = self.blocks[frag.key]
                    inner[i] = inner_block.params
                    slots += [(p.rstrip("0123456789"), "", None, inner_block.name)
                              for p in inner_block.params]
            flats = [use.flat() for use in block.uses]
            columns = [tuple(f[i] for f in flats) for i in range(len(slots))]
            param_of: dict[tuple[int, ...], str] = {}
            names: list[str] = []
            for (hint, _, _, _), column in zip(slots, columns, strict=True):
                if len(set(column)) > 1 and column not in param_of:
                    short = {"filters": "c", "units": "u", "stride": "s", "groups": "g",
                             "kernel": "k", "pad": "p", "dilation": "d"}.get(hint, hint[:1])
                    pname, k = short, 2
                    while pname in names:
                        pname, k = f"{short}{k}", k + 1
                    names.append(pname)
                    param_of[column] = pname
            block.params = names

            def slot_text(j: int, prefix: str, default: int | None,
                          columns: list[tuple[int, ...]] = columns,
                          param_of: dict[tuple[int, ...], str] = param_of) -> str:
                column = columns[j]
                if column in param_of:
                    return f"{prefix}${param_of[column]}"
                return "" if column[0] == default else f"{prefix}{column[0]}"

            text: list[str] = []
            j = 0
            for i, frag in enumerate(block.body):
                if isinstance(frag, Num):
                    text.append(slot_text(j, frag.prefix, frag.default))
                    j += 1
                elif isinstance(frag, _BlockUse):
                    count = len(inner[i])
                    args = [slot_text(j + a, "", None) for a in range(count)]
                    j += count
                    text.append(f"{self.blocks[frag.key].name}({', '.join(args)})")
                else:
                    text.append(frag)
            lines.append(f"block {name}({', '.join(names)}): {''.join(text)}")
            for use, flat in zip(block.uses, flats, strict=True):
                first = {param_of[c]: flat[j] for j, c in reversed(list(enumerate(columns)))
                         if c in param_of}
                use.args = [first[p] for p in names]
                use.result = f"{name}({', '.join(str(a) for a in use.args)})"
        return lines


def _join_pieces(pieces: list[_Piece], sep: str) -> list[Frag]:
    folded = _fold(pieces)
    out: list[Frag] = []
    for i, piece in enumerate(folded):
        if i:
            out.append(sep)
        out += piece.frags
    return out


def _fold(pieces: list[_Piece]) -> list[_Piece]:
    """Runs of the same unnamed element become a repeat: `[bottleneck(256)]*5`."""
    out: list[_Piece] = []
    i = 0
    while i < len(pieces):
        j = i + 1
        if not pieces[i].named:
            while j < len(pieces) and not pieces[j].named and _key(pieces[j]) == _key(pieces[i]):
                j += 1
        if j - i > 1:
            out.append(_Piece(["[", *pieces[i].frags, f"]*{j - i}"], False, True))
        else:
            out.append(pieces[i])
        i = j
    return out


def _key(piece: _Piece) -> tuple[object, ...]:
    return tuple((f.key, tuple(f.values)) if isinstance(f, _BlockUse) else
                 (f.value, f.prefix, f.default) if isinstance(f, Num) else f
                 for f in piece.frags)


def _text(frags: list[Frag]) -> str:
    out: list[str] = []
    for f in frags:
        if isinstance(f, Num):
            out.append("" if f.value == f.default else f"{f.prefix}{f.value}")
        elif isinstance(f, _BlockUse):
            out.append(f.result)
        else:
            out.append(f)
    return "".join(out)


def _wrap(text: str, inside: bool = False, indent: str = "    ") -> Iterator[str]:
    """A long line cut after a ` - ` (a newline continues the chain); a header line (`inside`)
    only inside brackets, where a newline continues it."""
    parts: list[str] = []
    depth, start, i = 0, 0, 0
    while i < len(text):
        ch = text[i]
        depth += 1 if ch in "([" else 0
        depth -= 1 if ch in ")]" else 0
        if text.startswith(" - ", i) and (depth > 0 or not inside):
            parts.append(text[start:i])
            start = i + 3
            i += 3
            continue
        i += 1
    parts.append(text[start:])
    line = ""
    for part in parts:
        candidate = f"{line} - {part}" if line else part
        if line.strip() and len(candidate) > LINE_WIDTH:
            yield line + " -"
            line = indent + part
        else:
            line = candidate
    yield line


# --- the whole import ---------------------------------------------------------------------------

def import_model(model: nn.Module, input_shape: tuple[int, ...], *, name: str,
                 origin: str, partial: bool = False) -> Imported:
    """The model's spec text; `ImportFailed` with every finding, unless `partial`."""
    if isinstance(model, (nn.Sequential, nn.ModuleList)):
        raise ImportFailed([Finding("", "", f"the model itself is an nn.{type(model).__name__}: "
                                    "its keys (0.weight, ...) have no .arch form, as a spec's "
                                    "top level names its layers; wrap it in a module "
                                    "(`features = nn.Sequential(...)`)")])
    # Traced in training mode: a step that only runs in training (stochastic depth written
    # in plain torch) is seen, not traced away as the identity it is in evaluation.
    was = model.training
    model.train()
    tracer = _Tracer()
    try:
        graph_ir = tracer.trace(model)
    except Exception as exc:  # the model's own forward may raise anything under tracing
        raise ImportFailed([Finding("", "", f"fx cannot trace the model's own forward: "
                                            f"{type(exc).__name__}: {exc}")]) from exc
    finally:
        model.train(was)
    gm = fx.GraphModule(model, graph_ir)
    gm.graph.eliminate_dead_code()
    graph = _Graph(model, gm, tracer, input_shape)
    graph.read()
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    outputs = [n for n in graph.nodes if n.op == "output"]
    if len(placeholders) != 1 or not outputs or not isinstance(outputs[0].args[0], fx.Node):
        raise ImportFailed([Finding("", "", "the model must take one tensor and return one")])
    start, end = placeholders[0], outputs[0].args[0]
    idom = _dominators(graph, start)
    used: set[fx.Node] = set()
    items = _chain(graph, idom, end, start, used)
    if not items:  # not even with --partial: there is no part to stand as `?`
        raise ImportFailed([Finding("", "", "the model has no layers (its forward returns its "
                                            "input): an .arch spec has at least one")])
    for node, item in graph.items.items():
        if item is not None and node not in used and node.users:
            graph.fail(node, ".".join(graph.owner(node)),
                       f"{node.op} {getattr(node.target, '__name__', node.target)}: its "
                       "result is used outside a series-parallel branch: no .arch form")
    writer = _Writer(graph)
    pieces = writer.chain(items, ())
    block_lines = writer.finish()
    findings = graph.findings
    if findings and not partial:
        raise ImportFailed(findings)
    shape = "x".join(str(d) for d in input_shape)
    params = sum(p.numel() for p in model.parameters())
    lines = [f"# Imported by `archspec import` from {origin} (class {type(model).__name__}, "
             f"{params:,} parameters).",
             "# Layer and group names are the model's own: the compiled spec's state_dict",
             "# has the model's keys."]
    if graph.fallback:
        lines.append("# Read with forward hooks (fx could not trace): "
                     + ", ".join(graph.fallback))
    if findings:
        lines.append("# PARTIAL: these parts have no .arch form and stand as `?`:")
        lines += [f"#   {f.render()}" for f in findings]
    lines += [f'network {name} "{origin}"', f"input {shape}", ""]
    for line in block_lines:
        lines += _wrap(line, inside=True)
    if block_lines:
        lines.append("")
    current: list[str] = []
    for piece in _fold(pieces):
        text = _text(piece.frags)
        if piece.group:
            if current:
                lines += _wrap(" - ".join(current))
                current = []
            lines += _wrap(text)
        else:
            current.append(text)
    if current:
        lines += _wrap(" - ".join(current))
    return Imported("\n".join(lines) + "\n", findings, graph.fallback)
