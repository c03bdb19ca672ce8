"""Derived nets measured where their LUT was made (issue 28, item 8): ``measured_on`` names the
device and batch; a GPU LUT on a CPU-only machine is measured on the CPU at batch 1 and said to be
not comparable (no time base, no LUT error); with CUDA here (faked: the measurement is recorded,
not run) the official GPU table's nets are measured on CUDA at batch 32."""
from __future__ import annotations

import math

import pytest
import torch

from tfnas_core.experiments import notebook as E
from tfnas_core.latency import measure
from tfnas_core.latency.timing import Timing

VARIANT = E.table3_variants()[:1]
GPU_LUT = "../shared/reference/official/latency_gpu.pkl"


def _ctx(root, **kw):
    return E.Context("smoke", runs_root=str(root), archive_root=None, progress=False, name="test", **kw)


@pytest.fixture()
def fake_cuda_measure(monkeypatch):
    """``measure_many`` / ``measure`` recording where they were asked to time (nothing is timed)."""
    calls = []

    def many(specs, device="cpu", batch=None, threads=None, **kw):
        calls.append((device, batch, threads))
        return {"timings": {n: Timing(5.0, 5.0, 0.0, 5.0, 5.0, 3) for n in specs}, "speed_factor": None}

    def one(spec, device="cpu", batch=None, threads=None, **kw):
        calls.append((device, batch, threads))
        return {"ms": 5.0}

    monkeypatch.setattr(measure, "measure_many", many)
    monkeypatch.setattr(measure, "measure", one)
    return calls


def test_mini_style_cpu_lut_is_measured_like_before_and_named(tmp_path):
    per_seed = E.ablation(_ctx(tmp_path), VARIANT, [2])
    row = per_seed.iloc[0]
    assert row["measured_on"] == "cpu b1" and row["measured_ms"] > 0
    assert math.isfinite(row["measured_ms_lut_base"]) and math.isfinite(row["speed_factor"])  # the CPU LUT's time base
    s = E.summarise(per_seed)
    assert s.loc[0, "measured_on"] == "cpu b1"
    assert list(s.columns[list(s.columns).index("measured_ms"):][:3]) == ["measured_ms", "measured_ms_ci95", "measured_on"]


def test_gpu_lut_without_cuda_is_measured_on_the_cpu_and_not_compared(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    per_seed = E.ablation(_ctx(tmp_path, search_overrides={"lut": GPU_LUT}), VARIANT, [2])
    row = per_seed.iloc[0]
    assert row["measured_on"] == "cpu b1, not the LUT's cuda b32" and row["measured_ms"] > 0
    assert math.isnan(row["measured_ms_lut_base"]) and math.isnan(row["speed_factor"])
    assert E.summarise(per_seed).loc[0, "measured_on"] == row["measured_on"]


def test_gpu_lut_with_cuda_is_measured_on_cuda_at_batch_32(tmp_path, monkeypatch, fake_cuda_measure):
    E.ablation(_ctx(tmp_path, search_overrides={"lut": GPU_LUT}), VARIANT, [2])  # the runs, on this CPU
    assert fake_cuda_measure == [("cpu", 1, 1)]
    fake_cuda_measure.clear()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # CUDA 'here' for the measurement only
    per_seed = E.ablation(_ctx(tmp_path, search_overrides={"lut": GPU_LUT}), VARIANT, [2])
    assert fake_cuda_measure == [("cuda", 32, None)]
    assert per_seed.loc[0, "measured_on"] == "cuda b32" and per_seed.loc[0, "measured_ms"] == 5.0
    fake_cuda_measure.clear()
    E.ablation(_ctx(tmp_path, search_overrides={"lut": GPU_LUT}, measure_device="cpu"), VARIANT, [2])
    assert fake_cuda_measure == [("cpu", 1, 1)]  # asked for the CPU: batch 1, one thread
    with pytest.raises(ValueError, match="measure_device"):
        _ctx(tmp_path, measure_device="gpu")


def test_zoo_table_measures_where_the_lut_was_made(monkeypatch, fake_cuda_measure):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    z = E.zoo_table(GPU_LUT, repeats=1, min_time_s=0.0)
    assert set(fake_cuda_measure) == {("cuda", 32, None)} and set(z["measured_on"]) == {"cuda b32"}
    b = z.set_index("architecture").loc["TF-NAS-B"]
    assert b["lut_error_pct"] == pytest.approx(100 * (b["lut_ms"] - 5.0) / 5.0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    fake_cuda_measure.clear()
    z = E.zoo_table(GPU_LUT, repeats=1, min_time_s=0.0)
    assert set(fake_cuda_measure) == {("cpu", 1, 1)} and set(z["measured_on"]) == {"cpu b1, not the LUT's cuda b32"}
    assert z["lut_error_pct"].isna().all() and z["lut_ms"].notna().any()  # not compared
    assert "measured_on" not in E.zoo_table(GPU_LUT, measure_on=False).columns
