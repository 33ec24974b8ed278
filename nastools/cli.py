"""The ``nastools`` command line: search, measure, front, export, notebooks, train, quickstart, data, store.

Arguments are parsed and checked before anything heavy is imported, so ``--help`` and argument
errors answer at once even on a busy machine; torch and the rest load only for a verb that runs.

Example::

    nastools measure --supernet digits-mbv3 --metrics top1 macs latency_ms --hardware cpu-t1-b1 --n-archs 4
    nastools search --supernet digits-mbv3 --objectives top1:max latency_ms@cpu-t1-b1:min
        --tactic concurrent --budget 100 --store results/cli.sqlite --search-id concurrent-s0
    nastools front --store results/cli.sqlite --search-id concurrent-s0
    nastools export --store results/cli.sqlite --search-id concurrent-s0 --rank 0 --out exported/
    nastools data fetch      # public files the built-in supernets use, into the cache (`data list`)
    nastools store copy results/cli.sqlite backup.sqlite    # also `store merge SRC... --into DST`
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import warnings
from collections.abc import Iterator, Sequence

from nastools._outputs import check_output_dir, check_output_file, write_atomically
from nastools._tactic_names import BUILTIN_TACTICS, install_line

__all__ = ["main"]

_DELEGATED = {
    "notebooks": ("nastools.experiments.runner", "main"),
    "train": ("nastools.training", "main"),
    "quickstart": ("nastools.experiments.quickstart", "main"),
    "data": ("nastools.datasets", "main"),
    "store": ("nastools.store._cli", "main"),
}

_OBJECTIVES_HELP = (
    "objectives as label:direction, each once, e.g. top1:max latency_ms@cpu-t1-b1:min; the first is what "
    "'front' sorts by and 'export --rank' ranks by"
)


def _objectives(items: Sequence[str]) -> dict[str, str]:
    spec: dict[str, str] = {}
    for item in items:
        label, sep, direction = item.rpartition(":")
        if not sep or not label:
            raise argparse.ArgumentTypeError(f"objective {item!r}: write label:direction, e.g. top1:max")
        if direction not in ("min", "max"):
            raise argparse.ArgumentTypeError(
                f"objective {item!r}: the direction is min or max, got {direction!r}"
            )
        if label in spec:
            raise argparse.ArgumentTypeError(
                f"objective {label!r} is given twice ({label}:{spec[label]} and {item}); "
                "give each objective once"
            )
        spec[label] = direction
    return spec


def _option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` of ``--option``: the key a Python name, the value read as YAML."""
    import yaml

    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"option {text!r}: write KEY=VALUE, e.g. predictor=ridge")
    try:
        return key, yaml.safe_load(value)
    except yaml.YAMLError as error:
        problem = str(error).splitlines()[0]
        raise argparse.ArgumentTypeError(f"option {key}: {value!r} is not YAML ({problem})") from None


def _options(pairs: Sequence[tuple[str, object]]) -> dict[str, object]:
    """The ``--option`` pairs as a dict: each key once, none that another argument sets."""
    options: dict[str, object] = {}
    own = {"seed": "--seed", "initial_archs": "--initial-search", "exact": "--objectives"}
    for key, value in pairs:
        if key in own:
            raise argparse.ArgumentTypeError(f"option {key!r} is set by {own[key]}; give that instead")
        if key in options:
            raise argparse.ArgumentTypeError(f"option {key!r} is given twice; give each option once")
        options[key] = value
    return options


#: What --pop-size and --n-gen are, when not given, for the tactics that take them.
_SHARED_DEFAULTS = {"pop_size": 20, "n_gen": 100}


