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


def pytest_configure(config):
    """One intra-op thread: the test networks are tiny, and on a busy 2-core machine a
    two-thread pool spin-waits (measured: test_zoo.py 8-11 s per forward test with two threads, 2.9 s for all 38 tests with one)."""
    import torch

    torch.set_num_threads(1)
