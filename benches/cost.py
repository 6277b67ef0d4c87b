"""The analyses of archspec/analysis/cost.py behind `archspec table`, each apart.

    python benches/cost.py [--repeat N] [--layers N]

Each analysis as `report.build_report` calls it (`layer_rules` once, then the receptive
fields, the cost rules, the values, what autograd keeps, what that saves, the tensors'
lifetimes and the inference peak), best CPU seconds of N runs (`time.process_time`: on a
shared machine the wall time is the load's), with µs a layer, on benches/parse.py's written
chain of `--layers` layers and its `[...]*N` repeat (a long chain of a few distinct layers),
then summed over every valid spec in specs/ (varied layers: branches, joins, blocks), so
that sharing the rules of the repeated layers costs the varied networks nothing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from parse import repeated, written

from archspec.analysis import cost
from archspec.ir import Network
from archspec.lang.frontend import collector_paused, load, loads
from archspec.lang.shapes import Shapes

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("layer_rules", "receptive_fields", "layer_costs", "values", "keeping",
          "saved_for_backward", "lifetimes", "inference_peak")


def run(network: Network, shapes: Shapes, times: dict[str, float]) -> None:
    """Each analysis once, its CPU seconds added to `times`."""
    def timed(name: str, work: Callable[[], object]) -> object:
        start = time.process_time()
        result = work()
        times[name] += time.process_time() - start
        return result

    rules = timed("layer_rules", lambda: cost.layer_rules(network, shapes))
    assert isinstance(rules, list)
    timed("receptive_fields", lambda: cost.receptive_fields(network, shapes, rules))
    timed("layer_costs", lambda: cost.layer_costs(network, shapes, rules))
    values = timed("values", lambda: cost.values(shapes))
    assert isinstance(values, dict)
    keep = timed("keeping", lambda: cost.keeping(network, shapes, 4, None, 2, rules=rules))
    assert isinstance(keep, cost.Keeping)
    timed("saved_for_backward", lambda: cost.saved_for_backward(network, values, keep))
    spans = timed("lifetimes", lambda: cost.lifetimes(network, keep.storages))
    assert isinstance(spans, tuple)
    timed("inference_peak", lambda: cost.inference_peak(network, values, spans))


def best(nets: list[tuple[Network, Shapes]], repeat: int) -> dict[str, float]:
    """Each phase's best CPU seconds over `repeat` runs, summed over `nets`."""
    found = dict.fromkeys(PHASES, float("inf"))
    for _ in range(repeat):
        times = dict.fromkeys(PHASES, 0.0)
        with collector_paused():
            for network, shapes in nets:
                run(network, shapes, times)
        found = {name: min(found[name], times[name]) for name in PHASES}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--layers", type=int, default=100_000)
    args = parser.parse_args()
    columns: list[tuple[str, int, dict[str, float]]] = []
    for form, make in (("written", written), ("repeated", repeated)):
        spec = loads(make(args.layers), "bench.arch")
        assert spec.ok and spec.network is not None, spec.render()[:2000]
        layers = len(spec.network.layers)
        columns.append((form, layers, best([(spec.network, spec.shapes)], args.repeat)))
    nets = []
    for path in sorted((ROOT / "specs").glob("**/*.arch")):
        spec = load(path)
        if spec.ok and spec.network is not None and spec.network.complete:
            nets.append((spec.network, spec.shapes))
    columns.append((f"{len(nets)} specs", sum(len(n.layers) for n, _ in nets),
                    best(nets, args.repeat * 3)))
    print(f"{'CPU s (µs a layer)':<20}" + "".join(f"{f'{form}, {layers:,}':>24}"
                                                  for form, layers, _ in columns))
    for name in (*PHASES, "total"):
        cells = []
        for _, layers, times in columns:
            seconds = sum(times.values()) if name == "total" else times[name]
            cells.append(f"{seconds:.3f} ({seconds / layers * 1e6:.2f})")
        print(f"{name:<20}" + "".join(f"{cell:>24}" for cell in cells))


if __name__ == "__main__":
    main()
