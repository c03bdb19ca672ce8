"""Measured latencies kept per machine (issue 32, item 6): a re-render from the archive times nothing
it timed before on this machine, so it changes no tracked file; REMEASURE=1 times again; another
request (other nets or settings) or another machine is timed anew; a broken store is one line."""
from __future__ import annotations

import json

import pytest

from tfnas_core.experiments import notebook as E
from tfnas_core.latency import measure
from tfnas_core.latency import measured
from tfnas_core.arch import zoo

FAST = dict(repeats=1, min_time_s=0.0, warmup_s=0.0)


@pytest.fixture()
def counted(monkeypatch):
    """Count the interleaved timings that really run."""
    calls = []
    real = measure.time_interleaved

    def timed(items, *a, **kw):
        calls.append(sorted(items))
        return real(items, *a, **kw)

    monkeypatch.setattr(measure, "time_interleaved", timed)
    monkeypatch.delenv(measured.ENV_REMEASURE, raising=False)
    return calls


def test_a_request_is_timed_once_per_machine_and_kept_in_one_file(tmp_path, counted):
    store = measured.MeasuredStore(tmp_path / "measured-smoke.json")
    specs = {"B": zoo.load("TF-NAS-B"), "D": zoo.load("TF-NAS-D")}
    first = measure.measure_many(specs, "cpu", store=store, **FAST)
    before = store.path.read_bytes()
    again = measure.measure_many(specs, "cpu", store=store, **FAST)
    assert counted == [["B", "D"]]  # timed once
    assert not first["kept"] and first["measured_at"] is None
    assert again["kept"] and again["measured_at"]
    assert {n: t.to_dict() for n, t in again["timings"].items()} == {n: t.to_dict() for n, t in first["timings"].items()}
    assert store.path.read_bytes() == before  # a kept result rewrites nothing
    data = json.loads(before)
    assert data["format"] == 1 and len(data["machines"]) == 1
    (key, entry), = data["machines"].items()
    here = measured.machine("cpu", 1)
    assert key == measured.machine_key(here) and key.startswith("cpu-") and len(key) == len("cpu-") + 12
    assert entry["machine"] == here and here["threads"] == 1 and here["cores"] >= 1
    (kept,), = [list(entry["requests"].values())]
    assert set(kept["timings"]) == {"B", "D"} and kept["speed_factor"] is None


def test_other_nets_or_settings_are_another_request(tmp_path, counted):
    store = measured.MeasuredStore(tmp_path / "m.json")
    b = {"B": zoo.load("TF-NAS-B")}
    measure.measure_many(b, "cpu", store=store, **FAST)
    measure.measure_many({"B": zoo.load("TF-NAS-C")}, "cpu", store=store, **FAST)  # same name, another net
    measure.measure_many(b, "cpu", store=store, repeats=2, min_time_s=0.0, warmup_s=0.0)  # another protocol
    measure.measure_many(b, "cpu", store=store, **FAST)  # the first again: kept
    assert len(counted) == 3
    (entry,) = json.loads(store.path.read_text())["machines"].values()
    assert len(entry["requests"]) == 3


def test_remeasure_times_again_and_replaces(tmp_path, counted, monkeypatch):
    store = measured.MeasuredStore(tmp_path / "m.json")
    b = {"B": zoo.load("TF-NAS-B")}
    measure.measure_many(b, "cpu", store=store, **FAST)
    for off in ("0", "false", "no", ""):
        monkeypatch.setenv(measured.ENV_REMEASURE, off)
        assert measure.measure_many(b, "cpu", store=store, **FAST)["kept"]
    monkeypatch.setenv(measured.ENV_REMEASURE, "1")
    assert not measure.measure_many(b, "cpu", store=store, **FAST)["kept"]
    assert len(counted) == 2
    (entry,) = json.loads(store.path.read_text())["machines"].values()
    assert len(entry["requests"]) == 1  # replaced, not added


def test_another_machine_is_kept_beside(tmp_path, counted, monkeypatch):
    store = measured.MeasuredStore(tmp_path / "m.json")
    b = {"B": zoo.load("TF-NAS-B")}
    measure.measure_many(b, "cpu", store=store, **FAST)
    real = measured.machine
    monkeypatch.setattr(measured, "machine", lambda device, threads: {**real(device, threads), "device_name": "another CPU"})
    assert not measure.measure_many(b, "cpu", store=store, **FAST)["kept"]
    assert len(json.loads(store.path.read_text())["machines"]) == 2


@pytest.mark.parametrize("text, why", [("{", "JSONDecodeError"), ('{"format": 2, "machines": {}}', "expected format 1"),
                                       ("[]", "expected format 1")])
def test_a_broken_store_is_one_line_and_left_as_it_is(tmp_path, counted, text, why):
    path = tmp_path / "measured-mini.json"
    path.write_text(text)
    with pytest.raises(ValueError) as e:
        measure.measure_many({"B": zoo.load("TF-NAS-B")}, "cpu", store=measured.MeasuredStore(path), **FAST)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{path}: not a store of measured latencies") and why in msg
    assert path.read_text() == text and counted == []


def test_measure_and_fidelity_keep_theirs_too(tmp_path, counted):
    from tfnas_core.latency import lut as latency

    store = measured.store_for(tmp_path, "smoke")
    assert store.path == tmp_path / "measured-smoke.json" == tmp_path / measured.path_for(".", "smoke")
    a = measure.measure(zoo.load("TF-NAS-B"), "cpu", store=store, warmup=1, **FAST)
    b = measure.measure(zoo.load("TF-NAS-B"), "cpu", store=store, warmup=1, **FAST)
    assert a["ms"] == b["ms"] and len(counted) == 1
    lut = latency.load("tfnas_core/luts/cpu_local.json")
    f1 = measure.fidelity(lut, n_random=2, store=store, repeats=1, min_time_s=0.0)
    f2 = measure.fidelity(lut, n_random=2, store=store, repeats=1, min_time_s=0.0)
    assert len(counted) == 2 and f1["ms"].tolist() == f2["ms"].tolist()
    assert f1.attrs["speed_factor"] == f2.attrs["speed_factor"]


def test_an_ablation_rerendered_is_the_same_table(tmp_path, counted):
    ctx = lambda: E.Context("smoke", runs_root=str(tmp_path / "runs"), archive_root=None, progress=False, name="test",
                            measured=str(tmp_path / "results" / "measured-smoke.json"))
    variants = E.table3_variants()[:1]
    first = E.ablation(ctx(), variants, [2])
    lines = []
    again_ctx = ctx()
    again_ctx.log = lines.append
    again = E.ablation(again_ctx, variants, [2])
    assert len(counted) == 1
    cols = ["measured_ms", "measured_ms_lut_base", "speed_factor", "measured_on"]
    assert first[cols].equals(again[cols])
    assert any(line.startswith("kept: timed on this machine at ") and "REMEASURE=1" in line for line in lines)
