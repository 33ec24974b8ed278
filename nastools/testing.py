"""The conformance suite any supernet passes: :func:`check_supernet`, as scikit-learn's ``check_estimator``.

Every built-in family and ``examples/tinylm`` pass it (``tests/test_conformance.py`` runs it on every
registered supernet); run your own supernet through it before searching it::

    from nastools.testing import check_supernet

    check_supernet("my_package.my_module:factory")  # or a Supernet, or a registered name

Each check is one small function that raises an ``AssertionError`` of one line naming the check,
the arch and the numbers; a check that does not apply to a supernet (it has no ``run_active``, was
not read from a checkpoint, lacks a file a metric needs) is reported as skipped, with why.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nastools.space import Arch
from nastools.supernet import Supernet, count_macs, count_params, load_supernet

__all__ = ["CHECKS", "check_supernet"]


class _Skip(Exception):  # noqa: N818 - a signal, not an error: the check does not apply
    """Raised by a check that does not apply to the supernet; its message says why."""


@dataclass
class _Case:
    """One tested arch: its standalone sub-network, example inputs and outputs, computed once each."""

    supernet: Supernet
    arch: Arch
    key: str
    subnet: nn.Module
    _inputs: dict[int, tuple] = field(default_factory=dict)
    _outputs: dict[int, Any] = field(default_factory=dict)

    def inputs(self, batch_size: int) -> tuple:
        if batch_size not in self._inputs:
            inputs = self.supernet.example_inputs(self.arch, batch_size)
            self._inputs[batch_size] = (inputs,) if isinstance(inputs, torch.Tensor) else inputs
        return self._inputs[batch_size]

    def output(self, batch_size: int) -> Any:
        if batch_size not in self._outputs:
            with torch.no_grad():
                self._outputs[batch_size] = self.subnet(*self.inputs(batch_size))
        return self._outputs[batch_size]


@dataclass(frozen=True)
class _Settings:
    atol: float
    batch_sizes: tuple[int, ...]
    load: Callable[[Path], Supernet]


def _tensors(value: Any) -> list[torch.Tensor]:
    """The tensors of an output: a tensor, or a tuple/list of them."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _tensors(item)]
    raise AssertionError(f"an output is a tensor or a tuple of tensors, got {type(value).__name__}")


def _max_difference(a: Any, b: Any) -> float:
    """Largest absolute difference of two outputs (inf when their structure or shapes differ)."""
    left, right = _tensors(a), _tensors(b)
    if len(left) != len(right) or any(x.shape != y.shape for x, y in zip(left, right)):
        return math.inf
    differences = [float((x.float() - y.float()).abs().max()) for x, y in zip(left, right) if x.numel()]
    return max(differences, default=0.0)


def _storages(module: nn.Module) -> set[int]:
    """Addresses of the storages of a module's parameters and buffers."""
    return {t.untyped_storage().data_ptr() for t in [*module.parameters(), *module.buffers()]}


# --- the checks: (supernet, cases, settings) -> None; AssertionError on a failure, _Skip where void --


def _check_extremes(supernet: Supernet, cases: list[_Case], settings: _Settings) -> None:
    """The smallest and largest archs are valid, and the smallest has no more MACs or parameters."""
    small, large = supernet.extremes()
    for arch in (small, large):
        try:
            supernet.space.validate(arch)
        except ValueError as error:
            raise AssertionError(f"extremes: {arch} is not an arch of the space: {error}") from error
    for name, count in (("macs", supernet.macs), ("params", supernet.params)):
        low, high = count(small), count(large)
        assert low <= high, (
            f"extremes: the smallest arch {supernet.space.key(small)} has {low} {name}, more than the "
            f"largest's {high}"
        )


def _check_example_inputs(supernet: Supernet, cases: list[_Case], settings: _Settings) -> None:
    """Example inputs are a tuple of tensors of the batch size, and the sub-network runs on them."""
    for case in cases:
        for batch_size in settings.batch_sizes:
            inputs = case.inputs(batch_size)
            assert isinstance(inputs, tuple) and inputs, (
                f"example_inputs: arch {case.key}: expected a non-empty tuple of tensors, got "
                f"{type(inputs).__name__} of {len(inputs) if isinstance(inputs, (tuple, list)) else 1}"
            )
            sizes = [t.shape[0] if isinstance(t, torch.Tensor) and t.dim() else None for t in inputs]
            assert all(size == batch_size for size in sizes), (
                f"example_inputs: arch {case.key}: batch size {batch_size}, inputs' leading sizes {sizes}"
            )
            outputs = _tensors(case.output(batch_size))
            assert all(t.shape[:1] == (batch_size,) for t in outputs), (
                f"example_inputs: arch {case.key}: batch size {batch_size}, outputs of shapes "
                f"{[tuple(t.shape) for t in outputs]}"
            )
            assert all(bool(torch.isfinite(t).all()) for t in outputs if t.is_floating_point()), (
                f"example_inputs: arch {case.key}: batch size {batch_size}: the outputs are not all finite"
            )


