"""Each command's options, declared once: read by argparse, or without it where a line is plain."""

# argparse with gettext and locale, imported, and the first parser set up, is ~3 ms of an
# `archspec table`'s ~120 (docs/table.md, Speed). A command line of the common shape (the
# command, its positionals, options spelled out in full with a value each) is read here, to
# the same values as argparse's. Anything else (help, an abbreviation, `--`, a value that
# could be an option, a value refused, an action other than storing) is left to argparse,
# which reads it, and words the refusal, as it always has. tests/test_options.py holds the
# two readings equal on generated command lines.

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse


class Arguments:
    """A command line as read: an attribute for each positional and option (argparse, which
    reads into one of these too, calls it a namespace)."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Arguments) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"Arguments({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"

    if TYPE_CHECKING:  # every command's own attributes, as argparse's Namespace types them
        def __getattr__(self, name: str) -> Any: ...
        def __setattr__(self, name: str, value: Any) -> None: ...


class _Declined(Exception):
    """A line `Options.read` leaves to argparse."""


class Options:
    """A command's `add_argument` calls, kept: `onto` makes them on an argparse parser, and
    `read` reads a plain command line without one."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, ...], dict[str, Any]]] = []

    def add_argument(self, *names: str, **settings: Any) -> None:
        """argparse's `add_argument`, kept for both readers."""
        self.calls.append((names, settings))

    def onto(self, parser: argparse.ArgumentParser) -> None:
        for names, settings in self.calls:
            parser.add_argument(*names, **settings)

    def read(self, words: Sequence[str]) -> Arguments | None:
        """What argparse's parser of these options reads from `words` (the words after the
        command), or None where this reader cannot say. It reads options spelled in full
        (`--format json`, `--format=json`, `-o out`) that store a value or store true, and
        positionals that take one word each, the last maybe one or more, written together.
        It declines help, an abbreviation, `--`, a value that starts with `-`, a value whose
        type or choices refuse it, an option of another action, positionals apart or too few
        or too many, and every line of a command declared with settings it does not follow
        (`_followed`): argparse reads those (and words the refusal)."""
        try:
            return self._read(words)
        except _Declined:
            return None

    def _read(self, words: Sequence[str]) -> Arguments:
        positionals: list[tuple[str, dict[str, Any]]] = []
        declared: list[tuple[str, dict[str, Any]]] = []  # each option's attribute, settings
        options: dict[str, tuple[str, dict[str, Any]]] = {}  # the same by each of its names
        values: dict[str, Any] = {}
        for names, settings in self.calls:
            option = _dashed(names[0])
            if not _followed(settings, option=option):
                _decline()
            if not option:
                positionals.append((names[0], settings))
                continue
            dest = settings.get("dest") or _dest(names)
            declared.append((dest, settings))
            options.update((name, (dest, settings)) for name in names)
            stores_true = settings.get("action") == "store_true"
            values[dest] = settings.get("default", False if stores_true else None)
        seen: set[str] = set()
        loose: list[int] = []  # where each positional word stands
        index = 0
        while index < len(words):
            word = words[index]
            index += 1
            if not _dashed(word):
                loose.append(index - 1)
                continue
            name, value = (word, None) if word in options else word.partition("=")[::2]
            dest, settings = options.get(name) or _decline()
            action = settings.get("action")
            if action == "store_true" and value is None:
                values[dest] = True
            elif action in (None, "store") and settings.get("nargs") is None:
                if value is None:
                    if index == len(words) or _dashed(words[index]):
                        _decline()
                    value = words[index]
                    index += 1
                values[dest] = _value(settings, value)
            else:
                _decline()
            seen.add(dest)
        if loose and loose[-1] - loose[0] != len(loose) - 1:
            _decline()  # positionals on both sides of an option: argparse's rules of order
        given = [words[at] for at in loose]
        many = bool(positionals) and positionals[-1][1].get("nargs") == "+"
        single = positionals[:len(positionals) - many]
        if any(settings.get("nargs") is not None for _, settings in single) or \
                len(given) < len(positionals) or (len(given) > len(positionals) and not many):
            _decline()
        for dest, settings in single:
            values[dest] = _value(settings, given.pop(0))
        if many:
            dest, settings = positionals[-1]
            values[dest] = [_value(settings, word) for word in given]
        for dest, settings in declared:  # a default given as text is read by the type
            default = settings.get("default")
            if dest not in seen and isinstance(default, str) and "type" in settings:
                values[dest] = _value(settings, default, choices=False)
        return Arguments(**values)


# What this reader follows of `add_argument`'s settings: a command whose calls give any other
# (`required`, `const`), argparse.SUPPRESS for a default (argparse then leaves the attribute
# out) or another action has each of its lines read by argparse.
_SETTINGS = frozenset({"action", "choices", "default", "dest", "help", "metavar", "nargs", "type"})
_SUPPRESS = "==SUPPRESS=="  # argparse.SUPPRESS, without importing argparse
# An option's actions whose attribute is its default where the option is not given (False
# for store_true); a line that gives one but store or store_true is argparse's to read.
_ACTIONS = frozenset({"store", "store_true", "append", "extend", "count"})


def _followed(settings: dict[str, Any], *, option: bool) -> bool:
    """Whether `read` can read lines of a command with this `add_argument` call: settings it
    follows, and an action of _ACTIONS or a class of the command's own (an option's, whose
    default is kept: `table --checkpoint`) or store (a positional's)."""
    action = settings.get("action")
    if settings.keys() - _SETTINGS or settings.get("default") == _SUPPRESS:
        return False
    if not option:
        return action in (None, "store")
    return action is None or action in _ACTIONS or callable(action)


def _dest(names: tuple[str, ...]) -> str:
    """argparse's attribute for an option: its first long name (else its first), without the
    dashes, `-` as `_`."""
    name = next((name for name in names if name.startswith("--")), names[0])
    return name.lstrip("-").replace("-", "_")


def _dashed(word: str) -> bool:
    """A word argparse may read as an option, and a negative number, which argparse reads as
    a value (common._is_option) but this reader leaves to it: any word but `-` that starts
    with `-`."""
    return word.startswith("-") and word != "-"


def _value(settings: dict[str, Any], word: str, *, choices: bool = True) -> Any:
    """The word as the option's type reads it, within its choices; declined (for argparse to
    refuse it in its words) where either refuses it."""
    convert = settings.get("type")
    try:
        value = word if convert is None else convert(word)
    except Exception:  # argparse calls it again, and decides what the failure means
        _decline()
    if choices and "choices" in settings and value not in settings["choices"]:
        _decline()
    return value


def _decline() -> Any:
    raise _Declined
