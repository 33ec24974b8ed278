"""Weight-sharing super-networks: the :class:`Supernet` protocol and the elastic MobileNetV3."""

from nastools.supernets._dynast import read_dynast_measurements
from nastools.supernets._mobilenetv3 import ElasticMobileNetV3, MobileNetV3Config
from nastools.supernets._ofa_predictor import (
    OFA_DATA_ENV,
    OFA_PREDICTOR_URL,
    OFAAccuracyPredictor,
    arch_from_ofa_config,
    arch_to_ofa_config,
    ofa_features,
)
from nastools.supernets._shapes import BlockShape, NetworkShape, network_shape
from nastools.supernets._supernet import (
    DEFAULT_SUPERNET,
    OFA_RESOLUTIONS,
    MobileNetV3Supernet,
    Supernet,
    data_dir,
    load_supernet,
    supernet_names,
)
from nastools.supernets._validation import (
    count_macs,
    count_params,
    fold_batchnorm,
    recalibrate_batchnorm,
    top1_accuracy,
)

__all__ = [
    "DEFAULT_SUPERNET",
    "OFA_DATA_ENV",
    "OFA_PREDICTOR_URL",
    "OFA_RESOLUTIONS",
    "BlockShape",
    "ElasticMobileNetV3",
    "MobileNetV3Config",
    "MobileNetV3Supernet",
    "NetworkShape",
    "OFAAccuracyPredictor",
    "Supernet",
    "arch_from_ofa_config",
    "arch_to_ofa_config",
    "count_macs",
    "count_params",
    "data_dir",
    "fold_batchnorm",
    "load_supernet",
    "network_shape",
    "ofa_features",
    "read_dynast_measurements",
    "recalibrate_batchnorm",
    "supernet_names",
    "top1_accuracy",
]
