"""The one weight-sharing trainer, the task protocol, the checks' report and the checkpoint format.

Images and tokens alike: a tiny elastic MobileNetV3 on a few digits, a tiny elastic token model and the
``examples/tinylm`` network on a few windows of Python's help texts. The tests assert what each step
trains (which archs, on labels or distilled), never that a loss fell in a few steps.
"""

import subprocess
import sys
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from helpers import TINY_DATA, TRAIN_DATA, tiny_recipe
from torch import nn

from nastools.space import SearchSpace
from nastools.supernet import count_macs, load_supernet
from nastools.supernets._checkpoints import read_checkpoint, save_checkpoint
from nastools.supernets._checks import score, supernet_report
from nastools.supernets._image import resize
from nastools.supernets.mobilenetv3 import ElasticMobileNetV3
from nastools.tasks._task import Task, cross_entropy, distillation_kl
from nastools.tasks.digits import distort, load_digits_task, recalibrate_batchnorm, top1_accuracy
from nastools.tasks.text import TextConfig, TextTask
from nastools.training import Recipe, TrainingConfig, train, train_supernet

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_thread")


# --- small real networks and tasks that record what the trainer does -------------------------------------


class RecordingMobileNet(ElasticMobileNetV3):
    """The tiny elastic MobileNetV3, noting every arch it is set to and every channel sort."""

    def __init__(self, config) -> None:
        super().__init__(config)
        self.trained: list[dict] = []
        self.sorts = 0

    def set_active(self, arch) -> None:
        self.trained.append(dict(arch))
        super().set_active(arch)

    def sort_channels(self) -> None:
        self.sorts += 1
        super().sort_channels()


class RecordingTask:
    """A task that passes everything to another and notes each loss call: ``("loss", outputs)`` or
    ``("distill", outputs, teacher_outputs)``."""

    def __init__(self, task) -> None:
        self.task, self.calls = task, []

    def __getattr__(self, name):
        return getattr(self.task, name)

    def loss(self, outputs, targets, label_smoothing=0.0):
        self.calls.append(("loss", outputs.detach()))
        return self.task.loss(outputs, targets, label_smoothing)

    def distillation_loss(self, outputs, teacher_outputs):
        self.calls.append(("distill", outputs.detach(), teacher_outputs))
        return self.task.distillation_loss(outputs, teacher_outputs)


class FewWindows(TextTask):
    """The text task on its first 48 training windows only: seconds per epoch."""

    n_train = 48


@dataclass(frozen=True)
class TokenNetConfig:
    """A tiny elastic token model's shape."""

    vocab_size: int
    widths: tuple[int, ...] = (8, 16)
    depths: tuple[int, ...] = (1, 2)

    def to_dict(self) -> dict:
        return asdict(self)


class TokenNet(nn.Module):
    """A user's elastic token model: embedding, ``depth`` residual MLP layers and a head, ``width`` leading
    channels of each; ``(B, T)`` token ids to ``(B, T, V)`` logits."""

    def __init__(self, config: TokenNetConfig) -> None:
        super().__init__()
        self.config = config
        width = max(config.widths)
        self.embed = nn.Embedding(config.vocab_size, width)
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(max(config.depths)))
        self.head = nn.Linear(width, config.vocab_size)
        self.space = SearchSpace({"width": list(config.widths), "depth": list(config.depths)})
        self.active = self.max_arch()
        self.trained: list[dict] = []
        self.sorts = 0

    def max_arch(self) -> dict:
        return {"width": max(self.config.widths), "depth": max(self.config.depths)}

    def min_arch(self) -> dict:
        return {"width": min(self.config.widths), "depth": min(self.config.depths)}

    def set_active(self, arch) -> None:
        self.trained.append(dict(arch))
        self.active = dict(arch)

    def sort_channels(self) -> None:
        self.sorts += 1

    def prepare_inputs(self, inputs, arch):
        return inputs

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        width, depth = self.active["width"], self.active["depth"]
        x = self.embed.weight[:, :width][tokens]
        for layer in self.layers[:depth]:
            x = x + torch.relu(F.linear(x, layer.weight[:width, :width], layer.bias[:width]))
        return F.linear(x, self.head.weight[:, :width], self.head.bias)

    def get_active_subnet(self, arch) -> nn.Module:
        subnet = TokenNet(replace(self.config, widths=(arch["width"],), depths=(arch["depth"],)))
        width = arch["width"]
        with torch.no_grad():
            subnet.embed.weight.copy_(self.embed.weight[:, :width])
            for mine, theirs in zip(subnet.layers, self.layers):
                mine.weight.copy_(theirs.weight[:width, :width])
                mine.bias.copy_(theirs.bias[:width])
            subnet.head.weight.copy_(self.head.weight[:, :width])
            subnet.head.bias.copy_(self.head.bias)
        return subnet.eval()


