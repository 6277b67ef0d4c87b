"""Diagnostics as data: located errors and warnings, collected, then rendered with a caret."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from archspec.limits import MAX_FINDINGS
from archspec.source import Source, Span


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Diagnostic(BaseModel):
    """One finding at one place. `code` groups findings (syntax, shape, missing-argument...)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    severity: Severity
    code: str
    message: str
    span: Span
    hint: str | None = None


class Diagnostics:
    """A collector: passes append findings, nothing raises at the first one."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []
        self._seen: set[Diagnostic] = set()
        self._counts = dict.fromkeys(Severity, 0)

    def error(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        self._add(Severity.ERROR, code, message, span, hint)

    def warning(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        self._add(Severity.WARNING, code, message, span, hint)

    def _add(self, severity: Severity, code: str, message: str, span: Span,
             hint: str | None) -> None:
        """Keep one copy of each finding (a repeat reports once), at most MAX_FINDINGS each."""
        if self._counts[severity] > MAX_FINDINGS:
            return
        finding = Diagnostic(severity=severity, code=code, message=message, span=span,
                             hint=hint)
        if finding in self._seen:
            return
        self._seen.add(finding)
        if self._counts[severity] == MAX_FINDINGS:
            finding = Diagnostic(severity=severity, code="limit", message=f"more than "
                                 f"{MAX_FINDINGS} {severity.value}s; the rest are not shown",
                                 span=span)
        self._counts[severity] += 1
        self.items.append(finding)

    @property
    def full(self) -> bool:
        """True once the error limit is reached: passes may stop early."""
        return self._counts[Severity.ERROR] > MAX_FINDINGS

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.ERROR]

    @property
    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)

    def sorted(self) -> list[Diagnostic]:
        """Findings in source order (each was kept once, by `_add`)."""
        return sorted(self.items, key=lambda d: (d.span.start, d.severity != Severity.ERROR))


def render(diagnostic: Diagnostic, source: Source) -> str:
    """`FILE:LINE:COL: error: MESSAGE`, the source line, a caret (and tildes) under the span."""
    span = diagnostic.span
    where = f"{source.path}:{span.line}:{span.col}"
    head = f"{where}: {diagnostic.severity.value}: {diagnostic.message}"
    text = source.line_text(span.line).expandtabs(1)
    gutter = f"{span.line:>4} | "
    width = span.end_col - span.col if span.end_line == span.line else len(text) - span.col + 1
    marker = "^" + "~" * max(0, width - 1)
    lines = [head, gutter + text, " " * (len(gutter) - 2) + "| " + " " * (span.col - 1) + marker]
    if diagnostic.hint:
        lines.append(" " * (len(gutter) - 2) + f"= help: {diagnostic.hint}")
    return "\n".join(lines)


def render_all(diagnostics: Iterable[Diagnostic], source: Source) -> str:
    return "\n".join(render(d, source) for d in diagnostics)


def closest(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice a word is most likely a misspelling of (case-insensitive), if any."""
    lowered = {c.lower(): c for c in choices}
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=cutoff)
    return lowered[match[0]] if match else None


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """A did-you-mean hint."""
    match = closest(word, choices)
    return f"did you mean `{match}`?" if match else None
