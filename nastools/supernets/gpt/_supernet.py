"""The GPT supernets: HW-GPT-Bench's full-size ``gpt-s`` (random weights) and the embedded ``pydoc-gpt``."""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nastools.metrics import Metric
from nastools.space import Arch
from nastools.supernet import Supernet, count_macs, count_params, file_hash
from nastools.supernets._checkpoints import read_checkpoint, resave_checkpoint
from nastools.supernets.gpt._config import CHECKPOINT_KIND, GPT_S_CONFIG, PARAMETER_DESCRIPTIONS, GPTConfig
from nastools.supernets.gpt._network import ElasticGPT
from nastools.supernets.gpt._shapes import count_macs_params
from nastools.tasks.text import TextConfig, TextTask

if TYPE_CHECKING:
    from nastools.tasks._task import Task

__all__ = [
    "CHECKPOINT_KIND",
    "GPT_S_MISSING_PERPLEXITY",
    "GPT_S_SEQ_LEN",
    "OPENWEBTEXT_PERPLEXITY",
    "GPTSupernet",
    "from_checkpoint",
    "gpt_s",
    "pydoc_gpt",
]

#: The sequence length HW-GPT-Bench measures at (its ``block_size``; batch 8 there, one sequence here).
GPT_S_SEQ_LEN = 1024
#: ``gpt-s``'s declared metric: HW-GPT-Bench's perplexity, which needs OpenWebText (not available here).
OPENWEBTEXT_PERPLEXITY = Metric(
    "perplexity", "min", "", "OpenWebText perplexity (HW-GPT-Bench); needs trained weights and the data"
)
#: Why ``gpt-s`` has no perplexity (raised by its ``check_metric("perplexity")``).
GPT_S_MISSING_PERPLEXITY = (
    "supernet 'gpt-s' is architecture-only: its perplexity is HW-GPT-Bench's on OpenWebText, and nastools "
    "has neither OpenWebText nor trained GPT-S weights; use metrics macs, params, latency_ms or "
    "peak_memory_mb, or the trained 'pydoc-gpt' for perplexity"
)


