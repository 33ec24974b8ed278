"""Checks that a trained supernet makes a meaningful search problem, for any task (stored in its checkpoint).

One report for every family and task (:func:`supernet_report`): top-1, BLEU and perplexity are
checked by the same code through the :class:`~nastools.tasks._task.Task` protocol. This module imports
the trainer (for the largest arch trained alone); the trainer never imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau
from torch import nn
from tqdm.auto import tqdm

from nastools.space import Arch
from nastools.supernet import count_macs
from nastools.supernets._training import Recipe, TrainingConfig, prepare_inputs, train_supernet
from nastools.tasks._task import Task

__all__ = ["score", "supernet_report"]


class _PreparedSubnet(nn.Module):
    """A standalone sub-network that takes the task's inputs as they are: its arch's preparation first.

    The elastic network is held by a plain callable, not as a submodule, so that batch-norm
    recalibration of this module touches the sub-network's statistics only.
    """

    def __init__(self, subnet: nn.Module, prepare: Callable[[tuple], tuple]) -> None:
        super().__init__()
        self.subnet = subnet
        self.prepare = prepare

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.subnet(*self.prepare(inputs))


def score(
    network: nn.Module, task: Task, arch: Arch, *, draw: int | None = None, subnet: nn.Module | None = None
) -> float:
    """``task``'s held-out metric of ``arch``'s standalone sub-network, extracted from ``network``.

    Args:
        network: The trained elastic network.
        task: Its task.
        arch: The sub-network.
        draw: The task's evaluation draw (None: the fixed one).
        subnet: ``network.get_active_subnet(arch)``, if already extracted (images: its batch norm is
            recalibrated in place).
    """
    subnet = network.get_active_subnet(arch).eval() if subnet is None else subnet
    prepared = _PreparedSubnet(subnet, partial(prepare_inputs, network, arch=arch))
    return task.score(prepared, arch, draw=draw)


def _counted_macs(network: nn.Module, task: Task, arch: Arch, subnet: nn.Module) -> int:
    return count_macs(subnet, prepare_inputs(network, task.example_inputs(1), arch))


def supernet_report(
    network: nn.Module,
    task: Task,
    recipe: Recipe,
    config: TrainingConfig,
    n_random: int = 200,
    n_noise_archs: int = 20,
    n_draws: int = 3,
    seed: int = 1,
    train_standalone: bool = True,
    macs: Callable[[Arch], int] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Measure what makes the supernet a meaningful search problem, in the task's metric ``M``.

    * ``M_largest``, ``M_smallest`` and ``M_gap``: how much better the largest is than the smallest
      (``largest - smallest`` for a metric to maximise, ``smallest - largest`` for one to minimise:
      positive when the largest is better);
    * ``M_largest_standalone``: the largest arch trained alone with the same recipe, and
      ``largest_vs_standalone``: the weight-shared largest relative to it, oriented so that 1 is equal
      and above 1 means the weight-shared one is better (``largest / standalone`` for a metric to
      maximise, ``standalone / largest`` for one to minimise);
    * ``kendall_tau_M_macs``: Kendall tau between the metric and MACs over ``n_random`` random
      sub-networks, and ``kendall_tau_macs``: the same oriented so that positive means larger
      networks score better (equal to it for a metric to maximise), with the metric's spread;
    * evaluation noise: ``evaluation_noise_std``, the std of the metric over ``n_draws`` evaluation
      draws of the task (other calibration sets, other held-out subsamples), averaged over
      ``n_noise_archs`` archs, and ``noise_to_spread``, its ratio to the std across the random archs.

    Args:
        network: Trained elastic network (what :func:`~nastools.supernets._training.train_supernet`
            returns).
        task: Its task.
        recipe: The :class:`~nastools.supernets._training.Recipe` it was trained from.
        config: The :class:`~nastools.supernets._training.TrainingConfig` it was trained with (for
            the standalone reference).
        n_random: Random sub-networks for the tau and spread figures.
        n_noise_archs: Random archs (the first of the ``n_random``) evaluated on other draws.
        n_draws: Evaluation draws per arch for the noise figure.
        seed: Seed of the sampled archs.
        train_standalone: Also train the largest arch alone (the slowest part).
        macs: ``arch -> MACs`` (a family's closed form); default: counted on the extracted
            sub-network with the task's example input.
        progress: Show tqdm bars.

    Returns:
        The report: numbers, plus ``metric`` and ``direction`` naming what they measure.

    Raises:
        ValueError: ``n_random`` or ``n_draws`` is below 2 (no tau, no spread), ``n_noise_archs`` below 1.

    Example:
        >>> from nastools.supernets._training import train_supernet
        >>> from nastools.supernets.mobilenetv3._embedded import recipe
        >>> network, task, log = train_supernet(recipe())  # doctest: +SKIP
        >>> report = supernet_report(network, task, recipe(), recipe().training)  # doctest: +SKIP
        >>> report["top1_gap"], report["kendall_tau_macs"], report["noise_to_spread"]  # doctest: +SKIP
    """
    for argument, value, low in (
        ("n_random", n_random, 2),
        ("n_draws", n_draws, 2),
        ("n_noise_archs", n_noise_archs, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{argument} must be an integer >= {low}, got {value!r}")
    metric = task.metric
    name = metric.name
    better = 1.0 if metric.direction == "max" else -1.0
    rng = np.random.default_rng(seed)
    largest, smallest = network.max_arch(), network.min_arch()
    report: dict[str, Any] = {
        "metric": name,
        "direction": metric.direction,
        f"{name}_largest": score(network, task, largest),
        f"{name}_smallest": score(network, task, smallest),
    }
    report[f"{name}_gap"] = better * (report[f"{name}_largest"] - report[f"{name}_smallest"])
    archs = network.space.sample(n_random, rng)
    values, counted = [], []
    for arch in tqdm(archs, desc="random sub-networks", leave=False, disable=not progress):
        subnet = network.get_active_subnet(arch).eval()
        values.append(score(network, task, arch, subnet=subnet))
        counted.append(macs(arch) if macs is not None else _counted_macs(network, task, arch, subnet))
    tau = float(kendalltau(values, counted).statistic)
    report["n_random"] = n_random
    report[f"kendall_tau_{name}_macs"] = tau
    report["kendall_tau_macs"] = better * tau
    report[f"random_{name}_mean"] = float(np.mean(values))
    report[f"random_{name}_std"] = float(np.std(values))
    report[f"random_{name}_min"] = float(np.min(values))
    report[f"random_{name}_max"] = float(np.max(values))
    report["random_macs_min"] = int(np.min(counted))
    report["random_macs_max"] = int(np.max(counted))

    stds = [
        float(np.std([score(network, task, arch, draw=draw) for draw in range(n_draws)]))
        for arch in tqdm(archs[:n_noise_archs], desc="evaluation noise", leave=False, disable=not progress)
    ]
    report["evaluation_noise_std"] = float(np.mean(stds))
    spread = report[f"random_{name}_std"]  # zero only where every arch scores the same: no search problem
    report["noise_to_spread"] = report["evaluation_noise_std"] / spread if spread > 0 else float("inf")

    if train_standalone:
        alone, _, log = train_supernet(
            recipe, replace(config, strategy="standalone"), arch=largest, task=task, progress=progress
        )
        shared, standalone = report[f"{name}_largest"], score(alone, task, largest)
        report[f"{name}_largest_standalone"] = standalone
        report["largest_vs_standalone"] = shared / standalone if better > 0 else standalone / shared
        report["standalone_seconds"] = log["seconds"]
    return report
