"""Analysis shared by notebooks and benchmarks: traces, bounds, hardware transfer, tables, predictors."""

from nastools.analysis._bounds import hypervolume_indicator, reference_bounds
from nastools.analysis._predictors import (
    LEARNING_CURVE_COLUMNS,
    learning_curves,
    learning_summary,
    predicted_vs_actual,
    predictor_learning_curve,
    summarize_learning_curve,
    tau_table,
)
from nastools.analysis._tables import (
    best_by_run,
    embed_2d,
    front_mask,
    popdb_tables,
    space_summary,
    summary_table,
)
from nastools.analysis._traces import (
    hypervolume_at,
    hypervolume_curve,
    summarize_traces,
    traces_on_grid,
    validation_ratio,
    validations_to_reach,
)
from nastools.analysis._transfer import cross_hardware, latency_objectives, rank_agreement

__all__ = [
    "LEARNING_CURVE_COLUMNS",
    "best_by_run",
    "cross_hardware",
    "embed_2d",
    "front_mask",
    "hypervolume_at",
    "hypervolume_curve",
    "hypervolume_indicator",
    "latency_objectives",
    "learning_curves",
    "learning_summary",
    "popdb_tables",
    "predicted_vs_actual",
    "predictor_learning_curve",
    "rank_agreement",
    "reference_bounds",
    "space_summary",
    "summarize_learning_curve",
    "summarize_traces",
    "summary_table",
    "tau_table",
    "traces_on_grid",
    "validation_ratio",
    "validations_to_reach",
]
