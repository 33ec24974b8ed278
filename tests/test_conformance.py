"""The conformance suite ``nastools.testing.check_supernet``: every supernet passes it, and it catches faults.

Every registered supernet (discovered: a new family is checked without an edit here), the user
example ``examples/tinylm`` and elastic networks of configs the registered ones do not reach pass it;
a small supernet with one fault injected at a time fails the one check that covers the fault.
"""

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from helpers import (
    SMALL_RESNET_CONFIG,
    TINY_CONFIG,
    TINY_RESNET_CONFIG,
    ToySupernet,
    randomize,
)
from torch import nn

import nastools.supernets
from nastools.metrics import Metric
from nastools.space import Condition, SearchSpace
from nastools.supernet import Supernet, load_supernet, supernet_names
from nastools.supernets.mobilenetv3 import ElasticMobileNetV3, MobileNetV3Supernet
from nastools.supernets.resnet import ElasticResNet, ResNetSupernet
from nastools.testing import CHECKS, check_supernet

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

# Small forward passes on shared cores: one thread is fastest and steadiest (conftest's fixture).
pytestmark = pytest.mark.usefixtures("one_thread")

#: A supernet whose smallest sub-network has more MACs is full size (ImageNet, GPT-S): one arch.
FULL_SIZE_MACS = 5e7
#: ... and above this (OFA's ResNet50, HAT's WMT Transformer, GPT-S), where a sub-network takes seconds to
#: extract and run on busy cores, its checks run in the slow tier.
HEAVY_MACS = 5e8
#: Checks that pass on every supernet that can run them; the others apply or not (say why).
ALWAYS = (
    "extremes",
    "example_inputs",
    "subnet_equals_supernet",
    "closed_form_counts",
    "workload",
    "standalone_copy",
)


def _settings(supernet: Supernet) -> dict:
    """``check_supernet``'s settings for a supernet of this size (the full-size ones: one arch)."""
    return {} if supernet.macs(supernet.extremes()[0]) < FULL_SIZE_MACS else {"n_archs": 1}


def _assert_conforms(supernet: Supernet, report: dict) -> None:
    """What every built-in supernet must pass, and the checks that apply only to some, where they apply."""
    assert list(report) == list(CHECKS)
    assert {name: report[name] for name in ALWAYS} == dict.fromkeys(ALWAYS, "passed"), report
    if supernet.space.conditions:
        assert report["canonical_keys"] == "passed", report
    trained = getattr(supernet, "checkpoint_path", None) is not None
    assert report["checkpoint_round_trip"] == "passed" or not trained, report
    assert report["metrics"] == "passed" or not trained, report  # a trained one measures its metrics


def _heavy(supernet: Supernet) -> bool:
    return supernet.macs(supernet.extremes()[0]) >= HEAVY_MACS


@pytest.mark.parametrize("name", supernet_names())
def test_every_registered_supernet_conforms(name):
    supernet = load_supernet(name)
    if _heavy(supernet):
        pytest.skip(f"{name}: a sub-network takes seconds to extract and run; checked in the slow tier")
    _assert_conforms(supernet, check_supernet(supernet, **_settings(supernet)))


@pytest.mark.slow
@pytest.mark.parametrize("name", supernet_names())
def test_every_heavy_registered_supernet_conforms(name):
    supernet = load_supernet(name)
    if not _heavy(supernet):
        pytest.skip(f"{name}: checked in the fast tier")
    _assert_conforms(supernet, check_supernet(supernet, **_settings(supernet)))


def test_the_tinylm_example_conforms():
    factory = "tinylm.supernet:make_supernet"
    report = check_supernet(factory, load=lambda path: load_supernet(factory, checkpoint=path))
    assert report == dict.fromkeys(CHECKS, "passed")


@pytest.mark.parametrize(
    "build",
    [
        lambda: MobileNetV3Supernet(randomize(ElasticMobileNetV3(TINY_CONFIG)), "tiny-mbv3", "random"),
        lambda: ResNetSupernet(randomize(ElasticResNet(SMALL_RESNET_CONFIG)), "small-resnet", "random"),
        lambda: ResNetSupernet(randomize(ElasticResNet(TINY_RESNET_CONFIG)), "tiny-resnet", "random"),
    ],
    ids=["tiny-mbv3", "small-resnet-ofa-stem-odd-sizes", "tiny-resnet"],
)
def test_random_weights_of_other_configs_conform(build):
    """Every weight and statistic random (slicing errors show), on layouts the registered ones lack."""
    torch.manual_seed(0)
    supernet = build()
    report = check_supernet(supernet, n_archs=5, seed=1)
    _assert_conforms(supernet, report)
    assert report["metrics"].startswith("skipped: top1: supernet") and "no task data" in report["metrics"]


