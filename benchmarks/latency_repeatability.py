"""Latency repeatability: Kendall tau between two independent profiling passes over random subnets.

Each default hardware config is profiled twice over the same random sub-networks (pass 2 in a
different order, so drift over time cannot masquerade as agreement), each pass as the Evaluator
does it: all sub-networks timed interleaved in ``--rounds`` rounds. Target at cpu-t1-b1: tau >= 0.95.

    python benchmarks/latency_repeatability.py [--n-archs 100] [--rounds 5]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from _common import RESULTS, write_results
from scipy.stats import kendalltau

from nastools.hardware import default_hardware_configs, measure_latencies
from nastools.supernets import load_supernet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-archs", type=int, default=100)
    parser.add_argument("--min-run-time", type=float, default=0.1)
    parser.add_argument(
        "--rounds", type=int, default=5, help="interleaved rounds per pass (1: one arch after another)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    supernet = load_supernet()
    archs = supernet.space.sample(args.n_archs, rng=args.seed)
    subnets = [supernet.subnet(arch) for arch in archs]
    shapes = [supernet.input_shape(arch) for arch in archs]
    rng = np.random.default_rng(args.seed)
    rows, per_arch = [], []
    for hardware in default_hardware_configs():
        passes = []
        for order in (np.arange(len(archs)), rng.permutation(len(archs))):
            timings = measure_latencies(
                [subnets[i] for i in order],
                [shapes[i] for i in order],
                hardware,
                rounds=args.rounds,
                min_run_time=args.min_run_time,
            )
            latency = np.empty(len(archs))
            latency[order] = [t.median_ms for t in timings]
            passes.append((latency, sum(t.flagged for t in timings)))
        (first, flagged_1), (second, flagged_2) = passes
        rows.append(
            {
                "hardware": hardware.key,
                "kendall_tau": kendalltau(first, second).statistic,
                "median_abs_rel_diff": float(np.median(np.abs(first - second) / first)),
                "latency_ms_min": first.min(),
                "latency_ms_max": first.max(),
                "flagged_pass1": flagged_1,
                "flagged_pass2": flagged_2,
            }
        )
        per_arch += [
            {"hardware": hardware.key, "arch": i, "pass1_ms": a, "pass2_ms": b}
            for i, (a, b) in enumerate(zip(first, second))
        ]
        print(rows[-1])
    table = pd.DataFrame(rows)
    pd.DataFrame(per_arch).to_csv(RESULTS / "latency_passes.csv", index=False)
    tau = table.set_index("hardware").kendall_tau
    summary = (
        f"{args.n_archs} random sub-networks of the embedded supernet, two passes per config (the second "
        f"in another order), min_run_time {args.min_run_time} s per sub-network, interleaved in "
        f"{args.rounds} rounds (`measure_latencies`, torch.utils.benchmark).\n\n"
        f"**Kendall tau at cpu-t1-b1: {tau.get('cpu-t1-b1', float('nan')):.3f}** (target >= 0.95)."
    )
    path = write_results("latency_repeatability", "Latency repeatability", summary, table.round(4))
    print(summary)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
