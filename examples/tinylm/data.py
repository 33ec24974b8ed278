"""The corpus: the help texts that ship inside Python (``pydoc_data.topics``), read character by character.

Nothing is downloaded. The topics are sorted by name; every tenth one is held out, so the held-out
perplexity measures text the model never saw (whole documents, not neighbouring characters).

The corpus is nastools' text task (:mod:`nastools.tasks.text`), used as it is: a user whose supernet
reads this text imports it rather than copying it, and the example, nastools' text task and its GPT
family then read the very same split. What the example adds is its fixed evaluation batch.
"""

from __future__ import annotations

from nastools.tasks.text import UNKNOWN, Corpus, encode, load_corpus

__all__ = ["EVAL_SEQUENCES", "UNKNOWN", "Corpus", "encode", "load_corpus"]

#: Size of the fixed held-out evaluation batch (sequences of ``context`` characters).
EVAL_SEQUENCES = 64
