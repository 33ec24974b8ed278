"""Supernet families, one folder each (``mobilenetv3/``, ``resnet/`` ...).

A family's ``__init__`` lists what it offers, and the registry in :mod:`nastools.supernet` reads
only that: ``SUPERNETS`` (name -> ``"module:factory"``), ``CHECKPOINT_KINDS`` (checkpoint ``kind``
-> ``"module:reader"``), optionally ``TRAINING`` (name -> ``"module:recipe"`` for
``python -m nastools.training``) and ``DEFAULT`` (the one family whose supernet is used when none is
named). Nothing outside a family's folder names the family; to add one, copy a folder.
"""