def _check_subnet_equals_supernet(supernet: Supernet, cases: list[_Case], settings: _Settings) -> None:
    """``subnet(arch)(*inputs)`` equals ``run_active(arch, *inputs)`` within ``atol``."""
    for case in cases:
        for batch_size in settings.batch_sizes:
            try:
                shared = supernet.run_active(case.arch, *case.inputs(batch_size))
            except NotImplementedError as error:
                raise _Skip("the supernet has no run_active") from error
            difference = _max_difference(case.output(batch_size), shared)
            assert difference < settings.atol, (
                f"subnet_equals_supernet: arch {case.key}: batch size {batch_size}: max abs difference "
                f"{difference:.3g} between subnet(arch) and run_active(arch), not below {settings.atol:g}"
            )


def _check_standalone_copy(supernet: Supernet, cases: list[_Case], settings: _Settings) -> None:
    """A sub-network shares no storage with the supernet's modules nor with another extraction."""
    held = {name: _storages(value) for name, value in vars(supernet).items() if isinstance(value, nn.Module)}
    for case in cases:
        mine = _storages(case.subnet)
        for name, storages in held.items():
            assert not mine & storages, (
                f"standalone_copy: arch {case.key}: {len(mine & storages)} of the sub-network's tensors "
                f"share storage with the supernet's {name!r}: subnet(arch) must copy the weights"
            )
    # a second extraction, zeroed, must leave the first alone (no cache handing out one module twice)
    case, batch_size = cases[0], settings.batch_sizes[0]
    other = supernet.subnet(case.arch)
    assert not _storages(other) & _storages(case.subnet), (
        f"standalone_copy: arch {case.key}: two extractions share storage: subnet(arch) must copy the weights"
    )
    with torch.no_grad():
        for tensor in [*other.parameters(), *other.buffers()]:
            if tensor.is_floating_point():
                tensor.zero_()
        difference = _max_difference(case.subnet(*case.inputs(batch_size)), case.output(batch_size))
    assert difference < settings.atol, (
        f"standalone_copy: arch {case.key}: zeroing a second extraction changed the first one's outputs "
        f"by {difference:.3g}"
    )


def _check_canonical_keys(supernet: Supernet, cases: list[_Case], settings: _Settings) -> None:
    """Inactive parameters change nothing: the key, the canonical arch, the outputs, MACs and params."""
    space = supernet.space
    if not space.conditions:
        raise _Skip("the space has no conditional parameters")
    tested = 0
    for case in cases:
        inactive = [name for name in space.names if not space.is_active(case.arch, name)]
        if not inactive:
            continue
        changed = dict(case.arch)
        for name in inactive:
            choices = space.choices[name]
            changed[name] = choices[-1] if changed[name] != choices[-1] else choices[0]
        assert space.key(changed) == case.key and space.canonical(changed) == space.canonical(case.arch), (
            f"canonical_keys: arch {case.key}: changing the inactive {inactive} changes its key or canonical"
        )
        batch_size = settings.batch_sizes[0]
        with torch.no_grad():
            output = supernet.subnet(changed)(*case.inputs(batch_size))
        difference = _max_difference(output, case.output(batch_size))
        assert difference < settings.atol, (
            f"canonical_keys: arch {case.key}: changing the inactive {inactive} changes the sub-network's "
            f"outputs by {difference:.3g}"
        )
        counts = supernet.macs(case.arch), supernet.params(case.arch)
        changed_counts = supernet.macs(changed), supernet.params(changed)
        assert counts == changed_counts, (
            f"canonical_keys: arch {case.key}: changing the inactive {inactive} changes (macs, params) from "
            f"{counts} to {changed_counts}"
        )
        tested += 1
    if not tested:
        raise _Skip("no tested arch has an inactive parameter")


