"""A text task: the help texts that ship inside Python (``pydoc_data.topics``), read character by character.

Nothing is downloaded. The topics are sorted by name; every tenth one is held out, so the held-out
perplexity measures text the model never saw (whole documents, not neighbouring characters).
Training cuts the training text into windows of ``context + 1`` characters, one training example
each, and shifts every window by a random offset when it is drawn; the metric is the perplexity of
next-character prediction on a fixed batch of held-out windows (:class:`TextTask` implements the
:class:`~nastools.tasks._task.Task` protocol for models that map token ids ``(B, T)`` to next-token
logits ``(B, T, V)``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pydoc_data.topics import topics

import numpy as np
import torch
from torch import nn

from nastools.metrics import Metric
from nastools.tasks._task import cross_entropy, distillation_kl

__all__ = ["PERPLEXITY", "UNKNOWN", "Corpus", "TextConfig", "TextTask", "encode", "load_corpus"]

#: Id 0 of every vocabulary: characters the training text does not contain.
UNKNOWN = "\0"
SEPARATOR = "\n\n"
#: Held-out perplexity of next-character prediction (minimised).
PERPLEXITY = Metric("perplexity", "min", "", "held-out character perplexity of unseen help topics")


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
    """Token ids of ``text`` (characters outside ``vocab`` become id 0).

    Example:
        >>> encode("abz", UNKNOWN + "ab").tolist()
        [1, 2, 0]
    """
    index = {char: i for i, char in enumerate(vocab)}
    return torch.tensor([index.get(char, 0) for char in text], dtype=torch.long)


def load_corpus(vocab: str | None = None, heldout_every: int = 10) -> Corpus:
    """Split the topics deterministically and encode them.

    Args:
        vocab: The vocabulary to encode with (a trained model's, so ids keep their meaning on another
            Python version, whose help texts differ slightly); by default, the training text's characters.
        heldout_every: Every ``heldout_every``-th topic (by sorted name, from the first) is held out.

    Example:
        >>> corpus = load_corpus()
        >>> corpus.vocab[0] == UNKNOWN and len(corpus.train) > 5 * len(corpus.heldout)
        True
    """
    if isinstance(heldout_every, bool) or not isinstance(heldout_every, int) or heldout_every < 2:
        raise ValueError(f"heldout_every must be an integer >= 2, got {heldout_every!r}")
    names = sorted(topics)
    train_text = SEPARATOR.join(topics[n] for i, n in enumerate(names) if i % heldout_every != 0)
    heldout_text = SEPARATOR.join(topics[n] for i, n in enumerate(names) if i % heldout_every == 0)
    if vocab is None:
        vocab = UNKNOWN + "".join(sorted(set(train_text) - {UNKNOWN}))
    return Corpus(vocab, encode(train_text, vocab), encode(heldout_text, vocab))


@dataclass(frozen=True)
class TextConfig:
    """How the text task is made; stored with a checkpoint so it can be rebuilt.

    Attributes:
        context: Characters a model reads per sequence (and predicts: the next of each).
        eval_sequences: Held-out sequences of the fixed evaluation batch (and of each other draw).
        heldout_every: Every ``heldout_every``-th topic is held out.
        vocab: The character vocabulary (None: the training text's characters; the task stores the
            resolved one in its :attr:`TextTask.config`, so a checkpoint keeps its ids' meaning).
        seed: Seeds the held-out draws the checks use for the evaluation noise.
    """

    context: int = 64
    eval_sequences: int = 64
    heldout_every: int = 10
    vocab: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        """Check the sizes (one line, naming the field)."""
        for name, low in (("context", 1), ("eval_sequences", 1), ("heldout_every", 2), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")

    def to_dict(self) -> dict:
        """Plain dict (JSON-friendly)."""
        return asdict(self)


class TextTask:
    """Next-character prediction on Python's help texts: the :class:`~nastools.tasks._task.Task` protocol.

    Args:
        config: How it is made (default: ``TextConfig()``).

    Attributes:
        config: ``config`` with its vocabulary resolved (stored in a checkpoint).
        corpus: The encoded text.
        heldout_inputs, heldout_targets: The fixed evaluation batch ``(eval_sequences, context)``.
        metric: :data:`PERPLEXITY`.

    Example:
        >>> task = TextTask(TextConfig(context=32))
        >>> (tokens,), targets = task.train_batch(torch.arange(3), torch.Generator().manual_seed(0))
        >>> tuple(tokens.shape), bool((tokens[:, 1:] == targets[:, :-1]).all())
        ((3, 32), True)
    """

    metric = PERPLEXITY

    def __init__(self, config: TextConfig | None = None) -> None:
        config = config or TextConfig()
        self.corpus = load_corpus(config.vocab, config.heldout_every)
        self.config = replace(config, vocab=self.corpus.vocab)
        context = self.config.context
        if len(self.corpus.heldout) <= context + 1:
            raise ValueError(
                f"context={context} is longer than the held-out text ({len(self.corpus.heldout)})"
            )
        self.heldout_inputs, self.heldout_targets = self.corpus.heldout_batch(
            self.config.eval_sequences, context
        )
        self._draws: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def vocab_size(self) -> int:
        """Token ids: the characters of the vocabulary."""
        return len(self.corpus.vocab)

    @property
    def n_train(self) -> int:
        """Training windows: the training text cut into windows of ``context + 1`` characters."""
        return (len(self.corpus.train) - 1) // (self.config.context + 1)

    def train_batch(
        self, indices: torch.Tensor, generator: torch.Generator
    ) -> tuple[tuple[torch.Tensor], torch.Tensor]:
        """The training windows at ``indices``, each shifted by a random offset: ``((tokens,), next tokens)``.

        Window ``i`` starts at ``i * (context + 1)`` plus an offset below ``context + 1`` (so the last
        one still fits), so that an epoch visits every part of the text and each epoch cuts it anew.
        """
        span = self.config.context + 1
        offsets = torch.randint(0, span, (len(indices),), generator=generator)
        starts = (indices * span + offsets).clamp(max=len(self.corpus.train) - span)
        sequences = self.corpus.windows(self.corpus.train, starts, self.config.context)
        return (sequences[:, :-1],), sequences[:, 1:]

    def example_inputs(self, batch_size: int) -> tuple[torch.Tensor]:
        """``batch_size`` held-out sequences of token ids ``(batch_size, context)``, evenly spaced."""
        return (self.corpus.heldout_batch(batch_size, self.config.context)[0],)

    def loss(
        self, outputs: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0
    ) -> torch.Tensor:
        """Mean cross-entropy of the next-token logits ``(B, T, V)`` for the next tokens ``(B, T)``."""
        return cross_entropy(outputs, targets, label_smoothing)

    def distillation_loss(self, outputs: torch.Tensor, teacher_outputs: torch.Tensor) -> torch.Tensor:
        """KL divergence to the teacher's next-token distributions, averaged over the tokens."""
        return distillation_kl(outputs, teacher_outputs)

    def heldout_draw(self, draw: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Another held-out batch of random windows, the same for the same ``draw``."""
        if isinstance(draw, bool) or not isinstance(draw, int) or draw < 0:
            raise ValueError(f"draw must be a non-negative integer, got {draw!r}")
        if draw not in self._draws:
            seed = int(np.random.SeedSequence([self.config.seed, draw]).generate_state(1)[0])
            generator = torch.Generator().manual_seed(seed)
            context = self.config.context
            high = len(self.corpus.heldout) - context - 1
            starts = torch.randint(0, high + 1, (self.config.eval_sequences,), generator=generator)
            sequences = self.corpus.windows(self.corpus.heldout, starts, context)
            self._draws[draw] = (sequences[:, :-1], sequences[:, 1:])
        return self._draws[draw]

    @torch.no_grad()
    def score(self, module: nn.Module, arch: object = None, *, draw: int | None = None) -> float:
        """Held-out perplexity of ``module`` (``exp`` of the mean cross-entropy per character).

        Args:
            module: Maps token ids ``(B, T)`` to next-token logits ``(B, T, V)``.
            arch: Unused: perplexity does not depend on the arch beyond ``module``.
            draw: None: the fixed evaluation batch; an integer: :meth:`heldout_draw`.
        """
        inputs, targets = (
            (self.heldout_inputs, self.heldout_targets) if draw is None else self.heldout_draw(draw)
        )
        was_training = module.training
        module.eval()
        try:
            return math.exp(cross_entropy(module(inputs), targets).item())
        finally:
            module.train(was_training)
