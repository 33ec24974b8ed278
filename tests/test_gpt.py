"""The GPT family (HW-GPT-Bench's elastic GPT): spaces, closed-form counts, weight sharing, ``gpt-s``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nastools.supernet import count_macs, count_params
from nastools.supernets._elastic import skeleton
from nastools.supernets.gpt import GPT, GPT_S_CONFIG, ElasticGPT, GPTConfig, count_macs_params, gpt_s

#: A small elastic GPT with every elastic parameter (the embedded one's design, random weights).
SMALL = GPTConfig(
    vocab_size=37,
    context=32,
    embed=(16, 24, 32),
    layers=(1, 2, 3),
    heads=(1, 2, 3),
    mlp=(2, 3, 4),
    head_size=8,
    rotary_fraction=0.5,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small forward passes are fastest on one thread, and immune to busy cores there."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def small() -> ElasticGPT:
    return ElasticGPT(SMALL, seed=0).eval()


def tokens(config: GPTConfig, batch: int, seq: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, config.vocab_size, (batch, seq), generator=torch.Generator().manual_seed(seed))


def archs_with_both_biases(config: GPTConfig, n: int, seed: int) -> list[dict]:
    """The extremes and ``n`` random archs, each random one with bias on and off."""
    space = config.space()
    archs = [config.extreme_arch(largest=False), config.extreme_arch(largest=True)]
    for arch in space.sample(n, np.random.default_rng(seed)):
        archs += [{**arch, "bias": True}, {**arch, "bias": False}]
    return archs


def test_space_sizes_count_distinct_networks():
    # HW-GPT-Bench's GPT-S: 3 embed x 2 bias x sum over depth L of (3 heads x 3 MLP ratios)^L
    assert GPT_S_CONFIG.space().size == 3 * 2 * sum(9**n for n in (10, 11, 12)) == 1_903_784_282_946
    assert SMALL.space().size == 3 * 2 * sum(9**n for n in (1, 2, 3))
    space = gpt_s(seq_len=8).space
    assert space.n_var == 3 + 2 * 12 and space.names[:3] == ("layers", "embed", "bias")
    # the heads and MLP ratio of layer slots 10 and 11 count only in deeper networks
    arch = {**GPT_S_CONFIG.extreme_arch(largest=True), "layers": 10}
    assert space.canonical(arch) == {**arch, "heads_10": 4, "mlp_10": 2, "heads_11": 4, "mlp_11": 2}


def test_extremes_take_bias_on_as_the_larger_network():
    supernet = gpt_s(seq_len=8)
    smallest, largest = supernet.extremes()
    assert (smallest["bias"], largest["bias"]) == (False, True)
    assert (smallest["layers"], smallest["embed"], largest["layers"], largest["embed"]) == (10, 192, 12, 768)
    assert supernet.params(smallest) < supernet.params({**smallest, "bias": True})
    assert (supernet.macs(smallest), supernet.params(smallest)) == (105_042_944, 13_097_472)
    assert (supernet.macs(largest), supernet.params(largest)) == (989_417_472, 123_651_072)


def test_closed_form_counts_equal_the_counters_on_gpt_s():
    """MACs and parameters of GPT-S sub-networks, counted on weightless (meta) modules of their sizes."""
    seq_len = 8
    for arch in archs_with_both_biases(GPT_S_CONFIG, 1, seed=1):
        sizes = GPT_S_CONFIG.sizes(arch)
        module = skeleton(GPT, sizes)
        inputs = torch.zeros(1, seq_len, dtype=torch.long, device="meta")
        assert count_macs_params(sizes, seq_len) == (count_macs(module, inputs), count_params(module)), arch


def test_closed_form_counts_equal_the_counters_on_extracted_subnetworks(small):
    supernet_seq = 12
    for arch in archs_with_both_biases(SMALL, 3, seed=2):
        subnet = small.get_active_subnet(arch)
        expected = (count_macs(subnet, tokens(SMALL, 1, supernet_seq)), count_params(subnet))
        assert small.macs_params(arch, supernet_seq) == expected, arch


@torch.no_grad()
def test_subnetwork_equals_the_supernet_with_its_arch_active(small):
    inputs = tokens(SMALL, 3, 20)
    shared = {p.untyped_storage().data_ptr() for p in small.parameters()}
    for arch in archs_with_both_biases(SMALL, 3, seed=3):
        subnet = small.get_active_subnet(arch)
        assert not subnet.training
        assert not shared & {p.untyped_storage().data_ptr() for p in subnet.parameters()}
        small.set_active(arch)
        expected = small(inputs)
        assert expected.shape == (3, 20, SMALL.vocab_size)
        assert (subnet(inputs) - expected).abs().max() < 1e-5, arch


@torch.no_grad()
def test_gpt_s_subnetwork_equals_run_active():
    supernet = gpt_s(seq_len=6)
    smallest = supernet.extremes()[0]  # the largest's copy costs seconds (124 M weights); SMALL has one
    inputs = supernet.example_inputs(smallest, 2)
    assert inputs[0].shape == (2, 6) and inputs[0].dtype == torch.long
    assert (supernet.subnet(smallest)(*inputs) - supernet.run_active(smallest, *inputs)).abs().max() < 1e-5


@torch.no_grad()
def test_parameters_of_inactive_layers_and_biases_change_nothing():
    net = ElasticGPT(SMALL, seed=1).eval()
    inputs = tokens(SMALL, 2, 16)
    arch = {**SMALL.extreme_arch(largest=True), "layers": 2, "bias": False}
    net.set_active(arch)
    before = net(inputs)
    net.set_active({**arch, "heads_2": 1, "mlp_2": 2})  # the unused slot's choices
    assert torch.equal(net(inputs), before)
    unused_layers = [p for block in net.largest.blocks[2:] for p in block.parameters()]
    linear_biases = [p for name, p in net.largest.named_parameters() if ".attn." in name or ".mlp." in name]
    for parameter in unused_layers + [p for p in linear_biases if p.dim() == 1]:
        parameter.add_(1.0)
    assert torch.equal(net(inputs), before)
    net.set_active({**arch, "bias": True})  # the changed biases are now used
    assert not torch.allclose(net(inputs), before)


def test_the_tied_embedding_is_one_tensor_in_the_subnetwork(small):
    arch = SMALL.extreme_arch(largest=False)
    subnet = small.get_active_subnet(arch)
    embed = arch["embed"]
    matrices = [name for name, p in subnet.named_parameters() if p.shape == (SMALL.vocab_size, embed)]
    assert matrices == ["wte.weight"]
    inputs = tokens(SMALL, 1, 5)
    with torch.no_grad():
        before = subnet(inputs)
        subnet.wte.weight[:, 0] += 1.0  # the output projection is the same tensor: logits change
        assert not torch.allclose(subnet(inputs), before)


@torch.no_grad()
def test_sorting_keeps_the_largest_network_and_reorders_the_units():
    net = ElasticGPT(SMALL, seed=2).eval()
    inputs = tokens(SMALL, 2, 16)
    largest = net.max_arch()
    net.set_active(largest)
    before = net(inputs)
    fc = net.largest.blocks[0].mlp.fc.weight.clone()
    net.sort_channels()
    assert (net(inputs) - before).abs().max() < 1e-5
    assert not torch.equal(net.largest.blocks[0].mlp.fc.weight, fc)
    for block in net.largest.blocks:
        importance = block.mlp.proj.weight.abs().sum(dim=0)
        assert torch.all(importance[:-1] >= importance[1:])
        heads = block.attn.proj.weight.abs().view(-1, block.attn.heads, SMALL.head_size).sum(dim=(0, 2))
        assert torch.all(heads[:-1] >= heads[1:])


def test_gpt_s_options_and_errors():
    supernet = gpt_s()
    assert (supernet.seq_len, supernet.checkpoint_hash) == (1024, "untrained")
    assert gpt_s(seq_len=128).checkpoint_hash == "untrained-seq128"
    assert supernet.macs(supernet.extremes()[1]) == 145_821_794_304
    with pytest.raises(ValueError, match=r"seq_len must be an integer in \[1, 1024\]"):
        gpt_s(seq_len=2048)
    with pytest.raises(ValueError, match="architecture-only"):
        supernet.evaluate(supernet.extremes()[0], "perplexity")
    with pytest.raises(ValueError, match="'heads_0' has value 5"):
        supernet.macs({**supernet.extremes()[0], "heads_0": 5})
    with pytest.raises(ValueError, match="exceeds the network's context of 32"):
        GPT(SMALL.sizes(SMALL.extreme_arch(largest=False)))(tokens(SMALL, 1, 33))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"embed": (64, 64)}, "GPTConfig.embed must be a non-empty tuple of distinct int"),
        ({"bias": (0, 1)}, "GPTConfig.bias must be a non-empty tuple of distinct bool"),
        ({"vocab_size": 0}, "GPTConfig.vocab_size must be a positive integer"),
        ({"rotary_fraction": 0.125}, "rotate an even number"),
        ({"mlp": (0.01,)}, "give an empty MLP"),
    ],
)
def test_config_errors_name_the_field(change, message):
    with pytest.raises(ValueError, match=message):
        GPTConfig(**{**SMALL.to_dict(), **change})


def test_config_round_trips_through_a_dict():
    as_json = {k: list(v) if isinstance(v, tuple) else v for k, v in SMALL.to_dict().items()}
    assert GPTConfig.from_dict(as_json) == SMALL
    with pytest.raises(ValueError, match=r"no field\(s\) \['embd'\]"):
        GPTConfig.from_dict({**SMALL.to_dict(), "embd": 3})


# --- the embedded pydoc-gpt ----------------------------------------------------------------------


def test_pydoc_gpt_recipe_is_gpt_s_at_a_small_scale():
    from nastools.supernets.gpt._embedded import recipe

    built = recipe()
    config = built.model_config
    task = built.task()
    assert config.vocab_size == task.vocab_size and config.context == task.config.context
    assert config.space().size == 3 * 2 * sum(9**n for n in (2, 3, 4)) == 44_226
    assert max(config.heads) * config.head_size == max(config.embed)  # GPT-S: 12 heads x 64 = 768
    assert built.training.label_smoothing == 0.0 and built.training.strategy == "sandwich"


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A small GPT on the text task, written as the trainer writes its checkpoints (weights untrained)."""
    from nastools.supernets._checkpoints import save_checkpoint
    from nastools.supernets._training import TrainingConfig
    from nastools.supernets.gpt import CHECKPOINT_KIND
    from nastools.tasks.text import TextConfig, TextTask

    task = TextTask(TextConfig(context=16, eval_sequences=8))
    net = ElasticGPT(GPTConfig(**{**SMALL.to_dict(), "vocab_size": task.vocab_size, "context": 16}), seed=3)
    path = tmp_path_factory.mktemp("gpt") / "tiny-gpt.pt"
    report = {"perplexity_largest": 1.0}
    save_checkpoint(path, CHECKPOINT_KIND, net, task.config, TrainingConfig(threads=1), {}, report)
    return path, net.eval(), task


