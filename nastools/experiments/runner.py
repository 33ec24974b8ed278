"""Run the experiment notebooks headless with papermill, in order, on a parameter profile.

``python -m nastools.experiments.runner --profile smoke --out-dir results/smoke`` executes
``notebooks/0*.ipynb`` one after the other. Each gets the profile's ``common`` parameters (those
it declares) and its own section, plus ``out_dir``; its executed copy and its files land in
``<out-dir>/<notebook>/``, and
all of them share the measurement store ``<out-dir>/results.sqlite`` (so a rerun, or a later
notebook, reuses what was measured). ``<out-dir>/notebooks_run.json`` records each notebook's
wall time and status; a notebook that fails stops the run with its own error in one line, and its
full traceback in ``<out-dir>/<notebook>/<notebook>.error.log``. Parameters are checked against the
notebooks' annotations before any kernel starts. ``make`` runs the smoke profile;
``make notebooks PROFILE=full`` the paper's setting and scale (OFA MobileNetV3, which needs the
public OFA files: ``--set data_dir=...``).

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
import contextlib
import errno
import json
import logging
import os
import resource
import signal
import sys
import time
import traceback
from collections.abc import Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from nastools._outputs import check_output_dir, check_output_file, write_atomically

__all__ = [
    "NOTEBOOKS_DIR",
    "NotebookError",
    "check_parameter_types",
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

#: The annotations a parameter cell uses, and the values each accepts (an int is a float here; a bool
#: is no int).
_ANNOTATION_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (float, int),
    "str": (str,),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
    "None": (type(None),),
}


class NotebookError(RuntimeError):
    """A notebook failed while it ran: the message is the notebook's own error, in one line.

    Attributes:
        notebook: The notebook's name (``03_concurrent_vs_weaknas``).
        output: The executed copy, which shows the failing cell.
        log: The file with the full traceback.
    """

    def __init__(self, message: str, notebook: str, output: Path, log: Path | None) -> None:
        super().__init__(message)
        self.notebook, self.output, self.log = notebook, output, log


class NotebookInterrupted(KeyboardInterrupt):
    """A notebook was stopped (Ctrl+C, or SIGTERM on the command line): its message says which, where.

    A ``KeyboardInterrupt``, so that code catching one still does.
    """


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that repeats a key (PyYAML itself keeps the last).

    Merge keys (``<<: *common``) keep their meaning: the mapping's own keys override the merged ones.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # SafeLoader's construct_mapping merges them
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, Hashable) and key in seen:
                problem = f"duplicate key {key!r} (the last one would silently win)"
                raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def notebook_names(notebooks_dir: str | Path = NOTEBOOKS_DIR) -> list[str]:
    """The numbered notebooks (``00_*.ipynb`` …) in run order, without the suffix."""
    return sorted(p.stem for p in Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb"))


def load_profile(profile: str | Path, notebooks_dir: str | Path = NOTEBOOKS_DIR) -> dict[str, Any]:
    """Read a profile: a name under ``notebooks/params/`` (``smoke``, ``full``) or a YAML path.

    Raises:
        FileNotFoundError: No such profile (the available names are listed).
        ValueError: The file is not valid YAML, repeats a key, has other top-level keys than
            ``common`` and ``notebooks``, or a section that is not a mapping (a list).
    """
    path = Path(profile)
    if not path.suffix:
        path = Path(notebooks_dir) / "params" / f"{profile}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in (Path(notebooks_dir) / "params").glob("*.yaml"))
        raise FileNotFoundError(f"no profile {str(profile)!r} (looked for {path}); available: {available}")
    try:
        data = _read_yaml(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"profile {path} is not valid YAML: {_yaml_problem(error)}") from None
    if not isinstance(data, dict):
        raise ValueError(f"profile {path} must be a mapping with 'common' and 'notebooks' sections")
    unknown = set(data) - {"common", "notebooks"}
    if unknown:
        raise ValueError(
            f"profile {path} has unknown top-level keys {sorted(unknown)}; use common, notebooks"
        )
    common, notebooks = data.get("common") or {}, data.get("notebooks") or {}
    sections = {"common": common, "notebooks": notebooks}
    if isinstance(notebooks, dict):
        sections |= {f"notebooks: {name}": own or {} for name, own in notebooks.items()}
    for where, section in sections.items():
        if not isinstance(section, dict):
            raise ValueError(
                f"profile {path}: section {where!r} must be a mapping of NAME: VALUE, got a "
                f"{type(section).__name__} ({section!r})"
            )
    return {"common": dict(common), "notebooks": dict(notebooks)}


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


def check_parameter_types(
    notebook: str,
    declared: Mapping[str, Mapping[str, Any]],
    parameters: Mapping[str, Any],
    sources: Mapping[str, str] | None = None,
) -> None:
    """Raise unless each value fits its parameter's annotation (``int``, ``str | None``, ``list`` ...).

    An int fits ``float`` (YAML reads ``1`` as an int); a bool fits only ``bool``. A parameter without
    an annotation, or with one made of other names, is not checked.

    Args:
        notebook: The notebook's name, for the message.
        declared: Its parameters, as :func:`notebook_parameters` reads them.
        parameters: The values it is about to get.
        sources: Where each value comes from, for the message (``{"seed": "--set"}``).

    Raises:
        ValueError: One line naming the notebook, the parameter, its annotation and the value.

    Example:
        >>> check_parameter_types("03_x", {"pop_size": {"annotation": "int"}}, {"pop_size": [8]})
        Traceback (most recent call last):
        ...
        ValueError: 03_x: parameter pop_size is annotated int, got [8] (type list)
    """
    for name, value in parameters.items():
        annotation = (declared.get(name) or {}).get("annotation")
        parts = [part.split("[")[0].strip() for part in (annotation or "").split("|")]
        if not annotation or not all(part in _ANNOTATION_TYPES for part in parts):
            continue
        allowed = tuple(t for part in parts for t in _ANNOTATION_TYPES[part])
        fits = (bool in allowed) if isinstance(value, bool) else isinstance(value, allowed)
        if fits:
            continue
        hint = ""
        if isinstance(value, str) and {"int", "float"} & set(parts):
            try:
                float(value)
                hint = "; write it as a number (YAML reads 1e-3 as a string: write 1.0e-3)"
            except ValueError:
                pass
        where = f" (set by {sources[name]})" if sources and name in sources else ""
        raise ValueError(
            f"{notebook}: parameter {name} is annotated {annotation}, got {value!r} "
            f"(type {type(value).__name__}){where}{hint}"
        )


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
            every notebook that declares them, e.g. ``{"data_dir": "/data/ofa"}``; a name none of
            the notebooks run declares is an error.

    Returns:
        One record per notebook run: ``notebook``, ``seconds`` (wall), ``cpu_seconds`` (of its
        kernel: on a busy machine, a better measure of its cost), ``status``, ``output``, ``parameters``.

    Raises:
        ValueError: An unknown notebook name (asked for, or a section of the profile), a profile
            parameter a notebook does not declare, a value that does not fit its parameter's
            annotation, or ``out_dir`` set as a parameter; all before any notebook runs.
        OSError: ``out_dir`` cannot be written (checked before any notebook runs).
        NotebookError: A notebook failed: its own error in one line, naming the executed copy and a
            log of the full traceback next to it (``<out_dir>/<notebook>/<notebook>.error.log``).
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
    # --set is explicit: each name must reach a notebook being run (the profile's common section
    # applies only where declared, as documented)
    running = {parameter for name in names for parameter in declared[name]}
    stray = sorted(set(overrides) - running - {"out_dir"})
    if stray:
        raise ValueError(
            f"--set names parameter(s) {stray} that none of the notebooks run ({', '.join(names)}) declares; "
            f"their parameters are {sorted(running)}"
        )
    sections = [config["common"], *(own or {} for own in config["notebooks"].values())]
    if "out_dir" in overrides or any("out_dir" in section for section in sections):
        raise ValueError(
            f"out_dir cannot be set {'with --set' if 'out_dir' in overrides else f'in profile {profile}'}: "
            "the runner gives every notebook its output folder; pass --out-dir (run_notebooks(out_dir=...))"
        )
    plans = []
    for name in names:
        source = notebooks_dir / f"{name}.ipynb"
        parameters = _parameters_for(name, declared[name], config, overrides)
        own = config["notebooks"].get(name) or {}
        sources = {
            key: "--set" if key in overrides else f"profile {profile}, {name if key in own else 'common'}"
            for key in parameters
        }
        check_parameter_types(name, declared[name], parameters, sources)
        plans.append((name, source, parameters | {"out_dir": str(out_dir)}))
    check_output_dir(out_dir, "out_dir")
    check_output_file(out_dir / "notebooks_run.json", "out_dir")

    with _thread_environment(threads):
        return _execute(plans, out_dir, profile, kernel_name, notebooks_dir, cell_timeout, log_output)


@contextmanager
def _thread_environment(threads: int | None) -> Iterator[None]:
    """The kernels' environment, restored afterwards.

    ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` from ``threads``, and ``$NASTOOLS_DATA`` made absolute
    (the kernels run in the notebooks' folder, not the current one).
    """
    from nastools.datasets import DATA_ENV, data_home

    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", DATA_ENV)
    saved = {name: os.environ.get(name) for name in names}
    if threads is not None:
        for name in names[:2]:
            os.environ[name] = str(int(threads))
    if os.environ.get(DATA_ENV):
        os.environ[DATA_ENV] = str(data_home())
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
            # the kernel's own log (start-up notes such as "running over TCP without encryption", and
            # its tracebacks when it is stopped with the runner) says nothing about the notebook; a
            # cell's warnings and errors reach its outputs, a dead kernel is the runner's error
            kwargs.setdefault("extra_arguments", ["--IPKernelApp.log_level=CRITICAL"])
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
        _error_log(output).unlink(missing_ok=True)  # a failure's log describes the last run only
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
        except BaseException as error:
            interrupted = not isinstance(error, Exception)
            status = "interrupted" if interrupted else "failed"
            records.append(record | {"seconds": round(time.perf_counter() - start, 1), "status": status})
            with contextlib.suppress(OSError):  # a full disk must not hide the notebook's own error
                _write_summary(summary, records)
            if interrupted:
                raise NotebookInterrupted(
                    f"{name} stopped; its executed copy so far is {output}, everything measured is in "
                    f"{store_path}: run the same command to go on"
                ) from None
            raise _notebook_error(name, output, error) from error
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
        _write_summary(summary, records)
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


def _write_summary(summary: Path, records: list[dict[str, Any]]) -> None:
    write_atomically(summary, (json.dumps(records, indent=2) + "\n").encode(), "run summary")


def _error_log(output: Path) -> Path:
    """Where a failed notebook's full traceback goes: next to its executed copy."""
    return output.with_name(f"{output.stem}.error.log")


def _notebook_error(name: str, output: Path, error: Exception) -> NotebookError:
    """The notebook's own error in one line; its full traceback written to a log next to ``output``."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(error, PapermillExecutionError):  # a cell raised: the kernel's exception, not papermill's
        kind, detail, cell = error.ename, error.evalue, f" in cell [{error.exec_count}]"
    elif isinstance(error, OSError) and error.filename is None:  # a failed write: say where
        full = error.errno == errno.ENOSPC
        why = "no space left on the disk" if full else (error.strerror or str(error))
        kind, detail, cell = type(error).__name__, f"{why} holding {output.parent}", ""
    else:  # the kernel died, a cell timed out, the notebook could not be read or written ...
        kind, detail, cell = type(error).__name__, str(error), ""
    lines = [line.strip() for line in str(detail).splitlines() if line.strip()]
    log: Path | None = _error_log(output)
    try:
        log.write_text("".join(traceback.format_exception(error)))
    except OSError:
        log = None
    where = f"the executed notebook is {output}" + (f", the full traceback in {log}" if log else "")
    return NotebookError(
        f"{name} failed{cell}: {kind}{': ' + lines[0] if lines else ''} ({where})", name, output, log
    )


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
            overrides[name.strip()] = _read_yaml(value)
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
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a killed runner stops like Ctrl+C: summary written
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
    except NotebookError as error:  # the notebook's own one-line error; its traceback is in the log
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as error:  # OSError: an output that cannot be written (names its path)
        parser.error(str(error).splitlines()[0])
    except KeyboardInterrupt as error:
        print(f"{parser.prog}: interrupted{f'; {error}' if str(error) else ''}", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
