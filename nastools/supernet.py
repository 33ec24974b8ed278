"""The ``Supernet`` contract every super-network implements, and the registry that finds one by name.

A supernet family (MobileNetV3, ResNet, a user's Transformer) subclasses :class:`Supernet`; the
Evaluator, the tactics, the analysis and the notebooks call nothing else. :func:`load_supernet`
finds a supernet by name: the built-in families' names (each folder under
:mod:`nastools.supernets` lists its own), names added with :func:`register_supernet`, installed
packages' ``nastools.supernets`` entry points, ``"package.module:factory"`` strings, or the path of
a checkpoint file whose header names its family.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import pkgutil
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping, Sequence
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nastools.metrics import GENERIC_METRICS, Metric
from nastools.space import Arch, SearchSpace

if TYPE_CHECKING:
    from nastools.hardware import Hardware

__all__ = [
    "CHECKPOINT_VERSION",
    "ENTRY_POINT_GROUP",
    "Supernet",
    "check_finite_weights",
    "count_macs",
    "count_params",
    "default_supernet",
    "file_hash",
    "load_supernet",
    "load_weights_file",
    "register_supernet",
    "supernet_names",
]

#: Entry-point group through which installed packages add supernets (name -> factory).
ENTRY_POINT_GROUP = "nastools.supernets"


def file_hash(path: str | Path) -> str:
    """First 16 hex digits of a file's SHA-256: a checkpoint's identity in the store."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


