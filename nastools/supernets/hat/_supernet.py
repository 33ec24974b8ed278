"""The HAT supernets: full-size ``hat-wmt14-en-de`` (random weights) and the embedded ``numbers-hat``."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nastools.space import Arch
from nastools.supernet import Supernet, count_macs, count_params, file_hash
from nastools.supernets._checkpoints import read_checkpoint, resave_checkpoint
from nastools.supernets.hat._config import (
    CHECKPOINT_KIND,
    HAT_WMT14_EN_DE_CONFIG,
    PARAMETER_DESCRIPTIONS,
    HATConfig,
)
from nastools.supernets.hat._network import ElasticHAT, decoding_workload
from nastools.supernets.hat._shapes import count_macs_params
from nastools.tasks.translation import BLEU, TranslationConfig, TranslationTask

__all__ = [
    "CHECKPOINT_KIND",
    "HAT_MISSING_BLEU",
    "HATSupernet",
    "embedded",
    "from_checkpoint",
    "hat_wmt14_en_de",
]

#: Why ``hat-wmt14-en-de`` has no BLEU (raised by its ``check_metric("bleu")``).
HAT_MISSING_BLEU = (
    "supernet 'hat-wmt14-en-de' is architecture-only: its bleu is HAT's WMT'14 En-De BLEU, and nastools has "
    "neither WMT'14 nor HAT's trained weights; use metrics macs, params or latency_ms, or the trained "
    "'numbers-hat' for bleu"
)


class HATSupernet(Supernet):
    """An :class:`ElasticHAT` with its task (held-out BLEU) or none (architecture only).

    What is measured (HAT's protocols, which DyNAS-T reuses):

    * MACs (closed form, :func:`count_macs_params`): one teacher-forced forward of a batch of one, a
      source and a target of ``config.sequence_length`` tokens (30), the output projection included.
    * Parameters: the standalone sub-network's, the shared embedding table included (HAT's own count
      leaves the embedding out: :func:`~nastools.supernets.hat.hat_params` with ``embeddings=False``).
    * Latency, memory and energy (:meth:`workload`): the encoder once on a source of
      ``sequence_length`` tokens, then ``sequence_length`` incremental decoding steps with cached
      self-attention and encoder-decoder keys and values, on ``beam`` rows per sentence (HAT times
      beam 5 by replicating the encoder output; ``numbers-hat`` decodes greedily, beam 1, as its BLEU
      is measured).
    * BLEU: the task's greedy translations of its held-out sentences (sacrebleu).

    Args:
        config: The elastic network's shape.
        supernet_id: Stable name.
        checkpoint_hash: Identifies the weights (and the beam where it is not the default).
        net: The elastic network; None builds it with random weights from ``seed`` when first needed
            (MACs and parameters need no weights).
        seed: Seed of the random weights when ``net`` is None.
        task: The held-out BLEU task; None for an architecture-only supernet.
        metadata: Anything stored with the checkpoint (configs, training log, report).
        missing_bleu: Why BLEU is unavailable (raised by :meth:`check_metric`).
        beam: Rows decoded per sentence in :meth:`workload`.

    Example:
        >>> supernet = hat_wmt14_en_de()
        >>> smallest, largest = supernet.extremes()
        >>> supernet.macs(smallest), supernet.macs(largest)
        (982548480, 3016089600)
    """

    parameter_descriptions = PARAMETER_DESCRIPTIONS
    #: The file the family's reader read this supernet from (None when built otherwise).
    checkpoint_path: Path | None = None

    def __init__(
        self,
        config: HATConfig,
        supernet_id: str,
        checkpoint_hash: str,
        *,
        net: ElasticHAT | None = None,
        seed: int = 0,
        task: TranslationTask | None = None,
        metadata: Mapping[str, Any] | None = None,
        missing_bleu: str | None = None,
        beam: int = 1,
    ) -> None:
        if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
            raise ValueError(f"beam must be a positive integer (rows decoded per sentence), got {beam!r}")
        if task is not None and task.vocab_size != config.vocab_size:
            raise ValueError(
                f"the task's vocabulary has {task.vocab_size} tokens, the network's {config.vocab_size}"
            )
        if task is not None and task.config.max_length != config.sequence_length:
            raise ValueError(
                f"the task pads example inputs to {task.config.max_length} tokens, but MACs and latency are "
                f"for {config.sequence_length}: give TranslationConfig(max_length={config.sequence_length})"
            )
        self.config = config
        self.space = config.space()
        self.supernet_id = supernet_id
        self.checkpoint_hash = checkpoint_hash
        self.task = task
        self.metadata = dict(metadata or {})
        self.metrics = (BLEU,)
        self.beam = beam
        self._seed = seed
        self._missing_bleu = missing_bleu
        if net is not None:
            self.__dict__["net"] = net.eval()  # the cached property's slot

    @functools.cached_property
    def net(self) -> ElasticHAT:
        """The elastic network (built with random weights from the seed on first use)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed)
            return ElasticHAT(self.config).eval()

    def subnet(self, arch: Arch) -> nn.Module:
        """A standalone :class:`~nastools.supernets.hat.HATTransformer` of ``arch``, weights copied (eval)."""
        return self.net.get_active_subnet(arch)

    @torch.no_grad()
    def run_active(self, arch: Arch, *inputs: torch.Tensor) -> torch.Tensor:
        """The weight-shared network's teacher-forced logits with ``arch`` active."""
        self.net.set_active(arch)
        return self.net(*inputs)

    def save_checkpoint(self, path: str | Path) -> Path:
        """Write this supernet as its family's checkpoint: its weights; the configs, log, report it came with.

        ``load_supernet(path)`` reads it back (the conformance suite's round trip).

        Raises:
            ValueError: It was not read from a checkpoint (it has no training record to write).
        """
        return resave_checkpoint(self, path, CHECKPOINT_KIND if self.checkpoint_path is not None else None)

    def example_inputs(self, arch: Arch, batch_size: int) -> tuple[torch.Tensor, ...]:
        """``(src_tokens, prev_tokens)`` of ``batch_size`` sentences, ``sequence_length`` tokens each.

        Held-out pairs of the task (padded), else seeded random token ids (a source ending with
        ``</s>``; a decoder input starting with it).
        """
        if self.task is not None:
            return self.task.example_inputs(batch_size)
        generator = torch.Generator().manual_seed(0)
        first = max(self.config.pad_index, self.config.eos_index) + 1
        shape = (batch_size, self.config.sequence_length)
        src = torch.randint(first, self.config.vocab_size, shape, generator=generator)
        prev = torch.randint(first, self.config.vocab_size, shape, generator=generator)
        src[:, -1] = prev[:, 0] = self.config.eos_index
        return src, prev

    def workload(self, subnet: nn.Module, arch: Arch, batch_size: int) -> tuple[Callable[..., Any], tuple]:
        """HAT's latency workload: ``(fn, (src_tokens,))``, the encoder and then incremental decoding.

        ``fn(src_tokens)`` encodes ``batch_size`` sources of ``sequence_length`` tokens once, replicates
        the encoding to :attr:`beam` rows per sentence and runs ``sequence_length`` decoding steps,
        each feeding one token per row with cached keys and values and projecting onto the whole
        vocabulary (:func:`~nastools.supernets.hat.decoding_workload`).
        """
        src = self.example_inputs(arch, batch_size)[0]
        steps = self.config.sequence_length
        return functools.partial(decoding_workload, subnet, steps=steps, beam=self.beam), (src,)

    def check_metric(self, metric: str) -> None:
        """Raise if BLEU cannot be measured (an architecture-only supernet).

        Raises:
            ValueError: There is no task (the message says which supernet has one).
        """
        if metric == "bleu" and self.task is None:
            raise ValueError(
                self._missing_bleu
                or f"supernet {self.supernet_id!r} has no task data, so bleu cannot be measured"
            )

    def needs_subnet(self, metric: str) -> bool:
        """MACs and parameters come from the arch (closed form); the rest needs the module."""
        return metric not in ("macs", "params")

    def evaluate(self, arch: Arch, metric: str = "bleu", subnet: nn.Module | None = None) -> float:
        """Held-out BLEU of ``arch``'s greedy translations (the task's fixed evaluation, deterministic).

        Args:
            arch: The sub-network.
            metric: ``"bleu"``, the one metric these supernets declare.
            subnet: Its standalone module, if already extracted.
        """
        if metric != "bleu":
            self.metric(metric)  # raises naming the metrics
            raise ValueError(f"supernet {self.supernet_id!r} evaluates bleu, not {metric!r}")
        self.check_metric(metric)
        self.space.validate(arch)
        return float(self.task.score(self.subnet(arch) if subnet is None else subnet, arch))

    def macs(self, arch: Arch, subnet: nn.Module | None = None) -> int:
        """MACs of one teacher-forced forward in closed form (with ``subnet``: counted on it)."""
        if subnet is not None:
            return count_macs(subnet, self.example_inputs(arch, 1))
        return count_macs_params(self.config, arch)[0]

    def params(self, arch: Arch, subnet: nn.Module | None = None) -> int:
        """Parameters of ``arch``'s standalone network in closed form (with ``subnet``: counted on it)."""
        if subnet is not None:
            return count_params(subnet)
        return count_macs_params(self.config, arch)[1]


