"""Fuzzing the files `archspec train` reads: tampered plan files and corrupt checkpoints.

Hypothesis mutates a compiled plan file (values replaced by random JSON anywhere, keys
removed, text spliced, bytes cut or flipped) and a run's checkpoint (bytes cut, flipped or
overwritten; or fields replaced by random values with the digest recomputed, as someone
editing the file on purpose would). The property: `archspec train` returns an exit code, and
every failure is one `archspec: error:` line or located findings, never a traceback.
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import write_tiny
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archspec.cli import main
from archspec.runtime.train import checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

FILES = settings(max_examples=60, deadline=timedelta(seconds=30),
                 suppress_health_check=[HealthCheck.too_slow,
                                        HealthCheck.function_scoped_fixture])
COUNTER = itertools.count()

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-10**40, max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=8)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A compiled plan file and a run stopped after its first of two epochs."""
    root = tmp_path_factory.mktemp("fuzz")
    write_tiny(root, data="synthetic(classes=4, n=60)", optimizer="sgd(lr=0.01)")
    assert main(["compile", str(root / "tiny.arch"), "-o", str(root / "build")]) == 0
    assert main(["train", str(root / "tiny.arch"), "--out", str(root / "run"),
                 "--epochs", "1"]) == 0
    return root


def no_traceback(status: int, err: str) -> None:
    assert isinstance(status, int)
    assert "Traceback" not in err
    if status != 0:
        last = err.strip().splitlines()[-1] if err.strip() else ""
        assert last.startswith("archspec: error: ") or ": error: " in err or "|" in last, err


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON document or a checkpoint (not inside tensors)."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def replace(document: Any, where: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not where:
        return value
    parent = document
    for key in where[:-1]:
        parent = parent[key]
    if delete:
        del parent[where[-1]]
    else:
        parent[where[-1]] = value
    return document


# -- plan files ----------------------------------------------------------------------------------


@pytest.mark.slow
@FILES
@given(data=st.data())
def test_tampered_plan_files_never_raise(folder: Path, data: st.DataObject,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    original = (folder / "build" / "tiny.plan.json").read_text()
    document = json.loads(original)
    how = data.draw(st.sampled_from(["value", "delete", "splice", "cut", "flip"]))
    if how in ("value", "delete"):
        places = [p for p in paths(document) if p or how == "value"]
        where = data.draw(st.sampled_from(places))
        text = json.dumps(replace(document, where, data.draw(JSON), how == "delete"))
    elif how == "splice":
        spec = document["source"]["text"]
        at = data.draw(st.integers(0, len(spec)))
        document["source"]["text"] = spec[:at] + data.draw(st.text(max_size=20)) + spec[at:]
        text = json.dumps(document)
    else:
        at = data.draw(st.integers(0, len(original) - 1))
        text = original[:at] if how == "cut" else \
            original[:at] + chr(ord(original[at]) ^ data.draw(st.integers(1, 127))) + \
            original[at + 1:]
    plan = folder / f"fuzz{next(COUNTER)}.plan.json"
    plan.write_text(text, encoding="utf-8", errors="surrogatepass")
    out = folder / f"out{next(COUNTER)}"
    status = main(["train", str(plan), "--out", str(out), "--epochs", "1"])
    no_traceback(status, capsys.readouterr().err)
    shutil.rmtree(out, ignore_errors=True)


# -- checkpoints ---------------------------------------------------------------------------------


def resume(folder: Path, damaged: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    run = folder / f"run{next(COUNTER)}"
    shutil.copytree(folder / "run", run)
    (run / checkpoint.FILENAME).write_bytes(damaged)
    status = main(["train", str(folder / "tiny.arch"), "--out", str(run), "--resume",
                   "--epochs", "2"])
    no_traceback(status, capsys.readouterr().err)
    shutil.rmtree(run)


@pytest.mark.slow
@FILES
@given(data=st.data())
def test_corrupt_checkpoint_bytes_never_raise(folder: Path, data: st.DataObject,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    original = (folder / "run" / checkpoint.FILENAME).read_bytes()
    how = data.draw(st.sampled_from(["cut", "flip", "overwrite", "append"]))
    at = data.draw(st.integers(0, len(original) - 1))
    if how == "cut":
        damaged = original[:at]
    elif how == "flip":
        damaged = original[:at] + bytes([original[at] ^ data.draw(st.integers(1, 255))]) + \
            original[at + 1:]
    elif how == "overwrite":
        noise = data.draw(st.binary(min_size=1, max_size=64))
        damaged = original[:at] + noise + original[at + len(noise):]
    else:
        damaged = original + data.draw(st.binary(min_size=1, max_size=64))
    resume(folder, damaged, capsys)


TENSORS = st.builds(lambda shape, dtype: torch.zeros(shape, dtype=dtype),
                    st.lists(st.integers(0, 3), max_size=3),
                    st.sampled_from([torch.float32, torch.int64, torch.uint8, torch.bool]))


@pytest.mark.slow
@FILES
@given(data=st.data())
def test_edited_checkpoints_with_a_fresh_digest_never_raise(
        folder: Path, data: st.DataObject, capsys: pytest.CaptureFixture[str]) -> None:
    state = torch.load(folder / "run" / checkpoint.FILENAME)
    del state["format"], state["digest"]
    places = [p for p in paths(state) if p and (p[0] not in ("model", "optimizer")
                                                 or len(p) <= 2)]
    where = data.draw(st.sampled_from(places))
    state = replace(state, where, data.draw(JSON | TENSORS), data.draw(st.booleans()))
    path = folder / f"edited{next(COUNTER)}.pt"
    checkpoint.save(path, state)
    edited = path.read_bytes()
    path.unlink()
    resume(folder, edited, capsys)
