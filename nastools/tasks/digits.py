"""The embedded task: scikit-learn's handwritten digits, distorted, at elastic resolution.

scikit-learn ships the 1,797 8x8 digit images of the UCI optical-digits set, so nothing is downloaded.
Bare 8x8 digits are too easy to separate sub-networks, so every image is upsampled and then randomly
distorted (rotation, scale, shear, translation, stroke noise): training sees fresh distortions each
epoch, and the held-out split is a fixed set of distortions of digits never seen in training.

:class:`ImageTask` implements the :class:`~nastools.tasks._task.Task` protocol: its metric is held-out
top-1 after batch-norm recalibration on the calibration images (OFA's procedure).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from nastools.metrics import Metric
from nastools.tasks._task import cross_entropy, distillation_kl

__all__ = [
    "TOP1",
    "DigitsConfig",
    "ImageTask",
    "distort",
    "load_digits_task",
    "recalibrate_batchnorm",
    "top1_accuracy",
]

#: Held-out top-1 measured on the task after batch-norm recalibration.
TOP1 = Metric("top1", "max", "%", "held-out top-1 accuracy after batch-norm recalibration")


@dataclass(frozen=True)
class DigitsConfig:
    """How the distorted-digits task is made; stored with the checkpoint so it can be rebuilt.

    Attributes:
        resolution: Side of the images the task produces (sub-networks resize from it).
        test_fraction: Share of the original digits held out, stratified by class.
        test_distortions: Fixed distorted copies of each held-out digit.
        calibration_size: Distorted training images used to recalibrate batch norm per sub-network.
        rotation_deg, scale_range, shear, translation, noise_std: Distortion strengths.
        seed: Split and distortion seed.
    """

    resolution: int = 32
    test_fraction: float = 0.3
    test_distortions: int = 5
    calibration_size: int = 500
    rotation_deg: float = 35.0
    scale_range: tuple[float, float] = (0.65, 1.2)
    shear: float = 0.3
    translation: float = 0.2
    noise_std: float = 0.45
    seed: int = 0

    def to_dict(self) -> dict:
        """Plain dict (JSON-friendly)."""
        return asdict(self)


@torch.no_grad()
def recalibrate_batchnorm(module: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> None:
    """Reset every batch norm's running statistics to their average over ``x`` (OFA's recipe).

    Sub-networks share weights but not activation statistics, so each one's batch-norm statistics
    are recomputed on a calibration set before it is evaluated.
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.training) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
        m.train()
    try:
        for start in range(0, len(x), batch_size):
            module(x[start : start + batch_size])
    finally:
        for m, (momentum, training) in zip(norms, saved):
            m.momentum = momentum
            m.train(training)


@torch.no_grad()
def top1_accuracy(module: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 128) -> float:
    """Top-1 accuracy in percent of ``module`` (in eval mode) on ``(x, y)``.

    The result does not depend on ``batch_size``; batches of about 128 keep activations in cache
    and ran 1.5-3x faster than 1024 on CPU (``benchmarks/validation_cost.py``).
    """
    was_training = module.training
    module.eval()
    correct = 0
    for start in range(0, len(x), batch_size):
        logits = module(x[start : start + batch_size])
        correct += int((logits.argmax(1) == y[start : start + batch_size]).sum())
    module.train(was_training)
    return 100.0 * correct / len(y)