def _hash(base: str, beam: int, default: int) -> str:
    """The checkpoint hash, with the beam where it is not the default: latencies at two beams never mix."""
    return base if beam == default else f"{base}-beam{beam}"


def hat_wmt14_en_de(seed: int = 0, beam: int = 5) -> HATSupernet:
    """HAT's WMT'14 En-De SuperTransformer, architecture only: exact MACs and parameters, measured latency.

    Encoder and decoder embed {512, 640}, FFN {1024, 2048, 3072} per layer, heads {4, 8} per
    attention (q/k/v width 512), 6 encoder layers, 1-6 decoder layers, arbitrary encoder-decoder
    attention {-1, 1, 2} per decoder layer; a 32,768-token joint vocabulary. 417,846,678,672,384
    distinct networks (HAT's gene, which also sets the unused decoder layers' values, has
    2,437,438,960,041,984 ≈ 2.4e15: the paper's "about 1e15"). The weights are random (seeded,
    built on first use: 91.9 M parameters); there is no BLEU (no WMT'14 here):
    ``check_metric("bleu")`` says so.

    Args:
        seed: Seed of the random weights.
        beam: Rows decoded per sentence when latency is measured (HAT's 5 by default).

    Example:
        >>> supernet = hat_wmt14_en_de()
        >>> supernet.space.size, supernet.params(supernet.extremes()[1])
        (417846678672384, 91872512)
    """
    return HATSupernet(
        HAT_WMT14_EN_DE_CONFIG,
        "hat-wmt14-en-de",
        _hash("untrained" if seed == 0 else f"untrained-seed{seed}", beam, 5),
        seed=seed,
        metadata={"model_config": HAT_WMT14_EN_DE_CONFIG.to_dict()},
        missing_bleu=HAT_MISSING_BLEU,
        beam=beam,
    )


