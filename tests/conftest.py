import os
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(
    os.environ.get("NASTOOLS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public OFA measurement data (../shared/data); tests needing it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"public measured data not found at {SHARED_DATA} (set NASTOOLS_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def one_thread():
    """Validations on one thread: small forward passes are fastest, and immune to busy cores, there."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
