"""Sample efficiency: hypervolume vs number of validations for every search tactic, several seeds.

Problems (``--problem``):

* ``digits-macs``: the embedded supernet, measured top-1 vs MACs (exact, computed).
* ``digits-latency``: the embedded supernet, measured top-1 vs measured ``cpu-t1-b1`` latency.
* ``ofa-macs``: OFA MobileNetV3 w1.2, surrogate top-1 (OFA's accuracy predictor) vs MACs.
* ``ofa-note10``: OFA MobileNetV3 w1.2 (the tables' width), surrogate top-1 vs Note10 look-up-table latency.

Tactics: random, validation-only NSGA-II, full search, warm-started ConcurrentNAS (from the best
population of a search for another cost: another hardware config, or parameters instead of MACs),
ConcurrentNAS (ridge; ``concurrent-auto``: ridge or gradient boosting chosen by cross-validation),
ConcurrentNAS on the PopDB space (built from that other search's history) and WeakNAS. Warm start
and PopDB use the default predictor (``auto``) like ``concurrent-auto``. Not run by default:
``popdb-topup``, PopDB with ``ConcurrentNAS(min_new=concurrent_pop_size)``, which validates a whole
population of new archs per iteration where plain ConcurrentNAS stalls in a small PopDB space, and
``popdb-keep-r``, the same with the input resolution left out of PopDB (``keep=("r",)``).
Every validation goes through the Evaluator into ``benchmarks/cache/<supernet>.sqlite`` (shared by
the problems on one supernet: top-1 measured for one is reused by the other), so a rerun reuses what
was measured; each finished (tactic, seed) trace is cached in
``benchmarks/results/sample_efficiency/<problem>/traces.csv`` and skipped on a rerun.

Reference hypervolume: the HV of the union of everything every run validated plus an extended
ConcurrentNAS run (``--reference-budget`` validations, seed 1000) -- the best front known.

    python benchmarks/sample_efficiency.py --problem ofa-macs --ofa-data ../shared/data/CompOFA
    python benchmarks/sample_efficiency.py --problem digits-macs --profile embedded  # 5 seeds x 200
"""

from __future__ import annotations

import argparse
import fcntl
import json
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from _common import RESULTS, machine_header
from tqdm.auto import tqdm

from nastools.evaluation import Evaluator
from nastools.lut import LatencyTable
from nastools.search import (
    ConcurrentNAS,
    EvolutionarySearch,
    FullSearch,
    HypervolumeIndicator,
    RandomSearch,
    WeakNAS,
    best_population,
    popdb_space,
    reference_bounds,
    run_tactic,
    summarize_traces,
    validations_to_reach,
)
from nastools.supernets import load_supernet

CACHE = Path(__file__).resolve().parent / "cache"

