"""Sample efficiency: hypervolume vs number of validations of every search tactic, several seeds.

A table of problems (``--problem``), each a supernet, objectives, and the other cost that warm start
and PopDB take their source search from; any supernet by name joins with ``--supernet`` (with
``--objectives`` and ``--source``, e.g. a user's ``"tinylm.supernet:make_supernet"``):

* ``digits-macs``: the embedded MobileNetV3, measured top-1 vs MACs (source: parameters).
* ``digits-latency``: the embedded MobileNetV3, measured top-1 vs measured ``cpu-t1-b1`` latency.
* ``resnet-macs``: the embedded ResNet, measured top-1 vs MACs (source: parameters).
* ``ofa-macs`` / ``ofa-note10``: OFA MobileNetV3 w1.2, surrogate top-1 (OFA's accuracy predictor) vs
  MACs / the Note10 look-up-table latency (``--data-dir``: a folder laid out like ../shared/data).

Tactics are built by :func:`nastools.experiments.build_tactic`, exactly as the notebooks build them:
random, validation-only NSGA-II, full search, warm-started ConcurrentNAS (from the best population
of a ridge ConcurrentNAS search of half the budget on the problem's other cost), ConcurrentNAS
(``concurrent``: ridge, the paper's; ``concurrent-auto``: ridge or gradient boosting by cross-validation,
the library default), ConcurrentNAS on the PopDB space of that source search, and WeakNAS; not run
by default: ``popdb-topup`` (PopDB with ``min_new``) and ``popdb-keep-r`` (the same, resolution kept).

Every validation and every search is in ``benchmarks/cache/<supernet>.sqlite``: a rerun skips the
finished searches and resumes the others; seeds can be split over processes (``--first-seed 3
--seeds 2``). Traces and summaries are computed from that store; only the summaries are committed
(``benchmarks/results/sample_efficiency/<problem>/summary-<profile>-b<budget>.{md,csv,png}``).

    python benchmarks/sample_efficiency.py --problem digits-macs --profile quick
    python benchmarks/sample_efficiency.py --problem ofa-macs --profile full --data-dir ../shared/data
    python benchmarks/sample_efficiency.py --supernet tinylm.supernet:make_supernet --name tinylm-macs \\
        --objectives perplexity:min,macs:min --source perplexity:min,params:min
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from _common import RESULTS, machine_header
from tqdm.auto import tqdm

from nastools import analysis
from nastools.experiments import TacticSettings, build_tactic, open_experiment, plotting, run_recorded
from nastools.objectives import parse_objectives
from nastools.search import best_population, popdb_space

CACHE = Path(__file__).resolve().parent / "cache"


@dataclass(frozen=True)
class Problem:
    """A benchmark problem: the supernet, its objectives, the source search's objectives."""

    supernet: str
    objectives: dict
    source: dict
    needs_data: bool = False


@dataclass(frozen=True)
class Variant:
    """One row of the comparison: a tactic kind and how it differs from the shared settings."""

    kind: str
    predictor: str | None = None
    start: str | None = None  # "warm": best population of the source search; "popdb": its PopDB space
    min_new: bool = False
    keep: tuple[str, ...] = ()


