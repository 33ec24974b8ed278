"""OFA's public ImageNet accuracy predictor: a surrogate top-1 for the OFA MobileNetV3 space.

The OFA authors published, with their tutorial (``ofa/tutorial/accuracy_predictor.py`` in
mit-han-lab/once-for-all), a small MLP that predicts a sub-network's ImageNet top-1 from a 128-d
one-hot encoding of its arch: per block 3 kernel slots (20 blocks, 60 slots), then 3 expand slots
(60), then 8 resolution slots indexed by ``(r - 112) // 16``; blocks beyond their stage's depth are all
zero. It was trained on sub-networks of ``ofa_mbv3_d234_e346_k357_w1.2`` evaluated on OFA's 10,000-image
hold-out split of the ImageNet training set (not the official validation set), so its values sit a few
points above official top-1 but rank sub-networks well. This module reimplements the model and the
encoding; the weights stay in the user's file (``acc_predictor.pth``, 1.5 MB), fetched into the data
cache on first use (:mod:`nastools.datasets`) when no folder holding it is given.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nastools.datasets import data_home
from nastools.supernets.mobilenetv3._data import OFA_PREDICTOR_DATA
from nastools.supernets.mobilenetv3._tables import corrupt_cache_message

__all__ = [
    "OFA_DATA_ENV",
    "OFA_PREDICTOR_FILE",
    "OFA_PREDICTOR_URL",
    "PREDICTOR_RESOLUTIONS",
    "OFAAccuracyPredictor",
    "arch_from_ofa_config",
    "arch_to_ofa_config",
    "find_predictor_file",
    "ofa_features",
]

#: File name of OFA's accuracy-predictor weights.
OFA_PREDICTOR_FILE = "acc_predictor.pth"
#: Where the OFA authors publish it (also in github.com/gatech-sysml/CompOFA, NAS/checkpoints/).
OFA_PREDICTOR_URL = "https://hanlab.mit.edu/files/OnceForAll/tutorial/acc_predictor.pth"
#: Environment variable naming a folder (or the file) holding ``acc_predictor.pth``.
OFA_DATA_ENV = "NASTOOLS_OFA_DATA"
#: Resolutions of OFA's tutorial search, one per resolution slot the predictor distinguishes in 160-224.
PREDICTOR_RESOLUTIONS = (160, 176, 192, 208, 224)

_KERNELS = (3, 5, 7)
_EXPANDS = (3, 4, 6)
_DEPTHS = (2, 3, 4)
_N_STAGES, _MAX_DEPTH = 5, 4
_N_BLOCKS = _N_STAGES * _MAX_DEPTH
_R_MIN, _R_STEP, _R_SLOTS = 112, 16, 8
_N_FEATURES = 2 * 3 * _N_BLOCKS + _R_SLOTS
_KEYS = (
    [f"d_{s}" for s in range(_N_STAGES)]
    + [f"ks_{i}" for i in range(_N_BLOCKS)]
    + [f"e_{i}" for i in range(_N_BLOCKS)]
)


def arch_from_ofa_config(config: Mapping | str) -> dict[str, int]:
    """Convert OFA's arch dict (``{'ks': [...], 'e': [...], 'd': [...], 'r': [224]}``) to a nastools arch.

    Args:
        config: The dict, or its Python-literal string as DyNAS-T and OFA write it.

    Returns:
        ``{"d_0": ..., "ks_0": ..., "e_0": ..., "r": ...}`` (``r`` only when the config has one).
        Entries of blocks beyond their stage's depth are kept; ``space.canonical`` resets them.

    Example:
        >>> arch = arch_from_ofa_config({"ks": [3] * 20, "e": [6] * 20, "d": [2] * 5, "r": [224]})
        >>> arch["d_0"], arch["e_19"], arch["r"]
        (2, 6, 224)
    """
    if isinstance(config, str):
        config = ast.literal_eval(config)
    arch = {f"d_{s}": int(d) for s, d in enumerate(config["d"])}
    arch |= {f"ks_{i}": int(k) for i, k in enumerate(config["ks"])}
    arch |= {f"e_{i}": int(e) for i, e in enumerate(config["e"])}
    r = config.get("r")
    if r is not None:
        arch["r"] = int(r[0] if isinstance(r, (list, tuple)) else r)
    return arch


def arch_to_ofa_config(arch: Mapping[str, int], resolution: int | None = None) -> dict:
    """Inverse of :func:`arch_from_ofa_config`: OFA's ``{'wid', 'ks', 'e', 'd', 'r'}`` dict.

    Args:
        arch: A nastools arch of the OFA MobileNetV3 space.
        resolution: Used when ``arch`` has no ``r`` (default 224).

    Example:
        >>> arch_to_ofa_config({"d_0": 2, "ks_0": 3, "e_0": 4, "r": 192})["r"]
        [192]
    """
    n_stages = sum(1 for k in arch if k.startswith("d_"))
    n_blocks = sum(1 for k in arch if k.startswith("ks_"))
    r = int(arch.get("r", 224 if resolution is None else resolution))
    return {
        "wid": None,
        "ks": [int(arch[f"ks_{i}"]) for i in range(n_blocks)],
        "e": [int(arch[f"e_{i}"]) for i in range(n_blocks)],
        "d": [int(arch[f"d_{s}"]) for s in range(n_stages)],
        "r": [r],
    }


def _choice_index(values: np.ndarray, choices: tuple[int, ...], names: Sequence[str]) -> np.ndarray:
    index = np.searchsorted(choices, values)
    bad = (index >= len(choices)) | (np.asarray(choices)[np.minimum(index, len(choices) - 1)] != values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"parameter {names[col]!r} has value {int(values[row, col])} in arch {row}, "
            f"OFA's accuracy predictor knows {list(choices)}"
        )
    return index


def ofa_features(archs: Mapping[str, int] | Sequence[Mapping[str, int]]) -> np.ndarray:
    """OFA's 128-d one-hot arch encoding (``AccuracyPredictor.spec2feats``), vectorised.

    Args:
        archs: One arch or several of the OFA MobileNetV3 space (``d_0..d_4``, ``ks_0..ks_19``,
            ``e_0..e_19``, optional ``r``, default 224).

    Returns:
        Float32 array ``(n, 128)``: 60 kernel slots (3 per block), 60 expand slots, 8 resolution
        slots (``(r - 112) // 16``); blocks beyond their stage's depth are all zero.

    Raises:
        ValueError: For a missing parameter, a value outside OFA's choices, or ``r`` outside 112-239.

    Example:
        >>> arch = {f"d_{s}": 2 for s in range(5)} | {f"ks_{i}": 3 for i in range(20)}
        >>> arch |= {f"e_{i}": 3 for i in range(20)} | {"r": 224}
        >>> ofa_features(arch).sum(), ofa_features(arch)[0, -1]
        (np.float32(21.0), np.float32(1.0))
    """
    rows = [archs] if isinstance(archs, Mapping) else list(archs)
    try:
        values = np.array([[a[k] for k in _KEYS] + [a.get("r", 224)] for a in rows], dtype=np.int64)
    except KeyError as error:
        raise ValueError(f"arch lacks parameter {error.args[0]!r} of the OFA MobileNetV3 space") from error
    values = values.reshape(len(rows), len(_KEYS) + 1)
    _choice_index(values[:, :_N_STAGES], _DEPTHS, _KEYS[:_N_STAGES])  # validates the depths
    ks_index = _choice_index(values[:, _N_STAGES : _N_STAGES + _N_BLOCKS], _KERNELS, _KEYS[_N_STAGES:])
    e_index = _choice_index(values[:, _N_STAGES + _N_BLOCKS : -1], _EXPANDS, _KEYS[_N_STAGES + _N_BLOCKS :])
    r = values[:, -1]
    if ((r < _R_MIN) | (r >= _R_MIN + _R_STEP * _R_SLOTS)).any():
        bad = int(r[(r < _R_MIN) | (r >= _R_MIN + _R_STEP * _R_SLOTS)][0])
        raise ValueError(
            f"resolution r={bad} is outside what OFA's accuracy predictor encodes "
            f"({_R_MIN}-{_R_MIN + _R_STEP * _R_SLOTS - 1}); use one of {list(PREDICTOR_RESOLUTIONS)}"
        )
    depth_per_block = np.repeat(values[:, :_N_STAGES], _MAX_DEPTH, axis=1)
    active = (np.arange(_N_BLOCKS) % _MAX_DEPTH)[None, :] < depth_per_block
    n = len(rows)
    features = np.zeros((n, _N_FEATURES), dtype=np.float32)
    row_index = np.arange(n)[:, None]
    block_offset = 3 * np.arange(_N_BLOCKS)[None, :]
    features[row_index, block_offset + ks_index] = active
    features[row_index, 3 * _N_BLOCKS + block_offset + e_index] = active
    features[np.arange(n), 6 * _N_BLOCKS + (r - _R_MIN) // _R_STEP] = 1.0
    return features


def find_predictor_file(ofa_data: str | Path | None) -> Path | None:
    """The ``acc_predictor.pth`` that ``ofa_data`` names: the file itself or a folder holding it.

    Returns None when ``ofa_data`` is None or names nothing that exists.
    """
    if ofa_data is None:
        return None
    path = Path(ofa_data).expanduser()
    if path.is_dir():
        path = path / OFA_PREDICTOR_FILE
    return path if path.is_file() else None


def missing_predictor_message(looked_at: str | Path | None) -> str:
    """Explain where ``acc_predictor.pth`` goes and where it comes from, or that its cached copy is bad."""
    corrupt = corrupt_cache_message(OFA_PREDICTOR_DATA)
    if corrupt:
        found = f"it is not in {Path(looked_at).expanduser()}, and " if looked_at is not None else ""
        return (
            f"top1 of the OFA MobileNetV3 supernets is a surrogate from OFA's public accuracy predictor, "
            f"{OFA_PREDICTOR_FILE}: {found}{corrupt}"
        )
    where = (
        f"it is not in {Path(looked_at).expanduser()} (nor in its CompOFA/ folder)"
        if looked_at is not None
        else f"no location was given (data_dir=... or ${OFA_DATA_ENV})"
    )
    cached = data_home() / OFA_PREDICTOR_DATA.files[0].path
    return (
        f"top1 of the OFA MobileNetV3 supernets is a surrogate from OFA's public accuracy predictor, "
        f"{OFA_PREDICTOR_FILE}, and {where}. Download it from {OFA_PREDICTOR_URL} (also in "
        "github.com/gatech-sysml/CompOFA, NAS/checkpoints/acc_predictor.pth), put it in a folder and pass "
        f"load_supernet('ofa-mbv3-w1.2', data_dir='<folder>') or set ${OFA_DATA_ENV}=<folder>; or run "
        f"`nastools data fetch {OFA_PREDICTOR_DATA.name}` where downloads work (it puts the file at "
        f"{cached}, where the supernets find it)"
    )


class OFAAccuracyPredictor(nn.Module):
    """OFA's accuracy predictor: ``Linear(128, 400)``, 3 ReLU hidden layers of 400, ``Linear(400, 1)``.

    The state dict's keys are those of OFA's ``nn.Sequential`` (``0.weight`` … ``6.bias``), so OFA's
    ``acc_predictor.pth`` loads directly. The output is the top-1 *fraction* on OFA's 10k-image hold-out;
    :meth:`predict` returns percent.

    Attributes:
        file_hash: First 16 hex digits of the weights file's SHA-256 (None when not loaded from a file).

    Example:
        >>> predictor = OFAAccuracyPredictor.from_file("acc_predictor.pth")  # doctest: +SKIP
        >>> space = load_supernet("ofa-mbv3-w1.2").space  # doctest: +SKIP
        >>> predictor.predict(space.sample(3, rng=0))  # doctest: +SKIP
        array([81.9, 79.3, 80.6])
    """

    def __init__(self, hidden_size: int = 400, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(_N_FEATURES, hidden_size), nn.ReLU()]
        for _ in range(n_layers - 1):
            layers += [nn.Linear(hidden_size, hidden_size), nn.ReLU()]
        layers.append(nn.Linear(hidden_size, 1))
        self.layers = nn.Sequential(*layers)
        self.file_hash: str | None = None
        self.eval()

    @classmethod
    def from_file(cls, path: str | Path) -> OFAAccuracyPredictor:
        """Load OFA's ``acc_predictor.pth`` (a plain state dict; read with ``weights_only=True``).

        Args:
            path: The file, or a folder holding ``acc_predictor.pth``.

        Raises:
            FileNotFoundError: The file is absent (the message says where it comes from).
            ValueError: The file is not OFA's predictor state dict.
        """
        file = find_predictor_file(path)
        if file is None:
            raise FileNotFoundError(missing_predictor_message(path))
        data = file.read_bytes()
        try:
            state_dict = torch.load(file, map_location="cpu", weights_only=True)
            predictor = cls()
            predictor.layers.load_state_dict(state_dict)
        except Exception as error:  # noqa: BLE001 - any failure means an unusable file
            raise ValueError(
                f"{file} is not OFA's accuracy-predictor state dict ({type(error).__name__}: "
                f"{str(error).splitlines()[0][:160] if str(error) else 'no detail'}); "
                f"download it again from {OFA_PREDICTOR_URL}"
            ) from error
        predictor.file_hash = hashlib.sha256(data).hexdigest()[:16]
        return predictor

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Predicted top-1 fraction, shape ``(n,)``, from :func:`ofa_features` rows."""
        return self.layers(features).squeeze(-1)

    @torch.inference_mode()
    def predict(self, archs: Mapping[str, int] | Sequence[Mapping[str, int]]) -> np.ndarray:
        """Predicted ImageNet top-1 in percent of each arch (one batched forward pass).

        Args:
            archs: One arch or several (``r`` defaults to 224).

        Returns:
            Float array ``(n,)``.
        """
        features = torch.from_numpy(ofa_features(archs))
        return 100.0 * self(features).double().numpy()
