"""`archspec probe`: the lecture's initialisation tables, reproduced and explained."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from archspec import load, loads
from archspec.backends.torch.layers import LAYERS
from archspec.cli import main
from archspec.cli.common import hand_back
from archspec.ir import InitScheme
from archspec.kinds import registry as reg
from archspec.lang.frontend import InitError, parse_init
from archspec.runtime.probe import (
    SATURATION,
    Probe,
    _Moments,
    _Recorder,
    _shown,
    make_figure,
    probe,
    render_text,
)

SPECS = Path(__file__).resolve().parent.parent / "specs"


def run_probe(name: str, init: str | None = None, samples: int = 1000) -> Probe:
    spec = load(SPECS / f"{name}.arch")
    assert spec.network is not None
    return probe(spec.network, spec.shapes, init=parse_init(init) if init else None,
                 samples=samples, seed=0)


def after_nonlinearity(result: Probe) -> list[float]:
    """The rows the lecture prints: each layer's output after its tanh or ReLU."""
    return [layer.std for layer in result.layers if layer.post_activation]


@pytest.fixture(scope="module")
def tanh_small() -> Probe:
    return run_probe("init_tanh")


@pytest.fixture(scope="module")
def relu_kaiming() -> Probe:
    return run_probe("init_relu")


@pytest.mark.slow
def test_tanh_small_weights_reproduce_the_lecture_table(tanh_small: Probe,
                                                        reference: dict) -> None:
    expected = [row["std"] for row in reference["init_experiment"]["tanh_W_0.01randn"]["layers"]]
    measured = after_nonlinearity(tanh_small)
    assert len(measured) == 10
    for got, want in zip(measured[:5], expected[:5], strict=True):
        assert got == pytest.approx(want, rel=0.10)
    # The figures the lecture prints.
    assert measured[:5] == pytest.approx([0.213, 0.0476, 0.0106, 0.00238, 0.000532], rel=0.10)


@pytest.mark.slow
def test_tanh_small_weights_collapse_forward_and_vanish_backward(tanh_small: Probe) -> None:
    stds = after_nonlinearity(tanh_small)
    assert all(later < earlier / 3 for earlier, later in pairwise(stds))
    assert stds[-1] < 1e-5
    first = tanh_small.layers[0]
    assert first.grad_std is not None and first.grad_std < 1e-4
    assert tanh_small.layers[-1].grad_std == pytest.approx(1.0, rel=0.05)
    findings = " ".join(tanh_small.findings)
    assert "activations collapse" in findings and "gradients vanish" in findings
    assert "collapsed" in tanh_small.layers[-1].flags


@pytest.mark.slow
def test_relu_kaiming_holds_the_deviations(relu_kaiming: Probe, reference: dict) -> None:
    stds = after_nonlinearity(relu_kaiming)
    assert len(stds) == 10
    assert all(0.6 <= s <= 1.1 for s in stds), stds
    table = reference["init_experiment"]["relu_W_randn_sqrt2_over_fanin"]["layers"]
    means = [layer.mean for layer in relu_kaiming.layers if layer.post_activation]
    for got, row in zip(means, table, strict=True):
        assert got == pytest.approx(row["mean"], abs=0.1)
    assert all(0.5 < (layer.grad_std or 0) < 2 for layer in relu_kaiming.layers)
    assert relu_kaiming.findings == ["no layer's activations or gradients collapse or explode"]


# A CIFAR-sized residual net with batch norm at He init: healthy, but its wide 16..64-channel
# maps spread the gradient of 10 outputs over up to 16,384 elements, so per-element gradient
# deviations sit near 0.01 (an absolute bound on them flagged half the layers).
CIFAR_RESNET = """network cifar_resnet
input 3x32x32
init kaiming
defaults CONV(bias=false)
block basic(c): (CONV3-$c - BN - RELU - CONV3-$c - BN + ID) - RELU
block down(c): (CONV3-$c/2(pad=1) - BN - RELU - CONV3-$c - BN + CONV1-$c/2 - BN) - RELU
CONV3-16 - BN - RELU
basic(16) - basic(16) - basic(16)
down(32) - basic(32) - basic(32)
down(64) - basic(64) - basic(64)
GAP - FC-10
"""


@pytest.fixture(scope="module")
def cifar_resnet() -> Probe:
    spec = loads(CIFAR_RESNET)
    assert spec.network is not None
    return probe(spec.network, spec.shapes, samples=64)


