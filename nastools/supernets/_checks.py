"""Checks that a trained image supernet makes a meaningful search problem (stored in its checkpoint)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from scipy.stats import kendalltau
from tqdm.auto import tqdm

from nastools.supernet import count_macs
from nastools.supernets._image import recalibrate_batchnorm, resize, top1_accuracy
from nastools.tasks.digits import ImageTask, distort

__all__ = ["supernet_report"]


def _top1(
    net: torch.nn.Module,
    task: ImageTask,
    arch: dict,
    calibration_x: torch.Tensor,
    subnet: torch.nn.Module | None = None,
) -> float:
    resolution = net.resolution(arch)
    subnet = net.get_active_subnet(arch).eval() if subnet is None else subnet
    recalibrate_batchnorm(subnet, resize(calibration_x, resolution))
    return top1_accuracy(subnet, resize(task.test_x, resolution), task.test_y)


def supernet_report(
    net: torch.nn.Module,
    task: ImageTask,
    recipe,
    config,
    n_random: int = 200,
    n_noise_archs: int = 20,
    n_calibration_draws: int = 3,
    seed: int = 1,
    train_standalone: bool = True,
) -> dict:
    """Measure what makes the supernet a meaningful search problem.

    * ``top1_largest``, ``top1_smallest`` and their gap;
    * ``top1_largest_standalone``: the largest arch trained alone with the same recipe, and the ratio;
    * Kendall tau between top-1 and MACs over ``n_random`` random sub-networks, with their spread;
    * evaluation noise: std of top-1 over ``n_calibration_draws`` independently drawn calibration sets,
      averaged over ``n_noise_archs`` archs, against the std of top-1 across archs.

    Args:
        net: Trained elastic network (what :func:`~nastools.training.train_supernet` returns).
        task: Its task.
        recipe: The :class:`~nastools.training.Recipe` it was trained from.
        config: The :class:`~nastools.training.TrainingConfig` it was trained with (for the
            standalone reference).
        n_random: Random sub-networks for the tau and spread figures.
        n_noise_archs: Archs re-evaluated with other calibration sets.
        n_calibration_draws: Calibration sets drawn per arch for the noise figure.
        seed: Seed of the sampled archs and calibration sets.
        train_standalone: Also train the largest arch alone (the slowest part).
    """
    from nastools.training import train_supernet

    rng = np.random.default_rng(seed)
    largest, smallest = net.max_arch(), net.min_arch()
    report: dict = {
        "top1_largest": _top1(net, task, largest, task.calibration_x),
        "top1_smallest": _top1(net, task, smallest, task.calibration_x),
    }
    report["top1_gap"] = report["top1_largest"] - report["top1_smallest"]
    archs = net.space.sample(n_random, rng)
    top1, macs = [], []
    for arch in tqdm(archs, desc="random sub-networks", leave=False):
        subnet = net.get_active_subnet(arch).eval()
        top1.append(_top1(net, task, arch, task.calibration_x, subnet))
        resolution = net.resolution(arch)
        macs.append(count_macs(subnet, torch.zeros(1, task.in_channels, resolution, resolution)))
    report["n_random"] = n_random
    report["kendall_tau_top1_macs"] = float(kendalltau(top1, macs).statistic)
    report["random_top1_mean"] = float(np.mean(top1))
    report["random_top1_std"] = float(np.std(top1))
    report["random_top1_min"] = float(np.min(top1))
    report["random_top1_max"] = float(np.max(top1))
    report["random_macs_min"] = int(np.min(macs))
    report["random_macs_max"] = int(np.max(macs))

    generator = torch.Generator().manual_seed(seed)
    n_calibration = len(task.calibration_x)
    draws = [
        distort(
            task.train_x[torch.randint(len(task.train_x), (n_calibration,), generator=generator)],
            task.config,
            generator,
        )
        for _ in range(n_calibration_draws)
    ]
    stds = [
        float(np.std([_top1(net, task, arch, draw) for draw in draws]))
        for arch in tqdm(archs[:n_noise_archs], desc="evaluation noise", leave=False)
    ]
    report["evaluation_noise_std"] = float(np.mean(stds))
    report["noise_to_spread"] = report["evaluation_noise_std"] / report["random_top1_std"]

    if train_standalone:
        alone, _, log = train_supernet(recipe, replace(config, strategy="standalone"), arch=largest)
        report["top1_largest_standalone"] = _top1(alone, task, largest, task.calibration_x)
        report["largest_vs_standalone"] = report["top1_largest"] / report["top1_largest_standalone"]
        report["standalone_seconds"] = log["seconds"]
    return report
