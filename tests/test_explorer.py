"""The front explorer: its table, front, hover texts, selection and export, and a real browser run."""

import base64
import contextlib
import importlib.util
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from helpers import nbstripout_extra_keys

from nastools.evaluation import Evaluator
from nastools.experiments import TacticSettings, build_tactic, run_recorded
from nastools.experiments.explorer import explore, explorer_table
from nastools.supernet import load_supernet

ROOT = Path(__file__).resolve().parents[1]
TINYLM = "tinylm.supernet:make_supernet"
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A store with a short search of the user supernet on perplexity vs MACs and measured latency."""
    sys.path.insert(0, str(ROOT / "examples"))
    folder = tmp_path_factory.mktemp("explorer")
    supernet = load_supernet(TINYLM)
    evaluator = Evaluator(supernet, folder / "results.sqlite", progress=False, busy_interval=0)
    objectives = {"perplexity": "min", "macs": "min"}
    tactic = build_tactic("concurrent", supernet.space, objectives, 12, TacticSettings(pop_size=6, n_gen=3))
    run_recorded(tactic, evaluator, "concurrent-s0")
    evaluator.measure(supernet.space.sample(3, rng=1), ["perplexity", "latency_ms"], ["cpu-t1-b1"])
    return folder, evaluator


def test_the_table_holds_every_validated_arch_with_all_its_metrics(searched):
    _, evaluator = searched
    table = explorer_table(evaluator)
    assert len(table) == 15 and {"arch", "perplexity", "macs", "latency_ms@cpu-t1-b1"} <= set(table.columns)
    assert table["perplexity"].notna().all() and table["latency_ms@cpu-t1-b1"].notna().sum() == 3
    # the three measured apart from the search had no MACs or parameters stored: counted, exactly
    supernet = evaluator.supernet
    for _, row in table.iterrows():
        arch = supernet.space.from_key(row["arch"])
        assert row["macs"] == supernet.macs(arch) and row["params"] == supernet.params(arch)


def test_front_hover_selection_and_export(searched, tmp_path):
    pytest.importorskip("plotly")
    pytest.importorskip("ipywidgets")
    _, evaluator = searched
    explorer = explore(evaluator, x="macs", out_dir=tmp_path / "exported")
    front = explorer.front()
    assert len(front) >= 2 and front["macs"].is_monotonic_increasing
    assert front["perplexity"].is_monotonic_decreasing  # more MACs buys lower perplexity on the front
    scatter = explorer.widget.children[1].data[0]
    first = explorer.table.iloc[0]
    assert "layers=" in scatter.text[0] and f"{first['perplexity']:.4g}" in scatter.text[0]

    class Points:  # what plotly hands a selection callback
        point_inds = [0, 2]

    scatter._select_callbacks[0](scatter, Points(), None)
    assert explorer.selected == [explorer.table["arch"].iloc[0], explorer.table["arch"].iloc[2]]
    table_view, buttons = explorer.widget.children[2], explorer.widget.children[3]
    assert "nastools-selected" in table_view.value and not buttons.children[0].disabled
    notes = []  # what torch.onnx's registry logs while exporting (its torchvision "Skipping ..." lines)
    registry = logging.getLogger("torch.onnx._internal.exporter._registration")
    handler = logging.Handler()
    handler.emit = notes.append
    registry.addHandler(handler)
    try:
        buttons.children[0].click()
    finally:
        registry.removeHandler(handler)
    assert notes == []
    info = json.loads((tmp_path / "exported" / "1" / "model.json").read_text())
    assert info["arch_key"] == explorer.selected[1] and "wrote 2" in buttons.children[1].value
    explorer.out_dir = tmp_path / "a-file"  # a failing export says why in the widget, not the kernel log
    explorer.out_dir.write_text("")
    buttons.children[0].click()
    assert "export failed" in buttons.children[1].value and not buttons.children[0].disabled
    explorer.widget.children[0].value = "latency_ms@cpu-t1-b1"  # the x axis follows the dropdown
    assert explorer.x == "latency_ms@cpu-t1-b1"


def test_headless_output_carries_a_static_png(searched):
    _, evaluator = searched
    bundle = explore(evaluator, x="macs")._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "FrontExplorer(15 sub-networks" in bundle["text/plain"]


def test_bad_input_is_a_one_line_error(searched):
    _, evaluator = searched
    with pytest.raises(ValueError, match="not a cost column here"):
        explore(evaluator, x="perplexity")
    with pytest.raises(ValueError, match="needs objectives"):
        explore(explorer_table(evaluator))


# --- a real browser ----------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# a cap far beyond any machine's speed, so that a broken page fails instead of hanging
WAIT_MS = int(os.environ.get("NASTOOLS_BROWSER_WAIT_MS", 600_000))


def _browser_missing() -> str | None:
    """What the browser tier lacks here (None: it can run)."""
    if CHROMIUM is None:
        return "Debian's chromium is not installed (apt-get install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install -e '.[browser]')"
    return None


@pytest.fixture
def browser(request):
    """Skip where the browser tier cannot run, but fail when it was asked for (``-m browser``)."""
    missing = _browser_missing()
    if missing is None:
        return CHROMIUM
    expression = request.config.getoption("markexpr") or ""
    if "browser" in expression and "not browser" not in expression:
        pytest.fail(f"the browser tier was asked for (-m browser) but cannot run: {missing}", pytrace=False)
    pytest.skip(missing)


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _git_repo(work, files):
    """A git repository holding ``files`` (name -> source path), with the filter `make lab` installs."""
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    for name, source in {
        ".gitattributes": ROOT / ".gitattributes",
        ".gitignore": ROOT / ".gitignore",
        **files,
    }.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, work / name)
    subprocess.run([sys.executable, "-m", "nbstripout", "--install"], cwd=work, check=True)
    subprocess.run(
        ["git", "config", "filter.nbstripout.extrakeys", nbstripout_extra_keys()], cwd=work, check=True
    )
    subprocess.run(["git", "add", "."], cwd=work, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "nb"], cwd=work, check=True
    )


@contextlib.contextmanager
def _lab_page(work, notebook, shots, log_path):
    """JupyterLab serving ``work`` and headless Chromium showing ``notebook``, its kernel idle."""
    import playwright.sync_api as playwright

    port = _free_port()
    with log_path.open("w") as log:
        # the log is a file, not a pipe: the kernel inherits it, and a full pipe nobody reads blocks it
        lab = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.token=t",
             "--ServerApp.root_dir=" + str(work), "--ServerApp.disable_check_xsrf=True", "--allow-root"],
            cwd=work, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            with playwright.sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=CHROMIUM,
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
                )  # fmt: skip
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                url = f"http://127.0.0.1:{port}/lab/tree/{notebook}?token=t"
                for _ in range(600):  # the server answers when it is up: wait for that, not for a clock
                    try:
                        page.goto(url)
                        break
                    except playwright.Error:
                        time.sleep(0.5)
                try:
                    page.wait_for_selector(".jp-Notebook", timeout=WAIT_MS)
                    page.wait_for_selector("text=| Idle", timeout=WAIT_MS)  # the kernel is up
                    news = page.locator(".jp-toast-button:has-text('No')")  # JupyterLab asks about its news
                    with contextlib.suppress(playwright.Error):
                        news.click(timeout=5000)  # a lab that does not ask: nothing to answer
                    yield page
                except (playwright.Error, AssertionError):
                    page.screenshot(path=str(shots / "explorer-failed.png"))  # what the page showed instead
                    print(log_path.read_text()[-5000:])  # and what the server and kernel said
                    raise
                browser.close()
        finally:
            lab.terminate()
            lab.wait()


def _hover_select_export(page, shots, arch_part):
    """Hover the first point (its arch shows), box-select the cheapest third, export it; screenshots."""
    points = page.locator(".js-plotly-plot .scatterlayer .trace").first.locator(".point")
    points.first.wait_for(timeout=WAIT_MS)
    page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "explorer-1-front.png"))
    spot = points.first.bounding_box()  # plotly's drag layer takes the pointer: move the mouse there
    page.mouse.move(spot["x"] + spot["width"] / 2, spot["y"] + spot["height"] / 2)
    page.wait_for_selector(".hoverlayer .hovertext", timeout=WAIT_MS)
    assert arch_part in page.text_content(".hoverlayer")
    page.screenshot(path=str(shots / "explorer-2-hover.png"))
    box = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + 2, box["y"] + 2)  # the cheapest third: a few to export
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 3, box["y"] + box["height"] - 5, steps=12)
    page.mouse.up()
    page.wait_for_selector("table.nastools-selected", timeout=WAIT_MS)
    rows = page.locator("table.nastools-selected tbody tr").count()
    assert rows >= 1
    page.screenshot(path=str(shots / "explorer-3-selected.png"))
    page.click("button:has-text('export selected')")
    page.wait_for_selector("text=sub-network(s) to", timeout=WAIT_MS)
    page.screenshot(path=str(shots / "explorer-4-exported.png"))
    return rows


def _save(page, path):
    page.click(".jp-Notebook .jp-Cell .jp-InputArea")  # focus the notebook, not the widget
    page.keyboard.press("Escape")
    page.keyboard.press("Control+s")
    while not any(c.get("outputs") for c in nbformat.read(path, as_version=4).cells):  # saved
        time.sleep(0.2)


def _runs_like_pytorch(supernet, exported):
    """The exported ONNX file, run by onnxruntime, gives what the exported PyTorch program gives."""
    onnxruntime = pytest.importorskip("onnxruntime")
    arch = supernet.space.from_key(json.loads((exported / "model.json").read_text())["arch_key"])
    inputs = supernet.example_inputs(arch, 3)
    session = onnxruntime.InferenceSession(str(exported / "model.onnx"))
    feed = {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs, strict=True)}
    outputs = session.run(None, feed)[0]
    program = torch.export.load(exported / "model.pt2").module()
    with torch.no_grad():
        np.testing.assert_allclose(outputs, program(*inputs).numpy(), atol=1e-4)


def _git_sees_no_change(work, notebook):
    """No diff through the filter, nothing to stage, a clean status (``git add`` refreshes the stat cache:
    git flags a file whose size changed as modified before it runs a clean filter)."""
    assert subprocess.run(["git", "diff", "--no-textconv", "--quiet", notebook], cwd=work).returncode == 0
    subprocess.run(["git", "add", notebook], cwd=work, check=True)
    status = subprocess.run(
        ["git", "status", "--porcelain", notebook], cwd=work, capture_output=True, text=True
    )
    assert status.stdout.strip() == ""


@pytest.mark.browser
def test_in_jupyterlab_hover_select_export_and_the_file_stays_clean(browser, searched, tmp_path):
    """JupyterLab in headless Chromium, on a store of the user supernet: hover, box-select, export.

    Checks, in order: the plotly figure renders in the notebook; hovering a point shows its arch;
    a box selection lists the chosen sub-networks in the table; the export button writes them; the
    exported ONNX file runs like the exported PyTorch program; and the tracked notebook (under git
    with the nbstripout filter) shows no change after the lab saved it with its outputs.
    Screenshots land in ``$NASTOOLS_SCREENSHOTS`` (default: the test's tmp folder).
    """
    folder, _ = searched
    work = tmp_path / "lab"
    source = tmp_path / "explore.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_code_cell(
            f"import sys; sys.path.insert(0, {str(ROOT / 'examples')!r})\n"
            "from nastools.evaluation import Evaluator\nfrom nastools.experiments.explorer import explore\n"
            "from nastools.supernet import load_supernet\n"
            f"evaluator = Evaluator(load_supernet({TINYLM!r}), {str(folder / 'results.sqlite')!r})\n"
            f"explorer = explore(evaluator, x='macs', out_dir={str(work / 'exported')!r})\nexplorer"
        )
    ]
    nbformat.write(nb, source)
    _git_repo(work, {"explore.ipynb": source})
    shots = Path(os.environ.get("NASTOOLS_SCREENSHOTS", tmp_path)) / "user-supernet"
    shots.mkdir(parents=True, exist_ok=True)
    with _lab_page(work, "explore.ipynb", shots, tmp_path / "lab.log") as page:
        page.click(".jp-Notebook .jp-Cell")
        page.keyboard.press("Control+Enter")  # run in place (Shift+Enter would add a cell)
        rows = _hover_select_export(page, shots, "layers=")
        _save(page, work / "explore.ipynb")
    assert len(list((work / "exported").glob("*/model.json"))) == rows
    _runs_like_pytorch(load_supernet(TINYLM), work / "exported" / "0")
    _git_sees_no_change(work, "explore.ipynb")


@pytest.mark.browser
def test_a_newcomer_runs_notebook_00_in_the_lab_exports_a_point_and_runs_the_onnx_file(browser, tmp_path):
    """The README's path: the tracked quickstart notebook, Run All in JupyterLab, the explorer at its end.

    The notebook runs with its defaults (the embedded supernet, writing to ``results/smoke`` as
    ``make`` does), in a git repository with the repository's ``.gitattributes`` and the filter
    ``make lab`` installs; then as above: hover, select, export, the ONNX file runs like PyTorch,
    and git sees the notebook unchanged after the lab saved it with every output.
    """
    work = tmp_path / "repo"
    _git_repo(work, {"notebooks/00_quickstart.ipynb": ROOT / "notebooks" / "00_quickstart.ipynb"})
    shots = Path(os.environ.get("NASTOOLS_SCREENSHOTS", tmp_path)) / "quickstart"
    shots.mkdir(parents=True, exist_ok=True)
    supernet = load_supernet("digits-mbv3")
    with _lab_page(work, "notebooks/00_quickstart.ipynb", shots, tmp_path / "lab.log") as page:
        page.click("text=Run", timeout=WAIT_MS)  # the menu bar's Run menu
        page.click("text=Run All Cells", timeout=WAIT_MS)
        rows = _hover_select_export(page, shots, f"{supernet.space.names[0]}=")
        page.wait_for_selector("text=| Idle", timeout=WAIT_MS)  # every cell has run
        _save(page, work / "notebooks" / "00_quickstart.ipynb")
    saved = nbformat.read(work / "notebooks" / "00_quickstart.ipynb", as_version=4)
    assert not [o for c in saved.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    exported = work / "results" / "smoke" / "00_quickstart" / "exported"
    assert len(list(exported.glob("*/model.json"))) == rows
    _runs_like_pytorch(supernet, exported / "0")
    _git_sees_no_change(work, "notebooks/00_quickstart.ipynb")