@pytest.fixture(scope="module")
def text_task():
    return FewWindows(TextConfig(context=16, eval_sequences=8))


def token_recipe(task, **training) -> Recipe:
    settings = {"epochs": 3, "warmup_epochs": 1, "batch_size": 16, "threads": 1, "lr": 1e-2} | training
    return Recipe(
        name="tiny-tokens",
        kind="tiny-tokens",
        build=TokenNet,
        model_config=TokenNetConfig(vocab_size=task.vocab_size),
        task=lambda: task,
        training=TrainingConfig(**settings),
        phases=(("width",), ("depth",)),
    )


def _steps(recipe, task) -> int:
    return max(1, task.n_train // recipe.training.batch_size)


def _kinds(calls) -> list[str]:
    return [call[0] for call in calls]


# --- the task protocol -----------------------------------------------------------------------------------


def test_the_digits_and_text_tasks_implement_the_protocol(text_task):
    digits = load_digits_task(TRAIN_DATA)
    for task, name, direction in ((digits, "top1", "max"), (text_task, "perplexity", "min")):
        assert isinstance(task, Task)
        assert (task.metric.name, task.metric.direction) == (name, direction)
        assert task.config.to_dict()["seed"] == 0


def test_a_digits_batch_is_distorted_training_images_with_their_labels():
    task = load_digits_task(TRAIN_DATA)
    indices = torch.tensor([5, 0, 7])
    (images,), labels = task.train_batch(indices, torch.Generator().manual_seed(3))
    expected = distort(task.train_x[indices], task.config, torch.Generator().manual_seed(3))
    assert torch.equal(images, expected) and torch.equal(labels, task.train_y[indices])
    assert task.n_train == len(task.train_y) and torch.equal(task.example_inputs(2)[0], task.test_x[:2])


def test_digits_score_recalibrates_on_the_calibration_set_or_another_draw():
    task = load_digits_task(TRAIN_DATA)
    task.test_x, task.test_y = task.test_x[:300], task.test_y[:300]
    torch.manual_seed(0)
    net = ElasticMobileNetV3(tiny_recipe().model_config)
    arch = net.space.sample(1, rng=0)[0]
    resolution = net.resolution(arch)
    plain = net.get_active_subnet(arch).eval()
    recalibrate_batchnorm(plain, resize(task.calibration_x, resolution))
    expected = top1_accuracy(plain, resize(task.test_x, resolution), task.test_y)
    assert score(net, task, arch) == expected  # the task's images, resized by the network's prepare_inputs
    draws = [task.calibration_draw(0), task.calibration_draw(1)]
    assert draws[0].shape == task.calibration_x.shape and not torch.equal(draws[0], draws[1])
    assert torch.equal(task.calibration_draw(0), load_digits_task(TRAIN_DATA).calibration_draw(0))
    assert score(net, task, arch, draw=1) != expected or score(net, task, arch, draw=0) != expected
    with pytest.raises(ValueError, match="draw must be a non-negative integer, got -1"):
        task.calibration_draw(-1)


def test_text_batches_are_shifted_windows_of_the_training_text(text_task):
    indices = torch.tensor([0, 3, 47])
    (tokens,), targets = text_task.train_batch(indices, torch.Generator().manual_seed(0))
    assert tokens.shape == targets.shape == (3, 16) and tokens.dtype == torch.long
    assert torch.equal(tokens[:, 1:], targets[:, :-1])
    train = text_task.corpus.train
    for row, index in zip(tokens, indices.tolist()):  # window i starts within [17 i, 17 i + 16]
        start = next(s for s in range(17 * index, 17 * index + 17) if torch.equal(train[s : s + 16], row))
        assert 17 * index <= start <= 17 * index + 16
    again, _ = text_task.train_batch(indices, torch.Generator().manual_seed(0))
    assert torch.equal(again[0], tokens)


def test_text_score_is_perplexity_on_the_fixed_held_out_batch_or_another_draw(text_task):
    torch.manual_seed(0)
    module = TokenNet(TokenNetConfig(vocab_size=text_task.vocab_size)).eval()
    with torch.no_grad():
        logits = module(text_task.heldout_inputs)
    expected = float(torch.exp(F.cross_entropy(logits.flatten(0, 1), text_task.heldout_targets.flatten())))
    assert text_task.score(module) == pytest.approx(expected, rel=1e-6)
    other = text_task.score(module, draw=0)
    assert other != text_task.score(module) and other == text_task.score(module, draw=0)
    assert text_task.heldout_draw(0)[0].shape == (8, 16)
    assert TextTask(text_task.config).config == text_task.config  # the stored vocabulary rebuilds it
    with pytest.raises(ValueError, match="context must be an integer >= 1, got 0"):
        TextConfig(context=0)
    with pytest.raises(ValueError, match="heldout_every must be an integer >= 2, got 1"):
        TextConfig(heldout_every=1)


def test_the_losses_ignore_padding_and_distill_per_position():
    logits = torch.randn(2, 3, 5)
    targets = torch.tensor([[1, 2, -100], [0, -100, -100]])
    counted = logits[[0, 0, 1], [0, 1, 0]]
    torch.testing.assert_close(
        cross_entropy(logits, targets), F.cross_entropy(counted, torch.tensor([1, 2, 0]))
    )
    teacher = torch.randn(2, 3, 5)
    per_position = [
        F.kl_div(F.log_softmax(logits[b, t], -1), F.softmax(teacher[b, t], -1), reduction="sum")
        for b in range(2)
        for t in range(3)
    ]
    torch.testing.assert_close(distillation_kl(logits, teacher), torch.stack(per_position).mean())
    images = torch.randn(4, 10), torch.randn(4, 10)  # (B, C): the image trainer's loss as it was
    expected = F.kl_div(F.log_softmax(images[0], dim=1), F.softmax(images[1], dim=1), reduction="batchmean")
    assert torch.equal(distillation_kl(*images), expected)


# --- the trainer -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"strategy": "greedy"}, "unknown strategy 'greedy'"),
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"epochs": True}, "epochs must be a positive integer"),
        ({"warmup_epochs": -1}, "warmup_epochs must be a non-negative integer"),
        ({"epochs": 5, "warmup_epochs": 5}, r"epochs \(5\) must exceed warmup_epochs \(5\)"),
        ({"threads": 10_000}, "exceeds the"),
        ({"lr": 0}, "lr must be > 0"),
    ],
)
def test_bad_training_config_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainingConfig(**kwargs)


