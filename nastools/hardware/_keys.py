"""Measured hardware configurations: pure descriptions, keyed ``cpu-t1-b1``, ``cuda-b64``.

Parsing a key or building a :class:`HardwareConfig` never asks this machine anything (a driver names
configs its workers own); :meth:`HardwareConfig.validate` does, before measuring.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from nastools.hardware._base import LATENCY_MS, Hardware, LatencyMeasurement, Measurement, _positive_int
from nastools.hardware._host import host_id
from nastools.hardware._measurers import MEASURERS
from nastools.hardware._timing import Workload, prepared

if TYPE_CHECKING:
    from nastools.supernet import Supernet

_KEY_FORMAT = "'cpu-t<threads>-b<batch>', 'cuda[:<index>]-b<batch>' or 'cuda[:<index>]-t<threads>-b<batch>'"
_KEY_RE = re.compile(r"(?P<device>cpu|cuda(?::\d+)?)(?:-t(?P<threads>\d+))?-b(?P<batch>\d+)")
_DEVICE_RE = re.compile(r"cpu|cuda(:\d+)?")


@dataclass(frozen=True)
class HardwareConfig(Hardware):
    """One measured hardware target: the device, the CPU threads torch may use, and the batch size.

    The key is ``<device>-t<threads>-b<batch>``. On CUDA targets the thread count only affects
    host-side work, so it is left out of the key when it is 1 (``cuda-b64``, ``cuda:1-b64``) and
    written otherwise (``cuda-t4-b64``); CPU keys always carry it (``cpu-t1-b1``). Keys round-trip
    exactly through :meth:`from_key`.

    Construction checks everything except whether a CUDA GPU is present, so a CUDA target can be
    parsed and stored on a CPU-only machine; :meth:`validate` checks that too.

    It measures every metric of :data:`~nastools.hardware.MEASURERS` (latency, peak memory, energy
    where a counter is readable) on what the supernet's :meth:`~nastools.supernet.Supernet.workload`
    gives for a batch of ``batch_size``.

    Attributes:
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        threads: Intra-op CPU threads (``torch.set_num_threads``) used while measuring.
        batch_size: Samples per forward pass.

    Example:
        >>> hw = HardwareConfig(threads=1, batch_size=64)
        >>> hw.key
        'cpu-t1-b64'
        >>> HardwareConfig.from_key("cpu-t1-b64") == hw
        True
    """

    device: str = "cpu"
    threads: int = 1
    batch_size: int = 1

    #: Everything with a measurer (energy only where :meth:`check_metric` finds a counter).
    metrics = tuple(MEASURERS)

    def __post_init__(self) -> None:
        """Check the configuration, except for the presence of a CUDA GPU."""
        object.__setattr__(self, "threads", _positive_int("threads", self.threads))
        object.__setattr__(self, "batch_size", _positive_int("batch_size", self.batch_size))
        self._check(require_cuda=False)

    @property
    def is_cuda(self) -> bool:
        """Whether the target is a CUDA device."""
        return self.device.startswith("cuda")

    @property
    def key(self) -> str:
        """Stable string naming this configuration, e.g. ``cpu-t2-b64`` or ``cuda-b64``."""
        if self.is_cuda and self.threads == 1:
            return f"{self.device}-b{self.batch_size}"
        return f"{self.device}-t{self.threads}-b{self.batch_size}"

    def host(self) -> str:
        """This machine (:func:`~nastools.hardware.host_id`): its measurements are valid here only."""
        return host_id(self.device)

    @classmethod
    def from_key(cls, key: str) -> HardwareConfig:
        """Parse a key written by :attr:`key` back into a configuration.

        Raises:
            ValueError: If the key is malformed, not written as :attr:`key` writes it (``cpu-t01-b1``,
                ``cuda-t1-b64``), or names an invalid configuration.
        """
        if isinstance(key, str) and key.startswith("lut-"):
            raise ValueError(
                f"hardware key {key!r} is a look-up-table target, not a measured one: its table comes "
                "from the supernet (resolve_hardware(key, supernet))"
            )
        match = _KEY_RE.fullmatch(key) if isinstance(key, str) else None
        if match is None or (match["device"] == "cpu" and match["threads"] is None):
            raise ValueError(f"bad hardware key {key!r}: expected {_KEY_FORMAT}, e.g. 'cpu-t1-b1'")
        threads = int(match["threads"]) if match["threads"] is not None else 1
        try:
            config = cls(device=match["device"], threads=threads, batch_size=int(match["batch"]))
        except ValueError as error:
            raise ValueError(f"hardware key {key!r}: {error}") from None
        if config.key != key:  # e.g. 'cpu-t01-b1' or 'cuda-t1-b64': stored latencies use one spelling
            raise ValueError(f"hardware key {key!r} is written {config.key!r}; use that spelling")
        return config

    def validate(self) -> None:
        """Check that this configuration can be measured on this machine.

        Raises:
            ValueError: If the machine has fewer cores than ``threads``, or the target is CUDA and
                no (such) CUDA GPU is available.
        """
        self._check(require_cuda=True)

    def _check(self, *, require_cuda: bool) -> None:
        if not isinstance(self.device, str):
            raise ValueError(f"hardware device must be a string, got {self.device!r}")
        if self.device.startswith("lut-"):
            raise ValueError(
                f"hardware device {self.device!r} is a look-up-table target: pass the key {self.device!r} "
                "and let the supernet give its table (resolve_hardware)"
            )
        if not _DEVICE_RE.fullmatch(self.device):
            raise ValueError(f"unknown hardware device {self.device!r}: expected 'cpu', 'cuda' or 'cuda:N'")
        cores = os.cpu_count()
        if cores is not None and self.threads > cores:
            raise ValueError(f"threads={self.threads} exceeds the {cores} CPU cores this machine has")
        if require_cuda and self.is_cuda:
            if not torch.cuda.is_available():
                raise ValueError(
                    f"hardware {self.key!r} needs CUDA, but no CUDA GPU is available on this machine; "
                    "use a cpu config"
                )
            index = torch.device(self.device).index
            count = torch.cuda.device_count()
            if index is not None and index >= count:
                raise ValueError(
                    f"hardware {self.key!r} names CUDA device {index}, but this machine has only "
                    f"{count} GPU(s)"
                )

    def check_metric(self, metric: str) -> None:
        """Raise ``ValueError`` (one line) if ``metric`` has no measurer or cannot be measured here.

        Example:
            >>> HardwareConfig().check_metric("power_w")
            Traceback (most recent call last):
            ...
            ValueError: hardware 'cpu-t1-b1' has no measurer for 'power_w': it measures latency_ms, ...
        """
        if metric not in MEASURERS:
            raise ValueError(
                f"hardware {self.key!r} has no measurer for {metric!r}: it measures {', '.join(MEASURERS)}"
            )
        MEASURERS[metric].check(self)

    def measure(
        self,
        metric: str,
        supernet: Supernet,
        archs: Sequence[dict],
        subnets: Sequence[torch.nn.Module | None],
        **options: Any,
    ) -> list[Measurement]:
        """Measure ``metric`` of each sub-network on this target: its measurer on the supernet's workloads.

        Each workload is :meth:`~nastools.supernet.Supernet.workload` of the sub-network and arch
        for a batch of :attr:`batch_size`, made once the sub-network is on this target's device.

        Args:
            metric: One of :data:`~nastools.hardware.MEASURERS` (``latency_ms``, ``peak_memory_mb``,
                ``energy_mj``).
            supernet: Gives the workloads.
            archs: The sub-networks.
            subnets: Their standalone modules.
            **options: The measurer's options (e.g. ``rounds`` and ``min_run_time`` for latency).

        Raises:
            ValueError: A metric without a measurer, or one not available here (energy without a
                readable counter); a workload that is not ``(fn, args)``. Before anything runs.
        """
        self.check_metric(metric)
        self.validate()
        subnets = list(subnets)
        if len(subnets) != len(archs):
            raise ValueError(f"{len(archs)} archs but {len(subnets)} sub-networks")
        with prepared(subnets, self):
            workloads = [_workload(supernet, s, arch, self.batch_size) for s, arch in zip(subnets, archs)]
            return MEASURERS[metric](workloads, self, modules=subnets, **options)

    def latencies(
        self,
        supernet: Supernet,
        archs: Sequence[dict],
        subnets: Sequence[torch.nn.Module | None],
        **timing: Any,
    ) -> list[LatencyMeasurement]:
        """Time the supernet's workloads of ``subnets`` interleaved here (``measure("latency_ms", ...)``)."""
        return self.measure(LATENCY_MS, supernet, archs, subnets, **timing)