def _check_closed_form_counts(supernet: Supernet, cases: list[_Case], settings: _Settings) -> None:
    """``macs(arch)``, ``params(arch)`` equal :func:`count_macs`, :func:`count_params` on ``subnet(arch)``."""
    for case in cases:
        counted = count_macs(case.subnet, case.inputs(1)), count_params(case.subnet)
        closed = supernet.macs(case.arch), supernet.params(case.arch)
        assert closed == counted, (
            f"closed_form_counts: arch {case.key}: (macs, params) are {closed}, the counters give {counted} "
            "on subnet(arch) with example_inputs(arch, 1)"
        )


def _check_metrics(supernet: Supernet, cases: list[_Case], settings: _Settings) -> None:
    """Every declared metric evaluates to a finite number on the first arch (skipped where it cannot here)."""
    case, unavailable = cases[0], []
    for metric in supernet.metrics:
        try:
            supernet.check_metric(metric.name)
        except (FileNotFoundError, ValueError) as error:
            unavailable.append(f"{metric.name}: {error}")
            continue
        value = supernet.evaluate(case.arch, metric.name)
        assert isinstance(value, (int, float)) and math.isfinite(value), (
            f"metrics: arch {case.key}: evaluate(arch, {metric.name!r}) gave {value!r}, not a finite number"
        )
    if unavailable:
        raise _Skip("; ".join(unavailable))


def _check_workload(supernet: Supernet, cases: list[_Case], settings: _Settings) -> None:
    """``workload(subnet, arch, batch_size)`` gives ``(fn, args)`` and ``fn(*args)`` runs."""
    batch_size = min(settings.batch_sizes)
    for case in cases:
        fn, args = supernet.workload(case.subnet, case.arch, batch_size)
        assert callable(fn) and isinstance(args, tuple), (
            f"workload: arch {case.key}: expected (callable, tuple), got ({type(fn).__name__}, "
            f"{type(args).__name__})"
        )
        try:
            with torch.no_grad():
                fn(*args)
        except Exception as error:
            raise AssertionError(
                f"workload: arch {case.key}: fn(*args) raised {type(error).__name__}: {error}"
            ) from error


def _check_checkpoint_round_trip(supernet: Supernet, cases: list[_Case], settings: _Settings) -> None:
    """Written again by its family's ``save_checkpoint(path)`` and loaded, the supernet computes the same."""
    source = getattr(supernet, "checkpoint_path", None)
    if source is None:
        raise _Skip("the supernet was not read from a checkpoint file (it has no checkpoint_path)")
    save = getattr(supernet, "save_checkpoint", None)
    if not callable(save):
        raise _Skip(f"the supernet has no save_checkpoint(path) to write {Path(source).name} again")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(source).name
        save(path)
        reloaded = settings.load(path)
    assert reloaded.space.to_dict() == supernet.space.to_dict(), (
        f"checkpoint_round_trip: the space read back from {path.name} differs from the supernet's"
    )
    names, reloaded_names = [m.name for m in supernet.metrics], [m.name for m in reloaded.metrics]
    assert reloaded_names == names, (
        f"checkpoint_round_trip: the metrics read back are {reloaded_names}, the supernet's {names}"
    )
    batch_size = settings.batch_sizes[0]
    for case in cases:
        with torch.no_grad():
            output = reloaded.subnet(case.arch)(*case.inputs(batch_size))
        difference = _max_difference(output, case.output(batch_size))
        assert difference < settings.atol, (
            f"checkpoint_round_trip: arch {case.key}: the reloaded supernet's sub-network differs by "
            f"{difference:.3g}"
        )


#: The checks in the order they run, by name (``skip`` takes these names).
CHECKS: dict[str, Callable[[Supernet, list[_Case], _Settings], None]] = {
    "extremes": _check_extremes,
    "example_inputs": _check_example_inputs,
    "subnet_equals_supernet": _check_subnet_equals_supernet,
    "canonical_keys": _check_canonical_keys,
    "closed_form_counts": _check_closed_form_counts,
    "metrics": _check_metrics,
    "workload": _check_workload,
    "standalone_copy": _check_standalone_copy,
    "checkpoint_round_trip": _check_checkpoint_round_trip,
}


