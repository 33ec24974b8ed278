"""The recipe of the embedded ``numbers-hat``: HAT's elastic design, small, on English to German numbers."""

from __future__ import annotations

from functools import partial

from nastools.supernets._training import Recipe, TrainingConfig
from nastools.supernets.hat._config import CHECKPOINT_KIND, HATConfig
from nastools.supernets.hat._network import ElasticHAT
from nastools.tasks.translation import TranslationConfig, TranslationTask

__all__ = ["EMBEDDED_MODEL_CONFIG", "EMBEDDED_TASK_CONFIG", "EMBEDDED_TRAINING", "recipe"]

#: HAT's elastic dimensions at a small width, for the 363-token joint vocabulary of the number
#: phrases: encoder and decoder embed {16, 64} (drawn independently), FFN {32, 128, 256} per layer,
#: heads {2, 4} per attention splitting a fixed q/k/v width of 64, 3 encoder layers (the fewest that
#: arbitrary attention's "last three" needs), 1-3 decoder layers, arbitrary attention {-1, 1, 2}.
#: 21 parameters, 41,461,632 distinct networks, 1.5-14.2 M MACs, 32-373 k parameters (a 1.5 MB
#: checkpoint). The embedding range is wider than HAT's (512-640): in trial trainings on an earlier,
#: easier version of the task (8 nouns, no conjugation), embed {32, 64} let even the smallest
#: sub-network reach 98 BLEU against the largest's 99.7, so nothing separated the sub-networks.
EMBEDDED_MODEL_CONFIG = HATConfig(
    vocab_size=363,
    encoder_layers=3,
    decoder_layers=(1, 2, 3),
    encoder_embed=(16, 64),
    decoder_embed=(16, 64),
    encoder_ffn=(32, 128, 256),
    decoder_ffn=(32, 128, 256),
    encoder_heads=(2, 4),
    decoder_heads=(2, 4),
    cross_heads=(2, 4),
    qkv_dim=64,
)
#: The task: the shipped corpus, 2,000 pairs held out, BLEU of greedy decoding on 500 of them.
EMBEDDED_TASK_CONFIG = TranslationConfig()
#: The sandwich rule with in-place distillation and one random sub-network per step, 8 epochs (the
#: first training the largest alone) of 218 steps of 128 pairs, AdamW 2e-3, label smoothing 0.1.
#: Sized by CPU time so that the whole command, the report included, fits 20 minutes on one thread:
#: on this machine a step of the largest alone took 0.21 s, one of largest + smallest + two random
#: 0.45 s, so 10 epochs with two random ones (the first trial recipe) would have needed about 15 min
#: of training plus 8 min for the largest trained alone in the report.
EMBEDDED_TRAINING = TrainingConfig(
    epochs=8, warmup_epochs=1, batch_size=128, lr=2e-3, n_random=1, label_smoothing=0.1
)


def recipe() -> Recipe:
    """``numbers-hat``: HAT's elastic Transformer on number phrases, trained with the sandwich rule.

    :data:`EMBEDDED_TRAINING` (cosine schedule after one epoch of learning-rate warm-up); FFN hidden
    units sorted by importance after the warm-up epoch.
    """
    return Recipe(
        name="numbers-hat",
        kind=CHECKPOINT_KIND,
        build=ElasticHAT,
        model_config=EMBEDDED_MODEL_CONFIG,
        task=partial(TranslationTask, EMBEDDED_TASK_CONFIG),
        training=EMBEDDED_TRAINING,
    )
