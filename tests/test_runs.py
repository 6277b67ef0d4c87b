"""Runs and files that are never lost or trusted: checkpoints read weights-only and checked,
run folders locked and never replaced without --force, finished runs extended, builds
replaced as a set, and every failed write or read one error line with a non-zero exit."""

from __future__ import annotations

import functools
import io
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_spec, write_tiny

from archspec.backends.torch.build import to_torch
from archspec.cli import main
from archspec.lang.frontend import load_network, loads
from archspec.runtime import plan as plan_files
from archspec.runtime.train import checkpoint, rundir
from archspec.runtime.train.trainer import fixed_length

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}

pytestmark = pytest.mark.usefixtures("one_thread")
# TINY on 120 samples: 84 train / 12 val / 24 test.
DATA = "synthetic(classes=4, n=120)"
tiny = functools.partial(write_tiny, data=DATA)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("archspec: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-epoch run of TINY (read, never written, by the tests that use it)."""
    folder = tmp_path_factory.mktemp("finished")
    assert main(["train", str(tiny(folder)), "--out", str(folder / "run")]) == 0
    return folder / "run"


def copy_run(run_folder: Path, to: Path) -> Path:
    to.mkdir()
    for path in run_folder.iterdir():
        (to / path.name).write_bytes(path.read_bytes())
    return to


# -- checkpoints ---------------------------------------------------------------------------------


def test_checkpoint_opens_weights_only_and_holds_no_pickled_object(finished: Path) -> None:
    state = torch.load(finished / checkpoint.FILENAME)  # torch's default: weights_only=True
    assert state["format"] == checkpoint.FORMAT and state["epoch"] == 2
    numpy_state = state["rng"][0]["numpy"]
    assert isinstance(numpy_state["keys"], torch.Tensor) and numpy_state["keys"].shape == (624,)


def test_generator_states_round_trip() -> None:
    import random

    import numpy as np

    saved = checkpoint.rng_state()
    first = (torch.rand(3), np.random.rand(3), random.random())
    checkpoint.set_rng_state(saved)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], again[0]) and (first[1] == again[1]).all()
    assert first[2] == again[2]


def test_trained_weights_load_into_the_built_module(finished: Path, tmp_path: Path) -> None:
    spec = loads(tiny(tmp_path).read_text())
    assert spec.network is not None
    model = to_torch(spec.network, spec.shapes)
    model.load_state_dict(torch.load(finished / "model.pt"))
    saved = torch.load(finished / checkpoint.FILENAME)["model"]
    assert all(torch.equal(value, saved[key]) for key, value in model.state_dict().items())


def _flip(data: bytes) -> bytes:
    """One bit flipped in the bytes of the model's largest tensor (not in the zip's records)."""
    state = torch.load(io.BytesIO(data))
    largest = max(state["model"].values(), key=lambda tensor: tensor.numel())
    at = data.index(largest.numpy().tobytes()) + 100
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