def _image_run(strategy, arch=None, **training):
    recipe = replace(
        tiny_recipe(strategy=strategy, **{"batch_size": 32} | training), build=RecordingMobileNet
    )
    task = RecordingTask(recipe.task())
    net, _, log = train_supernet(recipe, arch=arch, task=task, progress=False)
    return recipe, task, net, log


def test_sandwich_trains_the_largest_on_labels_then_the_smallest_and_random_ones_distilled_from_it():
    recipe, task, net, log = _image_run("sandwich")
    steps = _steps(recipe, task)
    largest, smallest = net.max_arch(), net.min_arch()
    warmup, elastic = net.trained[:steps], net.trained[steps:-1]  # the last one: the largest, set at the end
    assert warmup == [largest] * steps and net.trained[-1] == largest and net.sorts == 1
    assert len(elastic) == 2 * steps * 4  # two elastic epochs, largest + smallest + 2 random per step
    calls = task.calls[steps:]
    assert _kinds(task.calls[:steps]) == ["loss"] * steps
    for step in range(2 * steps):
        archs, step_calls = elastic[4 * step : 4 * step + 4], calls[7 * step : 7 * step + 7]
        assert archs[:2] == [largest, smallest] and all(net.space.canonical(a) == a for a in archs[2:])
        assert _kinds(step_calls) == ["loss"] + ["loss", "distill"] * 3
        teacher = step_calls[0][1]  # the largest's outputs of this very step
        assert all(torch.equal(call[2], teacher) for call in step_calls[2::2])
    assert log["phase"] == ["sandwich"] * 3 and not net.training


