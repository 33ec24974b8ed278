"""Shared bits of the benchmark scripts: where results go and the machine they were measured on."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import torch

RESULTS = Path(__file__).resolve().parent / "results"


def machine_header() -> str:
    """Markdown lines naming the machine, versions and date of a benchmark run."""
    return "\n".join(
        [
            f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
            f"- python {platform.python_version()}, torch {torch.__version__}, pandas {pd.__version__}",
        ]
        + ([f"- gpu: {torch.cuda.get_device_name()}"] if torch.cuda.is_available() else [])
    )


def write_results(name: str, title: str, summary: str, table: pd.DataFrame) -> Path:
    """Write ``results/<name>.md`` (header, summary, table) and ``results/<name>.csv``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    table.to_csv(RESULTS / f"{name}.csv", index=False)
    markdown = f"# {title}\n\n{machine_header()}\n\n{summary}\n\n{table.to_markdown(index=False)}\n"
    path = RESULTS / f"{name}.md"
    path.write_text(markdown)
    return path
