"""Expansion of the body: repeats and blocks multiplied out into nodes, implicit layers added.

Before anything is expanded, `find_recursion` finds the blocks that call themselves and
`count` the layers the body would expand to, on the syntax tree, so a spec over the limit
is refused cheaply.
All three walks (recursion, counting, expansion) go through `elements` and `inner_chains`,
the one description of how the syntax tree nests.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager, nullcontext

from archspec.core.diagnostics import Diagnostics, Severity, suggest
from archspec.core.limits import MAX_LAYERS, MAX_NESTING
from archspec.core.record import Record
from archspec.core.source import Span
from archspec.core.text import many
from archspec.ir import ArgValue, Scope
from archspec.kinds import registry as reg
from archspec.lang import syntax as s
from archspec.lang.args import (
    EXPR_REF,
    INT,
    PARAM_REF,
    SHORTHAND,
    Arguments,
    Env,
    after_keyword,
    shown,
)
from archspec.lang.header import NAME, Block, Header

# Stands for a block parameter that has no value when an unused block is checked: findings
# located here come from the stand-in, not from the spec, and are dropped.
_STAND_IN = Span.model_construct(start=-1, end=-1, line=0, col=0, end_line=0, end_col=0)


# Plain classes with slots, not dataclasses: CPython 3.11 compiles a dataclass's methods from
# source when its module is imported, ~0.5 ms a class at every start (docs/table.md, Speed).
class Node:
    """A layer as expanded, before naming: inputs are 1-based node numbers, 0 the input."""

    __slots__ = ("args", "box", "implicit", "inputs", "kind", "name_span", "origin", "removed",
                 "scopes", "span", "user_name", "written")

    def __init__(self, kind: str, args: dict[str, ArgValue] | None, inputs: list[int],
                 span: Span, written: str, scopes: tuple[Scope, ...], implicit: bool = False,
                 origin: int | None = None, user_name: str | None = None,
                 name_span: Span | None = None) -> None:
        self.kind = kind
        self.args = args
        self.inputs = inputs
        self.span = span
        self.written = written
        self.scopes = scopes
        self.implicit = implicit
        self.origin = origin
        self.user_name = user_name
        self.name_span = name_span
        self.removed = False
        self.box = 0  # the Box (named group or block call) it belongs to; 0 the top level


class Box:
    """A named group or block call as expanded: one module of the hierarchy, its items (node
    numbers, and `-box` for a box inside) in the order written."""

    __slots__ = ("block", "items", "kind", "label", "name_span", "params", "parent", "span",
                 "user_name")

    def __init__(self, parent: int, kind: str, label: str, span: Span,
                 user_name: str | None = None, name_span: Span | None = None,
                 block: str | None = None, params: dict[str, ArgValue] | None = None) -> None:
        self.parent = parent  # the enclosing box; 0 the top level (the box list's first entry)
        self.kind = kind  # "group", "block" or "top"
        self.label = label
        self.span = span
        self.user_name = user_name
        self.name_span = name_span
        self.block = block
        self.params = params
        self.items: list[int] = []


class _Word(Record):
    """What a call's word (its `$params` replaced) names; see `Expander._word`."""

    block: Block | None  # the block it calls
    upper: str
    match: re.Match[str] | None  # the word as a kind's shorthand reads it
    kind: reg.LayerKind | None  # None: no kind (and no block) of that name
    after: list[tuple[str, dict[str, ArgValue]]]  # the implicit layers that follow it


def elements(chain: s.Chain) -> list[tuple[s.Atom, s.Named | None]]:
    """Each element of a chain as (atom, its `name:` label or None)."""
    return [(element.atom, element) if isinstance(element, s.Named) else (element, None)
            for element in chain.elements]


def inner_chains(atom: s.Group | s.Branch) -> tuple[s.Chain, ...]:
    """The chains inside brackets: a group's one, or a branch's alternatives."""
    return (atom.chain,) if isinstance(atom, s.Group) else atom.chains


