"""One notebook's run: its output folder, the shared store, the supernet and an evaluator."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nastools.analysis import hypervolume_indicator, latency_objectives
from nastools.evaluation import Evaluator
from nastools.experiments._trials import TacticSettings, build_tactic
from nastools.hardware import default_hardware_configs
from nastools.hypervolume import HypervolumeIndicator
from nastools.objectives import Objective, parse_objectives
from nastools.search import Tactic
from nastools.space import SearchSpace
from nastools.supernet import Supernet, load_supernet, supernet_options

__all__ = ["STORE_NAME", "Experiment", "open_experiment"]

#: The store every notebook of a sequence shares, inside ``out_dir``.
STORE_NAME = "results.sqlite"


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinite floats replaced by None: JSON has no NaN (``null`` is portable)."""
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if isinstance(value, np.ndarray):
        return _finite(value.tolist())
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


@dataclass
class Experiment:
    """One notebook's run: its output folder, the shared store, the supernet and an evaluator.

    Attributes:
        name: The notebook's name, e.g. ``"01_hardware_transfer"``; its files go to ``out_dir/name``.
        out_dir: The sequence's output root (holds the shared ``results.sqlite``).
        supernet: The loaded supernet.
        evaluator: Measures through the shared store.
        written: Every file written through :meth:`save_table`, :meth:`save_json`, :meth:`save_figure`.
    """

    name: str
    out_dir: Path
    supernet: Supernet
    evaluator: Evaluator
    written: list[Path] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        """``out_dir / name``, created on first use."""
        folder = self.out_dir / self.name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @property
    def space(self) -> SearchSpace:
        """The supernet's search space."""
        return self.supernet.space

    @property
    def store(self) -> Any:
        """The shared :class:`~nastools.store.ResultStore`."""
        return self.evaluator.store

    @property
    def task(self) -> Objective:
        """The supernet's first task metric as an objective (``top1`` max, ``perplexity`` min ...)."""
        metric = self.supernet.task_metric
        return Objective(metric.name, metric.direction)

    @property
    def task_kind(self) -> str:
        """``"measured"`` (validated for real) or ``"surrogate"`` (predicted, e.g. OFA's predictor)."""
        return "measured" if self.supernet.task_metric.kind == "validation" else "surrogate"

    @property
    def task_label(self) -> str:
        """How reports name the task metric: ``"top1 (%)"`` or ``"surrogate top1 (%)"``."""
        label = self.supernet.task_metric.label
        return label if self.task_kind == "measured" else f"surrogate {label}"

    def hardware(self, keys: Sequence[str] | str | None = None) -> list[str]:
        """``keys`` as a checked list (targets resolved for this supernet), or the machine's defaults.

        Raises:
            ValueError: A malformed key or a target the supernet or this machine cannot measure.
        """
        if keys is None:
            keys = [config.key for config in default_hardware_configs()]
        return [target.key for target in self.evaluator.hardware(keys)]

    def objectives(self, spec: Mapping[str, str] | Iterable[Objective]) -> tuple[Objective, ...]:
        """Parse ``spec`` and check every objective against the supernet (metric, hardware).

        Raises:
            ValueError: A metric the supernet has not (its metrics are listed), a latency without
                hardware, or hardware that cannot be measured.
        """
        objectives = parse_objectives(spec)
        for objective in objectives:
            metric = self.supernet.metric(objective.metric)
            if metric.per_hardware and objective.hardware is None:
                raise ValueError(
                    f"objective {objective.label!r} needs a hardware key, e.g. 'latency_ms@cpu-t1-b1'"
                )
            if not metric.per_hardware and objective.hardware is not None:
                raise ValueError(
                    f"objective {objective.label!r}: {metric.name!r} does not depend on hardware"
                )
            if objective.hardware is not None:
                self.evaluator.hardware(objective.hardware)
        return objectives

    def task_and(self, metric: str, hardware: str | None = None) -> tuple[Objective, Objective]:
        """The task objective and one cost (``"macs"``, or ``"latency_ms"`` on ``hardware``), minimised."""
        return self.objectives([self.task, Objective(metric, "min", hardware)])

    def indicator(
        self, objectives: Mapping[str, str] | Iterable[Objective], space: SearchSpace | None = None
    ) -> HypervolumeIndicator:
        """Hypervolume in the box of the (restricted) space's extremes or the metrics' declared bounds."""
        return hypervolume_indicator(self.evaluator, self.objectives(objectives), space=space)

    def stored_search(self, search_id: str, made_by: str) -> str:
        """``search_id`` when the shared store holds that search; else a one-line error saying what to run.

        Args:
            search_id: The id a notebook builds on (a parameter of that notebook).
            made_by: The notebook that stores it, e.g. ``"01_hardware_transfer"``.

        Raises:
            ValueError: The search is not in the store (the stored ids are listed).
        """
        if not self.store.has_search(search_id):
            stored = list(self.store.searches()["search_id"])[-8:]
            raise ValueError(
                f"search {search_id!r} is not in {self.store.path}: run notebook {made_by} first with the "
                f"same out_dir, or pass the id of a stored search (stored: {stored})"
            )
        return search_id

    def source_search(
        self,
        search_id: str | None,
        default: str,
        made_by: str,
        run: Callable[[str], object] | None = None,
    ) -> str:
        """The id of the search a notebook builds on, run here when it is the default one and missing.

        A notebook runs alone on its defaults: with ``search_id`` None it builds on the search another
        notebook stores as ``default``, and when the shared store lacks it, ``run(default)`` runs that
        same search here (same settings, same id: once stored, the other notebook reuses it, and a
        rerun measures nothing). A search named explicitly must be stored: no search is re-derived in
        place of one the user asked for.

        Args:
            search_id: The notebook's parameter (an id the user chose), or None.
            default: The id the other notebook stores the search under.
            made_by: That notebook, e.g. ``"01_hardware_transfer"`` (for the error message).
            run: Runs and records the default search under the id it is given.

        Raises:
            ValueError: ``search_id`` is not in the store (the stored ids are listed), or the default
                is missing and there is no ``run``.

        Example:
            >>> def run(search_id):
            ...     run_recorded(exp.latency_search("cpu-t1-b1", 24, settings), exp.evaluator, search_id)
            >>> default = "concurrent-cpu-t1-b1-s0"
            >>> exp.source_search(None, default, "01_hardware_transfer", run)  # doctest: +SKIP
            'concurrent-cpu-t1-b1-s0'
        """
        if search_id is not None or run is None or self.store.has_search(default):
            return self.stored_search(default if search_id is None else search_id, made_by)
        run(default)
        return self.stored_search(default, made_by)

    def settings_for(
        self,
        settings: TacticSettings,
        objectives: Iterable[Objective],
        predictor: str | Mapping[str, str] | None = None,
    ) -> TacticSettings:
        """``settings`` with the predictor kinds of a search on ``objectives``, keyed as the search needs.

        A notebook's ``predictor`` parameter holds for all its searches: one kind for every predicted
        objective (``"svr"``), or kinds by metric (``{"bleu": "svr"}``, the paper's setting for HAT;
        the latency predictor is then chosen as by default), whatever hardware each search's latency
        is on. A search's predictors are keyed by objective label (``latency_ms@cpu-t1-b1``), so
        metric names become the labels of ``objectives``; a metric the search does not have is left
        out (a search of BLEU against MACs fits no latency predictor).

        Args:
            settings: The notebook's shared settings.
            objectives: The search's objectives.
            predictor: A kind (:data:`~nastools.predictors.PREDICTOR_KINDS`), ``{metric or label: kind}``,
                or None (``settings`` unchanged: each tactic's default).

        Raises:
            ValueError: A key that is neither a metric of the supernet nor a label of ``objectives``
                (a typo is never ignored), or ``predictor`` of another type.

        Example:
            >>> objectives = latency_objectives(exp.task, "cpu-t1-b1")  # doctest: +SKIP
            >>> exp.settings_for(TacticSettings(), objectives, {"bleu": "svr"}).predictor  # doctest: +SKIP
            {'bleu': 'svr'}
        """
        if predictor is None or isinstance(predictor, str):
            return settings if predictor is None else replace(settings, predictor=predictor)
        if not isinstance(predictor, Mapping):
            raise ValueError(
                "predictor is a kind (e.g. 'svr') or {metric: kind} (e.g. {'bleu': 'svr'}), "
                f"got {predictor!r}"
            )
        objectives = list(objectives)
        labels = {o.label for o in objectives}
        for key in predictor:
            if key not in labels:
                self.supernet.metric(key)  # raises naming the supernet's metrics
        # a kind given for the label wins over the metric's
        kinds = {
            o.label: predictor[key] for o in objectives for key in (o.metric, o.label) if key in predictor
        }
        return replace(settings, predictor=kinds or None)

    def latency_search(
        self,
        hardware: str,
        budget: int,
        settings: TacticSettings,
        seed: int = 0,
        predictor: str | Mapping[str, str] | None = None,
    ) -> Tactic:
        """ConcurrentNAS on the task metric vs latency on ``hardware``: notebook 01's search of that config.

        Notebooks that build on it (02's and 03's warm starts) run the same search when they run alone.
        ``predictor`` is the notebook's parameter (see :meth:`settings_for`).
        """
        objectives = latency_objectives(self.task, hardware)
        return build_tactic(
            "concurrent",
            self.space,
            objectives,
            budget,
            self.settings_for(settings, objectives, predictor),
            seed=seed,
            exact=self.evaluator.free(objectives),
        )

    def latency_flags(self) -> dict[str, int]:
        """Timed latency measurements of this supernet in the store: how many, and how many flagged noisy."""
        rows = self.store.measurements(
            supernet_id=self.supernet.supernet_id,
            checkpoint_hash=self.supernet.checkpoint_hash,
            metric="latency_ms",
        )
        rows = rows[rows["host"] != ""]  # look-up tables are never noisy
        return {
            "latency_measured": int(len(rows)),
            "latency_flagged": int(rows["flagged"].sum()) if len(rows) else 0,
        }

    def latency_note(self) -> str:
        """A findings line on how trustworthy the timed latency is ('' when nothing was timed)."""
        counts = self.latency_flags()
        measured, flagged = counts["latency_measured"], counts["latency_flagged"]
        if not measured:
            return ""
        verdict = (
            "none was noisy"
            if not flagged
            else "measured on a busy machine (or a shared host whose other machines used its cache: the "
            "Evaluator's BusyMachineWarning says which) they can rank sub-networks wrongly: rerun on a quiet "
            "machine, or use the teaching profile (look-up tables, MACs)"
        )
        return (
            f"\n* Latency: **{flagged} of {measured}** timed measurements in the store are flagged noisy "
            f"(spread over 10% of the median); {verdict}."
        )

    def save_table(self, table: pd.DataFrame, name: str) -> Path:
        """Write ``table`` as ``<folder>/<name>.csv`` (no index) and return the path."""
        path = self.folder / f"{name}.csv"
        table.to_csv(path, index=False)
        self.written.append(path)
        return path

    def save_json(self, data: Mapping[str, Any], name: str) -> Path:
        """Write ``data`` as ``<folder>/<name>.json`` (numpy values converted, NaN as null); return the path.

        ``task_metric`` and ``task_kind`` (``"measured"`` or ``"surrogate"``) are added, so that
        numbers from a surrogate such as OFA's accuracy predictor are never read as measured.
        """
        path = self.folder / f"{name}.json"
        data = {
            "supernet": self.supernet.supernet_id,
            "task_metric": self.task.metric,
            "task_kind": self.task_kind,
            **self.latency_flags(),
            **data,
        }
        path.write_text(json.dumps(_finite(data), indent=2, default=_json_default, allow_nan=False) + "\n")
        self.written.append(path)
        return path

    def save_figure(self, figure: Any, name: str) -> Path:
        """Write a matplotlib figure as ``<folder>/<name>.png`` and return the path."""
        path = self.folder / f"{name}.png"
        figure.savefig(path, dpi=120, bbox_inches="tight")
        self.written.append(path)
        return path


