"""An LALR(1) parser with lark's contextual lexer, run from the tables lark built (tables.py)."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any, cast

# A reduction: how many values it takes off the stack, the rule's origin (the goto's symbol)
# and what builds the rule's value from its children (None: the one child is the value).
_Reduce = tuple[int, str, Callable[[list[Any]], Any] | None]


class Token(str):
    """A lexed terminal: its text, with the terminal's name and its offsets in the text."""

    __slots__ = ("end_pos", "start_pos", "type")
    type: str
    start_pos: int
    end_pos: int


class Rejected(Exception):
    """The text is not in the grammar's language (lark, which built the tables, says why)."""


class Parser:
    """lark's LALR parser and contextual lexer for the tables `Lark.memo_serialize` gave
    (maybe_placeholders=False, no post-lexer or lexer callbacks, Python's `re`), calling
    `callbacks`' method for each rule as lark's inline transformer does: named after the
    rule's alias, else its origin, with the children lark passes (tokens kept, a `_rule`'s
    children spliced into its parent, a `?rule` of one child replaced by that child)."""

    def __init__(self, tables: dict[str, Any], callbacks: object) -> None:
        memo, data = tables["memo"], tables["data"]
        options = data["options"]
        if (options["parser"], options["lexer"]) != ("lalr", "contextual") or any(
                options[name] for name in ("postlex", "lexer_callbacks", "maybe_placeholders",
                                           "regex")):
            raise ValueError("tables of a parser this runtime does not run")
        lexer, table = data["parser"]["lexer_conf"], data["parser"]["parser"]
        if lexer["use_bytes"]:
            raise ValueError("tables of a parser of bytes")
        terminals = [memo[ref["@"]] for ref in lexer["terminals"]]
        # lark's BasicLexer tries a state's terminals in this order (the first that matches
        # wins): higher priority, then longer longest match, then longer pattern, then name.
        terminals.sort(key=lambda t: (-t["priority"], -_max_width(t["pattern"]),
                                      -len(t["pattern"]["value"]), t["name"]))
        self._regexps = {t["name"]: _regexp(t["pattern"]) for t in terminals}
        ignore = frozenset(lexer["ignore"])
        self._order = [name for name in self._regexps if name not in ignore]
        self._flags: int = lexer["g_regex_flags"]
        # What the lexer skips wherever it stands (blanks, comments), as the prefix of every
        # scanner: skipped there, it takes no turn of the parser's loop. The same as lark's
        # one match at a time where no other terminal matches where a skipped one does (in
        # archspec's grammar none begins with a blank or `#`).
        self._skip = "|".join(self._regexps[name] for name in self._regexps if name in ignore)
        if self._skip and re.compile(self._skip, self._flags).groups:
            raise ValueError("tables of a parser whose ignored terminals have groups")
        names = table["tokens"]
        reductions = {ref: _reduction(memo[ref], callbacks) for ref in memo
                      if memo[ref].get("__type__") == "Rule"}
        # state -> symbol -> the state a shift goes to (an int), or a reduction
        self._actions: dict[int, dict[str, int | _Reduce]] = {
            state: {names[symbol]: arg if action == 0 else reductions[arg["@"]]
                    for symbol, (action, arg) in row.items()}
            for state, row in table["states"].items()}
        self._start: dict[str, int] = table["start_states"]
        self._end: dict[str, int] = table["end_states"]
        self._everything: tuple[re.Pattern[str], list[str]] | None = None
        self._scanners: dict[int, tuple[re.Pattern[str], list[str]]] = {}
        self._compiled: dict[tuple[str, ...], tuple[re.Pattern[str], list[str]]] = {}

    def scanner(self, wanted: Collection[str]) -> tuple[re.Pattern[str], list[str]]:
        """One regular expression skipping what the lexer ignores, then trying the `wanted`
        terminals in lark's order (or none: the end of the text, or a character none of them
        takes), and the terminal that each group index names (compiled once a process for
        each set of terminals). Where the terminal it finds is the one lark's lexer finds
        there, lark's lexer reads the same token (the same skipped text before it)."""
        names = [name for name in self._order if name in wanted]
        key = tuple(names)
        found = self._compiled.get(key)
        if found is None:
            terminals = "|".join(f"(?P<{name}>{self._regexps[name]})" for name in names)
            pattern = re.compile(f"(?:{self._skip})*(?:{terminals})?" if self._skip
                                 else f"(?:{terminals})?", self._flags)
            kinds = ["" for _ in range(pattern.groups + 1)]
            for name in names:
                kinds[pattern.groupindex[name]] = name
            found = self._compiled[key] = (pattern, kinds)
        return found

    def everything(self) -> tuple[re.Pattern[str], list[str]]:
        """The scanner of every terminal."""
        if self._everything is None:
            self._everything = self.scanner(self._order)
        return self._everything

    def _state_scanner(self, state: int) -> tuple[re.Pattern[str], list[str]]:
        """The scanner of the terminals a parser state accepts, and the ignored ones."""
        found = self._scanners.get(state)
        if found is None:
            found = self._scanners[state] = self.scanner(self._actions[state])
        return found

    def parse(self, text: str, start: str) -> Any:
        """The value `callbacks` built for the whole text read as `start`; `Rejected` when
        the text is not in the language."""
        # One scanner of every terminal serves each state: where the terminal it finds is one
        # the state accepts (or an ignored one), that state's own scanner, which tries a
        # subsequence of the same alternatives in the same order, finds the same; where it is
        # not, the state's own scanner looks again (and is compiled then).
        pattern, kinds = self.everything()
        match = pattern.match
        actions = self._actions
        end_state = self._end[start]
        state = self._start[start]
        states = [state]
        values: list[Any] = []
        row = actions[state]
        pos, size = 0, len(text)
        while True:
            # Each scanner matches (maybe nothing); no cast() call in the loop: it is one.
            m: re.Match[str] = match(text, pos)  # type: ignore[assignment]
            index = m.lastindex
            if index is None:  # no terminal: the end of the text, or a character none takes
                if m.end() == size:
                    break
                raise Rejected
            kind = kinds[index]
            arg = row.get(kind)
            if arg is None:
                pattern, names = self._state_scanner(state)
                m = pattern.match(text, pos)  # type: ignore[assignment]
                index = m.lastindex
                if index is None:
                    raise Rejected
                kind = names[index]
                arg = row[kind]
            begin = m.start(index)
            pos = m.end()
            token = Token(text[begin:pos])
            token.type, token.start_pos, token.end_pos = kind, begin, pos
            while True:
                if arg.__class__ is int:
                    states.append(arg)
                    values.append(token)
                    state = arg
                    row = actions[state]
                    break
                count, origin, build = arg  # type: ignore[misc]
                if count == 1:  # most reductions: the top of the stacks is replaced
                    state = states[-1] = actions[states[-2]][origin]  # type: ignore[assignment]
                    if build is not None:
                        values[-1] = build([values[-1]])
                else:
                    state = _reduce(actions, states, values, count, origin, build)
                row = actions[state]
                arg = row.get(kind)
                if arg is None:
                    raise Rejected
        while True:  # the end of the text: reduce until the start symbol is complete
            arg = row.get("$END")
            if arg is None or arg.__class__ is int:
                raise Rejected
            state = _reduce(actions, states, values, *arg)  # type: ignore[misc]
            if state == end_state:
                return values[-1]
            row = actions[state]