class GPTSupernet(Supernet):
    """An :class:`ElasticGPT` with its task (held-out perplexity) or none (architecture only).

    MACs and parameters are closed-form (:func:`count_macs_params`) for one sequence of
    :attr:`seq_len` tokens, the length of :meth:`example_inputs`; latency and peak memory are
    measured on ``subnet(arch)(*example_inputs(arch, batch_size))``, the default workload.

    Args:
        config: The elastic network's shape.
        supernet_id: Stable name.
        checkpoint_hash: Identifies the weights (and, for random weights, the sequence length).
        net: The elastic network; None builds it with random weights from ``seed`` when first needed
            (MACs and parameters need no weights).
        seed: Seed of the random weights when ``net`` is None.
        seq_len: Tokens of one sequence of the example inputs; with a task, its own inputs' length.
        task: The held-out perplexity task; None for an architecture-only supernet.
        metadata: Anything stored with the checkpoint (configs, training log, report).
        missing_perplexity: Why perplexity is unavailable (raised by :meth:`check_metric`).

    Example:
        >>> supernet = gpt_s(seq_len=128)
        >>> smallest, largest = supernet.extremes()
        >>> supernet.params(smallest), supernet.params(largest)
        (13097472, 123651072)
    """

    parameter_descriptions = PARAMETER_DESCRIPTIONS
    #: The file it was read from (:func:`from_checkpoint`); None for ``gpt-s``.
    checkpoint_path: Path | None = None

    def __init__(
        self,
        config: GPTConfig,
        supernet_id: str,
        checkpoint_hash: str,
        *,
        net: ElasticGPT | None = None,
        seed: int = 0,
        seq_len: int | None = None,
        task: Task | None = None,
        metadata: Mapping[str, Any] | None = None,
        missing_perplexity: str | None = None,
    ) -> None:
        self.config = config
        self.space = config.space()
        self.supernet_id = supernet_id
        self.checkpoint_hash = checkpoint_hash
        self.task = task
        self.metadata = dict(metadata or {})
        self.metrics = (task.metric if task is not None else OPENWEBTEXT_PERPLEXITY,)
        self._seed = seed
        self._missing_perplexity = missing_perplexity
        if net is not None:
            self.__dict__["net"] = net.eval()  # the cached property's slot
        if task is not None:
            seq_len = int(task.example_inputs(1)[0].shape[-1])
        if isinstance(seq_len, bool) or not isinstance(seq_len, int) or not 1 <= seq_len <= config.context:
            raise ValueError(
                f"seq_len must be an integer in [1, {config.context}] (the context of {supernet_id!r}), "
                f"got {seq_len!r}"
            )
        self.seq_len = seq_len

    @functools.cached_property
    def net(self) -> ElasticGPT:
        """The elastic network (built with random weights from the seed on first use)."""
        return ElasticGPT(self.config, seed=self._seed).eval()

    def save_checkpoint(self, path: str | Path) -> Path:
        """Write this supernet as its family's checkpoint: its weights; the configs, log, report it came with.

        ``load_supernet(path)`` reads it back (the conformance suite's round trip).

        Raises:
            ValueError: It was not read from a checkpoint (it has no training record to write).
        """
        return resave_checkpoint(self, path, CHECKPOINT_KIND if self.checkpoint_path is not None else None)

    def subnet(self, arch: Arch) -> nn.Module:
        """A standalone :class:`~nastools.supernets.gpt.GPT` of ``arch``'s sizes, weights copied (eval)."""
        return self.net.get_active_subnet(arch)

    @torch.no_grad()
    def run_active(self, arch: Arch, *inputs: torch.Tensor) -> torch.Tensor:
        """The weight-shared network's logits with ``arch`` active (what :meth:`subnet` must equal)."""
        self.net.set_active(arch)
        return self.net(*inputs)

    def example_inputs(self, arch: Arch, batch_size: int) -> tuple[torch.Tensor, ...]:
        """Token ids ``(batch_size, seq_len)``: held-out text of the task, else seeded random ids."""
        if self.task is not None:
            return self.task.example_inputs(batch_size)
        generator = torch.Generator().manual_seed(0)
        return (torch.randint(0, self.config.vocab_size, (batch_size, self.seq_len), generator=generator),)

    def check_metric(self, metric: str) -> None:
        """Raise if perplexity cannot be measured (an architecture-only supernet).

        Raises:
            ValueError: There is no task (the message says which supernet has one).
        """
        if metric == "perplexity" and self.task is None:
            raise ValueError(
                self._missing_perplexity
                or f"supernet {self.supernet_id!r} has no task data, so perplexity cannot be measured"
            )

    def needs_subnet(self, metric: str) -> bool:
        """MACs and parameters come from the arch (closed form); the rest needs the module."""
        return metric not in ("macs", "params")

    @torch.no_grad()
    def evaluate(self, arch: Arch, metric: str = "perplexity", subnet: nn.Module | None = None) -> float:
        """Held-out perplexity of ``arch`` (the task's fixed evaluation, deterministic).

        Args:
            arch: The sub-network.
            metric: ``"perplexity"``, the one metric these supernets declare.
            subnet: Its standalone module, if already extracted.
        """
        if metric != "perplexity":
            self.metric(metric)  # raises naming the metrics
            raise ValueError(f"supernet {self.supernet_id!r} evaluates perplexity, not {metric!r}")
        self.check_metric(metric)
        self.space.validate(arch)
        return float(self.task.score(self.subnet(arch) if subnet is None else subnet, arch))

    def macs(self, arch: Arch, subnet: nn.Module | None = None) -> int:
        """MACs of one sequence of :attr:`seq_len` tokens in closed form (with ``subnet``: counted on it)."""
        if subnet is not None:
            return count_macs(subnet, self.example_inputs(arch, 1))
        return count_macs_params(self.config.sizes(arch), self.seq_len)[0]

    def params(self, arch: Arch, subnet: nn.Module | None = None) -> int:
        """Parameters of ``arch``'s standalone network in closed form (with ``subnet``: counted on it)."""
        if subnet is not None:
            return count_params(subnet)
        return count_macs_params(self.config.sizes(arch), self.seq_len)[1]


