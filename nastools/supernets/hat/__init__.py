"""The HAT family: HAT's elastic encoder-decoder SuperTransformer, ``hat-wmt14-en-de`` and ``numbers-hat``.

HAT (Wang et al. 2020, "HAT: Hardware-Aware Transformers"): elastic encoder and decoder embedding
widths, per-layer FFN widths, self-attention and encoder-decoder attention heads, decoder depth and
arbitrary encoder-decoder attention (each decoder layer attends to the last 1, 2 or 3 encoder
layers), weight sharing by leading slices. Laid out as every family: ``_config`` (:class:`HATConfig`,
the shape and the space, torch-free), ``_shapes`` (closed-form MACs and parameters), ``_network``
(the static :class:`HATTransformer` with incremental decoding and the weight-sharing
:class:`ElasticHAT`), ``_supernet`` (:class:`HATSupernet` and the factories), ``_embedded`` (the
training recipe of ``numbers-hat``). ``hat-wmt14-en-de`` is HAT's WMT'14 En-De space at full size with
random weights (MACs, parameters, latency as HAT measures it); ``numbers-hat`` is trained here on
English to German number phrases (:mod:`nastools.tasks.translation`, held-out BLEU). Names are
imported on first use, so that the config and the space import without torch.
"""

from nastools.supernets._lazy import lazy_exports
from nastools.supernets.hat._config import CHECKPOINT_KIND

#: Supernets of this family by name: ``load_supernet(name)`` calls the factory.
SUPERNETS = {
    "hat-wmt14-en-de": "nastools.supernets.hat._supernet:hat_wmt14_en_de",
    "numbers-hat": "nastools.supernets.hat._supernet:embedded",
}
#: Checkpoint kinds this family reads: ``load_supernet(path)`` calls the reader.
CHECKPOINT_KINDS = {CHECKPOINT_KIND: "nastools.supernets.hat._supernet:from_checkpoint"}
#: Training recipes of this family's embedded supernets (``python -m nastools.training --supernet``).
TRAINING = {"numbers-hat": "nastools.supernets.hat._embedded:recipe"}

_EXPORTS = {
    "._config": [
        "ARBITRARY_ATTENTION",
        "HAT_WMT14_EN_DE_CONFIG",
        "PARAMETER_DESCRIPTIONS",
        "HATConfig",
        "HATSizes",
        "attended_layers",
    ],
    "._embedded": ["EMBEDDED_MODEL_CONFIG", "EMBEDDED_TASK_CONFIG", "EMBEDDED_TRAINING", "recipe"],
    "._network": ["DecoderState", "ElasticHAT", "EncoderOutput", "HATTransformer", "decoding_workload"],
    "._shapes": ["count_macs_params", "hat_macs", "hat_params"],
    "._supernet": ["HAT_MISSING_BLEU", "HATSupernet", "embedded", "from_checkpoint", "hat_wmt14_en_de"],
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(["CHECKPOINT_KIND", *(name for names in _EXPORTS.values() for name in names)])
