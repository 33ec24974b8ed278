"""The repository's data/ folder is installed as the package nastools.checkpoints (see pyproject.toml)."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["nastools", "nastools.*"]), "nastools.checkpoints"],
    package_dir={"nastools.checkpoints": "data"},
)
