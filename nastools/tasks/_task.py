"""The task protocol: what the weight-sharing trainer and the checks need from a dataset and its metric.

A task owns its data, its training loss and its held-out metric; a network owns its weights. The one
trainer (:func:`nastools.supernets._training.train`) and the one report of the checks
(:func:`nastools.supernets._checks.supernet_report`) see a task only through :class:`Task`, so an
image classifier, a language model and a translation model train and are checked by the same code.

Outputs are logits over the last dimension: ``(B, C)`` for a classifier, ``(B, T, V)`` for token
models; targets are class or token ids of the leading shape, and a token task marks padding with its
``ignore_index``. :func:`cross_entropy` and :func:`distillation_kl` are the losses every task here
uses on either shape. The trainer hands :meth:`Task.distillation_loss` only the positions the labels'
loss counts (:func:`counted_positions`): padding never enters the distillation term either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch
    from torch import nn

    from nastools.metrics import Metric
    from nastools.space import Arch

__all__ = ["IGNORE_INDEX", "Task", "counted_positions", "cross_entropy", "distillation_kl"]

#: The target id no loss counts (padding of token tasks); torch's own default.
IGNORE_INDEX = -100


@runtime_checkable
class Task(Protocol):
    """A training task: batches for training, a loss, a distillation loss and a held-out metric.

    Attributes:
        config: How the task is made: a frozen dataclass with ``to_dict()``, stored in a checkpoint so
            the reader rebuilds the same task.
        metric: The held-out metric :meth:`score` gives (``top1`` max, ``bleu`` max, ``perplexity`` min).
        n_train: Training examples; an epoch visits each once, in a random order.

    Example:
        >>> from nastools.tasks.digits import DigitsConfig, load_digits_task
        >>> task = load_digits_task(DigitsConfig(resolution=16, test_distortions=1))
        >>> isinstance(task, Task), task.metric.name, task.metric.direction
        (True, 'top1', 'max')
    """

    config: Any
    metric: Metric
    n_train: int

    def train_batch(
        self, indices: torch.Tensor, generator: torch.Generator
    ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """The training examples at ``indices``, augmented with ``generator``: ``(inputs, targets)``.

        ``inputs`` is the tuple a network's ``forward(*inputs)`` takes (images; token ids; source and
        shifted target tokens) at the task's own size: a network adapts it to an arch with its
        ``prepare_inputs(inputs, arch)``.
        """

    def example_inputs(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        """``batch_size`` held-out inputs (deterministic): what MACs are counted on."""

    def loss(
        self, outputs: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0
    ) -> torch.Tensor:
        """The training loss of ``outputs`` for ``targets`` (cross-entropy; padding ignored)."""

    def distillation_loss(self, outputs: torch.Tensor, teacher_outputs: torch.Tensor) -> torch.Tensor:
        """The loss of ``outputs`` against a teacher's (KL divergence to the teacher's distribution).

        The trainer passes the positions the labels' loss counts only (padding left out, see
        :func:`counted_positions`): ``(N, C)`` logits of a token task, the outputs as they are otherwise.
        """

    def score(self, module: nn.Module, arch: Arch | None = None, *, draw: int | None = None) -> float:
        """The held-out :attr:`metric` of a standalone sub-network ``module``.

        Args:
            module: Takes the task's inputs as they are (what ``train_batch`` gives, at the task's
                size) and returns outputs; images: its batch norm is recalibrated first, in place.
            arch: The sub-network's arch, for a task whose scoring depends on it (none here does).
            draw: None: the fixed evaluation (what a supernet's ``evaluate`` reports). An integer
                selects another evaluation draw, the same for the same integer (another calibration
                set, another held-out subsample): the checks measure the evaluation's noise with it.
        """


def cross_entropy(
    outputs: torch.Tensor,
    targets: torch.Tensor,
    label_smoothing: float = 0.0,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Mean cross-entropy of logits ``(..., C)`` for targets ``(...)``, leaving out those at ``ignore_index``.

    Example:
        >>> import torch
        >>> logits, targets = torch.zeros(2, 3, 5), torch.tensor([[1, 2, -100], [0, -100, -100]])
        >>> round(cross_entropy(logits, targets).item(), 4)  # log(5), over the three counted tokens
        1.6094
    """
    import torch.nn.functional as F  # noqa: N812

    return F.cross_entropy(
        outputs.flatten(0, -2),
        targets.flatten(),
        label_smoothing=label_smoothing,
        ignore_index=ignore_index,
    )


def distillation_kl(outputs: torch.Tensor, teacher_outputs: torch.Tensor) -> torch.Tensor:
    """KL divergence from the teacher's distribution to the student's, averaged over positions.

    Logits ``(..., C)``; every leading position (an image, a token) counts once. Its gradient equals
    that of the cross-entropy to the teacher's distribution (they differ by the teacher's entropy).

    Example:
        >>> import torch
        >>> logits = torch.randn(4, 7, 10)
        >>> distillation_kl(logits, logits).abs().item() < 1e-6
        True
    """
    import torch.nn.functional as F  # noqa: N812

    return F.kl_div(
        F.log_softmax(outputs.flatten(0, -2), dim=-1),
        F.softmax(teacher_outputs.flatten(0, -2), dim=-1),
        reduction="batchmean",
    )


def counted_positions(
    outputs: torch.Tensor, teacher_outputs: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The student's and the teacher's logits at the positions whose target is not :data:`IGNORE_INDEX`.

    What the trainer hands :meth:`Task.distillation_loss`, so that padding (which the labels' loss
    leaves out) does not enter the distillation term either. Targets of another shape than the
    outputs' leading one, or not integer ids (soft labels), mark no padding: the logits come back as
    they are, and so they do where nothing is padding.

    Example:
        >>> import torch
        >>> logits, targets = torch.randn(2, 3, 5), torch.tensor([[1, 2, -100], [0, -100, -100]])
        >>> [t.shape for t in counted_positions(logits, logits, targets)]
        [torch.Size([3, 5]), torch.Size([3, 5])]
    """
    if targets.is_floating_point() or targets.shape != outputs.shape[:-1]:
        return outputs, teacher_outputs
    counted = targets.ne(IGNORE_INDEX)
    if bool(counted.all()):
        return outputs, teacher_outputs
    return outputs[counted], teacher_outputs[counted]
