"""Arguments: shorthands, `$params`, `defaults` and written values checked against each kind."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from archspec.core.diagnostics import Diagnostics, suggest
from archspec.core.limits import MAX_INT
from archspec.core.source import Source, Span
from archspec.core.text import many
from archspec.ir import ArgValue
from archspec.kinds import registry as reg
from archspec.lang import syntax as s

if TYPE_CHECKING:
    from archspec.lang.expr import Number

PARAM_REF = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
EXPR_REF = re.compile(r"\{[^{}\n]*\}")
# What a word may carry in place of a number: a `$param` or an `{expression}` (a string,
# compiled and cached by `re` at first use: only a block's call needs it).
_PLACEHOLDER = r"\$([A-Za-z_][A-Za-z0-9_]*)|\{[^{}\n]*\}"
# A kind whose name ends in digits (RELU6) is matched whole before a shorthand's size.
SHORTHAND = re.compile(
    "(?P<base>" + "".join(f"(?i:{re.escape(name)})|" for name in sorted(
        (n for n in reg.all_names() if any(ch.isdigit() for ch in n)), key=len, reverse=True))
    + r"[A-Za-z_]+?)(?P<suffix>\d+)?(?:-(?P<dash>\d+))?(?:/(?P<slash>\d+))?$")
INT = re.compile(r"\d+$")

# A block's parameters bound to the values of one call.
Env = dict[str, s.Value]


class Arguments:
    """Turns written arguments into a kind's validated values, reporting each problem.

    `defaults` is the header's `defaults` lines by kind, `blocks_open` the blocks being
    expanded, innermost last (for the messages about `$params`); both are shared with the
    header reader and the expander, which fill them.
    """

    def __init__(self, source: Source, diags: Diagnostics,
                 defaults: dict[str, list[s.Arg]], blocks_open: list[str]) -> None:
        self.source = source
        self.diags = diags
        self.defaults = defaults
        self.blocks_open = blocks_open
        # The values `word` put in the last word with $params, and where: (start, end, value).
        self.placed: list[tuple[int, int, s.Value]] = []

    # -- values -----------------------------------------------------------------------------

    def subst(self, value: s.Value, env: Env) -> s.Value | None:
        if value.kind == "expr":
            return self.evaluate(value.text, value.span.start, env)
        if value.kind != "param":
            return value
        found = env.get(value.text[1:])
        if found is None:
            self.unknown_param(value.text, value.span, env)
        return found

    def evaluate(self, text: str, start: int, env: Env, report: bool = True) -> s.Value | None:
        """`{expression}` (with its braces, at offset `start` of the file) as a number, or
        None after reporting why not (at the place in the expression). A value a stand-in
        parameter gave (an unused block's, span before the file) takes the stand-in's span,
        so what only the stand-in causes is dropped."""
        from archspec.lang.expr import ExprError, evaluate, parse  # where a spec has one

        base = start + 1
        stand_ins: list[Span] = []

        def value_of(name: str, a: int, b: int) -> Number:
            found = env.get(name)
            if found is None:
                raise _Missing(name, a, b)
            if found.span.start < 0:
                stand_ins.append(found.span)
            if found.kind != "number":
                raise ExprError(f"`${name}` is `{found.text}` here, not a number", a, b)
            number: Number = literal(found)
            return number

        try:
            result = evaluate(parse(text[1:-1]), value_of)
        except _Missing as missing:
            if report:
                self.unknown_param(f"${missing.name}", self.source.span(
                    base + missing.start, base + missing.end), env)
            return None
        except ExprError as exc:
            if report:
                span = stand_ins[0] if stand_ins else self.source.span(
                    base + exc.start, base + max(exc.end, exc.start + 1))
                self.diags.error("expression", f"in `{text}`: {exc}", span)
            return None
        span = stand_ins[0] if stand_ins else self.source.span(start, start + len(text))
        shown = repr(abs(result)) if isinstance(result, float) else str(abs(result))
        return s.Value(kind="number", text=shown, span=span, negative=result < 0, expr=text)

    def unknown_param(self, text: str, span: Span, env: Env) -> None:
        if not self.blocks_open:
            self.diags.error("block", f"`{text}` is a block parameter, used outside a block",
                             span)
        else:
            self.diags.error("block", f"block `{self.blocks_open[-1]}` has no parameter "
                             f"`{text}`", span, hint=suggest(text[1:], list(env)))

    def convert(self, param: reg.Param, value: s.Value, owner: str) -> ArgValue | None:
        """A syntax value as the parameter's type (of kind `owner`), or None after reporting
        why not."""
        text = value.text
        kind = param.type
        if kind == "bool":
            if value.kind == "word" and text.lower() in ("true", "false"):
                return text.lower() == "true"
            return self._bad(value, f"{param.name} is true or false")
        if kind == "pad" and value.kind == "word" and text.lower() == "same":
            return "same"
        if kind == "mode":
            if value.kind == "word" and text.lower() in param.choices:
                return text.lower()
            quoted = f", written without quotes: {param.name}={unquote(text).lower()}" \
                if value.kind == "string" and unquote(text).lower() in param.choices else ""
            return self._bad(value, f"{param.name} is " + " or ".join(param.choices) + quoted)
        if kind in ("size", "pad") and value.kind == "size":
            dims = [int(d) for d in re.split("[x×]", text)]
            if len(dims) != 2:
                return self._bad(value, f"{param.name} is one size like 3 or 3x3")
            for d in dims:
                if (problem := _range(param, d)) is not None:
                    return self._bad(value, problem)
            return (dims[0], dims[1])
        if value.kind != "number":
            if kind == "size" and param.name == "pad" and text.lower() == "same":
                return self._bad(value, f"{owner} has no `same` padding: its pad "
                                 "is a whole number or HxW")
            return self._bad(value, f"{param.name} is a number" if kind == "float"
                             else f"{param.name} is a whole number")
        if kind == "float":
            number = float(text) * (-1 if value.negative else 1)
            problem = param.check(number)
            return self._bad(value, problem) if problem else number
        if not INT.match(text):
            return self._bad(value, f"{param.name} is a whole number")
        integer = int(text) * (-1 if value.negative else 1)
        problem = _range(param, integer)
        return self._bad(value, problem) if problem else integer

    def _bad(self, value: s.Value, message: str) -> ArgValue | None:
        """Reports `message` at the value; always None, so `return self._bad(...)` gives up."""
        if value.expr:
            message += f", but `{value.expr}` is {shown(value)}"
        self.diags.error("argument", message, value.span)
        return None

    def unknown_arg(self, kind: reg.LayerKind, arg: s.Arg) -> None:
        names = [p.name for p in kind.params]
        hint = suggest(arg.name or "", names) or (
            f"{kind.name} takes " + ", ".join(names) if names else f"{kind.name} takes none")
        self.diags.error("argument", f"{kind.name} has no argument `{arg.name}`",
                         arg.name_span or arg.span, hint=hint)

    # -- a layer's arguments ----------------------------------------------------------------

    def args(self, kind: reg.LayerKind, call: s.Call, shorthand: dict[str, s.Value],
             env: Env, use_defaults: bool = True) -> dict[str, ArgValue] | None:
        """Validated arguments (shorthand, then explicit, then `defaults`, then the kind's)."""
        given: dict[str, s.Value] = dict(shorthand)
        failed: set[str] = set()  # reported already: not missing too
        ok = True
        params = [p for p in kind.params if p.name not in shorthand]
        positional = iter(params)
        for arg in call.args or ():
            if arg.name is None:
                param = next(positional, None)
                if param is None:
                    most = len(kind.params)
                    self.diags.error("argument", f"{kind.name} takes " + (
                        f"at most {many(most, 'argument')} here" if most
                        else "no arguments"), arg.span, hint=kind.args_hint or None)
                    ok = False
                    continue
                name = param.name
            else:
                name = arg.name
                if kind.param(name) is None:
                    self.unknown_arg(kind, arg)
                    ok = False
                    continue
            if name in given:
                # A positional argument lands on a parameter given already only after one
                # given by name: `CONV(filters=8, 3)`; what the call misses is this.
                keyword = next((a.name for a in call.args or () if a.name is not None), None) \
                    if arg.name is None else None
                if keyword is not None:
                    message, hint = after_keyword(keyword)
                    self.diags.error("argument", message, arg.span, hint=hint)
                    failed.update(p.name for p in kind.params)
                else:
                    where = f": `{call.word}` sets it already" if name in shorthand else ""
                    self.diags.error("argument", f"{kind.name} gets `{name}` twice{where}",
                                     arg.span)
                ok = False
                continue
            value = self.subst(arg.value, env)
            if value is None:
                ok = False
                failed.add(name)
                continue
            given[name] = value
        written = set(given)  # in the call itself, not from what is implied or a default
        if shorthand:  # what a shorthand implies (CONV3-64: pad=same) yields to written args
            for implied, implied_value in kind.shorthand_implies:
                given.setdefault(implied, s.Value(kind="word", text=str(implied_value),
                                                  span=call.word_span))
        if use_defaults:
            for arg in self.defaults.get(kind.name, ()):
                assert arg.name is not None
                given.setdefault(arg.name, arg.value)
        args: dict[str, ArgValue] = {}
        missing: list[str] = []
        for param in kind.params:
            if param.name in given:
                converted = self.convert(param, given[param.name], kind.name)
                if converted is None:
                    ok = False
                else:
                    args[param.name] = converted
            elif param.default is reg.REQUIRED and param.name not in failed:
                if param.instead is None or param.instead not in given:
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
            message = f"{word} needs a kernel size: CONV3-{shorthand['filters'].text}" \
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
                assert isinstance(keep, float | int)
                args["p"] = round(1.0 - float(keep), 12)
        if "out" in args:  # an adaptive pool: its windows follow from the output size
            fixed = sorted(written & {"kernel", "stride", "pad", "ceil"})
            if fixed:
                self.diags.error("argument", f"{kind.name}(out=...) pools adaptively; it takes "
                                 f"no {' or '.join(fixed)}", call.span)
                return None
            return {"out": args["out"]}
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

    def layer(self, kind: reg.LayerKind, match: re.Match[str], call: s.Call,
              env: Env) -> dict[str, ArgValue] | None:
        """A written layer's validated arguments, from its word (`match`: the word with its
        $params replaced, as the kind's shorthand reads it) and its argument list: `shorthand`
        then `args`; None after reporting why not."""
        shorthand = self.shorthand(kind, match, call)
        return None if shorthand is None else self.args(kind, call, shorthand, env)

    def shorthand(self, kind: reg.LayerKind, match: re.Match[str],
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
            value = next((v for start, end, v in self.placed if (start, end) == match.span(slot)),
                         None) if "$" in call.word or "{" in call.word else None
            given[target] = s.Value(kind="number", text=text, span=call.word_span) \
                if value is None else value
        return given

    def word(self, call: s.Call, env: Env) -> str | None:
        """The call's word with $params and {expressions} replaced by their (whole-number)
        values. Where each value stands in the word is kept in `placed`, for `shorthand` to
        judge it as its argument (a negative one stands as 0, which no slot takes)."""
        if "$" not in call.word and "{" not in call.word:
            return call.word
        ok = True
        pieces: list[str] = []
        placed: list[tuple[int, int, s.Value]] = []
        at = length = 0
        for m in re.finditer(_PLACEHOLDER, call.word):
            if m.group(1) is None:  # an {expression}
                value = self.evaluate(m.group(), call.word_span.start + m.start(), env)
            else:
                value = env.get(m.group(1))
                if value is None:  # at the `$name` in the word
                    at = call.word_span.start
                    self.unknown_param(m.group(), self.source.span(at + m.start(), at + m.end()),
                                       env)
            if value is None:
                ok = False
                continue
            if value.kind != "number" or not INT.match(value.text):
                what = shown(value) if value.kind == "number" else value.text
                self.diags.error("argument", f"`{value.expr}` is {what}, not a whole number"
                                 if value.expr else f"`{m.group()}` must be a whole number "
                                 f"here, not `{what}`", value.span)
                ok = False
                continue
            text = "0" if value.negative else value.text
            pieces.append(call.word[at:m.start()])
            length += m.start() - at
            placed.append((length, length + len(text), value))
            pieces.append(text)
            length += len(text)
            at = m.end()
        if not ok:
            return None
        pieces.append(call.word[at:])
        self.placed = placed
        return "".join(pieces)

    def written(self, call: s.Call, env: Env) -> str:
        """The call as written, on one line, with `$params` replaced by their values."""
        if call.args is None and "$" not in call.word and "{" not in call.word:
            return call.word
        text = self.source.text[call.span.start:call.span.end]
        text = " ".join(text.split())
        if env or "{" in text:
            text = re.sub(_PLACEHOLDER, lambda m: self._shown(m, env), text)
        return text

    def _shown(self, m: re.Match[str], env: Env) -> str:
        """A $param's or {expression}'s value as written text (itself if it has none)."""
        if m.group(1) is not None:
            found = env.get(m.group(1))
        else:
            found = self.evaluate(m.group(), 0, env, report=False)
        if found is None:
            return m.group()
        return ("-" if found.negative else "") + found.text

    # -- settings' arguments (init, train) --------------------------------------------------

    def model_args(self, call: s.Call, positional: tuple[str, ...]) -> dict[str, Any] | None:
        """A setting's arguments as plain values for a pydantic model, named by `positional`;
        an `{expression}` is worked out (it has no `$params` to read here)."""
        values: dict[str, Any] = {}
        for name, arg in named_args(call, positional):
            if name is None:
                self.diags.error("train", f"`{call.word}` takes no positional argument "
                                 "here; write name=value", arg.span)
                return None
            value = arg.value
            if value.kind == "expr":
                worked_out = self.evaluate(value.text, value.span.start, {})
                if worked_out is None:
                    return None
                value = worked_out
            values[name] = literal(value)
        return values

    def validation(self, exc: ValidationError, call: s.Call | None,
                   span: Span | None = None, positional: tuple[str, ...] = ()) -> None:
        """A pydantic model's refusal as diagnostics, each at the argument it is about (one
        given by position named by `positional`, as `model_args` named it)."""
        named = named_args(call, positional) if call is not None else []
        for error in exc.errors():
            where = span or (call.span if call else self.source.span(0, 0))
            field_name = str(error["loc"][0]) if error["loc"] else None
            for name, arg in named:
                if name == field_name:
                    where = arg.value.span if error["type"] != "extra_forbidden" else arg.span
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = f"`{call.word if call else ''}` has no argument `{field_name}`"
            elif field_name and error["type"] in _TYPES:  # worded as a layer argument's
                message = f"{field_name} is {_TYPES[error['type']]}"
            elif field_name:
                message = f"{field_name} {must(message)}"
            self.diags.error("train", message, where)


# pydantic's refusal of a value of another type (a setting's model is strict), as what it takes
_TYPES = {"float_type": "a number", "int_type": "a whole number", "bool_type": "true or false",
          "string_type": "text in quotes"}


class _Missing(Exception):
    """An expression names a parameter the block does not have."""

    def __init__(self, name: str, start: int, end: int) -> None:
        super().__init__(name)
        self.name, self.start, self.end = name, start, end


def after_keyword(keyword: str) -> tuple[str, str]:
    """The error, and its hint, of an argument by position after `keyword`'s by name: a
    layer's `CONV(filters=8, 3)`, a block call's `b(c=8, 4)`."""
    return (f"a positional argument follows the keyword argument `{keyword}`",
            "give arguments by position first, then by name")


def shown(value: s.Value) -> str:
    """A computed number for a message: `2.66667`, `-12`."""
    number = literal(value)
    return f"{number:.6g}" if isinstance(number, float) else str(number)


def _range(param: reg.Param, value: int) -> str | None:
    if value > MAX_INT:
        return f"{param.name}={value} is beyond any sane size (at most 2^31-1)"
    return param.check(value)


def named_args(call: s.Call, positional: tuple[str, ...]) -> list[tuple[str | None, s.Arg]]:
    """Each argument of a call with the name it fills: its own, or by position the next of
    `positional` (None past them)."""
    names = iter(positional)
    return [(arg.name if arg.name is not None else next(names, None), arg)
            for arg in call.args or ()]


def literal(value: s.Value) -> Any:
    """A written value as Python: a string unquoted, a number, true/false, else the word."""
    if value.kind == "string":
        return unquote(value.text)
    if value.kind == "number":
        number: float = int(value.text) if INT.match(value.text) else float(value.text)
        return -number if value.negative else number
    if value.kind == "word" and value.text.lower() in ("true", "false"):
        return value.text.lower() == "true"
    return value.text


def must(message: str) -> str:
    """pydantic's "Input should be greater than 0" as "must be greater than 0"."""
    return re.sub(r"^(input|value) should", "must", message, flags=re.IGNORECASE)


def unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])
