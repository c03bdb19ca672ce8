"""Whole-network latency and LUT fidelity."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tfnas_core import latency, measure, zoo
from tfnas_core.space import get_space

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(warmup=1, repeats=3, min_time_s=0.0)


def _constant_lut(space: str, base: float, per_layer: float) -> latency.LUT:
    entries = {k: {w: per_layer for w in range(i.lo, i.hi + 1)} for k, i in latency.space_keys(get_space(space)).items()}
    return latency.LUT(base=base, entries=entries)


def test_measure_cpu_defaults_to_batch_1_one_thread():
    r = measure.measure(zoo.load("TF-NAS-D"), "cpu", **FAST)
    assert r["batch"] == 1 and r["threads"] == 1 and r["device"] == "cpu" and r["runs"] == 3
    assert 0 < r["min_ms"] <= r["median_ms"] and r["mean_ms"] > 0 and r["iqr_ms"] >= 0
    assert r["lut_ms"] is None and r["flops_m"] == pytest.approx(218.8, abs=0.5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_measure_refuses_missing_cuda():
    with pytest.raises(ValueError, match="no CUDA device"):
        measure.measure(zoo.load("TF-NAS-D"), "cuda", **FAST)


def test_fidelity_compares_lut_with_measurement_and_skips_what_it_cannot_predict():
    lut = _constant_lut("tfnas", base=2.0, per_layer=0.5)
    specs = {"TF-NAS-D": zoo.load("TF-NAS-D"), "TF-NAS-MBV2-B": zoo.load("TF-NAS-MBV2-B")}
    df = measure.fidelity(lut, specs, "cpu", **FAST).set_index("name")
    d = df.loc["TF-NAS-D"]
    assert d["lut_ms"] == pytest.approx(2.0 + 0.5 * len(specs["TF-NAS-D"].mids))
    assert d["median_ms"] > 0 and d["abs_err_ms"] == pytest.approx(d["lut_ms"] - d["median_ms"])
    assert d["rel_err_pct"] == pytest.approx(100 * d["abs_err_ms"] / d["median_ms"])
    m = df.loc["TF-NAS-MBV2-B"]
    assert m["note"].startswith("skipped:") and "no entry for key" in m["note"]
    text = measure.format_fidelity(df.reset_index())
    assert "TF-NAS-D" in text and "skipped" in text and "over 1 architectures" in text


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "tfnas_core", *args], capture_output=True, text=True, env=env, timeout=120)


def test_measure_cli_json_keys_and_lut(tmp_path):
    lut_path = _constant_lut("tfnas", 1.0, 0.25).save(tmp_path / "lut.json")
    p = _cli("measure", "zoo:TF-NAS-D", "--device", "cpu", "--json", "--lut", str(lut_path),
             "--warmup", "1", "--repeats", "3", "--min-time", "0")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert {"median_ms", "iqr_ms", "mean_ms", "lut_ms", "device", "batch", "threads"} <= set(r)
    assert r["median_ms"] > 0 and r["lut_ms"] == pytest.approx(1.0 + 0.25 * len(zoo.load("TF-NAS-D").mids), abs=1e-3)
    assert (r["device"], r["batch"], r["threads"]) == ("cpu", 1, 1)


def test_measure_and_fidelity_cli_bad_input_exit_2(tmp_path):
    p = _cli("measure", str(tmp_path / "missing.json"), "--json")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and p.stdout == ""
    p = _cli("fidelity", "--lut", str(tmp_path / "nolut.json"))
    assert p.returncode == 2 and p.stderr.count("\n") == 1
