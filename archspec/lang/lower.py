"""Syntax tree → IR: expands blocks and repeats, applies defaults, inserts implicit layers."""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from archspec.core.diagnostics import Diagnostics, suggest
from archspec.core.limits import MAX_ACTIVATIONS, MAX_INT, MAX_LAYERS, MAX_NESTING
from archspec.core.source import Source, Span
from archspec.ir import (
    INPUT_NODE,
    ArgValue,
    AugmentSpec,
    DataSpec,
    InitScheme,
    InputSpec,
    Layer,
    Network,
    OptimizerSpec,
    ScheduleSpec,
    Scope,
    TrainingPlan,
)
from archspec.kinds import registry as reg
from archspec.lang import syntax as s

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_PARAM_REF = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_SHORTHAND = re.compile(r"(?P<base>[A-Za-z_]+?)(?P<suffix>\d+)?(?:-(?P<dash>\d+))?"
                        r"(?:/(?P<slash>\d+))?$")
_INT = re.compile(r"\d+$")


@dataclass
class _Block:
    name: str
    params: list[tuple[str, s.Value | None]]
    chain: s.Chain
    span: Span


@dataclass
class _Node:
    kind: str
    args: dict[str, ArgValue] | None
    inputs: list[int]
    span: Span
    written: str
    scopes: tuple[Scope, ...]
    implicit: bool = False
    origin: int | None = None
    user_name: str | None = None
    name_span: Span | None = None
    removed: bool = False


@dataclass
class _Header:
    name: str | None = None
    description: str = ""
    input: InputSpec | None = None
    activation: tuple[str, dict[str, ArgValue]] | None = None
    batchnorm: bool = False
    bn_args: dict[str, ArgValue] = field(default_factory=dict)  # the implicit BN's, defaults in
    defaults: dict[str, list[s.Arg]] = field(default_factory=dict)
    init: InitScheme = field(default_factory=InitScheme)
    dtype: str = "float32"
    blocks: dict[str, _Block] = field(default_factory=dict)


Env = dict[str, s.Value]


