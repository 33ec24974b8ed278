"""The quickstart command: measure a few sub-networks on two hardware configs, reuse them on a rerun."""

import pandas as pd
import pytest

from nastools import hardware
from nastools.experiments import quickstart
from nastools.hardware import HardwareConfig
from nastools.store import ResultStore


@pytest.fixture
def cheap_hardware(monkeypatch):
    """Two single-thread configs: the quickstart measures on the first and the last default config.

    The machine's defaults end with all cores at batch 64, which on busy shared cores costs most of the
    run; what is tested (two configs, one latency column each) is the same with these.
    """
    configs = [
        HardwareConfig(threads=1, batch_size=1),
        HardwareConfig(threads=1, batch_size=2),
        HardwareConfig(threads=1, batch_size=4),
    ]
    monkeypatch.setattr(hardware, "default_hardware_configs", lambda: configs)
    return configs


def test_quickstart_measures_and_reuses(tmp_path, capsys, cheap_hardware, one_thread):
    table = quickstart.main(["--n-archs", "1", "--out-dir", str(tmp_path)])
    written = pd.read_csv(tmp_path / "measurements.csv")
    assert len(written) == len(table) == 3  # largest, smallest, one random
    assert {"top1", "macs", "params"} <= set(written.columns)
    latency = [c for c in written.columns if c.startswith("latency_ms@")]
    assert latency == ["latency_ms@cpu-t1-b1", "latency_ms@cpu-t1-b4"]  # the first and the last config
    assert (written[latency] > 0).all().all()
    largest, smallest = written.iloc[0], written.iloc[1]
    assert largest.macs > smallest.macs and largest.top1 > smallest.top1
    n_rows = len(ResultStore(tmp_path / "results.sqlite").measurements())
    assert n_rows == 3 * 5  # top1, macs, params and two latencies of each arch
    quickstart.main(["--n-archs", "1", "--out-dir", str(tmp_path)])
    assert len(ResultStore(tmp_path / "results.sqlite").measurements()) == n_rows
    out = capsys.readouterr().out
    assert "top1" in out and "digits-mbv3" in out and "measurements.csv" in out


def test_quickstart_measures_any_supernet_by_name(tmp_path, capsys, cheap_hardware):
    table = quickstart.main(
        ["--supernet", "helpers:toy_supernet", "--n-archs", "2", "--out-dir", str(tmp_path)]
    )
    assert len(table) == 4 and {"score", "macs", "params"} <= set(table.columns)
    assert table["score"].iloc[0] > table["score"].iloc[1]  # largest before smallest
    assert "score" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--n-archs", "-1"], "--n-archs must be >= 0"),
        (["--supernet", "no-such-supernet"], "unknown supernet 'no-such-supernet'"),
    ],
)
def test_quickstart_reports_bad_arguments(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        quickstart.main([*argv, "--out-dir", str(tmp_path)])
    assert info.value.code == 2 and message in capsys.readouterr().err
