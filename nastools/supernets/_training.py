"""The one weight-sharing trainer: any elastic network on any task, reproducibly, on a CPU.

Two weight-sharing strategies, both after a warm-up that trains the largest network alone and then
sorts hidden channels by importance:

* ``sandwich`` (BigNAS): each step trains the largest sub-network on the labels and the smallest plus
  ``n_random`` random ones distilled in place from the largest network's outputs (half the labels'
  loss, half the distillation loss).
* ``progressive`` (OFA): the elastic parameters are switched on phase by phase (``phases``: groups of
  parameter-name prefixes, e.g. kernel, then depth, then expand); each step trains ``n_random + 2``
  random sub-networks of the current phase, distilled from the warm-up network.

``standalone`` trains one fixed architecture alone with the same data, steps and optimiser: the
reference the weight-shared largest sub-network is compared with.

The network is anything with the elastic-network methods (``space``, ``max_arch()``, ``min_arch()``,
``set_active(arch)``, ``forward(*inputs)``, ``sort_channels()``, optionally ``prepare_inputs(inputs,
arch)``; :class:`nastools.supernets._elastic.ElasticNetwork` gives the defaults, but any ``nn.Module``
with them will do), the task anything with the :class:`~nastools.tasks._task.Task` ones: images, token
sequences and translation pairs train here alike. A family names its embedded :class:`Recipe` in its
``TRAINING`` table, and ``python -m nastools.training --supernet NAME`` trains it. Nothing here imports
torch before it trains, so the command line answers ``--help`` and argument errors at once.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

    from nastools.space import Arch
    from nastools.tasks._task import Task

__all__ = [
    "STRATEGIES",
    "Recipe",
    "TrainingConfig",
    "prepare_inputs",
    "train",
    "train_supernet",
]

STRATEGIES = ("sandwich", "progressive", "standalone")


@dataclass(frozen=True)
class TrainingConfig:
    """How :func:`train` trains (stored in the checkpoint).

    Attributes:
        strategy: ``sandwich``, ``progressive`` or ``standalone``.
        epochs: Total epochs, warm-up included (more than ``warmup_epochs``).
        warmup_epochs: Epochs training only the largest network before elastic training.
        batch_size: Training examples per step.
        lr: Peak AdamW learning rate (cosine decay, one warm-up epoch).
        weight_decay: AdamW weight decay.
        n_random: Random sub-networks per step besides the largest and smallest.
        label_smoothing: For the cross-entropy on labels.
        threads: torch threads used while training.
        seed: Seeds initialisation, batches, augmentation and sampled sub-networks.

    Example:
        >>> TrainingConfig(epochs=3, warmup_epochs=1).strategy
        'sandwich'
        >>> TrainingConfig(epochs=2, warmup_epochs=2)
        Traceback (most recent call last):
        ...
        ValueError: epochs (2) must exceed warmup_epochs (2): elastic training starts after the warm-up
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
        build: ``model config -> elastic network`` (see the module's docstring).
        model_config: The network's shape.
        task: A zero-argument factory of the task (a :class:`~nastools.tasks._task.Task`), called
            when training starts.
        training: The training settings.
        phases: For ``progressive``: parameter-name prefixes switched on phase by phase.

    Example:
        >>> from functools import partial
        >>> from nastools.supernets.mobilenetv3 import CHECKPOINT_KIND, ElasticMobileNetV3, MobileNetV3Config
        >>> from nastools.tasks.digits import DigitsConfig, load_digits_task
        >>> config = MobileNetV3Config(in_channels=1, n_classes=10, resolutions=(16, 24))
        >>> recipe = Recipe("my-mbv3", CHECKPOINT_KIND, ElasticMobileNetV3, config,
        ...                 task=partial(load_digits_task, DigitsConfig()))
        >>> network, task, log = train_supernet(recipe, progress=False)  # doctest: +SKIP
    """

    name: str
    kind: str
    build: Callable[[Any], nn.Module]
    model_config: Any
    task: Callable[[], Task]
    training: TrainingConfig = field(default_factory=TrainingConfig)
    phases: Sequence[Sequence[str]] = ()


def prepare_inputs(
    network: nn.Module, inputs: tuple[torch.Tensor, ...], arch: Arch
) -> tuple[torch.Tensor, ...]:
    """``network.prepare_inputs(inputs, arch)``, or ``inputs`` as they are where it has none.

    Example:
        >>> import torch
        >>> x = (torch.zeros(1, 3),)
        >>> prepare_inputs(torch.nn.Linear(3, 2), x, {}) is x
        True
    """
    method = getattr(network, "prepare_inputs", None)
    return inputs if method is None else tuple(method(inputs, arch))


class _PhaseSampler:
    """Samples archs from the elastic parameters open in the current progressive-shrinking phase."""

    def __init__(self, network: nn.Module, rng: np.random.Generator) -> None:
        self.network, self.rng = network, rng
        self.open: set[str] = set()

    def sample(self) -> dict:
        arch = self.network.space.sample(1, self.rng)[0]
        largest = self.network.max_arch()
        for name in arch:
            if name.split("_")[0] not in self.open:
                arch[name] = largest[name]
        return self.network.space.canonical(arch)


def train(
    network: nn.Module,
    task: Task,
    config: TrainingConfig,
    *,
    arch: Mapping | None = None,
    phases: Sequence[Sequence[str]] = (),
    progress: bool = True,
) -> tuple[nn.Module, dict]:
    """Train ``network`` with weight sharing (or one arch alone) on ``task``, in place.

    The batches, their augmentation and the sampled sub-networks are seeded by ``config.seed``;
    dropout draws from torch's global generator, so seed that (``torch.manual_seed(config.seed)``)
    before building ``network``, as :func:`train_supernet` does, for a run that repeats exactly.

    Args:
        network: An elastic network (the methods the module's docstring lists).
        task: A :class:`~nastools.tasks._task.Task`.
        config: How to train.
        arch: For ``strategy="standalone"``, the architecture trained (default: the largest).
        phases: For ``progressive``: parameter-name prefixes switched on phase by phase (default:
            all at once).
        progress: Show a tqdm bar.

    Returns:
        ``network`` in eval mode with its largest arch active, and a log: the mean loss per epoch
        (``loss``), the strategy or open progressive phase per epoch (``phase``), and ``seconds``.

    Raises:
        ValueError: ``arch`` is given for a weight-sharing strategy.

    Example:
        >>> import torch
        >>> from nastools.supernets.mobilenetv3 import ElasticMobileNetV3, MobileNetV3Config
        >>> from nastools.tasks.digits import DigitsConfig, load_digits_task
        >>> task = load_digits_task(DigitsConfig(resolution=16, test_fraction=0.97, test_distortions=1))
        >>> _ = torch.manual_seed(0)
        >>> net = ElasticMobileNetV3(MobileNetV3Config(in_channels=1, n_classes=10, resolutions=(16,),
        ...     base_stage_widths=(8, 8, 8, 8, 8, 8, 8, 16, 16)))
        >>> config = TrainingConfig(epochs=2, warmup_epochs=1, batch_size=32, threads=1)
        >>> net, log = train(net, task, config, progress=False)
        >>> log["phase"], len(log["loss"])
        (['sandwich', 'sandwich'], 2)
    """
    import torch

    if arch is not None and config.strategy != "standalone":
        raise ValueError(
            f"arch is what strategy='standalone' trains; strategy {config.strategy!r} trains every "
            "sub-network: leave arch out or use strategy='standalone'"
        )
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _train(network, task, config, arch, phases, progress)
    finally:
        torch.set_num_threads(previous_threads)


def _train(
    net: nn.Module,
    task: Task,
    config: TrainingConfig,
    arch: Mapping | None,
    phases: Sequence[Sequence[str]],
    progress: bool,
) -> tuple[nn.Module, dict]:
    import numpy as np
    import torch
    from torch import nn
    from tqdm.auto import tqdm

    from nastools.tasks._task import counted_positions

    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed + 1)
    largest, smallest = net.max_arch(), net.min_arch()
    fixed_arch = net.space.canonical(arch) if arch is not None else largest
    n = task.n_train
    steps_per_epoch = max(1, n // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    warm = steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + np.cos(np.pi * min(1.0, s / total_steps)))
    )
    sampler = _PhaseSampler(net, rng)
    open_phases = [set(p) for p in phases] or [{name.split("_")[0] for name in net.space.names}]
    elastic_epochs = config.epochs - config.warmup_epochs
    teacher = None
    log: dict = {"loss": [], "phase": []}
    start = time.perf_counter()
    bar = tqdm(range(config.epochs), desc=f"train {config.strategy}", disable=not progress)
    for epoch in bar:
        elastic = config.strategy != "standalone" and epoch >= config.warmup_epochs
        if config.strategy != "standalone" and epoch == config.warmup_epochs:
            net.sort_channels()
            if config.strategy == "progressive":  # its students learn from the warm-up network
                teacher = copy.deepcopy(net).eval()
        if config.strategy == "progressive" and elastic:
            phase_index = (epoch - config.warmup_epochs) * len(open_phases) // max(1, elastic_epochs)
            sampler.open = set().union(*open_phases[: phase_index + 1])
        phase = "+".join(sorted(sampler.open)) if config.strategy == "progressive" else config.strategy
        net.train()
        order = torch.randperm(n, generator=generator)
        epoch_loss = 0.0
        for step in range(steps_per_epoch):
            indices = order[step * config.batch_size : (step + 1) * config.batch_size]
            inputs, targets = task.train_batch(indices, generator)
            optimizer.zero_grad(set_to_none=True)
            if not elastic:
                archs = [fixed_arch if config.strategy == "standalone" else largest]
            elif config.strategy == "sandwich":
                archs = [largest, smallest] + net.space.sample(config.n_random, rng)
            else:
                archs = [sampler.sample() for _ in range(config.n_random + 2)]
            teacher_outputs = None
            if elastic and config.strategy == "progressive":
                with torch.no_grad():
                    teacher.set_active(largest)
                    teacher_outputs = teacher(*prepare_inputs(teacher, inputs, largest))
            for i, sub_arch in enumerate(archs):
                net.set_active(sub_arch)
                outputs = net(*prepare_inputs(net, inputs, sub_arch))
                if teacher_outputs is None or (config.strategy == "sandwich" and i == 0):
                    loss = task.loss(outputs, targets, config.label_smoothing)
                    if elastic:
                        teacher_outputs = outputs.detach()
                else:
                    loss = 0.5 * task.loss(outputs, targets, config.label_smoothing)
                    counted = counted_positions(outputs, teacher_outputs, targets)  # padding left out
                    loss = loss + 0.5 * task.distillation_loss(*counted)
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
    return net.eval(), log


def train_supernet(
    recipe: Recipe,
    config: TrainingConfig | None = None,
    *,
    arch: Mapping | None = None,
    task: Task | None = None,
    progress: bool = True,
) -> tuple[nn.Module, Task, dict]:
    """Build ``recipe``'s network (seeded) and task, and :func:`train` it.

    Args:
        recipe: What to build and train on.
        config: Overrides ``recipe.training``.
        arch: For ``strategy="standalone"``, the architecture trained (default: the largest).
        task: The recipe's task, if already built (default: ``recipe.task()``).
        progress: Show a tqdm bar.

    Returns:
        The trained network, the task, and the log of :func:`train`.
    """
    import torch

    config = config or recipe.training
    task = recipe.task() if task is None else task
    torch.manual_seed(config.seed)  # the network's initialisation, then dropout during training
    network = recipe.build(recipe.model_config)
    network, log = train(network, task, config, arch=arch, phases=recipe.phases, progress=progress)
    return network, task, log
