"""Hardware targets, and a measurer per per-hardware metric, for hardware-aware search.

Every hardware target implements :class:`Hardware`: a stable key that labels stored measurements,
the per-hardware metrics it gives, and a way to give them.

* :class:`HardwareConfig` (``cpu-t1-b1``, ``cpu-t8-b64``, ``cuda-b64``, ``cuda:1-b64``) measures
  the sub-networks here, each metric with its own measurer (:data:`MEASURERS`): latency with
  ``torch.utils.benchmark`` (warm-up, fixed thread count, median and spread, threads restored;
  :func:`time_workloads`), peak memory of one forward pass (:func:`measure_peak_memory`) and
  energy where the platform exposes a counter (:func:`measure_energy`; elsewhere a one-line "not
  available here"). What runs is the supernet's :meth:`~nastools.supernet.Supernet.workload`
  (default ``subnet(*example_inputs)``). Its measurements belong to the machine that made them:
  :meth:`Hardware.host` names it, and the store keeps it with every row.
* :class:`LookupTableHardware` (``lut-<platform>``, e.g. ``lut-note10``) is a platform nothing runs
  on here: it owns a function from archs to latencies, typically a per-layer table that a supernet
  family provides (:meth:`nastools.supernet.Supernet.lookup_tables`). It gives latency only.

:func:`resolve_hardware` turns a key into a target for a given supernet. Private modules: ``_base``
(the contract and what measurers return), ``_keys`` (configurations as pure descriptions),
``_timing`` (the timing engine), ``_memory`` and ``_energy`` (the other measurers), ``_measurers``
(one per metric), ``_host`` (host identity and quietness probes), ``_tables`` (look-up tables).
"""

from nastools.hardware._base import (
    ENERGY_MJ,
    LATENCY_MS,
    PEAK_MEMORY_MB,
    EnergyMeasurement,
    Hardware,
    LatencyMeasurement,
    Measurement,
    MemoryMeasurement,
)
from nastools.hardware._energy import NvmlCounter, RaplCounter, energy_counter, measure_energy
from nastools.hardware._host import busy_cores, host_id, timing_noise
from nastools.hardware._keys import HardwareConfig, default_hardware_configs, resolve_hardware
from nastools.hardware._measurers import MEASURERS, Measurer
from nastools.hardware._memory import measure_peak_memory, resident_bytes
from nastools.hardware._tables import LookupTableHardware
from nastools.hardware._timing import (
    MIN_REPEATS,
    Workload,
    measure_latencies,
    measure_latency,
    time_workloads,
)

__all__ = [
    "ENERGY_MJ",
    "LATENCY_MS",
    "MEASURERS",
    "MIN_REPEATS",
    "PEAK_MEMORY_MB",
    "EnergyMeasurement",
    "Hardware",
    "HardwareConfig",
    "LatencyMeasurement",
    "LookupTableHardware",
    "Measurement",
    "Measurer",
    "MemoryMeasurement",
    "NvmlCounter",
    "RaplCounter",
    "Workload",
    "busy_cores",
    "default_hardware_configs",
    "energy_counter",
    "host_id",
    "measure_energy",
    "measure_latencies",
    "measure_latency",
    "measure_peak_memory",
    "resident_bytes",
    "resolve_hardware",
    "time_workloads",
    "timing_noise",
]