@dataclass
class ImageTask:
    """Tensors of one classification task, and the :class:`~nastools.tasks._task.Task` protocol on them.

    Attributes:
        train_x, train_y: Undistorted training images (distorted on the fly with :func:`distort`).
        calibration_x: Fixed distorted training images for batch-norm recalibration.
        test_x, test_y: The held-out split (fixed distortions of unseen digits).
        config: How the task was made.
        metric: :data:`TOP1`.

    Example:
        >>> task = load_digits_task(DigitsConfig(resolution=16, test_distortions=1))
        >>> (images,), labels = task.train_batch(torch.arange(4), torch.Generator().manual_seed(0))
        >>> tuple(images.shape), tuple(labels.shape), task.n_train
        ((4, 1, 16, 16), (4,), 1257)
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    calibration_x: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    config: DigitsConfig
    metric: ClassVar[Metric] = TOP1
    _draws: dict[int, torch.Tensor] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return int(self.train_y.max()) + 1

    @property
    def in_channels(self) -> int:
        """Image channels."""
        return self.train_x.shape[1]

    @property
    def n_train(self) -> int:
        """Training images."""
        return len(self.train_y)

    def train_batch(
        self, indices: torch.Tensor, generator: torch.Generator
    ) -> tuple[tuple[torch.Tensor], torch.Tensor]:
        """The training images at ``indices``, freshly distorted with ``generator``, and their labels."""
        return (distort(self.train_x[indices], self.config, generator),), self.train_y[indices]

    def example_inputs(self, batch_size: int) -> tuple[torch.Tensor]:
        """``batch_size`` held-out images (repeated when there are fewer)."""
        return (self.test_x[torch.arange(batch_size) % len(self.test_x)],)

    def loss(
        self, outputs: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0
    ) -> torch.Tensor:
        """Cross-entropy of the logits ``(B, C)`` for the labels."""
        return cross_entropy(outputs, targets, label_smoothing)

    def distillation_loss(self, outputs: torch.Tensor, teacher_outputs: torch.Tensor) -> torch.Tensor:
        """KL divergence to the teacher's class distribution, averaged over the images."""
        return distillation_kl(outputs, teacher_outputs)

    def calibration_draw(self, draw: int) -> torch.Tensor:
        """Another calibration set as large as :attr:`calibration_x`, the same for the same ``draw``.

        Training images drawn with replacement and distorted, as :attr:`calibration_x` was.
        """
        if isinstance(draw, bool) or not isinstance(draw, int) or draw < 0:
            raise ValueError(f"draw must be a non-negative integer, got {draw!r}")
        if draw not in self._draws:
            seed = int(np.random.SeedSequence([self.config.seed, draw]).generate_state(1)[0])
            generator = torch.Generator().manual_seed(seed)
            picked = torch.randint(len(self.train_x), (len(self.calibration_x),), generator=generator)
            self._draws[draw] = distort(self.train_x[picked], self.config, generator)
        return self._draws[draw]

    def score(self, module: nn.Module, arch: object = None, *, draw: int | None = None) -> float:
        """Held-out top-1 (%) of ``module`` after recalibrating its batch norm (in place).

        Args:
            module: Takes the task's images as they are (a sub-network that needs another
                resolution resizes them first: :func:`nastools.supernets._checks.score`).
            arch: Unused: top-1 does not depend on the arch beyond ``module``.
            draw: None: recalibrate on :attr:`calibration_x`; an integer: on :meth:`calibration_draw`.
        """
        calibration = self.calibration_x if draw is None else self.calibration_draw(draw)
        recalibrate_batchnorm(module, calibration)
        return top1_accuracy(module, self.test_x, self.test_y)


def distort(images: torch.Tensor, config: DigitsConfig, generator: torch.Generator) -> torch.Tensor:
    """Random affine distortion plus noise of a batch ``(n, 1, H, W)`` of images in [0, 1]."""
    n = images.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator)

    angle = uniform(-config.rotation_deg, config.rotation_deg) * math.pi / 180
    scale = uniform(*config.scale_range)
    shear = uniform(-config.shear, config.shear)
    shift = torch.stack([uniform(-config.translation, config.translation) for _ in range(2)], dim=1) * 2
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos, -sin + shear * cos, shift[:, 0]], dim=1),
            torch.stack([sin, cos + shear * sin, shift[:, 1]], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    warped = F.grid_sample(images, grid, padding_mode="zeros", align_corners=False)
    noisy = warped + config.noise_std * torch.randn(warped.shape, generator=generator)
    return noisy.clamp(0.0, 1.0)


def load_digits_task(config: DigitsConfig | None = None) -> ImageTask:
    """Build the distorted-digits task deterministically from ``config``.

    Example:
        >>> task = load_digits_task(DigitsConfig(resolution=16, test_distortions=1))
        >>> task.test_x.shape[1:], task.n_classes
        (torch.Size([1, 16, 16]), 10)
    """
    config = config or DigitsConfig()
    if config.resolution < 8:
        raise ValueError(f"resolution must be >= 8 (the digits are 8x8), got {config.resolution}")
    if not 0 < config.test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {config.test_fraction}")
    for name in ("test_distortions", "calibration_size"):  # an empty split would divide by zero later
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = F.interpolate(
        images, size=(config.resolution, config.resolution), mode="bilinear", align_corners=False
    )
    labels = torch.tensor(digits.target, dtype=torch.long)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)),
        test_size=config.test_fraction,
        stratify=digits.target,
        random_state=config.seed,
    )
    generator = torch.Generator().manual_seed(config.seed)
    test_images = images[test_idx].repeat(config.test_distortions, 1, 1, 1)
    test_x = distort(test_images, config, generator)
    test_y = labels[test_idx].repeat(config.test_distortions)
    calibration_src = images[train_idx][
        torch.randint(len(train_idx), (config.calibration_size,), generator=generator)
    ]
    calibration_x = distort(calibration_src, config, generator)
    return ImageTask(
        train_x=images[train_idx],
        train_y=labels[train_idx],
        calibration_x=calibration_x,
        test_x=test_x,
        test_y=test_y,
        config=config,
    )
