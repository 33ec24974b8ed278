"""The MobileNetV3 family: OFA's elastic MobileNetV3, the embedded ``digits-mbv3`` and OFA's ImageNet ones.

Everything MobileNetV3 lives in this folder, laid out as every family: ``_config`` (the config and
the space, torch-free), ``_shapes`` (closed-form MACs, parameters and look-up-table keys),
``_network`` (the elastic network and its static sub-networks), ``_supernet`` (the supernets and
their factories), ``_embedded`` (the training recipe of ``digits-mbv3``); beside them what only this
family has: OFA's accuracy predictor (the ImageNet surrogate top-1), the published latency tables and
DyNAS-T's measured table (their pinned public sources in ``_data``, fetched on first use). The
names below are all the rest of nastools knows of it: a new family is a copy of this folder with its
own names. Names are imported on first use, so that the config and the space import without torch.
"""

from nastools.supernets._lazy import lazy_exports
from nastools.supernets.mobilenetv3 import _data
from nastools.supernets.mobilenetv3._config import CHECKPOINT_KIND

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

_EXPORTS = {
    "._config": ["MobileNetV3Config", "mobilenetv3_space"],
    "._dynast": ["DYNAST_URL", "read_dynast_measurements"],
    "._network": ["ElasticMobileNetV3"],
    "._ofa_predictor": [
        "OFA_DATA_ENV",
        "OFA_PREDICTOR_URL",
        "OFAAccuracyPredictor",
        "arch_from_ofa_config",
        "arch_to_ofa_config",
        "ofa_features",
    ],
    "._shapes": ["BlockShape", "NetworkShape", "count_macs_params", "network_shape"],
    "._supernet": ["OFA_RESOLUTIONS", "MobileNetV3Supernet", "embedded", "ofa"],
    "._tables": ["KNOWN_TABLES", "LatencyTable", "TableSource", "published_tables"],
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(["CHECKPOINT_KIND", "DATASETS", *(name for names in _EXPORTS.values() for name in names)])
