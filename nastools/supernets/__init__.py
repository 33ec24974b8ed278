"""Supernet families, one folder each (``mobilenetv3/``, ``resnet/`` ...).

A family's ``__init__`` lists what it offers, and the registry in :mod:`nastools.supernet` reads
only that: ``SUPERNETS`` (name -> ``"module:factory"``), ``CHECKPOINT_KINDS`` (checkpoint ``kind``
-> ``"module:reader"``), optionally ``TRAINING`` (name -> ``"module:recipe"`` for
``python -m nastools.training``) and ``DEFAULT`` (the one family whose supernet is used when none is
named). Nothing outside a family's folder names the family; to add one, copy a folder.

Every family folder has the same file roles: ``__init__`` (those names; the rest imported on first
use), ``_config`` (the config and the space, torch-free), ``_shapes`` (closed-form MACs and
parameters), ``_network`` (the elastic network and its static sub-networks), ``_supernet`` (the
:class:`~nastools.supernet.Supernet` and its factories) and ``_embedded`` (the training recipe).
What they share: :mod:`nastools.supernets._elastic` (the elastic layers), ``_image`` (image
classification: top-1, batch-norm recalibration), ``_checkpoints``, ``_training`` and ``_checks``.
:func:`nastools.testing.check_supernet` is the conformance suite every supernet passes.
"""