def _takes_data_dir(name: str) -> bool:
    """Whether the factory of supernet ``name`` takes a ``data_dir`` option (any keyword: yes).

    A checkpoint path carries its own weights: its reader gets no ``data_dir`` (which the notebooks
    pass whenever one is set, e.g. by ``--set data_dir=...`` for a whole sequence).
    """
    accepted = supernet_options(name)
    if accepted is not None:
        return "data_dir" in accepted
    path = Path(name).expanduser()
    return not (path.suffix == ".pt" or path.is_file())


def open_experiment(
    name: str,
    out_dir: str | Path,
    supernet: str | Supernet,
    *,
    data_dir: str | Path | None = None,
    store: str | Path | None = None,
    progress: bool = True,
    evaluator_options: Mapping[str, Any] | None = None,
) -> Experiment:
    """Load ``supernet`` and open the shared store ``out_dir/results.sqlite`` for notebook ``name``.

    Args:
        name: Output sub-folder (the notebook's name).
        out_dir: Output root shared by the notebooks of a sequence.
        supernet: Any name :func:`~nastools.supernet.load_supernet` accepts (a built-in name, a
            ``"package.module:factory"`` string, a checkpoint path) or a loaded supernet.
        data_dir: Folder of public files a supernet may use (the OFA supernets' accuracy predictor
            and latency tables); passed to factories that take a ``data_dir`` option.
        store: The store's path (default ``out_dir/results.sqlite``, shared by a sequence).
        progress: The Evaluator's progress bar, which advances with every measurement.
        evaluator_options: Extra :class:`~nastools.evaluation.Evaluator` arguments.

    Example:
        >>> exp = open_experiment("00_quickstart", "results", "digits-mbv3")  # doctest: +SKIP
        >>> ofa = open_experiment("00_quickstart", "results-ofa", "ofa-mbv3-w1.2",
        ...                       data_dir="../shared/data")  # doctest: +SKIP
    """
    root = Path(out_dir).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    options = {}
    if data_dir is not None and not isinstance(supernet, Supernet) and _takes_data_dir(str(supernet)):
        options["data_dir"] = data_dir
    net = load_supernet(supernet, **options)
    path = Path(store).expanduser() if store is not None else root / STORE_NAME
    evaluator = Evaluator(net, path, progress=progress, **dict(evaluator_options or {}))
    return Experiment(name=name, out_dir=root, supernet=net, evaluator=evaluator)
