"""The notebook application: sessions, trials, figures and the headless runner.

The library never imports this package; the notebooks in ``notebooks/``, the benchmarks and the
command line do. Every notebook writes to ``<out_dir>/<notebook>/`` and shares one store,
``<out_dir>/results.sqlite``, so a later notebook reuses every measurement an earlier one made.

Example:
    >>> exp = open_experiment("00_quickstart", "results/smoke", "digits-mbv3")  # doctest: +SKIP
    >>> objectives = exp.task_and("macs")  # doctest: +SKIP
    >>> settings = TacticSettings(pop_size=8, n_gen=5)  # doctest: +SKIP
    >>> tactic = build_tactic("concurrent", exp.space, objectives, 24, settings,
    ...                       exact=exp.evaluator.free(objectives))  # doctest: +SKIP
    >>> hv = exp.indicator(objectives)  # doctest: +SKIP
    >>> trace = run_recorded(tactic, exp.evaluator, "00-concurrent-s0", hv)  # doctest: +SKIP
"""

from nastools.experiments._session import STORE_NAME, Experiment, open_experiment
from nastools.experiments._trials import (
    TACTIC_KINDS,
    TacticSettings,
    TrialResults,
    build_tactic,
    collect_archs,
    history_archs,
    measure_targets,
    measured_archs,
    population_snapshots,
    run_recorded,
    run_trials,
)

__all__ = [
    "STORE_NAME",
    "TACTIC_KINDS",
    "Experiment",
    "TacticSettings",
    "TrialResults",
    "build_tactic",
    "collect_archs",
    "history_archs",
    "measure_targets",
    "measured_archs",
    "open_experiment",
    "population_snapshots",
    "run_recorded",
    "run_trials",
]
