"""`archspec train` as real processes: a run killed with SIGKILL mid-epoch and resumed ends
bit-for-bit where an uninterrupted run ends; `--nproc 2` (torchrun, DDP on gloo) agrees with
one process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from archspec.runtime.train import checkpoint

# Each test starts training processes and waits for them: the slow lane.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "specs" / "digits.arch"
# One thread a process: the same kernels in every run, and no stalls on a shared machine.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def archspec(*argv: str) -> list[str]:
    return [sys.executable, "-m", "archspec", "train", *argv]


def finish(*argv: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(archspec(*argv), env=ENV, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def epochs_done(out: Path) -> int:
    history = out / "history.csv"
    return len(history.read_text().splitlines()) - 1 if history.is_file() else 0


def weights(out: Path) -> dict[str, torch.Tensor]:
    return checkpoint.load(out / checkpoint.FILENAME)["model"]


def test_killed_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    epochs = "5"
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    finish(str(DIGITS), "--out", str(whole), "--epochs", epochs)

    process = subprocess.Popen(archspec(str(DIGITS), "--out", str(broken), "--epochs", epochs),
                               env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while epochs_done(broken) < 2 and process.poll() is None:
            assert time.monotonic() < deadline, "the run never reached epoch 2"
            time.sleep(0.02)
        # Half an epoch later (the last epoch's own duration), the run is inside epoch 3.
        last = (broken / "history.csv").read_text().splitlines()[-1].split(",")
        time.sleep(float(last[-1]) / 2)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL
    stopped_at = checkpoint.load(broken / checkpoint.FILENAME)["epoch"]
    assert 2 <= stopped_at < int(epochs)
    assert not (broken / "metrics.json").exists()

    finish(str(DIGITS), "--out", str(broken), "--epochs", epochs, "--resume")
    expected, resumed = weights(whole), weights(broken)
    assert expected.keys() == resumed.keys()
    for name, tensor in expected.items():
        assert torch.equal(tensor, resumed[name]), name
    first = json.loads((whole / "metrics.json").read_text())
    second = json.loads((broken / "metrics.json").read_text())
    assert first["test_loss"] == second["test_loss"]
    assert (whole / "history.csv").read_text().splitlines()[-1].split(",")[:7] == \
        (broken / "history.csv").read_text().splitlines()[-1].split(",")[:7]


def test_two_processes_agree_with_one(tmp_path: Path) -> None:
    single, double = tmp_path / "one", tmp_path / "two"
    finish(str(DIGITS), "--out", str(single), "--epochs", "6")
    plan = json.loads((single / "digits.plan.json").read_text())
    assert plan["plan"]["epochs"] == 6
    # The second run starts from the plan file the first one wrote.
    result = finish(str(single / "digits.plan.json"), "--out", str(double), "--nproc", "2")
    assert "test accuracy" in result.stdout
    one = json.loads((single / "metrics.json").read_text())
    two = json.loads((double / "metrics.json").read_text())
    assert (one["processes"], two["processes"]) == (1, 2)
    assert two["epochs"] == 6
    assert abs(one["test_accuracy"] - two["test_accuracy"]) <= 0.03
    assert abs(one["test_loss"] - two["test_loss"]) <= 0.08
    assert two["test_accuracy"] >= 0.9


# Started by torchrun in place of `archspec train`: each process gets its own run folder, as
# on two machines that do not share one (argv: the folder of process 0, of the others, then
# the rest of the command line).
EACH_ITS_FOLDER = """
import os, sys
from archspec.cli import run
first, others, *rest = sys.argv[1:]
folder = first if os.environ["RANK"] == "0" else others
sys.argv = ["archspec", "train", *rest, "--out", folder]
sys.exit(run())
"""


def test_processes_that_would_resume_from_different_points_all_stop(tmp_path: Path) -> None:
    # Process 1's folder lacks the checkpoint process 0's holds: alone, process 1 would start
    # afresh while process 0 went on from its epoch 2 (of 2: it has only its test left), and
    # their collectives would never meet (the run hung). Every process stops with one error
    # instead, and writes nothing.
    first, alone = tmp_path / "first", tmp_path / "alone"
    finish(str(DIGITS), "--out", str(first), "--epochs", "2", "--nproc", "2")
    alone.mkdir()
    wrapper = tmp_path / "each_its_folder.py"
    wrapper.write_text(EACH_ITS_FOLDER, encoding="utf-8")
    before = sorted(p.name for p in first.iterdir())
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(wrapper), str(first), str(alone), str(DIGITS), "--epochs", "2", "--resume"],
        env=ENV, capture_output=True, text=True, timeout=180)
    assert result.returncode != 0
    assert result.stderr.count("archspec: error: cannot resume: the processes would continue "
                               "from different points (process 0 from epoch 2, process 1 "
                               "from the start)") == 1, result.stderr
    assert sorted(p.name for p in first.iterdir()) == before
    assert list(alone.iterdir()) == []
