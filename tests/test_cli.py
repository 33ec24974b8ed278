"""The ``nastools`` command line and the export of a chosen sub-network."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nastools import cli
from nastools.evaluation import Evaluator
from nastools.export import export_subnet
from nastools.store import ResultStore
from nastools.supernet import load_supernet
from nastools.supernets._image import resize

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_thread")


def _run(*args, **env):
    return subprocess.run(
        [sys.executable, "-c", "import sys; from nastools.cli import main; sys.exit(main())", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "examples"), **env},
    )


@pytest.mark.parametrize(
    "args",
    [["--help"], ["search", "--help"], ["export", "--help"], ["notebooks", "--help"], ["train", "--help"]],
)
def test_help_answers_without_importing_torch(args):
    probe = "\n".join(
        [
            "import sys; from nastools.cli import main",
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass",
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')",
        ]
    )
    result = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, cwd=ROOT)
    assert "usage:" in result.stdout and result.stdout.strip().endswith("NO-TORCH"), result.stdout[-300:]


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["search", "--objectives", "top1", "--budget", "5", "--store", "s.sqlite", "--search-id", "x"],
            "label:direction",
        ),
        (
            ["search", "--objectives", "top1:up", "--budget", "5", "--store", "s.sqlite", "--search-id", "x"],
            "min or max",
        ),
        (
            [
                "search",
                "--objectives",
                "top1:max",
                "--budget",
                "0",
                "--store",
                "s.sqlite",
                "--search-id",
                "x",
            ],
            "positive",
        ),
        (
            ["export", "--store", "s.sqlite", "--search-id", "x", "--out", "o"],
            "one of the arguments --rank --arch",
        ),
        (["bogus"], "invalid choice"),
    ],
)
def test_argument_errors_are_one_line_before_torch(args, message):
    result = _run(*args)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_search_front_and_export_round_trip(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    store = tmp_path / "cli.sqlite"
    common = [
        "--store",
        str(store),
        "--search-id",
        "concurrent-s0",
        "--supernet",
        "tinylm.supernet:make_supernet",
    ]
    assert cli.main(
        ["search", "--objectives", "perplexity:min", "macs:min", "--budget", "10", "--pop-size", "5",
         "--n-gen", "3", *common]
    ) == 0  # fmt: skip
    assert "10 validated" in capsys.readouterr().out
    with ResultStore(store) as opened:
        assert len(opened.validations("concurrent-s0")) == 10
    assert cli.main(["front", *common, "--csv", str(tmp_path / "front.csv")]) == 0
    assert "perplexity" in capsys.readouterr().out and (tmp_path / "front.csv").is_file()
    assert (
        cli.main(
            ["export", *common, "--rank", "0", "--out", str(tmp_path / "out"), "--formats", "torchscript"]
        )
        == 0
    )
    info = json.loads((tmp_path / "out" / "model.json").read_text())
    assert info["supernet_id"] == "tinylm" and {m["metric"] for m in info["measurements"]} >= {
        "perplexity",
        "macs",
    }
    assert cli.main(["export", *common, "--rank", "99", "--out", str(tmp_path / "o2")]) == 1
    assert "--rank 99" in capsys.readouterr().err


def test_a_failure_is_one_line(tmp_path, capsys):
    assert cli.main(["front", "--store", str(tmp_path / "none.sqlite"), "--search-id", "x"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("nastools front: error:") and error.count("\n") == 1


@pytest.mark.slow
def test_exported_model_reproduces_the_stored_top1_and_onnx_matches_torch(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    supernet = load_supernet("digits-mbv3")
    arch = supernet.space.sample(1, rng=5)[0]
    evaluator = Evaluator(supernet, tmp_path / "s.sqlite", progress=False)
    stored = evaluator.values([arch], {"top1": "max"})["top1"][0]
    paths = export_subnet(supernet, arch, tmp_path / "out", store=evaluator.store)
    assert [p.name for p in paths] == ["model.pt2", "model.torchscript.pt", "model.onnx", "model.json"]
    images = resize(supernet.task.test_x, supernet.net.resolution(arch)).contiguous()

    def top1(forward):
        with torch.no_grad():
            logits = [torch.as_tensor(forward(images[i : i + 256])) for i in range(0, len(images), 256)]
        return 100.0 * float((torch.cat(logits).argmax(1) == supernet.task.test_y).double().mean())

    program = torch.export.load(tmp_path / "out" / "model.pt2").module()
    scripted = torch.jit.load(tmp_path / "out" / "model.torchscript.pt")
    session = onnxruntime.InferenceSession(str(tmp_path / "out" / "model.onnx"))
    name = session.get_inputs()[0].name
    assert top1(program) == pytest.approx(stored) and top1(scripted) == pytest.approx(stored)
    onnx_logits = session.run(None, {name: images[:300].numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(onnx_logits, program(images[:300]).numpy(), atol=1e-4)
    assert top1(lambda batch: session.run(None, {name: batch.numpy()})[0]) == pytest.approx(stored)
    info = json.loads((tmp_path / "out" / "model.json").read_text())
    assert info["dynamic_batch"] is True and info["arch_key"] == supernet.space.key(arch)


def test_export_of_a_token_model_in_the_fast_formats(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    supernet = load_supernet("tinylm.supernet:make_supernet")
    arch = supernet.space.sample(1, rng=0)[0]
    paths = export_subnet(supernet, arch, tmp_path, formats=["torchscript"])
    tokens = supernet.example_inputs(arch, 3)
    scripted = torch.jit.load(paths[0])
    torch.testing.assert_close(scripted(*tokens), supernet.subnet(arch)(*tokens))
    with pytest.raises(ValueError, match="unknown export format"):
        export_subnet(supernet, arch, tmp_path, formats=["tflite"])
