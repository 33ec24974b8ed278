"""The GPT family: HW-GPT-Bench's elastic decoder-only GPT, ``gpt-s`` and ``pydoc-gpt``.

Elastic number of layers, embedding width and bias (global), attention heads and MLP ratio (per
layer), weight sharing by leading slices; laid out as every family: ``_config`` (:class:`GPTConfig`,
the shape and the search space: an arch is ``layers``, ``embed``, ``bias``, ``heads_0``..,
``mlp_0``..; :class:`GPTSizes`, a sub-network's sizes; torch-free), ``_shapes``
(:func:`count_macs_params`: MACs and parameters from the sizes alone), ``_network`` (the static
:class:`GPT` and the weight-sharing :class:`ElasticGPT`), ``_supernet`` (:class:`GPTSupernet` and the
factories of ``gpt-s``, HW-GPT-Bench's GPT-S space at full size with random weights: MACs,
parameters, latency and memory, and ``pydoc-gpt``, trained here on CPython's help texts,
``data/pydoc-gpt.pt``, held-out character perplexity), ``_embedded`` (the training recipe of
``pydoc-gpt``). Names are imported on first use, so that the config and the space import without
torch.
"""

from nastools.supernets._lazy import lazy_exports
from nastools.supernets.gpt._config import CHECKPOINT_KIND

#: Supernets of this family by name: ``load_supernet(name)`` calls the factory.
SUPERNETS = {
    "gpt-s": "nastools.supernets.gpt._supernet:gpt_s",
    "pydoc-gpt": "nastools.supernets.gpt._supernet:pydoc_gpt",
}
#: Checkpoint kinds this family reads: ``load_supernet(path)`` calls the reader.
CHECKPOINT_KINDS = {CHECKPOINT_KIND: "nastools.supernets.gpt._supernet:from_checkpoint"}
#: Training recipes of this family's embedded supernets (``python -m nastools.training --supernet``).
TRAINING = {"pydoc-gpt": "nastools.supernets.gpt._embedded:recipe"}

_EXPORTS = {
    "._config": ["GPT_S_CONFIG", "PARAMETER_DESCRIPTIONS", "GPTConfig", "GPTSizes"],
    "._shapes": ["count_macs_params"],
    "._network": ["GPT", "ElasticGPT"],
    "._supernet": ["GPTSupernet", "gpt_s", "pydoc_gpt"],
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(["CHECKPOINT_KIND", *(name for names in _EXPORTS.values() for name in names)])
