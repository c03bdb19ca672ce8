"""LUT drift detection (the drift sentinels) and LUT calibration: the logic, not timings."""
from __future__ import annotations

import json

import pytest

from tfnas_core.latency import calibration
from tfnas_core.latency import drift
from tfnas_core.latency import lut as latency
from tfnas_core.latency import fit as lut_fit
from tfnas_core.arch import random_arch
from tfnas_core.arch import zoo
from tfnas_core.arch.space import SEARCHABLE_STAGES, get_space


def _lut(space="tfnas", base=2.0, per_width=0.001):
    entries = {k: {w: 0.1 + per_width * w for w in range(i.lo, i.hi + 1)} for k, i in latency.space_keys(get_space(space)).items()}
    return latency.LUT(base, entries, {"space": space, "device": "cpu", "batch_size": 1, "threads": 1})


def test_sentinels_are_the_first_calibration_networks_and_the_reference_is_fixed():
    sent = drift.sentinel_specs("tfnas")
    calib = random_arch.sample_specs("tfnas", 32, calibration.CALIB_SEED, prefix="calib")
    assert len(sent) == drift.N_SENTINELS and all(calib[n] == s for n, s in sent.items())
    name, b = drift.reference_block("tfnas")
    assert name == "MBInvertedResBlock_28_40_80_80_k5_s2_swish@320" and (b.in_hw, b.mid_chs, b.se_chs) == (28, 320, 80)
    assert drift.reference_block("tfnas-wose")[1].se_chs == 0


def test_speed_factor_is_the_median_ratio():
    names = list(drift.sentinel_specs("tfnas"))
    sentinels = drift.make_sentinels("tfnas", {n: 1.0 + i for i, n in enumerate(names)}, "min", "thread")
    now = {n: 1.2 * (1.0 + i) for i, n in enumerate(names)}
    now[names[0]] *= 3  # one disturbed sentinel
    f, ratios = drift.speed_factor(sentinels, now)
    assert f == pytest.approx(1.2) and ratios[names[0]] == pytest.approx(3.6)
    with pytest.raises(ValueError, match="not re-timed"):
        drift.speed_factor(sentinels, {names[0]: 1.0})
    with pytest.raises(ValueError, match="exactly the sentinels"):
        drift.make_sentinels("tfnas", {"x": 1.0}, "min", "thread")


def test_warning_threshold():
    assert drift.describe(1.04)[0] is False and "4.0 % slower" in drift.describe(1.04)[1]
    warn, msg = drift.describe(0.90)
    assert warn and "10.0 % faster" in msg and "divide measurements by 0.900" in msg


def test_drift_sentinels_round_trip_and_check_retimes_them(tmp_path):
    lut = _lut()
    with pytest.raises(latency.LUTError, match="no drift sentinels"):
        drift.check(lut)
    assert drift.record(lut) is None
    names = list(drift.sentinel_specs("tfnas"))
    lut.drift_sentinels = drift.make_sentinels("tfnas", {n: 1e-6 for n in names}, "min", "thread")  # impossibly fast
    again = latency.load(lut.save(tmp_path / "l.json"))
    assert again.drift_sentinels == lut.drift_sentinels
    r = drift.check(again, rounds=2, warmup_s=0.0)
    assert r["warn"] and r["speed_factor"] > 100 and set(r["ratios"]) == set(names)
    d = json.loads((tmp_path / "l.json").read_text())
    assert d["fingerprint"] == lut.drift_sentinels  # the JSON field every LUT written holds (lut.DRIFT_FIELD)
    d["fingerprint"]["sentinels"][names[0]] = "fast"
    (tmp_path / "bad.json").write_text(json.dumps(d))
    with pytest.raises(latency.LUTError, match="malformed fingerprint"):
        latency.load(tmp_path / "bad.json")


def test_calibration_recovers_known_stage_factors():
    lut = _lut()
    truth_base, truth = 3.0, [1.1, 1.2, 1.5, 1.3, 1.25, 0.9]
    specs = random_arch.sample_specs("tfnas", 20, seed=5)
    rows = [calibration.stage_sums(lut.entries, s) for s in specs.values()]
    measured = [truth_base + sum(c * r for c, r in zip(truth, row)) for row in rows]
    base, factors = calibration.fit(rows, measured)
    assert base == pytest.approx(truth_base, rel=1e-6) and factors == pytest.approx(truth, rel=1e-6)
    cal = latency.LUT(base, calibration.apply(lut.entries, dict(zip(SEARCHABLE_STAGES, factors)), get_space("tfnas")))
    spec = zoo.load("TF-NAS-B")
    row = calibration.stage_sums(lut.entries, spec)
    assert cal.predict(spec) == pytest.approx(truth_base + sum(c * r for c, r in zip(truth, row)))
    with pytest.raises(ValueError, match="at least 7 networks"):
        calibration.fit(rows[:3], measured[:3])
    with pytest.raises(ValueError, match="not physical"):
        calibration.fit(rows, [-m for m in measured])


def test_every_key_belongs_to_one_stage():
    stages = calibration.key_stage(get_space("tfnas"))
    assert set(stages) == set(latency.space_keys(get_space("tfnas")))
    assert set(stages.values()) == set(SEARCHABLE_STAGES)


def test_refit_keeps_the_calibration():
    space = get_space("tfnas")
    infos = latency.space_keys(space)
    measured = {k: {w: 0.2 + 0.001 * w for w in lut_fit.measured_widths(i.lo, i.hi, 8)} for k, i in infos.items()}
    entries = {k: lut_fit.fit_points(measured[k], i.lo, i.hi, "linear") for k, i in infos.items()}
    factors = {s: 1.0 + s / 10 for s in SEARCHABLE_STAGES}
    prov = {"space": "tfnas", "calibration": {"factors": {str(s): c for s, c in factors.items()}}}
    lut = latency.LUT(2.0, calibration.apply(entries, factors, space), prov, "", measured)
    re = lut.refit("interp")
    stage = calibration.key_stage(space)
    for k, i in infos.items():
        assert re.entries[k][i.hi] == pytest.approx(measured[k][i.hi] * factors[stage[k]])


def test_aligned_fit_separates_multiples_of_16():
    pts = {w: 0.01 * w + 0.5 - (0.05 if w % 16 == 0 else 0.0) for w in range(32, 129, 8)}
    t = lut_fit.fit_points(pts, 32, 128, "aligned")
    assert t[64] == pytest.approx(0.01 * 64 + 0.45) and t[65] == pytest.approx(0.01 * 65 + 0.5)
    line = lut_fit.fit_points(pts, 32, 128, "linear")
    assert abs(line[65] - (0.01 * 65 + 0.5)) > 0.01
    assert lut_fit.fit_points({32: 1.0, 48: 2.0}, 32, 48, "aligned")[40] == pytest.approx(1.5)  # one kind: a line
