"""Latency look-up tables: per-layer latencies measured on a platform you cannot run on.

OFA and NSGANetV2 published per-layer latency tables for OFA MobileNetV3 sub-networks: a sub-network's
latency is the sum of its layers' entries (stem, every active block, final expansion, pooling, feature
mix, classifier). :class:`LatencyTable` reads both formats and predicts a latency from an arch and
the supernet's shape; hardware keys such as ``lut-note10`` name these platforms: the OFA supernets
offer the tables found in their ``data_dir``, ``$NASTOOLS_OFA_DATA`` or the data cache (fetched there
on first use, see :mod:`nastools.datasets`) as :class:`~nastools.hardware.LookupTableHardware`.

Formats (the key names a layer by its type and shapes, ``HxWxC``):

- OFA (``ofa/tutorial/latency_table.py``), one file per resolution ``<r>_lookup_table.yaml``:
  ``Conv``, ``expanded_conv-input:112x112x24-output:56x56x32-expand:144-kernel:5-stride:2-idskip:0-se:0-hs:0``
  (``expand`` is the hidden channel count), ``Conv_1``, ``AvgPool2D``, ``Conv_2``, ``Logits``; values
  ``{count, mean, std}`` in ms.
- NSGANetV2 (``utils.py``, ``look_up_latency``), one file for all resolutions: ``first_conv``,
  ``MBConv-input:...-expand:<ratio>-kernel:k-stride:s-idskip:i-se:s`` (``expand`` is the ratio, 1 for
  the first block), ``final_expand_layer`` (pooling included), ``feature_mix_layer``, ``classifier``;
  values ``{mean, var}`` in ms.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from nastools.datasets import Dataset, data_home, file_status
from nastools.supernets._elastic._widths import make_divisible
from nastools.supernets.mobilenetv3._config import MobileNetV3Config
from nastools.supernets.mobilenetv3._data import I7_8700K_DATA, NOTE10_DATA
from nastools.supernets.mobilenetv3._shapes import BlockShape, NetworkShape, network_shape

__all__ = ["KNOWN_TABLES", "LatencyTable", "TableSource", "published_tables"]


@dataclass(frozen=True)
class TableSource:
    """Where a published look-up table comes from (used in error messages).

    Attributes:
        platform: What was measured.
        files: What to pass (a folder or a file).
        url: Where to download it.
        path: Where it lies inside a data folder laid out like the public copy
            (``<data_dir>/CompOFA/latency_table@note10``), see :func:`published_tables`.
        dataset: Its pinned files, fetched into the data cache on first use (None: not fetchable).
    """

    platform: str
    files: str
    url: str
    path: str = ""
    dataset: Dataset | None = None


#: The public tables nastools knows by hardware key.
KNOWN_TABLES: dict[str, TableSource] = {
    "lut-note10": TableSource(
        platform="Samsung Galaxy Note10, OFA's per-layer table for the OFA MobileNetV3 w1.2 supernet "
        "(ofa-mbv3-w1.2), resolutions 160-224 step 4",
        files="a folder holding 160_lookup_table.yaml ... 224_lookup_table.yaml",
        path="CompOFA/latency_table@note10",
        url="https://github.com/han-cai/files/tree/master/ofa/note10 (also in "
        "github.com/gatech-sysml/CompOFA, NAS/checkpoints/latency_table@note10)",
        dataset=NOTE10_DATA,
    ),
    "lut-i7-8700k": TableSource(
        platform="Intel i7-8700K CPU, NSGANetV2's per-block table for OFA MobileNetV3 w1.0 and w1.2 "
        "(ofa-mbv3-w1.0, ofa-mbv3-w1.2), resolutions 96-256",
        files="the file i7-8700K_lut.yaml",
        path="nsganetv2/i7-8700K_lut.yaml",
        url="https://github.com/mikelzc1990/nsganetv2/blob/master/data/i7-8700K_lut.yaml",
        dataset=I7_8700K_DATA,
    ),
}

_OFA_FILE_RE = re.compile(r"^(\d+)_lookup_table\.yaml$")
_STEM_RE = re.compile(r"^(?:Conv|first_conv)-input:(\d+)x\d+x\d+-output:\d+x\d+x(\d+)$")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path) -> dict[str, float]:
    with open(path) as handle:
        raw = yaml.load(handle, Loader=_Loader)  # noqa: S506 - a safe loader
    if not isinstance(raw, dict) or not all(isinstance(v, dict) and "mean" in v for v in raw.values()):
        raise ValueError(f"{path} is not a latency look-up table (YAML mapping of layer key to {{mean: ms}})")
    return {str(key): float(value["mean"]) for key, value in raw.items()}


def _hw(size: int, channels: int) -> str:
    return f"{size}x{size}x{channels}"


def published_tables(data_dir: str | Path) -> dict[str, Path]:
    """The known tables found in ``data_dir``: hardware key to path.

    ``data_dir`` is laid out like the public copy (``CompOFA/latency_table@note10``,
    ``nsganetv2/i7-8700K_lut.yaml``) or is the folder holding the tables themselves; tables that are
    not there are left out, so that asking for their hardware later gives the error that says
    where to get them.

    Example:
        >>> sorted(published_tables("../shared/data"))  # doctest: +SKIP
        ['lut-i7-8700k', 'lut-note10']
    """
    root = Path(data_dir).expanduser()
    found = {}
    for key, source in KNOWN_TABLES.items():
        for path in (root / source.path, root / Path(source.path).name):
            if path.exists():
                found[key] = path
                break
    return found


def corrupt_cache_message(dataset: Dataset) -> str:
    """Say which cached file of ``dataset`` fails its SHA-256 and how to fetch it again ('' if none does).

    Example:
        >>> from nastools.supernets.mobilenetv3._data import NOTE10_DATA
        >>> corrupt_cache_message(NOTE10_DATA)  # doctest: +SKIP
        'the cached file /home/me/.cache/nastools/CompOFA/latency_table@note10/160_lookup_table.yaml ...'
    """
    for file in dataset.files:
        if file_status(file) == "corrupt":
            path = data_home() / file.path
            return (
                f"the cached file {path} fails its sha256 check (a damaged or changed copy): re-fetch it "
                f"with `nastools data fetch {dataset.name}` where downloads work, or download {file.url} "
                "to it"
            )
    return ""


def missing_table_message(key: str, looked_at: str | Path | None = None) -> str:
    """Explain which files the hardware ``key`` needs and where they come from."""
    source = KNOWN_TABLES.get(key)
    where = f"not found in {looked_at}; " if looked_at is not None else "no data_dir was given; "
    corrupt = corrupt_cache_message(source.dataset) if source is not None and source.dataset else ""
    if corrupt:
        found = f"not found in {looked_at}, and " if looked_at is not None else ""
        return f"hardware {key!r} is a latency look-up table ({source.platform}): {found}{corrupt}"
    if source is None:
        return (
            f"{where}hardware {key!r} is a latency look-up table nastools does not know: pass an OFA-format "
            "folder of <r>_lookup_table.yaml files or a NSGANetV2-format YAML file as "
            f"load_supernet(..., tables={{{key!r}: <path>}})"
        )
    fetch = (
        f"; or run `nastools data fetch {source.dataset.name}` where downloads work (it puts the files in "
        f"{data_home() / source.path})"
        if source.dataset is not None
        else ""
    )
    return (
        f"{where}hardware {key!r} is a latency look-up table ({source.platform}): pass "
        f"load_supernet(..., data_dir=<folder holding {source.path}>) or "
        f"tables={{{key!r}: <{source.files}>}}. "
        f"It comes from {source.url}{fetch}"
    )


class LatencyTable:
    """A per-layer latency look-up table for OFA MobileNetV3 sub-networks.

    Args:
        entries: Resolution to ``{layer key: ms}`` (OFA format, one table per resolution), or
            ``{None: {...}}`` for one table covering every resolution (NSGANetV2 format).
        name: A label for messages, e.g. ``"lut-note10"``.

    Attributes:
        style: ``"ofa"`` or ``"nsganetv2"`` (detected from the keys).
        resolutions: Input resolutions with a stem entry.
        stem_channels: Stem widths with an entry (16: OFA w1.0, 24: OFA w1.2).

    Example:
        >>> table = LatencyTable.load("latency_table@note10", name="lut-note10")  # doctest: +SKIP
        >>> supernet = load_supernet("ofa-mbv3-w1.2")  # doctest: +SKIP
        >>> table.predict(supernet.net.max_arch(), supernet.net.config)  # doctest: +SKIP
        92.4
    """

    def __init__(self, entries: Mapping[int | None, Mapping[str, float]], name: str = "") -> None:
        self.entries = {r: dict(table) for r, table in entries.items()}
        self.name = name or "latency table"
        keys = [key for table in self.entries.values() for key in table]
        if any(key.startswith("expanded_conv-") for key in keys):
            self.style = "ofa"
        elif any(key.startswith("MBConv-") for key in keys):
            self.style = "nsganetv2"
        else:
            raise ValueError(
                f"{self.name}: no block entries (keys starting 'expanded_conv-' or 'MBConv-'); "
                "not an OFA or NSGANetV2 latency table"
            )
        stems = [match for key in keys if (match := _STEM_RE.match(key))]
        self.resolutions = tuple(sorted({int(m[1]) for m in stems}))
        self.stem_channels = tuple(sorted({int(m[2]) for m in stems}))
        self._cache: dict = {}

    def __repr__(self) -> str:
        return (
            f"LatencyTable({self.name!r}, {self.style}, resolutions {list(self.resolutions)}, "
            f"stem widths {list(self.stem_channels)})"
        )

    @classmethod
    def from_folder(cls, folder: str | Path, name: str = "") -> LatencyTable:
        """Read an OFA-format folder of ``<r>_lookup_table.yaml`` files (one per resolution).

        Raises:
            FileNotFoundError: The folder or its files are missing (the message says where they come from).
        """
        folder = Path(folder).expanduser()
        files = sorted(p for p in folder.glob("*_lookup_table.yaml") if _OFA_FILE_RE.match(p.name))
        if not folder.is_dir() or not files:
            raise FileNotFoundError(
                missing_table_message(name, folder)
                if name
                else f"no <r>_lookup_table.yaml files in {folder}; see "
                "nastools.supernets.mobilenetv3.KNOWN_TABLES for sources"
            )
        entries: dict[int | None, dict[str, float]] = {}
        for path in files:
            resolution = int(_OFA_FILE_RE.match(path.name)[1])
            entries[resolution] = _read_yaml(path)
        return cls(entries, name=name or folder.name)

    @classmethod
    def from_file(cls, path: str | Path, name: str = "") -> LatencyTable:
        """Read one YAML table: NSGANetV2 format (all resolutions) or one OFA-format resolution.

        Raises:
            FileNotFoundError: The file is missing (the message says where it comes from).
            ValueError: The file is not a latency table.
        """
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                missing_table_message(name, path) if name else f"latency table {path} does not exist"
            )
        table = _read_yaml(path)
        match = _OFA_FILE_RE.match(path.name)
        if any(key.startswith("expanded_conv-") for key in table):
            stems = {int(m[1]) for key in table if (m := _STEM_RE.match(key))}
            if len(stems) != 1:
                raise ValueError(f"{path}: an OFA-format table needs exactly one 'Conv' stem entry")
            resolution = int(match[1]) if match else stems.pop()
            return cls({resolution: table}, name=name or path.stem)
        return cls({None: table}, name=name or path.stem)

    @classmethod
    def load(cls, path: str | Path, name: str = "") -> LatencyTable:
        """:meth:`from_folder` for a folder, else :meth:`from_file`.

        Example:
            >>> LatencyTable.load("i7-8700K_lut.yaml", name="lut-i7-8700k")  # doctest: +SKIP
            LatencyTable('lut-i7-8700k', nsganetv2, resolutions [96, ..., 256], stem widths [16, 24])
        """
        path = Path(path).expanduser()
        return cls.from_folder(path, name) if path.is_dir() else cls.from_file(path, name)

    def _block_key(self, b: BlockShape) -> str:
        shapes = f"input:{_hw(b.input_size, b.in_channels)}-output:{_hw(b.output_size, b.out_channels)}"
        common = f"kernel:{b.kernel_size}-stride:{b.stride}-idskip:{int(b.shortcut)}-se:{int(b.use_se)}"
        if self.style == "ofa":
            return f"expanded_conv-{shapes}-expand:{b.mid_channels}-{common}-hs:{int(b.act == 'h_swish')}"
        return f"MBConv-{shapes}-expand:{int(b.expand_ratio)}-{common}"

    def layer_keys(self, shape: NetworkShape) -> list[str]:
        """The table keys of every layer of a sub-network, in forward order."""
        fe, fm, n = shape.final_expand_channels, shape.feature_mix_channels, shape.n_classes
        f, last = shape.final_size, shape.last_channels
        stem_in = _hw(shape.resolution, shape.in_channels)
        stem_out = _hw(shape.stem_output_size, shape.stem_channels)
        if self.style == "ofa":
            return [
                f"Conv-input:{stem_in}-output:{stem_out}",
                *(self._block_key(block) for block in shape.blocks),
                f"Conv_1-input:{_hw(f, last)}-output:{_hw(f, fe)}",
                f"AvgPool2D-input:{_hw(f, fe)}-output:1x1x{fe}",
                f"Conv_2-input:1x1x{fe}-output:1x1x{fm}",
                f"Logits-input:1x1x{fm}-output:{n}",
            ]
        return [
            f"first_conv-input:{stem_in}-output:{stem_out}",
            *(self._block_key(block) for block in shape.blocks),
            f"final_expand_layer-input:{_hw(f, last)}-output:{_hw(f, fe)}",
            f"feature_mix_layer-input:1x1x{fe}-output:1x1x{fm}",
            f"classifier-input:{fm}-output:{n}",
        ]

    def _table(self, resolution: int) -> dict[str, float]:
        table = self.entries.get(None, self.entries.get(resolution))
        if table is None or resolution not in self.resolutions:
            raise ValueError(
                f"{self.name} has no entries for resolution {resolution}; it covers {list(self.resolutions)}"
            )
        return table

    def layer_latencies(self, shape: NetworkShape) -> list[tuple[str, float]]:
        """Each layer's key and entry (ms) for a sub-network, in forward order.

        Raises:
            ValueError: The table lacks the resolution or one of the layers.
        """
        table = self._table(shape.resolution)
        missing = [key for key in self.layer_keys(shape) if key not in table]
        if missing:
            raise ValueError(self._missing_message(missing, shape.stem_channels))
        return [(key, table[key]) for key in self.layer_keys(shape)]

    def predict(self, arch: Mapping[str, int], config: MobileNetV3Config | None = None) -> float:
        """Latency (ms) of ``arch``: the sum of its layers' entries (about 10 µs per arch).

        Args:
            arch: A sub-network of the OFA MobileNetV3 space (``r`` defaults to the config's first
                resolution). Validate it against the supernet's space first; this does not.
            config: The supernet's shape (``supernet.net.config``); by default OFA's MobileNetV3 at
                the one width this table covers (an error if it covers several).

        Raises:
            ValueError: The table lacks the resolution or a layer (e.g. another width).
        """
        config = config if config is not None else self._default_config()
        resolution = int(arch.get("r", config.resolutions[0]))
        fixed, per_block = self._tabulate(config, resolution)
        total = fixed
        for depth_key, position, kernel_key, expand_key, values in per_block:
            if position < arch[depth_key]:
                total += values[(arch[kernel_key], arch[expand_key])]
        if math.isnan(total):  # some layer of this arch is missing
            self.layer_latencies(network_shape(config, arch))  # raises naming the missing layers
        return total

    def _tabulate(self, config: MobileNetV3Config, resolution: int) -> tuple[float, tuple]:
        """Latency of the fixed layers, and per elastic block and (kernel, expand) its entry (NaN: absent)."""
        cache_key = (config, resolution)
        if cache_key in self._cache:
            return self._cache[cache_key]
        table = self._table(resolution)
        max_depth = max(config.depths)
        n_blocks = config.n_stages * max_depth
        reference = {f"d_{s}": max_depth for s in range(config.n_stages)}
        reference |= {f"ks_{i}": config.kernel_sizes[0] for i in range(n_blocks)}
        reference |= {f"e_{i}": config.expand_ratios[0] for i in range(n_blocks)} | {"r": resolution}
        shape = network_shape(config, reference)
        keys = self.layer_keys(shape)
        nan = float("nan")
        fixed = sum(table.get(key, nan) for key in keys[:2] + keys[2 + n_blocks :])
        per_block = []
        for index, block in enumerate(shape.blocks[1:]):
            values = {}
            for kernel in config.kernel_sizes:
                for expand in config.expand_ratios:
                    variant = dataclasses.replace(
                        block,
                        kernel_size=kernel,
                        expand_ratio=expand,
                        mid_channels=make_divisible(round(block.in_channels * expand)),
                    )
                    values[(kernel, expand)] = table.get(self._block_key(variant), nan)
            stage, position = divmod(index, max_depth)
            per_block.append((f"d_{stage}", position, f"ks_{index}", f"e_{index}", values))
        self._cache[cache_key] = (fixed, tuple(per_block))
        return self._cache[cache_key]

    def _default_config(self) -> MobileNetV3Config:
        widths = {16: 1.0, 24: 1.2}
        known = [widths[c] for c in self.stem_channels if c in widths]
        if len(known) != 1:
            raise ValueError(
                f"{self.name} covers stem widths {list(self.stem_channels)}: pass the supernet's config "
                "(predict(arch, supernet.net.config)) to say which network"
            )
        return MobileNetV3Config(width_mult=known[0])

    def missing_keys(self, config: MobileNetV3Config) -> list[str]:
        """Entries that some sub-network of ``config`` (any arch, every resolution of it) would need.

        Empty when the table covers the whole space; :meth:`check` raises otherwise.
        """
        missing: dict[str, None] = {}
        max_depth = max(config.depths)
        n_blocks = config.n_stages * max_depth
        for resolution in config.resolutions:
            table = self.entries.get(None, self.entries.get(resolution, {}))
            for kernel in config.kernel_sizes:
                for expand in config.expand_ratios:
                    arch = {f"d_{s}": max_depth for s in range(config.n_stages)}
                    arch |= {f"ks_{i}": kernel for i in range(n_blocks)}
                    arch |= {f"e_{i}": expand for i in range(n_blocks)} | {"r": resolution}
                    for key in self.layer_keys(network_shape(config, arch)):
                        if key not in table:
                            missing[key] = None
        return list(missing)

    def check(self, config: MobileNetV3Config) -> None:
        """Raise ``ValueError`` unless every sub-network of ``config`` has all its layers in the table."""
        resolutions = [r for r in config.resolutions if r not in self.resolutions]
        if resolutions:
            raise ValueError(
                f"{self.name} has no entries for resolution(s) {resolutions}; it covers "
                f"{list(self.resolutions)}: restrict the space's r to those"
            )
        missing = self.missing_keys(config)
        if missing:
            stem = make_divisible(config.base_stage_widths[0] * config.width_mult)
            raise ValueError(self._missing_message(missing, stem))

    def _missing_message(self, missing: list[str], stem_channels: int) -> str:
        hint = ""
        if stem_channels not in self.stem_channels:
            hint = (
                f" The network's stem has {stem_channels} channels and the table covers stem widths "
                f"{list(self.stem_channels)} (OFA w1.0: 16, w1.2: 24): it is for another width."
            )
        return (
            f"{self.name} lacks {len(missing)} layer entr{'y' if len(missing) == 1 else 'ies'} this "
            f"network needs, e.g. {missing[0]!r}.{hint}"
        )
