"""The HAT family: space, closed-form counts, weight sharing, incremental decoding, the supernets."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from nastools.supernet import count_macs, count_params, load_supernet, supernet_names
from nastools.supernets.hat import (
    HAT_WMT14_EN_DE_CONFIG,
    ElasticHAT,
    HATConfig,
    HATSupernet,
    attended_layers,
    hat_params,
    hat_wmt14_en_de,
)

# a tiny HAT space: every elastic dimension of HAT's, a second per forward
TINY = HATConfig(
    vocab_size=23,
    encoder_layers=3,
    decoder_layers=(1, 2, 3),
    encoder_embed=(8, 16),
    decoder_embed=(8, 12),
    encoder_ffn=(8, 16, 24),
    decoder_ffn=(8, 16, 24),
    encoder_heads=(2, 4),
    decoder_heads=(2, 4),
    cross_heads=(1, 2),
    qkv_dim=8,
    sequence_length=7,
)


@pytest.fixture(scope="module")
def tiny() -> HATSupernet:
    torch.manual_seed(0)
    net = ElasticHAT(TINY)
    with torch.no_grad():  # a trained network's norms and biases are not the initial ones
        for parameter in net.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return HATSupernet(TINY, "tiny-hat", "test", net=net)


@pytest.fixture(scope="module")
def full() -> HATSupernet:
    return hat_wmt14_en_de()


def tokens(batch: int, length: int, pad_from: int | None = None, seed: int = 0) -> torch.Tensor:
    ids = torch.randint(3, TINY.vocab_size, (batch, length), generator=torch.Generator().manual_seed(seed))
    if pad_from is not None:
        ids[0, pad_from:] = TINY.pad_index  # the first sentence is shorter: padding
    return ids


def every_attention_value(space, n: int, seed: int) -> list[dict]:
    """Random archs, the first three with all decoder layers active and arbattn all -1, all 1, all 2."""
    archs = space.sample(n, np.random.default_rng(seed))
    for arch, value in zip(archs, (-1, 1, 2)):
        arch["declayers"] = max(space.choices["declayers"])
        arch.update({name: value for name in space.names if name.startswith("arbattn")})
    return [space.canonical(arch) for arch in archs]


def test_space_counts_distinct_networks_not_genes():
    space = HAT_WMT14_EN_DE_CONFIG.space()
    genes = math.prod(len(choices) for choices in space.choices.values())
    assert genes == 2_437_438_960_041_984  # HAT's gene: the paper's "about 1e15"
    assert space.size == 417_846_678_672_384  # 2 * 3^6 * 2^6 * 2 * sum_L 36^L: unused decoder slots ignored
    assert space.n_var == 39


def test_extremes_are_the_smallest_and_largest_network(full):
    smallest, largest = full.extremes()
    assert (smallest["encembed"], smallest["decembed"], smallest["declayers"]) == (512, 512, 1)
    assert (largest["encembed"], largest["decembed"], largest["declayers"]) == (640, 640, 6)
    assert smallest["arbattn_0"] == -1 and all(largest[f"arbattn_{i}"] == 2 for i in range(6))
    assert all(largest[f"encffn_{i}"] == 3072 and smallest[f"encffn_{i}"] == 1024 for i in range(6))
    macs = [full.macs(arch) for arch in full.space.sample(50, np.random.default_rng(0))]
    assert full.macs(smallest) <= min(macs) and full.macs(largest) >= max(macs)


def test_full_size_extremes_macs_and_params(full):
    smallest, largest = full.extremes()
    assert (full.macs(smallest), full.macs(largest)) == (982_548_480, 3_016_089_600)
    assert (full.params(smallest), full.params(largest)) == (32_548_352, 91_872_512)
    # HAT's count leaves the 32,768 x 640 embedding out: 70.9 M and 15.8 M as HAT reports its sizes
    sizes = HAT_WMT14_EN_DE_CONFIG.sizes(largest)
    assert hat_params(sizes, embeddings=False) == 91_872_512 - 32_768 * 640 == 70_900_992


def test_closed_form_counts_equal_the_counters_full_size(full):
    smallest = full.extremes()[0]
    archs = [smallest, *every_attention_value(full.space, 1, seed=3)[:1]]
    for arch in archs:
        subnet = full.subnet(arch)
        assert full.macs(arch) == count_macs(subnet, full.example_inputs(arch, 1))
        assert full.params(arch) == count_params(subnet)
        del subnet


def test_closed_form_counts_equal_the_counters_tiny(tiny):
    for arch in [*tiny.extremes(), *every_attention_value(tiny.space, 12, seed=1)]:
        subnet = tiny.subnet(arch)
        assert tiny.macs(arch) == count_macs(subnet, tiny.example_inputs(arch, 1)), arch
        assert tiny.params(arch) == count_params(subnet), arch


def test_subnet_equals_the_supernet_with_its_arch_active(tiny):
    src, prev = tokens(3, 7, pad_from=4), tokens(3, 6, seed=1)
    for arch in [*tiny.extremes(), *every_attention_value(tiny.space, 10, seed=2)]:
        shared = tiny.run_active(arch, src, prev)
        standalone = tiny.subnet(arch)(src, prev)
        assert shared.shape == (3, 6, TINY.vocab_size)
        assert (shared - standalone).abs().max().item() < 1e-5, arch


def test_standalone_subnet_shares_no_storage(tiny):
    subnet = tiny.subnet(tiny.extremes()[1])
    shared = {p.untyped_storage().data_ptr() for p in tiny.net.parameters()}
    assert not shared & {p.untyped_storage().data_ptr() for p in subnet.parameters()}


def test_arbitrary_attention_changes_what_the_decoder_reads(tiny):
    src, prev = tokens(2, 7), tokens(2, 5, seed=1)
    arch = tiny.extremes()[1]
    outputs = []
    for value in (-1, 1, 2):
        outputs.append(tiny.run_active({**arch, "arbattn_0": value}, src, prev))
    assert all((a - b).abs().max() > 1e-4 for a, b in [(outputs[0], outputs[1]), (outputs[1], outputs[2])])
    assert [attended_layers(v) for v in (-1, 1, 2)] == [1, 2, 3]
    # HAT's order: the last layer's outputs first, concatenated along the sequence
    encoded = tiny.subnet(arch).encode(src)
    memory, mask = encoded.memory(3)
    expected = torch.cat([encoded.states[-1], encoded.states[-2], encoded.states[-3]], dim=1)
    assert torch.equal(memory, expected) and mask.shape == (2, 1, 1, 21)


def test_heads_split_the_fixed_qkv_width(tiny):
    arch = tiny.extremes()[1]
    fewer = {**arch, "encheads_0": 2}
    assert tiny.params(fewer) == tiny.params(arch) and tiny.macs(fewer) == tiny.macs(arch)
    src, prev = tokens(2, 7), tokens(2, 5, seed=1)
    assert (tiny.run_active(fewer, src, prev) - tiny.run_active(arch, src, prev)).abs().max() > 1e-4


def test_incremental_decoding_equals_teacher_forcing(tiny):
    src, prev = tokens(3, 7, pad_from=3), tokens(3, 6, seed=1)
    for arch in every_attention_value(tiny.space, 4, seed=4):
        subnet = tiny.subnet(arch)
        with torch.no_grad():
            forced = subnet(src, prev)
            state = subnet.start_decoding(subnet.encode(src))
            stepped = torch.stack(
                [subnet.decode_step(prev[:, t], state) for t in range(prev.shape[1])], dim=1
            )
        assert state.step == 6 and state.keys[0].shape[2] == 6  # cached keys grew one position per step
        assert (forced - stepped).abs().max().item() < 1e-5, arch


def test_inactive_decoder_layers_change_nothing(tiny):
    space = tiny.space
    arch = {**tiny.extremes()[1], "declayers": 1}
    other = {**arch, "decffn_2": 8, "crossheads_1": 1, "arbattn_2": -1, "decheads_1": 2}
    assert space.canonical(arch) == space.canonical(other)
    assert space.key(arch) == space.key(other)
    subnet = tiny.subnet(arch)
    assert not any(
        name.startswith(("decoder.layers.1.", "decoder.layers.2.")) for name in subnet.state_dict()
    )
    src, prev = tokens(2, 7), tokens(2, 5, seed=1)
    before = tiny.run_active(arch, src, prev)
    layer = tiny.net.largest.decoder["layers"][2]
    saved = [p.detach().clone() for p in layer.parameters()]
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.add_(1.0)
        after = tiny.run_active(other, src, prev)
        for parameter, value in zip(layer.parameters(), saved):
            parameter.copy_(value)
    assert torch.equal(before, after)


def test_sort_channels_keeps_the_largest_network(tiny):
    net = ElasticHAT(TINY)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    src, prev = tokens(2, 7), tokens(2, 5, seed=1)
    net.set_active(net.max_arch())
    with torch.no_grad():
        before = net(src, prev)
        net.sort_channels()
        after = net(src, prev)
    assert (before - after).abs().max().item() < 1e-5
    fc2 = net.largest.encoder["layers"][0].fc2.weight.abs().sum(dim=0)
    assert bool((fc2[:-1] >= fc2[1:]).all())  # most important hidden units first


def test_workload_is_encoder_then_incremental_decoding(tiny, full):
    arch = tiny.extremes()[0]
    subnet = tiny.subnet(arch)
    fn, args = tiny.workload(subnet, arch, batch_size=2)
    assert args[0].shape == (2, TINY.sequence_length)
    assert fn(*args).shape == (2 * tiny.beam, TINY.vocab_size)
    assert full.beam == 5 and hat_wmt14_en_de(beam=1).checkpoint_hash == "untrained-beam1"
    with pytest.raises(ValueError, match="beam must be a positive integer"):
        hat_wmt14_en_de(beam=0)


def test_example_inputs_fit_both_batch_sizes(full):
    arch = full.extremes()[0]
    for batch_size in (1, 3):
        src, prev = full.example_inputs(arch, batch_size)
        assert src.shape == prev.shape == (batch_size, 30)
        assert (src[:, -1] == 2).all() and (prev[:, 0] == 2).all()


def test_full_size_has_no_bleu_and_says_why(full):
    with pytest.raises(ValueError, match="architecture-only.*numbers-hat"):
        full.check_metric("bleu")
    with pytest.raises(ValueError, match="architecture-only"):
        full.evaluate(full.extremes()[0], "bleu")
    with pytest.raises(ValueError, match="no metric 'top1'"):
        full.evaluate(full.extremes()[0], "top1")


def test_registered_by_name():
    assert {"hat-wmt14-en-de", "numbers-hat"} <= set(supernet_names())
    supernet = load_supernet("hat-wmt14-en-de")
    assert isinstance(supernet, HATSupernet) and "arbattn" in supernet.parameter_descriptions
    assert "net" not in vars(supernet)  # MACs and parameters need no weights: built on first use


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"arbitrary_attention": (-1, 1, 2), "encoder_layers": 2}, "attends to the last 3 encoder layers"),
        ({"encoder_heads": (3,)}, "do not divide qkv_dim"),
        ({"decoder_ffn": (2048, 1024)}, "ascending"),
        ({"arbitrary_attention": (0,)}, "not one of HAT's values"),
        ({"pad_index": 2}, "must differ"),
    ],
)
def test_config_errors_name_the_problem(change, message):
    with pytest.raises(ValueError, match=message):
        HATConfig(**change)


def test_config_round_trips_through_a_dict():
    assert HATConfig.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(ValueError, match="no field"):
        HATConfig.from_dict({**TINY.to_dict(), "embed": 3})


def test_checkpoint_reads_back_and_passes_the_conformance_suite(tmp_path):
    from nastools.supernets._checkpoints import save_checkpoint
    from nastools.supernets._training import TrainingConfig
    from nastools.supernets.hat import CHECKPOINT_KIND
    from nastools.tasks.translation import TranslationConfig, TranslationTask
    from nastools.testing import check_supernet

    task = TranslationTask(TranslationConfig(heldout=200, eval_sentences=40))
    config = HATConfig(**{**TINY.to_dict(), "vocab_size": task.vocab_size, "sequence_length": 30})
    torch.manual_seed(0)
    net = ElasticHAT(config)
    training = TrainingConfig(epochs=2, warmup_epochs=1, threads=1)
    path = save_checkpoint(tmp_path / "numbers.pt", CHECKPOINT_KIND, net, task.config, training, {}, {})
    supernet = load_supernet(path)
    assert isinstance(supernet, HATSupernet) and supernet.checkpoint_path == path
    assert supernet.task.config == task.config and supernet.beam == 1
    arch = supernet.extremes()[1]
    assert 0.0 <= supernet.evaluate(arch, "bleu") < 100.0  # untrained: greedy decoding runs, BLEU is low
    report = check_supernet(supernet, n_archs=2)
    assert set(report.values()) == {"passed"}, report


def test_embedded_recipe_fits_its_task():
    from nastools.supernets.hat import EMBEDDED_MODEL_CONFIG, recipe

    made = recipe()
    task = made.task()
    assert made.name == "numbers-hat" and made.build is ElasticHAT
    assert EMBEDDED_MODEL_CONFIG.vocab_size == task.vocab_size
    longest = max(len(side.split()) + 1 for pair in task.train_pairs + task.heldout_pairs for side in pair)
    assert longest <= EMBEDDED_MODEL_CONFIG.sequence_length  # example inputs hold every sentence
    assert EMBEDDED_MODEL_CONFIG.space().size == 41_461_632


def test_a_task_that_does_not_fit_the_network_is_refused():
    from nastools.tasks.translation import TranslationConfig, TranslationTask

    task = TranslationTask(TranslationConfig(heldout=200, eval_sentences=40, max_length=32))
    config = HATConfig(**{**TINY.to_dict(), "vocab_size": task.vocab_size, "sequence_length": 30})
    with pytest.raises(ValueError, match="max_length=30"):
        HATSupernet(config, "x", "test", task=task)
    with pytest.raises(ValueError, match="vocabulary has"):
        HATSupernet(TINY, "x", "test", task=task)


def test_a_subnet_exports_in_every_format_and_runs_as_measured(tiny, tmp_path):
    """``nastools export`` on HAT: the ``torch.export`` program, TorchScript (traced after the export: the
    position table must not keep a tracing tensor) and, where onnxruntime is installed, ONNX."""
    from nastools.export import export_subnet
    from nastools.supernets.hat import _network

    _network._sinusoid_table.cache_clear()  # the export is the first to make the position table
    arch = every_attention_value(tiny.space, 3, seed=5)[2]
    formats = ["pt", "torchscript"]
    onnxruntime = None
    try:
        import onnx  # noqa: F401
        import onnxruntime
        import onnxscript  # noqa: F401

        formats.append("onnx")
    except ImportError:
        pass
    export_subnet(tiny, arch, tmp_path, formats=formats)
    src, prev = tiny.example_inputs(arch, 3)
    with torch.no_grad():
        expected = tiny.subnet(arch)(src, prev)  # eager again after the export and the trace
        program = torch.export.load(tmp_path / "model.pt2").module()
        assert (program(src, prev) - expected).abs().max().item() < 1e-5
        with warnings.catch_warnings():  # TorchScript's deprecation in torch 2.10+
            warnings.simplefilter("ignore", DeprecationWarning)
            traced = torch.jit.load(tmp_path / "model.torchscript.pt")
        assert (traced(src, prev) - expected).abs().max().item() < 1e-5
    if onnxruntime is not None:
        session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
        names = [i.name for i in session.get_inputs()]
        outputs = session.run(None, dict(zip(names, (src.numpy(), prev.numpy()))))[0]
        assert np.abs(outputs - expected.numpy()).max() < 1e-4


# --- the shipped data/numbers-hat.pt (python -m nastools.training --supernet numbers-hat --report) ----


@pytest.fixture(scope="module")
def numbers():
    return load_supernet("numbers-hat")


def test_numbers_hat_ships_with_its_recipe_and_report(numbers):
    from nastools.supernets.hat import recipe

    built = recipe()
    assert isinstance(numbers, HATSupernet) and numbers.supernet_id == "numbers-hat"
    assert numbers.checkpoint_path.stat().st_size < 5e6
    assert numbers.config == built.model_config and numbers.space.size == 41_461_632
    stored = dict(numbers.metadata["training_config"])
    assert stored.pop("threads") == 1  # the command's --threads 1; the rest is the recipe's
    assert stored == {k: v for k, v in vars(built.training).items() if k != "threads"}
    assert numbers.task.config == built.task().config
    assert set(numbers.parameter_descriptions) >= {name.split("_")[0] for name in numbers.space.names}


def test_numbers_hat_extremes_measure_as_reported(numbers):
    report = numbers.metadata["report"]
    smallest, largest = numbers.extremes()
    assert numbers.evaluate(largest, "bleu") == pytest.approx(report["bleu_largest"], abs=1e-6)
    assert numbers.evaluate(smallest, "bleu") == pytest.approx(report["bleu_smallest"], abs=1e-6)


def test_numbers_hat_report_meets_the_targets(numbers):
    report = numbers.metadata["report"]
    assert report["metric"] == "bleu" and report["direction"] == "max" and report["n_random"] == 200
    assert report["bleu_gap"] > 10 * report["evaluation_noise_std"]  # largest clearly better
    assert report["largest_vs_standalone"] >= 0.95
    # BLEU grows with MACs: tau(BLEU, MACs) is positive, equal to the oriented one
    assert 0.3 <= report["kendall_tau_bleu_macs"] == report["kendall_tau_macs"] <= 0.9


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")  # as the report was measured; two threads crawl on busy cores
def test_numbers_hat_report_remeasured(numbers):
    """The checks stored in the checkpoint's report, measured again (except the standalone training)."""
    from nastools.supernets._checks import supernet_report
    from nastools.supernets.hat import recipe

    built = recipe()
    report = supernet_report(
        numbers.net,
        numbers.task,
        built,
        built.training,
        train_standalone=False,
        macs=numbers.macs,
        progress=False,
    )
    stored = numbers.metadata["report"]
    assert report["bleu_largest"] == pytest.approx(stored["bleu_largest"], abs=1e-6)
    assert report["bleu_gap"] > 10 * report["evaluation_noise_std"]
    assert 0.3 <= report["kendall_tau_macs"] <= 0.9
    assert report["kendall_tau_macs"] == pytest.approx(stored["kendall_tau_macs"], abs=0.02)
    assert report["evaluation_noise_std"] == pytest.approx(stored["evaluation_noise_std"], rel=1e-6)
