"""Shared fixtures: the specs folder, the reference figures, golden-file overwriting, and
hypothesis' profile for CI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI (CI=true) draws the same examples on every run, so a submission is judged on what it
# changed, not on the luck of the draw; a developer's run draws new examples each time and
# is where property tests find new counterexamples (add each one as a test of its own).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
REFERENCE = ROOT / "tests" / "reference" / "networks.json"


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