def _tactics_epilog() -> str:
    width = max(map(len, BUILTIN_TACTICS)) + 2
    lines = [
        f"  {name:<{width}}{entry.description}" + (f" ({install_line(name)})" if entry.extra else "")
        for name, entry in BUILTIN_TACTICS.items()
    ]
    return "tactics (--tactic):\n" + "\n".join(lines)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nastools", description=__doc__.split("\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def supernet_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--supernet", default=None, help="any name load_supernet accepts (default: the embedded one)"
        )
        sub.add_argument(
            "--data-dir", help="folder of public files the supernet uses (OFA: predictor, tables)"
        )

    search = verbs.add_parser(
        "search",
        help="run a tactic, store every validation, print the front",
        epilog=_tactics_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    supernet_options(search)
    search.add_argument("--objectives", nargs="+", required=True, help=_OBJECTIVES_HELP)
    search.add_argument(
        "--tactic",
        default="concurrent",
        metavar="NAME",
        help="a tactic of the registry: listed below, or one a module of yours registers (register_tactic) "
        "when --supernet module:factory imports it",
    )
    search.add_argument("--budget", type=_positive, required=True, help="validations allowed")
    search.add_argument(
        "--pop-size",
        type=_positive,
        help=f"population / batch size (random, weaknas: batch_size); an error for a tactic that takes none "
        f"(default {_SHARED_DEFAULTS['pop_size']} where one is taken)",
    )
    search.add_argument(
        "--n-gen",
        type=_positive,
        help=f"inner-search generations; an error for a tactic that takes none (default "
        f"{_SHARED_DEFAULTS['n_gen']} where taken)",
    )
    search.add_argument(
        "--option",
        action="append",
        default=[],
        type=_option,
        metavar="KEY=VALUE",
        help="a constructor argument of the tactic, its value in YAML (predictor=ridge, min_new=5, "
        "'predictor={top1: gbm}'); repeat for more; wins over --pop-size and --n-gen",
    )
    search.add_argument("--seed", type=int, default=0)
    search.add_argument("--store", required=True, help="the result store (sqlite file)")
    search.add_argument(
        "--search-id", required=True, help="name of the search in the store (resumes if there)"
    )
    search.add_argument("--initial-search", help="warm start from the last population of this stored search")

    measure = verbs.add_parser("measure", help="measure metrics of sub-networks into a store, print them")
    supernet_options(measure)
    measure.add_argument(
        "--metrics",
        nargs="+",
        default=None,
        help="metric names (default: task metrics, macs, params, and latency_ms when --hardware is given)",
    )
    measure.add_argument(
        "--hardware",
        nargs="*",
        default=[],
        help="hardware keys to time per-hardware metrics (latency_ms) on, e.g. cpu-t1-b1; without --metrics "
        "latency_ms is measured on each, since naming hardware asks for what depends on it; with --metrics, "
        "name latency_ms there too",
    )
    group = measure.add_mutually_exclusive_group()
    group.add_argument("--n-archs", type=_positive, default=4, help="random sub-networks (with --seed)")
    group.add_argument("--archs", nargs="+", help="arch keys to measure")
    measure.add_argument("--extremes", action="store_true", help="also the smallest and largest sub-network")
    measure.add_argument("--seed", type=int, default=0)
    measure.add_argument("--store", default=None, help="the result store (default: keep nothing)")

    front = verbs.add_parser("front", help="print (and write) the Pareto front of a stored search")
    front.add_argument("--store", required=True)
    front.add_argument("--search-id", required=True)
    front.add_argument("--supernet", help="how to load the search's supernet (default: its stored id)")
    front.add_argument("--data-dir", help="folder of public files the search's supernet uses")
    front.add_argument("--csv", help="also write the front to this CSV file")
    front.add_argument(
        "--by", metavar="LABEL", help="sort by this objective, best first (default: the search's first)"
    )

    export = verbs.add_parser("export", help="write a chosen sub-network as PyTorch, TorchScript and ONNX")
    export.add_argument("--store", required=True)
    export.add_argument("--search-id", required=True)
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--rank",
        type=int,
        help="the front's n-th sub-network (0: the best) by --by, else by the first objective",
    )
    which.add_argument("--arch", help="an arch key")
    export.add_argument(
        "--by", metavar="LABEL", help="with --rank: the objective that ranks the front (default: the first)"
    )
    export.add_argument("--out", required=True, help="output folder")
    export.add_argument(
        "--formats", nargs="+", default=["pt", "torchscript", "onnx"], choices=["pt", "torchscript", "onnx"]
    )
    export.add_argument("--supernet", help="how to load the search's supernet (default: its stored id)")
    export.add_argument("--data-dir", help="folder of public files the search's supernet uses")

    notebooks = verbs.add_parser(
        "notebooks", help="run the experiment notebooks headless (see --help)", add_help=False
    )
    notebooks.add_argument("args", nargs=argparse.REMAINDER)

    train = verbs.add_parser("train", help="train an embedded supernet (see --help)", add_help=False)
    train.add_argument("args", nargs=argparse.REMAINDER)

    quickstart = verbs.add_parser(
        "quickstart", help="measure a few sub-networks on two CPU configs (see --help)", add_help=False
    )
    quickstart.add_argument("args", nargs=argparse.REMAINDER)
    data = verbs.add_parser(
        "data", help="list or fetch the public files some supernets use (see --help)", add_help=False
    )
    data.add_argument("args", nargs=argparse.REMAINDER)
    store = verbs.add_parser(
        "store", help="copy a result store, or merge stores, while in use (see --help)", add_help=False
    )
    store.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def _load(supernet: str | None, data_dir: str | None):
    from nastools.supernet import default_supernet, load_supernet, supernet_options

    name = supernet or default_supernet()
    options = {}
    if data_dir is not None:
        accepted = supernet_options(name)
        if accepted is not None and "data_dir" not in accepted:
            raise ValueError(f"supernet {name!r} takes no --data-dir")
        options["data_dir"] = data_dir
    return load_supernet(name, **options)


