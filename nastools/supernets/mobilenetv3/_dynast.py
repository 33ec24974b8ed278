"""DyNAS-T's published measurements of OFA MobileNetV3-w1.0 sub-networks (ImageNet top-1, MACs, params)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from nastools.datasets import fetch
from nastools.supernets.mobilenetv3._data import DYNAST_DATA
from nastools.supernets.mobilenetv3._ofa_predictor import arch_from_ofa_config

__all__ = ["DYNAST_URL", "read_dynast_measurements"]

#: Where the CSV files come from (IntelLabs/DyNAS-T, ``notebooks/data/mbnv3w10_*.csv``, Apache-2.0).
DYNAST_URL = "https://github.com/IntelLabs/DyNAS-T/tree/main/notebooks/data"


def read_dynast_measurements(folder: str | Path | None = None, unique: bool = True) -> pd.DataFrame:
    """Read DyNAS-T's ``mbnv3w10_*.csv`` files: measured OFA MobileNetV3-w1.0 sub-networks.

    Each row is a sub-network of OFA's w1.0 supernet at resolution 224 with its ImageNet top-1
    (pretrained OFA weights, batch norm recalibrated, official validation set), MACs and parameters.

    Args:
        folder: The folder holding the CSV files (as in DyNAS-T's ``notebooks/data``); by default
            ``DyNAS-T/`` in the data cache, fetched there first if absent (dataset ``dynast-mbv3``).
        unique: Keep the first row of an arch that several files measured (files in name order).

    Returns:
        Columns ``arch`` (nastools arch dict with ``r``, not canonicalised), ``top1`` (%),
        ``macs``, ``params``, ``file`` (CSV name) and ``row`` (position in that file, i.e. search order).

    Raises:
        FileNotFoundError: No ``mbnv3w10_*.csv`` in ``folder``, or they cannot be fetched.

    Example:
        >>> rows = read_dynast_measurements("DyNAS-T")  # doctest: +SKIP
        >>> len(rows), rows.top1.max()  # doctest: +SKIP
        (2223, 77.47)
    """
    if folder is None:
        folder = fetch(DYNAST_DATA) / "DyNAS-T"
    paths = sorted(Path(folder).expanduser().glob("mbnv3w10_*.csv"))
    if not paths:
        raise FileNotFoundError(
            f"no DyNAS-T measurement files (mbnv3w10_*.csv) in {folder}; they come from {DYNAST_URL}"
        )
    frames = []
    for path in paths:
        raw = pd.read_csv(path)
        frames.append(
            pd.DataFrame(
                {
                    "config": raw["Sub-network"],
                    "top1": raw["Top-1 Acc (%)"].astype(float),
                    "macs": raw["MACs"].astype("int64"),
                    "params": raw["Model Parameters"].astype("int64"),
                    "file": path.name,
                    "row": range(len(raw)),
                }
            )
        )
    table = pd.concat(frames, ignore_index=True)
    if unique:
        table = table.drop_duplicates("config").reset_index(drop=True)
    table.insert(0, "arch", [arch_from_ofa_config(c) for c in table.pop("config")])
    return table
