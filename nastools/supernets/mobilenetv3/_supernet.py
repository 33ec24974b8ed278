"""The MobileNetV3 supernets: the embedded ``digits-mbv3`` and OFA's ImageNet ``ofa-mbv3-w1.0/1.2``."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nastools.datasets import DataFile, Dataset, data_home, downloads_allowed, fetch, fetch_file, file_status
from nastools.hardware import Hardware, LookupTableHardware
from nastools.space import Arch
from nastools.supernet import file_hash
from nastools.supernets._image import TOP1_SURROGATE, ImageSupernet, read_checkpoint, shipped_checkpoint
from nastools.supernets.mobilenetv3._config import CHECKPOINT_KIND, MobileNetV3Config
from nastools.supernets.mobilenetv3._data import OFA_PREDICTOR_DATA
from nastools.supernets.mobilenetv3._network import ElasticMobileNetV3
from nastools.supernets.mobilenetv3._ofa_predictor import (
    OFA_DATA_ENV,
    PREDICTOR_RESOLUTIONS,
    OFAAccuracyPredictor,
    find_predictor_file,
    missing_predictor_message,
    ofa_features,
)
from nastools.supernets.mobilenetv3._tables import (
    KNOWN_TABLES,
    LatencyTable,
    missing_table_message,
    published_tables,
)

__all__ = ["CHECKPOINT_KIND", "OFA_RESOLUTIONS", "MobileNetV3Supernet", "embedded", "from_checkpoint", "ofa"]

#: ``r`` choices of the OFA supernets' space: OFA's tutorial search, one per resolution slot of its
#: accuracy predictor in 160-224 (it cannot tell 160 from 172, so finer steps would be free MACs).
OFA_RESOLUTIONS = PREDICTOR_RESOLUTIONS

#: A table given as a path, already read, or published: ``() -> path`` fetches it on first use.
TableLike = LatencyTable | str | Path | Callable[[], Path]


class _OFASurrogate:
    """OFA's accuracy predictor as a supernet's surrogate top-1, loaded now or on first use.

    On first use it is read from the data cache (downloaded there and verified first if absent), so
    that loading the supernet needs no file.
    """

    def __init__(
        self,
        net: ElasticMobileNetV3,
        predictor: OFAAccuracyPredictor | None = None,
        file: DataFile | None = None,
    ) -> None:
        self._net = net
        self._predictor = predictor
        self._file = file
        self._lock = threading.Lock()

    def load(self) -> OFAAccuracyPredictor:
        """The predictor (raises :class:`~nastools.datasets.FetchError` when it cannot be fetched)."""
        with self._lock:
            if self._predictor is None:
                self._predictor = OFAAccuracyPredictor.from_file(fetch_file(self._file))
            return self._predictor

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        predictor = self.load()
        return predictor.predict([{**arch, "r": self._net.resolution(arch)} for arch in archs])


class MobileNetV3Supernet(ImageSupernet):
    """An :class:`ElasticMobileNetV3` with its task, a surrogate top-1 or neither, and latency tables.

    Args:
        net: The elastic network.
        supernet_id: Stable name.
        checkpoint_hash: Identifies the weights and any surrogate.
        tables: ``{hardware key: LatencyTable, path, or () -> path}`` of per-layer latency look-up
            tables for this network (keys checked now, files fetched and read when first used).
        data_dir: Where the published tables were looked for (for messages).
        published: Whether OFA's published tables fit this network (the OFA supernets): a missing
            ``lut-note10`` then says where to get it, instead of that this supernet has no such table.
        **kwargs: See :class:`~nastools.supernets._image.ImageSupernet` (``task``, ``metadata``,
            ``surrogate``, ``missing_top1``).

    Example:
        >>> supernet = load_supernet("digits-mbv3")  # doctest: +SKIP
        >>> arch = supernet.space.sample(1, rng=0)[0]  # doctest: +SKIP
        >>> supernet.evaluate(arch, "top1"), supernet.macs(arch)  # doctest: +SKIP
        (93.4, 4523904)
    """

    def __init__(
        self,
        net: ElasticMobileNetV3,
        supernet_id: str,
        checkpoint_hash: str,
        *,
        tables: Mapping[str, TableLike] | None = None,
        data_dir: str | Path | None = None,
        published: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(net, supernet_id, checkpoint_hash, **kwargs)
        self._tables: dict[str, TableLike] = dict(tables or {})
        self._data_dir = data_dir
        self._published = published
        # built now, so that a bad key is an error when the supernet is made, not when it is measured
        self._hardware: dict[str, LookupTableHardware] = {
            key: LookupTableHardware(
                key,
                lambda archs, key=key: self._predict_latency(key, archs),
                description=KNOWN_TABLES[key].platform if key in KNOWN_TABLES else str(table),
                check=lambda key=key: self._table(key),
            )
            for key, table in self._tables.items()
        }

    def lookup_tables(self) -> dict[str, Hardware]:
        """``lut-*`` targets: the published tables found in ``data_dir`` and the ``tables`` given."""
        return dict(self._hardware)

    def _predict_latency(self, key: str, archs: Sequence[Arch]) -> list[float]:
        table = self._table(key)
        for arch in archs:  # the table sums entries; it does not check the arch
            self.space.validate(arch)
        return [table.predict(arch, self.net.config) for arch in archs]

    def _table(self, key: str) -> LatencyTable:
        """The table of ``key``, loaded and checked against this network on first use."""
        table = self._tables[key]
        if not isinstance(table, LatencyTable):
            if callable(table):  # a published table in the data cache, fetched there if absent
                table = table()
            table = LatencyTable.load(table, name=key)
            table.check(self.net.config)
            self._tables[key] = table
        return table

    def missing_table_message(self, key: str) -> str:
        """Where the look-up table ``key`` comes from and how to pass it ('' unless ``published``)."""
        return missing_table_message(key, self._data_dir) if self._published else ""

    def check_metric(self, metric: str) -> None:
        """As :meth:`ImageSupernet.check_metric`; an OFA supernet's predictor is fetched here on first use.

        Raises:
            FileNotFoundError: The predictor's file is missing and cannot be fetched (the message
                names its URL and where to put it).
        """
        super().check_metric(metric)
        if metric == "top1" and isinstance(self.surrogate, _OFASurrogate):
            self.surrogate.load()

    def predict_top1(self, archs: Sequence[Arch]) -> np.ndarray:
        """Surrogate top-1 (%) of many archs in one batched call (what :meth:`evaluate` returns).

        Raises:
            ValueError: The supernet measures top-1 (no surrogate), or an arch lies outside the space.
        """
        self.check_metric("top1")
        if self.surrogate is None:
            raise ValueError(f"supernet {self.supernet_id!r} measures top1 (no surrogate); use evaluate()")
        for arch in archs:
            self.space.validate(arch)
        return self.surrogate(archs)


def from_checkpoint(
    path: Path, payload: Mapping[str, Any], supernet_id: str | None = None
) -> MobileNetV3Supernet:
    """Read a checkpoint of this family (``kind == "elastic-mobilenetv3"``)."""
    net, task, metadata, name = read_checkpoint(
        path, payload, lambda config: ElasticMobileNetV3(MobileNetV3Config.from_dict(config)), supernet_id
    )
    return MobileNetV3Supernet(net, name, file_hash(path), task=task, metadata=metadata)


def embedded(checkpoint: str | Path | None = None) -> MobileNetV3Supernet:
    """The embedded ``digits-mbv3``: trained here on distorted digits, shipped as ``data/digits-mbv3.pt``.

    Args:
        checkpoint: Another checkpoint of the same recipe (``python -m nastools.training``).
    """
    from nastools.supernet import load_checkpoint

    path = Path(checkpoint).expanduser() if checkpoint is not None else shipped_checkpoint("digits-mbv3")
    supernet = load_checkpoint(path, supernet_id="digits-mbv3")
    if not isinstance(supernet, MobileNetV3Supernet):
        raise ValueError(
            f"{path} holds a {type(supernet).__name__}, not a MobileNetV3 supernet: load it with "
            "load_supernet(path) instead of as digits-mbv3"
        )
    return supernet


def ofa(
    width_mult: float = 1.0,
    *,
    data_dir: str | Path | None = None,
    checkpoint: str | Path | None = None,
    tables: Mapping[str, str | Path] | None = None,
    resolutions: Sequence[int] = OFA_RESOLUTIONS,
) -> MobileNetV3Supernet:
    """OFA's ImageNet MobileNetV3 (``ofa_mbv3_d234_e346_k357_w{width_mult}``) with surrogate top-1.

    MACs, parameters and latency are exact whatever the weights. ImageNet top-1 is not measured here
    (no ImageNet): it is the estimate of OFA's public accuracy predictor (metric kind
    ``prediction``, "surrogate top-1" in reports). Its file, ``acc_predictor.pth``, and the published
    latency tables (hardware ``lut-note10``, ``lut-i7-8700k``) are looked for, file by file, in
    ``data_dir`` (or its ``CompOFA/`` folder), then in ``$NASTOOLS_OFA_DATA``, then in the data cache
    (:func:`nastools.datasets.data_home`). Those the cache lacks are downloaded there, from their
    pinned public sources and checked against their SHA-256, on first USE (the first top-1, the first
    use of a table): loading downloads nothing, so an architecture-only use (MACs, parameters,
    measured latency) works offline, and a failed download is a one-line error at that first use
    naming the URL and the cache path. With downloads off (``$NASTOOLS_OFFLINE=1``) and nothing
    found, the supernet is architecture-only (checkpoint hash ``untrained``) and top-1 says where to
    get the file.

    The checkpoint hash names the predictor (``surrogate-<first 16 hex digits of its SHA-256>``), so
    surrogate values never mix with anything else in a store. For the cache it is the pinned
    SHA-256, known before the download and equal to that of any genuine copy: a store filled with
    ``data_dir=<a copy>`` and one filled from the cache share their rows.

    The predictor was trained on w1.2 sub-networks: for w1.0 it is a proxy (on DyNAS-T's 2,223
    measured w1.0 sub-networks it ranks with Kendall tau 0.88 and reads about 6 points high).

    Args:
        width_mult: 1.0 or 1.2 for OFA's published supernets.
        data_dir: A folder laid out like the public copy and the cache (``CompOFA/acc_predictor.pth``,
            ``CompOFA/latency_table@note10``, ``nsganetv2/i7-8700K_lut.yaml``); an error if it
            holds no predictor.
        checkpoint: OFA's checkpoint file, to load its weights (nothing here needs them).
        tables: More look-up tables: ``{"lut-<platform>": folder or file}``.
        resolutions: The space's ``r`` choices (a single value drops ``r`` from the space). Outside
            what the predictor encodes (112-239), top-1 is unavailable (an error with ``data_dir``).

    Raises:
        FileNotFoundError: ``checkpoint`` or ``data_dir`` names a missing file.

    Example:
        >>> supernet = ofa(1.2, data_dir="../shared/data")  # doctest: +SKIP
        >>> supernet.task_metric.kind, supernet.evaluate(supernet.extremes()[1], "top1")  # doctest: +SKIP
        ('prediction', 83.6)
    """
    config = MobileNetV3Config(width_mult=width_mult, resolutions=tuple(int(r) for r in resolutions))
    net = ElasticMobileNetV3(config)
    checkpoint_hash = "untrained"
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"OFA checkpoint {path} does not exist")
        net.load_ofa_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        checkpoint_hash = file_hash(path)
    env_dir = os.environ.get(OFA_DATA_ENV) or None
    looked_at = data_dir if data_dir is not None else env_dir
    roots = [Path(folder).expanduser() for folder in (data_dir, env_dir) if folder is not None]
    file = None
    if data_dir is not None:
        file = _predictor_in(roots[0])
        if file is None:
            raise FileNotFoundError(missing_predictor_message(data_dir))
    elif env_dir is not None:
        file = _predictor_in(roots[0])
    try:
        ofa_features([{**net.min_arch(), "r": r} for r in config.resolutions])  # the predictor encodes r?
        unencodable = None
    except ValueError as error:
        if data_dir is not None:
            raise
        unencodable = f"top1 of {f'ofa-mbv3-w{width_mult}'!r} is unavailable: {error}"
    metadata: dict[str, Any] = {"model_config": config.to_dict()}
    options: dict[str, Any] = {
        "tables": {**_published_tables(roots), **(tables or {})},
        "data_dir": looked_at,
        "published": True,
        "metadata": metadata,
        "top1": TOP1_SURROGATE,
    }
    surrogate = None
    if unencodable is not None:
        options["missing_top1"] = unencodable
    elif file is not None:
        predictor = OFAAccuracyPredictor.from_file(file)
        surrogate, predictor_hash, location = _OFASurrogate(net, predictor), predictor.file_hash, file
    elif _available(OFA_PREDICTOR_DATA):
        # the pinned hash: what the file will have once fetched (the download is checked against it)
        cached = OFA_PREDICTOR_DATA.files[0]
        surrogate, predictor_hash = _OFASurrogate(net, file=cached), cached.sha256[:16]
        location = data_home() / cached.path
    else:
        options["missing_top1"] = missing_predictor_message(looked_at)
    if surrogate is not None:
        surrogate_hash = f"surrogate-{predictor_hash}"
        checkpoint_hash = surrogate_hash if checkpoint is None else f"{checkpoint_hash}-{surrogate_hash}"
        metadata["top1_source"] = (
            "OFA's public ImageNet accuracy predictor (trained on w1.2 sub-networks; top-1 on OFA's "
            "10k-image hold-out split of the ImageNet training set)"
        )
        metadata["accuracy_predictor"] = str(location)
        options["surrogate"] = surrogate
    return MobileNetV3Supernet(net, f"ofa-mbv3-w{width_mult}", checkpoint_hash, **options)


def _predictor_in(root: Path) -> Path | None:
    """``acc_predictor.pth`` in ``root`` (a folder or the file) or in its ``CompOFA/`` folder."""
    return find_predictor_file(root) or find_predictor_file(root / "CompOFA")


def _available(dataset: Dataset) -> bool:
    """Whether the data cache holds ``dataset`` verified, or it can be downloaded there when used."""
    return downloads_allowed() or all(file_status(file) == "verified" for file in dataset.files)


def _published_tables(roots: Sequence[Path]) -> dict[str, TableLike]:
    """Each known table from the first of ``roots`` holding it, else from the data cache on first use."""
    found: dict[str, TableLike] = {}
    in_roots = [published_tables(root) for root in roots]
    for key, source in KNOWN_TABLES.items():
        path = next((tables[key] for tables in in_roots if key in tables), None)
        if path is not None:
            found[key] = path
        elif source.dataset is not None and _available(source.dataset):
            found[key] = lambda dataset=source.dataset, path=source.path: fetch(dataset) / path
    return found


def ofa_w10(
    *,
    data_dir: str | Path | None = None,
    checkpoint: str | Path | None = None,
    tables: Mapping[str, str | Path] | None = None,
    resolutions: Sequence[int] = OFA_RESOLUTIONS,
) -> MobileNetV3Supernet:
    """``ofa-mbv3-w1.0``: :func:`ofa` at width 1.0 (its options are named, so the registry can list them)."""
    return ofa(1.0, data_dir=data_dir, checkpoint=checkpoint, tables=tables, resolutions=resolutions)


def ofa_w12(
    *,
    data_dir: str | Path | None = None,
    checkpoint: str | Path | None = None,
    tables: Mapping[str, str | Path] | None = None,
    resolutions: Sequence[int] = OFA_RESOLUTIONS,
) -> MobileNetV3Supernet:
    """``ofa-mbv3-w1.2``: :func:`ofa` at width 1.2 (the width of OFA's predictor and Note10 table)."""
    return ofa(1.2, data_dir=data_dir, checkpoint=checkpoint, tables=tables, resolutions=resolutions)
