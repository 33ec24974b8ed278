"""Measure sub-networks: task metric, MACs, parameters and latency per hardware config, into the store."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from nastools.hardware import HardwareConfig, LookupTableHardware, hardware_from_key, measure_latency
from nastools.lut import LatencyTable, missing_table_message
from nastools.store import ResultStore
from nastools.supernets import Supernet

__all__ = ["HARDWARE_METRICS", "METRICS", "Evaluator", "wide"]

#: Metrics that do not depend on the hardware (stored with hardware ``""``).
STATIC_METRICS = ("top1", "macs", "params")
#: Metrics measured per hardware config.
HARDWARE_METRICS = ("latency_ms",)
METRICS = STATIC_METRICS + HARDWARE_METRICS

COLUMNS = ["arch", "metric", "hardware", "value", "spread", "repeats", "flagged", "reused"]


class Evaluator:
    """Measures archs of one supernet, every measurement stored as it is made.

    A measurement already in the store (same supernet, checkpoint, canonical arch, metric and
    hardware) is reused instead of repeated, so an interrupted run resumes where it stopped. A
    sub-network is extracted only when a metric needs the module (measured top1, measured latency),
    at most once per arch: MACs, parameters, a surrogate top1 and look-up-table latencies come from
    the arch alone.

    Args:
        supernet: What to measure.
        store: A :class:`ResultStore`, a path to one, or None to keep nothing.
        min_run_time: Seconds of timed runs per latency measurement (``torch.utils.benchmark``).
        max_relative_spread: Latency whose IQR/median exceeds this is flagged.
        progress: Show a tqdm bar.
        latency_tables: For look-up-table hardware keys (``lut-note10``, ``lut-i7-8700k``, see
            :mod:`nastools.lut`): key to a :class:`~nastools.lut.LatencyTable` or the path of its
            files (read when first needed). Their latencies are stored with spread 0 and 1 repeat.

    Example:
        >>> evaluator = Evaluator(load_supernet(), "results.sqlite")  # doctest: +SKIP
        >>> archs = evaluator.supernet.space.sample(4, rng=0)  # doctest: +SKIP
        >>> evaluator.measure(archs, ["top1", "latency_ms"], ["cpu-t1-b1"])  # doctest: +SKIP
        >>> ofa = Evaluator(load_supernet("ofa-mbv3-w1.2", ofa_data="CompOFA"), "ofa.sqlite",
        ...                 latency_tables={"lut-note10": "CompOFA/latency_table@note10"})  # doctest: +SKIP
        >>> ofa.measure(archs, ["top1", "macs", "latency_ms"], ["lut-note10"])  # doctest: +SKIP
    """

    def __init__(
        self,
        supernet: Supernet,
        store: ResultStore | str | Path | None = None,
        *,
        min_run_time: float = 0.1,
        max_relative_spread: float = 0.1,
        progress: bool = True,
        latency_tables: Mapping[str, LatencyTable | str | Path] | None = None,
    ) -> None:
        self.supernet = supernet
        self.store = ResultStore(store) if isinstance(store, (str, Path)) else store
        self.min_run_time = min_run_time
        self.max_relative_spread = max_relative_spread
        self.progress = progress
        self.latency_tables: dict[str, LatencyTable | str | Path] = dict(latency_tables or {})
        for key in self.latency_tables:
            LookupTableHardware.from_key(key)  # a table only makes sense for a lut-<platform> key
        self._checked_tables: set[str] = set()
        self.n_measured = 0

    def measure(
        self,
        archs: Mapping[str, int] | Iterable[Mapping[str, int]],
        metrics: Sequence[str] = STATIC_METRICS,
        hardware: Sequence[HardwareConfig | LookupTableHardware | str] = (),
        search_id: str | None = None,
    ) -> pd.DataFrame:
        """Measure ``metrics`` of ``archs`` (latency on every config in ``hardware``).

        Args:
            archs: One arch or several; duplicates (after canonicalisation) are measured once.
            metrics: Names from :data:`METRICS`.
            hardware: Configs or keys such as ``"cpu-t1-b1"`` or ``"lut-note10"``; needed for
                ``latency_ms``.
            search_id: Stored with new measurements.

        Returns:
            Long table: one row per unique arch, metric and hardware with columns ``arch`` (key),
            ``metric``, ``hardware`` (``""`` for static metrics), ``value``, ``spread``, ``repeats``,
            ``flagged`` and ``reused`` (True when it came from the store). :func:`wide` pivots it.

        Raises:
            ValueError: For an arch outside the space, an unknown metric, a bad hardware config,
                ``latency_ms`` without hardware, a look-up table that lacks the supernet's layers, or
                ``top1`` of a supernet that cannot give it; raised before anything is measured or stored.
            FileNotFoundError: A file needed for ``top1`` (OFA's accuracy predictor) or a look-up
                table is missing; the message says where it comes from. Also raised before measuring.
        """
        space = self.supernet.space
        archs = [archs] if isinstance(archs, Mapping) else list(archs)
        keys = list(dict.fromkeys(space.key(arch) for arch in archs))  # validates every arch
        metrics = list(dict.fromkeys(metrics))
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; valid metrics are {list(METRICS)}")
        configs = [hardware_from_key(h) if isinstance(h, str) else h for h in hardware]
        for config in configs:
            config.validate()
        if any(m in HARDWARE_METRICS for m in metrics) and not configs:
            raise ValueError("latency_ms needs at least one hardware config, e.g. hardware=['cpu-t1-b1']")
        if "top1" in metrics:
            self._check_top1()
        if any(m in HARDWARE_METRICS for m in metrics):
            for config in configs:
                if isinstance(config, LookupTableHardware):
                    self._latency_table(config.key)
        slots = [(m, "") for m in metrics if m in STATIC_METRICS]
        slots += [(m, c.key) for m in metrics if m in HARDWARE_METRICS for c in configs]
        config_by_key = {c.key: c for c in configs}

        known = self._stored(keys, slots)
        rows: list[dict] = []
        bar = tqdm(keys, desc="measuring", unit="arch", disable=not self.progress, leave=False)
        for key in bar:
            missing = [slot for slot in slots if (key, *slot) not in known]
            new_rows = self._measure_one(key, missing, config_by_key, search_id) if missing else []
            fresh = {(row["metric"], row["hardware"]): row for row in new_rows}
            for metric, hw in slots:
                if (key, metric, hw) in known:
                    rows.append({**known[(key, metric, hw)], "reused": True})
                else:
                    rows.append({**fresh[(metric, hw)], "reused": False})
        return pd.DataFrame([{c: row.get(c) for c in COLUMNS} for row in rows], columns=COLUMNS)

    def _check_top1(self) -> None:
        check = getattr(self.supernet, "check_top1", None)
        if check is not None:
            check()
        elif self.supernet.checkpoint_hash == "untrained":
            raise ValueError(f"supernet {self.supernet.supernet_id!r} is untrained: top1 cannot be measured")

    def _latency_table(self, key: str) -> LatencyTable:
        """The loaded table for a ``lut-`` key, checked against the supernet (cached)."""
        source = self.latency_tables.get(key)
        if source is None:
            raise ValueError(missing_table_message(key))
        if isinstance(source, LatencyTable) and key in self._checked_tables:
            return source
        table = source if isinstance(source, LatencyTable) else LatencyTable.load(source, name=key)
        config = getattr(getattr(self.supernet, "net", None), "config", None)
        if config is None:
            raise ValueError(
                f"hardware {key!r} is a MobileNetV3 look-up table; supernet "
                f"{self.supernet.supernet_id!r} is not an (OFA) MobileNetV3 supernet"
            )
        table.check(config)
        self.latency_tables[key] = table
        self._checked_tables.add(key)
        return table

    def _needs_subnet(self, metric: str, hardware: str) -> bool:
        if metric in HARDWARE_METRICS and hardware.startswith("lut-"):
            return False
        needs = getattr(self.supernet, "needs_subnet", None)
        return True if needs is None else bool(needs(metric))

    def _stored(self, keys: list[str], slots: list[tuple[str, str]]) -> dict:
        if self.store is None:
            return {}
        supernet = self.supernet
        known = {}
        for metric, hw in slots:
            found = self.store.lookup(supernet.supernet_id, supernet.checkpoint_hash, metric, hw, keys)
            for key, row in found.items():
                known[(key, metric, hw)] = row
        return known

    def _measure_one(
        self,
        key: str,
        slots: list[tuple[str, str]],
        configs: Mapping[str, HardwareConfig | LookupTableHardware],
        search_id: str | None,
    ) -> list[dict]:
        supernet = self.supernet
        arch = supernet.space.from_key(key)
        extracted = None
        timestamp = datetime.now(timezone.utc).isoformat()
        rows = []
        for metric, hw in slots:
            spread, repeats, flagged = None, 1, False
            subnet = None
            if self._needs_subnet(metric, hw):
                extracted = supernet.subnet(arch) if extracted is None else extracted
                subnet = extracted
            if metric == "top1":
                value = supernet.evaluate(arch, subnet=subnet)
            elif metric == "macs":
                value = supernet.macs(arch, subnet=subnet)
            elif metric == "params":
                value = supernet.params(arch, subnet=subnet)
            elif hw.startswith("lut-"):
                value = self.latency_tables[hw].predict(arch, supernet.net.config)
                spread = 0.0
            else:
                latency = measure_latency(
                    subnet,
                    supernet.input_shape(arch),
                    configs[hw],
                    min_run_time=self.min_run_time,
                    max_relative_spread=self.max_relative_spread,
                )
                value, spread = latency.median_ms, latency.spread_ms
                repeats, flagged = latency.repeats, latency.flagged
            rows.append(
                {
                    "supernet_id": supernet.supernet_id,
                    "checkpoint_hash": supernet.checkpoint_hash,
                    "arch": key,
                    "metric": metric,
                    "hardware": hw,
                    "value": float(value),
                    "spread": spread,
                    "repeats": repeats,
                    "flagged": int(flagged),
                    "timestamp": timestamp,
                    "search_id": search_id,
                }
            )
        if self.store is not None:
            self.store.add(rows)
        self.n_measured += 1
        return rows


def wide(measurements: pd.DataFrame) -> pd.DataFrame:
    """One row per arch, one column per metric (``latency_ms@cpu-t1-b1`` for per-hardware metrics)."""
    names = measurements["metric"].where(
        measurements["hardware"] == "", measurements["metric"] + "@" + measurements["hardware"]
    )
    table = measurements.assign(column=names).pivot_table(
        index="arch", columns="column", values="value", sort=False
    )
    table.columns.name = None
    return table.reset_index()
