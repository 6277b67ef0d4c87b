"""The header lines: network, input, activation, batchnorm, defaults, init, dtype and blocks."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import cast

from pydantic import ValidationError

from archspec.catalog import DTYPES, INIT_NAMES, INIT_SCHEMES, DType
from archspec.core.diagnostics import Diagnostics, suggest
from archspec.core.limits import MAX_ACTIVATIONS, MAX_INT
from archspec.core.source import Span
from archspec.ir import ArgValue, InitScheme, InputOrder, InputSpec
from archspec.kinds import registry as reg
from archspec.lang import syntax as s
from archspec.lang.args import INT, PARAM_REF, Arguments, unquote

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")


# Plain classes with slots, not dataclasses: CPython 3.11 compiles a dataclass's methods from
# source when its module is imported, ~0.5 ms a class at every start (docs/table.md, Speed).
class Block:
    """A `block` definition: its name, parameters (with their defaults), chain and where."""

    __slots__ = ("chain", "name", "params", "span")

    def __init__(self, name: str, params: list[tuple[str, s.Value | None]], chain: s.Chain,
                 span: Span) -> None:
        self.name = name
        self.params = params
        self.chain = chain
        self.span = span


class Header:
    """What the header lines say, filled in by HeaderReader, each field its default until then."""

    __slots__ = ("activation", "batchnorm", "blocks", "bn_args", "defaults", "description",
                 "dtype", "init", "input", "name", "refused")

    def __init__(self) -> None:
        self.name: str | None = None
        self.description = ""
        self.input: InputSpec | None = None
        self.activation: tuple[str, dict[str, ArgValue]] | None = None
        self.batchnorm = False
        self.bn_args: dict[str, ArgValue] = {}  # the implicit BN's, defaults included
        self.defaults: dict[str, list[s.Arg]] = {}
        self.init = InitScheme.model_construct()
        self.dtype: DType = "float32"
        self.blocks: dict[str, Block] = {}
        # Blocks whose definition was refused, with an error there: their calls add no other.
        self.refused: set[str] = set()


class HeaderReader:
    """Reads the header lines into `header`, checking each; did-you-mean for what is unknown."""

    def __init__(self, header: Header, args: Arguments, diags: Diagnostics) -> None:
        self.header = header
        self.args = args
        self.diags = diags

    def read(self, syntax: s.SpecSyntax) -> dict[str, Span]:
        """Every header line, each keyword at most once (but `defaults` and `block`); returns
        where each keyword stands."""
        seen: dict[str, Span] = {}
        written = {d.keyword.lower() for d in syntax.header if d.status != "guessed"}
        layers = syntax.body[0].span.start if syntax.body else len(self.args.source.text)
        for directive in syntax.header:
            keyword = directive.keyword.lower()
            if directive.status == "broken":  # reported by the parser; it still counts
                seen.setdefault(keyword, directive.keyword_span)
                if keyword == "block":
                    self._refuse_broken_block(directive)
                continue
            if directive.status == "guessed" and keyword in written:
                continue  # `netwrok` beside a real `network`: the misspelling is reported
            reader = _READERS.get(keyword)
            if reader is None:
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
            errors = self.diags.error_count
            reader(self, directive)
            if directive.span.start > layers and keyword != "block" \
                    and directive.status == "written" and self.diags.error_count == errors:
                # only a line that applies: one given twice or in error is that error alone
                self.diags.warning("header", f"`{keyword}` comes after the layers; it applies "
                                   "to the whole network", directive.keyword_span,
                                   hint="move it above the first layer")
        return seen

    def implicit_bn(self, where: Span) -> None:
        """The arguments of the BN that `batchnorm` inserts: the kind's, then `defaults`."""
        bn = reg.kind_of("BN")
        call = s.Call(word=bn.name, word_span=where, args=None, span=where)
        self.header.bn_args = self.args.args(bn, call, {}, {}) or {}

    def _only_call(self, directive: s.Directive, what: str) -> s.Call | None:
        if len(directive.items) != 1 or not isinstance(directive.items[0], s.Call) \
                or directive.chain is not None:
            self.diags.error("header", f"`{directive.keyword.lower()}` takes {what}",
                             directive.span)
            return None
        return directive.items[0]

    def network(self, directive: s.Directive) -> None:
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
            self.header.description = unquote(items[1].text)

    def input(self, directive: s.Directive) -> None:
        items = directive.items
        shape_item = items[0] if items else None
        order: InputOrder = "chw"
        bad = directive.chain is not None or not isinstance(shape_item, s.Value) \
            or shape_item.kind not in ("size", "number") or len(items) > 2
        if not bad and len(items) == 2:
            order_item = items[1]
            if isinstance(order_item, s.Call) and order_item.word.lower() in ("hwc", "chw") \
                    and order_item.args is None:
                order = cast(InputOrder, order_item.word.lower())
            else:
                bad = True
        if bad:
            self.diags.error("header", "write `input CxHxW`, `input HxWxC hwc` or `input N`",
                             directive.span)
            return
        assert isinstance(shape_item, s.Value)
        dims = [int(d) for d in re.split("[x×]", shape_item.text) if INT.match(d)]
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
        elif len(items) == 1:
            self._warn_channels_last(dims, shape_item)
        # Checked above: built as it is, like the layers (no validator for archspec's own data).
        self.header.input = InputSpec.model_construct(shape=tuple(dims), order=order,
                                                      span=shape_item.span)

    def _warn_channels_last(self, dims: list[int], item: s.Value) -> None:
        """`input 32x32x3`, the slides' HxWxC order, reads as 32 channels of 32x3 pixels."""
        c, h, w = dims
        if w in (1, 3) and c > 4 and h > 4:
            self.diags.warning(
                "input", f"`input {item.text}` reads as {c} channels of {h}x{w} pixels; "
                f"{w} channel{'s' * (w != 1)} last looks like height x width x channels",
                item.span, hint=f"write `input {w}x{c}x{h}` (channels first) or "
                f"`input {item.text} hwc`; `input {item.text} chw` keeps it as it is")

    def activation(self, directive: s.Directive) -> None:
        call = self._only_call(directive, "one activation, e.g. `activation relu`")
        if call is None:
            return
        kind = reg.lookup(call.word)
        if kind is None or kind.family != "activation":
            names = [k.name for k in reg.KINDS if k.family == "activation"]
            self.diags.error("header", f"`{call.word}` is not an activation",
                             call.word_span, hint=reg.kind_hint([call.word], family="activation")
                             or "one of " + ", ".join(names))
            return
        args = self.args.args(kind, call, {}, {}, use_defaults=False)
        if args is not None:
            self.header.activation = (kind.name, args)

    def batchnorm(self, directive: s.Directive) -> None:
        if directive.items or directive.chain is not None:
            self.diags.error("header", "`batchnorm` stands alone on its line", directive.span)
            return
        self.header.batchnorm = True

    def defaults(self, directive: s.Directive) -> None:
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
                                 item.word_span, hint=reg.kind_hint([item.word]))
                continue
            for arg in item.args:
                param = kind.param(arg.name) if arg.name is not None else None
                if arg.name is None:
                    self.diags.error("argument", "defaults are written name=value",
                                     arg.span)
                elif param is None:
                    self.args.unknown_arg(kind, arg)
                elif (first := next((a for a in self.header.defaults.get(kind.name, ())
                                     if a.name == arg.name), None)) is not None:
                    self.diags.error("argument", f"a default for {kind.name} `{arg.name}` is "
                                     "given twice", arg.span,
                                     hint=f"the first is at line {first.span.line}")
                elif (value := self.args.subst(arg.value, {})) is not None and \
                        self.args.convert(param, value, kind.name) is not None:  # {2*2}: 4
                    self.header.defaults.setdefault(kind.name, []).append(
                        arg._replace(value=value))

    def init(self, directive: s.Directive) -> None:
        call = self._only_call(directive, "one scheme: torch, normal(std=0.01), xavier, "
                               "kaiming or orthogonal")
        if call is None:
            return
        name = call.word.lower()
        schemes = INIT_NAMES
        if name not in schemes:
            self.diags.error("header", f"unknown init scheme `{call.word}`", call.word_span,
                             hint=suggest(call.word, schemes) or "one of " + ", ".join(schemes))
            return
        values = self.args.model_args(call, INIT_SCHEMES[name].positional)
        if values is None:
            return
        try:
            self.header.init = InitScheme.validated(name=name, **values)
        except ValidationError as exc:
            self.args.validation(exc, call, positional=INIT_SCHEMES[name].positional)

    def dtype(self, directive: s.Directive) -> None:
        call = self._only_call(directive, "float32, float16 or bfloat16")
        if call is None:
            return
        names = DTYPES
        if call.word.lower() not in names or call.args is not None:
            self.diags.error("header", f"unknown dtype `{call.word}`", call.word_span,
                             hint=suggest(call.word, names) or "one of " + ", ".join(names))
            return
        self.header.dtype = cast(DType, call.word.lower())

    def block(self, directive: s.Directive) -> None:
        head = directive.items[0] if directive.items else None
        name = head.word if isinstance(head, s.Call) and NAME.match(head.word) else None
        if name in self.header.blocks:
            assert name is not None and isinstance(head, s.Call)
            self.diags.error("block", f"block `{name}` is defined twice", head.word_span,
                             hint=f"the first is at line {self.header.blocks[name].span.line}")
            return
        block = self._block(directive)
        if block is not None:
            self.header.blocks[block.name] = block
        elif name is not None:  # its calls are not errors of their own (`unknown layer kind`)
            self.header.refused.add(name)

    def _block(self, directive: s.Directive) -> Block | None:
        """The block a `block` line defines, or None after reporting why not."""
        head = directive.items[0] if len(directive.items) == 1 else None
        if not isinstance(head, s.Call) or directive.chain is None \
                or not NAME.match(head.word):
            self.diags.error("block", "write `block NAME(p1, p2=default): CHAIN`",
                             directive.span)
            return None
        name = head.word
        if reg.lookup(name) is not None or name.upper() in (reg.IDENTITY, "INPUT"):
            self.diags.error("block", f"block `{name}` would hide the layer kind "
                             f"{name.upper()}", head.word_span)
            return None
        params: list[tuple[str, s.Value | None]] = []
        for arg in head.args or ():
            pname = arg.name if arg.name is not None else (
                arg.value.text if arg.value.kind == "word" else None)
            if pname is None or not NAME.match(pname):
                self.diags.error("block", "block parameters are names, with optional "
                                 "defaults: `block b(c, s=1)`", arg.span)
                return None
            if any(p == pname for p, _ in params):
                self.diags.error("block", f"parameter `{pname}` is listed twice", arg.span)
                return None
            default = arg.value if arg.name is not None else None
            if default is not None and default.kind in ("param", "expr") \
                    and not self._earlier_only(name, pname, default, params):
                return None
            params.append((pname, default))
        return Block(name, params, directive.chain, head.word_span)

    def _earlier_only(self, block: str, pname: str, default: s.Value,
                      params: list[tuple[str, s.Value | None]]) -> bool:
        """Whether a default's `$params` are all parameters before it (the values it can be
        worked out from, whatever the call); reports the first that is not."""
        for ref in PARAM_REF.finditer(default.text):
            if any(p == ref.group(1) for p, _ in params):
                continue
            start = default.span.start + ref.start()
            if default.kind == "param":
                message = f"the default of `{pname}` names no earlier parameter of block " \
                    f"`{block}`"
            else:
                message = f"the default of `{pname}` uses `{ref.group()}`, no earlier " \
                    f"parameter of block `{block}`"
            self.diags.error("block", message,
                             self.args.source.span(start, start + len(ref.group())))
            return False
        return True

    def _refuse_broken_block(self, directive: s.Directive) -> None:
        """A `block` line that did not parse: the name it begins with, if any, is refused."""
        text = self.args.source.text
        start = directive.keyword_span.end
        end = text.find("\n", start)
        name = text[start:end if end >= 0 else len(text)].split("(")[0].split(":")[0].strip()
        if NAME.match(name) and name not in self.header.blocks:
            self.header.refused.add(name)


# One reader per keyword of syntax.HEADER_KEYWORDS (a test checks they agree).
_READERS: dict[str, Callable[[HeaderReader, s.Directive], None]] = {
    "network": HeaderReader.network, "input": HeaderReader.input,
    "activation": HeaderReader.activation, "batchnorm": HeaderReader.batchnorm,
    "defaults": HeaderReader.defaults, "init": HeaderReader.init, "dtype": HeaderReader.dtype,
    "block": HeaderReader.block,
}
