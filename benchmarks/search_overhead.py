"""Predictor-driven NSGA-II: wall time of 10,000 predictions (population 50 x 200 generations).

Two ridge predictors (fitted on 500 sub-networks of the embedded supernet, targets: their exact MACs
and parameter counts, so nothing needs validating) drive NSGA-II with the toolkit's operators.
Target: <= 2 s on this machine. Median of ``--repeats`` runs, each with a different seed.

    python benchmarks/search_overhead.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from _common import write_results

from nastools.predictors import make_predictor
from nastools.search import ArchProblem, make_algorithm, run_search
from nastools.supernet import default_supernet, load_supernet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pop-size", type=int, default=50)
    parser.add_argument("--n-gen", type=int, default=200)
    parser.add_argument("--supernet", default=default_supernet())
    args = parser.parse_args()
    supernet = load_supernet(args.supernet)
    space = supernet.space
    archs = space.sample(500, rng=0)
    X = space.encode(archs)  # noqa: N806 - pymoo's name
    models = {
        "macs": make_predictor(space, "ridge").fit(X, [supernet.macs(a) for a in archs]),
        "params": make_predictor(space, "ridge").fit(X, [supernet.params(a) for a in archs]),
    }
    calls = []

    def predict(X):  # noqa: N803 - pymoo's name
        calls.append(len(X))
        return {name: model.predict(X) for name, model in models.items()}

    problem = ArchProblem(space, {"macs": "min", "params": "min"}, predict, pass_x=True)
    rows = []
    for seed in range(args.repeats):
        calls.clear()
        algorithm = make_algorithm("nsga2", space, pop_size=args.pop_size, seed=seed)
        start = time.perf_counter()
        run_search(problem, algorithm, n_gen=args.n_gen, seed=seed)
        rows.append({"seed": seed, "predictions": sum(calls), "seconds": time.perf_counter() - start})
    table = pd.DataFrame(rows)
    median = float(np.median(table.seconds))
    summary = (
        f"Supernet `{args.supernet}`. NSGA-II, population {args.pop_size} x {args.n_gen} generations on "
        "two ridge predictors "
        f"({int(table.predictions.median())} predictions per run), {args.repeats} seeds.\n\n"
        f"**Median wall time: {median:.2f} s** (target <= 2 s)."
    )
    path = write_results("search_overhead", "Predictor-driven search overhead", summary, table.round(3))
    print(summary)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