@pytest.mark.slow
def test_a_batch_norm_resnet_at_kaiming_is_not_flagged(cifar_resnet: Probe) -> None:
    small = [p for p in cifar_resnet.layers if p.grad_std is not None and p.grad_std < 0.01]
    assert small  # per element the gradients are small...
    for layer in cifar_resnet.layers:  # ...but per sample they hold
        assert layer.grad_norm is not None and 0.1 < layer.grad_norm < 10, layer
        assert not layer.flags, layer
    assert cifar_resnet.findings == ["no layer's activations or gradients collapse or explode"]


@pytest.mark.slow
def test_the_gradient_norm_is_relative_to_the_output(tanh_small: Probe) -> None:
    # Every layer has 500 units, so the norm ratio is the gradient std over the output's.
    out = tanh_small.layers[-1]
    assert out.grad_norm == pytest.approx(1.0)
    for layer in tanh_small.layers:
        assert layer.grad_std is not None and out.grad_std is not None
        assert layer.grad_norm == pytest.approx(layer.grad_std / out.grad_std, rel=0.01)
    assert "grad vanished" in tanh_small.layers[0].flags


@pytest.mark.slow
def test_the_plot_ticks_name_the_layers_shown(cifar_resnet: Probe, tanh_small: Probe) -> None:
    shown = _shown(cifar_resnet)
    assert len(shown) == 12 and shown[-1].name == "basic7.relu2" and shown[1].name != "basic1.relu1"
    figure = make_figure([cifar_resnet, tanh_small])
    curves, grads = figure.axes[0], figure.axes[1]
    for axes in (curves, grads):
        assert [t.get_text() for t in axes.get_xticklabels()] == [p.name for p in shown]
    tanh_axes = figure.axes[2 + len(shown)]
    assert [t.get_text() for t in tanh_axes.get_xticklabels()] == [
        f"tanh{i}" for i in range(1, 11)]


@pytest.mark.slow
def test_xavier_keeps_tanh_from_collapsing() -> None:
    result = run_probe("init_tanh", "xavier")
    stds = after_nonlinearity(result)
    assert len(stds) == 10
    assert min(stds) > 0.1, stds
    assert stds[-1] > stds[0] / 4
    assert not any(layer.flags for layer in result.layers)


@pytest.mark.slow
def test_large_weights_saturate_tanh() -> None:
    result = run_probe("init_tanh", "normal(std=1)", samples=200)
    tanh = [layer for layer in result.layers if layer.kind == "TANH"]
    assert all(layer.saturated is not None and layer.saturated > 0.9 for layer in tanh)
    assert all("saturated" in layer.flags for layer in tanh)
    assert any("saturate" in text for text in result.findings)


def test_dead_relu_units_are_those_zero_for_every_sample() -> None:
    recorder = _Recorder("RELU")
    out = torch.rand(6, 10)
    out[:, :3] = 0.0  # three units that never fire
    out[0, 3] = 0.0  # a unit that is zero only sometimes is alive
    recorder.forward(out[:3])
    recorder.forward(out[3:])
    assert recorder.saturated() == pytest.approx(0.3)


def test_a_relu_unit_that_is_nan_is_not_dead() -> None:
    recorder = _Recorder("RELU")
    out = torch.rand(4, 10)
    out[:, :3] = 0.0  # three units that never fire: dead
    out[:, 3:6] = math.nan  # nan is not zero: not dead
    out[0, 6] = math.nan
    out[1:, 6] = 0.0  # zero for every sample but one, where it is nan: not dead
    recorder.forward(out)
    assert recorder.saturated() == pytest.approx(0.3)


