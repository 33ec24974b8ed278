"""Does a Pareto front fall into groups by one parameter's value (the paper's Fig. 7)?

The paper's Transformer front falls into clusters by decoder layer count: along the cost axis, the
sub-networks with one decoder layer come first, then those with two, and so on. Here a front is
sorted by its cost and split into *segments*, the runs of consecutive points with the same value of
the parameter; the groups are contiguous when every value forms a single segment.
"""

from __future__ import annotations

import pandas as pd

from nastools.space import SearchSpace

__all__ = ["front_segments", "with_parameter"]


def with_parameter(table: pd.DataFrame, space: SearchSpace, parameter: str) -> pd.DataFrame:
    """``table`` with a column ``parameter``: the value of that parameter in each row's ``arch`` key.

    Args:
        table: Rows with an ``arch`` column of arch keys (a tactic's
            :meth:`~nastools.search.Tactic.results`).
        space: The space the keys belong to.
        parameter: One of ``space.names`` (the values of an inactive parameter are its canonical ones).

    Raises:
        ValueError: ``parameter`` is not a parameter of the space (the names are listed), or
            ``table`` already has a column of that name.

    Example:
        >>> space = SearchSpace({"layers": [1, 2], "width": [8, 16]})
        >>> table = pd.DataFrame({"arch": [space.key({"layers": 2, "width": 8})]})
        >>> with_parameter(table, space, "layers")["layers"].tolist()
        [2]
    """
    if parameter not in space.names:
        raise ValueError(
            f"{parameter!r} is not a parameter of the search space; its parameters are {list(space.names)}"
        )
    if parameter in table.columns:
        raise ValueError(
            f"the table already has a column {parameter!r}; rename it before grouping by the parameter"
        )
    values = [space.from_key(key)[parameter] for key in table["arch"]]
    return table.assign(**{parameter: values})


def front_segments(front: pd.DataFrame, group: str, cost: str) -> pd.DataFrame:
    """How the values of column ``group`` lie along ``front`` sorted by ``cost``.

    Args:
        front: The front's rows (any order), with the columns ``group`` and ``cost``.
        group: The column whose values define the groups (e.g. the decoder layer count).
        cost: The cost column the front is sorted by (latency, MACs).

    Returns:
        One row per value of ``group``, in the order of their cheapest point: ``group`` (the
        value), ``n_points``, ``segments`` (runs of consecutive points with that value along the
        cost axis: 1 means contiguous), ``cost_min`` and ``cost_max``.

    Raises:
        ValueError: A column is missing.

    Example:
        >>> front = pd.DataFrame({"latency_ms": [1.0, 2.0, 3.0, 4.0], "layers": [1, 1, 2, 1]})
        >>> front_segments(front, "layers", "latency_ms")[["layers", "n_points", "segments"]].values.tolist()
        [[1, 3, 2], [2, 1, 1]]
    """
    missing = [column for column in (group, cost) if column not in front.columns]
    if missing:
        raise ValueError(f"the front has no column(s) {missing}; its columns are {list(front.columns)}")
    ordered = front.sort_values(cost, kind="stable")
    values = ordered[group]
    run = (values != values.shift()).cumsum()  # a new segment where the value changes along the cost
    summary = (
        ordered.assign(_segment=run)
        .groupby(group, sort=False)
        .agg(
            n_points=(cost, "size"),
            segments=("_segment", "nunique"),
            cost_min=(cost, "min"),
            cost_max=(cost, "max"),
        )
        .reset_index()
    )
    return summary
