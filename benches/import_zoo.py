"""`archspec import` on every spec of specs/ and specs/zoo/: the round trip's figures.

    PYTHONPATH=. python benches/import_zoo.py [SPEC ...]

Per spec: the compiled module built on the meta device, then imported in process (trace,
mapping, blocks, text; torch already loaded); prints the import's seconds, the written spec's
lines and blocks, and whether the re-compiled spec has the same state_dict keys and shapes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from archspec.backends.torch.build import to_torch
from archspec.backends.torch.importer import ImportFailed, import_model
from archspec.lang.frontend import load_network, loads

ROOT = Path(__file__).resolve().parent.parent


def main(paths: list[str]) -> None:
    specs = [Path(p) for p in paths] or sorted(
        p for p in (ROOT / "specs").rglob("*.arch") if p.name != "sketch.arch")
    print(f"{'spec':32} {'seconds':>8} {'lines':>6} {'blocks':>7}  same keys")
    same = 0
    for path in specs:
        network, shapes = load_network(path)
        with torch.device("meta"):
            model = to_torch(network, shapes)
        start = time.perf_counter()
        try:
            text = import_model(model, network.input.shape, name=network.name,
                                origin=str(path)).text
        except ImportFailed as exc:
            print(f"{path.name:32} failed: {exc}")
            continue
        seconds = time.perf_counter() - start
        spec = loads(text)
        ok = spec.ok and spec.network is not None
        if ok and spec.network is not None:
            with torch.device("meta"):
                again = to_torch(spec.network, spec.shapes)
            ok = {k: v.shape for k, v in again.state_dict().items()} == {
                k: v.shape for k, v in model.state_dict().items()}
        same += ok
        blocks = sum(line.startswith("block ") for line in text.splitlines())
        print(f"{path.relative_to(ROOT / 'specs').as_posix():32} {seconds:8.3f} "
              f"{len(text.splitlines()):6} {blocks:7}  {'yes' if ok else 'NO'}")
    print(f"{same} of {len(specs)} round-trip with the same state_dict keys and shapes")


if __name__ == "__main__":
    main(sys.argv[1:])
