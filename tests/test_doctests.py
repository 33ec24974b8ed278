"""Every docstring example in the package runs (those marked ``# doctest: +SKIP`` need data or time)."""

import doctest
import importlib
import pkgutil

import pytest

import nastools

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(nastools.__path__, prefix="nastools.")
    if not info.name.endswith("__main__")
)


#: Modules whose examples need the optional ``alternatives`` extra (``pip install 'nastools[alternatives]'``).
ALTERNATIVES = "nastools.search.alternatives"


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    if name.startswith(ALTERNATIVES):
        for library in ("optuna", "botorch", "syne_tune"):
            pytest.importorskip(library, reason="the alternatives extra is not installed")
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    failures, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert failures == 0, f"{name}: {failures} failing example(s)"