def test_non_finite_values_are_flagged_and_neither_dead_nor_extreme(
        capsys: pytest.CaptureFixture[str]) -> None:
    # Weights of 1e30 overflow float32 from fc2 on (inf - inf is nan); backwards, the
    # gradient overflows below fc9. The rows of nan are not `dead` and count in no extreme.
    assert main(["probe", str(SPECS / "init_relu.arch"), "--samples", "4",
                 "--init", "normal(std=1e30)"]) == 0
    lines = capsys.readouterr().out.splitlines()
    cells = [line[1:].split(maxsplit=8) for line in lines[3:23]]
    columns = {cell[0]: (cell[7], cell[8] if len(cell) > 8 else "") for cell in cells}
    both = "non-finite, grad non-finite"
    assert columns == {
        "fc1": ("-", "exploded, grad non-finite"), "relu1": ("5.6%", "exploded, grad non-finite"),
        "fc2": ("-", both), "relu2": ("0.2%", both),  # units at relu(-inf) = 0: dead
        **{name: ("-" if name.startswith("fc") else "0.0%", both)
           for i in range(3, 9) for name in (f"fc{i}", f"relu{i}")},
        "fc9": ("-", "non-finite, grad exploded"), "relu9": ("0.0%", "non-finite, grad exploded"),
        "fc10": ("-", "non-finite"), "relu10": ("0.0%", "non-finite")}
    assert lines[lines.index("findings:") + 1:] == [
        "- activations are not finite (inf or nan) in 18 of 20 layers, first at fc2",
        "- gradients are not finite (inf or nan) in 16 of 20 layers, nearest the output at relu8",
        "- activations explode in 2 of 20 layers: std above 100 first at fc1 (2.29e+31)",
        "- gradients explode in 2 of 20 layers: per-sample gradient norm above 100 x the "
        "output's nearest the output at relu9 (2.23e+31), reaching 2.23e+31 at fc9",
    ]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=60), st.integers(1, 5))
