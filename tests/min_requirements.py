"""Print the declared minimum version of every dependency as a pin (``name==floor``), one per line.

``make test-mindeps`` installs these (torch from ``TORCH_SPEC``) and runs the fast tier on them, so the
floors in pyproject.toml are versions that were run, not guesses.
"""

import re
import sys
from pathlib import Path

import tomllib

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def minimum_pins(skip: tuple[str, ...] = ("torch",)) -> list[str]:
    """``name==floor`` for every runtime dependency with a ``>=`` floor, except ``skip``."""
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    pins = []
    for requirement in dependencies:
        match = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)\s*>=\s*([0-9][0-9A-Za-z.]*)", requirement.strip())
        if match is None:
            raise ValueError(f"dependency {requirement!r} has no '>=' floor; declare the version it needs")
        name, floor = match.groups()
        if name.split("[")[0] not in skip:
            pins.append(f"{name}=={floor}")
    return pins


if __name__ == "__main__":
    sys.stdout.write("\n".join(minimum_pins()) + "\n")