PROBLEMS = {
    "digits-macs": Problem("digits-mbv3", {"top1": "max", "macs": "min"}, {"top1": "max", "params": "min"}),
    "digits-latency": Problem(
        "digits-mbv3", {"top1": "max", "latency_ms@cpu-t1-b1": "min"}, {"top1": "max", "macs": "min"}
    ),
    "resnet-macs": Problem("digits-resnet", {"top1": "max", "macs": "min"}, {"top1": "max", "params": "min"}),
    "ofa-macs": Problem(
        "ofa-mbv3-w1.2", {"top1": "max", "macs": "min"}, {"top1": "max", "latency_ms@lut-note10": "min"}, True
    ),
    "ofa-note10": Problem(
        "ofa-mbv3-w1.2", {"top1": "max", "latency_ms@lut-note10": "min"}, {"top1": "max", "macs": "min"}, True
    ),
}
VARIANTS = {
    "random": Variant("random"),
    "nsga2": Variant("nsga2"),
    "full": Variant("full"),
    "warm": Variant("warm-start", start="warm"),
    "concurrent": Variant("concurrent", predictor="ridge"),
    "concurrent-auto": Variant("concurrent"),
    "popdb": Variant("concurrent", start="popdb"),
    "weaknas": Variant("weaknas"),
    "popdb-topup": Variant("concurrent", start="popdb", min_new=True),
    "popdb-keep-r": Variant("concurrent", start="popdb", min_new=True, keep=("r",)),
}
DEFAULT_VARIANTS = ("random", "nsga2", "full", "warm", "concurrent", "concurrent-auto", "popdb", "weaknas")
PROFILES = {
    # CI-sized: one seed, 100 validations
    "quick": (
        100,
        1,
        TacticSettings(
            pop_size=20, n_gen=100, n_initial=40, full_n_gen=200, weaknas_pool_size=2000, weaknas_top_k=200
        ),
    ),
    # the embedded supernets at the scale a session here affords (a validation costs ~1 s on one core)
    "embedded": (
        200,
        5,
        TacticSettings(
            pop_size=25,
            n_gen=300,
            concurrent_pop_size=20,
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
            concurrent_pop_size=20,
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


def parse_spec(text: str) -> dict:
    """``"top1:max,macs:min"`` to ``{"top1": "max", "macs": "min"}``."""
    spec = {}
    for item in text.split(","):
        label, sep, direction = item.strip().rpartition(":")
        if not sep:
            raise ValueError(f"objective {item!r}: write label:direction, e.g. top1:max")
        spec[label] = direction
    return spec


class Benchmark:
    """One problem at one profile and budget: runs its searches and summarises them from the store."""

    def __init__(self, name: str, problem: Problem, profile: str, budget: int, data_dir: str | None) -> None:
        self.name, self.problem, self.profile = name, problem, profile
        default_budget, self.default_seeds, self.settings = PROFILES[profile]
        self.budget = budget or default_budget
        self.tag = f"{profile}-b{self.budget}"
        cache_name = problem.supernet.replace(":", "_").replace("/", "_")
        self.exp = open_experiment(
            name,
            RESULTS / "sample_efficiency",
            problem.supernet,
            data_dir=data_dir,
            store=CACHE / f"{cache_name}.sqlite",
            progress=False,
        )
        self.objectives = self.exp.objectives(problem.objectives)
        self.source = self.exp.objectives(problem.source)
        self.indicator = self.exp.indicator(self.objectives)

    def search_id(self, variant: str, seed: int) -> str:
        return f"{self.name}-{variant}-{self.tag}-s{seed}"

    def finished(self, search_id: str) -> bool:
        store = self.exp.store
        return store.has_search(search_id) and store.search(search_id)["finished"] is not None

    def _run(self, search_id: str, tactic) -> None:
        if not self.finished(search_id):
            run_recorded(tactic, self.exp.evaluator, search_id, progress=True)

    def _source(self, seed: int) -> str:
        """The ridge ConcurrentNAS search of half the budget on the other cost (warm start, PopDB)."""
        search_id = self.search_id("source", seed)
        settings = replace(self.settings, predictor="ridge")
        tactic = build_tactic(
            "concurrent",
            self.exp.space,
            self.source,
            self.budget // 2,
            settings,
            seed=seed,
            exact=self.exp.evaluator.free(self.source),
        )
        self._run(search_id, tactic)
        return search_id

    def run(self, variant_name: str, seed: int, budget: int | None = None, name: str | None = None) -> str:
        """Run (or resume, or skip when finished) one variant on one seed (stored as ``name``); its id."""
        variant = VARIANTS[variant_name]
        settings = self.settings
        if variant.predictor:
            settings = replace(settings, predictor=variant.predictor)
        if variant.min_new:
            settings = replace(settings, min_new=settings.concurrent_pop_size or settings.pop_size)
        space, initial = self.exp.space, None
        if variant.start is not None:
            source_id = self._source(seed)
            if variant.start == "warm":
                initial = best_population(self.exp.store, source_id, space)
            else:
                history = [space.from_key(key) for key in self.exp.store.history(source_id)["arch"]]
                space = popdb_space(space, history, 0.1, keep=variant.keep).space
        search_id = self.search_id(name or variant_name, seed)
        tactic = build_tactic(
            variant.kind,
            space,
            self.objectives,
            budget or self.budget,
            settings,
            seed=seed,
            exact=self.exp.evaluator.free(self.objectives),
            initial_archs=initial,
        )
        self._run(search_id, tactic)
        return search_id

    def traces(self, variants: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """From the store: the HV trace and validated values of every finished run, and run times."""
        store, space = self.exp.store, self.exp.space
        searches = store.searches()
        prefix = f"{self.name}-"
        suffix_seeds = {}
        for search_id in searches["search_id"]:
            for variant in [*variants, "reference"]:
                head = f"{prefix}{variant}-{self.tag}-s"
                if (
                    search_id.startswith(head)
                    and search_id[len(head) :].isdigit()
                    and self.finished(search_id)
                ):
                    suffix_seeds[search_id] = (variant, int(search_id[len(head) :]))
        traces, validated, runs = [], [], []
        grid = sorted({*range(10, 2 * self.budget + 1, 10), *CHECKPOINTS})
        for search_id, (variant, seed) in suffix_seeds.items():
            keys = store.validations(search_id)
            values = self.exp.evaluator.values([space.from_key(k) for k in keys], self.objectives)
            table = pd.DataFrame(values)
            curve = analysis.hypervolume_curve(
                table, self.indicator, [n for n in grid if n <= len(keys)] + [len(keys)]
            )
            traces.append(curve.drop_duplicates("n_validated").assign(tactic=variant, seed=seed))
            validated.append(table.assign(tactic=variant, seed=seed, arch=keys))
            finished = store.search(search_id)["finished"]
            runs.append(
                {
                    "tactic": variant,
                    "seed": seed,
                    **finished["seconds"],
                    "n_validated": finished["n_validated"],
                }
            )
        return (
            pd.concat(traces, ignore_index=True),
            pd.concat(validated, ignore_index=True),
            pd.DataFrame(runs),
        )

    def report(self, variants: list[str]) -> str:
        traces, validated, runs = self.traces(variants)
        labels = [o.label for o in self.objectives]
        reference_hv = self.indicator(validated.drop_duplicates("arch")[labels])
        tactic_traces = traces[traces.tactic != "reference"]
        checkpoints = sorted({n for n in CHECKPOINTS if n <= self.budget} | {self.budget})
        summary = analysis.summarize_traces(
            tactic_traces, reference_hv, fractions=(0.9, 0.95, 0.98), checkpoints=checkpoints
        )
        seconds = runs[runs.tactic != "reference"].groupby("tactic")[["measure", "search"]].mean()
        summary = summary.join(
            seconds.rename(columns={"measure": "measure_s", "search": "search_s"}), on="tactic"
        )
        ratio_lines = []
        for variant in ("concurrent", "concurrent-auto"):
            ratio = analysis.validation_ratio(tactic_traces, "weaknas", variant)
            if len(ratio) and np.isfinite(ratio.ratio).any():
                ratio_lines.append(
                    f"WeakNAS validations / `{variant}` validations to reach the HV WeakNAS ends with: "
                    f"per seed {[round(r, 2) for r in ratio.ratio]}, mean **{np.nanmean(ratio.ratio):.2f}** "
                    "(NaN: never)."
                )
        bounds = ", ".join(f"{k}: ({lo:.4g}, {hi:.4g})" for k, (lo, hi) in self.indicator.bounds.items())
        source = [o.label for o in self.source]
        text = "\n".join(
            [
                f"# Sample efficiency: {self.name}",
                "",
                machine_header(),
                "",
                f"Supernet `{self.problem.supernet}` ({self.exp.task_label}); profile `{self.tag}`; "
                f"objectives {labels}; source search for warm start and PopDB: {source}. "
                f"HV box {bounds} (declared metric bounds, else the smallest/largest sub-network +5%). "
                f"Reference HV **{reference_hv:.4f}** = HV of everything every run validated (the tactics "
                f"and an extended ridge ConcurrentNAS run of {2 * self.budget} validations). `val_to_p%`: "
                "mean validations to reach p% of it over the seeds that did (`reached_p%` of them); "
                "`hv@n`: mean (sd) HV after n validations; `measure_s`/`search_s`: mean wall seconds per "
                "run spent validating / deciding (compare them within one table only).",
                "",
                f"Settings: {self.settings.to_dict()}.",
                "",
                summary.round(4).to_markdown(index=False),
                "",
                *ratio_lines,
                "",
            ]
        )
        out = RESULTS / "sample_efficiency" / self.name
        out.mkdir(parents=True, exist_ok=True)
        (out / f"summary-{self.tag}.md").write_text(text)
        summary.to_csv(out / f"summary-{self.tag}.csv", index=False)
        grid = analysis.traces_on_grid(tactic_traces, sorted({*range(10, self.budget + 1, 10)}))
        figure = plotting.plot_hv_traces(grid, title=f"{self.name} ({self.tag})", reference=reference_hv)
        figure.savefig(out / f"summary-{self.tag}.png", dpi=110, bbox_inches="tight")
        return text


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
    parser.add_argument("--tactics", nargs="+", default=list(DEFAULT_VARIANTS), choices=sorted(VARIANTS))
    parser.add_argument("--seeds", type=int, help="number of seeds (profile default)")
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds run from here (split seeds over processes)"
    )
    parser.add_argument("--no-reference", action="store_true", help="skip the extended reference run")
    parser.add_argument("--budget", type=int, help="validations per run (profile default)")
    parser.add_argument(
        "--rerun", nargs="+", default=[], choices=sorted(VARIANTS), help="forget these runs first"
    )
    parser.add_argument("--report-only", action="store_true", help="only rewrite the summary from the store")
    parser.add_argument("--data-dir", help="folder of the public OFA files (the ofa-* problems)")
    args = parser.parse_args(argv)
    try:
        if args.supernet:
            if not (args.objectives and args.source and args.name):
                parser.error("--supernet needs --objectives, --source and --name")
            problem = Problem(args.supernet, parse_spec(args.objectives), parse_spec(args.source))
            name = args.name
        else:
            name = args.problem or "digits-macs"
            problem = PROBLEMS[name]
            if problem.needs_data and not args.data_dir:
                parser.error(f"{name} needs --data-dir, a folder laid out like ../shared/data")
        parse_objectives(problem.objectives)
        bench = Benchmark(name, problem, args.profile, args.budget, args.data_dir)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    seeds = range(args.first_seed, args.first_seed + (args.seeds or bench.default_seeds))
    for variant in args.rerun:
        for seed in seeds:
            if bench.exp.store.has_search(bench.search_id(variant, seed)):
                bench.exp.store.forget_search(bench.search_id(variant, seed))
    jobs = [(v, s) for s in seeds for v in args.tactics]
    if not args.report_only:
        for variant, seed in tqdm(jobs, desc=name, unit="run"):
            bench.run(variant, seed)
        if not args.no_reference:  # the extended ridge ConcurrentNAS run of twice the budget
            bench.run("concurrent", REFERENCE_SEED, budget=2 * bench.budget, name="reference")
    print(bench.report(args.tactics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
