"""Diagnostics as data: located errors and warnings, collected, then rendered with a caret."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from enum import StrEnum

from archspec.core.limits import ECHO_COLUMNS, MAX_FINDINGS, MAX_SHOWN
from archspec.core.record import Record
from archspec.core.source import Source, Span


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Diagnostic(Record):
    """One finding at one place. `code` groups findings (syntax, shape, missing-argument...).
    A named tuple: archspec makes each of its own values (~0.25 ms less at every start than a
    pydantic model class)."""

    severity: Severity
    code: str
    message: str
    span: Span
    hint: str | None = None


class Diagnostics:
    """A collector: passes append findings, nothing raises at the first one."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []
        self._seen: set[tuple[Severity, str, str, Span, str | None]] = set()
        self._counts = dict.fromkeys(Severity, 0)
        self._calls: list[tuple[str, Span]] = []  # the block calls being expanded, outermost first

    @contextmanager
    def calling(self, label: str, span: Span) -> Iterator[None]:
        """While a block call (`label`, as written with its values, at `span`) is expanded: a
        finding reported outside the call's own text is in its block's body, and its hint
        says which call made it (`call_site`), as the shape findings' hints do."""
        self._calls.append((label, span))
        try:
            yield
        finally:
            self._calls.pop()

    def error(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        self._add(Severity.ERROR, code, message, span, hint)

    def warning(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        self._add(Severity.WARNING, code, message, span, hint)

    def _add(self, severity: Severity, code: str, message: str, span: Span,
             hint: str | None) -> None:
        """Keep one copy of each finding (a repeat reports once, as the first call of a block
        made it), at most MAX_FINDINGS each."""
        if self._counts[severity] > MAX_FINDINGS:
            return
        key = (severity, code, message, span, hint)
        if key in self._seen:
            return
        self._seen.add(key)
        if self._calls:
            site = call_site((label, call.line) for label, call in self._calls
                             if not call.start <= span.start <= span.end <= call.end)
            hint = "; ".join(text for text in (site, hint) if text) or None
        finding = Diagnostic(severity, code, message, span, hint)
        if self._counts[severity] == MAX_FINDINGS:
            finding = Diagnostic(severity, "limit", _cap_message(severity), span)
        self._counts[severity] += 1
        self.items.append(finding)

    @property
    def full(self) -> bool:
        """True once the error limit is reached: passes may stop early."""
        return self._counts[Severity.ERROR] > MAX_FINDINGS

    @property
    def error_count(self) -> int:
        return self._counts[Severity.ERROR]

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.ERROR]

    @property
    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)

    def sorted(self) -> list[Diagnostic]:
        """Findings in source order (each was kept once, by `_add`)."""
        return sorted(self.items, key=source_order)


def call_site(calls: Iterable[tuple[str, int]]) -> str | None:
    """`from `outer(2)` at line 12 → `down(128)` at line 9`: the block calls (as written, and
    the line of each) that made what a finding is about, outermost first; None for none."""
    sites = [f"`{label}` at line {line}" for label, line in calls]
    return "from " + " → ".join(sites) if sites else None


def source_order(diagnostic: Diagnostic) -> tuple[int, bool]:
    """What findings are sorted by: where they are, an error before a warning there."""
    return diagnostic.span.start, diagnostic.severity is not Severity.ERROR


def printable(text: str) -> str:
    """Text from a file as it may reach a terminal or markup: every character that is not
    printable (ESC, BEL, a form feed, bidirectional overrides, U+FFFE...) as its Python escape,
    so a spec cannot move the cursor, ring the bell or reorder what the reader sees."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def render(diagnostic: Diagnostic, source: Source) -> str:
    """`FILE:LINE:COL: error: MESSAGE`, the source line, a caret (and tildes) under the span.

    Text from the file is escaped (`printable`) and the line is cut to ECHO_COLUMNS either
    side of the span (`…` marks a cut), so one finding's output is bounded whatever the line.
    """
    span = diagnostic.span
    where = f"{printable(source.path)}:{span.line}:{span.col}"
    head = f"{where}: {diagnostic.severity.value}: {printable(diagnostic.message)}"
    line = source.line_text(span.line).expandtabs(1)
    col = min(span.col, len(line) + 1) - 1  # 0-based; a tampered span stays inside the line
    end = min(span.end_col - 1 if span.end_line == span.line else len(line), len(line))
    end = min(max(end, col + 1), col + ECHO_COLUMNS)
    first, last = max(0, col - ECHO_COLUMNS), min(len(line), end + ECHO_COLUMNS)
    before = ("…" if first else "") + printable(line[first:col])
    marked = printable(line[col:end])
    after = printable(line[end:last]) + ("…" if last < len(line) else "")
    gutter = f"{span.line:>4} | "
    marker = "^" + "~" * max(0, len(marked) - 1)
    lines = [head, gutter + before + marked + after,
             " " * (len(gutter) - 2) + "| " + " " * len(before) + marker]
    if diagnostic.hint:
        lines.append(" " * (len(gutter) - 2) + f"= help: {printable(diagnostic.hint)}")
    return "\n".join(lines)


def render_all(diagnostics: Iterable[Diagnostic], source: Source,
               shown: int = MAX_SHOWN) -> str:
    """The first `shown` findings rendered, then one line counting the rest."""
    items = list(diagnostics)
    text = [render(d, source) for d in items[:shown]]
    caps = [d for d in items[shown:] if d.message == _cap_message(d.severity)]
    rest = [d for d in items[shown:] if d not in caps]
    if rest:
        errors = sum(d.severity is Severity.ERROR for d in rest)
        counts = [f"{n} more {what}{'s' * (n != 1)}" for n, what in
                  ((errors, "error"), (len(rest) - errors, "warning")) if n]
        text.append(f"{printable(source.path)}: ... and {' and '.join(counts)} "
                    f"(`archspec check --format json` lists {'them' if caps else 'every one'})")
    # Where a collector stopped keeping findings: not one more finding, but what it says.
    text += [f"{printable(source.path)}: {cap.message}" for cap in caps]
    return "\n".join(text)


def _cap_message(severity: Severity) -> str:
    """The last finding a collector keeps of a severity, where it stopped keeping them."""
    return f"more than {MAX_FINDINGS} {severity.value}s; the rest are not shown"


def closest(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice a word is most likely a misspelling of (case-insensitive), if any."""
    import difflib  # only a finding needs it: not imported at start-up

    lowered = {c.lower(): c for c in choices}
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=cutoff)
    return lowered[match[0]] if match else None


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """A did-you-mean hint."""
    match = closest(word, choices)
    return f"did you mean `{match}`?" if match else None