PROBLEMS = {
    # name: supernet, objectives, the other cost a warm start / PopDB source search optimises
    "digits-macs": ("digits-mbv3", {"top1": "max", "macs": "min"}, {"top1": "max", "params": "min"}),
    "digits-latency": (
        "digits-mbv3",
        {"top1": "max", "latency_ms@cpu-t1-b1": "min"},
        {"top1": "max", "macs": "min"},
    ),
    "ofa-macs": (
        "ofa-mbv3-w1.2",
        {"top1": "max", "macs": "min"},
        {"top1": "max", "latency_ms@lut-note10": "min"},
    ),
    "ofa-note10": (
        "ofa-mbv3-w1.2",
        {"top1": "max", "latency_ms@lut-note10": "min"},
        {"top1": "max", "macs": "min"},
    ),
}
TACTICS = ("random", "nsga2", "full", "warm", "concurrent", "concurrent-auto", "popdb", "weaknas")
#: Runs on the PopDB space of their source search
POPDB_RUNS = ("popdb", "popdb-topup", "popdb-keep-r")
#: PopDB runs whose ConcurrentNAS validates a whole population of new archs per iteration (min_new)
TOPUP_RUNS = ("popdb-topup", "popdb-keep-r")
#: Tactics run only when named in ``--tactics``
OPTIONAL_TACTICS = TOPUP_RUNS
#: Runs that are ConcurrentNAS searches (their search ids name the inner-search length)
CONCURRENT_RUNS = ("concurrent", "concurrent-auto", "warm", *POPDB_RUNS, "reference")
#: ConcurrentNAS runs with the paper's ridge predictor; the others choose ridge or boosting ("auto")
RIDGE_RUNS = ("concurrent", "reference")
PROFILES = {
    # CI-sized: one seed, 100 validations (about 20 minutes per embedded problem on 2 cores)
    "quick": {
        "budget": 100,
        "seeds": 1,
        "pop_size": 20,
        "concurrent_pop_size": 20,
        "n_gen": 100,
        "pool_size": 2000,
        "batch": 20,
    },
    # the embedded supernet at the scale a session here affords (a validation costs ~1 s on one core)
    "embedded": {
        "budget": 200,
        "seeds": 5,
        "pop_size": 25,
        "concurrent_pop_size": 20,
        "n_gen": 300,
        "pool_size": 5000,
        "batch": 25,
    },
    "full": {
        "budget": 1000,
        "seeds": 5,
        "pop_size": 50,
        "concurrent_pop_size": 20,
        "n_gen": 300,
        "pool_size": 10_000,
        "batch": 100,
    },
}


def exact_objectives(supernet, objectives, tables) -> dict:
    """Cheap exact objectives computed inside inner searches instead of predicted."""
    exact = {}
    if "macs" in objectives:
        exact["macs"] = lambda archs: [supernet.macs(a) for a in archs]
    if "params" in objectives:
        exact["params"] = lambda archs: [supernet.params(a) for a in archs]
    for name in objectives:
        key = name.partition("@")[2]
        if key in (tables or {}):
            table = LatencyTable.load(tables[key], name=key)
            exact[name] = lambda archs, table=table: [table.predict(a, supernet.net.config) for a in archs]
    return exact


def predictor_of(name: str) -> str:
    """The top-1 predictor a ConcurrentNAS run uses; warm start and PopDB name it in their search ids."""
    return "ridge" if name in RIDGE_RUNS else "auto"