def test_a_checkpoint_loads_by_path_and_scores_as_its_network(tiny_checkpoint):
    from nastools.supernet import load_supernet
    from nastools.supernets.gpt import GPTSupernet

    path, net, task = tiny_checkpoint
    supernet = load_supernet(path)
    assert isinstance(supernet, GPTSupernet) and supernet.supernet_id == "tiny-gpt"
    assert supernet.metadata["report"] == {"perplexity_largest": 1.0}
    assert [m.name for m in supernet.metrics] == ["perplexity"] and supernet.metrics[0].direction == "min"
    assert supernet.seq_len == 16 and supernet.example_inputs(supernet.extremes()[0], 3)[0].shape == (3, 16)
    for arch in supernet.extremes():
        expected = task.score(net.get_active_subnet(arch))
        assert supernet.evaluate(arch, "perplexity") == pytest.approx(expected, rel=1e-6)
        subnet = supernet.subnet(arch)
        inputs = supernet.example_inputs(arch, 1)
        assert supernet.macs(arch) == count_macs(subnet, inputs)
        assert supernet.params(arch) == count_params(subnet)


def test_pydoc_gpt_says_how_to_make_a_missing_checkpoint(tmp_path):
    from nastools.supernets.gpt import pydoc_gpt

    with pytest.raises(FileNotFoundError, match="does not exist"):
        pydoc_gpt(tmp_path / "missing.pt")


