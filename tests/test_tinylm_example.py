"""The documented user super-network ``examples/tinylm``: an elastic Transformer LM nastools loads by name."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))

from tinylm.model import ElasticLM, SpaceConfig  # noqa: E402
from tinylm.supernet import CHECKPOINT, TinyLMSupernet, make_supernet  # noqa: E402
from tinylm.train import train  # noqa: E402

from nastools.space import SearchSpace  # noqa: E402
from nastools.supernet import Supernet, load_supernet  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small forward passes are fastest on one thread, and immune to busy cores there."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def supernet() -> TinyLMSupernet:
    return make_supernet()


def test_loads_by_name_without_edits_to_nastools(supernet):
    loaded = load_supernet("tinylm.supernet:make_supernet")
    assert isinstance(loaded, Supernet) and isinstance(loaded, TinyLMSupernet)
    assert loaded.supernet_id == "tinylm" and loaded.checkpoint_hash == supernet.checkpoint_hash
    assert [m.name for m in loaded.metrics] == ["perplexity"] and loaded.metrics[0].direction == "min"
    assert loaded.space.size == 3 * sum(6**n for n in (1, 2, 3, 4))  # embed x (heads x ffn)^layers
    assert set(loaded.parameter_descriptions) == {name.split("_")[0] for name in loaded.space.names}
    assert CHECKPOINT.stat().st_size < 1.5e6


# Sub-networks equal the supernet and own their weights, inactive layers change nothing, closed-form
# MACs and parameters equal the counters, the checkpoint round trip: tests/test_conformance.py.


@torch.no_grad()
def test_inputs_are_token_ids_and_outputs_next_character_logits(supernet):
    smallest, largest = supernet.extremes()
    assert smallest["layers"] == 1 and largest["layers"] == 4
    (inputs,) = supernet.example_inputs(smallest, 4)
    assert inputs.dtype == torch.long and inputs.shape == (4, 64)
    assert supernet.subnet(largest)(inputs).shape == (4, 64, len(supernet.corpus.vocab))


def test_the_checkpoint_is_a_meaningful_search_problem(supernet):
    smallest, largest = supernet.extremes()
    low, high = supernet.evaluate(largest, "perplexity"), supernet.evaluate(smallest, "perplexity")
    uniform = len(supernet.corpus.vocab)
    assert low < high / 1.1 and high < uniform / 5, (low, high)
    scores = [supernet.evaluate(arch, "perplexity") for arch in supernet.space.sample(20, rng=0)]
    assert len(set(scores)) >= 15 and np.std(scores) > 0.03 * np.mean(scores), scores
    assert all(low * 0.95 < s < high * 1.05 for s in scores), (low, high, scores)
    # Deterministic, and the same whether or not the sub-network is extracted first.
    assert supernet.evaluate(largest, "perplexity") == low
    assert math.isclose(supernet.evaluate(largest, "perplexity", supernet.subnet(largest)), low, rel_tol=1e-5)
    with pytest.raises(ValueError, match="perplexity"):
        supernet.evaluate(largest, "top1")


def test_training_is_seeded():
    runs = [train(steps=2, batch_size=2, log_every=1)[0].state_dict() for _ in range(2)]
    assert all(torch.equal(runs[0][name], runs[1][name]) for name in runs[0])


def test_weights_are_shared_by_slicing():
    model = ElasticLM(SpaceConfig(), vocab_size=10)
    arch = {**model.min_arch(), "layers": 2}
    tokens = torch.randint(0, 10, (2, 8))
    model(tokens, arch).sum().backward()
    fc1 = model.largest.blocks[1].fc1.weight.grad
    assert fc1[:64, :64].abs().sum() > 0 and fc1[64:].abs().sum() == 0 and fc1[:, 64:].abs().sum() == 0
    assert all(p.grad is None for p in model.largest.blocks[2].parameters())  # an unused layer


def test_the_shipped_checkpoint_scores_what_its_training_recorded(supernet):
    """``tinylm.pt`` is read and scored as when it was written (its metadata holds the held-out figures)."""
    smallest, largest = supernet.extremes()
    recorded = supernet.metadata["heldout_ppl"]
    assert round(supernet.evaluate(largest, "perplexity"), 3) == recorded["largest"]
    assert round(supernet.evaluate(smallest, "perplexity"), 3) == recorded["smallest"]


@torch.no_grad()
def test_the_network_has_the_elastic_network_methods_nastools_trainer_calls(supernet):
    model, tokens = supernet.model, supernet.inputs[:2]
    assert isinstance(model.space, SearchSpace) and model.space.size == supernet.space.size
    assert model.max_arch() == supernet.extremes()[1] and model.min_arch() == supernet.extremes()[0]
    arch = supernet.space.sample(1, rng=3)[0]
    assert model.prepare_inputs((tokens,), arch) == (tokens,)
    model.set_active(arch)
    try:
        torch.testing.assert_close(model(tokens), model(tokens, arch))
        torch.testing.assert_close(model.get_active_subnet(arch)(tokens), model(tokens))
    finally:
        model.set_active(model.max_arch())
    before = {name: w.clone() for name, w in model.state_dict().items()}
    model.sort_channels()  # nothing to sort: the weights stay where they are
    assert all(torch.equal(before[name], w) for name, w in model.state_dict().items())