def gpt_s(seq_len: int = GPT_S_SEQ_LEN) -> GPTSupernet:
    """HW-GPT-Bench's GPT-S space, architecture only: exact MACs and parameters, measured latency and memory.

    Embed {192, 384, 768}, layers {10, 11, 12}, per layer heads {4, 8, 12} (head size 64) and MLP ratio
    {2, 3, 4}, bias on/off: 1,903,784,282,946 distinct networks. Vocabulary 50,254 and context 1024 as
    HW-GPT-Bench's config. The weights are random (seed 0, built on first use: 124 M parameters for
    the largest); there is no perplexity (no OpenWebText here): ``check_metric("perplexity")`` says so.

    Args:
        seq_len: Tokens of the sequence one forward pass reads (example inputs, MACs, latency, memory):
            HW-GPT-Bench's 1024 by default; a shorter one makes measuring on a CPU faster. It is
            part of the checkpoint hash (``untrained-seq128``), so measurements at different lengths
            are never mixed.

    Raises:
        ValueError: ``seq_len`` is not an integer in [1, 1024].

    Example:
        >>> supernet = gpt_s()
        >>> supernet.space.size, supernet.macs(supernet.extremes()[1])
        (1903784282946, 145821794304)
    """
    checkpoint_hash = "untrained" if seq_len == GPT_S_SEQ_LEN else f"untrained-seq{seq_len}"
    return GPTSupernet(
        GPT_S_CONFIG,
        "gpt-s",
        checkpoint_hash,
        seq_len=seq_len,
        metadata={"model_config": GPT_S_CONFIG.to_dict(), "seq_len": seq_len, "seed": 0},
        missing_perplexity=GPT_S_MISSING_PERPLEXITY,
    )


def from_checkpoint(path: Path, payload: Mapping[str, Any], supernet_id: str | None = None) -> GPTSupernet:
    """Read a checkpoint of this family (``kind == "elastic-gpt"``): the network and its text task.

    Raises:
        ValueError: The checkpoint is of another kind, or its weights or configs do not fit.
    """
    kind = payload.get("kind")
    if kind != CHECKPOINT_KIND:
        raise ValueError(f"{path} holds a {kind!r} supernet, not an {CHECKPOINT_KIND!r} one")
    net, task, metadata, name = read_checkpoint(
        path,
        payload,
        lambda config: ElasticGPT(GPTConfig.from_dict(config), seed=0),  # the stored weights replace these
        lambda config: TextTask(TextConfig(**config)),
        supernet_id,
    )
    supernet = GPTSupernet(net.config, name, file_hash(path), net=net, task=task, metadata=metadata)
    supernet.checkpoint_path = Path(path)
    return supernet


def pydoc_gpt(checkpoint: str | Path | None = None) -> GPTSupernet:
    """The embedded ``pydoc-gpt``: trained here on CPython's help texts, shipped as ``data/pydoc-gpt.pt``.

    Held-out character perplexity (minimised) on a fixed batch of unseen help topics; the recipe is
    :func:`nastools.supernets.gpt._embedded.recipe`.

    Args:
        checkpoint: Another checkpoint of the same recipe (``python -m nastools.training
            --supernet pydoc-gpt``).

    Raises:
        FileNotFoundError: The checkpoint file is missing (the message says how to make it).
        ValueError: The file is not an elastic-GPT checkpoint (one line, naming its kind).
    """
    from nastools.supernet import load_checkpoint

    path = Path(checkpoint) if checkpoint is not None else _shipped("pydoc-gpt")
    if checkpoint is None and not path.is_file():
        raise FileNotFoundError(
            f"the pydoc-gpt checkpoint {path} is missing; train it with python -m nastools.training "
            f"--supernet pydoc-gpt --out {path} --report"
        )
    supernet = load_checkpoint(path, supernet_id="pydoc-gpt")
    if not isinstance(supernet, GPTSupernet):
        raise ValueError(
            f"{path} holds a {type(supernet).__name__} checkpoint, not an {CHECKPOINT_KIND!r} one; "
            "pydoc-gpt needs one of its recipe (python -m nastools.training --supernet pydoc-gpt)"
        )
    return supernet


def _shipped(name: str) -> Path:
    """The path of a checkpoint shipped with nastools (``data/``, installed as ``nastools.checkpoints``)."""
    return Path(str(importlib.resources.files("nastools.checkpoints") / f"{name}.pt"))
