"""Latency repeatability: Kendall tau between two independent profiling passes over random subnets.

Each default hardware config is profiled twice over the same random sub-networks (pass 2 in a
different order, so drift over time cannot masquerade as agreement), each pass as the Evaluator
does it: all sub-networks timed interleaved in ``--rounds`` rounds. Target at cpu-t1-b1: tau >= 0.95.

    python benchmarks/latency_repeatability.py [--n-archs 100] [--rounds 5] [--hardware cpu-t1-b1 ...]
        [--name latency_repeatability]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from _common import RESULTS, write_results
from scipy.stats import kendalltau

from nastools.hardware import HardwareConfig, default_hardware_configs, measure_latencies
from nastools.supernet import default_supernet, load_supernet

PAIR_GAP = 0.05
"""Pairs of sub-networks whose mean latencies differ by more than this fraction are "apart"."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-archs", type=int, default=100)
    parser.add_argument("--min-run-time", type=float, default=0.1)
    parser.add_argument(
        "--rounds", type=int, default=5, help="interleaved rounds per pass (1: one arch after another)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--hardware", nargs="+", metavar="KEY", help="hardware keys (default: the machine's default configs)"
    )
    parser.add_argument(
        "--name", default="latency_repeatability", help="results/<name>.md, .csv and <name>-passes.csv"
    )
    parser.add_argument("--supernet", default=default_supernet())
    args = parser.parse_args()
    supernet = load_supernet(args.supernet)
    archs = supernet.space.sample(args.n_archs, rng=args.seed)
    subnets = [supernet.subnet(arch) for arch in archs]
    rng = np.random.default_rng(args.seed)
    rows, per_arch = [], []
    configs = default_hardware_configs()
    if args.hardware:
        configs = [HardwareConfig.from_key(key) for key in args.hardware]
    for hardware in configs:
        passes = []
        for order in (np.arange(len(archs)), rng.permutation(len(archs))):
            timings = measure_latencies(
                [subnets[i] for i in order],
                [supernet.example_inputs(archs[i], hardware.batch_size) for i in order],
                hardware,
                rounds=args.rounds,
                min_run_time=args.min_run_time,
            )
            latency = np.empty(len(archs))
            latency[order] = [t.median_ms for t in timings]
            passes.append((latency, sum(t.flagged for t in timings)))
        (first, flagged_1), (second, flagged_2) = passes
        i, j = np.triu_indices(len(archs), k=1)
        mean = (first + second) / 2
        apart = np.abs(mean[i] - mean[j]) / np.minimum(mean[i], mean[j]) > PAIR_GAP
        same_order = np.sign(first[i] - first[j]) == np.sign(second[i] - second[j])
        rows.append(
            {
                "hardware": hardware.key,
                "kendall_tau": kendalltau(first, second).statistic,
                "median_abs_rel_diff": float(np.median(np.abs(first - second) / first)),
                "latency_ms_min": first.min(),
                "latency_ms_max": first.max(),
                "flagged_pass1": flagged_1,
                "flagged_pass2": flagged_2,
                "pairs_apart": float(apart.mean()),
                "pairs_apart_same_order": float(same_order[apart].mean()),
            }
        )
        per_arch += [
            {"hardware": hardware.key, "arch": i, "pass1_ms": a, "pass2_ms": b}
            for i, (a, b) in enumerate(zip(first, second))
        ]
        print(rows[-1])
    table = pd.DataFrame(rows)
    pd.DataFrame(per_arch).to_csv(RESULTS / f"{args.name}-passes.csv", index=False)
    tau = table.set_index("hardware").kendall_tau
    summary = (
        f"{args.n_archs} random sub-networks of `{args.supernet}`, two passes per config (the second "
        f"in another order), min_run_time {args.min_run_time} s per sub-network, interleaved in "
        f"{args.rounds} rounds (`measure_latencies`, torch.utils.benchmark).\n\n"
        "Kendall tau: "
        + ", ".join(f"**{key}: {value:.3f}**" for key, value in tau.items())
        + " (target at cpu-t1-b1: >= 0.95). `pairs_apart`: fraction of sub-network pairs whose latencies "
        f"differ by more than {PAIR_GAP:.0%}; `pairs_apart_same_order`: fraction of those that both passes "
        "order alike (tau is lost on near-ties)."
    )
    path = write_results(args.name, "Latency repeatability", summary, table.round(4))
    print(summary)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
