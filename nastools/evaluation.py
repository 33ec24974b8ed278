"""Measure sub-networks: task metrics, proxies, and latency, memory, energy per hardware, into the store."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn
from tqdm.auto import tqdm

from nastools.hardware import LATENCY_MS, MEASURERS, Hardware, busy_cores, resolve_hardware, timing_noise
from nastools.metrics import Metric
from nastools.objectives import Objective, column_label, parse_objectives
from nastools.proxies import naswot
from nastools.space import Arch
from nastools.store import ResultStore
from nastools.supernet import Supernet

__all__ = ["BUSY_CORES", "COLUMNS", "NOISY_TIMING", "BusyMachineWarning", "Evaluator", "wide"]

#: Cores kept busy by other processes from which timed latency is called noise.
BUSY_CORES = 0.5
#: Relative spread of :func:`~nastools.hardware.timing_noise`'s probe from which timing is called noisy
#: (the threshold above which a latency measurement is flagged).
NOISY_TIMING = 0.1


class BusyMachineWarning(UserWarning):
    """Latency (or energy) measured now would be noise: other processes use the cores, or the host's cache."""


#: Columns of the long table :meth:`Evaluator.measure` returns.
COLUMNS = ["arch", "metric", "hardware", "host", "kind", "value", "spread", "repeats", "flagged", "reused"]

# Proxies first: the task metric recalibrates batch norm in place, and proxies must not see that.
_ORDER = {"proxy": 0, "validation": 1, "prediction": 1}


def _as_list(items: object, what: str) -> list:
    """A bare string or single item as a one-item list; a list as it is."""
    if items is None:
        return []
    if isinstance(items, (str, Hardware, Objective)):
        return [items]
    try:
        return list(items)
    except TypeError:
        raise ValueError(f"{what} must be a list, got {items!r}") from None


