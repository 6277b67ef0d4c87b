"""`archspec.to_torch`: the built module agrees with the static analysis, layer by layer.

Property tests draw random valid networks (archspec.testing) and compare what torch really
computes (forward hooks on every layer's module) with the shapes archspec inferred and the
parameter counts its registry cost rules give. Parity tests compare with the reference
figures measured outside the project (tests/reference/networks.json).
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import SPECS
from hypothesis import HealthCheck, given, settings
from torch import nn

from archspec.analysis import cost
from archspec.backends.torch.build import to_torch
from archspec.backends.torch.emit import BuildError, layer_paths
from archspec.core.diagnostics import Diagnostics
from archspec.ir import Network
from archspec.kinds import registry as reg
from archspec.lang.frontend import load_network, loads
from archspec.lang.shapes import Shapes, infer
from archspec.testing import networks, specs

FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def analysed_params(network: Network, shapes: Shapes) -> int:
    """The parameter total by the registry's cost rules (analysis.cost), torch never asked."""
    total = 0
    for layer in network.layers:
        if reg.kind_of(layer.kind).join is None:
            c = cost.layer_cost(layer, shapes)
            total += c.weights + c.biases
    return total


def run_hooked(network: Network, model: nn.Module, batch: torch.Tensor
               ) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]], torch.Tensor]:
    """Each layer's real input and output shape (batch dimension dropped), and the output."""
    outputs: dict[str, tuple[int, ...]] = {}
    inputs: dict[str, tuple[int, ...]] = {}
    for name, path in layer_paths(network).items():
        def hook(module: nn.Module, args: tuple, out: torch.Tensor, name: str = name) -> None:
            inputs[name] = tuple(args[0].shape[1:])
            outputs[name] = tuple(out.shape[1:])

        model.get_submodule(path).register_forward_hook(hook)
    model.eval()
    with torch.no_grad():
        out = model(batch)
    return inputs, outputs, out


def assert_matches_analysis(network: Network, model: nn.Module, batch: torch.Tensor) -> None:
    shapes = infer(network, Diagnostics())
    inputs, outputs, out = run_hooked(network, model, batch)
    paths = layer_paths(network)
    # Only the steps of a forward (joins, and in a hierarchy the flatten an FC implies) have
    # no module; their shapes are checked where they are read.
    assert all(reg.forward_step(layer.kind, layer.implicit) for layer in network.layers
               if layer.name not in paths)
    modules = [layer for layer in network.layers if layer.name in paths]
    assert set(outputs) == {layer.name for layer in modules}, "a layer's module never ran"
    for layer in modules:
        assert outputs[layer.name] == shapes[layer.name], layer.name
        # A join's shape is checked where it is read: as the input of the next module.
        assert inputs[layer.name] == shapes[layer.inputs[0]], layer.name
    assert tuple(out.shape) == (batch.shape[0], *shapes[network.output])
    assert sum(p.numel() for p in model.parameters()) == analysed_params(network, shapes)


@pytest.mark.slow
@settings(FAST, max_examples=200)
@given(networks())
def test_random_networks_on_meta_match_the_analysis(network: Network) -> None:
    with torch.device("meta"):
        model = to_torch(network)
        batch = torch.empty(3, *network.input.shape)
    assert_matches_analysis(network, model, batch)


@pytest.mark.slow
@settings(FAST, max_examples=60)
@given(networks(max_size=10, max_channels=6))
def test_random_networks_really_run_on_cpu(network: Network) -> None:
    torch.manual_seed(0)
    model = to_torch(network)
    assert_matches_analysis(network, model, torch.randn(2, *network.input.shape))


@settings(FAST, max_examples=30)
@given(specs())
def test_to_torch_is_deterministic(text: str) -> None:
    network = loads(text).network
    assert network is not None
    torch.manual_seed(1)
    first = to_torch(network).state_dict()
    torch.manual_seed(1)
    second = to_torch(network).state_dict()
    assert list(first) == list(second)
    assert all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.parametrize("body", ["FC-2", "RELU", "(ID + ID)", "(ID | POOL3/1(pad=1))",
                                  "CONV1-2 - (ID + CONV1-2)", "GAP"])