@contextmanager
def _deep_recursion() -> Iterator[None]:
    """Nested brackets recurse a few frames a level; MAX_NESTING levels must fit."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 5000))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def lower(syntax: s.SpecSyntax, source: Source, diags: Diagnostics) -> Network | None:
    """Lower a parsed spec; returns None when the header is too broken to give a network."""
    with _deep_recursion():
        return _Lowerer(source, diags).run(syntax)


def lower_init(directive: s.Directive, source: Source, diags: Diagnostics) -> InitScheme | None:
    """One `init SCHEME` line on its own (a command line's `--init`); None after an error."""
    lowerer = _Lowerer(source, diags)
    errors = len(diags.errors)
    lowerer._header_init(directive)
    return lowerer.header.init if len(diags.errors) == errors else None


class _Lowerer:
    def __init__(self, source: Source, diags: Diagnostics) -> None:
        self.source = source
        self.diags = diags
        self.header = _Header()
        self.nodes: list[_Node] = []
        self.scope_ids = 0
        self.block_stack: list[str] = []
        self.recursive: set[str] = set()  # blocks whose expansion would never end

    # -- header -----------------------------------------------------------------------------

    def run(self, syntax: s.SpecSyntax) -> Network | None:
        seen: dict[str, Span] = {}
        written = {d.keyword.lower() for d in syntax.header if d.status != "guessed"}
        for directive in syntax.header:
            keyword = directive.keyword.lower()
            if directive.status == "broken":  # reported by the parser; it still counts
                seen.setdefault(keyword, directive.keyword_span)
                continue
            if directive.status == "guessed" and keyword in written:
                continue  # `netwrok` beside a real `network`: the misspelling is reported
            if keyword not in s.HEADER_KEYWORDS:
                self.diags.error("header", f"`{directive.keyword}` is not a header line",
                                 directive.keyword_span,
                                 hint=suggest(keyword, s.HEADER_KEYWORDS))
                continue
            if keyword not in ("defaults", "block"):
                if keyword in seen:
                    self.diags.error("header", f"`{keyword}` is given twice",
                                     directive.keyword_span,
                                     hint=f"the first is at line {seen[keyword].line}")
                    continue
                seen[keyword] = directive.keyword_span
            getattr(self, f"_header_{keyword}")(directive)
        self.recursive = self._find_recursion()
        if self.header.batchnorm:
            bn = reg.kind_of("BN")
            call = s.Call(word=bn.name, word_span=seen["batchnorm"], args=None,
                          span=seen["batchnorm"])
            self.header.bn_args = self._args(bn, call, {}, {}) or {}
        top = self.source.span(0, 0)
        if self.header.name is None and "network" not in seen:
            self.diags.error("header", "the spec has no `network NAME` line", top,
                             hint='start the file with e.g. `network lenet5 "LeNet-5"`')
        if self.header.input is None and "input" not in seen:
            self.diags.error("header", "the spec has no `input` line", top,
                             hint="add e.g. `input 3x224x224` (channels first)")
        plan = self._train(syntax) if syntax.train_span is not None else None
        if self.header.input is None and "input" not in seen:
            return None
        # A broken `input` line still lets the body be checked (for everything but shapes).
        input_spec = self.header.input or InputSpec(shape=(1, 1, 1), order="chw", span=top)
        if not syntax.body:
            if not any(d.code in ("syntax", "limit") for d in self.diags.items):  # lines lost
                self.diags.error("body", "the network has no layers", input_spec.span)
            return None
        total = sum(self._count(chain, {}) for chain in syntax.body)
        if total > MAX_LAYERS:
            if not any(d.code in ("limit", "recursion") for d in self.diags.items):
                self.diags.error("limit", f"the network expands to more than {MAX_LAYERS:,} "
                                 "layers", syntax.body[0].span)
            return None
        tail, rank = 0, len(input_spec.shape)
        for chain in syntax.body:
            tail, rank = self._chain(chain, tail, rank, {}, (), top_level=True)
        layers = self._finish()
        if not layers:
            if not self.diags.has_errors:  # else the layers were lost to those errors
                self.diags.error("body", "the network has no layers", syntax.body[0].span)
            return None
        if len(layers) > MAX_LAYERS:  # the count above leaves out implied flattens
            self.diags.error("limit", f"the network expands to {len(layers):,} layers, over "
                             f"the limit of {MAX_LAYERS:,}", syntax.body[0].span)
            return None
        if self.header.input is None:
            return None
        if plan is not None:
            self._check_plan(plan, self.header.input.shape, syntax.train_span or input_spec.span)
        return Network(name=self.header.name or "network", description=self.header.description,
                       input=input_spec, dtype=self.header.dtype,  # type: ignore[arg-type]
                       init=self.header.init, layers=tuple(layers), plan=plan)

    def _only_call(self, directive: s.Directive, what: str) -> s.Call | None:
        if len(directive.items) != 1 or not isinstance(directive.items[0], s.Call) \
                or directive.chain is not None:
            self.diags.error("header", f"`{directive.keyword.lower()}` takes {what}",
                             directive.span)
            return None
        return directive.items[0]

    def _header_network(self, directive: s.Directive) -> None:
        items = directive.items
        if not items or not isinstance(items[0], s.Call) or items[0].args is not None \
                or not NAME.match(items[0].word) or directive.chain is not None \
                or len(items) > 2 or (len(items) == 2 and (
                    not isinstance(items[1], s.Value) or items[1].kind != "string")):
            self.diags.error("header", 'write `network NAME "description"`; NAME is a letter '
                             "or _ then letters, digits or _", directive.span)
            return
        self.header.name = items[0].word
        if len(items) == 2:
            assert isinstance(items[1], s.Value)
            self.header.description = _unquote(items[1].text)

    def _header_input(self, directive: s.Directive) -> None:
        items = directive.items
        shape_item = items[0] if items else None
        order = "chw"
        bad = directive.chain is not None or not isinstance(shape_item, s.Value) \
            or shape_item.kind not in ("size", "number") or len(items) > 2
        if not bad and len(items) == 2:
            order_item = items[1]
            if isinstance(order_item, s.Call) and order_item.word.lower() in ("hwc", "chw") \
                    and order_item.args is None:
                order = order_item.word.lower()
            else:
                bad = True
        if bad:
            self.diags.error("header", "write `input CxHxW`, `input HxWxC hwc` or `input N`",
                             directive.span)
            return
        assert isinstance(shape_item, s.Value)
        dims = [int(d) for d in re.split("[x×]", shape_item.text) if _INT.match(d)]
        if len(dims) != len(re.split("[x×]", shape_item.text)) or len(dims) not in (1, 3):
            self.diags.error("header", f"input `{shape_item.text}` must be CxHxW or a number "
                             "of features", shape_item.span)
            return
        if any(d < 1 or d > MAX_INT for d in dims):
            self.diags.error("limit", "input sizes must be between 1 and 2^31-1",
                             shape_item.span)
            return
        if math.prod(dims) > MAX_ACTIVATIONS:
            self.diags.error("limit", f"an input of {math.prod(dims):,} values could not fit "
                             "any machine", shape_item.span)
            return
        if len(dims) == 1:
            if order == "hwc":
                self.diags.error("header", "`hwc` needs three sizes", directive.span)
                return
            order = "flat"
        elif order == "hwc":
            dims = [dims[2], dims[0], dims[1]]
        self.header.input = InputSpec(shape=tuple(dims), order=order,  # type: ignore[arg-type]
                                      span=shape_item.span)

    def _header_activation(self, directive: s.Directive) -> None:
        call = self._only_call(directive, "one activation, e.g. `activation relu`")
        if call is None:
            return
        kind = reg.lookup(call.word)
        if kind is None or kind.family != "activation":
            names = [k.name for k in reg.KINDS if k.family == "activation"]
            self.diags.error("header", f"`{call.word}` is not an activation",
                             call.word_span, hint=suggest(call.word, names)
                             or "one of " + ", ".join(names))
            return
        args = self._args(kind, call, {}, {}, use_defaults=False)
        if args is not None:
            self.header.activation = (kind.name, args)

    def _header_batchnorm(self, directive: s.Directive) -> None:
        if directive.items or directive.chain is not None:
            self.diags.error("header", "`batchnorm` stands alone on its line", directive.span)
            return
        self.header.batchnorm = True

    def _header_defaults(self, directive: s.Directive) -> None:
        if not directive.items or directive.chain is not None:
            self.diags.error("header", "write `defaults KIND(arg=value, ...)`", directive.span)
        for item in directive.items:
            if not isinstance(item, s.Call) or item.args is None:
                self.diags.error("header", "write `defaults KIND(arg=value, ...)`",
                                 item.span)
                continue
            kind = reg.lookup(item.word)
            if kind is None:
                self.diags.error("unknown-kind", f"unknown layer kind `{item.word}`",
                                 item.word_span, hint=suggest(item.word, reg.all_names()))
                continue
            for arg in item.args:
                if arg.name is None:
                    self.diags.error("argument", "defaults are written name=value",
                                     arg.span)
                elif kind.param(arg.name) is None:
                    self._unknown_arg(kind, arg)
                elif (first := next((a for a in self.header.defaults.get(kind.name, ())
                                     if a.name == arg.name), None)) is not None:
                    self.diags.error("argument", f"a default for {kind.name} `{arg.name}` is "
                                     "given twice", arg.span,
                                     hint=f"the first is at line {first.span.line}")
                elif self._convert(kind.param(arg.name), arg.value) is not None:
                    self.header.defaults.setdefault(kind.name, []).append(arg)

    def _header_init(self, directive: s.Directive) -> None:
        call = self._only_call(directive, "one scheme: torch, normal(std=0.01), xavier, "
                               "kaiming or orthogonal")
        if call is None:
            return
        name = call.word.lower()
        schemes = ("torch", "normal", "xavier", "kaiming", "orthogonal")
        if name not in schemes:
            self.diags.error("header", f"unknown init scheme `{call.word}`", call.word_span,
                             hint=suggest(call.word, schemes) or "one of " + ", ".join(schemes))
            return
        values = self._model_args(call, ("std",) if name == "normal" else ())
        if values is None:
            return
        try:
            self.header.init = InitScheme(name=name, **values)  # type: ignore[arg-type]
        except ValidationError as exc:
            self._validation(exc, call)

    def _header_dtype(self, directive: s.Directive) -> None:
        call = self._only_call(directive, "float32, float16 or bfloat16")
        if call is None:
            return
        names = ("float32", "float16", "bfloat16")
        if call.word.lower() not in names or call.args is not None:
            self.diags.error("header", f"unknown dtype `{call.word}`", call.word_span,
                             hint=suggest(call.word, names) or "one of " + ", ".join(names))
            return
        self.header.dtype = call.word.lower()

    def _header_block(self, directive: s.Directive) -> None:
        head = directive.items[0] if len(directive.items) == 1 else None
        if not isinstance(head, s.Call) or directive.chain is None \
                or not NAME.match(head.word):
            self.diags.error("block", "write `block NAME(p1, p2=default): CHAIN`",
                             directive.span)
            return
        name = head.word
        if name in self.header.blocks:
            self.diags.error("block", f"block `{name}` is defined twice", head.word_span,
                             hint=f"the first is at line {self.header.blocks[name].span.line}")
            return
        if reg.lookup(name) is not None or name.upper() in (reg.IDENTITY, "INPUT"):
            self.diags.error("block", f"block `{name}` would hide the layer kind "
                             f"{name.upper()}", head.word_span)
            return
        params: list[tuple[str, s.Value | None]] = []
        for arg in head.args or ():
            pname = arg.name if arg.name is not None else (
                arg.value.text if arg.value.kind == "word" else None)
            if pname is None or not NAME.match(pname):
                self.diags.error("block", "block parameters are names, with optional "
                                 "defaults: `block b(c, s=1)`", arg.span)
                return
            if any(p == pname for p, _ in params):
                self.diags.error("block", f"parameter `{pname}` is listed twice", arg.span)
                return
            params.append((pname, arg.value if arg.name is not None else None))
        self.header.blocks[name] = _Block(name, params, directive.chain, head.word_span)

    # -- values -----------------------------------------------------------------------------

    def _subst(self, value: s.Value, env: Env) -> s.Value | None:
        if value.kind != "param":
            return value
        found = env.get(value.text[1:])
        if found is None:
            self._unknown_param(value.text, value.span, env)
        return found

    def _unknown_param(self, text: str, span: Span, env: Env) -> None:
        if not self.block_stack:
            self.diags.error("block", f"`{text}` is a block parameter, used outside a block",
                             span)
        else:
            self.diags.error("block", f"block `{self.block_stack[-1]}` has no parameter "
                             f"`{text}`", span, hint=suggest(text[1:], list(env)))

    def _convert(self, param: reg.Param, value: s.Value) -> ArgValue | None:
        """A syntax value as the parameter's type, or None after reporting why not."""
        text = value.text
        kind = param.type
        if kind == "bool":
            if value.kind == "word" and text.lower() in ("true", "false"):
                return text.lower() == "true"
            return self._bad(value, f"{param.name} is true or false")
        if kind == "pad" and value.kind == "word" and text.lower() == "same":
            return "same"
        if kind in ("size", "pad") and value.kind == "size":
            dims = [int(d) for d in re.split("[x×]", text)]
            if len(dims) != 2:
                return self._bad(value, f"{param.name} is one size like 3 or 3x3")
            for d in dims:
                if (problem := self._range(param, d)) is not None:
                    return self._bad(value, problem)
            return (dims[0], dims[1])
        if value.kind != "number":
            return self._bad(value, f"{param.name} is a number" if kind == "float"
                             else f"{param.name} is a whole number")
        if kind == "float":
            number = float(text) * (-1 if value.negative else 1)
            problem = param.check(number)
            return self._bad(value, problem) if problem else number
        if not _INT.match(text):
            return self._bad(value, f"{param.name} is a whole number")
        integer = int(text) * (-1 if value.negative else 1)
        problem = self._range(param, integer)
        return self._bad(value, problem) if problem else integer

    @staticmethod
    def _range(param: reg.Param, value: int) -> str | None:
        if value > MAX_INT:
            return f"{param.name}={value} is beyond any sane size (at most 2^31-1)"
        return param.check(value)

    def _bad(self, value: s.Value, message: str) -> None:
        self.diags.error("argument", message, value.span)

    def _unknown_arg(self, kind: reg.LayerKind, arg: s.Arg) -> None:
        names = [p.name for p in kind.params]
        hint = suggest(arg.name or "", names) or (
            f"{kind.name} takes " + ", ".join(names) if names else f"{kind.name} takes none")
        self.diags.error("argument", f"{kind.name} has no argument `{arg.name}`",
                         arg.name_span or arg.span, hint=hint)

    # -- layers -----------------------------------------------------------------------------

    def _args(self, kind: reg.LayerKind, call: s.Call, shorthand: dict[str, s.Value],
              env: Env, use_defaults: bool = True) -> dict[str, ArgValue] | None:
        """Validated arguments (shorthand, then explicit, then `defaults`, then the kind's)."""
        given: dict[str, s.Value] = dict(shorthand)
        ok = True
        params = [p for p in kind.params if p.name not in shorthand]
        positional = iter(params)
        for arg in call.args or ():
            if arg.name is None:
                param = next(positional, None)
                if param is None:
                    self.diags.error("argument", f"{kind.name} takes at most "
                                     f"{len(kind.params)} arguments here", arg.span)
                    ok = False
                    continue
                name = param.name
            else:
                name = arg.name
                if kind.param(name) is None:
                    self._unknown_arg(kind, arg)
                    ok = False
                    continue
            if name in given:
                where = f": `{call.word}` sets it already" if name in shorthand else ""
                self.diags.error("argument", f"{kind.name} gets `{name}` twice{where}", arg.span)
                ok = False
                continue
            value = self._subst(arg.value, env)
            if value is None:
                ok = False
                continue
            given[name] = value
        written = set(given)  # in the call itself, not from what is implied or a default
        if shorthand:  # what a shorthand implies (CONV3-64: pad=same) yields to written args
            for implied, value in kind.shorthand_implies:
                given.setdefault(implied, s.Value(kind="word", text=str(value),
                                                  span=call.word_span))
        if use_defaults:
            for arg in self.header.defaults.get(kind.name, ()):
                assert arg.name is not None
                given.setdefault(arg.name, arg.value)
        args: dict[str, ArgValue] = {}
        missing: list[str] = []
        for param in kind.params:
            if param.name in given:
                converted = self._convert(param, given[param.name])
                if converted is None:
                    ok = False
                else:
                    args[param.name] = converted
            elif param.default is reg.REQUIRED:
                missing.append(param.name)
            elif param.default is not None:
                args[param.name] = param.default
        if missing:
            self._missing(kind, call, missing, shorthand)
            return None
        if not ok:
            return None
        return self._resolve(kind, args, written, call)

    def _missing(self, kind: reg.LayerKind, call: s.Call, missing: list[str],
                 shorthand: dict[str, s.Value]) -> None:
        word = call.word
        listed = " and ".join(f"`{m}`" for m in missing)
        if kind.name == "CONV" and missing == ["filters"] and "kernel" in shorthand:
            k = shorthand["kernel"].text
            message = f"{word} needs a filter count: CONV{k}-64 or CONV(64, {k})"
        elif kind.name == "CONV" and missing == ["kernel"]:
            message = f"{word} needs a kernel size: CONV3-{shorthand.get('filters').text}" \
                if "filters" in shorthand else f"{word} needs a kernel size"
        else:
            example = {"CONV": "CONV3-64 or CONV(64, 3)", "MAXPOOL": "POOL2 or POOL(3, 2)",
                       "AVGPOOL": "AVGPOOL2", "FC": "FC-4096 or FC(4096)"}.get(kind.name)
            message = f"{word} needs {listed}" + (f": e.g. {example}" if example else "")
        self.diags.error("missing-argument", message, call.span)

    def _resolve(self, kind: reg.LayerKind, args: dict[str, ArgValue], written: set[str],
                 call: s.Call) -> dict[str, ArgValue] | None:
        if kind.name == "DROPOUT":
            keep = args.pop("keep", None)
            if {"p", "keep"} <= written:
                self.diags.error("argument", "give DROPOUT either p (drop) or keep, "
                                 "not both", call.span)
                return None
            if keep is not None and "p" not in written:  # a written p beats a default keep
                args["p"] = round(1.0 - float(keep), 12)
        if args.get("stride") == "kernel":
            args["stride"] = args["kernel"]
        if args.get("pad") == "same":
            kh, kw = reg.pair(args["kernel"])
            dh, dw = reg.pair(args["dilation"])
            pads = (dh * (kh - 1), dw * (kw - 1))
            if pads[0] % 2 or pads[1] % 2:
                self.diags.error("argument", "pad=same needs an odd kernel: "
                                 "dilation*(kernel-1)/2 must be whole", call.span)
                return None
            args["pad"] = pads[0] // 2 if pads[0] == pads[1] and not isinstance(
                args["kernel"], tuple) else (pads[0] // 2, pads[1] // 2)
        return args

    def _shorthand(self, kind: reg.LayerKind, match: re.Match[str],
                   call: s.Call) -> dict[str, s.Value] | None:
        given: dict[str, s.Value] = {}
        for slot in ("suffix", "dash", "slash"):
            text = match.group(slot)
            if text is None:
                continue
            target = getattr(kind, slot)
            if target is None:
                what = {"suffix": "size after its name", "dash": "`-N` count",
                        "slash": "`/stride`"}[slot]
                hint = f"did you mean `{kind.name}-{text}`?" if slot == "suffix" and \
                    kind.dash else None
                self.diags.error("argument", f"{kind.name} takes no {what}",
                                 call.word_span, hint=hint)
                return None
            given[target] = s.Value(kind="number", text=text, span=call.word_span)
        return given

    def _word(self, call: s.Call, env: Env) -> str | None:
        """The call's word with $params replaced by their (whole-number) values."""
        if "$" not in call.word:
            return call.word
        ok = True

        def replace(m: re.Match[str]) -> str:
            nonlocal ok
            value = env.get(m.group(1))
            if value is None:
                self._unknown_param(m.group(), call.word_span, env)
                ok = False
                return "0"
            if value.kind != "number" or not _INT.match(value.text) or value.negative:
                self.diags.error("argument", f"`{m.group()}` must be a whole number here, "
                                 f"not `{value.text}`", value.span)
                ok = False
                return "0"
            return value.text

        word = _PARAM_REF.sub(replace, call.word)
        return word if ok else None

    def _written(self, call: s.Call, env: Env) -> str:
        if call.args is None and "$" not in call.word:
            return call.word
        text = self.source.text[call.span.start:call.span.end]
        text = " ".join(text.split())
        if env:
            text = _PARAM_REF.sub(lambda m: env[m.group(1)].text if m.group(1) in env
                                  else m.group(), text)
        return text

    def _add(self, node: _Node) -> int:
        self.nodes.append(node)
        return len(self.nodes)

    def _layer(self, call: s.Call, tail: int, rank: int, env: Env,
               scopes: tuple[Scope, ...], name: tuple[str, Span] | None,
               leading: bool) -> tuple[int, int]:
        word = self._word(call, env)
        if word is None:
            return tail, rank
        plain = NAME.match(word) is not None
        if plain and word in self.header.blocks:
            if name is not None:
                self.diags.error("name", "a name labels one layer, not a block",
                                 name[1])
            return self._block_call(self.header.blocks[word], call, tail, rank, env, scopes)
        upper = word.upper()
        if upper == "INPUT" and call.args is None:
            if not leading:
                self.diags.error("body", "INPUT may only begin a chain", call.word_span)
            return tail, rank
        if upper == reg.IDENTITY and call.args is None:
            return tail, rank
        match = _SHORTHAND.match(word)
        kind = reg.lookup(match.group("base")) if match else None
        if kind is None:
            choices = [*reg.all_names(), *self.header.blocks]
            base = match.group("base") if match else word
            what = "layer kind or block" if self.header.blocks else "layer kind"
            self.diags.error("unknown-kind", f"unknown {what} `{word}`", call.word_span,
                             hint=suggest(base, choices) or suggest(word, choices))
            return tail, rank
        assert match is not None
        shorthand = self._shorthand(kind, match, call)
        args = None if shorthand is None else self._args(kind, call, shorthand, env)
        written = self._written(call, env)
        if kind.flat_input and rank == 3:
            # Implied flatten before the first FC after spatial layers; its origin is the FC.
            tail = self._add(_Node("FLATTEN", {}, [tail], call.span, "FLATTEN", scopes,
                                   implicit=True, origin=len(self.nodes) + 2))
        node = _Node(kind.name, args, [tail], call.span, written, scopes,
                     user_name=name[0] if name else None, name_span=name[1] if name else None)
        tail = origin = self._add(node)
        for implicit, implicit_args in self._implicit_after(kind):
            tail = self._add(_Node(implicit, dict(implicit_args), [tail], call.span, implicit,
                                   scopes, implicit=True, origin=origin))
        return tail, kind.out_rank or rank

    def _implicit_after(self, kind: reg.LayerKind) -> list[tuple[str, dict[str, ArgValue]]]:
        """The layers the `batchnorm` and `activation` headers insert after a written one."""
        after: list[tuple[str, dict[str, ArgValue]]] = []
        if kind.header_bn and self.header.batchnorm:
            after.append(("BN", self.header.bn_args))
        if kind.header_activation and self.header.activation is not None:
            after.append(self.header.activation)
        return after

    def _block_call(self, block: _Block, call: s.Call, tail: int, rank: int, env: Env,
                    scopes: tuple[Scope, ...]) -> tuple[int, int]:
        bound = self._bind(block, call, env, report=True)
        if bound is None:
            return tail, rank
        self.scope_ids += 1
        label = self._written(call, env)
        scope = Scope(id=self.scope_ids, index=0, count=1, label=label, call=call.span)
        self.block_stack.append(block.name)
        try:
            return self._chain(block.chain, tail, rank, bound, (*scopes, scope))
        finally:
            self.block_stack.pop()

    def _bind(self, block: _Block, call: s.Call, env: Env, report: bool) -> Env | None:
        bound: Env = {}
        ok = True
        names = [p for p, _ in block.params]
        positional = iter(names)

        def fail(message: str, span: Span, hint: str | None = None) -> None:
            nonlocal ok
            ok = False
            if report:
                self.diags.error("block", message, span, hint=hint)

        for arg in call.args or ():
            pname = next(positional, None) if arg.name is None else arg.name
            if pname is None:
                fail(f"block `{block.name}` takes {len(names)} argument"
                     f"{'s' * (len(names) != 1)}", arg.span)
                continue
            if pname not in names:
                fail(f"block `{block.name}` has no parameter `{pname}`", arg.span,
                     hint=suggest(pname, names))
                continue
            if pname in bound:
                fail(f"block `{block.name}` gets `{pname}` twice", arg.span)
                continue
            value = arg.value
            if value.kind == "param":
                found = env.get(value.text[1:])
                if found is None:
                    if report:
                        self._unknown_param(value.text, value.span, env)
                    ok = False
                    continue
                value = found
            bound[pname] = value
        for pname, default in block.params:
            if pname in bound:
                continue
            if default is None:
                fail(f"block `{block.name}` needs `{pname}`", call.span)
            elif default.kind == "param":  # `block b(c, d=$c)`: an earlier parameter's value
                earlier = bound.get(default.text[1:])
                if earlier is None:
                    fail(f"the default of `{pname}` names no earlier parameter of block "
                         f"`{block.name}`", default.span)
                else:
                    bound[pname] = earlier
            else:
                bound[pname] = default
        return bound if ok else None

    def _chain(self, chain: s.Chain, tail: int, rank: int, env: Env,
               scopes: tuple[Scope, ...], top_level: bool = False) -> tuple[int, int]:
        for index, element in enumerate(chain.elements):
            if self.diags.full:
                break
            leading = index == 0
            name = None
            atom: s.Element = element
            if isinstance(element, s.Named):
                if not NAME.match(element.name):
                    self.diags.error("name", f"`{element.name}` is not a name: use letters, "
                                     "digits and _", element.name_span)
                name = (element.name, element.name_span)
                atom = element.atom
            if isinstance(atom, s.Call):
                tail, rank = self._layer(atom, tail, rank, env, scopes, name, leading)
                continue
            if name is not None:
                self.diags.error("name", "a name labels one layer, not a group", name[1])
            assert isinstance(atom, s.Group | s.Branch)
            count = self._repeat_count(atom.repeat, env)
            if count is None:
                continue
            self.scope_ids += 1
            scope_id = self.scope_ids
            for copy in range(count):
                inner = scopes if count == 1 else (
                    *scopes, Scope(id=scope_id, index=copy, count=count, label=f"x{count}"))
                errors = self.diags.error_count
                if isinstance(atom, s.Group):
                    tail, rank = self._chain(atom.chain, tail, rank, env, inner)
                else:
                    tail, rank = self._branch(atom, tail, rank, env, inner)
                if self.diags.error_count > errors:
                    break  # every further copy would only find the same errors again
        return tail, rank

    def _branch(self, branch: s.Branch, tail: int, rank: int, env: Env,
                scopes: tuple[Scope, ...]) -> tuple[int, int]:
        tails: list[int] = []
        ranks: list[int] = []
        for chain in branch.chains:
            end, end_rank = self._chain(chain, tail, rank, env, scopes)
            tails.append(end)
            ranks.append(end_rank)
        op = "CONCAT" if branch.op == "concat" else "ADD"
        written = "concat" if op == "CONCAT" else "+"
        join = self._add(_Node(op, {}, tails, branch.span, written, scopes))
        return join, max(ranks)

    def _repeat_count(self, repeat: s.Repeat | None, env: Env,
                      report: bool = True) -> int | None:
        if repeat is None:
            return 1
        text = repeat.count
        where = repeat.span
        if text.startswith("$"):
            value = env.get(text[1:])
            if value is None:
                if report:
                    self._unknown_param(text, repeat.span, env)
                return None
            if value.kind != "number" or not _INT.match(value.text) or value.negative:
                if report:
                    self.diags.error("argument", f"a repeat count is a whole number, not "
                                     f"`{value.text}`", value.span)
                return None
            text, where = value.text, value.span  # point at the argument that gave it
        count = int(text)
        if count < 1:
            if report:
                self.diags.error("argument", "a repeat count must be at least 1", where)
            return None
        return count

    # -- limits -----------------------------------------------------------------------------

    def _find_recursion(self) -> set[str]:
        """Blocks that call themselves, directly or through others, used or not; each cycle
        is reported at the call that closes it. An iterative walk: blocks may be many."""
        blocks = self.header.blocks
        calls = {name: self._block_calls(block.chain) for name, block in blocks.items()}
        done: set[str] = set()
        recursive: set[str] = set()
        for root in blocks:
            if root in done:
                continue
            path, todo, on_path = [root], [iter(calls[root])], {root}
            while todo:
                step = next(todo[-1], None)
                if step is None:
                    done.add(path[-1])
                    on_path.discard(path.pop())
                    todo.pop()
                    continue
                callee, span = step
                if callee in on_path:
                    cycle = path[path.index(callee):]
                    recursive.update(cycle)
                    shown = [*cycle, callee]
                    if len(shown) > 8:
                        shown = [*shown[:4], "...", *shown[-3:]]
                    self.diags.error("recursion", f"block `{callee}` calls itself "
                                     f"({' → '.join(shown)})", span)
                elif callee not in done:
                    path.append(callee)
                    on_path.add(callee)
                    todo.append(iter(calls[callee]))
        return recursive

    def _block_calls(self, chain: s.Chain) -> list[tuple[str, Span]]:
        """The blocks a chain calls, with where."""
        found: list[tuple[str, Span]] = []
        for element in chain.elements:
            atom = element.atom if isinstance(element, s.Named) else element
            if isinstance(atom, s.Call):
                if atom.word in self.header.blocks:
                    found.append((atom.word, atom.word_span))
            else:
                for inner in [atom.chain] if isinstance(atom, s.Group) else atom.chains:
                    found.extend(self._block_calls(inner))
        return found

    def _count(self, chain: s.Chain, env: Env, depth: int = 0) -> int:
        """Layers the chain expands to, capped just above the limit; never expands anything.

        `depth` counts brackets and block calls together: both recurse when expanded.
        """
        if depth > MAX_NESTING:
            self.diags.error("limit", f"brackets and block calls nest deeper than {MAX_NESTING} "
                             "levels", chain.span)
            return MAX_LAYERS + 1
        total = 0
        for element in chain.elements:
            atom = element.atom if isinstance(element, s.Named) else element
            if isinstance(atom, s.Call):
                word = atom.word
                block = self.header.blocks.get(word)
                if block is None:
                    total += self._layers_per_call(word)
                    continue
                if block.name in self.recursive:  # reported already, where the cycle closes
                    return MAX_LAYERS + 1
                bound = self._bind(block, atom, env, report=False)
                total += self._count(block.chain, bound or {}, depth + 1)
            else:
                count = self._repeat_count(atom.repeat, env, report=False) or 1
                chains = [atom.chain] if isinstance(atom, s.Group) else list(atom.chains)
                joins = int(isinstance(atom, s.Branch))
                inner = sum(self._count(c, env, depth + 1) for c in chains) + joins
                if inner <= MAX_LAYERS and inner * count > MAX_LAYERS and atom.repeat:
                    self.diags.error("limit", f"this repeat expands to {inner * count:,} "
                                     f"layers, over the limit of {MAX_LAYERS:,}",
                                     atom.repeat.span)
                total += min(inner * count, MAX_LAYERS + 1)
            if total > MAX_LAYERS:
                return MAX_LAYERS + 1
        return total

    def _layers_per_call(self, word: str) -> int:
        """A written layer and the implicit BN and activation the header adds after it."""
        match = _SHORTHAND.match(_PARAM_REF.sub("1", word))
        kind = reg.lookup(match.group("base")) if match else None
        if kind is None:
            return 1
        return 1 + len(self._implicit_after(kind))

    # -- finishing --------------------------------------------------------------------------

    def _finish(self) -> list[Layer]:
        nodes = self.nodes
        if self.header.activation is not None:
            self._drop_classifier_activation()
        alias: dict[int, int] = {}
        for index, node in enumerate(nodes, start=1):
            if node.removed:
                alias[index] = node.inputs[0]
        names = self._names()
        layers: list[Layer] = []
        for index, node in enumerate(nodes, start=1):
            if node.removed:
                continue
            inputs = []
            for i in node.inputs:
                while i in alias:
                    i = alias[i]
                inputs.append(names.get(i, INPUT_NODE))
            layers.append(Layer(
                name=names[index], kind=node.kind, args=node.args, inputs=tuple(inputs),
                span=node.span, written=node.written, implicit=node.implicit,
                origin=names.get(node.origin) if node.origin else None, scopes=node.scopes))
        return layers

    def _drop_classifier_activation(self) -> None:
        last = None
        for index, node in enumerate(self.nodes, start=1):
            if not node.implicit and reg.kind_of(node.kind).header_activation:
                last = index
        for node in self.nodes:
            if node.implicit and node.origin == last and \
                    reg.kind_of(node.kind).family == "activation":
                node.removed = True

    def _names(self) -> dict[int, str]:
        names: dict[int, str] = {}
        used: dict[str, Span | None] = {}  # a user's name → where; generated → None
        for index, node in enumerate(self.nodes, start=1):
            if node.user_name is None or node.removed:
                continue
            if node.user_name == INPUT_NODE:
                self.diags.error("name", f"`{INPUT_NODE}` names the network's input; choose "
                                 "another name", node.name_span or node.span)
                continue
            if node.user_name in used:
                first = used.get(node.user_name)
                hint = f"the first is at line {first.line}" if first else None
                if first is not None and first == node.name_span:
                    hint = "a named layer inside a repeat or block is copied; remove the name"
                self.diags.error("name", f"the name `{node.user_name}` is used twice",
                                 node.name_span or node.span, hint=hint)
                continue
            used[node.user_name] = node.name_span or node.span
            names[index] = node.user_name
        counters: dict[str, int] = {}
        for index, node in enumerate(self.nodes, start=1):
            if node.removed or node.implicit:
                continue
            short = reg.kind_of(node.kind).short
            counters[short] = counters.get(short, 0) + 1  # named layers keep their place
            if index not in names:
                names[index] = _fresh(f"{short}{counters[short]}", used)
        for index, node in enumerate(self.nodes, start=1):
            if node.removed or index in names:
                continue
            base = names.get(node.origin or 0, "layer")
            names[index] = _fresh(f"{base}_{reg.kind_of(node.kind).short}", used)
        return names

    # -- train ------------------------------------------------------------------------------

    def _model_args(self, call: s.Call, positional: tuple[str, ...]) -> dict[str, Any] | None:
        values: dict[str, Any] = {}
        names = iter(positional)
        for arg in call.args or ():
            name = arg.name if arg.name is not None else next(names, None)
            if name is None:
                self.diags.error("train", f"`{call.word}` takes no positional argument "
                                 "here; write name=value", arg.span)
                return None
            values[name] = _literal(arg.value)
        return values

    def _validation(self, exc: ValidationError, call: s.Call | None,
                    span: Span | None = None) -> None:
        for error in exc.errors():
            where = span or (call.span if call else self.source.span(0, 0))
            field_name = str(error["loc"][0]) if error["loc"] else None
            if call is not None:
                for arg in call.args or ():
                    if arg.name == field_name:
                        where = arg.value.span if error["type"] != "extra_forbidden" \
                            else arg.span
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = f"`{call.word if call else ''}` has no argument `{field_name}`"
            elif field_name:
                message = f"{field_name} {_must(message)}"
            self.diags.error("train", message, where)

    def _train(self, syntax: s.SpecSyntax) -> TrainingPlan | None:
        fields: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        ok = True
        for directive in syntax.train:
            key = directive.keyword.lower()
            handler = _TRAIN_SETTINGS.get(key)
            if handler is None:
                self.diags.error("train", f"unknown train setting `{directive.keyword}`",
                                 directive.keyword_span,
                                 hint=suggest(key, list(_TRAIN_SETTINGS)))
                ok = False
                continue
            if key in spans:
                self.diags.error("train", f"`{key}` is given twice", directive.keyword_span)
                ok = False
                continue
            spans[key] = directive.span
            value = handler(self, directive)
            if value is None:
                ok = False
            else:
                fields[key] = value
        try:
            plan = TrainingPlan(**fields, spans=spans)
        except ValidationError as exc:
            for error in exc.errors():
                key = str(error["loc"][0])
                self.diags.error("train", f"{key} {_must(error['msg'])}",
                                 spans.get(key, syntax.train_span or self.source.span(0, 0)))
            return None
        return plan if ok else None

    def _check_plan(self, plan: TrainingPlan, shape: tuple[int, ...], fallback: Span) -> None:
        """What a plan asks of the network and of itself (augment size, snapshots)."""

        def where(key: str) -> Span:
            return plan.spans.get(key, fallback)

        if plan.augment and len(shape) != 3:
            self.diags.error("train", "augment needs an image input (CxHxW), not a flat vector",
                             where("augment"))
        elif plan.augment and plan.augmented_size((shape[1], shape[2])) != shape[1:]:
            size = plan.augmented_size((shape[1], shape[2]))
            self.diags.error("train", f"augment ends with {size[0]}x{size[1]} images but the "
                             f"input is {shape[1]}x{shape[2]}; end the chain with "
                             f"random_crop({shape[1]})", where("augment"))
        if plan.snapshots == 1:
            return
        if plan.ensemble > 1:
            self.diags.error("train", "use ensemble or snapshots, not both", where("snapshots"))
        elif plan.schedule.name != "sgdr":
            self.diags.error("train", "snapshots are taken at the ends of SGDR cycles: add "
                             "`schedule sgdr(period=..., mult=...)`", where("snapshots"))
        # Whether the epochs hold enough cycles is checked when training starts: `train
        # --epochs N` may change them.

    def _setting_call(self, directive: s.Directive, choices: tuple[str, ...]) -> s.Call | None:
        if len(directive.items) != 1 or not isinstance(directive.items[0], s.Call):
            self.diags.error("train", f"`{directive.keyword}` takes one of: "
                             + ", ".join(choices), directive.span)
            return None
        call = directive.items[0]
        if call.word.lower() not in choices:
            self.diags.error("train", f"unknown {directive.keyword.lower()} `{call.word}`",
                             call.word_span, hint=suggest(call.word, choices)
                             or "one of " + ", ".join(choices))
            return None
        return call

    def _setting_model(self, directive: s.Directive, model: Any,
                       choices: dict[str, tuple[str, ...]]) -> Any:
        call = self._setting_call(directive, tuple(choices))
        if call is None:
            return None
        name = call.word.lower()
        values = self._model_args(call, choices[name])
        if values is None:
            return None
        allowed = set(choices[name]) | _KEYWORD_ONLY.get(name, set())
        for key in values:
            if key not in allowed:
                arg = next(a for a in call.args or () if a.name == key)
                self.diags.error("train", f"`{name}` has no argument `{key}`", arg.span,
                                 hint=suggest(key, sorted(allowed)))
                return None
        try:
            return model(name=name, **values)
        except ValidationError as exc:
            self._validation(exc, call)
            return None

    def _set_int(self, directive: s.Directive) -> int | None:
        items = directive.items
        signed = len(items) == 1 and bool(  # `seed -1`: the grammar reads `-` as a separator
            self.source.text[directive.keyword_span.end:items[0].span.start].strip())
        if len(items) != 1 or not isinstance(items[0], s.Value) or items[0].kind != "number" \
                or not _INT.match(items[0].text) or int(items[0].text) > MAX_INT or signed:
            low = 0 if directive.keyword.lower() == "seed" else 1
            self.diags.error("train", f"`{directive.keyword}` takes a whole number, at least "
                             f"{low}", directive.span)
            return None
        return int(items[0].text)

    def _set_word(self, directive: s.Directive, choices: tuple[str, ...]) -> str | None:
        call = self._setting_call(directive, choices)
        return call.word.lower() if call is not None else None

    def _set_bool(self, directive: s.Directive) -> bool | None:
        word = self._set_word(directive, ("true", "false"))
        return None if word is None else word == "true"

    def _set_data(self, directive: s.Directive) -> DataSpec | None:
        spec = self._setting_model(directive, DataSpec, {
            "digits": (), "mnist5k": (), "folder": ("path",), "synthetic": ("classes", "n")})
        if spec is not None and spec.name == "folder" and not spec.path:
            self.diags.error("train", 'write `data folder("path")`', directive.span)
            return None
        return spec

    def _set_augment(self, directive: s.Directive) -> tuple[AugmentSpec, ...] | None:
        out: list[AugmentSpec] = []
        ok = True
        for item in directive.items:  # every step is checked, so all its errors show at once
            if not isinstance(item, s.Call):
                self.diags.error("train", "augment is a chain like `hflip - rotate(20)`",
                                 item.span)
                ok = False
                continue
            name = item.word.lower()
            positional = _AUGMENTS.get(name)
            if positional is None:
                self.diags.error("train", f"unknown augmentation `{item.word}`", item.word_span,
                                 hint=suggest(name, list(_AUGMENTS)))
                ok = False
                continue
            values = self._model_args(item, positional[0])
            problem = None if values is None else _check_augment(name, values, positional)
            if problem is not None:
                self.diags.error("train", problem, item.span)
            if values is None or problem is not None:
                ok = False
                continue
            out.append(AugmentSpec(name=name, args=values))  # type: ignore[arg-type]
        return tuple(out) if ok else None


_KEYWORD_ONLY: dict[str, set[str]] = {
    "sgd": {"lr", "momentum", "nesterov", "weight_decay"},
    "adam": {"lr", "weight_decay"}, "adamw": {"lr", "weight_decay"},
    "step": {"every", "gamma"}, "plateau": {"factor", "patience"}, "sgdr": {"period", "mult"},
}

# name: (positional names, required names, all allowed names)
_AUGMENTS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "hflip": ((), (), ()),
    "rotate": (("deg",), ("deg",), ("deg",)),
    "color_jitter": ((), (), ("brightness", "contrast", "saturation", "hue")),
    "resize": (("size",), ("size",), ("size",)),
    "random_crop": (("size", "pad"), ("size",), ("size", "pad")),
    "scale": (("min", "max"), ("min", "max"), ("min", "max")),
}


