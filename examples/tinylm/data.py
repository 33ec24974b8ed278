"""The corpus: the help texts that ship inside Python (``pydoc_data.topics``), read character by character.

Nothing is downloaded. The topics are sorted by name; every tenth one is held out, so the held-out
perplexity measures text the model never saw (whole documents, not neighbouring characters).
"""

from __future__ import annotations

from dataclasses import dataclass
from pydoc_data.topics import topics

import torch

__all__ = ["EVAL_SEQUENCES", "UNKNOWN", "Corpus", "load_corpus"]

#: Id 0 of every vocabulary: characters the training text does not contain.
UNKNOWN = "\0"
#: Size of the fixed held-out evaluation batch (sequences of ``context`` characters).
EVAL_SEQUENCES = 64
HELDOUT_EVERY = 10
SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Corpus:
    """Training and held-out text, and the character vocabulary.

    Attributes:
        vocab: The vocabulary: character ``vocab[i]`` has token id ``i``; ``vocab[0]`` is :data:`UNKNOWN`.
        train: Token ids of the training topics, concatenated.
        heldout: Token ids of the held-out topics, concatenated.
    """

    vocab: str
    train: torch.Tensor
    heldout: torch.Tensor

    def windows(self, split: torch.Tensor, starts: torch.Tensor, context: int) -> torch.Tensor:
        """The ``context + 1`` tokens of ``split`` from each of ``starts``: ``(len(starts), context + 1)``."""
        return split[starts[:, None] + torch.arange(context + 1)]

    def heldout_batch(self, n: int, context: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` fixed held-out sequences, evenly spaced over the held-out text.

        Returns:
            ``(inputs, targets)``, both LongTensors of shape ``(n, context)``; ``targets`` is ``inputs``
            shifted by one character.
        """
        starts = torch.linspace(0, len(self.heldout) - context - 1, n).long()
        sequences = self.windows(self.heldout, starts, context)
        return sequences[:, :-1], sequences[:, 1:]


def encode(text: str, vocab: str) -> torch.Tensor:
    """Token ids of ``text`` (characters outside ``vocab`` become id 0)."""
    index = {char: i for i, char in enumerate(vocab)}
    return torch.tensor([index.get(char, 0) for char in text], dtype=torch.long)


def load_corpus(vocab: str | None = None) -> Corpus:
    """Split the topics deterministically and encode them.

    Args:
        vocab: The vocabulary to encode with (a trained model's, so ids keep their meaning on another
            Python version, whose help texts differ slightly); by default, the training text's characters.
    """
    names = sorted(topics)
    train_text = SEPARATOR.join(topics[n] for i, n in enumerate(names) if i % HELDOUT_EVERY != 0)
    heldout_text = SEPARATOR.join(topics[n] for i, n in enumerate(names) if i % HELDOUT_EVERY == 0)
    if vocab is None:
        vocab = UNKNOWN + "".join(sorted(set(train_text) - {UNKNOWN}))
    return Corpus(vocab, encode(train_text, vocab), encode(heldout_text, vocab))