class Expander:
    """Walks the body's chains into `nodes`, in topological order."""

    def __init__(self, header: Header, args: Arguments, diags: Diagnostics) -> None:
        self.header = header
        self.args = args
        self.diags = diags
        self.nodes: list[Node] = []
        self.boxes: list[Box] = [Box(parent=0, kind="top", label="", span=_STAND_IN)]
        self.box = 0  # the box being filled
        self.scope_ids = 0
        self.forks = 0  # branched groups being expanded
        self.blocks_open = args.blocks_open
        self.recursive: set[str] = set()  # blocks whose expansion would never end
        # What each word names and the layers a call of it adds: the same wherever it
        # stands, so worked out once per word (`_word`, `_layers_per_call`).
        self._words: dict[str, _Word] = {}
        self._per_call: dict[str, int] = {}
        # A bare word's kind, arguments and implicit layers after it (see `_layer`).
        self._bare: dict[str, tuple[reg.LayerKind, dict[str, ArgValue],
                                    list[tuple[str, dict[str, ArgValue]]]]] = {}

    # -- limits, before expanding -----------------------------------------------------------

    def find_recursion(self) -> None:
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
        self.recursive = recursive

    def _block_calls(self, chain: s.Chain) -> list[tuple[str, Span]]:
        """The blocks a chain calls, with where."""
        found: list[tuple[str, Span]] = []
        for atom, _ in elements(chain):
            if isinstance(atom, s.Call):
                if atom.word in self.header.blocks:
                    found.append((atom.word, atom.word_span))
            else:
                for inner in inner_chains(atom):
                    found.extend(self._block_calls(inner))
        return found

    def check_unused(self, body: tuple[s.Chain, ...]) -> None:
        """Lower each block the body never calls (directly or through other blocks) once,
        on a scratch graph, so its unknown kinds, undefined `$params` and bad arguments are
        reported as a called block's would be. A parameter without a default stands in as
        1; what only that stand-in causes is not reported. Each repeat is expanded once, and
        all of them together at most MAX_LAYERS layers, so unused blocks cost about what
        their text is long, never more than a body could."""
        if not self.header.blocks:
            return  # nothing to check, and no need to walk the body for calls
        called: set[str] = set()
        todo = list(body)
        while todo:
            for name, _span in self._block_calls(todo.pop()):
                if name not in called:
                    called.add(name)
                    todo.append(self.header.blocks[name].chain)
        budget = MAX_LAYERS
        for block in self.header.blocks.values():
            if block.name in called or self.diags.full:
                continue
            scratch = Diagnostics()
            probe = _Probe(self.header, Arguments(self.args.source, scratch,
                                                  self.header.defaults, [block.name]), scratch)
            env: Env = {}
            for name, default in block.params:
                if default is not None and default.kind == "param":
                    default = env[default.text[1:]]
                elif default is not None and default.kind == "expr":
                    # worked out from the parameters before it: a stand-in among them gives
                    # a stand-in, and what the expression finds wrong with it is dropped
                    default = probe.args.evaluate(default.text, default.span.start, env)
                env[name] = default or s.Value(kind="number", text="1", span=_STAND_IN)
            probe.recursive = self.recursive
            size = probe.count(block.chain, env)
            if size > budget:
                continue  # recursive (reported already), or past what is left to expand
            budget -= size
            probe.chain(block.chain, 0, 3, env, ())
            for finding in scratch.items:
                if finding.span != _STAND_IN and not (
                        finding.code == "argument"
                        and (finding.span.start, finding.span.end) in probe.stand_in_words):
                    add = self.diags.error if finding.severity is Severity.ERROR \
                        else self.diags.warning
                    add(finding.code, finding.message, finding.span, hint=finding.hint)

    def count(self, chain: s.Chain, env: Env, depth: int = 0) -> int:
        """Layers the chain expands to, capped just above the limit; never expands anything.

        `depth` counts brackets and block calls together: both recurse when expanded.
        """
        if depth > MAX_NESTING:
            self.diags.error("limit", f"brackets and block calls nest deeper than {MAX_NESTING} "
                             "levels", chain.span)
            return MAX_LAYERS + 1
        total = 0
        for atom, _ in elements(chain):
            if isinstance(atom, s.Call):
                block = self.header.blocks.get(atom.word)
                if block is None:
                    total += self._layers_per_call(atom.word)
                    continue
                if block.name in self.recursive:  # reported already, where the cycle closes
                    return MAX_LAYERS + 1
                bound = self._bind(block, atom, env, report=False)
                total += self.count(block.chain, bound or {}, depth + 1)
            else:
                count = self._repeat_count(atom.repeat, env, report=False) or 1
                joins = int(isinstance(atom, s.Branch))
                inner = sum(self.count(c, env, depth + 1) for c in inner_chains(atom)) + joins
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
        count = self._per_call.get(word)
        if count is None:
            match = SHORTHAND.match(EXPR_REF.sub("1", PARAM_REF.sub("1", word)))
            kind = reg.lookup(match.group("base")) if match else None
            count = 1 if kind is None else 1 + len(self._implicit_after(kind))
            self._per_call[word] = count
        return count

    # -- expansion --------------------------------------------------------------------------

    def chain(self, chain: s.Chain, tail: int, rank: int, env: Env,
              scopes: tuple[Scope, ...]) -> tuple[int, int]:
        """Expands a chain after node `tail` (of rank `rank`); returns the new tail and rank."""
        for index, (atom, named) in enumerate(elements(chain)):
            if self.diags.full:
                break
            name = None
            if named is not None:
                if not NAME.match(named.name):
                    self.diags.error("name", f"`{named.name}` is not a name: use letters, "
                                     "digits and _", named.name_span)
                name = (named.name, named.name_span)
            if isinstance(atom, s.Call):
                # A bare word met before (`_layer`): one without $params is its own key and
                # is written as it stands.
                bare = self._bare.get(atom.word) if atom.args is None else None
                if bare is not None:
                    tail, rank = self._written(bare[0], dict(bare[1]), bare[2], atom, atom.word,
                                               tail, rank, scopes, name)
                else:
                    tail, rank = self._layer(atom, tail, rank, env, scopes, name, index == 0)
                continue
            count = self._repeat_count(atom.repeat, env)
            if count is None:
                continue
            outer = self.box
            if name is not None:  # a named group: a module, and a cluster in diagrams
                self.box = self._open("group", name[0], atom.span, name)
                self.scope_ids += 1
                scopes = (*scopes, Scope.model_construct(id=self.scope_ids, index=0, count=1,
                                                         label=name[0]))
            self.scope_ids += 1
            scope_id, label = self.scope_ids, f"x{count}"
            errors = self.diags.error_count
            for copy in range(count):
                inner = scopes if count == 1 else (
                    *scopes, Scope.model_construct(id=scope_id, index=copy, count=count,
                                                   label=label))
                if isinstance(atom, s.Group):
                    tail, rank = self.chain(atom.chain, tail, rank, env, inner)
                else:
                    tail, rank = self._branch(atom, tail, rank, env, inner)
                if self.diags.error_count > errors:
                    break  # every further copy would only find the same errors again
            self.box = outer
            if name is not None:
                scopes = scopes[:-1]
        return tail, rank

    def _open(self, kind: str, label: str, span: Span, name: tuple[str, Span] | None,
              block: str | None = None, params: dict[str, ArgValue] | None = None) -> int:
        """A new box inside the current one, as its next item; returns its number."""
        self.boxes.append(Box(parent=self.box, kind=kind, label=label, span=span,
                              user_name=name[0] if name else None,
                              name_span=name[1] if name else None, block=block,
                              params=params))
        number = len(self.boxes) - 1
        self._item(-number)
        return number

    def _item(self, item: int) -> None:
        self.boxes[self.box].items.append(item)

    def _branch(self, branch: s.Branch, tail: int, rank: int, env: Env,
                scopes: tuple[Scope, ...]) -> tuple[int, int]:
        tails: list[int] = []
        ranks: list[int] = []
        self.forks += 1
        for chain in branch.chains:
            end, end_rank = self.chain(chain, tail, rank, env, scopes)
            tails.append(end)
            ranks.append(end_rank)
        self.forks -= 1
        kind = reg.kind_of(branch.join)
        join = self._add(Node(kind.name, {}, tails, branch.span, kind.symbol, scopes))
        return join, max(ranks)

    def _add(self, node: Node, box: int | None = None) -> int:
        """Appends a node to the current box (or `box`); a layer, not a step, is an item."""
        node.box = self.box if box is None else box
        nodes = self.nodes
        nodes.append(node)
        if not reg.forward_step(node.kind, node.implicit):
            self.boxes[self.box].items.append(len(nodes))
        return len(nodes)

    def _layer(self, call: s.Call, tail: int, rank: int, env: Env,
               scopes: tuple[Scope, ...], name: tuple[str, Span] | None,
               leading: bool) -> tuple[int, int]:
        word = self.args.word(call, env)
        if word is None:  # reported (a `$param` it lacks)
            return self._unknown(call, call.word, tail, scopes), rank
        bare = self._bare.get(word) if call.args is None else None
        if bare is not None:
            return self._written(bare[0], dict(bare[1]), bare[2], call,
                                 self.args.written(call, env), tail, rank, scopes, name)
        block, upper, match, kind, after = self._word(word)
        if block is not None:
            return self._block_call(block, call, tail, rank, env, scopes, name)
        if upper == "INPUT" and call.args is None:
            if not leading:
                self.diags.error("body", "INPUT may only begin a chain", call.word_span)
            return tail, rank
        if upper == reg.IDENTITY and call.args is None:
            return tail, rank
        if kind is None:
            if word not in self.header.refused:  # else the block's definition says why
                base = match.group("base") if match else word
                what = "layer kind or block" if self.header.blocks else "layer kind"
                self.diags.error("unknown-kind", f"unknown {what} `{word}`", call.word_span,
                                 hint=reg.kind_hint(dict.fromkeys((base, word)),
                                                    [reg.IDENTITY, *self.header.blocks]))
            return self._unknown(call, word, tail, scopes), rank
        assert match is not None
        args = self.args.layer(kind, match, call, env)
        if call.args is None and args is not None:
            # A bare word (`CONV3-64`, no list) means the same wherever it stands (its
            # arguments read neither the block's parameters nor the place): a word that
            # succeeded once is not worked out again; each layer gets its own copy.
            self._bare[word] = (kind, dict(args), after)
        return self._written(kind, args, after, call, self.args.written(call, env), tail, rank,
                             scopes, name)

    def _unknown(self, call: s.Call, written: str, tail: int, scopes: tuple[Scope, ...]) -> int:
        """A layer or block call that is in error, after node `tail`: its shape is unknown, so
        later layers are not checked against a guess (no follow-on errors)."""
        return self._add(Node(reg.UNKNOWN.name, None, [tail], call.span, written, scopes))

    def _written(self, kind: reg.LayerKind, args: dict[str, ArgValue] | None,
                 after: list[tuple[str, dict[str, ArgValue]]], call: s.Call, written: str,
                 tail: int, rank: int, scopes: tuple[Scope, ...],
                 name: tuple[str, Span] | None) -> tuple[int, int]:
        """Adds a written layer of `kind` after node `tail`, with the implied flatten before
        it and the implicit layers after it; returns the new tail and rank."""
        if kind.flat_input and rank == 3:
            tail = self._flatten(tail, call.span, scopes)
        node = Node(kind.name, args, [tail], call.span, written, scopes,
                    user_name=name[0] if name else None, name_span=name[1] if name else None)
        tail = origin = self._add(node)
        for implicit, implicit_args in after:
            tail = self._add(Node(implicit, dict(implicit_args), [tail], call.span, implicit,
                                  scopes, implicit=True, origin=origin))
        return tail, kind.out_rank or rank

    def _flatten(self, tail: int, span: Span, scopes: tuple[Scope, ...]) -> int:
        """Adds the flatten implied before an FC (the next node, its origin) after node
        `tail`; returns the new tail. It is a step of the outermost box the FC begins, so
        that box stays a chain: a named group that so far holds only pointwise layers in a
        chain (`classifier: [DROPOUT - FC-4096 - ...]`) has the flatten before them, in its
        parent, as torchvision writes AlexNet."""
        nodes, boxes = self.nodes, self.boxes
        box, first = self.box, len(nodes) + 1  # the flatten goes before node `first`
        while box and (boxes[box].items == [] or self._pointwise_chain(box, tail)):
            if boxes[box].items:
                first = boxes[box].items[0]
            box = boxes[box].parent
        flatten = Node("FLATTEN", {}, [tail], span, "FLATTEN", scopes, implicit=True,
                       origin=len(nodes) + 2)
        if first > len(nodes):
            return self._add(flatten, box)
        # Before the pointwise chain nodes[first - 1:], which now reads it: those nodes
        # move one place on (no one else reads them: they end the chain being expanded).
        flatten.inputs = list(nodes[first - 1].inputs)
        flatten.box = box
        nodes.insert(first - 1, flatten)
        for node in nodes[first:]:
            node.inputs = [i + 1 if i >= first else i for i in node.inputs]
            if node.origin is not None and node.origin >= first:
                node.origin += 1
        nodes[first].inputs = [first]
        for other in boxes:
            other.items = [i + 1 if i >= first else i for i in other.items]
        return len(nodes)

    def _pointwise_chain(self, box: int, tail: int) -> bool:
        """Whether a named group's items so far are pointwise layers (RELU, DROPOUT) in one
        chain, outside any branch, ending at node `tail`, the last: a flatten can go before
        them without changing what they compute."""
        items = self.boxes[box].items
        nodes = self.nodes
        return self.forks == 0 and self.boxes[box].kind == "group" \
            and items == list(range(items[0], len(nodes) + 1)) and tail == len(nodes) \
            and all(reg.kind_of(nodes[i - 1].kind).pointwise for i in items) \
            and all(nodes[i - 1].inputs == [i - 1] for i in items[1:])

    def _word(self, word: str) -> _Word:
        """What a word names: a block, else a kind as its shorthand reads it."""
        known = self._words.get(word)
        if known is None:
            block = self.header.blocks.get(word) if NAME.match(word) else None
            match = SHORTHAND.match(word)
            # A refused block's call (`conv(1)` after `block conv(c)`, which would hide CONV)
            # is not read as a kind either.
            kind = reg.lookup(match.group("base")) if match \
                and word not in self.header.refused else None
            after = self._implicit_after(kind) if kind is not None else []
            known = self._words[word] = _Word(block, word.upper(), match, kind, after)
        return known

    def _implicit_after(self, kind: reg.LayerKind) -> list[tuple[str, dict[str, ArgValue]]]:
        """The layers the `batchnorm` and `activation` headers insert after a written one."""
        after: list[tuple[str, dict[str, ArgValue]]] = []
        if kind.header_bn and self.header.batchnorm:
            after.append(("BN", self.header.bn_args))
        if kind.header_activation and self.header.activation is not None:
            after.append(self.header.activation)
        return after

    def _block_call(self, block: Block, call: s.Call, tail: int, rank: int, env: Env,
                    scopes: tuple[Scope, ...], name: tuple[str, Span] | None
                    ) -> tuple[int, int]:
        bound = self._bind(block, call, env, report=True)
        if bound is None:  # reported (its arguments)
            return self._unknown(call, call.word, tail, scopes), rank
        self.scope_ids += 1
        label = self.args.written(call, env)
        # A named call's cluster says its name too: `layer1: basic(64)`.
        caption = f"{name[0]}: {label}" if name else label
        scope = Scope.model_construct(id=self.scope_ids, index=0, count=1, label=caption,
                                      call=call.span)
        self.blocks_open.append(block.name)
        outer = self.box
        params = {key: _number(value) for key, value in bound.items()}
        self.box = self._open("block", label, call.span, name, block.name, params)
        try:
            with self._calling(caption, call.span):
                return self.chain(block.chain, tail, rank, bound, (*scopes, scope))
        finally:
            self.blocks_open.pop()
            self.box = outer

    def _calling(self, label: str, span: Span) -> AbstractContextManager[None]:
        """A finding in the body of the block called names the call (`Diagnostics.calling`)."""
        return self.diags.calling(label, span)

    def _bind(self, block: Block, call: s.Call, env: Env, report: bool) -> Env | None:
        bound: Env = {}
        ok = True
        names = [p for p, _ in block.params]
        positional = iter(names)
        keyword: s.Arg | None = None  # the first argument given by name
        unknown: list[s.Arg] = []  # by a name the block has no parameter of

        def fail(message: str, span: Span, hint: str | None = None) -> None:
            nonlocal ok
            ok = False
            if report:
                self.diags.error("block", message, span, hint=hint)

        for arg in call.args or ():
            if arg.name is None and keyword is not None:
                assert keyword.name is not None
                message, hint = after_keyword(keyword.name)
                fail(message, arg.span, hint=hint)
                continue
            keyword = keyword or (arg if arg.name is not None else None)
            pname = next(positional, None) if arg.name is None else arg.name
            if pname is None:
                fail(f"block `{block.name}` takes "
                     + (many(len(names), "argument") if names else "no arguments"), arg.span)
                continue
            if pname not in names:
                unknown.append(arg)
                continue
            if pname in bound:
                fail(f"block `{block.name}` gets `{pname}` twice", arg.span)
                continue
            value = arg.value
            if value.kind == "param":
                found = env.get(value.text[1:])
                if found is None:
                    if report:
                        self.args.unknown_param(value.text, value.span, env)
                    ok = False
                    continue
                value = found
            elif value.kind == "expr":  # worked out in the caller's parameters
                computed = self.args.evaluate(value.text, value.span.start, env, report)
                if computed is None:
                    ok = False
                    continue
                value = computed
            bound[pname] = value
        unfilled = [p for p, default in block.params if p not in bound and default is None]
        for arg in unknown:  # `b(d=8)` for `block b(c)`: one error, the likely name its hint
            assert arg.name is not None
            fail(f"block `{block.name}` has no parameter `{arg.name}`", arg.span,
                 hint=suggest(arg.name, names) or (
                     f"did you mean `{unfilled[0]}`?" if len(unfilled) == 1 == len(unknown)
                     else f"its parameters: {', '.join(names)}" if names else None))
        for pname, default in block.params:
            if pname in bound:
                continue
            if default is None:
                if not unknown:  # else the argument meant for it is that error
                    fail(f"block `{block.name}` needs `{pname}`", call.span)
            elif not ok:
                # A default names only earlier parameters (the header checks), but one of
                # those may have failed, reported already: no follow-on error from it.
                continue
            elif default.kind == "param":  # `block b(c, d=$c)`: an earlier parameter's value
                bound[pname] = bound[default.text[1:]]
            elif default.kind == "expr":  # `block b(c, d={$c*4})`: from earlier parameters
                computed = self.args.evaluate(default.text, default.span.start, bound, report)
                if computed is None:
                    ok = False
                else:
                    bound[pname] = computed
            else:
                bound[pname] = default
        return bound if ok else None

    def _repeat_count(self, repeat: s.Repeat | None, env: Env,
                      report: bool = True) -> int | None:
        if repeat is None:
            return 1
        text = repeat.count
        where = repeat.span
        if text.startswith("{"):
            start = self.args.source.text.find("{", repeat.span.start, repeat.span.end)
            value = self.args.evaluate(text, start, env, report)
            if value is None:
                return None
            if not INT.match(value.text) or value.negative or value.text == "0":
                if report:
                    need = "must be at least 1" if INT.match(value.text) \
                        else "is a whole number of at least 1"
                    self.diags.error("argument", f"a repeat count {need}, but `{text}` is "
                                     f"{shown(value)}", value.span)
                return None
            text, where = value.text, value.span
        elif text.startswith("$"):
            value = env.get(text[1:])
            if value is None:
                if report:
                    start = self.args.source.text.find("$", repeat.span.start, repeat.span.end)
                    self.args.unknown_param(text, self.args.source.span(start, start + len(text)),
                                            env)
                return None
            if value.kind != "number" or not INT.match(value.text) or value.negative:
                if report:
                    self.diags.error("argument", "a repeat count is a whole number of at "
                                     f"least 1, not `{value.text}`", value.span)
                return None
            text, where = value.text, value.span  # point at the argument that gave it
        count = int(text)
        if count < 1:
            if report:
                self.diags.error("argument", "a repeat count must be at least 1", where)
            return None
        return count


