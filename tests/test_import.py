"""`archspec import`: PyTorch models read back into specs that compile to the same modules."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archspec.backends.torch.build import to_torch
from archspec.backends.torch.importer import ImportFailed, import_model
from archspec.cli import main
from archspec.lang.frontend import load_network, loads
from tests.conftest import ROOT, all_specs

SPECS = [p for p in all_specs() if p.name != "sketch.arch"]  # a sketch has no arguments to build
FAST = {"resnet18.arch", "googlenet.arch", "lenet5.arch", "digits.arch",
        "mobilenet_v2.arch", "efficientnet_b0.arch", "shufflenet_v2_x1_0.arch",
        "convnext_tiny.arch", "densenet121.arch", "squeezenet1_1.arch"}


def _keys(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _reimport(model: nn.Module, shape: tuple[int, ...], name: str = "net") -> str:
    return import_model(model, shape, name=name, origin="tests").text


def _assert_same(model: nn.Module, text: str, shape: tuple[int, ...]) -> nn.Module:
    """The spec checks, builds the model's state_dict keys and shapes, loads its weights
    strictly and computes the same outputs."""
    spec = loads(text, "<imported>")
    assert spec.ok, spec.render() + "\n" + text
    assert spec.network is not None
    built = to_torch(spec.network, spec.shapes)
    assert _keys(built) == _keys(model)
    built.load_state_dict(model.state_dict(), strict=True)
    model.eval()
    built.eval()
    x = torch.randn(2, *shape)
    with torch.no_grad():
        torch.testing.assert_close(built(x), model(x))
    return built


@pytest.mark.parametrize("path", [pytest.param(p, id=p.relative_to(ROOT / "specs").as_posix(),
                                               marks=() if p.name in FAST and (
                                                   p.parent.name != "zoo" or p.name not in {
                                                       "resnet18.arch", "googlenet.arch"})
                                               else pytest.mark.slow)
                                  for p in SPECS])
def test_round_trip(path: Path) -> None:
    """compile -> import -> compile: the same parameters, shapes per layer and state_dict keys
    (built on the meta device), then the same outputs with the same weights on a real build
    for the fast ones."""
    network, shapes = load_network(path)
    with torch.device("meta"):
        model = to_torch(network, shapes)
    text = _reimport(model, network.input.shape, network.name)
    spec = loads(text, "<imported>")
    assert spec.ok, spec.render() + "\n" + text
    assert spec.network is not None
    with torch.device("meta"):
        again = to_torch(spec.network, spec.shapes)
    assert _keys(again) == _keys(model)
    assert [shapes[layer.name] for layer in network.layers] == [
        spec.shapes[layer.name] for layer in spec.network.layers]
    if path.name in FAST:
        torch.manual_seed(0)
        _assert_same(to_torch(network, shapes), text, network.input.shape)


# --- hand-written plain-torch models, as torchvision writes them ----------------------------

class BasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    def __init__(self, layers: tuple[int, ...] = (2, 2, 2, 2), classes: int = 10) -> None:
        super().__init__()
        self.inplanes = 16
        self.conv1 = nn.Conv2d(3, 16, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(16, layers[0])
        self.layer2 = self._make_layer(32, layers[1], 2)
        self.layer3 = self._make_layer(64, layers[2], 2)
        self.layer4 = self._make_layer(128, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(128, classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def test_resnet_blocks_groups_and_repeats() -> None:
    model = ResNet((2, 3, 2, 2))
    text = _reimport(model, (3, 64, 64))
    _assert_same(model, text, (3, 64, 64))
    # one block per structure of BasicBlock, parameters for what differs, repeats folded
    # (self.relu runs twice: named once, as a module without weights may be)
    assert "block basic_block(c): ( conv1: CONV3-$c(bias=false) - bn1: BN - relu: RELU -" in text
    assert "block basic_block_2(c): ( conv1: CONV3-$c/2(bias=false)" in text
    assert "downsample: [CONV1-$c/2(bias=false) - BN] ) - RELU" in text
    assert "\nlayer1: [basic_block(16)]*2\nlayer2: [basic_block_2(32) - [basic_block(32)]*2]\n" \
        in text
    assert "avgpool: GAP - FLATTEN - fc: FC-10" in text


class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, **kwargs: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(cin, 16, kernel_size=1)
        self.branch2 = nn.Sequential(BasicConv2d(cin, 8, kernel_size=1),
                                     BasicConv2d(8, 16, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(cin, 4, kernel_size=1),
                                     BasicConv2d(4, 8, kernel_size=5, padding=2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), BasicConv2d(cin, 8, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = BasicConv2d(3, 24, kernel_size=3, stride=2, padding=1)
        self.mixed = Inception(24)
        self.fc = nn.Linear(48, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.mixed(self.stem(x))
        x = F.adaptive_avg_pool2d(x, (1, 1))
        return self.fc(torch.flatten(x, 1))


def test_inception_concat_and_functional_steps() -> None:
    model = InceptionNet()
    text = _reimport(model, (3, 32, 32))
    _assert_same(model, text, (3, 32, 32))
    assert "block basic_conv2d(k, c, s): conv: CONV$k-$c/$s(bias=false) - bn: BN(eps=0.001) " \
        "- RELU" in text
    assert "block inception(): ( branch1: basic_conv2d(1, 16, 1) | branch2: [" in text
    assert "mixed: inception()" in text
    assert "GAP - FLATTEN - fc: FC-5" in text


class Flat(nn.Module):
    """A model whose layers are its own attributes, one after another."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.bn(self.c1(x))))
        return self.fc(torch.flatten(x, 1))