def test_progressive_shrinking_opens_the_phases_in_order_and_distills_every_arch():
    recipe, task, net, log = _image_run("progressive", epochs=4, batch_size=64)
    steps, largest = _steps(recipe, task), net.max_arch()
    assert log["phase"] == ["", "ks+r", "d+ks+r", "d+e+ks+r"] and net.sorts == 1
    by_epoch = [net.trained[steps * (1 + 4 * e) : steps * (1 + 4 * (e + 1))] for e in range(3)]
    opened = [{"r", "ks"}, {"r", "ks", "d"}, {"r", "ks", "d", "e"}]
    for archs, open_now in zip(by_epoch, opened):
        assert len(archs) == 4 * steps
        for arch in archs:  # what is not open yet stays at the largest (where it is used at all)
            closed = {name: largest[name] for name in arch if name.split("_")[0] not in open_now}
            assert net.space.canonical({**arch, **closed}) == arch
    expand = [name for name in largest if name.startswith("e_")]
    assert any(a[name] != largest[name] for a in by_epoch[2] for name in expand)  # the last phase: expand too
    assert _kinds(task.calls[steps:]) == ["loss", "distill"] * (3 * 4 * steps)


def test_standalone_trains_only_the_fixed_arch_on_labels():
    torch.manual_seed(0)
    arch = ElasticMobileNetV3(tiny_recipe().model_config).space.sample(1, rng=4)[0]
    recipe, task, net, log = _image_run("standalone", arch=arch, epochs=2)
    steps = _steps(recipe, task)
    assert net.trained[: 2 * steps] == [net.space.canonical(arch)] * (2 * steps) and net.sorts == 0
    assert _kinds(task.calls) == ["loss"] * (2 * steps) and log["phase"] == ["standalone"] * 2
    with pytest.raises(ValueError, match="arch is what strategy='standalone' trains"):
        train(net, task, TrainingConfig(epochs=2, warmup_epochs=1, threads=1), arch=arch, progress=False)


def test_the_same_seed_gives_the_same_weights_and_another_seed_others(text_task):
    runs = [
        train_supernet(tiny_recipe(epochs=2, seed=seed), progress=False)[0].state_dict() for seed in (0, 0, 1)
    ]
    assert all(torch.equal(runs[0][name], runs[1][name]) for name in runs[0])
    assert not all(torch.equal(runs[0][name], runs[2][name]) for name in runs[0])
    tokens = [train_supernet(token_recipe(text_task), progress=False)[0].state_dict() for _ in range(2)]
    assert all(torch.equal(tokens[0][name], tokens[1][name]) for name in tokens[0])


def test_the_threads_are_the_configs_while_training_and_given_back_after():
    threads = torch.get_num_threads()
    seen = []

    class Counting(RecordingMobileNet):
        def set_active(self, arch) -> None:
            seen.append(torch.get_num_threads())
            super().set_active(arch)

    recipe = replace(tiny_recipe(threads=1, epochs=2), build=Counting)
    torch.set_num_threads(2)
    try:
        train_supernet(recipe, progress=False)
        assert set(seen) == {1} and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("strategy", ["sandwich", "progressive"])
def test_a_token_network_trains_with_the_same_trainer(text_task, strategy):
    recipe = token_recipe(text_task, strategy=strategy)
    task = RecordingTask(text_task)
    net, _, log = train_supernet(recipe, task=task, progress=False)
    steps, largest = _steps(recipe, text_task), net.max_arch()
    assert net.trained[:steps] == [largest] * steps and net.sorts == 1
    if strategy == "sandwich":
        assert net.trained[steps : steps + 2] == [largest, net.min_arch()]
        assert _kinds(task.calls[steps : steps + 7]) == ["loss"] + ["loss", "distill"] * 3
    else:
        assert log["phase"] == ["", "width", "depth+width"]
        assert {a["depth"] for a in net.trained[steps : 5 * steps]} == {largest["depth"]}  # width only
    assert all(np.isfinite(log["loss"])) and len(log["loss"]) == 3
    assert np.isfinite(text_task.score(net.get_active_subnet(net.min_arch())))


