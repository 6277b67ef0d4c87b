"""Shared fixtures and helpers: the specs folder, the reference figures, golden-file
overwriting, hypothesis' profile for CI, and the tiny trainable spec the training tests run
with one thread."""

from __future__ import annotations

import io
import json
import os
import site
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

if TYPE_CHECKING:
    from archspec.runtime.train.distributed import World
    from archspec.runtime.train.trainer import Trainer

# CI (CI=true) draws the same examples on every run, so a submission is judged on what it
# changed, not on the luck of the draw; a developer's run draws new examples each time and
# is where property tests find new counterexamples (add each one as a test of its own).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
REFERENCE = ROOT / "tests" / "reference" / "networks.json"


def python_c(code: str, *, check: bool = False, env: dict[str, str] | None = None,
             site_hooks: bool = True) -> subprocess.CompletedProcess[str]:
    """`python -c code` in a fresh interpreter at the checkout's root, its output as text:
    what a process of its own shows (which modules a command imports, how it starts).

    With site_hooks=False the interpreter starts with `-S` and is given this one's
    site-packages folders by hand: their `.pth` files, which a machine may use to import
    what it likes at every start (a sandbox's certifi hook imports tempfile and shutil),
    do not run, so what the process imports is the code's own doing."""
    argv = [sys.executable, "-c", code]
    if not site_hooks:
        folders = [*site.getsitepackages(), site.getusersitepackages()]
        argv = [sys.executable, "-S", "-c", f"import sys; sys.path.extend({folders!r})\n{code}"]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=check, env=env)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--overwrite", action="store_true",
                     help="rewrite golden files from the current output")


@pytest.fixture
def overwrite(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--overwrite"))


@pytest.fixture(scope="session")
def reference() -> dict:
    if not REFERENCE.is_file():
        pytest.fail(f"reference figures missing: {REFERENCE}")
    return json.loads(REFERENCE.read_text())


def all_specs() -> list[Path]:
    """Every spec the project ships: specs/ and the torchvision zoo under specs/zoo/."""
    return sorted(SPECS.rglob("*.arch"))


@pytest.fixture
def golden(overwrite: bool):
    """Compare text with a golden file under tests/golden/; `pytest --overwrite` rewrites it."""

    def check(name: str, actual: str) -> None:
        path = ROOT / "tests" / "golden" / name
        if overwrite or not path.exists():
            if not overwrite:
                pytest.fail(f"golden file {path} is missing; run pytest --overwrite")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(actual)
            return
        assert actual == path.read_text(), f"{name} differs from its golden file"

    return check


# -- training -----------------------------------------------------------------------------------

TINY = """network tiny "a small net for synthetic data"
input 1x8x8
activation relu
CONV3-8 - BN - POOL2 - FC-16 - DROPOUT(0.5) - FC-4

train:
  data {data}
  batch 32
  epochs 2
{settings}"""
TINY_DATA = "synthetic(classes=4, n=240)"


def tiny_spec(extra: str = "", *, data: str = TINY_DATA,
              optimizer: str | None = "adam(lr=0.01)") -> str:
    """TINY's text: its `data`, its `optimizer` (None: the plan's default, no line) and then
    the `extra` settings (whole lines, from line 10 without an optimizer, else 11)."""
    optimizer_line = f"  optimizer {optimizer}\n" if optimizer is not None else ""
    return TINY.format(data=data, settings=optimizer_line + extra)


def write_tiny(folder: Path, extra: str = "", *, name: str = "tiny.arch", data: str = TINY_DATA,
               optimizer: str | None = "adam(lr=0.01)") -> Path:
    """`tiny_spec(...)` written to `folder/name`."""
    path = folder / name
    path.write_text(tiny_spec(extra, data=data, optimizer=optimizer))
    return path


def quiet_trainer(text: str, out: Path, world: World | None = None) -> Trainer:
    """The Trainer `archspec train` would build for a valid spec text (its plan checked and
    its data loaded), writing into `out` and printing nothing."""
    from archspec.lang.frontend import loads
    from archspec.runtime.train.distributed import World
    from archspec.runtime.train.preflight import check
    from archspec.runtime.train.progress import Progress
    from archspec.runtime.train.trainer import Trainer

    spec = loads(text, "tiny.arch")
    assert spec.network is not None and spec.network.plan is not None, spec.render()
    ready, diagnostics = check(spec, spec.network.plan)
    assert ready is not None, diagnostics
    return Trainer(spec, spec.network.plan, ready.data, out, world or World(),
                   Progress(1, io.StringIO(), enabled=False))


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread for the test (the training tests' `pytestmark`): these small nets
    gain little from two, and a shared machine stalls a two-thread pool badly."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
