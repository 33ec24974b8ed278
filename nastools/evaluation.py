"""Measure sub-networks: task metric, MACs, parameters and latency per hardware config, into the store."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from torch import nn
from tqdm.auto import tqdm

from nastools.hardware import HardwareConfig, LookupTableHardware, hardware_from_key, measure_latencies
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
        latency_rounds: Latencies of up to ``latency_group`` archs are timed together, interleaved
            in this many rounds (:func:`~nastools.hardware.measure_latencies`), so that a busy
            phase of the machine does not land on a few archs only. Each group's latencies are
            stored once the group is timed; everything else is stored as each arch is measured.
        latency_group: How many sub-networks are timed together (they are held in memory).
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
        latency_rounds: int = 5,
        latency_group: int = 25,
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
        if latency_rounds < 1 or latency_group < 1:
            raise ValueError(
                f"latency_rounds and latency_group must be >= 1, got {latency_rounds}, {latency_group}"
            )
        self.latency_rounds = latency_rounds
        self.latency_group = latency_group
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
        timed = [(m, hw) for m, hw in slots if isinstance(config_by_key.get(hw), HardwareConfig)]
        fresh: dict[tuple[str, str, str], dict] = {}
        bar = tqdm(total=len(keys), desc="measuring", unit="arch", disable=not self.progress, leave=False)
        for start in range(0, len(keys), self.latency_group):
            group = keys[start : start + self.latency_group]
            subnets: dict[str, nn.Module] = {}
            for key in group:
                missing = [slot for slot in slots if (key, *slot) not in known and slot not in timed]
                for row in self._measure_one(key, missing, search_id, subnets) if missing else []:
                    fresh[(key, row["metric"], row["hardware"])] = row
                if not timed:
                    bar.update()
            for metric, hw in timed:
                untimed = [key for key in group if (key, metric, hw) not in known]
                for row in self._time_latencies(untimed, config_by_key[hw], search_id, subnets):
                    fresh[(row["arch"], metric, hw)] = row
            if timed:
                bar.update(len(group))
        bar.close()
        rows = [
            {**known[slot], "reused": True} if slot in known else {**fresh[slot], "reused": False}
            for key in keys
            for slot in ((key, metric, hw) for metric, hw in slots)
        ]
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

    def _row(self, key: str, metric: str, hw: str, value: float, search_id: str | None, **extra) -> dict:
        return {
            "supernet_id": self.supernet.supernet_id,
            "checkpoint_hash": self.supernet.checkpoint_hash,
            "arch": key,
            "metric": metric,
            "hardware": hw,
            "value": float(value),
            "spread": extra.get("spread"),
            "repeats": extra.get("repeats", 1),
            "flagged": int(extra.get("flagged", False)),
            "timestamp": datetime.now(timezone.utc).isoformat(),
            "search_id": search_id,
        }

    def _subnet(self, key: str, subnets: dict[str, nn.Module]) -> nn.Module:
        if key not in subnets:
            subnets[key] = self.supernet.subnet(self.supernet.space.from_key(key))
        return subnets[key]

    def _measure_one(
        self,
        key: str,
        slots: list[tuple[str, str]],
        search_id: str | None,
        subnets: dict[str, nn.Module],
    ) -> list[dict]:
        """Measure what needs no timing (top1, MACs, params, table latencies) and store it."""
        supernet = self.supernet
        arch = supernet.space.from_key(key)
        rows = []
        for metric, hw in slots:
            subnet = self._subnet(key, subnets) if self._needs_subnet(metric, hw) else None
            spread = None
            if metric == "top1":
                value = supernet.evaluate(arch, subnet=subnet)
            elif metric == "macs":
                value = supernet.macs(arch, subnet=subnet)
            elif metric == "params":
                value = supernet.params(arch, subnet=subnet)
            else:
                value = self.latency_tables[hw].predict(arch, supernet.net.config)
                spread = 0.0
            rows.append(self._row(key, metric, hw, value, search_id, spread=spread))
        if self.store is not None:
            self.store.add(rows)
        self.n_measured += 1
        return rows

    def _time_latencies(
        self,
        keys: list[str],
        config: HardwareConfig,
        search_id: str | None,
        subnets: dict[str, nn.Module],
    ) -> list[dict]:
        """Time the sub-networks of ``keys`` on ``config``, interleaved, and store the rows."""
        if not keys:
            return []
        space = self.supernet.space
        timings = measure_latencies(
            [self._subnet(key, subnets) for key in keys],
            [self.supernet.input_shape(space.from_key(key)) for key in keys],
            config,
            rounds=self.latency_rounds,
            min_run_time=self.min_run_time,
            max_relative_spread=self.max_relative_spread,
        )
        rows = [
            self._row(
                key,
                "latency_ms",
                config.key,
                t.median_ms,
                search_id,
                spread=t.spread_ms,
                repeats=t.repeats,
                flagged=t.flagged,
            )
            for key, t in zip(keys, timings)
        ]
        if self.store is not None:
            self.store.add(rows)
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
