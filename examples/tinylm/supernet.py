"""The nastools wrapper: :class:`TinyLMSupernet` and the factory ``make_supernet`` nastools loads by name.

With ``examples/`` on ``PYTHONPATH``::

    from nastools.supernet import load_supernet

    supernet = load_supernet("tinylm.supernet:make_supernet")
    arch = supernet.space.sample(1, rng=0)[0]
    supernet.evaluate(arch, "perplexity"), supernet.macs(arch)
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from nastools.metrics import Metric
from nastools.space import Arch
from nastools.supernet import Supernet, check_finite_weights, file_hash, load_weights_file
from tinylm.data import EVAL_SEQUENCES, load_corpus
from tinylm.model import ElasticLM, SpaceConfig, perplexity, search_space, skeleton

__all__ = ["CHECKPOINT", "TinyLMSupernet", "make_supernet"]

#: The trained checkpoint shipped next to this file (``python -m tinylm.train`` writes it).
CHECKPOINT = Path(__file__).with_name("tinylm.pt")
#: The checkpoint layout this file reads (one without a ``version`` entry is version 1).
FORMAT_VERSION = 1


class TinyLMSupernet(Supernet):
    """The trained :class:`~tinylm.model.ElasticLM` and its task: held-out character perplexity.

    Args:
        checkpoint: A checkpoint written by :func:`tinylm.train.save`.
    """

    supernet_id = "tinylm"
    parameter_descriptions = {
        "layers": "number of Transformer layers",
        "embed": "embedding (residual stream) width, shared by all layers",
        "heads": "attention heads of the layer (16 channels each)",
        "ffn": "hidden width of the layer's feed-forward network",
    }

    def __init__(self, checkpoint: str | Path) -> None:
        # one line for a damaged file, a newer format, or a NaN weight, instead of wrong measurements
        payload = load_weights_file(checkpoint, "tinylm checkpoint")
        if not isinstance(payload, dict) or not {"state_dict", "space", "vocab"} <= set(payload):
            raise ValueError(f"{checkpoint} is not a tinylm checkpoint (python -m tinylm.train writes one)")
        version = payload.get("version", 1)  # tinylm.train writes none: version 1
        if version != FORMAT_VERSION:
            raise ValueError(
                f"{checkpoint}: tinylm checkpoint version {version}; this example reads version 1"
            )
        check_finite_weights(checkpoint, payload["state_dict"])
        config = SpaceConfig(**payload["space"])
        self.model = ElasticLM(config, len(payload["vocab"])).eval()
        self.model.largest.load_state_dict(payload["state_dict"])  # float16 on disk, float32 here
        self.corpus = load_corpus(vocab=payload["vocab"])
        self.inputs, self.targets = self.corpus.heldout_batch(EVAL_SEQUENCES, config.context)
        self.checkpoint_hash = file_hash(checkpoint)
        self.space = search_space(config)
        self.metadata = {"space": payload["space"], "vocab": payload["vocab"], **payload["metadata"]}
        self.checkpoint_path = Path(checkpoint)
        self._stored_metadata = payload["metadata"]
        self.metrics = (
            Metric(
                "perplexity",
                "min",
                description=f"held-out character perplexity ({EVAL_SEQUENCES} x {config.context} characters "
                "of unseen help topics)",
            ),
        )

    def subnet(self, arch: Arch) -> nn.Module:
        """A standalone :class:`~tinylm.model.TinyLM` with ``arch``'s slice of the weights, copied."""
        return self.model.extract(self.space.canonical(arch))

    @torch.no_grad()
    def run_active(self, arch: Arch, *inputs: torch.Tensor) -> torch.Tensor:
        """The weight-shared model's logits with ``arch`` active (what :meth:`subnet` copies)."""
        return self.model(inputs[0], self.space.canonical(arch))

    def save_checkpoint(self, path: str | Path) -> Path:
        """Write the weights as :func:`tinylm.train.save` does (``load_supernet`` reads the copy back)."""
        from tinylm.train import save

        save(self.model, self.corpus, self._stored_metadata, Path(path))
        return Path(path)

    def example_inputs(self, arch: Arch, batch_size: int) -> tuple[torch.Tensor, ...]:
        """``batch_size`` held-out sequences of token ids, ``(batch_size, context)``."""
        return (self.corpus.heldout_batch(batch_size, self.model.space_config.context)[0],)

    @torch.no_grad()
    def evaluate(self, arch: Arch, metric: str, subnet: nn.Module | None = None) -> float:
        """Perplexity of ``arch`` on the fixed held-out batch (deterministic)."""
        if metric != "perplexity":
            raise ValueError(f"supernet 'tinylm' measures 'perplexity', not {metric!r}")
        if subnet is None:
            return perplexity(self.model(self.inputs, self.space.canonical(arch)), self.targets)
        return perplexity(subnet(self.inputs), self.targets)

    def macs(self, arch: Arch, subnet: nn.Module | None = None) -> int:
        """Multiply-accumulates of one sequence of ``context`` tokens, in closed form (as the flop counter).

        Linear layers and the two attention products count; embeddings, norms, softmax and biases do not.
        """
        config = self.model.config(self.space.canonical(arch))
        tokens, embed, width = config.context, config.embed, config.head_dim
        total = tokens * embed * config.vocab_size  # output head
        for heads, ffn in zip(config.heads, config.ffn):
            total += tokens * embed * heads * width * 4  # query, key, value, output projection
            total += 2 * heads * tokens * tokens * width  # scores = q k^T, then scores @ v
            total += 2 * tokens * embed * ffn  # feed-forward network
        return total

    def params(self, arch: Arch, subnet: nn.Module | None = None) -> int:
        """Parameters of the standalone sub-network (read off its weightless skeleton, nothing copied)."""
        config = self.model.config(self.space.canonical(arch))
        return sum(p.numel() for p in skeleton(config).parameters())


def make_supernet(checkpoint: str | Path | None = None) -> TinyLMSupernet:
    """The factory nastools calls for ``"tinylm.supernet:make_supernet"``.

    Args:
        checkpoint: A checkpoint path; by default the trained one shipped with the example.
    """
    return TinyLMSupernet(CHECKPOINT if checkpoint is None else checkpoint)
