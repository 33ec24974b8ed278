"""Zero-cost proxies: scores of an untrained-or-trained sub-network from one batch, no validation."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "naswot"]

#: Modules whose outputs give NASWOT's binary activation codes (a unit is "on" when its output > 0).
ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.Hardswish,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
)


@torch.no_grad()
def naswot(module: nn.Module, inputs: torch.Tensor | tuple[torch.Tensor, ...]) -> float:
    """NASWOT score (Mellor et al. 2021, "Neural Architecture Search without Training").

    Every activation unit of the network gives each input of the batch a bit: whether the unit is
    on (output > 0). Two inputs are alike when many units agree; the score is the log-determinant
    of the kernel ``K[i, j]`` = number of units on which inputs ``i`` and ``j`` agree. Networks that
    tell the inputs of a batch apart score higher. A network that gives two inputs the same code
    (too few units for the batch, say) has a singular kernel: a ridge of ``1e-6`` times the unit
    count on the diagonal keeps its score finite (each such coincidence costs about 14 points),
    and changes the score of a regular kernel by about that relative amount only.

    Args:
        module: The sub-network (run in eval mode; its flags are restored).
        inputs: One batch of its positional inputs; more than one sample.

    Raises:
        ValueError: The batch has one sample, or the module has no activation module of
            :data:`ACTIVATIONS` (NASWOT needs them).

    Example:
        >>> torch.manual_seed(0) and None
        >>> net = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 2))
        >>> round(naswot(net, torch.randn(8, 4)), 1) > 0
        True
    """
    inputs = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    batch = inputs[0].shape[0]
    if batch < 2:
        raise ValueError(f"NASWOT compares the inputs of a batch: give more than one sample, got {batch}")
    kernel = torch.zeros(batch, batch, dtype=torch.float64)

    def record(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        codes = (output.reshape(batch, -1) > 0).to(torch.float64)
        kernel.add_(codes @ codes.T + (1.0 - codes) @ (1.0 - codes).T)

    hooks = [m.register_forward_hook(record) for m in module.modules() if isinstance(m, ACTIVATIONS)]
    if not hooks:
        raise ValueError(
            f"NASWOT needs activation modules ({', '.join(a.__name__ for a in ACTIVATIONS)}) in the "
            f"sub-network; {type(module).__name__} has none (functional activations are not seen)"
        )
    was_training = module.training
    module.eval()
    try:
        module(*inputs)
    finally:
        module.train(was_training)
        for hook in hooks:
            hook.remove()
    units = float(kernel[0, 0])  # an input agrees with itself on every unit
    ridge = 1e-6 * max(units, 1.0) * torch.eye(batch, dtype=torch.float64)
    return float(torch.linalg.slogdet(kernel + ridge)[1])
