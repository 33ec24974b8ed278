"""Sample efficiency: hypervolume vs number of validations of every search tactic, several seeds.

A table of problems (``--problem``), each a supernet (with its options), objectives, and the other
cost that warm start and PopDB take their source search from; any supernet by name joins with
``--supernet`` (with ``--objectives`` and ``--source``, e.g. a user's ``"tinylm.supernet:make_supernet"``):

* ``digits-macs``: the embedded MobileNetV3, measured top-1 vs MACs (source: parameters).
* ``digits-latency``: the embedded MobileNetV3, measured top-1 vs measured ``cpu-t1-b1`` latency.
* ``resnet-macs``: the embedded ResNet, measured top-1 vs MACs (source: parameters).
* ``ofa-macs`` / ``ofa-note10``: OFA MobileNetV3 w1.2 at one resolution, 224 px (45 choice
  parameters), surrogate top-1 (OFA's accuracy predictor) vs MACs / the Note10 look-up-table
  latency. The public files come from the data cache (``nastools data fetch ofa-predictor
  lut-note10``) or ``--data-dir`` (a folder laid out like ../shared/data); without either the
  problem is skipped with the fetch line.

Rows (``--tactics``) are tactic names of the registry (:func:`nastools.search.tactic_names`),
built by :func:`nastools.experiments.build_tactic`, exactly as the notebooks build them: a tactic
registered anywhere is a row. Two starts are benchmark logic on top: ``warm:NAME`` starts NAME from
the best population of a source search (ridge ConcurrentNAS, half the budget, on the problem's
other cost), ``popdb:NAME`` searches the PopDB space of that search's history; ``warm`` and
``popdb`` alone start ConcurrentNAS. By default: random, NSGA-II, the full search, ConcurrentNAS
(``concurrent``: the library's defaults; ``concurrent-paper``: the paper's Algorithm 1), warm-started
ConcurrentNAS, ConcurrentNAS on PopDB, WeakNAS, and the alternatives (Optuna, BoTorch, syne-tune),
each skipped with one line naming the install command where its library is missing. The GP-based
alternatives run at most ``BUDGET_CAPS`` validations (their own search cost forbids more).

Every validation and every search is in ``benchmarks/cache/<supernet>.sqlite``: a rerun skips the
finished searches (after checking that they were run with today's settings) and resumes the
others; seeds can be split over processes (``--first-seed 3 --seeds 2``). Traces and summaries are
computed from that store; only the summaries are committed
(``benchmarks/results/sample_efficiency/<problem>/summary-<profile>-b<budget>.{md,csv,png}``).

    python benchmarks/sample_efficiency.py --problem digits-macs --profile quick
    python benchmarks/sample_efficiency.py --problem ofa-macs --profile full --tactics concurrent optuna-tpe
    python benchmarks/sample_efficiency.py --supernet tinylm.supernet:make_supernet --name tinylm-macs \\
        --objectives perplexity:min,macs:min --source perplexity:min,params:min
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from _common import RESULTS, machine_header
from tqdm.auto import tqdm

from nastools import analysis
from nastools._tactic_names import BUILTIN_TACTICS, install_line
from nastools.datasets import data_home, datasets, file_status
from nastools.experiments import TacticSettings, build_tactic, open_experiment, plotting, run_recorded
from nastools.objectives import parse_objectives
from nastools.search import best_population, popdb_space, predictor_history, tactic_names
from nastools.supernet import load_supernet, supernet_options

CACHE = Path(__file__).resolve().parent / "cache"


@dataclass(frozen=True)
class Problem:
    """A benchmark problem: the supernet and its options, its objectives, the source search's objectives.

    Attributes:
        supernet: Any name :func:`~nastools.supernet.load_supernet` accepts.
        objectives: The searched objectives.
        source: The objectives of the source search that warm start and PopDB read.
        options: Options of the supernet's factory (e.g. ``resolutions=(224,)``).
        datasets: Public datasets (:func:`nastools.datasets.datasets`) it needs in the data cache
            when no ``--data-dir`` is given.
    """

    supernet: str
    objectives: dict
    source: dict
    options: dict = field(default_factory=dict)
    datasets: tuple[str, ...] = ()


_OFA = {"supernet": "ofa-mbv3-w1.2", "options": {"resolutions": (224,)}}
_OFA_DATA = ("ofa-predictor", "lut-note10")
PROBLEMS = {
    "digits-macs": Problem("digits-mbv3", {"top1": "max", "macs": "min"}, {"top1": "max", "params": "min"}),
    "digits-latency": Problem(
        "digits-mbv3", {"top1": "max", "latency_ms@cpu-t1-b1": "min"}, {"top1": "max", "macs": "min"}
    ),
    "resnet-macs": Problem("digits-resnet", {"top1": "max", "macs": "min"}, {"top1": "max", "params": "min"}),
    "ofa-macs": Problem(
        objectives={"top1": "max", "macs": "min"},
        source={"top1": "max", "latency_ms@lut-note10": "min"},
        datasets=_OFA_DATA,
        **_OFA,
    ),
    "ofa-note10": Problem(
        objectives={"top1": "max", "latency_ms@lut-note10": "min"},
        source={"top1": "max", "macs": "min"},
        datasets=_OFA_DATA,
        **_OFA,
    ),
}
#: Starts a row may put before a tactic name (``warm:NAME``, ``popdb:NAME``; alone: ConcurrentNAS).
STARTS = ("warm", "popdb")
DEFAULT_ROWS = (
    "random",
    "nsga2",
    "full",
    "warm",
    "concurrent-paper",
    "concurrent",
    "popdb",
    "weaknas",
    *(name for name, entry in BUILTIN_TACTICS.items() if entry.extra is not None),
)
#: Validations at most per tactic whose own search cost forbids the profile's budget: the GP-based
#: alternatives, whose model fit and acquisition grow with the cube of the validations (BoTorch
#: spends about 5 CPU seconds per validation at 250 where ConcurrentNAS spends 0.15).
BUDGET_CAPS = {"botorch-qnehvi": 250, "optuna-gp": 250, "synetune-ehvi": 250}
#: The PopDB rows cluster the paper's history: a 100,000-sample NSGA-II on predictors fitted to the
#: source search's validations (HDBSCAN on a seeded subsample of 10,000, see popdb_space).
POPDB_SAMPLES = 100_000
#: ConcurrentNAS runs with its own defaults in every profile (batches of 10, 50 generations on the
#: predictors): the profiles' pop_size and n_gen are the other tactics'.
CONCURRENT_POP_SIZE, CONCURRENT_N_GEN = 10, 50
PROFILES = {
    # CI-sized: one seed, 100 validations
    "quick": (
        100,
        1,
        TacticSettings(
            pop_size=20,
            n_gen=100,
            concurrent_pop_size=CONCURRENT_POP_SIZE,
            concurrent_n_gen=CONCURRENT_N_GEN,
            n_initial=40,
            full_n_gen=200,
            weaknas_pool_size=2000,
            weaknas_top_k=200,
        ),
    ),
    # the embedded supernets at the scale a session here affords (a validation costs ~1 s on one core)
    "embedded": (
        200,
        5,
        TacticSettings(
            pop_size=25,
            n_gen=300,
            concurrent_pop_size=CONCURRENT_POP_SIZE,
            concurrent_n_gen=CONCURRENT_N_GEN,
            n_initial=50,
            full_n_gen=200,
            weaknas_pool_size=5000,
            weaknas_top_k=250,
        ),
    ),
    # the paper's scale
    "full": (
        1000,
        5,
        TacticSettings(
            pop_size=50,
            n_gen=300,
            concurrent_pop_size=CONCURRENT_POP_SIZE,
            concurrent_n_gen=CONCURRENT_N_GEN,
            n_initial=200,
            full_n_gen=200,
            weaknas_pool_size=10_000,
            weaknas_top_k=1000,
            weaknas_batch_size=100,
        ),
    ),
}
REFERENCE_SEED = 1000
CHECKPOINTS = (100, 250, 500, 1000)
#: The rows WeakNAS's validations are compared with (the paper's headline ratio).
RATIO_ROWS = ("concurrent", "concurrent-paper")


def parse_spec(text: str) -> dict:
    """``"top1:max,macs:min"`` to ``{"top1": "max", "macs": "min"}``."""
    spec = {}
    for item in text.split(","):
        label, sep, direction = item.strip().rpartition(":")
        if not sep:
            raise ValueError(f"objective {item!r}: write label:direction, e.g. top1:max")
        spec[label] = direction
    return spec


def parse_row(row: str) -> tuple[str | None, str]:
    """A row as ``(start, tactic name)``, e.g. ``"warm"`` as ``("warm", "concurrent")``.

    Raises:
        ValueError: An unknown start or tactic name (the known ones are listed).
    """
    start, sep, name = row.rpartition(":")
    if not sep:
        start, name = (row, "concurrent") if row in STARTS else (None, row)
    elif start not in STARTS:
        raise ValueError(f"row {row!r}: the start is one of {list(STARTS)}, e.g. warm:{name}")
    if name not in tactic_names():
        raise ValueError(
            f"row {row!r}: unknown tactic {name!r}; choose one of {tactic_names()} or {list(STARTS)}"
        )
    return start, name


def missing_data(problem: Problem, data_dir: str | None) -> list[str]:
    """The datasets ``problem`` needs that the data cache lacks (none with a data folder given)."""
    if data_dir is not None or os.environ.get("NASTOOLS_OFA_DATA"):
        return []
    known = datasets()
    return [name for name in problem.datasets if any(file_status(f) != "verified" for f in known[name].files)]


def skip_line(row: str, error: ImportError) -> str:
    """One line for a row whose library is missing, naming the install command."""
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    line = install_line(parse_row(row)[1])
    return f"{row}: skipped, {message}" + ("" if line is None or line in message else f" ({line})")


class Benchmark:
    """One problem at one profile and budget: runs its searches and summarises them from the store."""

    def __init__(self, name: str, problem: Problem, profile: str, budget: int, data_dir: str | None) -> None:
        self.name, self.problem, self.profile = name, problem, profile
        default_budget, self.default_seeds, self.settings = PROFILES[profile]
        self.budget = budget or default_budget
        self.tag = f"{profile}-b{self.budget}"
        cache_name = problem.supernet.replace(":", "_").replace("/", "_")
        options = dict(problem.options)
        accepted = supernet_options(problem.supernet)  # None: a factory that takes any option
        if data_dir is not None and (accepted is None or "data_dir" in accepted):
            options["data_dir"] = data_dir
        self.exp = open_experiment(
            name,
            RESULTS / "sample_efficiency",
            load_supernet(problem.supernet, **options),
            store=CACHE / f"{cache_name}.sqlite",
            progress=False,
        )
        self.objectives = self.exp.objectives(problem.objectives)
        self.source = self.exp.objectives(problem.source)
        self.indicator = self.exp.indicator(self.objectives)

    def search_id(self, row: str, seed: int) -> str:
        return f"{self.name}-{row}-{self.tag}-s{seed}"

    def budget_of(self, row: str) -> int:
        """The row's validations: the profile's budget, or its tactic's cap (:data:`BUDGET_CAPS`)."""
        return min(self.budget, BUDGET_CAPS.get(parse_row(row)[1], self.budget))

    def finished(self, search_id: str) -> bool:
        store = self.exp.store
        return store.has_search(search_id) and store.search(search_id)["finished"] is not None

    def _run(self, search_id: str, tactic) -> None:
        """Run the search, or skip it when it is finished with the settings of ``tactic``."""
        if not self.finished(search_id):
            run_recorded(tactic, self.exp.evaluator, search_id, progress=True)
            return
        store = self.exp.store  # the store's own check of the settings (an error when they differ)
        try:
            store.start_search(search_id, self.exp.supernet.supernet_id, tactic.name, tactic.config())
        except ValueError as error:
            raise ValueError(f"{error}; or forget it with --rerun") from None
        store.release_search(search_id)

    def _source(self, seed: int) -> str:
        """The ridge ConcurrentNAS search of half the budget on the other cost (warm start, PopDB)."""
        search_id = self.search_id("source", seed)
        tactic = build_tactic(
            "concurrent-ridge",
            self.exp.space,
            self.source,
            self.budget // 2,
            self.settings,
            seed=seed,
            exact=self.exp.evaluator.free(self.source),
        )
        self._run(search_id, tactic)
        return search_id

    def run(self, row: str, seed: int, budget: int | None = None, name: str | None = None) -> str:
        """Run (or resume, or skip when finished) one row on one seed (stored as ``name``); its id.

        Raises:
            ImportError: The row's tactic needs a library that is not installed.
        """
        start, tactic_name = parse_row(row)
        space, initial = self.exp.space, None
        if start is not None:
            source_id = self._source(seed)
            if start == "warm":
                initial = best_population(self.exp.store, source_id, space)
            else:
                validated = [space.from_key(key) for key in self.exp.store.validations(source_id)]
                values = self.exp.evaluator.values(validated, self.source)  # stored: nothing is measured
                history = predictor_history(
                    space,
                    self.source,
                    validated,
                    values,
                    n_samples=POPDB_SAMPLES,
                    exact=self.exp.evaluator.free(self.source),
                    seed=seed,
                )
                space = popdb_space(space, history, seed=seed).space
        search_id = self.search_id(name or row, seed)
        tactic = build_tactic(
            tactic_name,
            space,
            self.objectives,
            budget or self.budget_of(row),
            self.settings,
            seed=seed,
            exact=self.exp.evaluator.free(self.objectives),
            initial_archs=initial,
            shared={"reference_point": self.indicator.bounds},  # BoTorch's: the HV box's worst corner
        )
        self._run(search_id, tactic)
        return search_id

    def traces(self, rows: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """From the store: the HV trace and validated values of every finished run, and its seconds."""
        store, space = self.exp.store, self.exp.space
        found = {}
        for search_id in store.searches()["search_id"]:
            for row in [*rows, "reference"]:
                head = f"{self.name}-{row}-{self.tag}-s"
                if (
                    search_id.startswith(head)
                    and search_id[len(head) :].isdigit()
                    and self.finished(search_id)
                ):
                    found[search_id] = (row, int(search_id[len(head) :]))
        traces, validated, runs = [], [], []
        grid = sorted({*range(10, 2 * self.budget + 1, 10), *CHECKPOINTS})
        for search_id, (row, seed) in found.items():
            keys = store.validations(search_id)
            values = self.exp.evaluator.values([space.from_key(k) for k in keys], self.objectives)
            table = pd.DataFrame(values)
            curve = analysis.hypervolume_curve(
                table, self.indicator, [n for n in grid if n <= len(keys)] + [len(keys)]
            )
            traces.append(curve.drop_duplicates("n_validated").assign(tactic=row, seed=seed))
            validated.append(table.assign(tactic=row, seed=seed, arch=keys))
            finished = store.search(search_id)["finished"]
            seconds = {"measure": np.nan, "search": np.nan, "search_cpu": np.nan, **finished["seconds"]}
            runs.append({"tactic": row, "seed": seed, **seconds, "n_validated": finished["n_validated"]})
        return (
            pd.concat(traces, ignore_index=True),
            pd.concat(validated, ignore_index=True),
            pd.DataFrame(runs),
        )

    def _capped(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` (columns tactic, n_validated, ...) without the points past a row's cap."""
        caps = frame["tactic"].map(lambda row: self.budget_of(row) if row != "reference" else np.inf)
        return frame[frame["n_validated"] <= caps]

    def report(self, rows: list[str], skipped: dict[str, str] | None = None) -> str:
        traces, validated, runs = self.traces(rows)
        labels = [o.label for o in self.objectives]
        reference_hv = self.indicator(validated.drop_duplicates("arch")[labels])
        tactic_traces = traces[traces.tactic != "reference"]
        checkpoints = sorted({n for n in CHECKPOINTS if n <= self.budget} | {self.budget})
        summary = analysis.summarize_traces(
            tactic_traces, reference_hv, fractions=(0.9, 0.95, 0.98), checkpoints=checkpoints
        )
        for n in checkpoints:  # a capped row has no HV past its cap (its trace would stay flat there)
            beyond = summary["tactic"].map(self.budget_of) < n
            summary.loc[beyond, [f"hv@{n}", f"hv@{n}_sd"]] = np.nan
        runs = runs[runs.tactic != "reference"].assign(
            search_s_per_val=lambda r: r.search / r.n_validated,
            search_cpu_s_per_val=lambda r: r.search_cpu / r.n_validated,
        )
        overhead = runs.groupby("tactic")[["measure", "search_s_per_val", "search_cpu_s_per_val"]].mean()
        summary = summary.join(overhead.rename(columns={"measure": "measure_s"}), on="tactic")
        ratio_lines = []
        for row in RATIO_ROWS:
            ratio = analysis.validation_ratio(tactic_traces, "weaknas", row)
            if len(ratio) and np.isfinite(ratio.ratio).any():
                ratio_lines.append(
                    f"WeakNAS validations / `{row}` validations to reach the HV WeakNAS ends with: "
                    f"per seed {[round(r, 2) for r in ratio.ratio]}, mean **{np.nanmean(ratio.ratio):.2f}** "
                    "(NaN: never)."
                )
        bounds = ", ".join(f"{k}: ({lo:.4g}, {hi:.4g})" for k, (lo, hi) in self.indicator.bounds.items())
        caps = ", ".join(f"`{name}` {cap}" for name, cap in BUDGET_CAPS.items())
        not_run = [f"- {line}" for line in (skipped or {}).values()]
        short = runs[runs.n_validated < runs.tactic.map(self.budget_of)]
        ended = [  # a tactic with nothing more to propose, e.g. a library that stalled on repeats
            f"- `{r.tactic}` seed {r.seed}: {r.n_validated} of {self.budget_of(r.tactic)} validations"
            for r in short.itertuples()
        ]
        text = "\n".join(
            [
                f"# Sample efficiency: {self.name}",
                "",
                machine_header(),
                "",
                f"Supernet `{self.problem.supernet}` {self.problem.options or ''} ({self.exp.task_label}); "
                f"profile `{self.tag}`; objectives {labels}; source search for warm start and PopDB: "
                f"{[o.label for o in self.source]}. HV box {bounds} (declared metric bounds, else the "
                f"smallest/largest sub-network +5%). Reference HV **{reference_hv:.4f}** = HV of everything "
                f"every run validated (the tactics and an extended ridge ConcurrentNAS run of "
                f"{2 * self.budget} validations). `val_to_p%`: mean validations to reach p% of it over the "
                "seeds that did (`reached_p%` of them); `hv@n`: mean ± sd HV after n validations; "
                "`measure_s`: mean wall seconds per run spent validating; `search_s_per_val` / "
                "`search_cpu_s_per_val`: wall / CPU seconds per validation spent deciding what to validate "
                "(the search overhead; compare within one table only).",
                "",
                f"Budget caps (validations at most; their own search cost grows with the cube of the "
                f"validations): {caps}; their `hv@n` past the cap is blank.",
                "",
                f"Settings: {self.settings.to_dict()}.",
                "",
                _markdown(summary, checkpoints),
                "",
                *ratio_lines,
                *(["", "Not run here:", *not_run] if not_run else []),
                *(["", "Ended short of the budget (nothing more to propose):", *ended] if ended else []),
                "",
            ]
        )
        out = RESULTS / "sample_efficiency" / self.name
        out.mkdir(parents=True, exist_ok=True)
        (out / f"summary-{self.tag}.md").write_text(text)
        summary.to_csv(out / f"summary-{self.tag}.csv", index=False)
        grid = self._capped(analysis.traces_on_grid(tactic_traces, sorted({*range(10, self.budget + 1, 10)})))
        figure = plotting.plot_hv_traces(grid, title=f"{self.name} ({self.tag})", reference=reference_hv)
        figure.savefig(out / f"summary-{self.tag}.png", dpi=110, bbox_inches="tight")
        return text


def _markdown(summary: pd.DataFrame, checkpoints: list[int]) -> str:
    """The summary as a markdown table, each ``hv@n`` as ``mean ± sd``."""
    table = summary.round(4)
    for n in checkpoints:
        mean, sd = summary[f"hv@{n}"], summary[f"hv@{n}_sd"]
        table[f"hv@{n}"] = [
            f"{m:.4f} ± {s:.4f}" if np.isfinite(m) else "" for m, s in zip(mean, sd, strict=True)
        ]
    return table.drop(columns=[f"hv@{n}_sd" for n in checkpoints]).to_markdown(index=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--problem", choices=sorted(PROBLEMS), help="a problem of the table (default digits-macs)"
    )
    parser.add_argument(
        "--supernet", help="any supernet by name instead of a problem (with --objectives, --source)"
    )
    parser.add_argument("--objectives", help="for --supernet: e.g. perplexity:min,macs:min")
    parser.add_argument("--source", help="for --supernet: the warm start / PopDB source objectives")
    parser.add_argument("--name", help="for --supernet: the problem's name in ids and result folders")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument(
        "--tactics",
        nargs="+",
        default=list(DEFAULT_ROWS),
        metavar="ROW",
        help=f"registry names, each may follow warm: or popdb: (default: {' '.join(DEFAULT_ROWS)})",
    )
    parser.add_argument("--seeds", type=int, help="number of seeds (profile default)")
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds run from here (split seeds over processes)"
    )
    parser.add_argument("--no-reference", action="store_true", help="skip the extended reference run")
    parser.add_argument("--budget", type=int, help="validations per run (profile default)")
    parser.add_argument("--rerun", nargs="+", default=[], metavar="ROW", help="forget these runs first")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the summary from the store")
    parser.add_argument(
        "--data-dir", help="folder of the public OFA files (default: the data cache, `nastools data fetch`)"
    )
    args = parser.parse_args(argv)
    try:
        for row in [*args.tactics, *args.rerun]:
            parse_row(row)
        if args.supernet:
            if not (args.objectives and args.source and args.name):
                parser.error("--supernet needs --objectives, --source and --name")
            problem = Problem(args.supernet, parse_spec(args.objectives), parse_spec(args.source))
            name = args.name
        else:
            name = args.problem or "digits-macs"
            problem = PROBLEMS[name]
            if missing := missing_data(problem, args.data_dir):
                print(
                    f"{name}: skipped, the data cache ({data_home()}) lacks {', '.join(missing)}: fetch them "
                    f"with `nastools data fetch {' '.join(missing)}`, or pass --data-dir"
                )
                return 0
        parse_objectives(problem.objectives)
        bench = Benchmark(name, problem, args.profile, args.budget, args.data_dir)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error).splitlines()[0])
    seeds = range(args.first_seed, args.first_seed + (args.seeds or bench.default_seeds))
    for row in args.rerun:
        for seed in seeds:
            if bench.exp.store.has_search(bench.search_id(row, seed)):
                bench.exp.store.forget_search(bench.search_id(row, seed))
    skipped: dict[str, str] = {}
    if not args.report_only:
        jobs = [(row, seed) for seed in seeds for row in args.tactics]
        for row, seed in tqdm(jobs, desc=name, unit="run"):
            if row in skipped:
                continue
            try:
                bench.run(row, seed)
            except ImportError as error:  # an alternative whose library is not installed
                skipped[row] = skip_line(row, error)
                tqdm.write(skipped[row])
        if not args.no_reference:  # the extended ridge ConcurrentNAS run of twice the budget
            bench.run("concurrent-ridge", REFERENCE_SEED, budget=2 * bench.budget, name="reference")
    print(bench.report([row for row in args.tactics if row not in skipped], skipped))
    return 0


if __name__ == "__main__":
    sys.exit(main())
