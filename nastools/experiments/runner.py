"""Run the experiment notebooks headless with papermill, in order, on a parameter profile.

``python -m nastools.experiments.runner --profile smoke --out-dir results/smoke`` executes
``notebooks/0*.ipynb`` one after the other. Each gets the profile's ``common`` parameters (those
it declares) and its own section, plus ``out_dir``; its executed copy and its files land in
``<out-dir>/<notebook>/``, and
all of them share the measurement store ``<out-dir>/results.sqlite`` (so a rerun, or a later
notebook, reuses what was measured). ``<out-dir>/notebooks_run.json`` records each notebook's
wall time and status. ``make`` runs the smoke profile; ``make notebooks PROFILE=full`` the paper's
setting and scale (OFA MobileNetV3, which needs the public OFA files: ``--set data_dir=...``).

A profile (``notebooks/params/<name>.yaml``)::

    common:              # passed to every notebook that declares the parameter
      supernet: digits-mbv3
      seed: 0
    notebooks:           # per notebook; a name the notebook does not declare is an error
      00_quickstart:
        budget: 24
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import os
import resource
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "NOTEBOOKS_DIR",
    "load_profile",
    "notebook_names",
    "notebook_parameters",
    "parse_overrides",
    "run_notebooks",
]

#: The repository's notebooks (next to the package when it is installed from the repository, editable).
NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"

#: Seconds a single cell may run before papermill stops the notebook.
DEFAULT_CELL_TIMEOUT = 3600


def notebook_names(notebooks_dir: str | Path = NOTEBOOKS_DIR) -> list[str]:
    """The numbered notebooks (``00_*.ipynb`` …) in run order, without the suffix."""
    return sorted(p.stem for p in Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb"))


def load_profile(profile: str | Path, notebooks_dir: str | Path = NOTEBOOKS_DIR) -> dict[str, Any]:
    """Read a profile: a name under ``notebooks/params/`` (``smoke``, ``full``) or a YAML path.

    Raises:
        FileNotFoundError: No such profile (the available names are listed).
        ValueError: The file has other top-level keys than ``common`` and ``notebooks``.
    """
    path = Path(profile)
    if not path.suffix:
        path = Path(notebooks_dir) / "params" / f"{profile}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in (Path(notebooks_dir) / "params").glob("*.yaml"))
        raise FileNotFoundError(f"no profile {str(profile)!r} (looked for {path}); available: {available}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"profile {path} is not valid YAML: {_yaml_problem(error)}") from None
    if not isinstance(data, dict):
        raise ValueError(f"profile {path} must be a mapping with 'common' and 'notebooks' sections")
    unknown = set(data) - {"common", "notebooks"}
    if unknown:
        raise ValueError(
            f"profile {path} has unknown top-level keys {sorted(unknown)}; use common, notebooks"
        )
    return {"common": dict(data.get("common") or {}), "notebooks": dict(data.get("notebooks") or {})}


def notebook_parameters(path: str | Path) -> dict[str, dict[str, str | None]]:
    """The parameters a notebook declares in its cell tagged ``parameters``.

    Read with :mod:`ast` (papermill's own inspection skips annotations such as ``list | None``).

    Returns:
        ``{name: {"annotation": text or None, "default": source text, "help": comment or None}}``
        in declaration order.

    Raises:
        ValueError: The notebook has no cell tagged ``parameters``, or more than one.
    """
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{path} has {len(cells)} cells tagged 'parameters'; it needs exactly one")
    source = cells[0].source
    lines = source.splitlines()
    declared: dict[str, dict[str, str | None]] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name, annotation = node.target.id, ast.get_source_segment(source, node.annotation)
        elif (
            isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
        ):
            name, annotation = node.targets[0].id, None
        else:
            continue
        _, _, comment = lines[node.end_lineno - 1].partition("  #")
        declared[name] = {
            "annotation": annotation,
            "default": ast.get_source_segment(source, node.value) if node.value is not None else None,
            "help": comment.strip() or None,
        }
    return declared


def _parameters_for(
    name: str,
    declared: Mapping[str, Any],
    profile: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The profile's common parameters the notebook declares, then its own section, then ``overrides``."""
    own = dict(profile["notebooks"].get(name) or {})
    unknown = sorted(set(own) - set(declared))
    if unknown:
        raise ValueError(f"profile sets {unknown} for {name}, which declares only {sorted(declared)}")
    common = {k: v for k, v in profile["common"].items() if k in declared}
    forced = {k: v for k, v in (overrides or {}).items() if k in declared}
    return {**common, **own, **forced}


class _DeclaredParameters(logging.Filter):
    """Drop papermill's "Passed unknown parameter" warnings.

    Parameters are checked here with :func:`notebook_parameters`, which (unlike papermill's own
    inspection) reads annotations such as ``list | None``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Passed unknown parameter")


def _children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes (the notebooks' kernels)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_notebooks(
    profile: str | Path = "smoke",
    out_dir: str | Path = "results",
    notebooks: Sequence[str] | None = None,
    *,
    notebooks_dir: str | Path = NOTEBOOKS_DIR,
    cell_timeout: int = DEFAULT_CELL_TIMEOUT,
    kernel_name: str = "python3",
    log_output: bool = False,
    threads: int | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Execute the notebooks in order with papermill; stop at the first that fails.

    Args:
        profile: Profile name or YAML path (see :func:`load_profile`).
        out_dir: Output root: ``<out_dir>/<notebook>/`` per notebook, ``results.sqlite`` shared.
        notebooks: Names (or unique prefixes such as ``"01"``) to run; all by default.
        notebooks_dir: Where the notebooks and ``params/`` are.
        cell_timeout: Seconds one cell may run (papermill's ``execution_timeout``).
        kernel_name: Jupyter kernel.
        log_output: Echo the notebooks' output to the log while they run.
        threads: CPU threads torch uses for validations in the kernels (``OMP_NUM_THREADS``);
            None keeps torch's default (all cores). On cores shared with other work, 1 is often
            several times faster. Latency is always measured with each config's own thread count.
        overrides: Parameters that replace the profile's (common and per-notebook ones), given to
            every notebook that declares them, e.g. ``{"data_dir": "/data/ofa"}``; a name no
            notebook declares is an error.

    Returns:
        One record per notebook run: ``notebook``, ``seconds`` (wall), ``cpu_seconds`` (of its
        kernel: on a busy machine, a better measure of its cost), ``status``, ``output``, ``parameters``.

    Raises:
        ValueError: An unknown notebook name (asked for, or a section of the profile), or a profile
            parameter a notebook does not declare.
        papermill.PapermillExecutionError: A cell failed (the executed copy shows where).
    """
    logger = logging.getLogger("papermill")
    if not any(isinstance(f, _DeclaredParameters) for f in logger.filters):
        logger.addFilter(_DeclaredParameters())
    notebooks_dir = Path(notebooks_dir)
    if not notebooks_dir.is_dir():
        raise FileNotFoundError(
            f"notebooks folder {notebooks_dir} not found: run from the repository, or pass the folder of the "
            "numbered notebooks (notebooks_dir=..., --notebooks-dir)"
        )
    out_dir = Path(out_dir).resolve()
    config = load_profile(profile, notebooks_dir)
    overrides = dict(overrides or {})
    names = notebook_names(notebooks_dir)
    unknown = sorted(set(config["notebooks"]) - set(names))
    if unknown:
        raise ValueError(
            f"profile {profile} has sections for {unknown}, which are not notebooks here: {names}"
        )
    if notebooks:
        chosen = []
        for wanted in notebooks:
            matches = [n for n in names if n == wanted or n.startswith(wanted)]
            if len(matches) != 1:
                raise ValueError(f"{wanted!r} names {len(matches)} notebooks; choose from {names}")
            chosen.append(matches[0])
        names = [n for n in names if n in chosen]
    declared = {
        name: notebook_parameters(notebooks_dir / f"{name}.ipynb") for name in notebook_names(notebooks_dir)
    }
    known = {parameter for parameters in declared.values() for parameter in parameters}
    stray = sorted((set(config["common"]) | set(overrides)) - known)
    if stray:
        raise ValueError(
            f"{'--set' if set(stray) & set(overrides or {}) else 'the profile'} names parameter(s) {stray} "
            f"that no notebook declares; the notebooks' parameters are {sorted(known)}"
        )
    plans = []
    for name in names:
        source = notebooks_dir / f"{name}.ipynb"
        parameters = _parameters_for(name, declared[name], config, overrides) | {"out_dir": str(out_dir)}
        plans.append((name, source, parameters))

    with _thread_environment(threads):
        return _execute(plans, out_dir, profile, kernel_name, notebooks_dir, cell_timeout, log_output)


@contextmanager
def _thread_environment(threads: int | None) -> Iterator[None]:
    """``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` for the kernels started inside, restored afterwards."""
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {name: os.environ.get(name) for name in names}
    if threads is not None:
        for name in names:
            os.environ[name] = str(int(threads))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _previous_seconds(summary: Path) -> dict[str, float]:
    """Each notebook's wall seconds in the last run into the same folder (for the ETA)."""
    try:
        return {
            r["notebook"]: r["seconds"] for r in json.loads(summary.read_text()) if r.get("status") == "ok"
        }
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _latency_counts(store_path: Path) -> tuple[int, int]:
    """Timed latency measurements in the shared store, and how many are flagged noisy."""
    if not store_path.is_file():
        return 0, 0
    from nastools.store import ResultStore, StoreError

    try:
        with ResultStore(store_path, read_only=True) as store:
            rows = store.measurements(metric="latency_ms")
    except StoreError:
        return 0, 0
    rows = rows[rows["host"] != ""]
    return len(rows), int(rows["flagged"].sum()) if len(rows) else 0


def _engine(name: str) -> str:
    """A papermill engine whose bar names the notebook and its running cell (registered once)."""
    from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

    class Manager(NotebookExecutionManager):
        def get_cell_description(self, cell, escape_str="papermill_description="):  # noqa: D102 - papermill's
            described = super().get_cell_description(cell, escape_str)
            if described is not None or cell is None or cell.get("cell_type") != "code":
                return described
            lines = [
                line for line in cell["source"].splitlines() if line.strip() and not line.startswith("#")
            ]
            return f"{self.notebook_name} · {lines[0][:48]}" if lines else self.notebook_name

    class Engine(NBClientEngine):
        @classmethod
        def execute_notebook(cls, nb, kernel_name, output_path=None, progress_bar=True, log_output=False,
                             autosave_cell_every=30, **kwargs):  # fmt: skip
            manager = Manager(
                nb, output_path=output_path, progress_bar=progress_bar, log_output=log_output,
                autosave_cell_every=autosave_cell_every,
            )  # fmt: skip
            manager.notebook_name = kwargs.pop("notebook_name", "")
            manager.notebook_start()
            # the kernel's own start-up notes (e.g. "running over TCP without encryption" on a local
            # kernel) say nothing about the notebook; warnings inside cells still reach its outputs
            kwargs.setdefault("extra_arguments", ["--IPKernelApp.log_level=ERROR"])
            try:
                cls.execute_managed_notebook(manager, kernel_name, log_output=log_output, **kwargs)
            finally:
                manager.cleanup_pbar()
                manager.notebook_complete()
            return manager.nb

    papermill_engines.register("nastools", Engine)
    return "nastools"


def _execute(
    plans, out_dir, profile, kernel_name, notebooks_dir, cell_timeout, log_output
) -> list[dict[str, Any]]:
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    summary = out_dir / "notebooks_run.json"
    previous = _previous_seconds(summary)
    store_path = out_dir / "results.sqlite"
    for name, source, parameters in plans:
        output = out_dir / name / f"{name}.ipynb"
        output.parent.mkdir(parents=True, exist_ok=True)
        last = f"; the last run took {previous[name]:.0f} s" if name in previous else ""
        print(f"[nastools] {name} ({profile}) ...{last}", flush=True)
        start, cpu_start = time.perf_counter(), _children_cpu()
        before = _latency_counts(store_path)
        record = {"notebook": name, "profile": str(profile), "output": str(output), "parameters": parameters}
        try:
            papermill.execute_notebook(
                str(source),
                str(output),
                parameters=parameters,
                kernel_name=kernel_name,
                cwd=str(notebooks_dir),
                execution_timeout=cell_timeout,
                progress_bar={"desc": name, "leave": False, "unit": "cell"} if not log_output else False,
                log_output=log_output,
                engine_name=_engine(name),
                notebook_name=name,
            )
        except BaseException:
            records.append(record | {"seconds": round(time.perf_counter() - start, 1), "status": "failed"})
            summary.write_text(json.dumps(records, indent=2) + "\n")
            print(f"[nastools] {name} FAILED; see {output}", flush=True)
            raise
        cpu = round(_children_cpu() - cpu_start, 1)
        after = _latency_counts(store_path)
        timed, flagged = after[0] - before[0], after[1] - before[1]
        records.append(
            record
            | {
                "seconds": round(time.perf_counter() - start, 1),
                "cpu_seconds": cpu,
                "status": "ok",
                "latency_timed": timed,
                "latency_flagged": flagged,
            }
        )
        summary.write_text(json.dumps(records, indent=2) + "\n")
        noise = f"; latency: {flagged} of {timed} timed measurements flagged noisy" if timed else ""
        print(
            f"[nastools] {name} done in {records[-1]['seconds']:.0f} s ({cpu:.0f} s CPU){noise}", flush=True
        )
    total, cpu = sum(r["seconds"] for r in records), sum(r["cpu_seconds"] for r in records)
    timed, flagged = sum(r["latency_timed"] for r in records), sum(r["latency_flagged"] for r in records)
    noise = f"; {flagged} of {timed} timed latency measurements flagged noisy" if timed else ""
    print(
        f"[nastools] {len(records)} notebook(s) in {total:.0f} s ({cpu:.0f} s CPU){noise}; see {summary}",
        flush=True,
    )
    return records


def _yaml_problem(error: yaml.YAMLError) -> str:
    """One line: what the YAML parser objects to, and where."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["NAME=VALUE", ...]`` to ``{NAME: VALUE}``, each VALUE read as YAML.

    Example:
        >>> parse_overrides(["data_dir=/data/ofa", "trials=[0, 1]", "hardware=null"])
        {'data_dir': '/data/ofa', 'trials': [0, 1], 'hardware': None}

    Raises:
        ValueError: An item without ``=`` or without a name.
    """
    overrides = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--set expects NAME=VALUE, got {item!r}")
        try:
            overrides[name.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as error:
            raise ValueError(
                f"--set {item!r}: the value is not valid YAML ({_yaml_problem(error)})"
            ) from None
    return overrides


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m nastools.experiments.runner --profile smoke [names...]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebook names or prefixes (default: all, in order)")
    parser.add_argument("--profile", default="smoke", help="smoke, full, or a YAML file (default: smoke)")
    parser.add_argument("--out-dir", default="results/smoke", help="output root (default: results/smoke)")
    parser.add_argument("--notebooks-dir", default=str(NOTEBOOKS_DIR), help="the numbered notebooks' folder")
    parser.add_argument("--cell-timeout", type=int, default=DEFAULT_CELL_TIMEOUT, help="seconds per cell")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name (default: python3)")
    parser.add_argument("--log-output", action="store_true", help="echo the notebooks' output")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads for validations (default: all)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a common parameter (VALUE read as YAML), e.g. --set data_dir=/data/ofa",
    )
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be a positive integer, got {args.threads}")
    try:
        overrides = parse_overrides(args.set)
        run_notebooks(
            args.profile,
            args.out_dir,
            args.notebooks or None,
            notebooks_dir=args.notebooks_dir,
            cell_timeout=args.cell_timeout,
            kernel_name=args.kernel,
            log_output=args.log_output,
            threads=args.threads,
            overrides=overrides,
        )
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
