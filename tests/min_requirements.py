"""Print the declared minimum version of every dependency as a pin (``name==floor``), one per line.

``make test-mindeps`` installs these (torch from ``TORCH_SPEC``) and runs the fast tier on them, so the
floors in pyproject.toml are versions that were run, not guesses. torch's floor and ``requires-python``
are not pinned here: they must name what is run, the Makefile's ``TORCH_SPEC`` and the Python it is run
with (:func:`check_floors` refuses them otherwise).
"""

import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"


def check_floors(python: tuple[int, int] = sys.version_info[:2]) -> None:
    """Raise unless torch's floor is the Makefile's ``TORCH_SPEC`` and ``requires-python`` is ``python``.

    Example:
        >>> check_floors((3, 11))
    """
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    wanted_python = f">={python[0]}.{python[1]}"
    if project["requires-python"] != wanted_python:
        raise ValueError(
            f"requires-python is {project['requires-python']!r}, but the tests run on Python "
            f"{python[0]}.{python[1]}: declare {wanted_python!r}"
        )
    spec = re.search(r"^TORCH_SPEC \?= torch==(\d+)\.(\d+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    floor = next(r for r in project["dependencies"] if re.match(r"torch\s*>=", r))
    if spec is None or floor.replace(" ", "") != f"torch>={spec[1]}.{spec[2]}":
        pinned = f"torch=={spec[1]}.{spec[2]}" if spec else "no TORCH_SPEC"
        raise ValueError(f"pyproject.toml declares {floor!r}, the Makefile runs {pinned}: make them agree")


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
    check_floors()
    sys.stdout.write("\n".join(minimum_pins()) + "\n")
