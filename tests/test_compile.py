"""`archspec compile`: the generated source — golden files, determinism, safety, tooling.

Golden files hold the source written for a stack (VGG16), a residual net (ResNet-18) and an
inception net (GoogLeNet); `pytest --overwrite` rewrites them after an intended change.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import pytest
import torch
from conftest import ROOT, SPECS, all_specs, python_c
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archspec.backends.torch.build import to_torch
from archspec.backends.torch.emit import emit, module_name
from archspec.cli import main
from archspec.ir import Network
from archspec.lang.frontend import load_network
from archspec.testing import networks

# A small net with both kinds of branch, quick to export and compile.
BRANCHY = """network branchy "concat and residual branches"
input 3x16x16
activation relu
batchnorm
CONV3-8 - (CONV1-4 | CONV3-4 | POOL3/1(pad=1)) - POOL2
(CONV3-16 - CONV3-16 + ID) - GAP - FC-10
"""


def compile_spec(path: Path, out: Path, *extra: str) -> int:
    return main(["compile", str(path), "-o", str(out), *extra])


def import_file(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["vgg16", "resnet18", "googlenet"])
def test_generated_source_matches_golden(name: str, tmp_path: Path, golden) -> None:
    assert compile_spec(SPECS / f"{name}.arch", tmp_path) == 0
    golden(f"compile_{name}.py", (tmp_path / f"{name}.py").read_text())


def test_compile_writes_every_artifact_and_says_so(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert compile_spec(SPECS / "lenet5.arch", tmp_path) == 0
    printed = capsys.readouterr().out.split()
    for suffix in (".py", ".md", ".dot", ".plan.json"):
        path = tmp_path / f"lenet5{suffix}"
        assert path.is_file() and str(path) in printed
    module = import_file(tmp_path / "lenet5.py")
    model = module.build()
    assert type(model).__name__ == "Lenet5"
    assert module.INPUT_SHAPE == (1, 32, 32)
    assert model(torch.randn(2, *module.INPUT_SHAPE)).shape == (2, 10)
    assert [n for n, _ in model.named_children()] == ["features", "classifier"]


def test_generated_file_imports_only_torch(tmp_path: Path) -> None:
    assert compile_spec(SPECS / "googlenet.arch", tmp_path) == 0
    tree = ast.parse((tmp_path / "googlenet.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"torch", "collections"}


def test_file_and_in_process_module_are_the_same(tmp_path: Path) -> None:
    assert compile_spec(SPECS / "resnet18.arch", tmp_path) == 0
    network, shapes = load_network(SPECS / "resnet18.arch")
    assert (tmp_path / "resnet18.py").read_text() == emit(network, shapes,
                                                          origin="resnet18.arch")
    torch.manual_seed(3)
    from_file = import_file(tmp_path / "resnet18.py").build()
    torch.manual_seed(3)
    in_process = to_torch(network, shapes)
    a, b = from_file.state_dict(), in_process.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_output_is_deterministic_across_processes(tmp_path: Path) -> None:
    assert compile_spec(SPECS / "googlenet.arch", tmp_path / "here") == 0
    env = dict(os.environ, PYTHONHASHSEED="12345")
    subprocess.run([sys.executable, "-m", "archspec", "compile", str(SPECS / "googlenet.arch"),
                    "-o", str(tmp_path / "there")], check=True, env=env, capture_output=True)
    for suffix in (".py", ".md", ".dot", ".plan.json"):
        here = (tmp_path / "here" / f"googlenet{suffix}").read_bytes()
        assert here == (tmp_path / "there" / f"googlenet{suffix}").read_bytes(), suffix


@pytest.mark.slow
def test_generated_files_pass_ruff(tmp_path: Path) -> None:
    written = []
    for spec in all_specs():
        if compile_spec(spec, tmp_path) == 0:
            written.append(str(tmp_path / f"{load_network(spec)[0].name}.py"))
    assert len(written) >= 10
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config",
                             str(ROOT / "pyproject.toml"), *written],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(networks(), min_size=25, max_size=25))
def test_generated_source_of_random_networks_passes_ruff(batch: list[Network]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, network in enumerate(batch):
            paths.append(Path(tmp) / f"random{i}.py")
            paths[-1].write_text(emit(network))
        result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache",
                                 "--config", str(ROOT / "pyproject.toml"), *map(str, paths)],
                                capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


CANARY = "archspec_injected"
HOSTILE = r'''# names that are keywords, Module attributes, and strings that try to break out
network evil "\"\"\" + __import__('os').system('touch {canary}') + \"\"\" # \\ {canary}"
input 3x8x8
forward: CONV3-4 - __init__: RELU - self: CONV3-4 - x: GAP - def: FC-3
torch: FC-2 - training: RELU - OrderedDict: FC-2 - build: SOFTMAX
'''


def test_hostile_names_and_strings_cannot_inject_code(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "evil.arch"
    spec.write_text(HOSTILE.format(canary=CANARY))
    assert compile_spec(spec, tmp_path / "out") == 0
    source = (tmp_path / "out" / "evil.py").read_text()
    tree = ast.parse(source)
    # The description reaches only the docstrings; no code mentions the payload.
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert not names & {"__import__", "os"}
    strings = [node.value for node in ast.walk(tree)
               if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    network_class = next(node for node in tree.body if isinstance(node, ast.ClassDef))
    assert [s for s in strings if CANARY in s] == [
        ast.get_docstring(tree, clean=False), ast.get_docstring(network_class, clean=False)]
    model = import_file(tmp_path / "out" / "evil.py").build()
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 2)
    assert not list(tmp_path.rglob(CANARY))
    # Every layer still has its own attribute, renamed where its name was unsafe.
    children = [name for name, _ in model.named_children()]
    assert len(children) == len([layer for layer in load_network(spec)[0].layers
                                 if not layer.implicit])
    assert "layer_training" in children and "layer_forward" in children


def test_invalid_or_oversized_specs_write_nothing(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert compile_spec(SPECS / "sketch.arch", out) == 1
    assert "sketch.arch:6:2: error: CONV needs `filters`" in capsys.readouterr().err
    assert compile_spec(SPECS / "vgg16.arch", out, "--max-params", "1e6") == 1
    err = capsys.readouterr().err
    # A network-level message, placed where the running total passes the limit.
    assert ("vgg16.arch:8:2: error: the network has 138,357,544 parameters, over the build "
            "limit of 1,000,000 (--max-params); the running total passes the limit at conv6"
            in err)
    assert not out.exists()


KEYWORDY = """network class
input 3x8x8
def: CONV3-4 - x: RELU - features: CONV3-4 - None: FC-10
"""


def test_a_network_named_as_a_module_gets_a_file_that_shadows_none(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # random.py first on sys.path broke `import random, torch`; math.py and typing.py broke
    # `import torch` itself (torch imports them); sys.py could never be imported.
    out = tmp_path / "build"
    for name in ("random", "math", "typing", "sys", "numpy"):
        spec = tmp_path / f"{name}.arch"
        spec.write_text(f"network {name}\ninput 3x8x8\nCONV3-4 - GAP - FC-10\n")
        assert compile_spec(spec, out) == 0
        printed = capsys.readouterr().out
        assert f"wrote {out / (name + '_.py')}" in printed
        assert (f"note: the module is {name}_.py, not {name}.py, which `import` cannot load or "
                f"which would shadow the module of that name (import {name}_)") in printed
        assert not (out / f"{name}.py").exists()
    # The README's way of using a build: its folder first on sys.path.
    done = python_c(f"import sys; sys.path.insert(0, {str(out)!r})\n"
                    "import random, math, typing, numpy, torch\n"
                    "import random_, math_, typing_, sys_, numpy_\n"
                    "assert random.__file__ != random_.__file__ and hasattr(random, 'shuffle')\n"
                    "print(tuple(sys_.build()(torch.randn(2, *sys_.INPUT_SHAPE)).shape))")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "(2, 10)\n"
    # No module of the standard library is ever a generated file's name.
    network = load_network(tmp_path / "sys.arch")[0]
    for name in sorted(sys.stdlib_module_names):
        renamed = module_name(network.model_copy(update={"name": name}))
        assert renamed == f"{name}_" and renamed not in sys.stdlib_module_names


def test_renames_are_noted_and_a_keyword_network_gets_an_importable_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "class.arch").write_text(KEYWORDY)
    out = tmp_path / "out"
    assert compile_spec(tmp_path / "class.arch", out) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out / 'class_.py'}" in printed and not (out / "class.py").exists()
    assert "note: the module is class_.py, not class.py" in printed
    assert (out / "class.md").is_file()
    # A plain import statement loads it.
    monkeypatch.syspath_prepend(str(out))
    module = __import__("class_")
    model = module.build()
    assert model(torch.randn(2, *module.INPUT_SHAPE)).shape == (2, 10)
    # The spec names its layers: each is an attribute (renamed where Python cannot use it).
    assert [n for n, _ in model.named_children()] == ["layer_def", "layer_x", "features",
                                                      "layer_None"]
    # The docstring's table names the layers as the spec and `archspec table` do, and notes
    # every attribute named otherwise.
    doc = type(model).__doc__
    rows = {line.split()[0] for line in doc.splitlines()[5:] if line.strip()}
    assert {"def", "x", "features", "None"} <= rows
    assert "layer_def" not in rows and "layer_None" not in rows
    note = " ".join(doc.split("renamed attributes:")[1].split())
    assert note == "def -> layer_def, x -> layer_x, None -> layer_None"
    # A network built without the spec's names (the API: `named` False) is laid out as an
    # unnamed stack, its attributes made safe the same way, and the Sequential that lost
    # `features` to a layer noted.
    network = load_network(tmp_path / "class.arch")[0]
    unnamed = network.model_copy(update={"layers": tuple(
        layer.model_copy(update={"named": False}) for layer in network.layers)})
    flat = emit(unnamed)
    assert "self.features_2 = nn.Sequential(" in flat and "self.classifier = " in flat
    note = " ".join(flat.split("renamed attributes:")[1].split('"""')[0].split())
    assert note == ("def -> layer_def, x -> layer_x, None -> layer_None, the stack's features "
                    "part -> features_2 (a layer is named features)")
    assert main(["table", str(tmp_path / "class.arch")]) == 0
    table = capsys.readouterr().out
    assert "\ndef " in table and "\nNone " in table


