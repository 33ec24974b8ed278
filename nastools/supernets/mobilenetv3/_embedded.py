"""The recipe of the embedded ``digits-mbv3``: OFA's MobileNetV3 design, small, on distorted digits."""

from __future__ import annotations

from functools import partial

from nastools.supernets._training import Recipe, TrainingConfig
from nastools.supernets.mobilenetv3._config import CHECKPOINT_KIND, MobileNetV3Config
from nastools.supernets.mobilenetv3._network import ElasticMobileNetV3
from nastools.tasks.digits import DigitsConfig, load_digits_task

__all__ = ["EMBEDDED_MODEL_CONFIG", "recipe"]

#: Stage widths 8-64, 5 stages of 2-4 blocks, kernel {3, 5, 7}, expand {3, 4, 6}, resolution 12-32.
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


def recipe() -> Recipe:
    """``digits-mbv3``: sandwich rule with in-place distillation, 80 epochs (about 12 minutes on 2 cores)."""
    return Recipe(
        name="digits-mbv3",
        kind=CHECKPOINT_KIND,
        build=ElasticMobileNetV3,
        model_config=EMBEDDED_MODEL_CONFIG,
        task=partial(load_digits_task, DigitsConfig()),
        training=TrainingConfig(),
        phases=(("r", "ks"), ("d",), ("e",)),
    )
