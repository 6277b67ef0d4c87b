"""Loading weights: a state_dict file is checked against the spec before it is loaded, by
the generated module's build(weights=PATH) and by `archspec compile --weights PATH`; every
tensor missing, unexpected or of another shape is reported at its spec line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, SPECS
from test_compile import compile_spec, import_file

from archspec.backends.torch.build import to_torch
from archspec.backends.torch.weights import WeightsFileError, read_state
from archspec.lang.frontend import load

RESNET18 = SPECS / "zoo" / "resnet18.arch"


def _saved(tmp_path: Path, state: dict[str, torch.Tensor], name: str = "w.pt") -> Path:
    path = tmp_path / name
    torch.save(state, path)
    return path


def _broken(tmp_path: Path) -> Path:
    """ResNet-18's tensors with one missing, one of another shape and one unexpected."""
    spec = load(RESNET18)
    assert spec.network is not None
    state = to_torch(spec.network, spec.shapes).state_dict()
    del state["layer1.0.conv1.weight"]
    state["layer2.0.bn1.weight"] = torch.zeros(3)
    state["head.weight"] = torch.zeros(1)
    return _saved(tmp_path, state)


def test_the_generated_module_loads_a_state_dict_strictly(tmp_path: Path) -> None:
    assert compile_spec(RESNET18, tmp_path) == 0
    module = import_file(tmp_path / "resnet18.py")
    torch.manual_seed(0)
    source = module.build().eval()
    weights = _saved(tmp_path, source.state_dict())
    loaded = module.build(weights=str(weights)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(source(x), loaded(x))


def test_build_reports_every_misfit_by_spec_line_before_loading(tmp_path: Path) -> None:
    spec = load(RESNET18)
    assert spec.network is not None
    with pytest.raises(ValueError) as caught:
        to_torch(spec.network, spec.shapes, weights=str(_broken(tmp_path)))
    lines = str(caught.value).splitlines()[1:]
    assert [line.strip() for line in lines] == [
        "line 10: CONV3-64: layer1.0.conv1.weight [64, 64, 3, 3] is missing from the file",
        "line 11: BN: layer2.0.bn1.weight is [3] in the file, [128] in the spec",
        "'head.weight' in the file has no place in the spec"]


@pytest.mark.slow  # seconds each (a compile, an export or a subprocess)
def test_compile_checks_the_weights_at_their_layers(tmp_path: Path) -> None:
    weights = _broken(tmp_path)
    result = subprocess.run([sys.executable, "-m", "archspec", "compile", str(RESNET18), "-o",
                             str(tmp_path / "out"), "--weights", str(weights)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    located = [line.split(": error: ") for line in result.stderr.splitlines()
               if ": error: " in line]
    assert located == [
        [f"{RESNET18}:10:25", "the weights file lacks `layer1.0.conv1.weight` [64, 64, 3, 3]"],
        [f"{RESNET18}:11:42", "`layer2.0.bn1.weight` is [3] in the weights file, [128] here"],
        [f"{RESNET18}:7:7", "the weights file has `head.weight`, which no layer of the spec "
         "holds"]]
    assert not (tmp_path / "out").exists()  # nothing written


@pytest.mark.slow  # seconds each (a compile, an export or a subprocess)
def test_compile_refuses_a_file_that_is_no_state_dict(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x80\x04junk, not a pickle of tensors")
    result = subprocess.run([sys.executable, "-m", "archspec", "compile", str(RESNET18), "-o",
                             str(tmp_path / "out"), "--weights", str(junk)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"archspec: error: {junk}: not a state_dict file torch "
                                    "can read with weights_only=True")


def test_an_empty_or_cut_short_file_says_so(tmp_path: Path) -> None:
    # torch raises a bare EOFError for both: the message ended in an empty `()`.
    empty, cut = tmp_path / "empty.pt", tmp_path / "cut.pt"
    empty.write_bytes(b"")
    torch.save({"w": torch.zeros(3)}, cut)
    cut.write_bytes(cut.read_bytes()[:40])
    for path in (empty, cut):
        with pytest.raises(WeightsFileError) as error:
            read_state(path)
        assert str(error.value).startswith(f"{path}: not a state_dict file torch can read "
                                           "with weights_only=True (")
        assert not str(error.value).endswith("()")
    with pytest.raises(WeightsFileError, match=r"weights_only=True \(the file ends early\)$"):
        read_state(empty)


def test_compile_with_fitting_weights_says_so(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    spec = load(RESNET18)
    assert spec.network is not None
    weights = _saved(tmp_path, to_torch(spec.network, spec.shapes).state_dict())
    assert compile_spec(RESNET18, tmp_path / "out", "--weights", str(weights)) == 0
    assert f"weights: {weights} fits the spec" in capsys.readouterr().out


@pytest.mark.slow  # seconds each (a compile, an export or a subprocess)
def test_compile_onnx_runs_in_onnxruntime_as_the_module_does(tmp_path: Path) -> None:
    """--onnx with --weights: onnxruntime's output equals the PyTorch module's with those
    weights, at a batch size other than the exporter's example (the batch is dynamic)."""
    ort = pytest.importorskip("onnxruntime")
    from test_compile import BRANCHY

    spec_path = tmp_path / "branchy.arch"
    spec_path.write_text(BRANCHY)
    spec = load(spec_path)
    assert spec.network is not None
    torch.manual_seed(0)
    model = to_torch(spec.network, spec.shapes).eval()
    weights = _saved(tmp_path, model.state_dict())
    out = tmp_path / "out"
    assert compile_spec(spec_path, out, "--onnx", "--weights", str(weights)) == 0
    session = ort.InferenceSession(str(out / "branchy.onnx"), providers=["CPUExecutionProvider"])
    x = torch.randn(5, 3, 16, 16)
    (got,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        assert torch.allclose(torch.from_numpy(got), model(x), atol=1e-5)