def _number(value: s.Value) -> ArgValue:
    """A block parameter's bound value as the generated constructor takes it."""
    try:
        number = float(value.text) if any(c in value.text for c in ".eE") else int(value.text)
    except ValueError:
        return value.text
    return -number if value.negative else number


class _Probe(Expander):
    """The expander `check_unused` lowers an unused block with: a repeat's count is still
    checked, but one copy is made (the others would only find the same mistakes). A layer
    whose word a stand-in value fills (`CONV1-{$c//2}`) is judged by that value only, so
    what its arguments are found to be wrong with (here 0 filters) is dropped: the word's
    place is kept in `stand_in_words`."""

    def __init__(self, header: Header, args: Arguments, diags: Diagnostics) -> None:
        super().__init__(header, args, diags)
        self.stand_in_words: set[tuple[int, int]] = set()

    def _layer(self, call: s.Call, tail: int, rank: int, env: Env,
               scopes: tuple[Scope, ...], name: tuple[str, Span] | None,
               leading: bool) -> tuple[int, int]:
        if any((value := env.get(m.group(1))) is not None and value.span.start < 0
               for m in PARAM_REF.finditer(call.word)):
            self.stand_in_words.update(((call.span.start, call.span.end),
                                        (call.word_span.start, call.word_span.end)))
        return super()._layer(call, tail, rank, env, scopes, name, leading)

    def _repeat_count(self, repeat: s.Repeat | None, env: Env,
                      report: bool = True) -> int | None:
        count = super()._repeat_count(repeat, env, report)
        return None if count is None else 1

    def _calling(self, label: str, span: Span) -> AbstractContextManager[None]:
        return nullcontext()  # its calls' values are stand-ins: a finding names none
