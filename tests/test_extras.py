"""The plain install (lark, pydantic, graphviz) runs check, table, draw and compile; a command
that needs an extra says which one in one line, exit 2, no traceback. The missing libraries
are simulated by blocking their import in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SPECS

TORCH = ("torch", "numpy", "matplotlib")
TRAIN = (*TORCH, "kornia", "sklearn", "mlxtend", "PIL")


def run(blocked: tuple[str, ...], *args: str) -> subprocess.CompletedProcess[str]:
    code = ("import sys\n"
            f"for name in {blocked!r}:\n"
            "    sys.modules[name] = None  # `import name` now raises ModuleNotFoundError\n"
            "from archspec.cli import main\n"
            f"sys.exit(main({list(args)!r}))\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


@pytest.mark.parametrize(("command", "code"), [
    (["check", "specs/vgg16.arch"], 0), (["table", "specs/vgg16.arch"], 0),
    (["draw", "specs/vgg16.arch", "-o", "{tmp}/vgg16.dot"], 0),
    (["compile", "specs/resnet18.arch", "-o", "{tmp}/build"], 0),
    (["diff", "specs/vgg16.arch", "specs/vgg19.arch"], 1),  # 1: the networks differ
])
def test_the_plain_install_runs_the_commands_that_need_no_extra(
        command: list[str], code: int, tmp_path: Path) -> None:
    done = run(TRAIN, *(part.format(tmp=tmp_path) for part in command))
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("blocked", "command", "extra"), [
    (TORCH, ["probe", str(SPECS / "init_relu.arch")], "torch"),
    pytest.param(("kornia",), ["train", str(SPECS / "digits.arch"), "--out", "{tmp}/run"],
                 "train", marks=pytest.mark.slow),  # loads torch and the data first
])
def test_a_missing_extra_is_named_in_one_line(blocked: tuple[str, ...], command: list[str],
                                              extra: str, tmp_path: Path) -> None:
    done = run(blocked, *(part.format(tmp=tmp_path) for part in command))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"archspec: error: `archspec {command[0]}` needs ")
    assert lines[0].endswith(f"pip install 'archspec[{extra}]'")
