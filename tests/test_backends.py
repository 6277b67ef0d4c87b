"""Every back end has an entry for every registered kind and join, and its table of torch's
own facts (classes, defaults, Module attributes) is torch's."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import archspec.backends
from archspec.kinds import registry as reg


def backends() -> list[str]:
    return [m.name for m in pkgutil.iter_modules(archspec.backends.__path__) if m.ispkg]


def test_every_back_end_has_every_kind_and_join() -> None:
    assert backends() == ["torch"]
    for name in backends():
        table = importlib.import_module(f"archspec.backends.{name}.layers")
        assert set(table.LAYERS) == {kind.name for kind in reg.KINDS}, name
        assert set(table.JOINS) == {kind.name for kind in reg.JOINS}, name


def test_the_torch_table_is_torchs() -> None:
    from torch import nn

    from archspec.backends.torch.layers import DEFAULTS, MODULE_ATTRIBUTES

    classes = helper_classes()
    for cls, defaults in DEFAULTS.items():
        found = getattr(nn, cls, None) or classes.get(cls)
        assert isinstance(found, type), cls
        torch_defaults = {key: p.default for key, p in inspect.signature(
            found).parameters.items()
            if type(p.default) in (bool, int, float)}
        assert defaults == torch_defaults, cls
        assert all(type(defaults[key]) is type(torch_defaults[key]) for key in defaults), cls
    public = {name for name in dir(nn.Sequential()) if not name.startswith("_")}
    assert public <= MODULE_ATTRIBUTES


def helper_classes() -> dict[str, type]:
    """The plain-torch modules the back end writes into generated code, run."""
    import torch
    from torch import nn

    from archspec.backends.torch.layers import HELPERS

    namespace = {"torch": torch, "nn": nn}
    for source in HELPERS.values():
        exec(source, namespace)
    return {name: namespace[name] for name in HELPERS}


def test_helpers_are_not_torch_classes_and_each_is_named_as_its_key() -> None:
    from torch import nn

    from archspec.backends.torch.layers import DEFAULTS, HELPERS

    for name, cls in helper_classes().items():
        assert cls.__name__ == name and not hasattr(nn, name) and name in DEFAULTS
        assert HELPERS[name].startswith(f"class {name}(")


def test_every_class_the_table_names_has_its_defaults() -> None:
    from archspec.backends.torch.layers import DEFAULTS, LAYERS

    conv = {"filters": 4, "kernel": 3, "stride": 1, "pad": 0, "dilation": 1, "groups": 1,
            "bias": True}
    pool = {"kernel": 2, "stride": 2, "pad": 0, "ceil": False}
    args = {"CONV": conv, "MAXPOOL": pool, "AVGPOOL": pool, "FC": {"units": 3, "bias": True},
            "LEAKYRELU": {"slope": 0.1}, "BN": {"eps": 1e-5, "momentum": 0.1},
            "NORM": {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}, "DROPOUT": {"p": 0.5},
            "DECONV": {**conv, "output_pad": 0}, "ELU": {"alpha": 1.0},
            "PRELU": {"per_channel": True}, "LAYERNORM": {"eps": 1e-5},
            "GROUPNORM": {"groups": 2, "eps": 1e-5}, "SCALE": {"init": 1e-6},
            "STOCHASTICDEPTH": {"p": 0.1}, "SLICE": {"start": 0, "stop": 2},
            "SHUFFLE": {"groups": 2}, "UPSAMPLE": {"scale": 2, "mode": "nearest"}}
    adaptive = {"MAXPOOL": {"out": 3}, "AVGPOOL": {"out": (2, 3)}}
    for kind, rule in LAYERS.items():
        for shape in ((4, 8, 8), (4,)):
            assert rule(args.get(kind, {}), shape).cls in DEFAULTS, kind
        if kind in adaptive:
            assert rule(adaptive[kind], (4, 8, 8)).cls.startswith("Adaptive"), kind
