from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
OFFICIAL_LUT = SHARED / "reference" / "official" / "latency_gpu.pkl"


@pytest.fixture(scope="session")
def official_lut():
    if not OFFICIAL_LUT.is_file():
        pytest.skip(f"official GPU LUT not found at {OFFICIAL_LUT} (../shared/reference is absent on this machine)")
    from tfnas_core import latency

    return latency.load(OFFICIAL_LUT)


@pytest.fixture(scope="session")
def zoo_specs():
    from tfnas_core import zoo

    return zoo.load_all()
