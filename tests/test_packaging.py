"""A plain (non-editable) install is a working package with its embedded supernets."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_non_editable_install_carries_the_checkpoints_and_metadata(tmp_path):
    target = tmp_path / "site"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    assert not any("deprecat" in line.lower() for line in build.stderr.splitlines()), build.stderr
    probe = textwrap.dedent(
        """
        import importlib.metadata, sys
        import nastools
        assert nastools.__file__.startswith(sys.argv[1]), nastools.__file__
        from nastools.supernet import load_supernet
        for name in ("digits-mbv3", "digits-resnet"):
            supernet = load_supernet(name)
            smallest, largest = supernet.extremes()
            assert supernet.evaluate(largest, "top1") > supernet.evaluate(smallest, "top1")
        meta = importlib.metadata.metadata("nastools")
        print(meta["License-Expression"], (sys.argv[1] + "/nastools/py.typed"))
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", probe, str(target)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    license_expression, typed = run.stdout.split()
    assert license_expression == "Apache-2.0" and Path(typed).is_file()
    assert (target / "nastools" / "checkpoints" / "digits-mbv3.pt").is_file()
