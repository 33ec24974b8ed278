"""The recipe of the embedded ``pydoc-gpt``: HW-GPT-Bench's elastic GPT, small, on CPython's help texts."""

from __future__ import annotations

from functools import partial

from nastools.supernets._training import Recipe, TrainingConfig
from nastools.supernets.gpt._config import CHECKPOINT_KIND, GPTConfig
from nastools.supernets.gpt._network import ElasticGPT
from nastools.tasks.text import TextConfig, TextTask, load_corpus

__all__ = ["EMBEDDED_TASK_CONFIG", "EMBEDDED_TRAINING", "embedded_model_config", "recipe"]

#: Next-character prediction on ``pydoc_data.topics`` (every tenth topic held out), 64 characters per
#: sequence; perplexity on a fixed batch of 256 held-out sequences (16,384 characters, half the held-out
#: text: with 64, the perplexity of one sub-network varied by 0.13 between held-out draws, a quarter of
#: its spread over random sub-networks).
EMBEDDED_TASK_CONFIG = TextConfig(context=64, eval_sequences=256)

#: The sandwich rule with in-place distillation and one random sub-network per step (the largest lost
#: least to weight sharing with one: continuing a warmed-up network for 120 steps, its perplexity was
#: 6.87 trained alone, 6.85 / 7.13 / 7.26 with the smallest and 0 / 1 / 2 random ones, at 0.5 / 0.7 /
#: 1 times the cost of 2); 10 epochs of 208 steps, the first training the largest alone; no label
#: smoothing (it would bias the perplexity).
EMBEDDED_TRAINING = TrainingConfig(
    epochs=10,
    warmup_epochs=1,
    batch_size=32,
    lr=3e-3,
    weight_decay=0.01,
    n_random=1,
    label_smoothing=0.0,
)


def embedded_model_config(vocab_size: int) -> GPTConfig:
    """GPT-S's elastic parameters at a small scale, for a character vocabulary of ``vocab_size``.

    GPT-S's ratios kept: heads x head size spans the embedding widths (heads {2, 3, 4} of 32 channels
    for embed {64, 96, 128}, as {4, 8, 12} x 64 for {192, 384, 768}), MLP ratio {2, 3, 4}, bias on/off,
    RoPE on half of each head (HW-GPT-Bench's training setting); layers {2, 3, 4} in place of
    {10, 11, 12}. 3 x 2 x (9^2 + 9^3 + 9^4) = 44,226 distinct networks.
    """
    return GPTConfig(
        vocab_size=vocab_size,
        context=EMBEDDED_TASK_CONFIG.context,
        embed=(64, 96, 128),
        layers=(2, 3, 4),
        heads=(2, 3, 4),
        mlp=(2, 3, 4),
        bias=(False, True),
        head_size=32,
        rotary_fraction=0.5,
    )


def recipe() -> Recipe:
    """``pydoc-gpt``: the elastic GPT on Python's help texts, trained with the sandwich rule.

    The shipped checkpoint took 1,115 s of training, and the report (with the largest trained alone)
    643 s more, on one thread of 2 busy shared cores. From the CPU time of its steps (0.2 s for the
    largest alone, 0.32 s for a sandwich step, one thread) the whole command needs about 19 minutes on
    one quiet thread, less with ``--threads 2`` on 2 quiet cores (estimated, not timed there).

    The vocabulary is the training text's characters on this Python (stored in the checkpoint's task
    config, so the ids keep their meaning where the help texts differ).
    """
    vocab = load_corpus(heldout_every=EMBEDDED_TASK_CONFIG.heldout_every).vocab
    task_config = TextConfig(**{**EMBEDDED_TASK_CONFIG.to_dict(), "vocab": vocab})
    return Recipe(
        name="pydoc-gpt",
        kind=CHECKPOINT_KIND,
        build=ElasticGPT,
        model_config=embedded_model_config(len(vocab)),
        task=partial(TextTask, task_config),
        training=EMBEDDED_TRAINING,
    )