def _shared_options(args: argparse.Namespace) -> dict[str, int]:
    """``--pop-size`` and ``--n-gen`` as given, by the tactic's names for them; an error where it takes none.

    Raises:
        ValueError: An unknown tactic, or one that takes no such setting (what it takes is listed).
    """
    from nastools.search import tactic_preset

    preset = tactic_preset(args.tactic)
    options = {}
    for flag in ("--pop-size", "--n-gen"):
        setting = flag[2:].replace("-", "_")
        value = getattr(args, setting)
        if value is None:
            continue
        parameter = preset.parameter_for(setting)
        if parameter is None:
            raise ValueError(
                f"{flag}: tactic {args.tactic!r} takes no {setting}; it takes {preset.parameters()} "
                "(--option KEY=VALUE)"
            )
        options[parameter] = value
    return options


def _search(args: argparse.Namespace) -> int:
    from nastools.evaluation import Evaluator
    from nastools.search import best_population, make_tactic, run_tactic, tactic_names

    # a tactic registered by the user's module is known once --supernet has imported it: a name known
    # now is checked (with --pop-size and --n-gen) before any work
    shared = _shared_options(args) if args.tactic in tactic_names() else None
    supernet = _load(args.supernet, args.data_dir)
    if shared is None:
        shared = _shared_options(args)
    evaluator = Evaluator(supernet, args.store)
    objectives = _objectives(args.objectives)
    # the defaults reach the tactics that take them; what was given is the tactic's own argument
    settings = {**_SHARED_DEFAULTS, "exact": evaluator.free(objectives)}
    options = {"seed": args.seed, **shared, **_options(args.option)}
    if args.initial_search:
        options["initial_archs"] = best_population(evaluator.store, args.initial_search, supernet.space)
    try:
        tactic = make_tactic(
            args.tactic, supernet.space, objectives, args.budget, settings=settings, **options
        )
    except ImportError as error:  # an alternative whose library is not installed
        message, line = str(error).splitlines()[0], install_line(args.tactic)
        raise ValueError(message if line is None or line in message else f"{message}; {line}") from None
    with _warnings_as_lines("search"):
        run_tactic(tactic, evaluator, search_id=args.search_id)
    _print(tactic.results().query("front").drop(columns="front"))
    print(f"{tactic.n_validated} validated; stored in {args.store} as {args.search_id!r}")
    return 0


