"""The front explorer: its table, front, hover texts, selection and export, and a real browser run."""

import base64
import json
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
    buttons.children[0].click()
    info = json.loads((tmp_path / "exported" / "1" / "model.json").read_text())
    assert info["arch_key"] == explorer.selected[1] and "wrote 2" in buttons.children[1].value
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


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_in_jupyterlab_hover_select_export_and_the_file_stays_clean(searched, tmp_path):
    """JupyterLab in headless Chromium: run the explorer's notebook, hover a point, box-select, export.

    Checks, in order: the plotly figure renders in the notebook; hovering a point shows its arch;
    a box selection lists the chosen sub-networks in the table; the export button writes them; and
    the tracked notebook (under git with the nbstripout filter) shows no change after the lab saved it.
    Screenshots land in ``$NASTOOLS_SCREENSHOTS`` (default: the test's tmp folder).
    """
    playwright = pytest.importorskip("playwright.sync_api")
    folder, _ = searched
    work = tmp_path / "lab"
    work.mkdir()
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    shutil.copy(ROOT / ".gitattributes", work / ".gitattributes")
    subprocess.run([sys.executable, "-m", "nbstripout", "--install"], cwd=work, check=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell(
            f"import sys; sys.path.insert(0, {str(ROOT / 'examples')!r})\n"
            "from nastools.evaluation import Evaluator\nfrom nastools.experiments.explorer import explore\n"
            "from nastools.supernet import load_supernet\n"
            f"evaluator = Evaluator(load_supernet({TINYLM!r}), {str(folder / 'results.sqlite')!r})\n"
            f"explorer = explore(evaluator, x='macs', out_dir={str(work / 'exported')!r})\nexplorer"
        )
    ]
    nbformat.write(nb, work / "explore.ipynb")
    subprocess.run(["git", "add", "."], cwd=work, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "nb"], cwd=work, check=True
    )
    shots = Path(os.environ.get("NASTOOLS_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    lab = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.token=t",
         "--ServerApp.root_dir=" + str(work), "--ServerApp.disable_check_xsrf=True", "--allow-root"],
        cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
            )  # fmt: skip
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            url = f"http://127.0.0.1:{port}/lab/tree/explore.ipynb?token=t"
            for _ in range(600):  # the server answers when it is up: wait for that, not for a clock
                try:
                    page.goto(url)
                    break
                except playwright.Error:
                    time.sleep(0.5)
            try:
                page.wait_for_selector(".jp-Notebook", timeout=WAIT_MS)
                page.wait_for_selector("text=| Idle", timeout=WAIT_MS)  # the kernel is up
                page.keyboard.press("Escape")
                page.click(".jp-Notebook .jp-Cell")
                page.keyboard.press("Shift+Enter")
                page.wait_for_selector(".js-plotly-plot .scatterlayer .point", timeout=WAIT_MS)
                page.screenshot(path=str(shots / "explorer-1-front.png"))
                point = page.locator(".js-plotly-plot .scatterlayer .trace").first.locator(".point").first
                spot = point.bounding_box()  # plotly's drag layer takes the pointer: move the mouse there
                page.mouse.move(spot["x"] + spot["width"] / 2, spot["y"] + spot["height"] / 2)
                page.wait_for_selector(".hoverlayer .hovertext", timeout=WAIT_MS)
                assert "layers=" in page.text_content(".hoverlayer")
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
                page.click(".jp-Notebook .jp-Cell .jp-InputArea")  # focus the notebook, not the widget
                page.keyboard.press("Escape")
                page.keyboard.press("Control+s")
                while not nbformat.read(work / "explore.ipynb", as_version=4).cells[0].outputs:  # saved
                    time.sleep(0.2)
            except playwright.Error:
                page.screenshot(path=str(shots / "explorer-failed.png"))  # what the page showed instead
                raise
            browser.close()
        assert len(list((work / "exported").glob("*/model.json"))) == rows
        # what the newcomer does next: run an exported ONNX file, and get what PyTorch gets
        onnxruntime = pytest.importorskip("onnxruntime")
        supernet = load_supernet(TINYLM)
        exported = work / "exported" / "0"
        arch = supernet.space.from_key(json.loads((exported / "model.json").read_text())["arch_key"])
        tokens = supernet.example_inputs(arch, 3)[0]
        session = onnxruntime.InferenceSession(str(exported / "model.onnx"))
        logits = session.run(None, {session.get_inputs()[0].name: tokens.numpy()})[0]
        program = torch.export.load(exported / "model.pt2").module()
        with torch.no_grad():
            np.testing.assert_allclose(logits, program(tokens).numpy(), atol=1e-4)
        # the lab saved its outputs into the working file (above) ...
        status = subprocess.run(
            ["git", "status", "--porcelain", "explore.ipynb"], cwd=work, capture_output=True, text=True
        )
        assert status.stdout.strip() == ""  # ... and git sees the committed, stripped notebook unchanged
    finally:
        lab.terminate()
        lab.wait()