def test_a_flat_model_keeps_its_attribute_names() -> None:
    # Its spec names its layers, which the compiled module keeps as attributes (c1.weight),
    # not laid out as an unnamed stack is, in `features` and `classifier`.
    model = Flat()
    text = _reimport(model, (3, 16, 16))
    assert "c1: CONV3-16 - bn: BN - RELU - pool: POOL2 - FLATTEN - fc: FC-10" in text
    _assert_same(model, text, (3, 16, 16))


class SE(nn.Module):
    def __init__(self, c: int, r: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(c, r, 1)
        self.fc2 = nn.Conv2d(r, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s


class SENet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), SE(16, 4),
                                      nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(), SE(32, 8))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(32, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).mean((2, 3), keepdim=True)
        return self.classifier(x)


def test_se_gate_is_a_multiply_join() -> None:
    model = SENet()
    text = _reimport(model, (3, 16, 16))
    _assert_same(model, text, (3, 16, 16))
    assert "block se(c, c2): ( ID * GAP - fc1: CONV1-$c - RELU - fc2: CONV1-$c2 - SIGMOID )" \
        in text
    assert "features: [CONV3-16 - RELU - se(4, 16) - CONV3-32/2 - RELU - se(8, 32)]\nGAP\n" \
        "classifier: [FLATTEN - DROPOUT(p=0.2) - FC-3]" in text


