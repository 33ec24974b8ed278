"""The supernet registry: by name, registered, entry point, factory string or checkpoint path."""

import importlib.metadata

import pytest
import torch
from helpers import TINY_CONFIG, TINY_DATA, ToySupernet, toy_supernet

import nastools.supernet as registry
from nastools.supernet import (
    ENTRY_POINT_GROUP,
    default_supernet,
    file_hash,
    load_checkpoint,
    load_supernet,
    register_supernet,
    supernet_names,
    supernet_options,
)
from nastools.supernets._image import save_checkpoint
from nastools.supernets.mobilenetv3 import CHECKPOINT_KIND, ElasticMobileNetV3, MobileNetV3Supernet, embedded
from nastools.training import TrainingConfig

#: Every family folder's names, the folders in alphabetical order (gpt, hat, mobilenetv3, resnet).
BUILT_IN = [
    "gpt-s",
    "pydoc-gpt",
    "hat-wmt14-en-de",
    "numbers-hat",
    "digits-mbv3",
    "ofa-mbv3-w1.0",
    "ofa-mbv3-w1.2",
    "digits-resnet",
    "ofa-resnet50",
]


def one_line(info):
    message = str(info.value)
    assert message and "\n" not in message
    return message


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch):
    """Each test starts with nothing registered and no installed entry points."""
    monkeypatch.setattr(registry, "_registered", {})
    monkeypatch.setattr(registry.importlib_metadata, "entry_points", lambda group: [])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny MobileNetV3 checkpoint as the trainer writes it."""
    torch.manual_seed(0)
    net = ElasticMobileNetV3(TINY_CONFIG)
    path = tmp_path_factory.mktemp("checkpoints") / "tiny-mbv3.pt"
    save_checkpoint(path, CHECKPOINT_KIND, net, TINY_DATA, TrainingConfig(threads=1), {"loss": [1.0]})
    return path, net


def rewritten(path, tmp_path, change):
    payload = torch.load(path, weights_only=True)
    change(payload)
    out = tmp_path / "changed.pt"
    torch.save(payload, out)
    return out


def test_built_in_names_come_from_the_family_folders():
    assert supernet_names() == BUILT_IN
    assert default_supernet() == "digits-mbv3"
    assert set(registry._checkpoint_loaders()) >= {CHECKPOINT_KIND, "elastic-resnet"}


def test_load_by_name():
    supernet = load_supernet("ofa-mbv3-w1.0")
    assert isinstance(supernet, MobileNetV3Supernet) and supernet.supernet_id == "ofa-mbv3-w1.0"
    assert load_supernet("ofa-mbv3-w1.2", resolutions=(224,)).space.n_var == 45
    assert load_supernet(supernet) is supernet  # a loaded supernet is passed through


def test_options_are_listed_and_checked():
    assert supernet_options("ofa-mbv3-w1.0") == ["data_dir", "checkpoint", "tables", "resolutions"]
    assert supernet_options("digits-mbv3") == ["checkpoint"]
    assert supernet_options("nope") is None
    with pytest.raises(
        ValueError, match=r"'ofa-mbv3-w1.0' takes the options \[.*'data_dir'.*\]; got \['colour'\]"
    ) as info:
        load_supernet("ofa-mbv3-w1.0", colour="red")
    one_line(info)
    with pytest.raises(ValueError, match="cannot apply to an already loaded supernet"):
        load_supernet(ToySupernet(), widths=(2,))


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="unknown supernet 'resnet-9000'; use one of") as info:
        load_supernet("resnet-9000")
    message = one_line(info)
    assert all(name in message for name in BUILT_IN) and "package.module:factory" in message


def test_factory_string():
    supernet = load_supernet("helpers:toy_supernet", widths=(2, 3))
    assert isinstance(supernet, ToySupernet) and supernet.space.choices["width"] == (2, 3)
    assert supernet_options("helpers:toy_supernet") == ["widths"]
    with pytest.raises(ValueError, match=r"takes the options \['widths'\]; got \['depth'\]"):
        load_supernet("helpers:toy_supernet", depth=3)


@pytest.mark.parametrize(
    "spec, match",
    [
        (
            "no_such_package.models:make",
            r"cannot import module 'no_such_package\.models' \(ModuleNotFoundError",
        ),
        ("helpers:no_such_factory", "module 'helpers' has no callable 'no_such_factory'"),
        ("helpers:TOY_INPUTS", "module 'helpers' has no callable 'TOY_INPUTS'"),
        ("os:getcwd", "its factory returned str, not a nastools Supernet"),
        ("helpers:", "a factory string is 'package.module:factory'"),
    ],
)
def test_bad_factory_strings_are_one_line_errors(spec, match):
    with pytest.raises(ValueError, match=match) as info:
        load_supernet(spec)
    one_line(info)


def test_register_a_callable_or_a_string():
    made = []
    register_supernet("my-toy", lambda widths=(4,): made.append(widths) or ToySupernet(widths))
    register_supernet("my-toy-string", "helpers:toy_supernet")
    assert supernet_names() == [*BUILT_IN, "my-toy", "my-toy-string"]
    assert load_supernet("my-toy", widths=(5, 6)).space.choices["width"] == (5, 6) and made == [(5, 6)]
    assert isinstance(load_supernet("my-toy-string"), ToySupernet)
    with pytest.raises(ValueError, match="'my-toy' is taken; pass overwrite=True"):
        register_supernet("my-toy", toy_supernet)
    register_supernet("my-toy", toy_supernet, overwrite=True)
    assert load_supernet("my-toy").space.choices["width"] == (4, 8, 16)
    with pytest.raises(ValueError, match="'digits-mbv3' is taken"):
        register_supernet("digits-mbv3", toy_supernet)


@pytest.mark.parametrize("name", ["", "a:b", None, 3])
def test_register_refuses_bad_names(name):
    with pytest.raises(ValueError, match="a supernet name is a non-empty string without ':'"):
        register_supernet(name, toy_supernet)


def test_register_refuses_a_factory_that_is_neither_callable_nor_a_string():
    with pytest.raises(ValueError, match="must be callable or a 'package.module:factory' string"):
        register_supernet("bad", 42)


def test_registered_factory_returning_something_else_is_refused():
    register_supernet("not-a-supernet", lambda: "a string")
    with pytest.raises(
        ValueError, match="'not-a-supernet': its factory returned str, not a nastools Supernet"
    ):
        load_supernet("not-a-supernet")


def test_entry_points_of_installed_packages(monkeypatch):
    asked = []
    points = [
        importlib.metadata.EntryPoint(name="toy-ep", value="helpers:toy_supernet", group=ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(
        registry.importlib_metadata, "entry_points", lambda group: asked.append(group) or points
    )
    assert "toy-ep" in supernet_names() and asked[-1] == "nastools.supernets"
    supernet = load_supernet("toy-ep", widths=(7,))
    assert isinstance(supernet, ToySupernet) and supernet.space.choices["width"] == (7,)
    assert supernet_options("toy-ep") == ["widths"]


def test_checkpoint_path(checkpoint):
    path, net = checkpoint
    for given in (path, str(path)):
        supernet = load_supernet(given)
        assert isinstance(supernet, MobileNetV3Supernet) and supernet.supernet_id == "tiny-mbv3"
        assert supernet.checkpoint_hash == file_hash(path) and len(supernet.checkpoint_hash) == 16
        for key, value in net.state_dict().items():
            assert torch.equal(supernet.net.state_dict()[key], value), key
        assert supernet.task.config == TINY_DATA and supernet.metadata["log"] == {"loss": [1.0]}
    assert load_supernet(path, supernet_id="renamed").supernet_id == "renamed"
    assert load_checkpoint(path).supernet_id == "tiny-mbv3"
    with pytest.raises(
        ValueError, match=r"takes the options \['path', 'payload', 'supernet_id'\]; got \['colour'\]"
    ):
        load_supernet(path, colour="red")


def test_checkpoint_path_with_tilde(checkpoint, monkeypatch):
    path, _ = checkpoint
    monkeypatch.setenv("HOME", str(path.parent))
    assert load_supernet(f"~/{path.name}").checkpoint_hash == file_hash(path)


def test_checkpoint_kind_names_the_family(checkpoint, tmp_path):
    path, _ = checkpoint
    martian = rewritten(path, tmp_path, lambda p: p.update(kind="martian-net"))
    with pytest.raises(
        ValueError, match=r"holds a 'martian-net' supernet; the families here read \["
    ) as info:
        load_supernet(martian)
    assert CHECKPOINT_KIND in one_line(info)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda p: p.pop("data_config"), r"an incomplete checkpoint, without \['data_config'\]"),
        (lambda p: p["state_dict"].pop("classifier.linear.weight"), "the weights do not fit the network"),
        (lambda p: p["model_config"].update(n_classes=7), "the weights' shapes do not fit its config"),
        (lambda p: p["model_config"].update(colour="red"), "unreadable configs"),
    ],
)
def test_broken_checkpoints_are_one_line_errors(checkpoint, tmp_path, change, match):
    path, _ = checkpoint
    with pytest.raises(ValueError, match=match) as info:
        load_supernet(rewritten(path, tmp_path, change))
    one_line(info)


def test_missing_checkpoint_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"does not exist; train one \(python -m nastools.training"):
        load_supernet(tmp_path / "nope.pt")
    with pytest.raises(FileNotFoundError, match="is a folder; pass the path of a checkpoint file"):
        load_checkpoint(tmp_path)


def test_files_that_are_not_checkpoints_are_rejected(tmp_path):
    path = tmp_path / "bad.pt"
    path.write_bytes(b"not a checkpoint" * 10)
    with pytest.raises(ValueError, match="not a readable nastools supernet checkpoint") as info:
        load_supernet(path)
    one_line(info)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(ValueError, match="not a nastools supernet checkpoint .no 'nastools-supernet' header"):
        load_supernet(other)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(ValueError, match="not a readable nastools supernet checkpoint"):
        load_supernet(notes)  # an existing file is read as a checkpoint, whatever its suffix


def test_a_factory_missing_a_required_option_names_it():
    register_supernet("needs-widths", lambda widths: ToySupernet(widths))
    with pytest.raises(
        ValueError, match=r"'needs-widths' takes the options \['widths'\]; \['widths'\] must be given"
    ):
        load_supernet("needs-widths")
    assert load_supernet("needs-widths", widths=(3,)).space.choices["width"] == (3,)


def test_a_checkpoints_kind_chooses_its_reader(tmp_path, monkeypatch):
    loaders = {
        "toy": "helpers:toy_from_checkpoint",
        CHECKPOINT_KIND: registry._checkpoint_loaders()[CHECKPOINT_KIND],
    }
    monkeypatch.setattr(registry, "_checkpoint_loaders", lambda: loaders)
    path = tmp_path / "toy.pt"
    torch.save({"format": "nastools-supernet", "kind": "toy", "widths": [3, 5]}, path)
    supernet = load_supernet(path)
    assert isinstance(supernet, ToySupernet) and supernet.space.choices["width"] == (3, 5)
    with pytest.raises(ValueError, match="holds a ToySupernet, not a MobileNetV3 supernet"):
        embedded(checkpoint=path)  # digits-mbv3 reads only its own family's checkpoints


def test_the_embedded_factory_names_another_checkpoint_digits_mbv3(checkpoint):
    path, _ = checkpoint
    supernet = embedded(checkpoint=path)
    assert supernet.supernet_id == "digits-mbv3" and supernet.checkpoint_hash == file_hash(path)
