"""Checkpoints that would load and score wrongly are one-line errors at load (copies in tmp_path only).

A newer format, a non-finite weight or a damaged record (its zip CRC-32 wrong: ``torch.load`` reads
such a file without a word) each stop the load; the shipped ``data/*.pt`` load unchanged, byte for
byte (their hash is their identity in every store).
"""

import shutil
import struct
import zipfile
from pathlib import Path

import pytest
import torch

from nastools.supernet import CHECKPOINT_VERSION, file_hash, load_checkpoint, load_supernet
from nastools.supernets._image import shipped_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = shipped_checkpoint("digits-mbv3")
TINYLM = ROOT / "examples" / "tinylm" / "tinylm.pt"


def _payload(path=SHIPPED):
    return torch.load(path, map_location="cpu", weights_only=True)


def _one_line(info) -> str:
    message = str(info.value)
    assert "\n" not in message, message
    return message


def _flip_a_byte_of_a_tensor(source: Path, copy: Path) -> str:
    """Copy ``source`` with one byte of its first tensor record inverted; the record's name."""
    shutil.copy(source, copy)
    with zipfile.ZipFile(copy) as archive:
        record = next(i for i in archive.infolist() if "/data/" in i.filename and i.file_size > 16)
    data = bytearray(copy.read_bytes())
    name_length, extra_length = struct.unpack(
        "<HH", data[record.header_offset + 26 : record.header_offset + 30]
    )
    start = record.header_offset + 30 + name_length + extra_length  # the record's stored bytes
    data[start + record.file_size // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    return record.filename


def test_a_newer_format_version_is_refused(tmp_path):
    payload = _payload()
    payload["version"] = CHECKPOINT_VERSION + 1
    path = tmp_path / "newer.pt"
    torch.save(payload, path)
    with pytest.raises(ValueError) as info:
        load_supernet(path)
    message = _one_line(info)
    assert (
        f"version-{CHECKPOINT_VERSION + 1} nastools checkpoint" in message and "upgrade nastools" in message
    )


def test_a_checkpoint_without_a_version_is_version_1(tmp_path):
    payload = _payload()
    del payload["version"]
    path = tmp_path / "unversioned.pt"
    torch.save(payload, path)
    assert load_checkpoint(path, supernet_id="old").space.size > 1


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_non_finite_weight_is_refused_naming_the_tensor(tmp_path, value):
    payload = _payload()
    name = next(k for k, v in payload["state_dict"].items() if v.is_floating_point() and v.numel() > 1)
    payload["state_dict"][name] = payload["state_dict"][name].clone()
    payload["state_dict"][name].view(-1)[1] = value
    path = tmp_path / "diverged.pt"
    torch.save(payload, path)
    with pytest.raises(ValueError) as info:
        load_supernet(path)
    assert f"weight {name!r} has 1 non-finite value(s)" in _one_line(info) and str(path) in str(info.value)


def test_a_damaged_record_is_refused(tmp_path):
    path = tmp_path / "damaged.pt"
    record = _flip_a_byte_of_a_tensor(SHIPPED, path)
    with pytest.raises(ValueError) as info:
        load_supernet(path)
    message = _one_line(info)
    assert f"{path} is damaged" in message and record in message and "copy or download" in message


def test_the_shipped_checkpoints_load_unchanged():
    for name in ("digits-mbv3", "digits-resnet"):
        path = shipped_checkpoint(name)
        before = path.read_bytes()
        assert load_supernet(name).checkpoint_hash == file_hash(path)
        assert path.read_bytes() == before
        assert _payload(path)["version"] == CHECKPOINT_VERSION


@pytest.fixture
def tinylm(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    from tinylm.supernet import make_supernet

    return make_supernet


def test_the_tinylm_example_refuses_a_damaged_or_diverged_checkpoint(tinylm, tmp_path):
    damaged = tmp_path / "damaged.pt"
    record = _flip_a_byte_of_a_tensor(TINYLM, damaged)
    with pytest.raises(ValueError, match="is damaged") as info:
        tinylm(damaged)
    assert record in _one_line(info)
    payload = _payload(TINYLM)
    name = next(iter(payload["state_dict"]))
    payload["state_dict"][name] = payload["state_dict"][name].clone().fill_(float("nan"))
    diverged = tmp_path / "diverged.pt"
    torch.save(payload, diverged)
    with pytest.raises(ValueError) as info:
        tinylm(diverged)
    assert f"weight {name!r}" in _one_line(info)
    payload = _payload(TINYLM) | {"version": 2}
    newer = tmp_path / "newer.pt"
    torch.save(payload, newer)
    with pytest.raises(ValueError, match="version 2"):
        tinylm(newer)
