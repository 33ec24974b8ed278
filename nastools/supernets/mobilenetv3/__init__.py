"""The MobileNetV3 family: OFA's elastic MobileNetV3, the embedded ``digits-mbv3`` and OFA's ImageNet ones.

Everything MobileNetV3 lives in this folder: the elastic network and its plain layers, the closed-form
shapes (MACs, parameters, look-up-table keys), the space, OFA's accuracy predictor (the ImageNet
surrogate top-1), the published latency tables and DyNAS-T's measured table (their pinned public
sources in ``_data``, fetched on first use). The names below are all the rest of nastools knows of
it: a new family is a copy of this folder with its own names.
"""

from nastools.supernets.mobilenetv3 import _data
from nastools.supernets.mobilenetv3._dynast import DYNAST_URL, read_dynast_measurements
from nastools.supernets.mobilenetv3._network import ElasticMobileNetV3, MobileNetV3Config, mobilenetv3_space
from nastools.supernets.mobilenetv3._ofa_predictor import (
    OFA_DATA_ENV,
    OFA_PREDICTOR_URL,
    OFAAccuracyPredictor,
    arch_from_ofa_config,
    arch_to_ofa_config,
    ofa_features,
)
from nastools.supernets.mobilenetv3._shapes import BlockShape, NetworkShape, count_macs_params, network_shape
from nastools.supernets.mobilenetv3._supernet import (
    CHECKPOINT_KIND,
    OFA_RESOLUTIONS,
    MobileNetV3Supernet,
    embedded,
    ofa,
)
from nastools.supernets.mobilenetv3._tables import KNOWN_TABLES, LatencyTable, TableSource, published_tables

#: Supernets of this family by name: ``load_supernet(name)`` calls the factory.
SUPERNETS = {
    "digits-mbv3": "nastools.supernets.mobilenetv3._supernet:embedded",
    "ofa-mbv3-w1.0": "nastools.supernets.mobilenetv3._supernet:ofa_w10",
    "ofa-mbv3-w1.2": "nastools.supernets.mobilenetv3._supernet:ofa_w12",
}
#: Checkpoint kinds this family reads: ``load_supernet(path)`` calls the reader.
CHECKPOINT_KINDS = {CHECKPOINT_KIND: "nastools.supernets.mobilenetv3._supernet:from_checkpoint"}
#: Training recipes of this family's embedded supernets (``python -m nastools.training --supernet``).
TRAINING = {"digits-mbv3": "nastools.supernets.mobilenetv3._embedded:recipe"}
#: The supernet used when none is named.
DEFAULT = "digits-mbv3"
#: Public files its supernets fetch on first use, by dataset name (``nastools data list``): OFA's
#: accuracy predictor, the Note10 and i7-8700K latency tables, DyNAS-T's measurements.
DATASETS = _data.DATASETS

__all__ = [
    "CHECKPOINT_KIND",
    "DATASETS",
    "DYNAST_URL",
    "KNOWN_TABLES",
    "OFA_DATA_ENV",
    "OFA_PREDICTOR_URL",
    "OFA_RESOLUTIONS",
    "BlockShape",
    "ElasticMobileNetV3",
    "LatencyTable",
    "MobileNetV3Config",
    "MobileNetV3Supernet",
    "NetworkShape",
    "OFAAccuracyPredictor",
    "TableSource",
    "arch_from_ofa_config",
    "arch_to_ofa_config",
    "count_macs_params",
    "embedded",
    "mobilenetv3_space",
    "network_shape",
    "ofa",
    "ofa_features",
    "published_tables",
    "read_dynast_measurements",
]
