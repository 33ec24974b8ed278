"""Train the embedded elastic MobileNetV3 on the distorted-digits task, reproducibly, on a CPU.

Two weight-sharing recipes, both after a warm-up that trains the largest network alone and then
sorts hidden channels by importance:

* ``sandwich`` (BigNAS): each step trains the largest sub-network on the labels and the smallest plus
  ``n_random`` random ones distilled in place from the largest network's outputs.
* ``progressive`` (OFA): elastic kernel, then depth, then expand are switched on phase by phase; each
  step trains ``n_random + 2`` random sub-networks of the current phase, distilled from the warm-up
  network.

``standalone`` trains one fixed architecture alone with the same data, steps and optimiser: the
reference the weight-shared largest sub-network is compared with.

Command line: ``python -m nastools.training --out data/digits-mbv3.pt`` (see ``--help``).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn
from tqdm.auto import tqdm

from nastools.data import DigitsConfig, ImageTask, distort, load_digits_task
from nastools.supernets._mobilenetv3 import ElasticMobileNetV3, MobileNetV3Config
from nastools.supernets._validation import resize

__all__ = ["EMBEDDED_MODEL_CONFIG", "TrainingConfig", "main", "train_supernet"]

EMBEDDED_MODEL_CONFIG = MobileNetV3Config(
    width_mult=1.0,
    in_channels=1,
    n_classes=10,
    resolutions=(12, 16, 20, 24, 28, 32),
    base_stage_widths=(8, 8, 16, 24, 32, 48, 64, 192, 256),
    stem_stride=1,
    stage_strides=(1, 2, 2, 2, 1, 1),
    dropout_rate=0.1,
)


@dataclass(frozen=True)
class TrainingConfig:
    """Recipe for :func:`train_supernet` (stored in the checkpoint).

    Attributes:
        strategy: ``sandwich``, ``progressive`` or ``standalone``.
        epochs: Total epochs, warm-up included.
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


def _kd_loss(logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    return F.kl_div(F.log_softmax(logits, dim=1), F.softmax(teacher_logits, dim=1), reduction="batchmean")


class _PhaseSampler:
    """Samples archs from the elastic dimensions open in the current progressive-shrinking phase."""

    def __init__(self, net: ElasticMobileNetV3, rng: np.random.Generator) -> None:
        self.net, self.rng = net, rng
        self.open: set[str] = {"r"}

    def sample(self) -> dict[str, int]:
        arch = self.net.space.sample(1, self.rng)[0]
        largest = self.net.max_arch()
        prefixes = {"ks": "ks_", "d": "d_", "e": "e_", "r": "r"}
        for name in arch:
            kind = next(k for k, p in prefixes.items() if name.startswith(p))
            if kind not in self.open:
                arch[name] = largest[name]
        return self.net.space.canonical(arch)


def train_supernet(
    model_config: MobileNetV3Config = EMBEDDED_MODEL_CONFIG,
    data_config: DigitsConfig | None = None,
    config: TrainingConfig | None = None,
    arch: Mapping[str, int] | None = None,
    progress: bool = True,
) -> tuple[ElasticMobileNetV3, ImageTask, dict]:
    """Train an elastic MobileNetV3 with weight sharing (or one arch alone) on the digits task.

    Args:
        model_config: Supernet shape.
        data_config: Task definition; defaults to :class:`DigitsConfig`.
        config: Recipe; defaults to :class:`TrainingConfig`.
        arch: For ``strategy="standalone"``, the architecture trained (default: the largest).
        progress: Show a tqdm bar.

    Returns:
        The trained supernet, the task, and a log dict (loss per epoch, wall time).
    """
    config = config or TrainingConfig()
    if config.strategy not in ("sandwich", "progressive", "standalone"):
        raise ValueError(
            f"unknown strategy {config.strategy!r}; use 'sandwich', 'progressive' or 'standalone'"
        )
    task = load_digits_task(data_config)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _train(model_config, task, config, arch, progress)
    finally:
        torch.set_num_threads(previous_threads)


def _train(model_config, task, config, arch, progress):
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed + 1)
    net = ElasticMobileNetV3(model_config)
    largest, smallest = net.max_arch(), net.min_arch()
    fixed_arch = net.space.canonical(arch) if arch is not None else largest
    n = len(task.train_y)
    steps_per_epoch = max(1, n // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    warm = steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + np.cos(np.pi * min(1.0, s / total_steps))),
    )
    sampler = _PhaseSampler(net, rng)
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
            third = (epoch - config.warmup_epochs) * 3 // max(1, elastic_epochs)
            sampler.open = {"r", "ks"} | ({"d"} if third >= 1 else set()) | ({"e"} if third >= 2 else set())
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


def save_checkpoint(
    path: str | Path,
    net: ElasticMobileNetV3,
    data_config: DigitsConfig,
    config: TrainingConfig,
    log: Mapping,
    report: Mapping | None = None,
) -> Path:
    """Write a self-describing checkpoint: weights (float32), model/data/training configs, log, report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": "nastools-supernet",
        "version": 1,
        "kind": "elastic-mobilenetv3",
        "model_config": net.config.to_dict(),
        "data_config": data_config.to_dict(),
        "training_config": asdict(config),
        "log": dict(log),
        "report": dict(report or {}),
        "state_dict": net.state_dict(),
    }
    torch.save(payload, path)
    return path


def main(argv: list[str] | None = None) -> None:
    """Command line entry point: train, evaluate, and save the embedded supernet."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="data/digits-mbv3.pt", help="checkpoint path to write")
    parser.add_argument("--strategy", default="sandwich", choices=["sandwich", "progressive"])
    parser.add_argument("--epochs", type=int, default=TrainingConfig.epochs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--report",
        action="store_true",
        help="also train the largest arch alone and measure the checks (gap, tau, noise)",
    )
    args = parser.parse_args(argv)
    data_config = DigitsConfig()
    config = replace(
        TrainingConfig(),
        strategy=args.strategy,
        epochs=args.epochs,
        seed=args.seed,
        threads=args.threads,
    )
    net, task, log = train_supernet(EMBEDDED_MODEL_CONFIG, data_config, config)
    report = {}
    if args.report:
        from nastools.supernets._report import supernet_report

        report = supernet_report(net, task, config)
        print(json.dumps(report, indent=2))
    path = save_checkpoint(args.out, net, data_config, config, log, report)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) after {log['seconds']:.0f} s of training")


if __name__ == "__main__":
    main()