def test_moments_merged_by_chunks_equal_numpy(values: list[float], parts: int) -> None:
    moments = _Moments()
    for chunk in np.array_split(np.array(values), parts):
        if chunk.size:
            moments.add(torch.tensor(chunk))
    assert moments.mean == pytest.approx(np.mean(values), abs=1e-9)
    assert moments.std == pytest.approx(np.std(values), rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("text, scheme", [
    ("xavier", InitScheme(name="xavier")),
    ("KAIMING", InitScheme(name="kaiming")),
    ("normal(std=0.5)", InitScheme(name="normal", std=0.5)),
    ("normal(0.02)", InitScheme(name="normal", std=0.02)),
])
def test_init_schemes_parse_as_the_header_does(text: str, scheme: InitScheme) -> None:
    assert parse_init(text) == scheme
    header = loads(f"network n\ninput 4\ninit {text}\nFC-2\n")
    assert header.network is not None and header.network.init == scheme


@pytest.mark.parametrize("text, message", [
    ("normall(std=1)", "--init:1:6: error: unknown init scheme `normall`"),
    ("xavier(gain=2)", "--init:1:13: error: `xavier` has no argument `gain`"),
    ("normal(std=-1)", "--init:1:17: error: std"),
    ("normal(std=0.01", "--init:1:12: error: `(` is never closed"),
    ("xavier kaiming", "--init:1:"),
])
def test_bad_init_schemes_are_located(text: str, message: str) -> None:
    with pytest.raises(InitError) as error:
        parse_init(text)
    assert str(error.value).startswith(message)


def test_every_layer_of_a_residual_net_is_seen_joins_included() -> None:
    spec = loads("network r\ninput 4x8x8\nCONV3-4 - (CONV3-4 - RELU + ID) - RELU - FC-10\n")
    assert spec.network is not None
    result = probe(spec.network, spec.shapes, samples=16)
    assert [layer.name for layer in result.layers] == [n.name for n in spec.network.layers]
    add = next(layer for layer in result.layers if layer.kind == "ADD")
    assert add.grad_std is not None and add.std > 0
    assert result.unseen == ()


def test_a_join_feeding_only_a_join_is_named_as_unseen() -> None:
    spec = loads("network n\ninput 4x8x8\n((CONV3-4 | CONV3-4) + CONV3-8) - RELU - FC-10\n")
    assert spec.network is not None
    result = probe(spec.network, spec.shapes, samples=8)
    concat = next(layer.name for layer in spec.network.layers if layer.kind == "CONCAT")
    assert result.unseen == (concat,)
    assert f"not seen: {concat}" in render_text([result])


@pytest.mark.slow
def test_cli_json_is_a_list_for_several_schemes(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["probe", str(SPECS / "init_tanh.arch"), "--samples", "100",
                 "--init", "xavier", "normal(std=0.01)", "--format", "json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert [item["init"] for item in data] == ["xavier", "normal(std=0.01)"]
    assert set(data[0]) == {"network", "init", "samples", "seed", "input", "layers", "unseen",
                            "findings"}
    assert set(data[0]["layers"][0]) == {"name", "kind", "mean", "std", "grad_mean",
                                         "grad_std", "grad_norm", "saturated", "flags"}
    assert data[0]["layers"][1]["kind"] == "TANH"
    assert data[0]["layers"][0]["saturated"] is None


def strict_json(text: str) -> object:
    """JSON as jq and JavaScript read it: `NaN` and `Infinity` are no JSON."""
    def refuse(word: str) -> None:
        raise ValueError(f"not JSON: {word}")
    return json.loads(text, parse_constant=refuse)


def test_cli_json_is_valid_json_when_figures_are_not_finite(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", str(SPECS / "init_relu.arch"), "--samples", "4",
                 "--init", "normal(std=1e30)", "--format", "json"]) == 0
    layers = {layer["name"]: layer for layer in strict_json(capsys.readouterr().out)["layers"]}
    assert layers["fc2"] == {"name": "fc2", "kind": "FC", "mean": None, "std": None,
                             "grad_mean": None, "grad_std": None, "grad_norm": None,
                             "saturated": None, "flags": ["non-finite", "grad non-finite"]}
    assert layers["relu1"]["flags"] == ["exploded", "grad non-finite"]
    assert layers["relu1"]["std"] == pytest.approx(1.33e31, rel=0.01)
    assert layers["relu1"]["grad_std"] is None
    assert layers["fc10"]["flags"] == ["non-finite"]
    assert layers["fc10"]["grad_norm"] == pytest.approx(1.0)


def test_cli_text_marks_the_rows_after_a_nonlinearity(capsys: pytest.CaptureFixture[str],
                                                      golden) -> None:
    assert main(["probe", str(SPECS / "init_relu.arch"), "--samples", "64"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("*  ")]
    assert len(rows) == 10 and all(" RELU " in row for row in rows)
    golden("probe_init_relu_64.txt", out)


def test_the_nonlinearity_legend_is_printed_only_when_a_row_is_marked() -> None:
    spec = loads("network n\ninput 3x8x8\n(CONV3-3 + ID)\n")
    assert spec.network is not None
    lines = render_text([probe(spec.network, spec.shapes, samples=4)]).splitlines()
    assert lines[2] == ("  layer  kind    mean    std  grad mean  grad std  grad norm  sat/dead"
                        "  flags")
    assert [line.split()[0] for line in lines[3:5]] == ["conv1", "add1"]
    assert lines[5] == ("sat/dead: tanh |y| > 0.99, sigmoid y < 0.01 or > 0.99, ReLU units zero "
                        "for every sample")
    assert not any(line.startswith("* output") for line in lines)


@pytest.mark.slow
def test_cli_plot_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "probe.png"
    assert main(["probe", str(SPECS / "init_tanh.arch"), str(SPECS / "init_relu.arch"),
                 "--samples", "100", "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["probe.png"]  # no temporary left over
    assert f"wrote {out}" in capsys.readouterr().out


def test_the_plot_draws_layers_whose_values_are_not_finite(tmp_path: Path) -> None:
    # Weights of 1e30: relu1 is finite (about 1e31), relu2 on nan or inf. The histograms span
    # the finite values (a range of nan raised ValueError), the log axis the finite figures.
    result = run_probe("init_relu", "normal(std=1e30)", samples=4)
    figure = make_figure([result])
    grads, *histograms = figure.axes[1:]
    assert [axes.get_title() for axes in histograms[:2]] == ["relu1\nstd 1.33e+31",
                                                             "relu2\nstd nan"]
    low, high = histograms[0].get_xlim()
    assert math.isfinite(low) and 1e31 < high < 1e32
    assert all(math.isfinite(limit) for limit in grads.get_ylim())
    out = tmp_path / "probe.png"
    assert main(["probe", str(SPECS / "init_relu.arch"), "--samples", "4", "--init",
                 "normal(std=1e30)", "--format", "json", "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_refuses_bad_input_without_a_traceback(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(SPECS / "init_tanh.arch")
    assert main(["probe", spec, "--init", "kaimin"]) == 2
    assert "did you mean `kaiming`?" in capsys.readouterr().err
    assert main(["probe", spec, "--plot", str(tmp_path / "out.svg")]) == 2
    assert main(["probe", str(SPECS / "sketch.arch")]) == 1
    assert "error: CONV needs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["probe", spec, "--samples", "1"])


@pytest.mark.parametrize("words", [
    ["--init", "xavier", "normal(std=0.01)", "TANH"],
    ["TANH", "--init", "xavier", "normal(std=0.01)"],
    ["--init", "xavier", "TANH", "--init", "normal(std=0.01)"],
])
def test_cli_reads_files_after_the_init_schemes(words, capsys) -> None:
    # The words after --init up to the first that is no scheme's shape are schemes, the rest
    # FILEs (all of them were schemes, and FILE was reported missing).
    spec = str(SPECS / "init_tanh.arch")
    words = [spec if word == "TANH" else word for word in words]
    assert main(["probe", *words, "--samples", "8", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(item["network"], item["init"]) for item in data] == \
        [("init_tanh", "xavier"), ("init_tanh", "normal(std=0.01)")]


def test_cli_reads_a_file_named_like_a_scheme_as_a_file(tmp_path, monkeypatch, capsys) -> None:
    # `mynet` (a spec without a suffix) has a scheme's shape but names no scheme, and a file
    # of that name is there: a FILE. A file named after a scheme (`kaiming`) stays a scheme.
    monkeypatch.chdir(tmp_path)
    text = (SPECS / "init_tanh.arch").read_text(encoding="utf-8")
    for name in ("mynet", "kaiming"):
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert main(["probe", "--init", "xavier", "kaiming", "mynet", "--samples", "8",
                 "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(item["network"], item["init"]) for item in data] == \
        [("init_tanh", "xavier"), ("init_tanh", "kaiming")]


def test_cli_reads_the_last_word_as_a_file_where_no_other_is(tmp_path, monkeypatch,
                                                              capsys) -> None:
    # `mynet` is not there: it is still FILE (a probe reads one at least), not a scheme with
    # FILE reported missing; a last word naming a scheme stays a scheme.
    monkeypatch.chdir(tmp_path)
    assert main(["probe", "--init", "xavier", "mynet"]) == 2
    assert capsys.readouterr().err == "archspec: error: cannot read mynet: no such file\n"
    with pytest.raises(SystemExit) as exit_:
        main(["probe", "--init", "xavier", "kaiming"])
    assert exit_.value.code == 2
    assert "the following arguments are required: FILE" in capsys.readouterr().err


def test_cli_init_without_a_scheme_is_refused(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["probe", "--init", str(SPECS / "init_tanh.arch")])
    assert exit_.value.code == 2
    assert "argument --init: expected at least one argument" in capsys.readouterr().err


def test_hand_back_moves_the_words_an_option_does_not_take() -> None:
    takes = {"--checkpoint": lambda words: 2 if words[:1] == ["every"] else 1}
    assert hand_back(["--checkpoint", "every", "4", "F", "--fold"], takes) == \
        ["F", "--checkpoint", "every", "4", "--fold"]
    assert hand_back(["--check", "blocks", "F", "G"], takes) == \
        ["F", "G", "--check", "blocks"]
    assert hand_back(["F", "--checkpoint", "every", "-1"], takes) == \
        ["F", "--checkpoint", "every", "-1"]  # a negative number is a value, as argparse reads
    assert hand_back(["--checkpoint", "--", "blocks", "F"], takes) == \
        ["--checkpoint", "--", "blocks", "F"]
    assert hand_back(["--checkpoint=blocks", "F"], takes) == ["--checkpoint=blocks", "F"]


def test_the_command_module_does_not_import_torch() -> None:
    code = "import sys, archspec.cli.probe; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("kind", [k.name for k in reg.KINDS
                                  if k.family == "activation" and k.name != "SOFTMAX"])
def test_activation_facts_are_what_torch_computes(kind: str) -> None:
    """The registry's `bounds` (where a unit saturates) and `dies` (a unit is zero, with no
    gradient, for every negative input) hold for the module the back end builds."""
    rule = reg.kind_of(kind)
    call = LAYERS[kind]({p.name: p.default for p in rule.params}, (1,))
    module = getattr(torch.nn, call.cls)(*call.args, **dict(call.kwargs))
    x = torch.linspace(-40, 40, 8001).unsqueeze(1).requires_grad_()
    module(x).sum().backward()
    y = module(x).detach()
    assert x.grad is not None
    negative = x.detach() < 0
    if rule.bounds is not None:
        low, high = rule.bounds
        assert low <= float(y.min()) < low + 1 - SATURATION, kind
        assert high - (1 - SATURATION) < float(y.max()) <= high, kind
    if rule.dies:
        assert bool((y[negative] == 0).all()) and bool((x.grad[negative] == 0).all()), kind
    else:  # some negative input still passes a gradient, so "never positive" is not "dead"
        assert bool((x.grad[negative] != 0).any()), kind
