"""Whole-network latency and LUT fidelity."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tfnas_core.latency import lut as latency
from tfnas_core.latency import measure
from tfnas_core.arch import zoo
from tfnas_core.arch.space import get_space

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(warmup=1, repeats=3, min_time_s=0.0)


def _constant_lut(space: str, base: float, per_layer: float) -> latency.LUT:
    entries = {k: {w: per_layer for w in range(i.lo, i.hi + 1)} for k, i in latency.space_keys(get_space(space)).items()}
    return latency.LUT(base=base, entries=entries)


def test_measure_cpu_defaults_to_batch_1_one_thread():
    r = measure.measure(zoo.load("TF-NAS-D"), "cpu", **FAST)
    assert r["batch"] == 1 and r["threads"] == 1 and r["device"] == "cpu" and r["runs"] == 3
    assert 0 < r["min_ms"] <= r["median_ms"] and r["mean_ms"] > 0 and r["iqr_ms"] >= 0
    assert r["ms"] == r["min_ms"] and r["estimator"] == "min" and r["clock"] == "thread"
    assert r["speed_factor"] is None and r["ms_lut_base"] is None
    assert r["lut_ms"] is None and r["flops_m"] == pytest.approx(218.8, abs=0.5)


def test_measure_refuses_missing_cuda(monkeypatch):
    """Runs on every machine: a GPU machine is made to look like one without CUDA."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA device"):
        measure.measure(zoo.load("TF-NAS-D"), "cuda", **FAST)


def test_fidelity_compares_lut_with_measurement_and_skips_what_it_cannot_predict():
    lut = _constant_lut("tfnas", base=2.0, per_layer=0.5)
    specs = {"TF-NAS-D": zoo.load("TF-NAS-D"), "TF-NAS-MBV2-B": zoo.load("TF-NAS-MBV2-B")}
    df = measure.fidelity(lut, specs, "cpu", n_random=2, **FAST)
    assert df.attrs["speed_factor"] is None and df.attrs["held_out"] and df.attrs["seed"] == 1
    assert list(df["group"]) == ["zoo", "zoo", "random", "random"]
    d = df.set_index("name").loc["TF-NAS-D"]
    assert d["lut_ms"] == pytest.approx(2.0 + 0.5 * len(specs["TF-NAS-D"].mids))
    assert 0 < d["ms"] <= d["median_ms"] and d["abs_err_ms"] == pytest.approx(d["lut_ms"] - d["ms"])
    assert d["rel_err_pct"] == pytest.approx(100 * d["abs_err_ms"] / d["ms"])
    m = df.set_index("name").loc["TF-NAS-MBV2-B"]
    assert m["note"].startswith("skipped:") and "no entry for key" in m["note"]
    s = measure.summary(df)
    assert s["all"]["n"] == 3 and s["random"]["n"] == 2 and s["zoo"]["n"] == 1
    assert s["all"]["max_abs_err_pct"] == pytest.approx(df["rel_err_pct"].abs().max())
    text = measure.format_fidelity(df)
    assert "TF-NAS-D" in text and "skipped" in text and "over 3 architectures" in text and "Spearman" in text


def test_spearman_is_rank_correlation():
    assert measure.spearman([1, 2, 3, 4], [10, 20, 30, 400]) == pytest.approx(1.0)
    assert measure.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert measure.spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)


def test_measure_time_base_lut_needs_drift_sentinels():
    lut = _constant_lut("tfnas", 1.0, 0.25)
    with pytest.raises(ValueError, match="no drift sentinels"):
        measure.measure(zoo.load("TF-NAS-D"), "cpu", lut=lut, time_base="lut", **FAST)
    with pytest.raises(ValueError, match="time_base"):
        measure.measure(zoo.load("TF-NAS-D"), "cpu", time_base="gpu", **FAST)


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "tfnas_core", *args], capture_output=True, text=True, env=env, timeout=120)


def test_measure_cli_json_keys_and_lut(tmp_path):
    lut_path = _constant_lut("tfnas", 1.0, 0.25).save(tmp_path / "lut.json")
    p = _cli("measure", "zoo:TF-NAS-D", "--device", "cpu", "--json", "--lut", str(lut_path),
             "--warmup", "1", "--repeats", "3", "--min-time", "0")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert {"ms", "median_ms", "iqr_ms", "mean_ms", "lut_ms", "device", "batch", "threads", "estimator"} <= set(r)
    assert r["median_ms"] > 0 and r["lut_ms"] == pytest.approx(1.0 + 0.25 * len(zoo.load("TF-NAS-D").mids), abs=1e-3)
    assert (r["device"], r["batch"], r["threads"]) == ("cpu", 1, 1)


@pytest.mark.slow
def test_measure_and_fidelity_cli_bad_input_exit_2(tmp_path):
    p = _cli("measure", str(tmp_path / "missing.json"), "--json")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and p.stdout == ""
    p = _cli("fidelity", "--lut", str(tmp_path / "nolut.json"))
    assert p.returncode == 2 and p.stderr.count("\n") == 1
    p = _cli("measure", "zoo:TF-NAS-D", "--estimator", "q5x")
    assert p.returncode == 2 and "estimator" in p.stderr and p.stderr.count("\n") == 1
    lut_path = _constant_lut("tfnas", 1.0, 0.25).save(tmp_path / "lut.json")
    for args in (("lut", "check", str(lut_path)), ("measure", "zoo:TF-NAS-D", "--lut", str(lut_path), "--time-base", "lut")):
        p = _cli(*args)
        assert p.returncode == 2 and "no drift sentinels" in p.stderr and p.stderr.count("\n") == 1 and p.stdout == ""