def make_tactic(name, space, objectives, budget, hv, seed, settings, exact, initial=None):
    common = {"hypervolume": hv, "seed": seed}
    pop, batch = settings["pop_size"], settings["batch"]
    if name == "random":
        return RandomSearch(space, objectives, budget, batch_size=pop, **common)
    if name == "nsga2":
        return EvolutionarySearch(space, objectives, budget, pop_size=pop, **common)
    if name == "full":
        return FullSearch(
            space, objectives, budget, n_initial=2 * batch, pop_size=pop, n_gen=200, exact=exact, **common
        )
    if name in CONCURRENT_RUNS:
        return ConcurrentNAS(
            space,
            objectives,
            budget,
            pop_size=settings["concurrent_pop_size"],
            n_gen=settings["n_gen"],
            predictor=predictor_of(name),
            exact=exact,
            initial_archs=initial,
            min_new=settings["concurrent_pop_size"] if name in TOPUP_RUNS else 0,
            **common,
        )
    if name == "weaknas":
        return WeakNAS(
            space,
            objectives,
            budget,
            pool_size=settings["pool_size"],
            batch_size=batch,
            top_k=10 * batch,
            **common,
        )
    raise ValueError(f"unknown tactic {name!r}; choose from {TACTICS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problem", choices=sorted(PROBLEMS), default="digits-macs")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--tactics", nargs="+", default=list(TACTICS), choices=TACTICS + OPTIONAL_TACTICS)
    parser.add_argument("--seeds", type=int, help="number of seeds (profile default)")
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds run from here (split seeds over processes)"
    )
    parser.add_argument(
        "--no-reference", action="store_true", help="skip the extended reference run (run it in one process)"
    )
    parser.add_argument("--budget", type=int, help="validations per run (profile default)")
    parser.add_argument("--reference-budget", type=int, help="extended search budget (default 2x budget)")
    parser.add_argument(
        "--popdb-threshold", type=float, default=0.1, help="PopDB share below which values go"
    )
    parser.add_argument(
        "--rerun",
        nargs="+",
        default=[],
        choices=(*TACTICS, *OPTIONAL_TACTICS, "reference"),
        help="drop these tactics' cached runs of this profile and budget first (e.g. after a tactic changed)",
    )
    parser.add_argument("--report-only", action="store_true", help="only rewrite the summary from the cache")
    parser.add_argument("--ofa-data", help="folder with acc_predictor.pth and latency tables (OFA problems)")
    args = parser.parse_args()

    settings = dict(PROFILES[args.profile], popdb_threshold=args.popdb_threshold)
    profile_seeds = settings.pop("seeds")  # not a run setting: the summary counts the seeds that ran
    n_seeds = args.seeds or profile_seeds
    settings["budget"] = budget = args.budget or settings["budget"]
    supernet_name, objectives, source_objectives = PROBLEMS[args.problem]
    supernet = (
        load_supernet(supernet_name, ofa_data=args.ofa_data)
        if args.ofa_data
        else load_supernet(supernet_name)
    )
    CACHE.mkdir(exist_ok=True)
    tables = {"lut-note10": Path(args.ofa_data) / "latency_table@note10"} if args.ofa_data else None
    evaluator = Evaluator(supernet, CACHE / f"{supernet_name}.sqlite", progress=False, latency_tables=tables)
    files = ResultFiles(RESULTS / "sample_efficiency" / args.problem)
    bounds = reference_bounds(evaluator, objectives)
    hv = HypervolumeIndicator(objectives, bounds)
    space = supernet.space
    exact = exact_objectives(supernet, objectives, tables)
    exact_source = exact_objectives(supernet, source_objectives, tables)
    tag = f"{args.profile}-b{budget}"

    def done(tactic, seed):
        runs = files.read()["runs"]
        return not runs.empty and ((runs.tactic == tactic) & (runs.seed == seed) & (runs.tag == tag)).any()

    def record(tactic_name, seed, tactic):
        trace = tactic.trace_frame().assign(tactic=tactic_name, seed=seed, tag=tag)
        row = {
            "tactic": tactic_name,
            "seed": seed,
            "tag": tag,
            "n_validations": tactic.n_validations,
            "final_hv": trace.hypervolume.iloc[-1],
            "measure_s": round(tactic.seconds["measure"], 2),
            "search_s": round(tactic.seconds["search"], 2),
        }
        if isinstance(tactic, WeakNAS):
            row["best"] = json.dumps(tactic.best())
        validated = tactic.results().assign(tactic=tactic_name, seed=seed, tag=tag)
        files.append(traces=trace, runs=pd.DataFrame([row]), validated=validated)

    if args.rerun:
        files.drop(lambda frame: frame.tactic.isin(args.rerun) & (frame.tag == tag))
    seeds = range(args.first_seed, args.first_seed + n_seeds)
    jobs = [(t, s) for s in seeds for t in args.tactics]
    reference_budget = args.reference_budget or 2 * budget
    if not args.no_reference:
        jobs.append(("reference", 1000))
    for tactic_name, seed in tqdm(jobs, desc=args.problem, unit="run", disable=args.report_only):
        if args.report_only or done(tactic_name, seed):
            continue
        initial, run_space = None, space
        if tactic_name in ("warm", *POPDB_RUNS):
            source_id = (
                f"{args.problem}-source-{'-'.join(source_objectives)}-{tag}-g{settings['n_gen']}-s{seed}"
            )
            source = make_tactic(
                "concurrent", space, source_objectives, budget // 2, None, seed, settings, exact_source
            )
            run_tactic(source, evaluator, search_id=source_id, progress=False)
            if tactic_name == "warm":
                initial = best_population(evaluator.store, source_id, space)
            else:
                history = evaluator.store.history(source_id)
                run_space = popdb_space(
                    space,
                    [space.from_key(k) for k in history.arch],
                    threshold=args.popdb_threshold,
                    keep=("r",) if tactic_name == "popdb-keep-r" else (),
                ).space
        run_budget = reference_budget if tactic_name == "reference" else budget
        tactic = make_tactic(
            tactic_name, run_space, objectives, run_budget, hv, seed, settings, exact, initial
        )
        start = time.perf_counter()
        source_name = "-".join(source_objectives)
        if tactic_name in POPDB_RUNS:
            keep = "-keep-r" if tactic_name == "popdb-keep-r" else ""
            topup = "-topup" if tactic_name in TOPUP_RUNS else ""
            run_name = f"popdb{args.popdb_threshold}{keep}-{predictor_of(tactic_name)}{topup}-{source_name}"
        elif tactic_name == "warm":
            run_name = f"warm-{predictor_of(tactic_name)}-{source_name}"
        else:
            run_name = tactic_name
        if tactic_name in CONCURRENT_RUNS:
            run_name += f"-g{settings['n_gen']}"
        run_tactic(tactic, evaluator, search_id=f"{args.problem}-{run_name}-{tag}-s{seed}", progress=True)
        print(
            f"{tactic_name} seed {seed}: HV {tactic.trace[-1]['hypervolume']:.4f} "
            f"after {tactic.n_validations} validations, {time.perf_counter() - start:.0f} s"
        )
        record(tactic_name, seed, tactic)

    report(args.problem, tag, *files.read().values(), hv, budget, settings)


