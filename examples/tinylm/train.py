"""Weight-sharing training of :class:`~tinylm.model.ElasticLM` with the sandwich rule (BigNAS / OFA).

Each step trains four sub-networks on one batch, accumulating their gradients in the shared weights:
the largest on the true next characters, then the smallest and two random ones distilled in place from
the largest's predictions. As in OFA, a student's loss adds the labels' cross-entropy to the teacher's
(here half of each: its target is the mean of the true next character and the largest's distribution);
with the teacher's alone, a run this short stalls near unigram perplexity. Seeds are fixed and it runs
on one thread, so a rerun gives the same checkpoint. About four minutes on one CPU core::

    PYTHONPATH=examples python -m tinylm.train --out examples/tinylm/tinylm.pt

The loop is written out here because it is how the shipped ``tinylm.pt`` was made (its file hash is its
identity in every result store). nastools' own weight-sharing trainer runs the same kind of training on
any network with the elastic-network methods, as :class:`~tinylm.model.ElasticLM` has:
:func:`train_with_nastools` (``--trainer nastools``) trains it on nastools' text task, the same corpus.
It is not a drop-in for the loop above: epochs over the text instead of random windows per step, its
own learning-rate schedule, gradient clipping and sampler of sub-networks, so its checkpoint differs.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import platform
import random
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from tinylm.data import EVAL_SEQUENCES, Corpus, load_corpus
from tinylm.model import ElasticLM, SpaceConfig, perplexity

__all__ = ["evaluate", "save", "train", "train_with_nastools"]


@torch.no_grad()
def evaluate(model: ElasticLM, corpus: Corpus, arch: dict[str, int]) -> float:
    """Held-out perplexity of ``arch`` on the fixed evaluation batch."""
    inputs, targets = corpus.heldout_batch(EVAL_SEQUENCES, model.space_config.context)
    return perplexity(model(inputs, arch), targets)


def train(
    steps: int = 1500,
    batch_size: int = 16,
    lr: float = 2e-3,
    warmup: int = 30,
    seed: int = 0,
    log_every: int = 250,
) -> tuple[ElasticLM, Corpus, list[dict[str, float]]]:
    """Train the super-network.

    Args:
        steps: Optimizer steps (each trains four sub-networks).
        batch_size: Training sequences per step, drawn at random positions of the training text.
        lr: Peak AdamW learning rate (linear warm-up, then cosine decay to a tenth of it).
        warmup: Warm-up steps.
        seed: Seed of the weights, the batches and the sampled sub-networks.
        log_every: Steps between held-out evaluations of the largest and smallest sub-networks.

    Returns:
        The trained model, the corpus, and the training log.
    """
    torch.manual_seed(seed)
    batches = torch.Generator().manual_seed(seed)
    archs = random.Random(seed)
    corpus = load_corpus()
    space = SpaceConfig()
    model = ElasticLM(space, len(corpus.vocab))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.01)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.1 + 0.45 * (1 + math.cos(math.pi * (step - warmup) / (steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    largest, smallest = space.extreme(max), space.extreme(min)
    log: list[dict[str, float]] = []
    for step in range(1, steps + 1):
        starts = torch.randint(0, len(corpus.train) - space.context - 1, (batch_size,), generator=batches)
        sequences = corpus.windows(corpus.train, starts, space.context)
        inputs, targets = sequences[:, :-1], sequences[:, 1:]
        optimizer.zero_grad()
        logits = model(inputs, largest)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        loss.backward()
        teacher = logits.detach().softmax(dim=-1)
        for arch in (smallest, space.random(archs), space.random(archs)):
            student = model(inputs, arch).log_softmax(dim=-1)
            distill = -(teacher * student).sum(dim=-1).mean()  # cross-entropy to the teacher
            (0.5 * F.nll_loss(student.flatten(0, 1), targets.flatten()) + 0.5 * distill).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        if step % log_every == 0 or step == steps:
            entry = {
                "step": step,
                "train_loss": round(loss.item(), 4),
                "heldout_ppl_largest": round(evaluate(model, corpus, largest), 3),
                "heldout_ppl_smallest": round(evaluate(model, corpus, smallest), 3),
            }
            log.append(entry)
            print(entry, flush=True)
    return model, corpus, log


def train_with_nastools(
    epochs: int = 4, batch_size: int = 16, seed: int = 0, task: Any = None, progress: bool = True
) -> tuple[ElasticLM, Corpus, list[dict[str, float]]]:
    """Train the super-network with nastools' trainer: the sandwich rule with in-place distillation.

    Each step trains the largest sub-network on the true next characters and the smallest and two
    random ones half on them, half distilled from the largest (nastools' ``sandwich`` strategy, no
    warm-up, no label smoothing), on nastools' text task: every window of the training text once per
    epoch, shifted by a random offset.

    Args:
        epochs: Passes over the training text.
        batch_size: Training sequences per step.
        seed: Seed of the weights, the batches and the sampled sub-networks.
        task: The text task (default: nastools' ``TextTask`` with this example's context length).
        progress: Show a progress bar.

    Returns:
        The trained model, the corpus, and the training log (mean loss per epoch).
    """
    from nastools.tasks.text import TextConfig, TextTask
    from nastools.training import TrainingConfig
    from nastools.training import train as train_elastic

    space = SpaceConfig()
    if task is None:
        task = TextTask(TextConfig(context=space.context, eval_sequences=EVAL_SEQUENCES))
    config = TrainingConfig(
        strategy="sandwich",
        epochs=epochs,
        warmup_epochs=0,
        batch_size=batch_size,
        lr=2e-3,
        weight_decay=0.01,
        n_random=2,
        label_smoothing=0.0,
        threads=1,
        seed=seed,
    )
    torch.manual_seed(seed)
    model = ElasticLM(space, task.vocab_size)
    model, log = train_elastic(model, task, config, progress=progress)
    entries = [{"epoch": epoch, "train_loss": round(loss, 4)} for epoch, loss in enumerate(log["loss"], 1)]
    return model, task.corpus, entries


def save(model: ElasticLM, corpus: Corpus, metadata: dict[str, Any], path: Path) -> None:
    """Write the checkpoint: float16 weights (half the bytes), the space, the vocabulary and ``metadata``."""
    checkpoint = {
        "state_dict": {name: w.half() for name, w in model.largest.state_dict().items()},
        "space": dataclasses.asdict(model.space_config),
        "vocab": corpus.vocab,
        "metadata": metadata,
    }
    torch.save(checkpoint, path)


def main(argv: list[str] | None = None) -> None:
    """Command line: train and write the checkpoint."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("tinylm.pt"))
    parser.add_argument("--steps", type=int, default=1500, help="optimizer steps of this example's loop")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--trainer",
        choices=["example", "nastools"],
        default="example",
        help="this file's loop (how tinylm.pt was made) or nastools' trainer",
    )
    parser.add_argument("--epochs", type=int, default=4, help="passes over the text with --trainer nastools")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    if args.trainer == "nastools":
        model, corpus, log = train_with_nastools(epochs=args.epochs, seed=args.seed)
        command = f"python -m tinylm.train --trainer nastools --epochs {args.epochs} --seed {args.seed}"
        budget = {"trainer": "nastools", "epochs": args.epochs}
    else:
        model, corpus, log = train(steps=args.steps, seed=args.seed)
        command = f"python -m tinylm.train --steps {args.steps} --seed {args.seed}"
        budget = {"steps": args.steps}
    seconds = time.perf_counter() - start
    # Measure what ships: the float16-rounded weights.
    model.largest.load_state_dict({n: w.half() for n, w in model.largest.state_dict().items()})
    final = {
        name: round(evaluate(model, corpus, model.space_config.extreme(pick)), 3)
        for name, pick in (("largest", max), ("smallest", min))
    }
    metadata = {
        "command": command,
        **budget,
        "seed": args.seed,
        "train_seconds": round(seconds, 1),
        "heldout_ppl": final,
        "log": log,
        "python": platform.python_version(),
        "torch": str(torch.__version__),
    }
    save(model, corpus, metadata, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) in {seconds:.0f} s: {final}")


if __name__ == "__main__":
    main()
