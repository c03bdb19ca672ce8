"""Issue 29 (part 3): every size-like setting and flag has an upper bound, checked before work starts.

The issue's cases (``threads=100000`` ended in a segmentation fault leaving an empty ``--out``;
``resolution=100000``, ``synthetic_n=10**10`` and ``measure --batch 100000`` in tracebacks after
trying to allocate 60-400 GB) are each refused with one line, exit 2, naming the setting, and
leave nothing behind.  Bounds past the static ones are held against this machine: threads
against its cores (``checks.check_threads``), a lower bound of the memory against its memory
(``checks.check_memory``).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tfnas_core.utils import checks
from tfnas_core.latency import build as lut_build
from tfnas_core.latency import measure
from tfnas_core.train import config as profiles
from tfnas_core.search import config as search_config
from tfnas_core.latency import timing
from tfnas_core.train import retrain as train
from tfnas_core.arch import zoo
from conftest import refused
from conftest import run_cli as cli

CORES = checks.usable_cpus()
TOTAL, _ = checks.host_memory()




def nothing_in(folder: Path) -> None:
    assert list(folder.iterdir()) == [], list(folder.iterdir())


@pytest.fixture
def no_allocation(monkeypatch):
    """Where a check is missing, fail at the allocation it should have prevented (instead of
    asking this shared machine for twice its memory)."""
    def fail(*a, **k):
        raise AssertionError("allocated: the size was not refused before")

    from tfnas_core.data import datasets as data

    monkeypatch.setattr(data, "synthetic", fail)
    monkeypatch.setattr(torch, "randn", fail)


def pool_past_memory(resolution: int) -> int:
    """A synthetic pool size whose memory floor (12 bytes a pixel) is twice this machine's memory."""
    return 2 * TOTAL // (12 * resolution ** 2) + 1


# ----------------------------------------------------------------------------- search


SEARCH_CASES = [  # (setting, what the line names)
    ("threads=100000", "threads"), ("resolution=100000", "resolution"), ("synthetic_n=10000000000", "synthetic_n"),
    ("batch_size=100000", "batch_size"), ("num_workers=100000", "num_workers"), ("subset=10000000000", "subset"),
    ("epochs=1000000000", "epochs"),
]


@pytest.mark.parametrize("setting, field", SEARCH_CASES, ids=[s for s, _ in SEARCH_CASES])
def test_search_size_refused_before_anything_is_written(tmp_path, capsys, monkeypatch, setting, field):
    monkeypatch.chdir(tmp_path)
    refused(cli(["search", "--profile", "smoke", "--set", setting, "--out", tmp_path / "run"], capsys),
            f"{field} must be in [")
    nothing_in(tmp_path)  # no --out, no data_splits/


