"""The embedded task: scikit-learn's handwritten digits, distorted, at elastic resolution.

scikit-learn ships the 1,797 8x8 digit images of the UCI optical-digits set, so nothing is downloaded.
Bare 8x8 digits are too easy to separate sub-networks, so every image is upsampled and then randomly
distorted (rotation, scale, shear, translation, stroke noise): training sees fresh distortions each
epoch, and the held-out split is a fixed set of distortions of digits never seen in training.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

__all__ = ["DigitsConfig", "ImageTask", "distort", "load_digits_task"]


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


@dataclass
class ImageTask:
    """Tensors of one classification task.

    Attributes:
        train_x, train_y: Undistorted training images (distorted on the fly with :func:`distort`).
        calibration_x: Fixed distorted training images for batch-norm recalibration.
        test_x, test_y: The held-out split (fixed distortions of unseen digits).
        config: How the task was made.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    calibration_x: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    config: DigitsConfig

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return int(self.train_y.max()) + 1

    @property
    def in_channels(self) -> int:
        """Image channels."""
        return self.train_x.shape[1]


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
