"""Weight-sharing super-networks: the :class:`Supernet` protocol and the elastic MobileNetV3."""

from nastools.supernets._mobilenetv3 import ElasticMobileNetV3, MobileNetV3Config
from nastools.supernets._supernet import (
    DEFAULT_SUPERNET,
    MobileNetV3Supernet,
    Supernet,
    data_dir,
    load_supernet,
    supernet_names,
)
from nastools.supernets._validation import (
    count_macs,
    count_params,
    recalibrate_batchnorm,
    top1_accuracy,
)

__all__ = [
    "DEFAULT_SUPERNET",
    "ElasticMobileNetV3",
    "MobileNetV3Config",
    "MobileNetV3Supernet",
    "Supernet",
    "count_macs",
    "count_params",
    "data_dir",
    "load_supernet",
    "recalibrate_batchnorm",
    "supernet_names",
    "top1_accuracy",
]
