"""Train an elastic image supernet with weight sharing, reproducibly, on a CPU.

Two weight-sharing recipes, both after a warm-up that trains the largest network alone and then
sorts hidden channels by importance:

* ``sandwich`` (BigNAS): each step trains the largest sub-network on the labels and the smallest plus
  ``n_random`` random ones distilled in place from the largest network's outputs.
* ``progressive`` (OFA): the elastic parameters are switched on phase by phase (the recipe's
  ``phases``: groups of parameter-name prefixes, e.g. kernel, then depth, then expand); each step
  trains ``n_random + 2`` random sub-networks of the current phase, distilled from the warm-up
  network.

``standalone`` trains one fixed architecture alone with the same data, steps and optimiser: the
reference the weight-shared largest sub-network is compared with.

Any family's elastic network trains here when it has ``space``, ``config``, ``set_active(arch)``,
``max_arch()``, ``min_arch()``, ``resolution(arch)`` and ``sort_channels()``; a family names its
embedded recipes in its ``TRAINING`` table. Command line::

    python -m nastools.training --supernet digits-mbv3 --out results/digits-mbv3.pt --report
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nastools._outputs import check_output_file

if TYPE_CHECKING:  # imported where used, so that --help and argument errors answer before torch loads
    import numpy as np
    import torch
    from torch import nn

    from nastools.tasks.digits import DigitsConfig, ImageTask

__all__ = ["Recipe", "TrainingConfig", "main", "recipes", "train_supernet"]

STRATEGIES = ("sandwich", "progressive", "standalone")


@dataclass(frozen=True)
class TrainingConfig:
    """How :func:`train_supernet` trains (stored in the checkpoint).

    Attributes:
        strategy: ``sandwich``, ``progressive`` or ``standalone``.
        epochs: Total epochs, warm-up included (more than ``warmup_epochs``).
        warmup_epochs: Epochs training only the largest network before elastic training.
        batch_size: Images per step.
        lr: Peak AdamW learning rate (cosine decay, one warm-up epoch).
        weight_decay: AdamW weight decay.
        n_random: Random sub-networks per step besides the largest and smallest.
        label_smoothing: For the cross-entropy on labels.
        threads: torch threads used while training.
        seed: Seeds initialisation, batches and distortions.
    """

    strategy: str = "sandwich"
    epochs: int = 80
    warmup_epochs: int = 10
    batch_size: int = 128
    lr: float = 4e-3
    weight_decay: float = 1e-4
    n_random: int = 2
    label_smoothing: float = 0.1
    threads: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        """Check every field (one line each, naming the field and what is allowed)."""
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; use one of {list(STRATEGIES)}")
        for name in ("epochs", "batch_size", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("warmup_epochs", "n_random", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if self.strategy != "standalone" and self.epochs <= self.warmup_epochs:
            raise ValueError(
                f"epochs ({self.epochs}) must exceed warmup_epochs ({self.warmup_epochs}): elastic training "
                "starts after the warm-up"
            )
        cores = os.cpu_count() or 1
        if self.threads > cores:
            raise ValueError(f"threads={self.threads} exceeds the {cores} CPU cores of this machine")
        if not (self.lr > 0 and self.weight_decay >= 0 and 0 <= self.label_smoothing < 1):
            raise ValueError("lr must be > 0, weight_decay >= 0 and label_smoothing in [0, 1)")


@dataclass(frozen=True)
class Recipe:
    """An embedded supernet's recipe: how to build its network, its task, and how to train it.

    Attributes:
        name: The supernet's name (``digits-mbv3``).
        kind: The checkpoint kind its family reads back.
        build: ``model config -> elastic network``.
        model_config: The network's shape.
        data_config: The task (default: ``DigitsConfig()``).
        training: The training settings.
        phases: For ``progressive``: parameter-name prefixes switched on phase by phase.
    """

    name: str
    kind: str
    build: Callable[[Any], nn.Module]
    model_config: Any
    data_config: DigitsConfig | None = None
    training: TrainingConfig = field(default_factory=TrainingConfig)
    phases: Sequence[Sequence[str]] = ()


def _kd_loss(logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    import torch.nn.functional as F  # noqa: N812

    return F.kl_div(F.log_softmax(logits, dim=1), F.softmax(teacher_logits, dim=1), reduction="batchmean")


class _PhaseSampler:
    """Samples archs from the elastic parameters open in the current progressive-shrinking phase."""

    def __init__(self, net: nn.Module, rng: np.random.Generator) -> None:
        self.net, self.rng = net, rng
        self.open: set[str] = set()

    def sample(self) -> dict:
        arch = self.net.space.sample(1, self.rng)[0]
        largest = self.net.max_arch()
        for name in arch:
            if name.split("_")[0] not in self.open:
                arch[name] = largest[name]
        return self.net.space.canonical(arch)


def train_supernet(
    recipe: Recipe, config: TrainingConfig | None = None, arch: Mapping | None = None, progress: bool = True
) -> tuple[nn.Module, ImageTask, dict]:
    """Train ``recipe``'s network with weight sharing (or one arch alone) on its task.

    Args:
        recipe: What to build and train on.
        config: Overrides ``recipe.training``.
        arch: For ``strategy="standalone"``, the architecture trained (default: the largest).
        progress: Show a tqdm bar.

    Returns:
        The trained network, the task, and a log dict (loss per epoch, wall time).
    """
    import torch

    from nastools.tasks.digits import DigitsConfig, load_digits_task

    config = config or recipe.training
    task = load_digits_task(recipe.data_config or DigitsConfig())
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _train(recipe, task, config, arch, progress)
    finally:
        torch.set_num_threads(previous_threads)


def _train(recipe: Recipe, task: ImageTask, config: TrainingConfig, arch: Mapping | None, progress: bool):
    import numpy as np
    import torch
    import torch.nn.functional as F  # noqa: N812
    from torch import nn
    from tqdm.auto import tqdm

    from nastools.supernets._image import resize
    from nastools.tasks.digits import distort

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed + 1)
    net = recipe.build(recipe.model_config)
    largest, smallest = net.max_arch(), net.min_arch()
    fixed_arch = net.space.canonical(arch) if arch is not None else largest
    n = len(task.train_y)
    steps_per_epoch = max(1, n // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    warm = steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + np.cos(np.pi * min(1.0, s / total_steps)))
    )
    sampler = _PhaseSampler(net, rng)
    phases = [set(p) for p in recipe.phases] or [{n.split("_")[0] for n in net.space.names}]
    elastic_epochs = config.epochs - config.warmup_epochs
    teacher = None
    log: dict = {"loss": [], "phase": []}
    start = time.perf_counter()
    bar = tqdm(range(config.epochs), desc=f"train {config.strategy}", disable=not progress)
    for epoch in bar:
        elastic = config.strategy != "standalone" and epoch >= config.warmup_epochs
        if config.strategy != "standalone" and epoch == config.warmup_epochs:
            net.sort_channels()
            teacher = copy.deepcopy(net).eval()
        if config.strategy == "progressive" and elastic:
            phase_index = (epoch - config.warmup_epochs) * len(phases) // max(1, elastic_epochs)
            sampler.open = set().union(*phases[: phase_index + 1])
        phase = "+".join(sorted(sampler.open)) if config.strategy == "progressive" else config.strategy
        net.train()
        order = torch.randperm(n, generator=generator)
        epoch_loss = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * config.batch_size : (step + 1) * config.batch_size]
            x = distort(task.train_x[idx], task.config, generator)
            y = task.train_y[idx]
            optimizer.zero_grad(set_to_none=True)
            if not elastic:
                archs = [fixed_arch if config.strategy == "standalone" else largest]
            elif config.strategy == "sandwich":
                archs = [largest, smallest] + net.space.sample(config.n_random, rng)
            else:
                archs = [sampler.sample() for _ in range(config.n_random + 2)]
            teacher_logits = None
            if elastic and config.strategy == "progressive":
                with torch.no_grad():
                    teacher.set_active(largest)
                    teacher_logits = teacher(resize(x, teacher.resolution(largest)))
            for i, sub_arch in enumerate(archs):
                net.set_active(sub_arch)
                logits = net(resize(x, net.resolution(sub_arch)))
                if teacher_logits is None or (config.strategy == "sandwich" and i == 0):
                    loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
                    if elastic:
                        teacher_logits = logits.detach()
                else:
                    loss = 0.5 * F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
                    loss = loss + 0.5 * _kd_loss(logits, teacher_logits)
                loss.backward()
                epoch_loss += loss.item() / len(archs)
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            optimizer.step()
            schedule.step()
        log["loss"].append(epoch_loss / steps_per_epoch)
        log["phase"].append(phase)
        bar.set_postfix(loss=f"{log['loss'][-1]:.3f}")
    log["seconds"] = time.perf_counter() - start
    net.set_active(largest)
    return net.eval(), task, log


def recipes() -> dict[str, str]:
    """The embedded supernets that can be trained here: name to ``"module:recipe"`` (from the families)."""
    from nastools.supernet import _families

    found: dict[str, str] = {}
    for family in _families():
        found.update(getattr(family, "TRAINING", {}))
    return found


def _recipe(name: str) -> Recipe:
    available = recipes()
    if name not in available:
        raise ValueError(f"no training recipe for {name!r}; the recipes here are {sorted(available)}")
    module, _, attribute = available[name].partition(":")
    return getattr(importlib.import_module(module), attribute)()


def main(argv: list[str] | None = None) -> int:
    """Command line: train an embedded supernet, optionally measure its checks, write the checkpoint."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--supernet", default="digits-mbv3", help="recipe name (see --list)")
    parser.add_argument("--out", help="checkpoint path to write (required)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--strategy", choices=["sandwich", "progressive"], help="default: the recipe's")
    parser.add_argument("--epochs", type=int, help="default: the recipe's")
    parser.add_argument("--seed", type=int, help="default: the recipe's")
    parser.add_argument("--threads", type=int, help="default: the recipe's")
    parser.add_argument(
        "--report", action="store_true", help="also train the largest arch alone and measure the checks"
    )
    parser.add_argument("--list", action="store_true", help="list the recipes and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(sorted(recipes())))
        return 0
    if args.out is None:
        parser.error("--out is required: the checkpoint to write (the shipped ones are in data/)")
    out = Path(args.out).expanduser()
    if out.is_dir():
        parser.error(
            f"--out {out} is a folder; give the checkpoint's file name, e.g. {out / (args.supernet + '.pt')}"
        )
    if out.exists() and not args.overwrite:
        parser.error(f"{out} exists; pass --overwrite to replace it (data/*.pt are the shipped checkpoints)")
    try:  # before the training, not after it
        check_output_file(out, "--out")
    except OSError as error:
        parser.error(str(error))
    overrides = {
        k: getattr(args, k) for k in ("strategy", "epochs", "seed", "threads") if getattr(args, k) is not None
    }
    try:
        replace(TrainingConfig(warmup_epochs=0), **overrides)  # the values alone, before torch loads
        recipe = _recipe(args.supernet)
        config = replace(recipe.training, **overrides)
    except (ValueError, TypeError) as error:
        parser.error(str(error))
    import torch

    from nastools.supernets._image import save_checkpoint
    from nastools.tasks.digits import DigitsConfig

    net, task, log = train_supernet(recipe, config)
    data_config = recipe.data_config or DigitsConfig()
    try:
        path = save_checkpoint(out, recipe.kind, net, data_config, config, log, {})  # kept if the checks fail
    except (OSError, RuntimeError) as error:  # torch's writer reports a failed write as a RuntimeError
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        parser.exit(
            1, f"{parser.prog}: error: the trained supernet could not be written to {out}: {reason}\n"
        )
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) after {log['seconds']:.0f} s of training")
    if args.report:
        from nastools.supernets._checks import supernet_report

        previous_threads = torch.get_num_threads()
        torch.set_num_threads(config.threads)  # the checks run on the training's threads too
        try:
            report = supernet_report(net, task, recipe, config)
        finally:
            torch.set_num_threads(previous_threads)
        print(json.dumps(report, indent=2))
        save_checkpoint(out, recipe.kind, net, data_config, config, log, report)
        print(f"added the checks to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