def _measure(args: argparse.Namespace) -> int:
    from nastools.evaluation import Evaluator, wide

    supernet = _load(args.supernet, args.data_dir)
    space = supernet.space
    archs = (
        [space.from_key(k) for k in args.archs] if args.archs else space.sample(args.n_archs, rng=args.seed)
    )
    if args.extremes:
        archs = [*supernet.extremes(), *archs]
    evaluator = Evaluator(supernet, args.store)
    metrics = args.metrics
    if args.hardware:
        timed = [m.name for m in evaluator.metrics(metrics) if m.per_hardware]
        if metrics is None:  # naming hardware asks for what depends on it
            metrics = [m.name for m in evaluator.metrics(None)] + ["latency_ms"]
        elif not timed:
            raise ValueError(
                f"--hardware {' '.join(args.hardware)} is only used by per-hardware metrics, and --metrics "
                f"{' '.join(args.metrics)} names none: add latency_ms to --metrics, or drop --hardware"
            )
    with _warnings_as_lines("measure"):
        table = wide(evaluator.measure(archs, metrics, args.hardware))
    _print(table)
    return 0


def _stored_search(store_path: str, search_id: str, supernet: str | None, data_dir: str | None):
    """The search's supernet, evaluator, results table (validated archs with their objectives), objectives.

    The objectives come in the order the search was given them, except in stores written before
    that order was kept (a dict, serialised with sorted keys): those come with a one-line note.
    """
    from collections.abc import Mapping

    import pandas as pd

    from nastools.analysis import front_mask
    from nastools.evaluation import Evaluator
    from nastools.objectives import parse_objectives
    from nastools.store import ResultStore
    from nastools.supernet import load_supernet

    store = ResultStore(store_path, read_only=True)
    record = store.search(search_id)
    store.require_measurements(search_id)  # deleted rows are named, not re-measured into a read-only store
    options = {"data_dir": data_dir} if data_dir else {}
    try:
        supernet = load_supernet(supernet or record["supernet_id"], **options)
    except ValueError as error:
        raise ValueError(
            f"{error}; pass --supernet, the name the search's supernet was loaded with"
        ) from None
    if supernet.supernet_id != record["supernet_id"]:
        raise ValueError(
            f"search {search_id!r} searched {record['supernet_id']!r}, not {supernet.supernet_id!r}"
        )
    keys = store.validations(search_id)
    measured = store.measurements(supernet_id=supernet.supernet_id, arch=keys[0]) if keys else None
    if measured is not None and supernet.checkpoint_hash not in set(measured["checkpoint_hash"]):
        raise ValueError(  # else its validations would be measured anew, into a store opened read-only
            f"search {search_id!r} was measured on checkpoint {sorted(set(measured['checkpoint_hash']))} of "
            f"{supernet.supernet_id!r}, but the supernet loaded has checkpoint {supernet.checkpoint_hash!r}: "
            "pass --supernet the checkpoint the search ran with"
        )
    evaluator = Evaluator(supernet, store, progress=False)
    stored = record["config"]["objectives"]
    objectives = parse_objectives(stored)
    if isinstance(stored, Mapping):
        print(
            f"note: search {search_id!r} was stored before nastools kept the order of objectives: "
            f"{[o.label for o in objectives]} may be in alphabetical order, not the one given; "
            "pass --by to choose the objective"
        )
    values = evaluator.values([supernet.space.from_key(k) for k in keys], objectives) if keys else {}
    table = pd.DataFrame({"arch": keys, **values})
    table["front"] = front_mask(table, objectives) if len(table) else []
    return supernet, evaluator, table, objectives


def _ranked_front(table, objectives, by: str | None):
    """The front's rows best first by the objective ``by`` (default: the first), and what ranked it.

    Ties are broken by the other objectives in order, so every rank is reproducible.
    """
    labels = [o.label for o in objectives]
    label = labels[0] if by is None else by
    if label not in labels:
        raise ValueError(f"--by {label}: the search's objectives are {labels}")
    order = sorted(objectives, key=lambda o: o.label != label)  # stable: the others keep their order
    front = (
        table[table["front"]]
        .drop(columns="front")
        .sort_values([o.label for o in order], ascending=[o.direction == "min" for o in order], kind="stable")
    )
    chosen = order[0]
    which = "the search's first objective" if label == labels[0] else "--by"
    return front, f"{chosen.label} ({chosen.direction}, {which})"


