"""The ``nastools`` command line: search, measure, front, export, notebooks, train, quickstart.

Arguments are parsed and checked before anything heavy is imported, so ``--help`` and argument
errors answer at once even on a busy machine; torch and the rest load only for a verb that runs.

Example::

    nastools measure --supernet digits-mbv3 --metrics top1 macs latency_ms --hardware cpu-t1-b1 --n-archs 4
    nastools search --supernet digits-mbv3 --objectives top1:max latency_ms@cpu-t1-b1:min
        --tactic concurrent --budget 100 --store results/cli.sqlite --search-id concurrent-s0
    nastools front --store results/cli.sqlite --search-id concurrent-s0
    nastools export --store results/cli.sqlite --search-id concurrent-s0 --rank 0 --out exported/
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

_DELEGATED = {
    "notebooks": ("nastools.experiments.runner", "main"),
    "train": ("nastools.training", "main"),
    "quickstart": ("nastools.experiments.quickstart", "main"),
}

_OBJECTIVES_HELP = "objectives as label:direction, e.g. top1:max latency_ms@cpu-t1-b1:min"


def _objectives(items: Sequence[str]) -> dict[str, str]:
    spec = {}
    for item in items:
        label, sep, direction = item.rpartition(":")
        if not sep or not label:
            raise argparse.ArgumentTypeError(f"objective {item!r}: write label:direction, e.g. top1:max")
        if direction not in ("min", "max"):
            raise argparse.ArgumentTypeError(
                f"objective {item!r}: the direction is min or max, got {direction!r}"
            )
        spec[label] = direction
    return spec


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

    search = verbs.add_parser("search", help="run a tactic, store every validation, print the front")
    supernet_options(search)
    search.add_argument("--objectives", nargs="+", required=True, help=_OBJECTIVES_HELP)
    search.add_argument("--tactic", default="concurrent", help="random, nsga2, full, concurrent, weaknas")
    search.add_argument("--budget", type=_positive, required=True, help="validations allowed")
    search.add_argument("--pop-size", type=_positive, default=20, help="population / batch size")
    search.add_argument(
        "--n-gen", type=_positive, default=100, help="inner-search generations (concurrent, full)"
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
        "--metrics", nargs="+", default=None, help="metric names (default: task metrics, macs, params)"
    )
    measure.add_argument(
        "--hardware", nargs="*", default=[], help="hardware keys for latency_ms, e.g. cpu-t1-b1"
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

    export = verbs.add_parser("export", help="write a chosen sub-network as PyTorch, TorchScript and ONNX")
    export.add_argument("--store", required=True)
    export.add_argument("--search-id", required=True)
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--rank", type=int, help="the front's n-th sub-network, by the first objective")
    which.add_argument("--arch", help="an arch key")
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


def _search(args: argparse.Namespace) -> int:
    from nastools.evaluation import Evaluator
    from nastools.search import TACTICS, best_population, make_tactic, run_tactic

    if args.tactic not in TACTICS:
        raise ValueError(f"unknown tactic {args.tactic!r}; choose one of {sorted(TACTICS)}")
    supernet = _load(args.supernet, args.data_dir)
    evaluator = Evaluator(supernet, args.store)
    objectives = _objectives(args.objectives)
    params = {"seed": args.seed}
    if args.tactic in ("nsga2", "concurrent", "full"):
        params["pop_size"] = args.pop_size
    if args.tactic in ("concurrent", "full"):
        params["n_gen"] = args.n_gen
        params["exact"] = evaluator.free(objectives)
    if args.tactic in ("random", "weaknas"):
        params["batch_size"] = args.pop_size
    if args.initial_search:
        params["initial_archs"] = best_population(evaluator.store, args.initial_search, supernet.space)
    tactic = make_tactic(args.tactic, supernet.space, objectives, args.budget, **params)
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
    table = wide(evaluator.measure(archs, args.metrics, args.hardware))
    _print(table)
    return 0


def _stored_search(store_path: str, search_id: str, supernet: str | None, data_dir: str | None):
    """The search's supernet, evaluator and results table (validated archs with their objectives)."""
    import pandas as pd

    from nastools.analysis import front_mask
    from nastools.evaluation import Evaluator
    from nastools.store import ResultStore
    from nastools.supernet import load_supernet

    store = ResultStore(store_path, read_only=True)
    record = store.search(search_id)
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
    evaluator = Evaluator(supernet, store, progress=False)
    objectives = record["config"]["objectives"]
    keys = store.validations(search_id)
    values = evaluator.values([supernet.space.from_key(k) for k in keys], objectives) if keys else {}
    table = pd.DataFrame({"arch": keys, **values})
    table["front"] = front_mask(table, objectives) if len(table) else []
    return supernet, evaluator, table, objectives


def _front(args: argparse.Namespace) -> int:
    _, _, table, objectives = _stored_search(args.store, args.search_id, args.supernet, args.data_dir)
    first = next(iter(objectives))
    front = (
        table[table["front"]].drop(columns="front").sort_values(first, ascending=objectives[first] == "min")
    )
    _print(front)
    if args.csv:
        front.to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from nastools.export import export_subnet

    supernet, evaluator, table, objectives = _stored_search(
        args.store, args.search_id, args.supernet, args.data_dir
    )
    if args.arch:
        key = args.arch
    else:
        first = next(iter(objectives))
        front = table[table["front"]].sort_values(first, ascending=objectives[first] == "min")
        if not 0 <= args.rank < len(front):
            raise ValueError(
                f"--rank {args.rank}: the front of {args.search_id!r} has {len(front)} sub-networks"
            )
        key = front["arch"].iloc[args.rank]
    written = export_subnet(
        supernet, supernet.space.from_key(key), args.out, formats=args.formats, store=evaluator.store
    )
    for path in written:
        print(f"wrote {path}")
    return 0


def _print(table) -> None:
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.max_colwidth", 60):
        print(table.round(4).to_string(index=False))


def main(argv: Sequence[str] | None = None) -> int:
    """Run a verb; argument problems and failures end in one line on stderr (exit status 2 or 1)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _DELEGATED:  # their own command lines, options and --help included
        module, function = _DELEGATED[argv[0]]
        result = getattr(importlib.import_module(module), function)(argv[1:])
        return result if isinstance(result, int) else 0
    parser = _parser()
    args = parser.parse_args(argv)
    if args.verb == "search":
        try:
            _objectives(args.objectives)
        except argparse.ArgumentTypeError as error:
            parser.error(str(error))
    try:
        return {"search": _search, "measure": _measure, "front": _front, "export": _export}[args.verb](args)
    except (ValueError, FileNotFoundError, argparse.ArgumentTypeError) as error:
        print(f"nastools {args.verb}: error: {str(error).splitlines()[0]}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
