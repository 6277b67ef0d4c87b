"""Syntax tree → IR: the header, the limits, the expanded body, the names and the train plan.

Each job is a module of its own: `header` reads the header lines, `args` converts and
resolves arguments, `expand` checks the limits and multiplies out repeats and blocks,
`names` turns the expanded nodes into named layers, `train_section` reads `train:`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from archspec.core.diagnostics import Diagnostics
from archspec.core.limits import MAX_LAYERS
from archspec.core.source import Source
from archspec.ir import InitScheme, InputSpec, Network
from archspec.lang import syntax as s
from archspec.lang.args import Arguments
from archspec.lang.expand import Expander
from archspec.lang.header import Header, HeaderReader
from archspec.lang.names import finish
from archspec.lang.train_section import TrainSection


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
        return _lower(syntax, source, diags)


def lower_init(directive: s.Directive, source: Source, diags: Diagnostics) -> InitScheme | None:
    """One `init SCHEME` line on its own (a command line's `--init`); None after an error."""
    header = Header()
    reader = HeaderReader(header, Arguments(source, diags, header.defaults, []), diags)
    errors = len(diags.errors)
    reader.init(directive)
    return header.init if len(diags.errors) == errors else None


def _lower(syntax: s.SpecSyntax, source: Source, diags: Diagnostics) -> Network | None:
    header = Header()
    args = Arguments(source, diags, header.defaults, [])
    reader = HeaderReader(header, args, diags)
    expander = Expander(header, args, diags)
    train = TrainSection(source, args, diags)
    seen = reader.read(syntax)
    expander.find_recursion()
    expander.check_unused(syntax.body)
    if header.batchnorm:
        reader.implicit_bn(seen["batchnorm"])
    top = source.span(0, 0)
    if header.name is None and "network" not in seen:
        diags.error("header", "the spec has no `network NAME` line", top,
                    hint='start the file with e.g. `network lenet5 "LeNet-5"`')
    if header.input is None and "input" not in seen:
        diags.error("header", "the spec has no `input` line", top,
                    hint="add e.g. `input 3x224x224` (channels first)")
    plan = train.read(syntax) if syntax.train_span is not None else None
    if header.input is None and "input" not in seen:
        return None
    # A broken `input` line still lets the body be checked (for everything but shapes).
    input_spec = header.input or InputSpec.model_construct(shape=(1, 1, 1), order="chw",
                                                           span=top)
    if not syntax.body:
        if not any(d.code in ("syntax", "limit") for d in diags.items):  # lines lost
            diags.error("body", "the network has no layers", input_spec.span)
        return None
    total = sum(expander.count(chain, {}) for chain in syntax.body)
    if total > MAX_LAYERS:
        if not any(d.code in ("limit", "recursion") for d in diags.items):
            diags.error("limit", f"the network expands to more than {MAX_LAYERS:,} "
                        "layers", syntax.body[0].span)
        return None
    tail, rank = 0, len(input_spec.shape)
    for chain in syntax.body:
        tail, rank = expander.chain(chain, tail, rank, {}, ())
    layers, modules = finish(expander.nodes, expander.boxes, header.activation is not None,
                             diags)
    if not layers:
        if not diags.has_errors:  # else the layers were lost to those errors
            diags.error("body", "the network has no layers", syntax.body[0].span)
        return None
    if len(layers) > MAX_LAYERS:  # the count above leaves out implied flattens
        diags.error("limit", f"the network expands to {len(layers):,} layers, over "
                    f"the limit of {MAX_LAYERS:,}", syntax.body[0].span)
        return None
    if header.input is None:
        return None
    if plan is not None:
        train.check_plan(plan, header.input.shape, syntax.train_span or input_spec.span)
    return Network.model_construct(
        name=header.name or "network", description=header.description, input=input_spec,
        dtype=header.dtype, init=header.init, layers=tuple(layers), modules=tuple(modules),
        plan=plan)