def test_a_checkpointed_gpt_passes_the_conformance_suite(tiny_checkpoint):
    from nastools.supernet import load_supernet
    from nastools.testing import check_supernet

    supernet = load_supernet(tiny_checkpoint[0])
    report = check_supernet(supernet, n_archs=2)
    assert set(report.values()) == {"passed"}, report


# --- the shipped data/pydoc-gpt.pt (python -m nastools.training --supernet pydoc-gpt --report) -----


@pytest.fixture(scope="module")
def pydoc():
    from nastools.supernet import load_supernet

    return load_supernet("pydoc-gpt")


def test_pydoc_gpt_ships_with_its_recipe_and_report(pydoc):
    from nastools.supernets.gpt import GPTSupernet
    from nastools.supernets.gpt._embedded import recipe

    assert isinstance(pydoc, GPTSupernet) and pydoc.supernet_id == "pydoc-gpt"
    assert pydoc.checkpoint_path.stat().st_size < 5e6
    assert pydoc.config == recipe().model_config and pydoc.space.size == 44_226
    assert pydoc.metadata["training_config"]["epochs"] == recipe().training.epochs
    assert set(pydoc.parameter_descriptions) == {name.split("_")[0] for name in pydoc.space.names}


def test_pydoc_gpt_extremes_measure_as_reported(pydoc):
    report = pydoc.metadata["report"]
    smallest, largest = pydoc.extremes()
    assert pydoc.evaluate(largest, "perplexity") == pytest.approx(report["perplexity_largest"], rel=1e-4)
    assert pydoc.evaluate(smallest, "perplexity") == pytest.approx(report["perplexity_smallest"], rel=1e-4)