@torch.no_grad()
def count_macs(module: nn.Module, inputs: torch.Tensor | tuple[torch.Tensor, ...]) -> int:
    """Multiply-accumulates of one forward pass on ``inputs`` (give a batch of one sample).

    Counted with ``torch.utils.flop_counter`` (FLOPs / 2): convolutions, linear layers and matrix
    products; normalisation, activations, pooling and additions are not counted (OFA's convention).

    Example:
        >>> count_macs(nn.Linear(8, 4), torch.zeros(1, 8))
        32
    """
    inputs = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    was_training = module.training
    module.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            module(*inputs)
    finally:
        module.train(was_training)
    return int(counter.get_total_flops() // 2)


def count_params(module: nn.Module) -> int:
    """Number of parameters (weights, biases, normalisation affine terms; no running statistics)."""
    return sum(p.numel() for p in module.parameters())


class Supernet(ABC):
    """A weight-sharing super-network: what the toolkit needs from it, with defaults where possible.

    Subclass it to plug any super-network in (see ``examples/tinylm`` for a Transformer language
    model with token inputs and perplexity). Three methods are required: :meth:`subnet`,
    :meth:`example_inputs` and :meth:`evaluate`; the rest have defaults a family may override with
    something faster (closed-form MACs, batched surrogates, look-up tables).

    Attributes:
        supernet_id: Stable name, stored with every measurement.
        checkpoint_hash: Identifies the weights (or the surrogate); measurements of others are not reused.
        space: The search space of its sub-networks.
        metadata: Anything stored with the checkpoint (configs, training log, report).
        metrics: The task metrics it declares (name, direction, unit, kind): what :meth:`evaluate` measures.
        parameter_descriptions: Meaning of each parameter-name prefix (``"ks"``: kernel size of a
            block), for tables; every key names a prefix of the space's parameters.
        choice_order: For parameters with string choices (an activation, a block type): their values
            from the one that gives the smallest network to the one that gives the largest, by
            parameter name or prefix (``{"act": ["relu", "gelu"]}``). :meth:`extremes` needs it for
            every string parameter, unless the family overrides :meth:`extremes`; for a numeric
            parameter whose larger values do not give a larger network (a pruning ratio) it
            replaces the numeric order.
    """

    supernet_id: str
    checkpoint_hash: str
    space: SearchSpace
    metadata: dict[str, Any]
    metrics: tuple[Metric, ...]
    parameter_descriptions: Mapping[str, str] = {}
    choice_order: Mapping[str, Sequence[Hashable]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.supernet_id!r}, {self.space})"

    @abstractmethod
    def subnet(self, arch: Arch) -> nn.Module:
        """A standalone module (eval mode, weights copied) equal to the supernet with ``arch`` active."""

    @abstractmethod
    def example_inputs(self, arch: Arch, batch_size: int) -> tuple[torch.Tensor, ...]:
        """The positional inputs of one batch for ``subnet(arch)(*inputs)`` (images, token ids ...)."""

    @abstractmethod
    def evaluate(self, arch: Arch, metric: str, subnet: nn.Module | None = None) -> float:
        """Measure the task ``metric`` (one of :attr:`metrics`) of ``arch``.

        Args:
            arch: The sub-network.
            metric: A declared metric's name.
            subnet: Its standalone module when already extracted (may be modified in place).
        """

    @property
    def task_metric(self) -> Metric:
        """The first declared metric: the one notebooks and summaries lead with."""
        return self.metrics[0]

    def metric(self, name: str) -> Metric:
        """The declared or generic metric called ``name``.

        Raises:
            ValueError: Naming the metrics this supernet has.
        """
        for metric in (*self.metrics, *GENERIC_METRICS):
            if metric.name == name:
                return metric
        declared = [m.name for m in self.metrics]
        generic = [m.name for m in GENERIC_METRICS]
        raise ValueError(
            f"supernet {self.supernet_id!r} has no metric {name!r}: it declares {declared}; every supernet "
            f"also has {generic}"
        )

    def check_metric(self, metric: str) -> None:  # noqa: B027 - optional hook
        """Raise if ``metric`` cannot be measured now (e.g. a surrogate's file is missing)."""

    def needs_subnet(self, metric: str) -> bool:
        """Whether measuring ``metric`` needs the extracted sub-network (False: computed from the arch).

        By default every task metric and NASWOT need it, and MACs and parameters need it unless the
        family overrides :meth:`macs` / :meth:`params` (with a closed form, say).
        """
        if metric == "macs":
            return type(self).macs is Supernet.macs
        if metric == "params":
            return type(self).params is Supernet.params
        return True

    def macs(self, arch: Arch, subnet: nn.Module | None = None) -> int:
        """Multiply-accumulates of one sample's forward pass (default: flop counter on the sub-network).

        Args:
            arch: The sub-network.
            subnet: Its module when already extracted.
        """
        return count_macs(self.subnet(arch) if subnet is None else subnet, self.example_inputs(arch, 1))

    def params(self, arch: Arch, subnet: nn.Module | None = None) -> int:
        """Parameters of the standalone sub-network (default: counted on the extracted module)."""
        return count_params(self.subnet(arch) if subnet is None else subnet)

    def export_module(self, arch: Arch) -> nn.Module:
        """The standalone module as it was measured, for deployment (:func:`nastools.export.export_subnet`).

        The default is :meth:`subnet`; a family whose validation changes the module first (batch-norm
        recalibration, folding) returns it so changed.
        """
        return self.subnet(arch).eval()

    def extremes(self, space: SearchSpace | None = None) -> tuple[Arch, Arch]:
        """The smallest and the largest sub-network of ``space`` (default: the supernet's space).

        The default takes every parameter with a :attr:`choice_order` at the first and last of its
        values there, and every other numeric parameter at its smallest and largest value (``False``
        and ``True`` for booleans); override it where the network's size depends on several
        parameters together. These bound the hypervolume boxes.

        Raises:
            ValueError: A string parameter without a :attr:`choice_order` (which string is "larger"
                is the family's to say), or an order that lacks some of its choices.
        """
        space = space if space is not None else self.space
        low, high = {}, {}
        unordered = []
        for name, choices in space.choices.items():
            declared = self.choice_order.get(name, self.choice_order.get(name.split("_")[0]))
            if declared is None and space.types[name] != "str":
                ordered = sorted(choices)
            elif declared is None:
                unordered.append(name)
                continue
            else:
                declared = list(declared)
                missing = [c for c in choices if c not in declared]
                if missing:
                    raise ValueError(
                        f"{type(self).__name__}.choice_order lacks {missing} of parameter {name!r}: list "
                        f"all of {list(choices)}, the smallest network's first"
                    )
                ordered = sorted(choices, key=declared.index)
            low[name], high[name] = ordered[0], ordered[-1]
        if unordered:
            raise ValueError(
                f"extremes() cannot tell the smallest and largest network of {self.supernet_id!r}: string "
                f"parameter(s) {unordered[:5]} have no size order; give {type(self).__name__} a "
                f"choice_order (e.g. {{{unordered[0].split('_')[0]!r}: [the smallest network's value, ..., "
                "the largest's]}) or override extremes()"
            )
        return space.canonical(low), space.canonical(high)

    def lookup_tables(self) -> dict[str, Hardware]:
        """Look-up-table hardware this supernet can give latencies for: key to target (default none)."""
        return {}

    def missing_table_message(self, key: str) -> str:
        """Why the look-up table ``key`` is unavailable and where it comes from ('' for the default text)."""
        return ""

    def workload(self, subnet: nn.Module, arch: Arch, batch_size: int) -> tuple[Callable[..., Any], tuple]:
        """What a per-hardware measurer runs for one batch: ``(fn, args)``, measured as ``fn(*args)``.

        Latency times it, peak memory profiles one call, energy meters many (:mod:`nastools.hardware`),
        with ``subnet`` already in eval mode on the target's device (tensors in ``args`` are moved
        there). The default is the forward pass, ``(subnet, self.example_inputs(arch, batch_size))``;
        a family overrides it where a request is more than one forward pass, e.g. a translation model's
        encoder once and then incremental decoding, step by step, with cached states.

        Args:
            subnet: The standalone sub-network (:meth:`subnet`).
            arch: Its arch.
            batch_size: Samples per request (the hardware config's batch size).

        Example:
            >>> class Greedy(MySupernet):  # doctest: +SKIP
            ...     def workload(self, subnet, arch, batch_size):
            ...         source = self.example_inputs(arch, batch_size)[0]
            ...         return (lambda src: subnet.generate(src, steps=30)), (source,)
        """
        inputs = self.example_inputs(arch, batch_size)
        return subnet, (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)

    def run_active(self, arch: Arch, *inputs: torch.Tensor) -> torch.Tensor:
        """The weight-shared supernet's output on ``inputs`` with ``arch`` active (no extraction).

        The conformance suite compares it with ``subnet(arch)(*inputs)``: a sub-network must equal
        the supernet with its arch active. The default raises ``NotImplementedError`` (that check is
        then skipped, and said so); a family overrides it, e.g. ``network.set_active(arch)`` and then
        ``network(*inputs)`` in eval mode.

        Raises:
            NotImplementedError: Unless the family implements it.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement run_active(arch, *inputs): the supernet's output with "
            "an arch active cannot be compared with its extracted sub-network"
        )


# --- registry ---------------------------------------------------------------------------------------

Factory = Callable[..., Supernet]
_registered: dict[str, Factory | str] = {}


def _families() -> list[Any]:
    """The built-in family packages under :mod:`nastools.supernets` (each lists its supernets)."""
    import nastools.supernets as package

    return [
        importlib.import_module(f"{package.__name__}.{info.name}")
        for info in pkgutil.iter_modules(package.__path__)
        if info.ispkg and not info.name.startswith("_")  # _elastic, _image ...: shared, not families
    ]


def _builtin() -> dict[str, str]:
    names: dict[str, str] = {}
    for family in _families():
        names.update(getattr(family, "SUPERNETS", {}))
    return names


def _checkpoint_loaders() -> dict[str, str]:
    loaders: dict[str, str] = {}
    for family in _families():
        loaders.update(getattr(family, "CHECKPOINT_KINDS", {}))
    return loaders


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in importlib_metadata.entry_points(group=ENTRY_POINT_GROUP)}


def register_supernet(name: str, factory: Factory | str, *, overwrite: bool = False) -> None:
    """Make ``load_supernet(name)`` call ``factory`` (a callable or a ``"package.module:factory"`` string).

    Raises:
        ValueError: ``name`` is taken (pass ``overwrite=True`` to replace a registered one).

    Example:
        >>> register_supernet("my-lm", "tinylm.supernet:make_supernet")  # doctest: +SKIP
    """
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"a supernet name is a non-empty string without ':', got {name!r}")
    if not (callable(factory) or isinstance(factory, str)):
        raise ValueError(f"factory for {name!r} must be callable or a 'package.module:factory' string")
    if not overwrite and (name in _registered or name in _builtin()):
        raise ValueError(f"supernet name {name!r} is taken; pass overwrite=True to replace it")
    _registered[name] = factory


def supernet_names() -> list[str]:
    """Names :func:`load_supernet` accepts (besides factory strings and checkpoint paths)."""
    return list(dict.fromkeys([*_builtin(), *_registered, *_entry_points()]))


def default_supernet() -> str:
    """The supernet the notebooks and command lines use when none is named (a family declares it)."""
    defaults = [getattr(family, "DEFAULT", None) for family in _families()]
    defaults = [d for d in defaults if d]
    if len(defaults) != 1:
        raise RuntimeError(f"exactly one supernet family must declare DEFAULT, found {defaults}")
    return defaults[0]


def _import_factory(spec: str, *, name: str) -> Factory:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"supernet {name!r}: a factory string is 'package.module:factory', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(
            f"supernet {name!r}: cannot import module {module_name!r} ({type(error).__name__}: {error}); "
            "install its package or put it on PYTHONPATH"
        ) from error
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ValueError(f"supernet {name!r}: module {module_name!r} has no callable {attribute!r}")
    return factory


def _call(factory: Factory, options: Mapping[str, Any], *, name: str) -> Supernet:
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        try:
            signature.bind(**options)
        except TypeError:
            accepted = [p for p in signature.parameters if p not in ("self", "args", "kwargs")]
            unknown = sorted(set(options) - set(signature.parameters))
            required = [
                p.name
                for p in signature.parameters.values()
                if p.default is inspect.Parameter.empty
                and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
                and p.name not in options
            ]
            wrong = f"got {unknown}" if unknown else f"{required or 'some'} must be given"
            raise ValueError(f"supernet {name!r} takes the options {accepted}; {wrong}") from None
    supernet = factory(**options)
    if not isinstance(supernet, Supernet):
        raise ValueError(
            f"supernet {name!r}: its factory returned {type(supernet).__name__}, not a nastools Supernet "
            "(subclass nastools.supernet.Supernet)"
        )
    return supernet


def supernet_options(name: str) -> list[str] | None:
    """The keyword options the factory of ``name`` takes (None: any, or not known without loading it)."""
    factory = _factory_for(str(name))
    if factory is None:
        return None
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return None
    return [p for p in parameters if p != "self"]


def _factory_for(name: str) -> Factory | None:
    if name in _registered:
        factory = _registered[name]
        return _import_factory(factory, name=name) if isinstance(factory, str) else factory
    builtin = _builtin()
    if name in builtin:
        return _import_factory(builtin[name], name=name)
    entry_points = _entry_points()
    if name in entry_points:
        return entry_points[name].load()
    if ":" in name and not Path(name).exists():
        return _import_factory(name, name=name)
    return None


def load_supernet(name: str | Path | Supernet, **options: Any) -> Supernet:
    """Load a supernet by name, factory string or checkpoint path.

    Args:
        name: A name from :func:`supernet_names` (``"digits-mbv3"``, ``"ofa-mbv3-w1.2"`` ...), a
            ``"package.module:factory"`` string (the factory is called with ``options`` and must
            return a :class:`Supernet`), or the path of a checkpoint whose header names its family.
            A :class:`Supernet` is returned as it is.
        **options: Passed to the factory (e.g. ``data_dir`` for the OFA supernets' public files).

    Raises:
        ValueError: An unknown name, a factory string that does not import or does not return a
            supernet, or options the factory does not take; one line each.

    Example:
        >>> supernet = load_supernet("ofa-mbv3-w1.0")
        >>> supernet.space.n_var, supernet.space.choices["r"]
        (46, (160, 176, 192, 208, 224))
    """
    if isinstance(name, Supernet):
        if options:
            raise ValueError(f"options {sorted(options)} cannot apply to an already loaded supernet")
        return name
    text = str(name)
    factory = _factory_for(text)
    if factory is not None:
        return _call(factory, options, name=text)
    path = Path(text).expanduser()
    if path.suffix == ".pt" or path.exists():
        return _call(lambda **kw: load_checkpoint(path, **kw), options, name=text)
    raise ValueError(
        f"unknown supernet {text!r}; use one of {supernet_names()}, a 'package.module:factory' string, "
        "or the path of a checkpoint"
    )


#: The newest checkpoint format this nastools reads; a checkpoint without a ``version`` is version 1.
CHECKPOINT_VERSION = 1


def load_weights_file(path: str | Path, what: str = "checkpoint") -> Any:
    """``torch.load`` a checkpoint file (weights only, onto the CPU) after checking its stored checksums.

    ``torch.load`` does not check the CRC-32 its zip format stores for every record, so a damaged
    copy loads, with wrong weights; this reads the file once more and compares them.

    Args:
        path: The file.
        what: What it should be, for the message (``"nastools supernet checkpoint"``).

    Raises:
        ValueError: A record's checksum does not match its bytes, or the file does not load (one line).

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile(suffix=".pt") as file:
        ...     torch.save({"w": torch.ones(2)}, file.name)
        ...     load_weights_file(file.name)
        {'w': tensor([1., 1.])}
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except zipfile.BadZipFile:
        damaged = None  # torch's legacy format, or not a checkpoint: torch.load says which
    if damaged is not None:
        raise ValueError(
            f"{path} is damaged: the checksum of its record {damaged!r} does not match its bytes (a broken "
            "copy or download); copy or download the checkpoint again"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any failure here means an unusable file
        raise ValueError(
            f"{path} is not a readable {what} ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:120] if str(error) else 'no detail'})"
        ) from error


def check_finite_weights(path: str | Path, state_dict: Mapping[str, Any]) -> None:
    """Raise if a floating-point tensor of ``state_dict`` holds a NaN or an infinity (naming the tensor).

    Example:
        >>> check_finite_weights("net.pt", {"fc.weight": torch.tensor([1.0, float("nan")])})
        Traceback (most recent call last):
        ...
        ValueError: net.pt: weight 'fc.weight' has 1 non-finite value(s) (NaN or infinity) ...
    """
    for name, tensor in state_dict.items():
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                raise ValueError(
                    f"{path}: weight {name!r} has {bad} non-finite value(s) (NaN or infinity) of "
                    f"{tensor.numel()}; its training diverged or the file is damaged: use another checkpoint"
                )


def load_checkpoint(path: str | Path, **options: Any) -> Supernet:
    """Load a nastools checkpoint: its header's ``kind`` names the family that reads it.

    Raises:
        FileNotFoundError: ``path`` is not a file (a folder or missing); the message says how to make one.
        ValueError: The file is not a readable nastools checkpoint (damaged: a checksum does not
            match; a format version newer than :data:`CHECKPOINT_VERSION`), or no family reads its kind.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise FileNotFoundError(f"supernet checkpoint {path} is a folder; pass the path of a checkpoint file")
    if not path.is_file():
        raise FileNotFoundError(
            f"supernet checkpoint {path} does not exist; train one (python -m nastools.training --help) "
            "or pass the path of an existing one"
        )
    payload = load_weights_file(path, "nastools supernet checkpoint")
    if not isinstance(payload, dict) or payload.get("format") != "nastools-supernet":
        raise ValueError(f"{path} is not a nastools supernet checkpoint (no 'nastools-supernet' header)")
    version = payload.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{path}: unreadable checkpoint version {version!r} (a positive integer expected)")
    if version > CHECKPOINT_VERSION:
        raise ValueError(
            f"{path} is a version-{version} nastools checkpoint; this nastools reads versions up to "
            f"{CHECKPOINT_VERSION}: upgrade nastools (pip install -U nastools)"
        )
    loaders = _checkpoint_loaders()
    kind = payload.get("kind")
    if kind not in loaders:
        raise ValueError(f"{path} holds a {kind!r} supernet; the families here read {sorted(loaders)}")
    supernet = _call(
        _import_factory(loaders[kind], name=str(path)),
        {"path": path, "payload": payload, **options},
        name=str(path),
    )
    # where it came from: what the conformance suite's round trip writes again (its save_checkpoint)
    supernet.checkpoint_path, supernet.checkpoint_kind = path, kind
    return supernet
