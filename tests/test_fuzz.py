"""Fuzzing the front end: whatever the input, only located diagnostics come out, quickly.

Random token soup, random bytes and mutations of the seed specs all go through `load`; the
properties are: no exception, every finding's span inside the file, rendering works, a valid
spec has a shape for every layer, and no single input takes long (hypothesis's deadline).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from conftest import all_specs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archspec.core.limits import MAX_SHOWN
from archspec.core.source import Source
from archspec.lang.frontend import Spec, load, loads

SEEDS = [path.read_text(encoding="utf-8") for path in all_specs()]

# Pieces of the language, so random text reaches past the lexer into lowering and shapes.
TOKENS = [
    "network", "input", "activation", "batchnorm", "defaults", "init", "dtype", "block",
    "train:", "data", "batch", "optimizer", "schedule", "augment", "seed",
    "CONV", "CONV3-64", "CONV3-$c/$s", "conv1-8", "POOL2", "POOL3/2", "MAXPOOL", "AVGPOOL2",
    "GAP", "FC-10", "FC($u)", "FLATTEN", "RELU", "tanh", "LEAKYRELU", "BN", "NORM", "LRN",
    "DROPOUT(keep=0.8)", "ID", "INPUT", "SOFTMAX", "b", "name:", "$c", "$n",
    "3x32x32", "224x224x3", "hwc", "0", "1", "2", "3", "7x1", "0.5", "1e-2", "2147483648",
    "99999999999999999999", "true", "false", "same", '"text"', '"', "relu", "kaiming",
    "normal(std=0.01)", "sgd(lr=0.1)", "stride=2", "pad=same", "keep=",
    "-", "->", "→", "[", "]", "(", ")", "|", "+", "*", "*3", "x2", "×4", ":", "=", ",", "/",
    "#", "# comment", "\n", "\n", " ", " ", "\t", "×", "@", "\\", "\r\n",
]

FUZZ = settings(max_examples=1200, deadline=timedelta(seconds=2),
                suppress_health_check=[HealthCheck.too_slow])


def check_spec(spec: Spec) -> None:
    size = len(spec.source.text)
    for d in spec.diagnostics:
        assert 0 <= d.span.start <= d.span.end <= size, d
        assert (d.span.line, d.span.col) == spec.source.position(d.span.start), d
        assert d.message
    rendered = spec.render()
    # The text shows the first MAX_SHOWN findings, then one line counting the rest.
    shown = min(len(spec.diagnostics), MAX_SHOWN)
    assert rendered.count(": error: ") + rendered.count(": warning: ") == shown
    if len(spec.diagnostics) > MAX_SHOWN:
        assert any(line.endswith(("lists every one)", "lists them)"))
                   for line in rendered.splitlines()[-3:])
    if spec.ok:
        assert spec.network is not None and spec.network.layers
        assert all(spec.shapes[layer.name] is not None for layer in spec.network.layers)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=60), st.booleans())
def test_random_token_soup(tokens: list[str], with_header: bool) -> None:
    head = "network n\ninput 3x16x16\n" if with_header else ""
    check_spec(loads(head + " ".join(tokens), "soup.arch"))


@FUZZ
@given(st.text(max_size=200))
def test_random_text(text: str) -> None:
    check_spec(loads(text, "text.arch"))


@settings(max_examples=300, deadline=timedelta(seconds=2))
@given(st.binary(max_size=300))
def test_random_bytes(tmp_path_factory, data: bytes) -> None:
    path: Path = tmp_path_factory.mktemp("bytes") / "random.arch"
    path.write_bytes(data)
    check_spec(load(path))


edits = st.lists(st.tuples(
    st.floats(0, 1),                                  # where, as a fraction of the text
    st.sampled_from(["insert", "delete", "copy"]),
    st.sampled_from(TOKENS),
    st.integers(1, 30),                               # how much to delete or copy
), min_size=1, max_size=6)


@pytest.mark.slow
@FUZZ
@given(st.sampled_from(SEEDS), edits)
def test_mutated_seed_specs(seed: str, changes: list[tuple[float, str, str, int]]) -> None:
    text = seed
    for where, op, token, length in changes:
        at = int(where * len(text))
        if op == "insert":
            text = text[:at] + token + text[at:]
        elif op == "delete":
            text = text[:at] + text[at + length:]
        else:
            text = text[:at] + text[at:at + length] + text[at:]
    check_spec(loads(text, "mutant.arch"))


@settings(max_examples=200, deadline=timedelta(seconds=2))
@given(st.lists(st.sampled_from(["CONV3-8", "BN", "RELU", "TANH", "POOL1", "AVGPOOL1",
                                 "DROPOUT", "NORM", "ID"]), min_size=1, max_size=30),
       st.integers(1, 4), st.sampled_from([" - ", "-", " -> ", " -\n"]))
def test_a_repeat_is_its_chain_written_out(words: list[str], count: int, sep: str) -> None:
    """`[A - B]*N` lowers to the same kinds, arguments and edges as A - B written N times."""
    head = "network n\ninput 8x8x8\n"
    words = ["CONV3-8", *words]  # a network of only ID would have no layers
    repeated = loads(f"{head}[{sep.join(words)}]*{count}\n")
    written = loads(head + sep.join(words * count) + "\n")
    assert repeated.ok and written.ok, repeated.render() + written.render()
    assert repeated.network is not None and written.network is not None
    assert [(la.kind, la.args, la.inputs) for la in repeated.network.layers] == [
        (lb.kind, lb.args, lb.inputs) for lb in written.network.layers]


def test_positions_round_trip() -> None:
    source = Source("ab\n\ncd\n")
    assert [source.position(i) for i in range(len(source.text) + 1)] == [
        (1, 1), (1, 2), (1, 3), (2, 1), (3, 1), (3, 2), (3, 3), (4, 1)]