def test_pydoc_gpt_report_meets_the_targets(pydoc):
    report = pydoc.metadata["report"]
    assert report["metric"] == "perplexity" and report["direction"] == "min"
    assert report["perplexity_gap"] > 10 * report["evaluation_noise_std"]  # largest clearly better
    assert report["largest_vs_standalone"] >= 0.95
    # perplexity falls as MACs grow: tau(perplexity, MACs) is negative, the oriented one positive
    assert -0.9 <= report["kendall_tau_perplexity_macs"] <= -0.3
    assert 0.3 <= report["kendall_tau_macs"] <= 0.9


@pytest.mark.slow
def test_pydoc_gpt_report_remeasured(pydoc):
    """The checks stored in the checkpoint's report, measured again (except the standalone training)."""
    from nastools.supernets._checks import supernet_report
    from nastools.supernets.gpt._embedded import recipe

    built = recipe()
    report = supernet_report(
        pydoc.net, pydoc.task, built, built.training, train_standalone=False, macs=pydoc.macs, progress=False
    )
    stored = pydoc.metadata["report"]
    assert report["perplexity_gap"] > 10 * report["evaluation_noise_std"]
    assert 0.3 <= report["kendall_tau_macs"] <= 0.9
    assert report["kendall_tau_macs"] == pytest.approx(stored["kendall_tau_macs"], abs=0.02)
