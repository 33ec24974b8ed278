"""Small real supernets for tests: untrained tiny elastic MobileNetV3 on a small digits task."""

import torch

from nastools.data import DigitsConfig, load_digits_task
from nastools.supernets import ElasticMobileNetV3, MobileNetV3Config, MobileNetV3Supernet

TINY_CONFIG = MobileNetV3Config(
    in_channels=1,
    n_classes=10,
    resolutions=(16, 24),
    base_stage_widths=(8, 8, 16, 16, 24, 24, 32, 64, 96),
    stem_stride=1,
    stage_strides=(1, 2, 2, 2, 1, 1),
)
TINY_DATA = DigitsConfig(resolution=24, test_distortions=1, calibration_size=64)


def tiny_supernet(seed: int = 0) -> MobileNetV3Supernet:
    torch.manual_seed(seed)
    net = ElasticMobileNetV3(TINY_CONFIG)
    return MobileNetV3Supernet(net, "tiny-mbv3", f"seed{seed}", task=load_digits_task(TINY_DATA))