def test_the_tinylm_example_trains_with_nastools_trainer_and_its_checkpoint_loads(tmp_path, monkeypatch):
    """A user's supernet (``examples/tinylm``'s ElasticLM) on nastools' trainer, saved in its own format."""
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    from tinylm.supernet import make_supernet
    from tinylm.train import save, train_with_nastools

    task = FewWindows(TextConfig(context=64, eval_sequences=8))
    model, corpus, log = train_with_nastools(epochs=1, task=task, progress=False)
    assert [entry["epoch"] for entry in log] == [1] and np.isfinite(log[0]["train_loss"])
    assert corpus.vocab == task.corpus.vocab and model.active == model.max_arch()
    save(model, corpus, {"log": log}, tmp_path / "mine.pt")
    supernet = make_supernet(tmp_path / "mine.pt")
    model.largest.load_state_dict({n: w.half() for n, w in model.largest.state_dict().items()})  # as saved
    for arch in [model.max_arch(), *supernet.space.sample(2, rng=0)]:
        with torch.no_grad():
            expected = model(supernet.inputs, arch)
            torch.testing.assert_close(supernet.subnet(arch)(supernet.inputs), expected)


# --- checkpoints -----------------------------------------------------------------------------------------


def test_an_image_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    recipe = tiny_recipe(epochs=2)
    net, task, log = train_supernet(recipe, progress=False)
    path = save_checkpoint(
        tmp_path / "tiny.pt", recipe.kind, net, task.config, recipe.training, log, {"x": 1.0}
    )
    supernet = load_supernet(path)
    assert supernet.metadata["log"] == log and supernet.metadata["report"] == {"x": 1.0}
    assert supernet.task.config == task.config
    for arch in [net.max_arch(), net.min_arch(), *net.space.sample(2, rng=0)]:
        (images,) = supernet.example_inputs(arch, 4)
        with torch.no_grad():
            assert torch.equal(supernet.subnet(arch)(images), net.get_active_subnet(arch)(images))


@pytest.mark.parametrize("dtype", [None, torch.float16])
def test_a_token_checkpoint_round_trip_gives_identical_outputs(text_task, tmp_path, dtype):
    recipe = token_recipe(text_task, epochs=2)
    net, task, log = train_supernet(recipe, progress=False)
    path = save_checkpoint(
        tmp_path / "t.pt", recipe.kind, net, task.config, recipe.training, log, weights_dtype=dtype
    )
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "nastools-supernet" and payload["version"] == 1
    assert payload["state_dict"]["head.weight"].dtype == (dtype or torch.float32)

    def build(stored):
        return TokenNet(
            TokenNetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()})
        )

    loaded, loaded_task, metadata, name = read_checkpoint(
        path, payload, build, lambda c: TextTask(TextConfig(**c))
    )
    assert name == "t" and metadata["log"] == log and loaded_task.config == task.config
    if dtype is not None:  # what was stored: the weights rounded to it
        net.load_state_dict({k: v.to(dtype) for k, v in net.state_dict().items()})
    for arch in [net.max_arch(), net.min_arch()]:
        with torch.no_grad():
            assert torch.equal(
                loaded.get_active_subnet(arch)(task.heldout_inputs),
                net.get_active_subnet(arch)(task.heldout_inputs),
            )
    # a loaded supernet writes itself again from what it read (the training config as stored: a dict)
    again = save_checkpoint(
        tmp_path / "again.pt", recipe.kind, loaded, loaded_task.config, metadata["training_config"], log
    )
    assert torch.load(again, weights_only=True)["training_config"] == asdict(recipe.training)


def test_a_non_finite_token_weight_is_refused_naming_it(text_task, tmp_path):
    recipe = token_recipe(text_task)
    net = TokenNet(recipe.model_config)
    path = save_checkpoint(tmp_path / "t.pt", recipe.kind, net, text_task.config, recipe.training, {})
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["head.bias"][0] = float("nan")
    with pytest.raises(ValueError, match=r"weight 'head.bias' has 1 non-finite value"):
        read_checkpoint(
            path, payload, lambda c: TokenNet(TokenNetConfig(c["vocab_size"])), lambda c: text_task
        )


# --- the checks ------------------------------------------------------------------------------------------