# --- one template for a family folder -------------------------------------------------------------

#: The file roles every family folder has (docs/architecture.md): a new family is a copy of one.
FAMILY_FILES = ("__init__", "_config", "_shapes", "_network", "_supernet", "_embedded")
FAMILIES = sorted(
    info.name
    for info in pkgutil.iter_modules(nastools.supernets.__path__)
    if info.ispkg and not info.name.startswith("_")
)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_folder_has_the_same_file_roles(family):
    folder = Path(nastools.supernets.__file__).parent / family
    assert [name for name in FAMILY_FILES if not (folder / f"{name}.py").is_file()] == []


def test_family_configs_and_spaces_import_without_torch():
    """The family packages and their ``_config`` (the config and the space) do not import torch."""
    code = (
        "import importlib, sys\n"
        f"for family in {FAMILIES!r}:\n"
        "    importlib.import_module(f'nastools.supernets.{family}._config')\n"
        "from nastools.supernets.mobilenetv3 import MobileNetV3Config\n"
        "from nastools.supernets.resnet import ResNetConfig, arch_to_ofa_config\n"
        "resnet = ResNetConfig().space()\n"
        "arch_to_ofa_config(resnet.sample(1, rng=0)[0])\n"
        "print(MobileNetV3Config().space().n_var, resnet.n_var, 'torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["45", "29", "False"]


# --- the suite catches what it checks -------------------------------------------------------------


class SlicedMLP(Supernet):
    """An elastic perceptron sharing its weights by slicing, with one fault injected (or none).

    ``layers`` {1, 2} hidden layers of widths ``w_0`` and ``w_1`` (used only with two layers) in {4, 8}.
    """

    supernet_id = "sliced-mlp"
    checkpoint_hash = "test"
    metadata: dict = {}
    metrics = (Metric("score", "max"),)

    def __init__(self, fault=None, state=None, checkpoint_path=None):
        torch.manual_seed(0)
        self.model = nn.ModuleDict(
            {"first": nn.Linear(6, 8), "second": nn.Linear(8, 8), "head": nn.Linear(8, 3)}
        )
        if state is not None:
            self.model.load_state_dict(state)
        self.space = SearchSpace(
            {"layers": [1, 2], "w_0": [4, 8], "w_1": [4, 8]}, [Condition("w_1", "layers", (2,))]
        )
        self.fault = fault
        self.checkpoint_path = checkpoint_path

    def _layers(self, arch):
        """``(layer, outputs, inputs)`` of each layer of ``arch``'s sub-network."""
        hidden = [arch["w_0"], arch["w_1"]][: arch["layers"]]
        sizes = [6, *hidden, 3]
        names = ["first", "second"][: len(hidden)] + ["head"]
        return [(self.model[name], out, inp) for name, out, inp in zip(names, sizes[1:], sizes)]

    def subnet(self, arch):
        self.space.validate(arch)
        layers = []
        for full, out, inp in self._layers(arch):
            layer = nn.Linear(inp, out)
            if self.fault == "shared":
                layer.weight = nn.Parameter(full.weight[:out, :inp])
            else:
                layer.weight = nn.Parameter(full.weight[:out, :inp].detach().clone())
            layer.bias = nn.Parameter(full.bias[:out].detach().clone() + self._offset(arch))
            layers += [layer, nn.ReLU()]
        return nn.Sequential(*layers[:-1]).eval()

    def _offset(self, arch):
        """Zero; with the fault ``inactive``, one read from ``w_1`` even where it is inactive."""
        return 1e-3 * arch["w_1"] if self.fault == "inactive" else 0.0

    @torch.no_grad()
    def run_active(self, arch, x):
        layers = self._layers(arch)
        for index, (full, out, inp) in enumerate(layers):
            x = F.linear(x, full.weight[:out, :inp], full.bias[:out] + self._offset(arch))
            x = F.relu(x) if index < len(layers) - 1 else x
        return x + 1e-3 if self.fault == "run_active" else x

    def example_inputs(self, arch, batch_size):
        rows = batch_size + 1 if self.fault == "batch" else batch_size
        return (torch.randn(rows, 6, generator=torch.Generator().manual_seed(batch_size)),)

    def evaluate(self, arch, metric, subnet=None):
        self.metric(metric)
        return float("nan") if self.fault == "nan" else float(sum(out for _, out, _ in self._layers(arch)))

    def macs(self, arch, subnet=None):
        return sum(out * inp for _, out, inp in self._layers(arch)) + (1 if self.fault == "macs" else 0)

    def params(self, arch, subnet=None):
        return sum(out * inp + out for _, out, inp in self._layers(arch))

    def extremes(self, space=None):
        low, high = super().extremes(space)
        return (high, low) if self.fault == "extremes" else (low, high)

    def workload(self, subnet, arch, batch_size):
        if self.fault == "workload":
            return (lambda x: subnet(x.T)), self.example_inputs(arch, batch_size)
        return super().workload(subnet, arch, batch_size)

    def save_checkpoint(self, path):
        state = {name: tensor.clone() for name, tensor in self.model.state_dict().items()}
        if self.fault == "round_trip":
            state["head.bias"] += 1.0
        torch.save(state, path)


def _reader(path):
    return SlicedMLP(state=torch.load(path, weights_only=True), checkpoint_path=path)


def test_a_conforming_supernet_passes_every_check(tmp_path):
    report = check_supernet(SlicedMLP(checkpoint_path=tmp_path / "mlp.pt"), load=_reader)
    assert report == dict.fromkeys(CHECKS, "passed")


@pytest.mark.parametrize(
    "fault, check, numbers",
    [
        ("extremes", "extremes", "has 136 macs, more than the largest's 36"),
        ("batch", "example_inputs", "batch size 1, inputs' leading sizes [2]"),
        ("run_active", "subnet_equals_supernet", "max abs difference 0.001 "),
        ("inactive", "canonical_keys", "changing the inactive ['w_1'] changes the sub-network's outputs"),
        ("macs", "closed_form_counts", "(macs, params) are (37, 43), the counters give (36, 43)"),
        ("nan", "metrics", "evaluate(arch, 'score') gave nan"),
        ("workload", "workload", "fn(*args) raised RuntimeError"),
        ("shared", "standalone_copy", "tensors share storage with the supernet's 'model'"),
        ("round_trip", "checkpoint_round_trip", "the reloaded supernet's sub-network differs by 1"),
    ],
)
def test_each_check_fails_in_one_line_on_its_fault(fault, check, numbers, tmp_path):
    supernet = SlicedMLP(fault, checkpoint_path=tmp_path / "mlp.pt")
    with pytest.raises(AssertionError) as error:
        check_supernet(supernet, load=_reader)
    message = str(error.value)
    assert message.startswith(f"{check}: ") and numbers in message and "\n" not in message, message


def test_checks_that_do_not_apply_are_skipped_and_say_why():
    report = check_supernet(ToySupernet(), skip=["workload"])  # no run_active, no condition, no checkpoint
    assert report["subnet_equals_supernet"] == "skipped: the supernet has no run_active"
    assert report["canonical_keys"] == "skipped: the space has no conditional parameters"
    assert report["checkpoint_round_trip"].startswith("skipped: the supernet was not read from a checkpoint")
    assert report["workload"] == "skipped: asked"
    assert report["closed_form_counts"] == report["metrics"] == "passed"


@pytest.mark.parametrize(
    "settings, message",
    [
        (
            {"skip": ["subnet_equals"]},
            r"skip names no check: \['subnet_equals'\]; the checks are \['extremes'",
        ),
        ({"n_archs": 0}, "n_archs must be a positive integer, got 0"),
        ({"batch_sizes": (1, 0)}, r"batch_sizes must be positive integers, got \(1, 0\)"),
        ({"atol": 0}, "atol must be > 0, got 0"),
    ],
)
def test_bad_settings_are_one_line_errors(settings, message):
    with pytest.raises(ValueError, match=f"^{message}"):
        check_supernet(ToySupernet(), **settings)