def _reduce(actions: dict[int, dict[str, int | _Reduce]], states: list[int], values: list[Any],
            count: int, origin: str, build: Callable[[list[Any]], Any] | None) -> int:
    """Reduce by a rule: its `count` values off the stacks, the value `build` makes of them
    (a `?rule` of one child: that child) and the goto's state on; the new state."""
    if count:
        children = values[-count:]
        del values[-count:], states[-count:]
    else:
        children = []
    state = cast(int, actions[states[-1]][origin])  # a goto on a rule's origin: a state
    states.append(state)
    values.append(children[0] if build is None else build(children))
    return state


def _regexp(pattern: dict[str, Any]) -> str:
    """lark's Pattern.to_regexp: a string pattern escaped, each flag a scoped group."""
    value: str = pattern["value"] if pattern["__type__"] == "PatternRE" else re.escape(
        pattern["value"])
    for flag in pattern["flags"]:
        value = f"(?{flag}:{value})"
    return value


def _max_width(pattern: dict[str, Any]) -> int:
    """The longest text a pattern matches, as lark stored it (a string's is its length)."""
    return int(pattern["_width"][1]) if pattern["__type__"] == "PatternRE" else len(
        pattern["value"])


def _reduction(rule: dict[str, Any], callbacks: object) -> _Reduce:
    """What reducing by a rule pops, its origin, and the function lark's parse-tree builder
    would call (its child filter, expand-single-child and the callback, in that order)."""
    expansion = rule["expansion"]
    options = rule["options"]
    keep_all = options["keep_all_tokens"]
    kept = [(i, symbol["__type__"] == "NonTerminal" and symbol["name"].startswith("_"))
            for i, symbol in enumerate(expansion)
            if keep_all or not (symbol["__type__"] == "Terminal" and symbol["filter_out"])]
    name = rule["alias"] or options["template_source"] or rule["origin"]["name"]
    # A rule without a callback (a `_rule` to be spliced into its parent) gives the list of
    # its children, as lark gives a Tree of them: that list itself, not a copy, so that a
    # left-recursive `_rule` (`_x: _x y | y`) grows one list in place, not a copy a child.
    call: Callable[[list[Any]], Any] = getattr(callbacks, name, None) or _children
    if options["expand1"] and not rule["alias"] and kept == [(0, False)] and len(expansion) == 1:
        return 1, rule["origin"]["name"], None  # `?rule: x`: its value is x's
    build = call
    if options["expand1"] and not rule["alias"]:
        def build(children: list[Any]) -> Any:
            return children[0] if len(children) == 1 else call(children)
    if len(kept) < len(expansion) or any(splice for _, splice in kept):
        inner = build

        def build(children: list[Any]) -> Any:
            filtered: list[Any] = []
            for i, splice in kept:
                if not splice:
                    filtered.append(children[i])
                elif filtered:
                    filtered += children[i]
                else:  # a left-recursive `_rule`'s list grows in place (each value is used once)
                    filtered = children[i]
            return inner(filtered)
    return len(expansion), rule["origin"]["name"], build


def _children(children: list[Any]) -> list[Any]:
    return children