@pytest.mark.parametrize(("damage", "message"), [
    (lambda data: b"", "not a readable archspec checkpoint"),
    (lambda data: data[: len(data) // 2], "not a readable archspec checkpoint"),
    (lambda data: os.urandom(len(data)), "not a readable archspec checkpoint"),
    (_flip, "damaged"),
], ids=["empty", "truncated", "random", "one-bit-flipped"])
def test_a_damaged_checkpoint_is_one_error_line(damage, message: str, finished: Path,
                                                tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    folder = copy_run(finished, tmp_path / "run")
    path = folder / checkpoint.FILENAME
    path.write_bytes(damage(path.read_bytes()))
    plan_file = folder / "tiny.plan.json"
    before = plan_file.read_bytes()
    status, _out, err = run(capsys, "train", str(tiny(tmp_path)), "--out", str(folder),
                            "--resume", "--epochs", "3")
    assert status == 2 and message in one_error_line(err)
    assert plan_file.read_bytes() == before  # refused before anything was written


def test_a_pickled_object_in_a_checkpoint_is_never_run(finished: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    folder = copy_run(finished, tmp_path / "run")
    marker = tmp_path / "ran"
    state = torch.load(folder / checkpoint.FILENAME)
    state["history"] = _Payload(str(marker))
    torch.save(state, folder / checkpoint.FILENAME)
    status, _out, err = run(capsys, "train", str(tiny(tmp_path)), "--out", str(folder),
                            "--resume")
    assert status == 2 and "not a readable archspec checkpoint" in one_error_line(err)
    assert not marker.exists()


class _Payload:
    """What an attacker pickles: unpickling it would create a file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (Path.write_text, (Path(self.path), "ran"))


def test_nothing_in_the_package_unpickles() -> None:
    for path in (ROOT / "archspec").rglob("*.py"):
        text = path.read_text()
        # Spelt in two parts, so that this file does not hold the words it looks for.
        for word in ("cache=" + "True", "weights_only=" + "False", "pickle." + "load"):
            assert word not in text, f"{path.name} has {word}"


# -- run folders ---------------------------------------------------------------------------------


def test_a_plain_train_into_a_run_refuses_and_force_replaces(
        finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = copy_run(finished, tmp_path / "run")
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    status, _out, err = run(capsys, "train", str(tiny(tmp_path)), "--out", str(folder))
    assert status == 2 and "holds a run" in one_error_line(err) and "--force" in err
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before
    status, out, _err = run(capsys, "train", str(tiny(tmp_path)), "--out", str(folder),
                            "--epochs", "1", "--force")
    assert status == 0 and "epoch 1/1" in out
    assert torch.load(folder / checkpoint.FILENAME)["epoch"] == 1


def test_force_and_resume_together_are_refused(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    status, _out, err = run(capsys, "train", str(tiny(tmp_path)), "--out",
                            str(tmp_path / "run"), "--resume", "--force")
    assert status == 2 and "give one of them" in one_error_line(err)
    assert not (tmp_path / "run").exists()


def test_a_refused_resume_leaves_the_plan_file_alone(finished: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    folder = copy_run(finished, tmp_path / "run")
    before = (folder / "tiny.plan.json").read_bytes()
    other = tiny(tmp_path, "  seed 7")
    status, _out, err = run(capsys, "train", str(other), "--out", str(folder), "--resume")
    assert status == 2 and "another spec or plan" in one_error_line(err)
    assert (folder / "tiny.plan.json").read_bytes() == before


@pytest.mark.parametrize(("folders", "flag", "what"), [
    (["checkpoint.pt"], "--resume", "checkpoint.pt is a directory"),
    (["tiny.plan.json", "model-2.pt"], "--force", "tiny.plan.json, model-2.pt are directories"),
], ids=["resume-checkpoint", "force-plan-and-weights"])
def test_a_run_folder_with_a_directory_for_a_file_is_refused_first(
        folders: list[str], flag: str, what: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    # With checkpoint.pt a directory, `--resume` noted there was nothing to resume, trained a
    # whole epoch, then failed to write it, leaving a plan file and a lock behind.
    folder = tmp_path / "run"
    for name in folders:
        (folder / name).mkdir(parents=True)
    status, out, err = run(capsys, "train", str(tiny(tmp_path)), "--out", str(folder), flag,
                           "--epochs", "1")
    assert (status, out) == (2, "")
    assert one_error_line(err) == (f"archspec: error: cannot train into {folder}: {what}, "
                                   "where the run writes a file")
    assert sorted(path.name for path in folder.iterdir()) == sorted(folders)


def test_a_locked_run_folder_refuses_a_second_run(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "run"
    with rundir.claim(folder, resume=False, force=False, plan_file="tiny.plan.json"):
        status, _out, err = run(capsys, "train", str(tiny(tmp_path)), "--out", str(folder))
    assert status == 2 and "in use by another run" in one_error_line(err)
    assert f"pid {os.getpid()}" in err
    assert not (folder / "tiny.plan.json").exists()


@pytest.mark.slow
def test_a_lock_held_by_another_process_refuses(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from archspec.runtime.train import rundir\n"
         f"with rundir.claim(Path({str(folder)!r}), resume=False, force=False, "
         "plan_file='tiny.plan.json'):\n"
         "    print('held', flush=True); time.sleep(60)"],
        env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        second = subprocess.run([sys.executable, "-m", "archspec", "train",
                                 str(tiny(tmp_path)), "--out", str(folder)],
                                env=ENV, capture_output=True, text=True, timeout=120)
    finally:
        holder.kill()
        holder.wait()
    assert second.returncode == 2
    assert f"in use by another run (pid {holder.pid})" in one_error_line(second.stderr)


# -- extending a run -----------------------------------------------------------------------------


def test_the_readmes_training_commands_run_one_after_another() -> None:
    # The README extended digits' run with `--resume --epochs 30`, which its cosine schedule
    # refuses after a whole run's start-up, and its `--nproc 2` line trained into the folder
    # a run already held. Each command is checked as `train` checks it, without training.
    readme = (ROOT / "README.md").read_text()
    block = readme.split("\n## Training\n", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [shlex.split(line.split("#", 1)[0]) for line in block.splitlines()]
    runs: dict[Path, tuple[Path, int]] = {}  # each run folder: its spec and epochs

    def option(argv: list[str], flag: str) -> str | None:
        return argv[argv.index(flag) + 1] if flag in argv else None

    for argv in commands:
        assert argv[:2] == ["archspec", "train"], argv
        given = argv[2]
        spec = ROOT / given if given.endswith(".arch") else runs[Path(given).parent][0]
        network, _shapes = load_network(spec)
        assert network.plan is not None
        out = Path(option(argv, "--out") or Path("runs") / network.name)
        epochs = int(option(argv, "--epochs") or network.plan.epochs)
        resume = "--resume" in argv
        if out in runs and resume and epochs != runs[out][1]:
            why = fixed_length(network.plan)
            assert why is None, f"{shlex.join(argv)}: {why}"
        assert out not in runs or resume or "--force" in argv, f"{shlex.join(argv)}: holds a run"
        runs[out] = (spec, epochs)
    assert len(commands) == 5 and len(runs) == 3


def test_a_finished_run_extends_bit_exactly(finished: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(tiny(tmp_path))
    extended = copy_run(finished, tmp_path / "extended")
    assert run(capsys, "train", spec, "--out", str(extended), "--resume", "--epochs", "4")[0] == 0
    whole = tmp_path / "whole"
    assert run(capsys, "train", spec, "--out", str(whole), "--epochs", "4")[0] == 0
    a, b = torch.load(extended / checkpoint.FILENAME), torch.load(whole / checkpoint.FILENAME)
    assert a["epoch"] == b["epoch"] == 4
    assert all(torch.equal(value, b["model"][key]) for key, value in a["model"].items())
    assert (extended / "history.csv").read_text().splitlines()[-1].split(",")[:7] == \
        (whole / "history.csv").read_text().splitlines()[-1].split(",")[:7]
    metrics = json.loads((extended / "metrics.json").read_text())
    assert metrics["epochs"] == 4


@pytest.mark.parametrize(("extra", "why"), [
    ("  schedule cosine", "cosine schedule anneals over all of its epochs"),
    ("  ensemble 2", "earlier ensemble members"),
])
def test_extending_refuses_what_depends_on_the_total(extra: str, why: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    spec, folder = str(tiny(tmp_path, extra)), str(tmp_path / "run")
    assert run(capsys, "train", spec, "--out", folder, "--epochs", "1")[0] == 0
    status, _out, err = run(capsys, "train", spec, "--out", folder, "--resume", "--epochs", "2")
    assert status == 2 and why in one_error_line(err) and "--force" in err


def test_resume_refuses_fewer_epochs_than_trained(finished: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    folder = copy_run(finished, tmp_path / "run")
    status, _out, err = run(capsys, "train", str(tiny(tmp_path)), "--out", str(folder),
                            "--resume", "--epochs", "1")
    assert status == 2 and "trained 2 epochs, more than --epochs 1" in one_error_line(err)


def test_train_says_what_it_trains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _err = run(capsys, "train", str(tiny(tmp_path)), "--out",
                            str(tmp_path / "a"), "--epochs", "1")
    assert status == 0
    assert out.splitlines()[0] == (
        "training tiny (2,228 parameters) on synthetic data (4 classes; 84 train / 12 val / "
        "24 test images) with adam(lr=0.01), schedule none, 1 epoch of batch 32 on cpu "
        "(1 process)")
    bare = tmp_path / "bare.arch"
    bare.write_text(tiny_spec().split("\ntrain:")[0].replace("FC-4", "FC-10") + "\n")
    status, out, _err = run(capsys, "train", str(bare), "--out", str(tmp_path / "b"),
                            "--epochs", "1")
    assert status == 0 and "no train: section" in out and "synthetic random data" in out


# -- builds --------------------------------------------------------------------------------------


def test_compile_replaces_its_set_and_keeps_other_files(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "build"
    spec = tiny(tmp_path)
    assert run(capsys, "compile", str(spec), "-o", str(out))[0] == 0
    (out / "notes.txt").write_text("mine")
    old = {path.name: path.read_bytes() for path in out.iterdir()}
    spec.write_text(tiny_spec(data=DATA).replace("FC-16", "FC-32"))

    def killed(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt  # as if killed between the module and the plan

    with monkeypatch.context() as patch:
        patch.setattr(plan_files, "write_plan", killed)
        assert run(capsys, "compile", str(spec), "-o", str(out))[0] == 130
    assert {path.name: path.read_bytes() for path in out.iterdir()} == old
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".build")]
    assert run(capsys, "compile", str(spec), "-o", str(out))[0] == 0
    assert "FC-32" in (out / "tiny.plan.json").read_text()
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "tiny.py").read_bytes() != old["tiny.py"]


def test_compile_refuses_a_folder_holding_folders(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "build" / "sub").mkdir(parents=True)
    status, _out, err = run(capsys, "compile", str(tiny(tmp_path)), "-o", str(tmp_path / "build"))
    assert status == 2 and "not only files" in one_error_line(err)


# -- the command line ----------------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from archspec import __version__

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"archspec {__version__}\n"


@pytest.mark.parametrize("command", ["check", "table", "draw", "compile"])
def test_dash_reads_standard_input(command: str, tmp_path: Path) -> None:
    output = ["-o", str(tmp_path / "out")] if command in ("table", "compile") else []
    good = subprocess.run([sys.executable, "-m", "archspec", command, "-", *output],
                          input=tiny_spec(data=DATA), env=ENV, capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert good.returncode == 0, good.stderr
    bad = subprocess.run([sys.executable, "-m", "archspec", command, "-"],
                         input="network x\ninput 1x8x8\nCONV3-8 - FCC-4\n", env=ENV,
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert bad.returncode == 1 and bad.stderr.startswith("<stdin>:3:11: error: ")


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    read, write = os.pipe()
    os.close(read)  # the reader has gone, as `| head -c 10` leaves it
    result = subprocess.run([sys.executable, "-m", "archspec", "table",
                             str(ROOT / "specs" / "vgg16.arch"), "--format", "json"],
                            stdout=write, stderr=subprocess.PIPE, env=ENV, text=True, timeout=120)
    os.close(write)
    assert result.returncode == 141 and result.stderr == ""


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("unbuffered", ["", "1"])
def test_a_full_disk_on_stdout_is_an_error(unbuffered: str) -> None:
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "archspec", "check", "--format", "json",
                                 str(ROOT / "specs" / "vgg16.arch")], stdout=full,
                                stderr=subprocess.PIPE, text=True, timeout=120,
                                env={**ENV, "PYTHONUNBUFFERED": unbuffered})
    assert result.returncode == 2
    assert "cannot write standard output: No space left on device" in \
        one_error_line(result.stderr)


def test_a_file_size_limit_on_stdout_is_an_error(tmp_path: Path) -> None:
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))

    with open(tmp_path / "out.json", "w") as out:
        result = subprocess.run([sys.executable, "-m", "archspec", "table", "--format", "json",
                                 str(ROOT / "specs" / "vgg16.arch")], stdout=out,
                                stderr=subprocess.PIPE, text=True, timeout=120,
                                env={**ENV, "PYTHONUNBUFFERED": "1"}, preexec_fn=limit)
    assert result.returncode == 2 and "File too large" in one_error_line(result.stderr)


@pytest.mark.parametrize("argv", [
    ["table", "{spec}", "-o", "/proc/archspec.txt"],
    ["table", "{spec}", "-o", "{tmp}"],
    ["table", "{spec}", "-o", ""],
    ["draw", "{spec}", "-o", "/proc/archspec.dot"],
    ["draw", "{spec}", "-o", "{tmp}"],
    ["draw", "{spec}", "-o", ""],
    ["probe", "{spec}", "--plot", "/proc/archspec.png", "--samples", "8"],
    ["probe", "{spec}", "--plot", "", "--samples", "8"],
    ["compile", "{spec}", "-o", "/proc/archspec"],
    ["compile", "{spec}", "-o", "{tmp}/tiny.arch"],
    ["compile", "{spec}", "-o", ""],
    ["train", "{spec}", "--out", "/proc/archspec"],
    ["train", "{spec}", "--out", "{tmp}/tiny.arch"],
    ["train", "{spec}", "--out", ""],
    ["check", "{tmp}"],
    ["table", "/proc/archspec.arch"],
], ids=lambda argv: " ".join(argv))
def test_an_output_that_cannot_be_written_is_one_error(argv: list[str], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    spec = tiny(tmp_path)
    status, _out, err = run(capsys, *(a.format(spec=spec, tmp=tmp_path) for a in argv))
    assert status == 2
    one_error_line(err)


@pytest.mark.parametrize("value", ["99999999999999999999", "1e9", "100000"])
@pytest.mark.parametrize("flag", ["--threads", "--nproc"])
def test_thread_and_process_counts_are_bounded(flag: str, value: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["train", str(tiny(tmp_path)), flag, value])
    assert exit_.value.code == 2
    assert "(the CPUs this process may use)" in capsys.readouterr().err


def test_a_diverged_run_writes_strict_json(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "tiny.arch"
    spec.write_text(tiny_spec(data=DATA).replace("adam(lr=0.01)", "sgd(lr=1000)"))
    status, out, _err = run(capsys, "train", str(spec), "--out", str(tmp_path / "run"),
                            "--epochs", "1")
    assert status == 0 and "log-loss nan" in out

    def refuse(constant: str) -> None:
        raise AssertionError(f"metrics.json holds a bare {constant}")

    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(),
                         parse_constant=refuse)
    assert metrics["test_loss"] is None and metrics["members"][0]["val_loss"] is None
    assert 0 <= metrics["test_accuracy"] <= 1


# -- tampered plan files -------------------------------------------------------------------------


@pytest.fixture
def plan_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert run(capsys, "compile", str(tiny(tmp_path)), "-o", str(tmp_path / "build"))[0] == 0
    return tmp_path / "build" / "tiny.plan.json"


def test_a_plan_is_known_by_its_content_whatever_its_name(
        plan_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A plan copied to `plan.json` was read as a spec: dozens of `plan.json:2:3: error:` lines.
    copy = plan_file.with_name("plan.json")
    copy.write_text("\n " + plan_file.read_text())
    status, out, err = run(capsys, "train", str(copy), "--out", str(tmp_path / "run"),
                           "--epochs", "1")
    assert status == 0 and "epoch 1/1" in out, err
    # JSON that is not a plan is one line, not the spec front end's findings.
    other = tmp_path / "settings"
    other.write_text('{"seed": 1}')
    status, _out, err = run(capsys, "train", str(other), "--out", str(tmp_path / "run2"))
    assert (status, err) == (1, f"archspec: error: {other}: not an archspec plan (format 2)\n")
    assert not (tmp_path / "run2").exists()


def tamper(path: Path, change) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


@pytest.mark.parametrize(("text", "message"), [
    ("[" * 100_000 + "]" * 100_000, "not a readable plan file: nested too deeply"),
    ('{"format": 1, "seed": ' + "7" * 5000 + "}", "not a readable plan file: Exceeds the limit"),
    ("", "not a readable plan file: Expecting value"),
    ("\xff\xfe", "not a readable plan file"),
], ids=["deep-nesting", "5000-digits", "empty", "not-utf8"])
def test_an_unreadable_plan_file_is_one_error(text: str, message: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.plan.json"
    path.write_bytes(text.encode("latin-1"))
    status, _out, err = run(capsys, "train", str(path), "--out", str(tmp_path / "run"))
    assert status == 1 and message in one_error_line(err)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["plan"].update(seed=10**30), "plan.seed is not what its spec text says "
     "(a huge number, the text gives 0)"),
    (lambda d: d["plan"]["spans"]["batch"].update(col=10**10, line=10**10), None),
    (lambda d: d["plan"].update(augment=[{"name": "random_crop", "args": {}}]),
     "plan.augment is not what its spec text says"),
    (lambda d: d["plan"].update(epochs=0), "plan.epochs is 0, not a whole number from 1"),
    (lambda d: d["plan"].update(epochs=True), "plan.epochs is true"),
    (lambda d: d["plan"].update(device="tpu"), 'plan.device is "tpu", not cpu or cuda'),
    (lambda d: d.update(plan=[]), "the plan has no `plan` mapping"),
    (lambda d: d["source"].update(text=7), "no spec text under source.text"),
], ids=["seed-1e30", "span-column-1e10", "augment-without-arguments", "epochs-0",
        "epochs-bool", "device", "plan-not-a-mapping", "text-not-text"])
def test_a_tampered_plan_is_one_error(change, message: str | None, plan_file: Path,
                                      tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tamper(plan_file, change)
    status, out, err = run(capsys, "train", str(plan_file), "--out", str(tmp_path / "run"),
                           "--epochs", "1")
    if message is None:  # spans are the front end's, never the file's: the run goes ahead
        assert status == 0 and "epoch 1/1" in out
    else:
        assert status == 1 and message in one_error_line(err)


def test_a_plan_files_spec_text_gets_every_check_at_its_line(
        plan_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tamper(plan_file, lambda d: d["source"].update(
        text=d["source"]["text"] + "  ensemble 2\n  snapshots 2\n  schedule sgdr(period=1)\n"))
    status, _out, err = run(capsys, "train", str(plan_file), "--out", str(tmp_path / "run"))
    assert status == 1
    assert f"{tmp_path / 'tiny.arch'}:12:" in err and "snapshots" in err and "ensemble" in err


def test_an_output_that_is_a_device_or_a_link_stays_one(tmp_path: Path) -> None:
    spec = tiny(tmp_path)
    result = subprocess.run([sys.executable, "-m", "archspec", "table", str(spec), "-o",
                             "/dev/stdout"], env=ENV, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and "conv1" in result.stdout
    assert Path("/dev/stdout").is_symlink()  # written through, not replaced by a file
    (tmp_path / "real.txt").write_text("old")
    (tmp_path / "link.txt").symlink_to(tmp_path / "real.txt")
    assert main(["table", str(spec), "-o", str(tmp_path / "link.txt")]) == 0
    assert (tmp_path / "link.txt").is_symlink() and "conv1" in (tmp_path / "real.txt").read_text()


def test_an_ensemble_writes_one_weights_file_per_member(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(tiny(tmp_path, "  ensemble 2"))
    status, out, _err = run(capsys, "train", spec, "--out", str(tmp_path / "run"), "--epochs",
                            "1")
    assert status == 0 and "model-1.pt...model-2.pt" in out
    finished = torch.load(tmp_path / "run" / checkpoint.FILENAME)["finished"]
    for number, member in enumerate(finished, start=1):
        weights = torch.load(tmp_path / "run" / f"model-{number}.pt")
        assert all(torch.equal(value, member["weights"][key]) for key, value in weights.items())
    assert not (tmp_path / "run" / "model.pt").exists()