def test_smallest_networks_build_and_run(body: str) -> None:
    network = loads(f"network tiny\ninput 2x3x3\n{body}\n").network
    assert network is not None
    assert_matches_analysis(network, to_torch(network), torch.randn(2, 2, 3, 3))


@pytest.mark.parametrize(("spec", "key"), [("vgg16", "torchvision_vgg16"),
                                           ("vgg19", "torchvision_vgg19"),
                                           ("resnet18", "torchvision_resnet18")])
def test_torchvision_parameter_parity(spec: str, key: str, reference: dict) -> None:
    network, _ = load_network(SPECS / f"{spec}.arch")
    with torch.device("meta"):
        model = to_torch(network)
        out = model.eval()(torch.empty(1, 3, 224, 224))
    assert sum(p.numel() for p in model.parameters()) == reference[key]["params"]
    running = sum(b.numel() for name, b in model.named_buffers()
                  if name.endswith(("running_mean", "running_var")))
    assert running == reference[key]["bn_running_stat_elements"]
    assert tuple(out.shape) == (1, 1000)


@pytest.mark.parametrize(("spec", "key"), [("lenet5", "lenet5"), ("alexnet", "alexnet_cs231n"),
                                           ("zfnet", "zfnet_cs231n"), ("vgg16", "vgg16")])
def test_per_layer_shapes_and_params_match_the_reference(spec: str, key: str,
                                                         reference: dict) -> None:
    network, _ = load_network(SPECS / f"{spec}.arch")
    rows = reference[key]["layers"][1:]  # after INPUT
    with torch.device("meta"):
        model = to_torch(network)
        _, outputs, _ = run_hooked(network, model, torch.empty(1, *network.input.shape))
    paths = layer_paths(network)
    listed = [layer for layer in network.layers if not layer.implicit
              and layer.kind in ("CONV", "MAXPOOL", "AVGPOOL", "NORM", "FC")]
    assert len(listed) == len(rows)
    for layer, row in zip(listed, rows, strict=True):
        assert list(outputs[layer.name]) == row["out_shape"], (layer.name, row["name"])
        owned = sum(p.numel() for p in model.get_submodule(paths[layer.name]).parameters())
        assert owned == row["weights"] + row["biases"], (layer.name, row["name"])
    assert sum(p.numel() for p in model.parameters()) == reference[key]["params"]


def test_each_kind_maps_to_the_standard_torch_module() -> None:
    network = loads("""network kinds
input 4x9x9
CONV(8, 3, stride=2, pad=1, dilation=1, groups=2, bias=false) - BN(eps=0.001, momentum=0.2)
LRN(size=3) - LEAKYRELU(0.2) - AVGPOOL2(ceil=true) - MAXPOOL(2, 1) - GELU - SIGMOID
TANH - DROPOUT(keep=0.8) - GAP - FC-6 - BN - RELU - FC-3 - SOFTMAX
""").network
    assert network is not None
    modules = {name: torch_module for name, torch_module in
               ((n, to_torch(network).get_submodule(p)) for n, p in layer_paths(network).items())}
    conv = modules["conv1"]
    assert isinstance(conv, nn.Conv2d) and conv.groups == 2 and conv.bias is None
    assert conv.stride == (2, 2) and conv.padding == (1, 1)
    assert isinstance(modules["bn1"], nn.BatchNorm2d) and modules["bn1"].eps == 0.001
    assert modules["bn1"].momentum == 0.2
    assert isinstance(modules["bn2"], nn.BatchNorm1d)
    assert isinstance(modules["norm1"], nn.LocalResponseNorm) and modules["norm1"].size == 3
    assert isinstance(modules["dropout1"], nn.Dropout)
    assert math.isclose(modules["dropout1"].p, 0.2)  # keep=0.8 drops 0.2
    assert modules["avgpool1"].ceil_mode is True
    assert isinstance(modules["fc1_flatten"], nn.Flatten)
    assert isinstance(modules["gap1"], nn.AdaptiveAvgPool2d)
    assert modules["leakyrelu1"].negative_slope == 0.2
    assert isinstance(modules["softmax1"], nn.Softmax) and modules["softmax1"].dim == 1


