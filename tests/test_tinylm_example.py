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

from nastools.supernet import Supernet, count_macs, count_params, load_supernet  # noqa: E402


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


def test_inactive_layers_are_ignored(supernet):
    smallest, largest = supernet.extremes()
    assert smallest["layers"] == 1 and largest["layers"] == 4
    arch = {**largest, "layers": 2}
    assert supernet.space.canonical(arch) == {**arch, "heads_2": 2, "ffn_2": 64, "heads_3": 2, "ffn_3": 64}
    torch.testing.assert_close(
        supernet.subnet(arch)(supernet.inputs), supernet.subnet({**arch, "ffn_3": 128})(supernet.inputs)
    )


@torch.no_grad()
def test_subnet_equals_the_supernet_and_owns_its_weights(supernet):
    inputs = supernet.example_inputs(supernet.extremes()[0], 4)[0]
    assert inputs.dtype == torch.long and inputs.shape == (4, 64)
    shared = {p.untyped_storage().data_ptr() for p in supernet.model.parameters()}
    for arch in [*supernet.extremes(), *supernet.space.sample(4, rng=1)]:
        subnet = supernet.subnet(arch)
        expected = supernet.model(inputs, arch)
        assert expected.shape == (4, 64, len(supernet.corpus.vocab))
        torch.testing.assert_close(subnet(inputs), expected)
        assert not shared & {p.untyped_storage().data_ptr() for p in subnet.parameters()}
        for p in subnet.parameters():
            p.zero_()
        torch.testing.assert_close(supernet.model(inputs, arch), expected)  # the supernet is untouched


def test_closed_form_macs_and_params_equal_the_counters(supernet):
    for arch in [*supernet.extremes(), *supernet.space.sample(3, rng=2)]:
        subnet = supernet.subnet(arch)
        assert supernet.macs(arch) == count_macs(subnet, supernet.example_inputs(arch, 1))
        assert supernet.params(arch) == count_params(subnet)


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
    arch = {**model.space.extreme(min), "layers": 2}
    tokens = torch.randint(0, 10, (2, 8))
    model(tokens, arch).sum().backward()
    fc1 = model.largest.blocks[1].fc1.weight.grad
    assert fc1[:64, :64].abs().sum() > 0 and fc1[64:].abs().sum() == 0 and fc1[:, 64:].abs().sum() == 0
    assert all(p.grad is None for p in model.largest.blocks[2].parameters())  # an unused layer
