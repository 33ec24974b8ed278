"""A tiny weight-sharing Transformer language model: a user super-network that plugs into nastools by name.

Load it with ``nastools.supernet.load_supernet("tinylm.supernet:make_supernet")`` (``examples/`` on the path).
"""
