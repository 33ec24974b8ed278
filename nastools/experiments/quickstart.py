"""Quickstart: load a supernet, measure a few sub-networks on two CPU configs, print them.

Run with ``python -m nastools.experiments.quickstart`` (``make quickstart`` does). Measurements go
to ``<out-dir>/results.sqlite`` and a CSV beside it; a second run reuses them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nastools._outputs import check_output_dir, check_output_file


def main(argv: list[str] | None = None) -> Any:
    """Measure ``--n-archs`` random sub-networks plus the largest and smallest; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--supernet", default=None, help="any name load_supernet accepts (default: the embedded one)"
    )
    parser.add_argument("--n-archs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default="results/quickstart")
    args = parser.parse_args(argv)
    if args.n_archs < 0:
        parser.error(f"--n-archs must be >= 0, got {args.n_archs}")
    out_dir = Path(args.out_dir).expanduser()
    try:  # before anything is measured
        check_output_dir(out_dir, "--out-dir")
        for name in ("results.sqlite", "measurements.csv"):
            check_output_file(out_dir / name, "--out-dir")
    except OSError as error:
        parser.error(str(error))
    import pandas as pd

    from nastools.evaluation import Evaluator, wide
    from nastools.hardware import default_hardware_configs
    from nastools.supernet import default_supernet, load_supernet

    try:
        supernet = load_supernet(args.supernet or default_supernet())
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    out_dir.mkdir(parents=True, exist_ok=True)
    print(supernet)
    hardware = default_hardware_configs()
    hardware = [hardware[0], hardware[-1]]  # batch-1 single thread, large-batch multi-thread
    smallest, largest = supernet.extremes()
    archs = [largest, smallest, *supernet.space.sample(args.n_archs, rng=args.seed)]
    evaluator = Evaluator(supernet, out_dir / "results.sqlite")
    metrics = [*[m.name for m in supernet.metrics], "macs", "params", "latency_ms"]
    table = wide(evaluator.measure(archs, metrics, hardware))
    try:
        table.to_csv(out_dir / "measurements.csv", index=False)
    except OSError as error:  # the measurements are in the store already
        parser.error(f"{error}; the measurements are in {out_dir / 'results.sqlite'}")
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table.drop(columns="arch").round(3).to_string())
    print(f"wrote {out_dir / 'measurements.csv'} and {out_dir / 'results.sqlite'}")
    return table


if __name__ == "__main__":
    main()