def _weights(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def _init_net(scheme: str, bias: str = "true") -> Network:
    network = loads(f"network init\ninput 400\ninit {scheme}\ndefaults FC(bias={bias})\n"
                    "FC-400 - RELU - FC-300\n").network
    assert network is not None
    return network


def test_kaiming_is_he_normal_with_zero_biases() -> None:
    torch.manual_seed(0)
    for linear in _weights(to_torch(_init_net("kaiming"))):
        fan_in = linear.weight.shape[1]
        assert linear.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.02)
        assert abs(linear.weight.mean().item()) < 0.01
        assert torch.count_nonzero(linear.bias) == 0


def test_normal_xavier_orthogonal_and_torch_schemes() -> None:
    torch.manual_seed(0)
    for linear in _weights(to_torch(_init_net("normal(std=0.05)"))):
        assert linear.weight.std().item() == pytest.approx(0.05, rel=0.02)
        assert torch.count_nonzero(linear.bias) == 0
    for linear in _weights(to_torch(_init_net("xavier"))):
        fan_out, fan_in = linear.weight.shape
        bound = math.sqrt(6 / (fan_in + fan_out))  # Glorot uniform
        assert linear.weight.abs().max().item() <= bound
        assert linear.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.03)
    for linear in _weights(to_torch(_init_net("orthogonal", bias="false"))):
        w = linear.weight
        rows = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        assert torch.allclose(rows, torch.eye(rows.shape[0]), atol=1e-4)
    # PyTorch's own default: uniform(±1/sqrt(fan_in)), biases not zero.
    for linear in _weights(to_torch(_init_net("torch"))):
        assert torch.count_nonzero(linear.bias) > 0
        assert linear.weight.abs().max().item() <= 1 / math.sqrt(linear.weight.shape[1])


def test_refuses_over_the_parameter_limit_before_allocating() -> None:
    network, _ = load_network(SPECS / "vgg16.arch")
    with pytest.raises(BuildError, match="over the build limit of 1,000,000"):
        to_torch(network, max_params=1_000_000)


def test_a_sketch_is_refused_with_located_errors() -> None:
    spec = loads("network s\ninput 3x8x8\nCONV - POOL2 - FC-2\n")
    assert spec.network is not None
    with pytest.raises(BuildError, match="3:1: error: conv1: cannot be built"):
        to_torch(spec.network)


def test_lrn_on_a_flat_vector_is_a_located_error() -> None:
    # torch's LocalResponseNorm normalises across the channels of a map; the analysis agrees.
    spec = loads("network n\ninput 3x8x8\nFC-3 - LRN\n", "n.arch")
    assert [(d.span.line, d.span.col) for d in spec.errors] == [(3, 8)]
    assert "NORM needs a CxHxW input" in spec.errors[0].message


V2_KINDS = """network v2
input 3x16x16
CONV3-16 - BN - RELU6 - HARDSWISH - HARDSIGMOID - SILU - SWISH - MISH - SELU - ELU(alpha=0.5)
PRELU - PRELU(per_channel=true) - LAYERNORM - GROUPNORM(4) - SCALE - DROPPATH(0.2)
STOCHASTICDEPTH(p=0) - SHUFFLE(4) - SLICE(2, 10) - (ID * GMP - CONV1-8 - SIGMOID)
AVGPOOL(out=5) - MAXPOOL(out=3x4) - AVGPOOL(out=1) - UPSAMPLE(2) - UPSAMPLE(2, mode=bilinear)
DECONV2-6/2 - DECONV(4, 3, stride=2, pad=1, output_pad=1, groups=2, dilation=2)
GAP - FC-10 - LAYERNORM - GROUPNORM(2) - SCALE - PRELU(per_channel=true) - FC-5
"""


def test_every_v2_kind_builds_with_the_analysed_shapes_and_parameters() -> None:
    spec = loads(V2_KINDS)
    assert spec.ok and spec.network is not None, spec.render()
    torch.manual_seed(0)
    model = to_torch(spec.network, spec.shapes)
    assert_matches_analysis(spec.network, model, torch.randn(2, 3, 16, 16))