def from_checkpoint(
    path: Path, payload: Mapping[str, Any], supernet_id: str | None = None, beam: int = 1
) -> HATSupernet:
    """Read a checkpoint of this family (``kind == "elastic-hat"``).

    Raises:
        ValueError: The checkpoint is of another kind, or its weights or configs do not fit.
    """
    kind = payload.get("kind")
    if kind != CHECKPOINT_KIND:
        raise ValueError(f"{path} holds a {kind!r} supernet, not an {CHECKPOINT_KIND!r} one")
    net, task, metadata, name = read_checkpoint(
        path,
        payload,
        lambda config: ElasticHAT(HATConfig.from_dict(config)),
        lambda config: TranslationTask(TranslationConfig.from_dict(config)),
        supernet_id,
    )
    supernet = HATSupernet(
        net.config, name, _hash(file_hash(path), beam, 1), net=net, task=task, metadata=metadata, beam=beam
    )
    supernet.checkpoint_path = Path(path)
    return supernet


def embedded(checkpoint: str | Path | None = None, beam: int = 1) -> HATSupernet:
    """The embedded ``numbers-hat``, trained here on English to German number phrases.

    Args:
        checkpoint: Another checkpoint of the same recipe (``python -m nastools.training
            --supernet numbers-hat``).
        beam: Rows decoded per sentence when latency is measured (1: greedy, as BLEU decodes).

    Raises:
        FileNotFoundError: The checkpoint file is missing.
        ValueError: The file is not an elastic-HAT checkpoint (one line, naming its kind).
    """
    import importlib.resources

    from nastools.supernet import load_checkpoint

    if checkpoint is None:
        path = Path(str(importlib.resources.files("nastools.checkpoints") / "numbers-hat.pt"))
    else:
        path = Path(checkpoint)
    supernet = load_checkpoint(path, supernet_id="numbers-hat", beam=beam)
    if not isinstance(supernet, HATSupernet):
        raise ValueError(
            f"{path} holds a {type(supernet).__name__} checkpoint, not an {CHECKPOINT_KIND!r} one; "
            "numbers-hat needs one of its recipe (python -m nastools.training --supernet numbers-hat)"
        )
    return supernet
