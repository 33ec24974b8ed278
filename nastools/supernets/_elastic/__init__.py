"""The shared elastic layer: what every family's weight sharing is built from.

* :mod:`._sliced`: sub-networks as static modules of their sizes, run with the leading slices of the
  largest module's weights (Transformers: HAT, GPT), and their extraction into standalone modules.
* :mod:`._network`: the elastic-network protocol as base classes (``ElasticNetwork``,
  ``ElasticImageNetwork``: ``max_arch``, ``min_arch``, ``prepare_inputs``, ``resolution``) and ``resize``.
* :mod:`._dynamic`: OFA's elastic convolutional layers (``DynamicConv2d``, ``DynamicSeparableConv2d``
  with the kernel-transformation matrices, ``DynamicBatchNorm2d``, ``DynamicLinear`` and the layers
  built of them), named as OFA's so that OFA's and the shipped checkpoints load.
* :mod:`._static`: the plain layers of extracted convolutional sub-networks (``ConvLayer``,
  ``LinearLayer``, ``ResidualBlock``, ``conv_bn``).
* :mod:`._importance`: importance sorting of shared channels (OFA's re-organising after the warm-up).
* :mod:`._extraction`: copies of the leading slices of elastic weights into static layers.
* :mod:`._widths`: OFA's channel rounding ``make_divisible`` (torch-free).

Names are imported on first use, so that a family's torch-free config imports ``make_divisible``
without torch.
"""

from nastools.supernets._lazy import lazy_exports

_EXPORTS = {
    "._dynamic": [
        "DynamicBatchNorm2d",
        "DynamicConv2d",
        "DynamicConvLayer",
        "DynamicLinear",
        "DynamicLinearLayer",
        "DynamicSeparableConv2d",
        "dynamic_conv_bn",
    ],
    "._extraction": ["copy_bn", "copy_leading"],
    "._importance": ["channel_importance", "importance_order", "permute_bn", "permute_channels"],
    "._network": ["ElasticImageNetwork", "ElasticNetwork", "resize"],
    "._sliced": ["extract", "leading_slices", "run_sliced", "skeleton"],
    "._static": ["ConvLayer", "LinearLayer", "ResidualBlock", "activation", "conv_bn", "same_padding"],
    "._widths": ["make_divisible"],
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(name for names in _EXPORTS.values() for name in names)
