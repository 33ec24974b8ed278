import os
import urllib.parse
from pathlib import Path

import pytest
import torch

from nastools import datasets

SHARED_DATA = Path(
    os.environ.get("NASTOOLS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public OFA measurement data (../shared/data); tests needing it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"public measured data not found at {SHARED_DATA} (set NASTOOLS_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def offline_data_cache(monkeypatch, tmp_path_factory):
    """No test reaches the internet, nor the user's data cache or OFA files.

    Downloads are off, the data cache is an empty folder of each test's own, and only a local URL
    may be opened: a test of fetching turns downloads on against a local server.
    """
    monkeypatch.setenv(datasets.OFFLINE_ENV, "1")
    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path_factory.mktemp("data-cache")))
    monkeypatch.delenv(datasets.MIRROR_ENV, raising=False)
    monkeypatch.delenv("NASTOOLS_OFA_DATA", raising=False)
    open_url = datasets._urlopen

    def local_only(url, timeout):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "file" and parts.hostname not in ("127.0.0.1", "localhost"):
            raise AssertionError(f"a test tried to download {url}; tests fetch from a local server only")
        return open_url(url, timeout)

    monkeypatch.setattr(datasets, "_urlopen", local_only)


@pytest.fixture
def one_thread():
    """Validations on one thread: small forward passes are fastest, and immune to busy cores, there."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
