"""The front end in one call: text → parse → lower → shapes, with every diagnostic collected."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from archspec.core.diagnostics import Diagnostic, Diagnostics, Severity, render_all
from archspec.core.record import Record
from archspec.core.source import Source
from archspec.ir import InitScheme, Network
from archspec.lang import plan_checks
from archspec.lang.lower import lower, lower_init
from archspec.lang.parser import parse
from archspec.lang.shapes import Shapes, infer

# Codes a sketch may carry and still be drawn (the graph is whole, only sizes are missing).
SKETCH_CODES = frozenset({"missing-argument"})
# Codes that leave the graph whole with sizes unknown past them: `draw` still draws it.
SHAPE_CODES = frozenset({"shape"})


class Spec(Record):
    """A loaded spec: its source, the network (None if the header is broken), shapes, findings.
    A named tuple, as torch's `load_state_dict` result is (`source, network, shapes,
    diagnostics = archspec.load(path)` works): a dataclass's methods would be compiled at every
    start (~0.5 ms)."""

    source: Source
    network: Network | None
    shapes: Shapes
    diagnostics: list[Diagnostic]

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    @property
    def ok(self) -> bool:
        return self.network is not None and not self.errors

    @property
    def drawable(self) -> bool:
        """Valid, or a sketch whose only errors are missing arguments."""
        return self.network is not None and all(d.code in SKETCH_CODES for d in self.errors)

    def render(self) -> str:
        return render_all(self.diagnostics, self.source)


class SpecError(ValueError):
    """Raised by `load_network` for an invalid spec; the message holds the rendered findings."""

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec.render())
        self.spec = spec


def loads(text: str, path: str = "<input>") -> Spec:
    """Load a spec from text."""
    return load_source(Source(text, path))


def load(path: str | Path) -> Spec:
    """Load a spec from a file."""
    return load_source(Source.read(path))


def load_source(source: Source) -> Spec:
    diags = Diagnostics()
    with collector_paused():
        syntax = parse(source, diags)
        # When no line survived parsing, its errors say why; "no network line" would be noise.
        parsed = syntax.header or syntax.body or syntax.train_span or not diags.has_errors
        network = lower(syntax, source, diags) if parsed else None
        shapes = infer(network, diags) if network is not None else {}
        if network is not None and not diags.has_errors:
            plan_checks.check(network, shapes, diags)
    return Spec(source, network, shapes, diags.sorted())


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector while the front end (or a command's analysis after it)
    runs. It builds hundreds of thousands of small acyclic objects (reference counting frees
    them); the collector's passes over them freed nothing and made 100k layers take twice as
    long per layer as 10k (benches/parse.py, the front end and whole commands)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_network(path: str | Path) -> tuple[Network, Shapes]:
    """A valid network and its shapes, or SpecError."""
    spec = load(path)
    if not spec.ok or spec.network is None:
        raise SpecError(spec)
    return spec.network, spec.shapes


class InitError(ValueError):
    """An init scheme given alone (`probe --init`) that does not parse; the message is the
    located diagnostic."""


def parse_init(text: str, path: str = "--init") -> InitScheme:
    """`normal(std=0.01)`, `xavier`, ... read by the front end's own `init` line rules."""
    source = Source(f"init {text}", path)
    diags = Diagnostics()
    scheme = None
    if "\n" in text:
        diags.error("header", "an init scheme is one line", source.span(5, len(source.text)))
    else:
        syntax = parse(source, diags)
        if len(syntax.header) == 1 and not syntax.body and syntax.train_span is None:
            scheme = lower_init(syntax.header[0], source, diags)
        elif not diags.has_errors:
            diags.error("header", "write one scheme: torch, normal(std=0.01), xavier, kaiming "
                        "or orthogonal", source.span(5, len(source.text)))
    if scheme is None:
        raise InitError(render_all(diags.sorted(), source))
    return scheme