class ResultFiles:
    """A problem's ``traces.csv``, ``runs.csv`` and ``validated.csv``: several processes may append.

    Every change happens under an exclusive lock on ``.lock`` in the folder and re-reads the files
    first, so runs of one problem split over processes (``--first-seed``, ``--tactics``) all land.
    """

    NAMES = ("traces", "runs", "validated")

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def _locked(self):
        with open(self.folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _read(self) -> dict[str, pd.DataFrame]:
        paths = {name: self.folder / f"{name}.csv" for name in self.NAMES}
        return {name: pd.read_csv(p) if p.exists() else pd.DataFrame() for name, p in paths.items()}

    def _write(self, frames: dict[str, pd.DataFrame]) -> None:
        for name, frame in frames.items():
            frame.to_csv(self.folder / f"{name}.csv", index=False)

    def read(self) -> dict[str, pd.DataFrame]:
        """The three tables (empty frames for missing files), in :attr:`NAMES` order."""
        with self._locked():
            return self._read()

    def append(self, **rows: pd.DataFrame) -> None:
        """Append one finished run's rows to the named tables (nothing if that run is there already)."""
        key = ["tactic", "seed", "tag"]
        with self._locked():
            frames = self._read()
            runs = frames["runs"]
            if not runs.empty and len(runs.merge(rows["runs"][key], on=key)):
                return  # another process finished the same run first
            self._write({name: pd.concat([frames[name], rows[name]], ignore_index=True) for name in rows})

    def drop(self, rows) -> None:
        """Remove the rows where ``rows(frame)`` is true from every table."""
        with self._locked():
            self._write(
                {name: frame[~rows(frame)] for name, frame in self._read().items() if not frame.empty}
            )


def report(problem, tag, traces, runs, validated, hv, budget, settings) -> None:
    names = [o.name for o in hv.objectives]
    ours = validated[validated.tag == tag]
    reference_hv = hv(ours[names])
    tactic_traces = traces[(traces.tag == tag) & (traces.tactic != "reference")]
    checkpoints = sorted({n for n in (100, 250, 500, 1000) if n <= budget} | {budget})
    summary = summarize_traces(
        tactic_traces, reference_hv, fractions=(0.9, 0.95, 0.98), checkpoints=checkpoints
    )
    overhead = runs[runs.tag == tag].groupby("tactic")[["measure_s", "search_s"]].mean()
    summary = summary.join(overhead, on="tactic")

    ratio_text = ""
    for variant in ("concurrent", "concurrent-auto"):
        if not {"weaknas", variant} <= set(tactic_traces.tactic):
            continue
        ratios = []
        for _, group in tactic_traces.groupby("seed"):
            weak = group[group.tactic == "weaknas"]
            conc = group[group.tactic == variant]
            if weak.empty or conc.empty:
                continue
            target = weak.hypervolume.max()
            needed_weak = validations_to_reach(weak, target)
            needed_conc = validations_to_reach(conc, target)
            ratios.append(needed_weak / needed_conc if np.isfinite(needed_conc) else float("nan"))
        ratio_text += (
            f"WeakNAS validations / `{variant}` validations to reach the HV WeakNAS reaches with its "
            f"whole budget ({budget}): per seed {[round(r, 2) for r in ratios]}, mean "
            f"**{np.nanmean(ratios):.2f}** (NaN: never reached it).\n\n"
        )
    best = (
        runs[(runs.tag == tag) & runs.get("best", pd.Series(dtype=str)).notna()] if "best" in runs else None
    )
    best_text = ""
    if best is not None and len(best):
        best_text = "WeakNAS single best answer per seed: " + "; ".join(
            f"seed {r.seed}: {r.best}" for r in best.itertuples()
        )
    bounds = ", ".join(f"{k}: ({lo:.4g}, {hi:.4g})" for k, (lo, hi) in hv.bounds.items())
    text = "\n".join(
        [
            f"# Sample efficiency: {problem}",
            "",
            machine_header(),
            "",
            f"Profile `{tag}`; objectives {names}; HV box {bounds} (smallest/largest sub-network "
            "+5% margin, see `reference_bounds`). Reference HV "
            f"**{reference_hv:.4f}** = HV of everything every run (tactics and the extended "
            "ConcurrentNAS reference run) validated. `val_to_p%`: mean validations to reach p% of it over "
            "the seeds that did (`reached_p%` of them); `hv@n`: mean (sd) HV after n validations; "
            "`measure_s`/`search_s`: mean wall seconds per run spent validating / deciding.",
            "",
            f"Settings: {settings} (seeds: `n_seeds`); "
            "NSGA-II and random use `pop_size`, ConcurrentNAS `concurrent_pop_size` "
            "with `n_gen` inner generations (`concurrent`: ridge for top-1, as in the paper; "
            "`concurrent-auto`, `warm`, `popdb` and `popdb-topup`: ridge or gradient boosting by "
            "cross-validated Kendall tau at each refit, the library default; exact MACs or table latency; "
            "`popdb-topup` and `popdb-keep-r` validate at least `concurrent_pop_size` new archs per "
            "iteration, `popdb-keep-r` in a PopDB space that keeps every input resolution), full search "
            "2 x `batch` random archs then 200 generations, WeakNAS `pool_size`, `batch` per round, top "
            "10 x `batch`, gradient boosting; warm start and PopDB come from a ridge ConcurrentNAS "
            "search of half the budget for the problem's other cost (Note10 latency instead of MACs, "
            "MACs instead of latency; on the embedded supernet parameters instead of MACs).",
            "",
            summary.round(4).to_markdown(index=False),
            "",
            ratio_text,
            "",
            best_text,
            "",
        ]
    )
    out = RESULTS / "sample_efficiency" / problem
    (out / f"summary-{tag}.md").write_text(text)
    summary.to_csv(out / f"summary-{tag}.csv", index=False)
    print(text)


if __name__ == "__main__":
    main()