NUMBERS = [
    "{m}_largest",
    "{m}_smallest",
    "{m}_gap",
    "n_random",
    "kendall_tau_{m}_macs",
    "kendall_tau_macs",
    "random_{m}_mean",
    "random_{m}_std",
    "random_{m}_min",
    "random_{m}_max",
    "random_macs_min",
    "random_macs_max",
    "evaluation_noise_std",
    "noise_to_spread",
    "{m}_largest_standalone",
    "largest_vs_standalone",
    "standalone_seconds",
]


def _check_fields(report, metric):
    assert report["metric"] == metric
    names = [name.format(m=metric) for name in NUMBERS]
    assert sorted(report) == sorted([*names, "metric", "direction"])
    assert all(np.isfinite(report[name]) for name in names), report


def test_the_report_of_an_image_supernet_has_every_figure_finite():
    recipe = tiny_recipe(epochs=2)
    net, task, _ = train_supernet(recipe, progress=False)
    task.test_x, task.test_y = task.test_x[:300], task.test_y[:300]  # seconds, not a minute, per report
    closed_form = []

    def macs(arch):
        closed_form.append(net.macs_params(arch)[0])
        return closed_form[-1]

    report = supernet_report(
        net, task, recipe, recipe.training, n_random=5, n_noise_archs=2, n_draws=2, macs=macs, progress=False
    )
    _check_fields(report, "top1")
    assert (
        report["direction"] == "max"
        and report["top1_gap"] == report["top1_largest"] - report["top1_smallest"]
    )
    assert report["kendall_tau_macs"] == report["kendall_tau_top1_macs"] and len(closed_form) == 5
    assert report["largest_vs_standalone"] == report["top1_largest"] / report["top1_largest_standalone"]
    arch = net.space.sample(5, np.random.default_rng(1))[0]  # the report's first random arch (seed 1)
    counted = count_macs(net.get_active_subnet(arch), (resize(task.test_x[:1], net.resolution(arch)),))
    assert closed_form[0] == counted and report["random_macs_max"] == max(closed_form)


def test_the_report_of_a_token_supernet_orients_a_metric_to_minimise(text_task):
    recipe = token_recipe(text_task)
    net, task, _ = train_supernet(recipe, progress=False)
    report = supernet_report(
        net, task, recipe, recipe.training, n_random=5, n_noise_archs=2, n_draws=2, progress=False
    )
    _check_fields(report, "perplexity")
    assert report["direction"] == "min"
    assert report["perplexity_gap"] == report["perplexity_smallest"] - report["perplexity_largest"]
    assert report["kendall_tau_macs"] == -report["kendall_tau_perplexity_macs"]
    assert (
        report["largest_vs_standalone"]
        == report["perplexity_largest_standalone"] / report["perplexity_largest"]
    )
    assert report["random_macs_min"] < report["random_macs_max"]  # counted on the token inputs


def test_the_report_refuses_too_few_archs_or_draws(text_task):
    recipe = token_recipe(text_task)
    net = TokenNet(recipe.model_config)
    with pytest.raises(ValueError, match="n_random must be an integer >= 2, got 1"):
        supernet_report(net, text_task, recipe, recipe.training, n_random=1)
    with pytest.raises(ValueError, match="n_draws must be an integer >= 2, got 1"):
        supernet_report(net, text_task, recipe, recipe.training, n_draws=1)


def test_the_trainer_imports_neither_the_checks_nor_torch_until_it_trains():
    probe = (
        "import sys, nastools.training, nastools.supernets._training; "
        "print(sorted(m for m in ('torch', 'nastools.supernets._checks') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["sandwich", "progressive"])
def test_training_at_the_tiny_tasks_full_size(strategy):
    """All 1,257 training digits at batch 256 (four steps per epoch): the same run twice, the same weights."""
    recipe = replace(
        tiny_recipe(strategy=strategy, batch_size=256), task=partial(load_digits_task, TINY_DATA)
    )
    net_a, _, log_a = train_supernet(recipe, progress=False)
    net_b, _, log_b = train_supernet(recipe, progress=False)
    assert log_a["loss"] == log_b["loss"] and all(np.isfinite(log_a["loss"]))
    for (name, a), b in zip(net_a.state_dict().items(), net_b.state_dict().values()):
        assert torch.equal(a, b), name