def _workload(supernet: Supernet, subnet: torch.nn.Module | None, arch: dict, batch_size: int) -> Workload:
    workload = supernet.workload(subnet, arch, batch_size)
    if not (
        isinstance(workload, tuple)
        and len(workload) == 2
        and callable(workload[0])
        and isinstance(workload[1], tuple)
    ):
        raise ValueError(
            f"{type(supernet).__name__}.workload must return (fn, args): a callable and the tuple of its "
            f"positional arguments, got {type(workload).__name__}"
        )
    return workload


def resolve_hardware(hardware: Hardware | str, supernet: Supernet | None = None) -> Hardware:
    """The target a key names: a :class:`HardwareConfig`, or one of the supernet's look-up tables.

    Raises:
        ValueError: A malformed key, or a ``lut-`` key the supernet has no table for (its tables
            are listed, and the family's message says where the files come from).

    Example:
        >>> resolve_hardware("cpu-t1-b64")
        HardwareConfig(device='cpu', threads=1, batch_size=64)
    """
    if isinstance(hardware, Hardware):
        return hardware
    if not isinstance(hardware, str):
        raise ValueError(f"hardware must be a key such as 'cpu-t1-b1' or a Hardware, got {hardware!r}")
    if hardware.startswith("lut-"):
        tables = supernet.lookup_tables() if supernet is not None else {}
        if hardware in tables:
            return tables[hardware]
        why = supernet.missing_table_message(hardware) if supernet is not None else ""
        name = supernet.supernet_id if supernet is not None else "(none given)"
        raise ValueError(
            why
            or f"hardware {hardware!r} is a look-up table that supernet {name!r} does not have; "
            f"its tables are {sorted(tables)}"
        )
    return HardwareConfig.from_key(hardware)


def default_hardware_configs() -> list[HardwareConfig]:
    """The standard targets for this machine.

    Batch-1 single-thread CPU (``cpu-t1-b1``), batch-1 and batch-64 on all cores
    (``cpu-t{n}-b1``, ``cpu-t{n}-b64`` with ``n = os.cpu_count()``), and ``cuda-b1`` /
    ``cuda-b64`` when a CUDA GPU is available. Duplicates (one core) are dropped.
    """
    cores = os.cpu_count() or 1
    configs = [
        HardwareConfig("cpu", threads=1, batch_size=1),
        HardwareConfig("cpu", threads=cores, batch_size=1),
        HardwareConfig("cpu", threads=cores, batch_size=64),
    ]
    if torch.cuda.is_available():
        configs += [HardwareConfig("cuda", batch_size=1), HardwareConfig("cuda", batch_size=64)]
    return list(dict.fromkeys(configs))