def test_an_unwritable_output_is_a_one_line_error(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "taken").write_text("a file, not a directory")
    assert compile_spec(SPECS / "lenet5.arch", tmp_path / "taken") == 2
    assert capsys.readouterr().err.startswith("archspec: error: cannot write into ")


def test_check_does_not_import_torch() -> None:
    code = ("import sys; from archspec.cli import main; "
            f"main(['check', {str(SPECS / 'vgg16.arch')!r}]); "
            "assert 'torch' not in sys.modules, 'check imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_help_on_the_package_does_not_import_torch() -> None:
    # help(archspec) reads every public name, `to_torch` among them: torch comes with the
    # first module built, not with its builder's documentation (~2 s)
    code = ("import sys, pydoc, archspec; "
            "text = pydoc.render_doc(archspec, renderer=pydoc.plaintext); "
            "assert 'to_torch(network' in text, text; "
            "assert 'torch' not in sys.modules, 'help imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


@pytest.fixture
def branchy(tmp_path: Path) -> ModuleType:
    (tmp_path / "branchy.arch").write_text(BRANCHY)
    assert compile_spec(tmp_path / "branchy.arch", tmp_path) == 0
    source = (tmp_path / "branchy.py").read_text()
    assert "torch.cat([" in source and " + " in source
    return import_file(tmp_path / "branchy.py")


def test_torch_export_of_a_compiled_network(branchy: ModuleType) -> None:
    torch.manual_seed(0)
    model = branchy.build().eval()
    x = torch.randn(2, *branchy.INPUT_SHAPE)
    exported = torch.export.export(model, (x,))
    assert torch.allclose(exported.module()(x), model(x), atol=1e-6)


@pytest.mark.slow
def test_torch_compile_traces_the_whole_graph(branchy: ModuleType) -> None:
    torch.manual_seed(0)
    model = branchy.build().eval()
    x = torch.randn(2, *branchy.INPUT_SHAPE)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    assert torch.allclose(compiled(x), model(x), atol=1e-6)


def test_the_description_is_escaped_in_the_markdown_compile_writes(tmp_path: Path) -> None:
    spec = tmp_path / "t.arch"
    spec.write_text('network t "<script>x</script> [a](javascript:x) ![i](y)"\ninput 4\nFC-2\n')
    assert compile_spec(spec, tmp_path / "out") == 0
    title = (tmp_path / "out" / "t.md").read_text().splitlines()[0]
    assert title == "## t: \\<script\\>x\\</script\\> \\[a\\](javascript:x) \\!\\[i\\](y)"


def test_a_name_torch_modules_own_is_refused_inside_a_group(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    """At the top level such a name is renamed (`layer_forward`); inside a named group or
    block it is a key of the state_dict, which torch cannot register: a located error."""
    spec = tmp_path / "clash.arch"
    spec.write_text("network t\ninput 3x8x8\nstage: [forward: CONV3-4 - BN]\n")
    assert compile_spec(spec, tmp_path / "out") == 1
    assert f"{spec}:3:18: error: `forward` cannot name a submodule" in capsys.readouterr().err
    # `check` says so too (it had passed the spec), and so does `train`, before it writes
    # anything (it had printed a traceback after writing its plan).
    assert main(["check", str(spec)]) == 1
    assert f"{spec}:3:18: error: `forward` cannot name a submodule" in capsys.readouterr().err
    spec.write_text("network t\ninput 1x8x8\nstage: [forward: CONV3-4 - BN] - FC-10\n"
                    "train:\n  data digits\n  epochs 1\n")
    assert main(["train", str(spec), "--out", str(tmp_path / "run")]) == 1
    assert f"{spec}:3:18: error: `forward` cannot name a submodule" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_diagram_over_the_box_limit_is_a_warning_and_a_dot_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # Past the boxes Graphviz's dot lays out, compile writes the .dot, not the .svg, and says
    # so as a located warning: the build succeeds (draw refuses it, as an error).
    from archspec.views import dot

    monkeypatch.setattr(dot, "MAX_DRAWN_BOXES", 3)
    assert main(["compile", str(SPECS / "lenet5.arch"), "-o", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "lenet5.arch:" in err and ": warning: the diagram has " in err
    assert "over the 3 that Graphviz's dot can lay out" in err
    assert err.endswith("note: lenet5.svg is not drawn; lenet5.dot is\n")
    assert (tmp_path / "lenet5.dot").is_file() and not (tmp_path / "lenet5.svg").exists()