def _front(args: argparse.Namespace) -> int:
    _, _, table, objectives = _stored_search(args.store, args.search_id, args.supernet, args.data_dir)
    front, ranked_by = _ranked_front(table, objectives, args.by)
    print(f"front of {args.search_id!r}: {len(front)} sub-networks, best first by {ranked_by}")
    _print(front)
    if args.csv:
        write_atomically(args.csv, front.to_csv(index=False).encode(), "front CSV")  # never a partial file
        print(f"wrote {args.csv}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from nastools.export import export_subnet

    supernet, evaluator, table, objectives = _stored_search(
        args.store, args.search_id, args.supernet, args.data_dir
    )
    if args.arch:
        if args.by is not None:
            raise ValueError("--by chooses what --rank ranks by; with --arch, drop --by")
        key = args.arch
    else:
        front, ranked_by = _ranked_front(table, objectives, args.by)
        if not 0 <= args.rank < len(front):
            raise ValueError(
                f"--rank {args.rank}: the front of {args.search_id!r} has {len(front)} sub-networks"
            )
        key = front["arch"].iloc[args.rank]
        print(f"rank {args.rank} of the {len(front)} on the front of {args.search_id!r}, by {ranked_by}")
    written = export_subnet(
        supernet, supernet.space.from_key(key), args.out, formats=args.formats, store=evaluator.store
    )
    for path in written:
        print(f"wrote {path}")
    return 0


@contextlib.contextmanager
def _warnings_as_lines(verb: str) -> Iterator[None]:
    """Show each warning raised inside as one line on stderr: ``nastools VERB: warning: ...``."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"nastools {verb}: warning: {str(message).splitlines()[0]}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def _print(table) -> None:
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.max_colwidth", 60):
        print(table.round(4).to_string(index=False))


def main(argv: Sequence[str] | None = None) -> int:
    """Run a verb; argument problems, failures and Ctrl+C end in one line on stderr (exit 2, 1, 130)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _DELEGATED:  # their own command lines, options and --help included
        module, function = _DELEGATED[argv[0]]
        try:
            result = getattr(importlib.import_module(module), function)(argv[1:])
        except KeyboardInterrupt:
            return _interrupted(argv[0], None)
        except (ValueError, OSError) as error:  # one its own main let through (a StoreError: a full disk)
            print(f"nastools {argv[0]}: error: {str(error).splitlines()[0]}", file=sys.stderr)
            return 1
        return result if isinstance(result, int) else 0
    parser = _parser()
    args = parser.parse_args(argv)
    if args.verb == "search":
        try:
            _objectives(args.objectives)
            _options(args.option)
        except argparse.ArgumentTypeError as error:
            parser.error(str(error))
    try:  # before any work: an output that cannot be written is an argument error
        if args.verb == "front" and args.csv:
            check_output_file(args.csv, "--csv")
        if args.verb == "export":
            check_output_dir(args.out, "--out")
    except OSError as error:
        parser.error(str(error))
    try:
        return {"search": _search, "measure": _measure, "front": _front, "export": _export}[args.verb](args)
    except (ValueError, OSError, argparse.ArgumentTypeError) as error:  # OSError: names its path
        print(f"nastools {args.verb}: error: {str(error).splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return _interrupted(args.verb, args.store if args.verb in ("search", "measure") else None)


def _interrupted(verb: str, store: str | None) -> int:
    """Ctrl+C: one line instead of a traceback, and the shell's status for SIGINT (130)."""
    kept = f"; everything measured is in {store}: run the same command to resume" if store else ""
    print(f"nastools {verb}: interrupted{kept}", file=sys.stderr)
    return 130


if __name__ == "__main__":
    sys.exit(main())