class Evaluator:
    """Measures archs of one supernet, every measurement stored as it is made.

    A measurement already in the store (same supernet, checkpoint, canonical arch, metric,
    hardware and, for measured latency, host) is reused instead of repeated, so an interrupted run
    resumes where it stopped. A sub-network is extracted only when a metric needs the module, at
    most once per arch: MACs and parameters counted in closed form, a surrogate's prediction and
    look-up-table latencies come from the arch alone.

    Metrics are the supernet's declared task metrics (``top1``, ``perplexity`` ...), stored with
    kind ``validation`` (or ``prediction`` for a surrogate), the proxies ``macs``, ``params`` and
    ``naswot`` (kind ``proxy``), and the per-hardware metrics ``latency_ms``, ``peak_memory_mb`` and
    ``energy_mj`` on every hardware target given: each target measures the metric asked for with
    its measurer (:data:`~nastools.hardware.MEASURERS`), and a target that cannot give it (a
    look-up table asked for memory, energy without a readable counter) is a one-line error before
    anything is measured.

    Args:
        supernet: What to measure.
        store: A :class:`ResultStore`, a path to one, or None to keep nothing.
        min_run_time: Seconds of timed runs per latency measurement (``torch.utils.benchmark``).
            Memory and energy use their measurers' defaults (3 profiled calls; 1 s of metered calls,
            which an energy counter's resolution needs).
        max_relative_spread: Latency whose IQR/median exceeds this is flagged.
        progress: Show a tqdm bar that advances with every measurement.
        latency_rounds: Latencies of up to ``latency_group`` archs are timed together, interleaved
            in this many rounds (:func:`~nastools.hardware.measure_latencies`), so that a busy
            phase of the machine does not land on a few archs only.
        latency_group: How many sub-networks are timed together (they are held in memory).
        naswot_batch_size: Inputs of the batch NASWOT scores.
        busy_interval: Before timing latency or metering energy (not before memory, which other
            processes do not change), watch the cores this many seconds, then time a fixed
            probe as long (:func:`~nastools.hardware.timing_noise`); when other processes keep at
            least :data:`BUSY_CORES` busy, or the probe varies by more than :data:`NOISY_TIMING`
            (other machines on a shared host), warn (:class:`BusyMachineWarning`): what is timed
            then is noise. 0 skips the check.

    Example:
        >>> evaluator = Evaluator(load_supernet("digits-mbv3"), "results.sqlite")  # doctest: +SKIP
        >>> archs = evaluator.supernet.space.sample(4, rng=0)  # doctest: +SKIP
        >>> evaluator.measure(archs, ["top1", "macs", "latency_ms"], ["cpu-t1-b1"])  # doctest: +SKIP
    """

    def __init__(
        self,
        supernet: Supernet,
        store: ResultStore | str | Path | None = None,
        *,
        min_run_time: float = 0.1,
        max_relative_spread: float = 0.1,
        progress: bool = True,
        latency_rounds: int = 5,
        latency_group: int = 25,
        naswot_batch_size: int = 64,
        busy_interval: float = 0.3,
    ) -> None:
        if not isinstance(supernet, Supernet):
            raise ValueError(
                f"Evaluator needs a nastools Supernet, got {type(supernet).__name__}; "
                "load one with nastools.supernet.load_supernet(name)"
            )
        for name, value in (("min_run_time", min_run_time), ("max_relative_spread", max_relative_spread)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name, value in (
            ("latency_rounds", latency_rounds),
            ("latency_group", latency_group),
            ("naswot_batch_size", naswot_batch_size),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if naswot_batch_size < 2:
            raise ValueError(f"naswot_batch_size must be at least 2, got {naswot_batch_size}")
        if store is not None and not isinstance(store, (ResultStore, str, Path)):
            raise ValueError(
                f"store must be a ResultStore, the path of one, or None, got {type(store).__name__} "
                f"({store!r})"
            )
        self.supernet = supernet
        self.store = ResultStore(store) if isinstance(store, (str, Path)) else store
        self.timing = {"min_run_time": float(min_run_time), "max_relative_spread": float(max_relative_spread)}
        self.latency_rounds = int(latency_rounds)
        self.latency_group = int(latency_group)
        self.naswot_batch_size = int(naswot_batch_size)
        self.progress = progress
        #: Fresh measurements made (not read from the store), and how many were flagged (latency).
        self.n_measured = 0
        self.n_flagged = 0
        #: Seconds the busy-machine check watches the cores before latency is timed (0: no check).
        self.busy_interval = float(busy_interval)
        #: Cores other processes kept busy at the last check (None: not checked or unknown).
        self.busy: float | None = None
        #: The probe's relative spread at the last check (None: not checked, or the cores were busy).
        self.timing_noise: float | None = None
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        return f"Evaluator({self.supernet.supernet_id!r}, store={self.store})"

    # --- what can be measured ---------------------------------------------------------------------

    def metrics(self, names: Iterable[str] | str | None = None) -> list[Metric]:
        """The :class:`~nastools.metrics.Metric` of each name (default: task metrics, MACs, params).

        Raises:
            ValueError: A name the supernet has no metric for (the ones it has are listed).
        """
        if names is None:
            return [*self.supernet.metrics, self.supernet.metric("macs"), self.supernet.metric("params")]
        return [self.supernet.metric(name) for name in dict.fromkeys(_as_list(names, "metrics"))]

    def hardware(self, hardware: Iterable[Hardware | str] | Hardware | str) -> list[Hardware]:
        """Targets resolved (keys parsed, look-up tables from the supernet), validated, duplicates dropped.

        Raises:
            ValueError: A malformed key, a table the supernet lacks, or a target this machine cannot run.
        """
        targets: dict[str, Hardware] = {}
        for item in _as_list(hardware, "hardware"):
            target = resolve_hardware(item, self.supernet)
            target.validate()
            targets.setdefault(target.key, target)
        return list(targets.values())

    def free(self, objectives: Iterable[Objective] | Mapping[str, str]) -> dict[str, Callable]:
        """Functions for the objectives that cost no validation: closed-form proxies and table latency.

        Memory and energy are never free: they are measured on the sub-network.

        Searches on predictors compute these exactly instead of predicting them.

        Returns:
            ``{objective label: fn(archs) -> values}`` for the objectives that qualify.
        """
        supernet = self.supernet
        functions: dict[str, Callable] = {}
        for objective in parse_objectives(objectives):
            metric = supernet.metric(objective.metric)
            if metric.per_hardware and objective.hardware is not None:
                target = resolve_hardware(objective.hardware, supernet)
                if not target.needs_subnet and metric.name in target.metrics:
                    functions[objective.label] = _table_values(target, metric.name, supernet)
            elif objective.metric in ("macs", "params") and not supernet.needs_subnet(objective.metric):
                count = getattr(supernet, objective.metric)
                functions[objective.label] = lambda archs, count=count: [float(count(a)) for a in archs]
        return functions

    def proxy_features(self, metrics: Iterable[str] | str = ("params", "macs")) -> Callable:
        """``fn(archs) -> array (n, len(metrics))`` of proxies, for predictors' extra features.

        Only proxies that cost no forward pass qualify (closed-form MACs and parameters): a
        predictor runs on every arch an inner search visits.

        Raises:
            ValueError: A metric that is not such a proxy (``naswot`` needs each sub-network's forward
                pass: search on it as an objective instead).

        Example:
            >>> features = evaluator.proxy_features(["params"])  # doctest: +SKIP
            >>> make_predictor(space, "ridge", extra_features=features)  # doctest: +SKIP
        """
        names = _as_list(metrics, "metrics")
        for name in names:
            metric = self.supernet.metric(name)
            if metric.kind != "proxy" or name not in ("macs", "params") or self.supernet.needs_subnet(name):
                raise ValueError(
                    f"{name!r} cannot be a predictor feature of supernet {self.supernet.supernet_id!r}: only "
                    "closed-form macs and params cost no forward pass; search on it as an objective instead"
                )
        counts = [getattr(self.supernet, name) for name in names]

        def features(archs: Sequence[Arch]) -> np.ndarray:
            return np.array([[float(count(a)) for count in counts] for a in archs]).reshape(
                len(archs), len(counts)
            )

        features.__qualname__ = f"proxies[{','.join(names)}]"  # how a stored search's config names it
        return features

    # --- measuring ------------------------------------------------------------------------------------

    def values(
        self,
        archs: Sequence[Arch],
        objectives: Iterable[Objective] | Mapping[str, str],
        search_id: str | None = None,
    ) -> dict[str, np.ndarray]:
        """Measure ``objectives`` of ``archs``: one array per objective label, aligned with ``archs``."""
        objectives = parse_objectives(objectives)
        metrics = list(dict.fromkeys(o.metric for o in objectives))
        hardware = list(dict.fromkeys(o.hardware for o in objectives if o.hardware is not None))
        for objective in objectives:
            metric = self.supernet.metric(objective.metric)
            if metric.per_hardware != (objective.hardware is not None):
                need = (
                    "needs a hardware key, e.g. 'latency_ms@cpu-t1-b1'"
                    if metric.per_hardware
                    else (f"does not depend on hardware; drop '@{objective.hardware}'")
                )
                raise ValueError(f"objective {objective.label!r}: {objective.metric!r} {need}")
        table = self.measure(archs, metrics, hardware, search_id=search_id)
        if table.empty:  # no archs: wide() has no columns to give
            return {o.label: np.zeros(0, dtype=np.float64) for o in objectives}
        pivot = wide(table).set_index("arch")
        keys = [self.supernet.space.key(arch) for arch in archs]
        return {o.label: pivot.loc[keys, o.label].to_numpy(dtype=np.float64) for o in objectives}

    def measure(
        self,
        archs: Arch | Iterable[Arch],
        metrics: Iterable[str] | str | None = None,
        hardware: Iterable[Hardware | str] | Hardware | str = (),
        search_id: str | None = None,
    ) -> pd.DataFrame:
        """Measure ``metrics`` of ``archs`` (per-hardware metrics on every target in ``hardware``).

        Args:
            archs: One arch or several; duplicates (after canonicalisation) are measured once.
            metrics: Metric names (default: the task metrics, ``macs`` and ``params``).
            hardware: Targets or keys such as ``"cpu-t1-b1"`` or ``"lut-note10"``; needed for the
                per-hardware metrics (``latency_ms``, ``peak_memory_mb``, ``energy_mj``).
            search_id: Stored with new measurements.

        Returns:
            Long table: one row per unique arch, metric and hardware with the columns of
            :data:`COLUMNS` (``hardware`` ``""`` for metrics that do not depend on it, ``reused``
            True when the row came from the store). :func:`wide` pivots it.

        Raises:
            ValueError: For an arch outside the space, a metric the supernet has not, a bad hardware
                target, a per-hardware metric without hardware or one a target cannot give here (a
                look-up table asked for memory; energy without a readable counter), or a task metric
                the supernet cannot give now; raised before anything is measured or stored.
            FileNotFoundError: A file needed for a metric is missing (the message says where it comes
                from). Also raised before measuring.
        """
        space = self.supernet.space
        archs = [archs] if isinstance(archs, Mapping) else list(archs)
        keys = list(dict.fromkeys(space.key(arch) for arch in archs))  # validates every arch
        chosen = self.metrics(metrics)
        targets = self.hardware(hardware)
        per_hardware = [m for m in chosen if m.per_hardware]
        if per_hardware and not targets:
            raise ValueError(
                f"{per_hardware[0].name} needs at least one hardware target, e.g. hardware=['cpu-t1-b1']"
            )
        for metric in chosen:
            if metric in self.supernet.metrics:
                self.supernet.check_metric(metric.name)
        timed = [(m, t) for m in per_hardware for t in targets]
        for metric, target in timed:  # each target has this metric's measurer (an energy counter ...)
            target.check_metric(metric.name)
        static = sorted((m for m in chosen if not m.per_hardware), key=lambda m: _ORDER[m.kind])
        known = self._stored(keys, [(m, None) for m in static] + timed)
        todo = sum((k, m.name, "") not in known for k in keys for m in static)
        todo += sum((k, m.name, t.key) not in known for k in keys for m, t in timed)
        fresh: dict[tuple[str, str, str], dict] = {}
        if any(
            t.host() and _timing_sensitive(m.name) and (k, m.name, t.key) not in known
            for k in keys
            for m, t in timed
        ):
            self._check_quiet()
        bar = tqdm(
            total=todo,
            desc="measuring",
            disable=not self.progress or not todo,
            leave=False,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total} measurements "
            "[{elapsed}<{remaining}{postfix}]",
        )
        try:
            for start in range(0, len(keys), self.latency_group):
                group = keys[start : start + self.latency_group]
                subnets: dict[str, nn.Module] = {}
                for key in group:
                    missing = [m for m in static if (key, m.name, "") not in known]
                    if missing:
                        rows = self._measure_static(key, missing, search_id, subnets, bar)
                        fresh.update({(key, r["metric"], ""): r for r in rows})
                for metric, target in timed:
                    untimed = [key for key in group if (key, metric.name, target.key) not in known]
                    if untimed:
                        bar.set_postfix_str(f"{metric.name} {target.key}", refresh=False)
                        rows = self._measure_on_hardware(untimed, metric, target, search_id, subnets, bar)
                        fresh.update({(r["arch"], metric.name, target.key): r for r in rows})
                        bar.set_postfix_str("", refresh=False)
        finally:
            bar.close()
        slots = [(m.name, "") for m in static] + [(m.name, t.key) for m, t in timed]
        rows = [
            {**known[(key, *slot)], "reused": True}
            if (key, *slot) in known
            else {**fresh[(key, *slot)], "reused": False}
            for key in keys
            for slot in slots
        ]
        return pd.DataFrame([{c: row.get(c) for c in COLUMNS} for row in rows], columns=COLUMNS)

    def _check_quiet(self) -> None:
        """Before timing latency or metering energy: warn when other processes use cores, or timing varies.

        Each cause is warned of once per Evaluator (a search times latency every generation);
        :attr:`busy` and :attr:`timing_noise` hold the last check's readings.
        """
        if self.busy_interval <= 0:
            return
        busy = self.busy = busy_cores(self.busy_interval)
        what_to_do = (
            "measure on a quiet machine (or later), or search on look-up-table latency or MACs "
            "(notebooks/params/teaching.yaml)"
        )
        if busy is not None and busy >= BUSY_CORES:
            if "busy" in self._warned:
                return
            self._warned.add("busy")
            warnings.warn(
                f"{busy:.1f} of {os.cpu_count()} CPU cores are busy with other processes: latency timed now "
                f"is noise (it can read many times slower, and flagged); {what_to_do}",
                BusyMachineWarning,
                stacklevel=3,
            )
            return
        noise = self.timing_noise = timing_noise(self.busy_interval)
        if noise > NOISY_TIMING and "noisy" not in self._warned:
            self._warned.add("noisy")
            warnings.warn(
                f"timing on this machine is noisy: a fixed probe varies {noise:.1%} between runs (above "
                f"{NOISY_TIMING:.0%}) though no process here keeps a core busy, most likely other machines "
                f"using the host's shared cache; much latency timed now will be flagged; {what_to_do}",
                BusyMachineWarning,
                stacklevel=3,
            )

    def _stored(self, keys: list[str], slots: list[tuple[Metric, Hardware | None]]) -> dict:
        if self.store is None:
            return {}
        supernet = self.supernet
        known = {}
        for metric, target in slots:
            hardware, host = ("", "") if target is None else (target.key, target.host())
            found = self.store.lookup(
                supernet.supernet_id, supernet.checkpoint_hash, metric.name, hardware, keys, host
            )
            for key, row in found.items():
                known[(key, metric.name, hardware)] = row
        return known

    def _row(self, key: str, metric: Metric, value: float, search_id: str | None, **extra: object) -> dict:
        return {
            "supernet_id": self.supernet.supernet_id,
            "checkpoint_hash": self.supernet.checkpoint_hash,
            "arch": key,
            "metric": metric.name,
            "hardware": extra.get("hardware", ""),
            "host": extra.get("host", ""),
            "kind": metric.kind,
            "value": float(value),
            "spread": extra.get("spread"),
            "repeats": extra.get("repeats", 1),
            "flagged": int(bool(extra.get("flagged", False))),
            "timestamp": datetime.now(timezone.utc).isoformat(),
            "search_id": search_id,
        }

    def _subnet(self, key: str, subnets: dict[str, nn.Module]) -> nn.Module:
        if key not in subnets:
            subnets[key] = self.supernet.subnet(self.supernet.space.from_key(key))
        return subnets[key]

    def _measure_static(
        self, key: str, metrics: list[Metric], search_id: str | None, subnets: dict[str, nn.Module], bar: tqdm
    ) -> list[dict]:
        """Measure what needs no timing (task metrics, proxies) of one arch, storing each row as made."""
        supernet = self.supernet
        arch = supernet.space.from_key(key)
        rows = []
        for metric in metrics:
            subnet = self._subnet(key, subnets) if supernet.needs_subnet(metric.name) else None
            if metric.name == "macs":
                value = supernet.macs(arch, subnet=subnet)
            elif metric.name == "params":
                value = supernet.params(arch, subnet=subnet)
            elif metric.name == "naswot":
                value = naswot(
                    self._subnet(key, subnets), supernet.example_inputs(arch, self.naswot_batch_size)
                )
            else:
                value = supernet.evaluate(arch, metric.name, subnet=subnet)
            row = self._row(key, metric, value, search_id)
            if self.store is not None:
                self.store.add([row])
            rows.append(row)
            self.n_measured += 1
            bar.update()
        return rows

    def _options(self, metric: str) -> dict:
        """The Evaluator's settings for ``metric``'s measurer (latency: rounds, timing; others: defaults)."""
        if metric == LATENCY_MS:
            return {"rounds": self.latency_rounds, **self.timing}
        return {}

    def _measure_on_hardware(
        self,
        keys: list[str],
        metric: Metric,
        target: Hardware,
        search_id: str | None,
        subnets: dict[str, nn.Module],
        bar: tqdm,
    ) -> list[dict]:
        """``metric`` of the archs of ``keys`` as ``target`` measures it, stored as a group."""
        space = self.supernet.space
        archs = [space.from_key(key) for key in keys]
        modules = [self._subnet(key, subnets) if target.needs_subnet else None for key in keys]
        if target.needs_subnet:  # measured here: the bar advances inside the measurer
            done = 0.0

            def advance(fraction: float) -> None:
                nonlocal done
                fraction = min(fraction, len(keys) - done)  # no float drift past the group's share
                done += fraction
                bar.update(fraction)

            measurements = target.measure(
                metric.name, self.supernet, archs, modules, progress=advance, **self._options(metric.name)
            )
            advance(len(keys) - done)
        else:
            measurements = target.measure(metric.name, self.supernet, archs, modules)
            bar.update(len(keys))
        if len(measurements) != len(keys):
            raise ValueError(
                f"hardware {target.key!r} gave {len(measurements)} {metric.name} for {len(keys)} archs"
            )
        host = target.host()
        rows = [
            self._row(
                key,
                metric,
                m.value,
                search_id,
                hardware=target.key,
                host=host,
                spread=m.spread,
                repeats=m.repeats,
                flagged=m.flagged,
            )
            for key, m in zip(keys, measurements)
        ]
        if self.store is not None:
            self.store.add(rows)
        self.n_measured += len(rows)
        self.n_flagged += sum(bool(m.flagged) for m in measurements)
        return rows


def _timing_sensitive(metric: str) -> bool:
    """Whether other processes make ``metric`` noise (latency, energy), so the machine is checked first."""
    measurer = MEASURERS.get(metric)
    return measurer is None or measurer.timing_sensitive


def _table_values(target: Hardware, metric: str, supernet: Supernet) -> Callable:
    def values(archs: Sequence[Arch]) -> list[float]:
        return [m.value for m in target.measure(metric, supernet, list(archs), [None] * len(archs))]

    return values


def wide(measurements: pd.DataFrame) -> pd.DataFrame:
    """One row per arch, one column per metric (``latency_ms@cpu-t1-b1`` for per-hardware metrics)."""
    names = [column_label(m, h) for m, h in zip(measurements["metric"], measurements["hardware"])]
    table = measurements.assign(column=names).pivot_table(
        index="arch", columns="column", values="value", sort=False
    )
    table.columns.name = None
    return table.reset_index()
