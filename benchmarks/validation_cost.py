"""Cost of one validation against the plain forward pass of the same sub-network over the same data.

A validation is: extract the standalone sub-network, recalibrate its batch norm, fold the batch norms
into the convolutions and measure held-out top-1. The reference is the eval-mode forward of the
already extracted sub-network over the held-out images. Target: ratio <= 1.3. Both are timed with
torch.utils.benchmark, side by side per arch; the forward of the folded sub-network is timed too, so
the ratio against the fastest forward is reported as well.

    python benchmarks/validation_cost.py [--supernet digits-mbv3] [--n-archs 20] [--threads 2]

Image-classification supernets only (those that validate top-1 on an embedded task).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch
from _common import write_results
from torch.utils.benchmark import Timer

from nastools.supernet import default_supernet, load_supernet
from nastools.supernets._image import fold_batchnorm, resize, top1_accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-archs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--supernet", default=default_supernet())
    args = parser.parse_args()
    supernet = load_supernet(args.supernet)
    if getattr(supernet, "task", None) is None:
        parser.error(
            f"{args.supernet} validates no top-1 on an embedded task; use an image supernet with a task"
        )
    smallest, largest = supernet.extremes()
    archs = [largest, smallest]
    archs += supernet.space.sample(args.n_archs - 2, rng=args.seed)
    rows = []
    for arch in archs:
        resolution = supernet.net.resolution(arch)
        # the forward pass at its fastest, in the layout evaluate() uses
        test_x = resize(supernet.task.test_x, resolution).contiguous(memory_format=torch.channels_last)
        supernet.evaluate(arch, "top1")  # fills the resized-data cache, as in a search
        subnet = supernet.subnet(arch).to(memory_format=torch.channels_last)
        common = {"num_threads": args.threads}
        validation = Timer(
            "supernet.evaluate(arch, 'top1')", globals={"supernet": supernet, "arch": arch}, **common
        ).timeit(3)
        forward = Timer(
            "top1(subnet, x, y)",
            globals={
                "top1": top1_accuracy,
                "subnet": subnet,
                "x": test_x,
                "y": supernet.task.test_y,
            },
            **common,
        ).timeit(3)
        folded_forward = Timer(
            "top1(subnet, x, y)",
            globals={
                "top1": top1_accuracy,
                "subnet": fold_batchnorm(subnet),
                "x": test_x,
                "y": supernet.task.test_y,
            },
            **common,
        ).timeit(3)
        rows.append(
            {
                "arch": "largest" if arch == archs[0] else "smallest" if arch == archs[1] else "random",
                "r": resolution,
                "macs": supernet.macs(arch, subnet),
                "validation_s": validation.median,
                "forward_s": forward.median,
                "ratio": validation.median / forward.median,
                "folded_forward_s": folded_forward.median,
                "ratio_to_folded": validation.median / folded_forward.median,
            }
        )
        print(rows[-1])
    table = pd.DataFrame(rows)
    summary = (
        f"Supernet `{args.supernet}`. Validation = extract + BN recalibration "
        f"({len(supernet.task.calibration_x)} images) + BN "
        f"folding + top-1 on {len(supernet.task.test_y)} held-out images; forward = the extracted "
        "sub-network's eval forward over the same held-out images (`ratio`), or that of its folded "
        f"copy (`ratio_to_folded`). {args.threads} threads, median of 3 runs each.\n\n"
        f"**Median ratio {np.median(table.ratio):.3f}** (max {table.ratio.max():.3f}; target <= 1.3) "
        f"over {len(table)} archs; to the folded forward {np.median(table.ratio_to_folded):.3f}; "
        f"mean validation {table.validation_s.mean() * 1000:.0f} ms."
    )
    name = "validation_cost" if args.supernet == default_supernet() else f"validation_cost-{args.supernet}"
    path = write_results(name, "Validation cost vs forward pass", summary, table.round(4))
    print(summary)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
