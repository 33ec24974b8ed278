import os
from pathlib import Path

import pytest

SHARED_DATA = Path(
    os.environ.get("NASTOOLS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public OFA measurement data (../shared/data); tests needing it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"public measured data not found at {SHARED_DATA} (set NASTOOLS_SHARED_DATA)")
    return SHARED_DATA