class Unsupported(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
        self.rnn_like = nn.GRUCell(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.sin(self.body(x))  # no .arch form
        return x.mean((2, 3))


def _source_line(where: str) -> str:
    """The line of this file a finding's `test_import.py:LINE` names."""
    file, _, line = where.partition(":")
    assert file == "test_import.py", where
    return Path(__file__).read_text().splitlines()[int(line) - 1]


def test_unsupported_parts_are_reported_at_their_path_and_line() -> None:
    with pytest.raises(ImportFailed) as caught:
        import_model(Unsupported(), (3, 8, 8), name="net", origin="tests")
    [finding] = caught.value.findings
    assert finding.path == ""
    assert finding.message == "call_function sin: no .arch form"
    assert "torch.sin" in _source_line(finding.where)
    partial = import_model(Unsupported(), (3, 8, 8), name="net", origin="tests", partial=True)
    assert "# PARTIAL" in partial.text
    assert "\nbody: [CONV(4, 3) - RELU]\n? - GAP - FLATTEN\n" in partial.text


def test_an_unknown_module_is_reported_by_its_path() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stage = nn.Sequential(nn.Conv2d(3, 4, 3), nn.InstanceNorm2d(4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.stage(x)

    with pytest.raises(ImportFailed) as caught:
        import_model(Net(), (3, 8, 8), name="net", origin="tests")
    [finding] = caught.value.findings
    assert (finding.path, finding.message) == ("stage.1", "InstanceNorm2d has no .arch kind")
    # at the user's line that ran it (through the Sequential), not the importer's tracer
    assert _source_line(finding.where).strip() == "return self.stage(x)"


def test_a_setting_the_kind_lacks_is_reported_not_dropped() -> None:
    model = Wrap(nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2, dilation=2)))
    with pytest.raises(ImportFailed) as caught:
        import_model(model, (3, 16, 16), name="net", origin="tests")
    assert [(f.path, f.message) for f in caught.value.findings] == [
        ("body.1", "MaxPool2d(dilation=2): MAXPOOL has no such setting")]


@pytest.mark.parametrize(("module", "message"), [
    (nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"),
     "Conv2d(padding_mode='reflect'): CONV pads with zeros only"),
    (nn.BatchNorm2d(4, affine=False), "BatchNorm2d(affine=False): BN has no such setting"),
    (nn.MaxPool2d(2, dilation=2), "MaxPool2d(dilation=2): MAXPOOL has no such setting"),
    (nn.InstanceNorm2d(4), "InstanceNorm2d has no .arch kind"),
    (nn.Dropout2d(), "Dropout2d has no .arch kind"),
])
def test_a_module_with_no_form_is_located_where_the_forward_calls_it(
        module: nn.Module, message: str) -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.odd = module

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.conv(x)
            return self.odd(x)  # the line each finding names

    with pytest.raises(ImportFailed) as caught:
        import_model(Net(), (3, 16, 16), name="net", origin="tests")
    [finding] = caught.value.findings
    assert (finding.path, finding.message) == ("odd", message)
    assert _source_line(finding.where).endswith("return self.odd(x)  # the line each finding names")


def test_a_sequential_model_is_reported() -> None:
    with pytest.raises(ImportFailed) as caught:
        import_model(nn.Sequential(nn.Conv2d(3, 4, 3)), (3, 8, 8), name="net", origin="tests")
    assert "the model itself is an nn.Sequential" in caught.value.findings[0].message


class Wrap(nn.Module):
    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Branchy(nn.Module):
    """Python control flow on the tensor: fx cannot trace it; forward hooks read the chain."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = self.act(self.conv(x))
        return x


def test_fx_fallback_reads_a_plain_chain_with_hooks() -> None:
    model = Wrap(nn.Sequential(Branchy(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                               nn.Linear(8, 2)))
    result = import_model(model, (3, 8, 8), name="net", origin="tests")
    assert [part.split(" ")[0] for part in result.fallback] == ["body.0"]
    assert "Read with forward hooks" in result.text
    _assert_same(model, result.text, (3, 8, 8))


class BranchyPool(nn.Module):
    """Branchy with a pool setting MAXPOOL lacks, read with hooks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(2, dilation=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = self.pool(self.conv(x))
        return x


def test_a_layer_with_no_form_read_with_hooks_is_reported() -> None:
    """Not a `?` left silently in the spec, which then would not check."""
    with pytest.raises(ImportFailed) as caught:
        import_model(Wrap(BranchyPool()), (3, 8, 8), name="net", origin="tests")
    [finding] = caught.value.findings
    assert (finding.path, finding.message) == (
        "body.pool", "MaxPool2d(dilation=2): MAXPOOL has no such setting")
    assert _source_line(finding.where).strip() == "return self.body(x)"


def test_a_model_that_fails_when_run_for_its_hooks_is_reported_at_the_module() -> None:
    """The model is run (on a zero input of --input's shape) only to read a module fx cannot
    trace; its failure there, or the allocation's, is that module's finding, not a traceback."""
    model = Wrap(Branchy())
    with pytest.raises(ImportFailed) as caught:
        import_model(model, (4, 8, 8), name="net", origin="tests")
    [finding] = caught.value.findings
    assert finding.path == "body"
    assert finding.message == (
        "fx cannot trace its forward (TraceError: symbolically traced variables cannot be used "
        "as inputs to control flow) and the model, run on a zero 1x4x8x8 input to read its "
        "layers with hooks, raised RuntimeError: Given groups=1, weight of size [8, 3, 3, 3], "
        "expected input[1, 4, 8, 8] to have 3 channels, but got 4 channels instead")
    assert _source_line(finding.where).strip() == "return self.body(x)"
    partial = import_model(model, (4, 8, 8), name="net", origin="tests", partial=True)
    assert partial.text.endswith("\ninput 4x8x8\n\nbody: ?\n")


def test_an_allocation_that_fails_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def zeros(*args: object, **kwargs: object) -> torch.Tensor:
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: "
                           "can't allocate memory: you tried to allocate 4831838208 bytes.")

    monkeypatch.setattr(torch, "zeros", zeros)
    with pytest.raises(ImportFailed) as caught:
        import_model(Wrap(Branchy()), (3, 20000, 20000), name="net", origin="tests")
    [finding] = caught.value.findings
    assert finding.message.endswith(
        "run on a zero 1x3x20000x20000 input to read its layers with hooks, raised RuntimeError: "
        "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
        "memory: you tried to allocate 4831838208 bytes.")


MODEL_FILE = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        return self.head(x.view(x.size(0), -1) if False else self.features(x).view(x.size(0), -1))


class Bad(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        return self.conv(x) * 2
'''


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "archspec", "import", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


@pytest.mark.slow  # seconds each (a compile, an export or a subprocess)
def test_cli_writes_a_spec_that_checks(tmp_path: Path) -> None:
    (tmp_path / "nets.py").write_text(textwrap.dedent(MODEL_FILE))
    run = _cli("nets.py:Net", "--input", "3x8x8", "-o", "net.arch", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    text = (tmp_path / "net.arch").read_text()
    assert text.startswith("# Imported by `archspec import` from nets.py:Net")
    assert "\nfeatures: [CONV3-8 - RELU - POOL2]\nFLATTEN - head: FC-10\n" in text
    check = subprocess.run([sys.executable, "-m", "archspec", "check", "net.arch"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60,
                           env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert check.returncode == 0, check.stderr
    # At another input size the spec's FC would take another fan-in than the model's Linear:
    # refused, nothing written, rather than a spec that cannot load the model's weights.
    wrong = _cli("nets.py:Net", "-o", "wrong.arch", cwd=tmp_path)
    assert wrong.returncode == 1 and not (tmp_path / "wrong.arch").exists()
    assert wrong.stderr == ("archspec: error: at input 3x224x224 the spec's head.weight is "
                            "10x100352, the model's 10x128: give the model's input shape with "
                            "--input CxHxW\n")


@pytest.mark.slow  # seconds each (a compile, an export or a subprocess)
def test_cli_reports_and_exits_non_zero(tmp_path: Path) -> None:
    (tmp_path / "nets.py").write_text(textwrap.dedent(MODEL_FILE))
    run = _cli("nets.py:Bad", "--input", "3x8x8", "-o", "bad.arch", cwd=tmp_path)
    assert run.returncode == 1
    assert not (tmp_path / "bad.arch").exists()
    assert "mul with a constant: .arch joins only tensors" in run.stderr
    assert "nets.py:22" in run.stderr
    partial = _cli("nets.py:Bad", "--input", "3x8x8", "--partial", cwd=tmp_path)
    assert partial.returncode == 1 and "# PARTIAL" in partial.stdout
    missing = _cli("nets.py:Nope", cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr == "archspec: error: nets.py has no attribute 'Nope'\n"


FIXTURE = '''
import torch
from torch import nn


def notmodel():
    return 42


def raises():
    raise ValueError("no weights here:\\n\\x1b[31mred")


def sequential():
    return nn.Sequential(nn.Conv2d(3, 4, 3))


class Empty(nn.Module):
    def forward(self, x):
        return x


class Big(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, 10)

    def forward(self, x):
        return self.fc(self.a(x).flatten(1))
'''


def _main(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
          *args: str) -> tuple[int, str, str]:
    """`archspec import ARGS` in this process, in a folder holding FIXTURE as nets.py."""
    (tmp_path / "nets.py").write_text(FIXTURE)
    monkeypatch.chdir(tmp_path)
    code = main(["import", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(("args", "message"), [
    (("nets.py:",), "expected MODULE:CALLABLE, got 'nets.py:'"),
    ((":Big",), "expected MODULE:CALLABLE, got ':Big'"),
    (("nets.py:Big", "--input", "abc"), "--input: expected a shape like 3x224x224, got 'abc'"),
    (("nets.py:Big", "--input", "0x8x8"), "--input: 0x8x8 has a size of 0; sizes start at 1"),
    (("nets.py:Big", "--input", "3x8"),
     "--input: 3x8 has 2 sizes; expected CxHxW (3x224x224) or a number of features (784)"),
    (("nets.py:Big", "--input", "3x8x8x8"),
     "--input: 3x8x8x8 has 4 sizes; expected CxHxW (3x224x224) or a number of features (784)"),
    (("nets.py:Big", "--input", "3x99999x99999"),
     "--input: 3x99999x99999 is 29,999,400,003 values; archspec import runs the model on a "
     "zero input of at most 67,108,864 (256 MiB of float32)"),
    (("nets.py:Big", "-o", "no/such/folder/big.arch"),
     "cannot write no/such/folder/big.arch: no/such/folder does not exist"),
    (("nets.py:Big", "-o", "nets.py"), "cannot write nets.py: it is the input nets.py, which "
                                       "it would replace"),
])
def test_cli_usage_errors_are_one_line_before_any_import(
        args: tuple[str, ...], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A bad target or --input is refused (exit 2) before the user's code is imported or the
    example input allocated; the target's own name is not read as a --name."""
    code, out, err = _main(tmp_path, monkeypatch, capsys, *args)
    assert (code, out, err) == (2, "", f"archspec: error: {message}\n")


@pytest.mark.parametrize(("target", "code", "message"), [
    # The user's message reaches the terminal escaped: no line break, no escape sequence.
    ("nets.py:raises", 1, "nets.py:raises() raised ValueError: no weights here:\\n\\x1b[31mred"),
    ("nets.py:notmodel", 2,
     "nets.py:notmodel() returned a value of type int, not a torch.nn.Module"),
])
def test_cli_a_callable_that_raises_or_makes_no_module_is_one_line(
        target: str, code: int, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(tmp_path, monkeypatch, capsys, target) == (
        code, "", f"archspec: error: {message}\n")


@pytest.mark.parametrize(("target", "message"), [
    ("nets.py:Empty", "nets.py:Empty: the model has no layers (its forward returns its input): "
                      "an .arch spec has at least one"),
    ("nets.py:sequential", "nets.py:sequential: the model itself is an nn.Sequential: its keys "
                           "(0.weight, ...) have no .arch form, as a spec's top level names its "
                           "layers; wrap it in a module (`features = nn.Sequential(...)`)"),
])
@pytest.mark.parametrize("partial", [(), ("--partial",)])
def test_cli_a_model_with_no_form_as_a_whole_is_one_line(
        target: str, message: str, partial: tuple[str, ...], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Not a part's finding (nor a spec that does not check, blamed on archspec), and nothing
    written, not even with --partial: there is no part to stand as `?`."""
    code, out, err = _main(tmp_path, monkeypatch, capsys, target, "--input", "3x8x8",
                           *partial, "-o", "net.arch")
    assert (code, out, err) == (1, "", f"archspec: error: {message}\n")
    assert not (tmp_path / "net.arch").exists()