def test_the_v2_modules_compute_what_torchvision_does() -> None:
    """SHUFFLE is ShuffleNet's channel_shuffle, LAYERNORM on a map normalises each position
    over its channels (ConvNeXt's LayerNorm2d), DROPPATH is StochasticDepth's row mode."""
    spec = loads("network t\ninput 8x5x5\nSHUFFLE(2) - LAYERNORM - DROPPATH(0.5)\n")
    assert spec.network is not None
    model = to_torch(spec.network, spec.shapes)
    x = torch.randn(64, 8, 5, 5)
    b, c, h, w = x.shape
    shuffled = x.view(b, 2, c // 2, h, w).transpose(1, 2).contiguous().view(b, c, h, w)
    normed = nn.functional.layer_norm(shuffled.permute(0, 2, 3, 1), (c,)).permute(0, 3, 1, 2)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(x), normed, atol=1e-6)  # stochastic depth: identity
    model.train()
    with torch.no_grad():
        y = model(x)
    kept = [bool(row.abs().sum()) for row in y]
    assert 0 < sum(kept) < len(kept)  # whole samples dropped, the others scaled by 1/(1-p)
    assert all(torch.allclose(row, 2 * normed[i], atol=1e-5) for i, row in enumerate(y)
               if kept[i])


# A named group is an nn.Sequential keyed by position (LANGUAGE.md, "Names for groups"): the
# implied flatten and the joins are steps of forward, never items, wherever they stand.
ALEXNET_LIKE = """network t
input 3x224x224
activation relu
features: [CONV(64, 11, stride=4, pad=2) - POOL3/2]
avgpool: AVGPOOL(out=6)
classifier: [DROPOUT - FC-4096 - DROPOUT - FC-4096 - FC-1000]
"""


def _table_output(network: Network) -> tuple[int, ...]:
    """The network's output shape as `archspec table` reports it."""
    return tuple(infer(network, Diagnostics())[network.output])


def test_an_alexnet_classifier_group_has_torchvisions_keys() -> None:
    network = loads(ALEXNET_LIKE).network
    assert network is not None
    model = to_torch(network)
    keys = [key for key in model.state_dict() if key.startswith("classifier.")]
    assert keys == ["classifier.1.weight", "classifier.1.bias", "classifier.4.weight",
                    "classifier.4.bias", "classifier.6.weight", "classifier.6.bias"]
    # Only pointwise layers (DROPOUT) come before its FC: the flatten runs before the group,
    # which stays a plain nn.Sequential, as torchvision writes it.
    assert type(model.get_submodule("classifier")) is nn.Sequential
    assert [layer.name for layer in network.layers][3:6] == ["avgpool", "flatten",
                                                             "classifier.0"]
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 224, 224))
    assert tuple(out.shape[1:]) == _table_output(network) == (1000,)


def test_a_group_with_a_join_keys_its_items_by_position() -> None:
    network = loads("network j\ninput 8x16x16\ng: [(CONV3-8 + ID) - RELU]\n").network
    assert network is not None
    model = to_torch(network)
    assert list(model.state_dict()) == ["g.0.weight", "g.0.bias"]
    group = model.get_submodule("g")
    assert isinstance(group, nn.Sequential) and list(group._modules) == ["0", "1"]
    assert [layer.name for layer in network.layers] == ["g.0", "g.add1", "g.1"]
    batch = torch.randn(2, 8, 16, 16)
    with torch.no_grad():
        out = model(batch)
        expected = torch.relu(group[0](batch) + batch)  # the residual is a step of forward
    assert tuple(out.shape[1:]) == _table_output(network) == (8, 16, 16)
    assert torch.equal(out, expected)


def test_a_group_with_a_flatten_in_the_middle_keys_its_items_by_position() -> None:
    network = loads("network f\ninput 3x8x8\nhead: [CONV3-4 - BN - FC-10]\n").network
    assert network is not None
    model = to_torch(network)
    assert [key for key in model.state_dict() if key.endswith("weight")] == [
        "head.0.weight", "head.1.weight", "head.2.weight"]
    assert [layer.name for layer in network.layers] == ["head.0", "head.1", "head.flatten1",
                                                        "head.2"]
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 8, 8))
    assert tuple(out.shape[1:]) == _table_output(network) == (10,)
