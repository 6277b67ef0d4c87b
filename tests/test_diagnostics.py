"""Bad inputs get located errors: the corpus under tests/bad, limits, the rendered form, exits.

Each tests/bad/*.arch file starts with one `# expect: LINE:COL: SEVERITY: MESSAGE` comment per
finding, in source order; the whole list must match (so every error of a file shows in one
run). Its rendering, with the source line and caret, is a golden file under tests/golden/bad/.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, all_specs
from hypothesis import given, settings
from hypothesis import strategies as st

from archspec.core.diagnostics import Diagnostic, Severity, printable, render
from archspec.core.limits import (
    ECHO_COLUMNS,
    MAX_FINDINGS,
    MAX_LAYERS,
    MAX_NESTING,
    MAX_SHOWN,
    MAX_SOURCE_BYTES,
)
from archspec.core.source import Source, Span
from archspec.lang import expand
from archspec.lang.frontend import Spec, load, loads

BAD = sorted((ROOT / "tests" / "bad").glob("*.arch"))
EXPECT = re.compile(r"# expect: (.*)$")


def expected(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    return [m.group(1) for m in map(EXPECT.match, lines) if m]


def findings(spec: Spec) -> list[str]:
    return [f"{d.span.line}:{d.span.col}: {d.severity.value}: {d.message}"
            for d in spec.diagnostics]


def assert_located(spec: Spec) -> None:
    """Every finding points inside the file, at a real line and column."""
    size = len(spec.source.text)
    lines = spec.source.text.count("\n") + 1
    for d in spec.diagnostics:
        assert 0 <= d.span.start <= d.span.end <= size, d
        assert 1 <= d.span.line <= d.span.end_line <= lines, d
        assert d.span.col >= 1, d


def test_the_corpus_is_large_enough() -> None:
    assert len(BAD) >= 30


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_input(path: Path, golden) -> None:
    spec = loads(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
    assert expected(path), f"{path.name} has no `# expect:` lines"
    assert findings(spec) == expected(path)
    assert spec.errors and not spec.ok
    assert_located(spec)
    golden(f"bad/{path.stem}.txt", spec.render() + "\n")


def test_rendering_shape() -> None:
    spec = loads("network t\ninput 3x32x32\nCONV3-64 - POOLL2\n", "x.arch")
    assert spec.render() == (
        "x.arch:3:12: error: unknown layer kind `POOLL2`\n"
        "   3 | CONV3-64 - POOLL2\n"
        "     |            ^~~~~~\n"
        "     = help: did you mean `POOL`?")


def test_rendering_drops_carriage_returns_and_keeps_tabs_aligned() -> None:
    spec = loads("network t\r\ninput 3x32x32\r\n\tCONV3-64 - POOLL2\r\n", "x.arch")
    assert spec.render().splitlines()[:3] == [
        "x.arch:3:13: error: unknown layer kind `POOLL2`",
        "   3 |  CONV3-64 - POOLL2",
        "     |             ^~~~~~"]


def test_control_characters_from_the_file_are_escaped_and_the_caret_follows() -> None:
    spec = loads("network t\ninput 4\nFC-2 - \x1b[31mX\x07 - FC-3\n", "a\x1b]0;x\x07.arch")
    assert spec.render().splitlines() == [
        "a\\x1b]0;x\\x07.arch:3:8: error: unexpected character '\\x1b'",
        "   3 | FC-2 - \\x1b[31mX\\x07 - FC-3",
        "     |        ^~~~"]
    assert "\x1b" not in spec.render() and "\x07" not in spec.render()


def test_a_long_line_is_cut_around_the_caret() -> None:
    line = "FC-2 - " * 300 + "QQ - " + "FC-2 - " * 300 + "FC-1"
    spec = loads(f"network t\ninput 4\n{line}\n")
    _head, echoed, caret = spec.render().splitlines()[:3]
    assert echoed.startswith("   3 | …") and echoed.endswith("…")
    assert len(echoed) < 2 * ECHO_COLUMNS + 20
    assert echoed[caret.index("^"):].startswith("QQ - ")


def test_a_tampered_span_cannot_blow_up_the_rendering() -> None:
    source = Source("network t\ninput 4\nFC-2\n", "x.arch")
    span = Span(start=0, end=1, line=3, col=10**10, end_line=3, end_col=10**10 + 5)
    finding = Diagnostic(severity=Severity.ERROR, code="x", message="m", span=span)
    assert render(finding, source).splitlines()[1:] == ["   3 | FC-2", "     |     ^"]


def test_rendered_findings_stop_after_a_limit_and_count_the_rest() -> None:
    spec = loads("network t\ninput 4\n" + "QQ - " * 120 + "FC-1\n")
    text = spec.render()
    assert text.count(": error: ") == MAX_SHOWN
    assert text.endswith(f"<input>: ... and {120 - MAX_SHOWN} more errors "
                         "(`archspec check --format json` lists every one)")


def test_an_error_in_a_large_repeat_is_found_once(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(expand, "suggest", lambda *args: calls.append(args))
    spec = loads("network t\ninput 4\n[QQQ]*99999\n")
    assert findings(spec) == ["3:2: error: unknown layer kind `QQQ`"]
    assert len(calls) <= 2  # one layer, once: the later copies are not lowered again


def test_a_byte_order_mark_is_not_part_of_the_text() -> None:
    spec = loads("\ufeffnetwork t\ninput 4\nFC-2\n")
    assert spec.ok and spec.diagnostics == []


@pytest.mark.parametrize(("text", "found"), [
    ("input 32x32x3\nCONV3-8 - FC-2\n",
     ["2:7: warning: `input 32x32x3` reads as 32 channels of 32x3 pixels; 3 channels last "
      "looks like height x width x channels"]),
    ("input 32x32x3 chw\nCONV3-8 - FC-2\n", []),
    ("input 64x8x8\nCONV3-8 - FC-2\n", []),
    ("activation relu\ninput 3x8x8\nCONV3-8 - RELU - FC-10 - SOFTMAX\n",
     ["4:11: warning: `RELU` follows `CONV3-8`, which the `activation` header already follows "
      "with RELU: two activations in a row",
      "4:26: warning: the network ends in SOFTMAX, but `archspec train`'s cross-entropy "
      "applies log-softmax to the output itself: the scores go through softmax twice, which "
      "trains slowly and to a worse loss"]),
    ("activation relu\ninput 3x8x8\nCONV3-8 - FC-10 - RELU\n", []),  # no RELU after FC-10
    ("input 3x8x8\nCONV3-8 - SOFTMAX - FC-10\n", []),
])
def test_silent_mistakes_are_located_warnings(text: str, found: list[str]) -> None:
    spec = loads("network t\n" + text)
    assert spec.ok and findings(spec) == found


def test_every_missing_argument_of_a_sketch_is_reported_where_it_stands() -> None:
    spec = load(ROOT / "specs" / "sketch.arch")
    line = spec.source.text.splitlines().index("[CONV-POOL-CONV-POOL-FC-FC]") + 1
    assert [(d.span.line, d.span.col, d.code) for d in spec.errors] == [
        (line, col, "missing-argument") for col in (2, 7, 12, 17, 22, 25)]


def test_a_window_that_drops_pixels_is_a_warning_only() -> None:
    spec = loads("network t\ninput 3x32x32\nPOOL3/2 - FC-10\n")
    assert spec.ok
    [warning] = spec.diagnostics
    assert warning.severity.value == "warning" and warning.code == "window"
    assert "leaves the last row and the last column of its 32x32 input unread" in warning.message


def test_a_header_line_after_the_layers_is_a_warning() -> None:
    spec = loads("network t\ninput 3x8x8\nCONV3-8\nactivation relu\nblock b(): RELU\nb - FC-2\n")
    assert spec.ok
    assert findings(spec) == [
        "4:1: warning: `activation` comes after the layers; it applies to the whole network",
        "5:12: warning: `RELU` follows `CONV3-8`, which the `activation` header already follows "
        "with RELU: two activations in a row"]
    assert spec.network is not None
    assert [layer.kind for layer in spec.network.layers] == [
        "CONV", "RELU", "RELU", "FLATTEN", "FC"]


# -- limits: rejected quickly, located, without expanding or allocating ---------------------


def timed(text: str) -> tuple[Spec, float]:
    start = time.perf_counter()
    spec = loads(text, "big.arch")
    return spec, time.perf_counter() - start


def test_a_file_over_the_size_limit() -> None:
    text = "network t\ninput 4\nFC-2\n" + "#" * MAX_SOURCE_BYTES
    spec, seconds = timed(text)
    assert findings(spec) == ["1:1: error: the file is larger than 1 MiB"]
    assert seconds < 1


def test_a_huge_file_is_not_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "huge.arch"
    with path.open("wb") as handle:
        handle.write(b"network t\ninput 4\nFC-2\n")
        handle.truncate(200 * MAX_SOURCE_BYTES)  # sparse: 200 MiB of NUL bytes
    start = time.perf_counter()
    spec = load(path)
    assert len(spec.source.text) <= MAX_SOURCE_BYTES + 1
    assert findings(spec) == ["1:1: error: the file is larger than 1 MiB"]
    assert time.perf_counter() - start < 1


def test_brackets_nested_too_deep() -> None:
    depth = MAX_NESTING + 50
    spec, seconds = timed("network t\ninput 4\n" + "[" * depth + "FC-2" + "]" * depth + "\n")
    assert findings(spec) == [
        f"3:{MAX_NESTING + 1}: error: brackets nest deeper than {MAX_NESTING} levels"]
    assert seconds < 1


def test_brackets_nested_to_the_limit_are_fine() -> None:
    depth = MAX_NESTING
    spec, _ = timed("network t\ninput 4\n" + "[" * depth + "FC-2" + "]" * depth + "\n")
    assert spec.ok, spec.render()


def test_block_calls_nested_too_deep() -> None:
    blocks = [f"block b{i}(): b{i - 1}" for i in range(1, 3 * MAX_NESTING)]
    spec, seconds = timed("\n".join(["network t", "input 4", "block b0(): FC-2", *blocks,
                                     f"b{3 * MAX_NESTING - 1}"]) + "\n")
    assert [d.message for d in spec.errors] == [
        f"brackets and block calls nest deeper than {MAX_NESTING} levels"]
    assert seconds < 2


@pytest.mark.parametrize("body", [
    "[[[FC-2]*1000]*1000]*1000",
    "[FC-2]*99999999999999999999",
    "[[CONV3-8]*50000]*3",
])
def test_expansion_is_counted_before_expanding(body: str) -> None:
    spec, seconds = timed(f"network t\ninput 3x8x8\n{body}\n")
    [error] = spec.errors
    assert error.code == "limit" and f"over the limit of {MAX_LAYERS:,}" in error.message
    assert error.span.line == 3
    assert spec.network is None
    assert seconds < 1


def test_implicit_layers_count_towards_the_limit() -> None:
    spec, _ = timed("network t\ninput 3x8x8\nactivation relu\nbatchnorm\n[CONV3-8]*40000\n")
    assert [e.code for e in spec.errors] == ["limit"]


def test_recursive_blocks_are_found_even_when_unused() -> None:
    spec = loads("network t\ninput 4\nblock a(): b - a\nblock b(): c\nblock c(): b\n"
                 "block d(): FC-2\nd\n")
    assert findings(spec) == ["3:16: error: block `a` calls itself (a → a)",
                              "5:12: error: block `b` calls itself (b → c → b)"]


def test_a_long_chain_of_blocks_in_a_cycle() -> None:
    blocks = [f"block b{i}(): b{i - 1}" for i in range(1, 5000)]
    spec, seconds = timed("\n".join(["network t", "input 4", "block b0(): b4999", *blocks,
                                     "FC-2"]) + "\n")
    [error] = spec.errors
    assert error.message == ("block `b0` calls itself "
                             "(b0 → b4999 → b4998 → b4997 → ... → b2 → b1 → b0)")
    assert seconds < 5


def test_exponential_blocks_are_cut_off() -> None:
    blocks = [f"block b{i}(): b{i - 1} - b{i - 1}" for i in range(1, 64)]
    spec, seconds = timed("\n".join(["network t", "input 4", "block b0(): FC-2", *blocks,
                                     "b63"]) + "\n")
    assert [e.code for e in spec.errors] == ["limit"]
    assert seconds < 3


@pytest.mark.parametrize(("header", "body", "message"), [
    ("input 3x2147483648x2", "CONV3-8", "input sizes must be between 1 and 2^31-1"),
    ("input 3x2000000x2000000", "RELU", "an input of 12,000,000,000,000 values"),
    ("input 3x100000x100000", "CONV3-1024", "could not fit any machine"),
    ("input 3x4096x4096", "FC-100000", "more than any machine could hold"),
    ("input 4", "FC-3000000000", "beyond any sane size"),
])
def test_sizes_no_machine_could_hold(header: str, body: str, message: str) -> None:
    spec, seconds = timed(f"network t\n{header}\n{body}\n")
    [error] = spec.errors
    assert message in error.message
    assert seconds < 1


def test_errors_stop_after_the_limit_and_say_so() -> None:
    spec, seconds = timed("network t\ninput 4\n" + "- -\n" * 50_000)
    assert len(spec.errors) == MAX_FINDINGS + 1
    assert spec.errors[-1].message == (
        f"more than {MAX_FINDINGS} errors; the rest are not shown")
    assert seconds < 5
    # The text counts the findings past the first MAX_SHOWN, not the note, then says it.
    assert spec.render().splitlines()[-2:] == [
        f"big.arch: ... and {MAX_FINDINGS - MAX_SHOWN} more errors (`archspec check --format "
        "json` lists them)",
        f"big.arch: more than {MAX_FINDINGS} errors; the rest are not shown"]


def test_a_repeated_error_is_reported_once() -> None:
    spec = loads("network t\ninput 4\n[CONVV]*5000\n")
    assert [d.message for d in spec.diagnostics] == ["unknown layer kind `CONVV`"]


@pytest.mark.parametrize(("text", "where", "char"), [
    ("CONV3-8 é\n", "3:9", "'é'"),
    ("# a \x01 b\nCONV3-8\n", "3:5", "'\\x01'"),
    ('CONV3-8 "\x00"\n', "3:10", "'\\x00'"),
])
def test_characters_the_language_does_not_use(text: str, where: str, char: str) -> None:
    spec = loads("network t\ninput 3x8x8\n" + text)
    assert findings(spec) == [f"{where}: error: unexpected character {char}"]


def test_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "binary.arch"
    path.write_bytes(b"network t\ninput 4\nFC-2 \xff\xfe\n")
    spec = load(path)
    assert findings(spec) == ["3:6: error: unexpected bytes that are not UTF-8"]


# -- the command line ----------------------------------------------------------------------


def run_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "archspec", "check", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_check_exit_codes_and_summary() -> None:
    ok = run_check("specs/vgg16.arch")
    assert (ok.returncode, ok.stderr) == (0, "")
    assert ok.stdout == "specs/vgg16.arch: ok: vgg16, 39 layers, 3x224x224 -> 1000\n"
    bad = run_check("specs/vgg16.arch", "tests/bad/many_errors.arch")
    assert bad.returncode == 1
    assert bad.stderr.count(": error: ") == len(
        [e for e in expected(ROOT / "tests/bad/many_errors.arch") if ": error: " in e])
    assert "tests/bad/many_errors.arch:9:1: error: CONV3 needs a filter count" in bad.stderr
    missing = run_check("no/such/file.arch")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    directory = run_check("specs")
    assert directory.returncode == 2 and "a directory" in directory.stderr
    usage = run_check()
    assert usage.returncode == 2


def test_check_json_output() -> None:
    import json

    result = run_check("--format", "json", "specs/lenet5.arch", "tests/bad/unknown_kind.arch")
    assert result.returncode == 1
    good, report = json.loads(result.stdout)
    assert (good["ok"], good["network"], good["layers"], good["input"], good["output"]) == (
        True, "lenet5", 12, [1, 32, 32], [10])
    assert report["ok"] is False and "layers" not in report
    [diagnostic] = report["diagnostics"]
    assert (diagnostic["span"]["line"], diagnostic["span"]["col"]) == (4, 12)
    assert diagnostic["hint"] == "did you mean `POOL`?"
    # A file that cannot be read is in the list, with the error stderr gives (exit 2).
    missing = run_check("--format", "json", "nosuch.arch", "specs/lenet5.arch")
    assert missing.returncode == 2
    unread, good = json.loads(missing.stdout)
    assert unread == {"file": "nosuch.arch", "ok": False, "diagnostics": [],
                      "error": "cannot read nosuch.arch: no such file"}
    assert good["ok"] is True
    assert missing.stderr == "archspec: error: cannot read nosuch.arch: no such file\n"


def test_check_never_imports_torch() -> None:
    code = ("import sys\nfrom archspec.cli import main\n"
            "status = main(['check', *sys.argv[1:]])\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "sys.exit(status)\n")
    specs = [str(p) for p in all_specs()]
    result = subprocess.run([sys.executable, "-c", code, *specs, *map(str, BAD[:5])],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 1, result.stderr  # the sketch and the bad files fail
    assert "torch was imported" not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_file_name_with_control_characters_is_printed_escaped(tmp_path: Path) -> None:
    path = tmp_path / "a\x1b[2Jb.arch"
    path.write_text("network t\ninput 4\nFC-2\n")
    result = run_check(str(path))
    assert result.returncode == 0 and "\x1b" not in result.stdout
    assert result.stdout.endswith("a\\x1b[2Jb.arch: ok: t, 1 layer, 4 -> 2\n")


def test_unused_blocks_cost_what_their_text_is_long(monkeypatch) -> None:
    added = []
    real = expand.Expander._add
    monkeypatch.setattr(expand.Expander, "_add",
                        lambda self, node, box=None: added.append(1) or real(self, node, box))
    blocks = "".join(f"block b{i}: [FC-2]*60000 - QQ{i}\n" for i in range(20))
    spec = loads(f"network t\ninput 4\n{blocks}FC-2\n")
    # each block once, its repeat one copy (FC-2 and the flatten before it) and the unknown
    # QQ's placeholder (no shape: nothing after it is checked against a guess), and the body's
    assert len(added) == 3 * 20 + 1
    assert [d.message for d in spec.errors] == [
        f"unknown layer kind or block `QQ{i}`" for i in range(20)]


@settings(max_examples=200, deadline=None)
@given(line=st.text(alphabet=st.characters(blacklist_characters="\n\r"), max_size=600),
       col=st.integers(0, 700), width=st.integers(0, 300))
def test_any_line_renders_printable_bounded_and_aligned(line: str, col: int, width: int) -> None:
    """Whatever the line holds and wherever the span is: every rendered character is
    printable, each line is bounded, and the caret stands under the span's first character."""
    source = Source(f"{line}\nx\n", "f.arch")
    line = line.removeprefix("\ufeff")  # a leading byte-order mark is not the file's text
    start = min(col, len(line))
    end = min(start + width, len(line))
    finding = Diagnostic(severity=Severity.ERROR, code="x", message=line[:20],
                         span=source.span(start, end))
    _head, echoed, caret = render(finding, source).splitlines()
    assert all(ch.isprintable() for ch in echoed + caret)
    # 10 characters at most an escape (\U0010ffff), the span cut at ECHO_COLUMNS too
    assert len(echoed) <= len("   1 | ") + 2 + 3 * ECHO_COLUMNS * 10
    expected = line.expandtabs(1)[max(0, start - ECHO_COLUMNS):start]
    shown = echoed[len("   1 | "):]
    assert shown[caret.index("^") - len("     | "):].startswith(
        printable(line.expandtabs(1)[start:start + 1]))
    assert printable(expected) in shown


