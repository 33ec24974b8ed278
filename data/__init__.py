"""Trained checkpoints shipped with nastools, installed as the package ``nastools.checkpoints``."""