def check_supernet(
    supernet: Supernet | str,
    *,
    n_archs: int = 4,
    seed: int = 0,
    atol: float = 1e-5,
    batch_sizes: Sequence[int] = (1, 3),
    skip: Sequence[str] = (),
    load: Callable[[Path], Supernet] = load_supernet,
) -> dict[str, str]:
    """Run the conformance checks on a supernet; raise an ``AssertionError`` at the first that fails.

    The archs tested are the smallest and the largest (:meth:`Supernet.extremes`), then random ones
    (``space.sample(rng=seed)``), ``n_archs`` in all. The checks, in order (:data:`CHECKS`):

    * ``extremes``: both are archs of the space, the smallest with no more MACs or parameters.
    * ``example_inputs``: ``example_inputs(arch, b)`` is a tuple of tensors of batch size ``b`` (each of
      ``batch_sizes``) that ``subnet(arch)`` runs on, giving finite outputs of batch size ``b``.
    * ``subnet_equals_supernet``: ``subnet(arch)(*inputs)`` equals ``run_active(arch, *inputs)`` (the
      weight-shared supernet with ``arch`` active), max abs difference below ``atol``.
    * ``canonical_keys``: changing inactive parameters changes neither the key, nor the outputs, MACs
      or parameters.
    * ``closed_form_counts``: ``macs(arch)`` and ``params(arch)`` equal :func:`count_macs` on
      ``example_inputs(arch, 1)`` and :func:`count_params` of ``subnet(arch)``.
    * ``metrics``: every declared metric evaluates to a finite number on the first arch (skipped, with
      the reason, for a metric whose ``check_metric`` says it cannot be given here: a missing file).
    * ``workload``: ``workload(subnet, arch, b)`` gives ``(fn, args)`` and ``fn(*args)`` runs.
    * ``standalone_copy``: a sub-network shares no storage with the supernet's modules, and zeroing
      a second extraction leaves the first one's outputs as they were.
    * ``checkpoint_round_trip``: a supernet read from a checkpoint file (its ``checkpoint_path``)
      that can write itself (``save_checkpoint(path)``) is written to a temporary file and read
      back with ``load(path)``; the copy has the same space, metrics and sub-network outputs.

    Args:
        supernet: The supernet, or anything :func:`~nastools.supernet.load_supernet` takes.
        n_archs: How many archs to test (1: the smallest only; the full-size ImageNet supernets).
        seed: Seed of the random archs.
        atol: Largest absolute difference allowed between outputs that must be equal.
        batch_sizes: Batch sizes of the example inputs.
        skip: Names of checks not to run (reported as ``"skipped: asked"``).
        load: Reads a checkpoint file back (default :func:`~nastools.supernet.load_supernet`; a
            supernet with its own checkpoint format passes its reader).

    Returns:
        Every check's name -> ``"passed"`` or ``"skipped: <why>"``.

    Raises:
        AssertionError: A check failed (one line: the check, the arch and the numbers).
        ValueError: A setting is out of range, or ``skip`` names no check.

    Example:
        >>> report = check_supernet("digits-mbv3", n_archs=2)  # doctest: +SKIP
        >>> report["subnet_equals_supernet"], report["checkpoint_round_trip"]  # doctest: +SKIP
        ('passed', 'passed')
    """
    unknown = sorted(set(skip) - set(CHECKS))
    if unknown:
        raise ValueError(f"skip names no check: {unknown}; the checks are {list(CHECKS)}")
    if isinstance(n_archs, bool) or not isinstance(n_archs, int) or n_archs < 1:
        raise ValueError(f"n_archs must be a positive integer, got {n_archs!r}")
    sizes = tuple(batch_sizes)
    if not sizes or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in sizes):
        raise ValueError(f"batch_sizes must be positive integers, got {batch_sizes!r}")
    if not atol > 0:
        raise ValueError(f"atol must be > 0, got {atol!r}")
    supernet = load_supernet(supernet)
    settings = _Settings(atol=float(atol), batch_sizes=sizes, load=load)
    archs = [*supernet.extremes(), *supernet.space.sample(max(0, n_archs - 2), rng=seed)][:n_archs]
    cases = [_Case(supernet, arch, supernet.space.key(arch), supernet.subnet(arch)) for arch in archs]
    report = {}
    for name, check in CHECKS.items():
        if name in skip:
            report[name] = "skipped: asked"
            continue
        try:
            check(supernet, cases, settings)
        except _Skip as why:
            report[name] = f"skipped: {why}"
        else:
            report[name] = "passed"
    return report
