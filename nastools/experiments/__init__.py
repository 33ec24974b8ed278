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

import importlib
from typing import Any

# Loaded on first use, so that the command lines of this package (runner, quickstart) answer --help
# and argument errors before torch is imported.
_WHERE = {
    "STORE_NAME": "_session",
    "Experiment": "_session",
    "open_experiment": "_session",
    "TACTIC_KINDS": "_trials",
    "TacticSettings": "_trials",
    "TrialResults": "_trials",
    "build_tactic": "_trials",
    "front_segments": "_fronts",
    "with_parameter": "_fronts",
    "collect_archs": "_trials",
    "history_archs": "_trials",
    "measure_targets": "_trials",
    "measured_archs": "_trials",
    "population_snapshots": "_trials",
    "run_recorded": "_trials",
    "run_trials": "_trials",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, "plotting", "quickstart", "runner"])