def _check_augment(name: str, values: dict[str, Any],
                   spec: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]) -> str | None:
    _positional, required, allowed = spec
    for key, value in values.items():
        if key not in allowed:
            return f"`{name}` has no argument `{key}`" + (
                f"; it takes {', '.join(allowed)}" if allowed else "")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"`{name}({key}=...)` is a number"
        if value < 0:
            return f"`{name}({key}=...)` must not be negative"
    for key in required:
        if key not in values:
            return f"`{name}` needs `{key}`"
    if name == "color_jitter" and values.get("hue", 0) > 0.5:
        return "color_jitter hue is at most 0.5"
    if name == "scale" and not 0 < values["min"] <= values["max"]:
        return "scale(min, max) needs 0 < min <= max"
    if name in ("resize", "random_crop") and (values["size"] < 1 or values["size"] != int(
            values["size"])):
        return f"`{name}` size is a whole number of pixels"
    return None


def _literal(value: s.Value) -> Any:
    if value.kind == "string":
        return _unquote(value.text)
    if value.kind == "number":
        number: float = int(value.text) if _INT.match(value.text) else float(value.text)
        return -number if value.negative else number
    if value.kind == "word" and value.text.lower() in ("true", "false"):
        return value.text.lower() == "true"
    return value.text


def _must(message: str) -> str:
    """pydantic's "Input should be greater than 0" as "must be greater than 0"."""
    return re.sub(r"^(input|value) should", "must", message, flags=re.IGNORECASE)


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def _fresh(name: str, used: dict[str, Span | None]) -> str:
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{name}_{n}"
    used[candidate] = None
    return candidate


_TRAIN_SETTINGS: dict[str, Any] = {
    "data": _Lowerer._set_data,
    "batch": _Lowerer._set_int,
    "epochs": _Lowerer._set_int,
    "ensemble": _Lowerer._set_int,
    "snapshots": _Lowerer._set_int,
    "seed": _Lowerer._set_int,
    "optimizer": lambda self, d: self._setting_model(d, OptimizerSpec, {
        "sgd": ("lr",), "adam": ("lr",), "adamw": ("lr",)}),
    "schedule": lambda self, d: self._setting_model(d, ScheduleSpec, {
        "none": (), "step": ("every", "gamma"), "plateau": ("factor", "patience"),
        "cosine": (), "sgdr": ("period", "mult")}),
    "augment": _Lowerer._set_augment,
    "device": lambda self, d: self._set_word(d, ("cpu", "cuda")),
    "precision": lambda self, d: self._set_word(d, ("fp32", "bf16")),
    "channels_last": _Lowerer._set_bool,
}