def test_fidelity_in_the_lut_time_base_uses_the_sentinels_speed_factor():
    from tfnas_core.latency import drift

    lut = _constant_lut("tfnas", 2.0, 0.5)
    lut.provenance.update(space="tfnas", device="cpu", batch_size=1, threads=1)
    lut.drift_sentinels = drift.make_sentinels("tfnas", {n: 5.0 for n in drift.sentinel_specs("tfnas")}, "min", "thread")
    df = measure.fidelity(lut, {"TF-NAS-D": zoo.load("TF-NAS-D")}, "cpu", n_random=0, **FAST)
    f = df.attrs["speed_factor"]
    assert f > 0
    d = df.iloc[0]
    assert d["rel_err_lut_base_pct"] == pytest.approx(100 * (d["lut_ms"] * f / d["ms"] - 1))
    assert "LUT's time base" in measure.format_fidelity(df)
    with pytest.raises(ValueError, match="also a sentinel name"):
        measure.measure_many({"calib-s0-00": zoo.load("TF-NAS-D")}, "cpu", repeats=1, min_time_s=0, warmup_s=0, lut=lut)


# ----------------------------------------------------------------------------- where the LUT was made


def test_lut_setting_from_provenance_and_the_official_pickles_by_content(tmp_path, official_lut):
    import shutil

    assert measure.lut_setting(official_lut) == {"device": "cuda", "batch": 32, "threads": None}
    cpu_pkl = Path(official_lut.source).with_name("latency_cpu.pkl")
    copy = tmp_path / "renamed.pkl"  # known by content, not by name
    shutil.copy(cpu_pkl, copy)
    assert measure.lut_setting(latency.load(copy)) == {"device": "cpu", "batch": 1, "threads": 1}
    edited = tmp_path / "latency_gpu.pkl"  # the official name, other content: unknown
    edited.write_bytes(Path(official_lut.source).read_bytes() + b"\n")
    assert measure.lut_setting(latency.load(edited)) is None
    ours = latency.load(ROOT / "tfnas_core" / "luts" / "cpu_local.json")
    assert measure.lut_setting(ours) == {"device": "cpu", "batch": 1, "threads": 1}
    assert measure.lut_setting(_constant_lut("tfnas", 1.0, 0.25)) is None


def test_measure_setting_follows_the_lut_where_its_device_is_here(official_lut):
    gpu = measure.measure_setting(official_lut, cuda_available=True)
    assert (gpu["device"], gpu["batch"], gpu["threads"], gpu["comparable"], gpu["label"]) == ("cuda", 32, None, True, "cuda b32")
    cpu = measure.measure_setting(official_lut, cuda_available=False)  # a CPU-only machine: CPU batch 1, said so
    assert (cpu["device"], cpu["batch"], cpu["threads"], cpu["comparable"]) == ("cpu", 1, 1, False)
    assert cpu["label"] == "cpu b1, not the LUT's cuda b32"
    asked = measure.measure_setting(official_lut, "cpu", cuda_available=True)
    assert asked["label"] == cpu["label"] and not asked["comparable"]
    mini = measure.measure_setting(latency.load(ROOT / "tfnas_core" / "luts" / "cpu_local.json"), cuda_available=True)
    assert (mini["device"], mini["batch"], mini["comparable"], mini["label"]) == ("cpu", 1, True, "cpu b1")
    none = measure.measure_setting(None, cuda_available=True)
    assert (none["device"], none["comparable"], none["label"]) == ("cpu", False, "cpu b1")
    unknown = measure.measure_setting(_constant_lut("tfnas", 1.0, 0.25))
    assert unknown["label"] == "cpu b1, the LUT's device unknown" and not unknown["comparable"]
    with pytest.raises(ValueError, match="device must be"):
        measure.measure_setting(official_lut, "tpu")


def test_lut_mismatch_one_line(official_lut):
    w = measure.lut_mismatch(official_lut, "cpu", 1, 1)
    assert w.startswith("warning: LUT ") and "measured on cuda b32, this measurement is cpu b1" in w and "\n" not in w
    assert measure.lut_mismatch(official_lut, "cuda", 32, None) is None
    assert "cuda b8" in measure.lut_mismatch(official_lut, "cuda", 8, None)
    assert measure.lut_mismatch(_constant_lut("tfnas", 1.0, 0.25), "cpu", 1, 1) is None  # unknown: no claim


def test_measure_cli_warns_when_the_lut_was_made_elsewhere(official_lut):
    fast = ("--warmup", "1", "--repeats", "2", "--min-time", "0", "--json")
    p = _cli("measure", "zoo:TF-NAS-D", "--lut", official_lut.source, *fast)
    assert p.returncode == 0, p.stderr
    assert p.stderr.count("\n") == 1 and "measured on cuda b32, this measurement is cpu b1" in p.stderr
    assert json.loads(p.stdout)["batch"] == 1
    p = _cli("measure", "zoo:TF-NAS-D", "--lut", str(ROOT / "tfnas_core" / "luts" / "cpu_local.json"), *fast)
    assert p.returncode == 0 and p.stderr == ""