@pytest.mark.skipif(CORES >= checks.MAX_THREADS, reason="this machine has as many cores as the static bound")
def test_search_threads_past_the_cores_refused_naming_the_count(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = refused(cli(["search", "--profile", "smoke", "--set", f"threads={CORES + 1}", "--out", tmp_path / "run"],
                      capsys), f"threads={CORES + 1}", f"the {CORES} CPU core", f"at most {CORES}")
    assert "must be in" not in err  # the machine's bound, not the static one
    nothing_in(tmp_path)


@pytest.mark.skipif(TOTAL is None or pool_past_memory(1024) > checks.IMAGES.hi, reason="memory unknown or huge")
def test_search_pool_past_this_machines_memory_refused(tmp_path, capsys, monkeypatch, no_allocation):
    monkeypatch.chdir(tmp_path)
    n = pool_past_memory(1024)
    refused(cli(["search", "--profile", "smoke", "--set", f"synthetic_n={n}", "--set", "resolution=1024",
                 "--out", tmp_path / "run"], capsys), f"synthetic_n={n}", "resolution=1024", "needs at least",
            f"has {TOTAL / 1e9:.1f} GB in all")
    nothing_in(tmp_path)


def test_search_limits_bound_every_size_field():
    for name in ("threads", "resolution", "batch_size", "num_workers", "subset", "synthetic_n", "epochs"):
        assert search_config.LIMITS[name].hi is not None, name
    search_config.check(replace(search_config.smoke(), threads=checks.MAX_THREADS, resolution=1024))
    with pytest.raises(search_config.SearchConfigError, match="resolution must be in"):
        search_config.check(replace(search_config.smoke(), resolution=1025))


def test_profiles_settings_are_far_below_the_memory_floor_refusal():
    """The floors of every profile's real settings (the paper search at batch 32, 224 px, which
    peaks near 15 GB on a CPU; the paper retraining at batch 512) stay near 1 GB, so no machine
    that can run them is turned away; each profile resolves here on the CPU without refusal."""
    for name in search_config.PROFILES:
        cfg = search_config.resolve(replace(search_config.get_profile(name), device="cpu"), cuda_available=False)
        assert sum(n for _, n, _ in search_config.memory_floor(cfg)) < 0.1e9, name
        retrain = replace(profiles.get_profile(name), device="cpu")
        assert sum(n for _, n, _ in train.memory_floor(retrain, zoo.load("TF-NAS-A"))) < 2.5e9, name
        train.check_sizes(retrain, zoo.load("TF-NAS-A"))


def test_search_memory_floor_counts_the_pool_and_a_step():
    cfg = replace(search_config.smoke(), synthetic_n=1000, resolution=100, batch_size=10, device="cpu")
    floors = {what.split(" (")[0]: n for what, n, _ in search_config.memory_floor(cfg)}
    assert floors["the synthetic pool"] == 12 * 1000 * 100 ** 2
    stem = 8  # 32 channels x width 0.25, stride 1
    assert floors["a search step"] == 4 * 10 * (1 * 100 ** 2 + stem * 100 ** 2)


def test_memory_floor_past_the_total_is_refused_naming_both(monkeypatch):
    monkeypatch.setattr(checks, "host_memory", lambda: (8 * 10**9, 3 * 10**9))
    cfg = replace(search_config.smoke(), synthetic_n=10**6, resolution=32, device="cpu")  # 12.3 GB floor
    with pytest.raises(search_config.SearchConfigError,
                       match=r"synthetic_n=1000000 at resolution=32\) needs at least 12.3 GB of memory, "
                             r"this machine has 8.0 GB in all \(3.0 GB available now\)"):
        search_config.check_memory(cfg)
    search_config.check_memory(replace(cfg, synthetic_n=10**5))  # 1.2 GB: more than available is not refused
    checks.check_memory(8 * 10**9, "exactly the total")


# ----------------------------------------------------------------------------- train


TRAIN_CASES = [
    ("threads=100000", "threads must be in ["), ("resolution=100000", "resolution must be in ["),
    ("train_subset=10000000000", "train_subset must be in ["), ("val_subset=10000000000", "val_subset must be in ["),
    ("batch_size=100000", "batch_size must be in ["), ("eval_batch_size=100000", "eval_batch_size must be in ["),
    ("num_workers=100000", "num_workers must be in ["), ("epochs=1000000000", "epochs must be in ["),
    (f"threads={CORES + 1}", f"the {CORES} CPU core"),
]


@pytest.mark.parametrize("setting, needle", TRAIN_CASES, ids=[s for s, _ in TRAIN_CASES])
def test_train_size_refused_before_anything_is_written(tmp_path, capsys, monkeypatch, setting, needle):
    monkeypatch.chdir(tmp_path)
    refused(cli(["train", "zoo:TF-NAS-B", "--profile", "smoke", "--set", setting, "--out", tmp_path / "run"], capsys),
            needle)
    nothing_in(tmp_path)


@pytest.mark.skipif(TOTAL is None or pool_past_memory(1024) > checks.IMAGES.hi, reason="memory unknown or huge")
def test_train_pool_past_this_machines_memory_refused(tmp_path, capsys, monkeypatch, no_allocation):
    monkeypatch.chdir(tmp_path)
    n = pool_past_memory(1024)
    refused(cli(["train", "zoo:TF-NAS-B", "--profile", "smoke", "--set", f"train_subset={n}", "--set", "resolution=1024",
                 "--out", tmp_path / "run"], capsys), "the synthetic data", "needs at least")
    nothing_in(tmp_path)


# ----------------------------------------------------------------------------- measure, fidelity, lut build


MEASURE_CASES = [
    (["--threads", "100000"], "--threads"), (["--batch", "100000"], "--batch"), (["--repeats", "10000000"], "--repeats"),
    (["--warmup", "10000000"], "--warmup"), (["--min-time", "1e9"], "--min-time"),
]


@pytest.mark.parametrize("cmd", [["measure", "zoo:TF-NAS-B"], ["fidelity", "--lut", "x.json"]], ids=["measure", "fidelity"])
@pytest.mark.parametrize("flags, needle", MEASURE_CASES, ids=[" ".join(f) for f, _ in MEASURE_CASES])
def test_measure_flag_past_its_bound_refused(tmp_path, capsys, monkeypatch, cmd, flags, needle):
    monkeypatch.chdir(tmp_path)
    refused(cli([*cmd, *flags], capsys), f"argument {needle}: expected")
    nothing_in(tmp_path)


def test_fidelity_random_is_bounded(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refused(cli(["fidelity", "--lut", "x.json", "--random", "1000000"], capsys), "argument --random")
    refused(cli(["fidelity", "--lut", "x.json", "--random", "-1"], capsys), "argument --random")


@pytest.mark.parametrize("cmd", [["measure", "zoo:TF-NAS-B"], ["fidelity", "--lut", "x.json"]], ids=["measure", "fidelity"])
def test_measure_threads_past_the_cores_refused(tmp_path, capsys, monkeypatch, cmd):
    monkeypatch.chdir(tmp_path)
    refused(cli([*cmd, "--threads", str(CORES + 1)], capsys), f"--threads={CORES + 1}", f"the {CORES} CPU core")


def batch_past_memory() -> int:
    return TOTAL // measure.paper_input_floor(1) + 1


@pytest.mark.skipif(TOTAL is None or batch_past_memory() > checks.BATCH.hi, reason="memory unknown or huge")
def test_measure_batch_past_this_machines_memory_refused(tmp_path, capsys, monkeypatch, no_allocation):
    monkeypatch.chdir(tmp_path)
    b = batch_past_memory()
    refused(cli(["measure", "zoo:TF-NAS-B", "--batch", b], capsys), f"--batch {b} (at 224 px) needs at least",
            f"has {TOTAL / 1e9:.1f} GB in all")
    with pytest.raises(ValueError, match=f"batch {b} .* needs at least"):  # the library call too
        measure.measure(zoo.load("TF-NAS-B"), "cpu", b)


def test_measure_floor_is_the_input_and_the_stem_output():
    assert measure.paper_input_floor(32) == 4 * 32 * (3 * 224 ** 2 + 32 * 112 ** 2)


@pytest.mark.skipif(TOTAL is None or batch_past_memory() > checks.BATCH.hi, reason="memory unknown or huge")
@pytest.mark.parametrize("flags, needle", [(["--threads", str(CORES + 1)], f"the {CORES} CPU core"),
                                           (["--batch", "BIG"], "needs at least"),
                                           (["--calib", "100000"], "calib must be in")])
def test_lut_build_size_refused_before_the_partial_file(tmp_path, capsys, monkeypatch, no_allocation, flags, needle):
    monkeypatch.chdir(tmp_path)
    flags = [str(batch_past_memory()) if f == "BIG" else f for f in flags]
    refused(cli(["lut", "build", "--out", tmp_path / "x.json", *flags], capsys), needle)
    nothing_in(tmp_path)  # neither x.json nor x.json.partial


def test_lut_build_checks_its_sizes():
    space = lut_build.get_space("tfnas")
    lut_build.check_build_sizes(space, "cpu", 1, 1, 5, 20, 32, 25)  # the defaults
    for bad, match in [(dict(repeats=10**7), "repeats must be in"), (dict(warmup=10**7), "warmup must be in"),
                       (dict(calib_rounds=0), "calib_rounds must be in"), (dict(batch=10**6), "batch must be in")]:
        args = dict(space=space, device="cpu", batch=1, threads=1, warmup=5, repeats=20, calib=32, calib_rounds=25)
        with pytest.raises(ValueError, match=match):
            lut_build.check_build_sizes(**{**args, **bad})


# ----------------------------------------------------------------------------- threads where they are set


def test_cpu_threads_refuses_more_than_the_cores_before_touching_torch():
    before = torch.get_num_threads()
    with pytest.raises(ValueError, match=f"threads={CORES + 1}: more threads than the {CORES} CPU core"):
        with timing.cpu_threads(CORES + 1):
            pass
    with pytest.raises(ValueError, match="threads must be in"):
        with timing.cpu_threads(100000):
            pass
    assert torch.get_num_threads() == before
    with timing.cpu_threads(CORES):
        assert torch.get_num_threads() == CORES
    with timing.cpu_threads(None):
        assert torch.get_num_threads() == before


def test_usable_cpus_is_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(checks.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert checks.usable_cpus() == 3
    with pytest.raises(ValueError, match="--threads=4: more threads than the 3 CPU cores .* at most 3"):
        checks.check_threads(4, "--threads")
    checks.check_threads(3, "--threads")


def test_host_memory_reads_meminfo_and_the_cgroup_limit(monkeypatch):
    monkeypatch.setattr(checks, "_meminfo", lambda: {"MemTotal": 64 * 2**30, "MemAvailable": 40 * 2**30})
    monkeypatch.setattr(checks, "_cgroup_limit", lambda: None)
    assert checks.host_memory() == (64 * 2**30, 40 * 2**30)
    monkeypatch.setattr(checks, "_cgroup_limit", lambda: 16 * 2**30)
    assert checks.host_memory() == (16 * 2**30, 16 * 2**30)
    if TOTAL is not None:  # this machine's, as /proc/meminfo says
        assert TOTAL > 10**8
