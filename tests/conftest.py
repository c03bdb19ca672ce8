import os
import subprocess
from pathlib import Path

import pytest

# ../shared beside the checkout; TFNAS_SHARED names it where the tests run from a copy (make mutate
# runs them from mutants/, one folder deeper)
SHARED = Path(os.environ.get("TFNAS_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
OFFICIAL_LUT = SHARED / "reference" / "official" / "latency_gpu.pkl"
OFFICIAL_LISTS = tuple(SHARED / "reference" / "official" / f"ImageNet-100-effb0_{part}_cls_ratio0.8.txt"
                       for part in ("train", "val"))


@pytest.fixture(scope="session")
def official_lut():
    if not OFFICIAL_LUT.is_file():
        pytest.skip(f"official GPU LUT not found at {OFFICIAL_LUT} (../shared/reference is absent on this machine)")
    from tfnas_core.latency import lut as latency

    return latency.load(OFFICIAL_LUT)


@pytest.fixture(scope="session")
def fake_imagenet_root(tmp_path_factory):
    """A fake ImageNet root (``tfnas_core.experiments.fake_imagenet.make``, about 3 s): train/<wnid>/<file> for
    all 127,720 files of the official ImageNet-100 lists, val/<wnid>/ with 10 images per class,
    grayscale / CMYK / PNG-named-JPEG files among them (``root/fake_imagenet.json`` names them).
    Shared by the session: read only (copy it, e.g. ``shutil.copytree(root, dst,
    copy_function=os.link)``, to change it)."""
    absent = [p for p in OFFICIAL_LISTS if not p.is_file()]
    if absent:
        pytest.skip(f"official ImageNet-100 list {absent[0]} not found (../shared/reference is absent on this machine)")
    from tfnas_core.experiments import fake_imagenet

    root = tmp_path_factory.mktemp("fake-imagenet") / "imagenet"
    fake_imagenet.make(root, *OFFICIAL_LISTS)
    return root


@pytest.fixture(scope="session")
def zoo_specs():
    from tfnas_core.arch import zoo

    return zoo.load_all()


def pytest_configure(config):
    """One intra-op thread: the test networks are tiny, and on a busy 2-core machine a
    two-thread pool spin-waits (measured: test_zoo.py 8-11 s per forward test with two threads, 2.9 s for all 38 tests with one)."""
    import torch

    torch.set_num_threads(1)


# Fixtures that take minutes (they execute every notebook, or rehearse one on the paper path): every
# test using one is `slow` too, so that `pytest -m "not slow"` (make test-quick) never sets them up.
SLOW_FIXTURES = {"executed", "rehearsal"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def slurm_env() -> dict | None:
    """The environment of the SLURM that ../shared/slurm/slurm-up.sh started (its SLURM_CONF), if
    one answers ``sinfo``; None otherwise."""
    base = Path(os.environ.get("LOCAL_SLURM_DIR", Path(os.environ.get("TMPDIR", "/tmp")) / "local-slurm"))
    conf = os.environ.get("SLURM_CONF") or (str(base / "etc" / "slurm.conf") if (base / "slurm.env").is_file() else None)
    if not conf:
        return None
    env = {**os.environ, "SLURM_CONF": conf, "PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin"}
    try:
        r = subprocess.run(["sinfo", "-h", "-o", "%a"], env=env, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return env if r.returncode == 0 and "up" in r.stdout else None


@pytest.fixture(scope="session")
def slurm():
    """A running SLURM for the executor tests (SLURM_CONF and PATH set for this session), or a skip."""
    env = slurm_env()
    if env is None:
        pytest.skip("no SLURM answers (sinfo): start one with ../shared/slurm/slurm-up.sh (.ci/run does)")
    mp = pytest.MonkeyPatch()
    mp.setenv("SLURM_CONF", env["SLURM_CONF"])
    mp.setenv("PATH", env["PATH"])
    yield env
    mp.undo()


# ----------------------------------------------------------------------------- the CLI's one-line errors


def run_cli(argv, capsys) -> tuple[int, str, str]:
    """``python -m tfnas_core ARGV`` in process: (exit code, stdout, stderr)."""
    from tfnas_core.cli.main import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse usage errors
        code = e.code
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def refused(result: tuple[int, str, str], *needles: str) -> str:
    """Exit 2, nothing on stdout, one ``error:`` line on stderr holding every needle (no traceback)."""
    code, out, err = result
    assert code == 2, (code, out, err)
    assert out == "" and err.count("\n") == 1 and err.startswith("error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, (n, err)
    return err