@pytest.mark.parametrize(("word", "hint"), [
    ("LAYERNROM", "did you mean `LAYERNORM`?"), ("BATCHNORM2D", "did you mean `BATCHNORM`?"),
    ("CNV", "did you mean `CONV`?"), ("SWISSH", "did you mean `SWISH`?"),
    ("INSTANCENORM", "the normalisation layers are BN (BATCHNORM), NORM (LRN), LAYERNORM, "
     "GROUPNORM, SCALE"),
    ("ADAPTIVEAVGPOOL", "the pooling layers are MAXPOOL (POOL), AVGPOOL, GAP, GMP"),
    ("HARDTANH", "the activations are RELU, TANH, SIGMOID, GELU, LEAKYRELU, SOFTMAX, RELU6, "
     "HARDSWISH, HARDSIGMOID, SILU (SWISH), MISH, SELU, ELU, PRELU"),
    ("QQQ", None)])
def test_did_you_mean_is_a_slip_or_the_family_never_a_part_of_the_name(word: str,
                                                                       hint: str | None) -> None:
    from archspec.kinds import registry as reg

    assert reg.kind_hint([word]) == hint


def test_no_kind_is_suggested_for_a_longer_name_that_contains_it() -> None:
    """A name with a word before or after a kind's (LAYER+NORM, NORM+ALIZE) is another layer,
    not a slip of that kind: no did-you-mean names the shorter kind."""
    from archspec.kinds import registry as reg

    for kind in reg.KINDS:
        for word in (f"LAYER{kind.name}", f"{kind.name}IZATION"):
            hint = reg.kind_hint([word]) or ""
            assert f"`{kind.name}`" not in hint, (word, hint)


@given(st.text(alphabet="ab\n\r", max_size=30), st.integers(-2, 35), st.integers(-2, 35))
def test_a_span_has_the_line_and_column_of_each_end(text: str, start: int, end: int) -> None:
    """Source.span finds an end on the start's line without a second search; the same
    lines and columns as `position` gives for each end."""
    source = Source(text)
    span = source.span(start, end)
    assert (span.line, span.col) == source.position(start)
    assert (span.end_line, span.end_col) == source.position(end)
    assert (span.start, span.end) == (start, end)
