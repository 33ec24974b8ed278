import pandas as pd

from nastools import quickstart
from nastools.store import ResultStore


def test_quickstart_measures_and_reuses(tmp_path, capsys):
    table = quickstart.main(["--n-archs", "1", "--out-dir", str(tmp_path)])
    written = pd.read_csv(tmp_path / "measurements.csv")
    assert len(written) == len(table) == 3  # largest, smallest, one random
    assert {"top1", "macs", "params"} <= set(written.columns)
    latency = [c for c in written.columns if c.startswith("latency_ms@cpu-t1-b1")]
    assert latency and (written[latency[0]] > 0).all()
    largest, smallest = written.iloc[0], written.iloc[1]
    assert largest.macs > smallest.macs and largest.top1 > smallest.top1
    n_rows = len(ResultStore(tmp_path / "results.sqlite").measurements())
    quickstart.main(["--n-archs", "1", "--out-dir", str(tmp_path)])
    assert len(ResultStore(tmp_path / "results.sqlite").measurements()) == n_rows
    assert "top1" in capsys.readouterr().out
