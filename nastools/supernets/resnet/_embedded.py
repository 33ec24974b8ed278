"""The recipe of the embedded ``digits-resnet``: OFA's elastic ResNet design, small, on distorted digits."""

from __future__ import annotations

from functools import partial

from nastools.supernets._training import Recipe, TrainingConfig
from nastools.supernets.resnet._config import CHECKPOINT_KIND, ResNetConfig
from nastools.supernets.resnet._network import ElasticResNet
from nastools.tasks.digits import DigitsConfig, load_digits_task

__all__ = ["EMBEDDED_MODEL_CONFIG", "recipe"]

#: OFA's elastic dimensions (stem skip, extra depth {0, 1, 2} on base depths (2, 2, 4, 2), expand
#: {0.2, 0.25, 0.35}, width {0.65, 0.8, 1.0}) at stem width 32 and stage widths 96-256 for 1-channel
#: images of 12-32 px: stem stride 1, no max pool, stages at 1/2, 1/4, 1/8, 1/8 of the input. 30 search
#: parameters, 1.5e13 networks, 1.5-48.7 M MACs, 0.15-1.1 M parameters (a 4.7 MB checkpoint). Stage
#: widths below about 96 collapse the expand ratios: OFA rounds inner widths to multiples of 8.
EMBEDDED_MODEL_CONFIG = ResNetConfig(
    in_channels=1,
    n_classes=10,
    resolutions=(12, 16, 20, 24, 28, 32),
    base_stem_width=32,
    base_stage_widths=(96, 128, 192, 256),
    base_depths=(2, 2, 4, 2),
    stage_strides=(2, 2, 2, 1),
    stem_stride=1,
    max_pool=False,
    dropout_rate=0.1,
)


def recipe() -> Recipe:
    """``digits-resnet``: sandwich rule with in-place distillation, 80 epochs (10 of warm-up).

    About 7 minutes of training on 2 quiet cores (0.58x the time of ``digits-mbv3``'s recipe, timed
    side by side); the shipped checkpoint took 23 minutes on one thread of 2 busy shared cores.
    """
    return Recipe(
        name="digits-resnet",
        kind=CHECKPOINT_KIND,
        build=ElasticResNet,
        model_config=EMBEDDED_MODEL_CONFIG,
        task=partial(load_digits_task, DigitsConfig()),
        training=TrainingConfig(),
        phases=(("r", "d"), ("e",), ("w",)),
    )
