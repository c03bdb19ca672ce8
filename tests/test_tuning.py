"""Tuning C1/C2 to the target (paper Sec. 4.5): bracketing and bisection on log λ1, and the
tuned values reaching every run's resolved config."""
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from tfnas_core.experiments import notebook as E
from tfnas_core.search import objectives
from tfnas_core.experiments import tuning


def falling(lat_at_1: float, ms_per_decade: float, calls: list | None = None):
    """A fake search: latency falls linearly in log10 λ (two 'seeds' 0.2 ms apart)."""
    def measure(lam):
        if calls is not None:
            calls.append(lam)
        m = lat_at_1 - ms_per_decade * math.log10(lam)
        return [m - 0.1, m + 0.1]
    return measure


def test_brackets_downward_then_bisects_to_the_target():
    calls = []
    # 22 ms at λ = 10^-2.37: the default 0.2 is far under the target, as at mini
    res = tuning.tune(falling(10.0, 5.06, calls), 22.0, 0.2, max_probes=10)
    assert res.status == "converged" and abs(res.best.mean - 22.0) <= 0.05 * 22.0
    assert calls[:3] == [0.2, 0.02, 0.002]  # ÷10 until the target is straddled
    assert all(a > b for a, b in zip(calls[:3], calls[1:3]))
    assert 0.002 < res.lam < 0.02  # bisection stayed inside the bracket
    assert res.searches == 2 * len(res.probes) and len(res.probes) == len(calls)
    assert res.best.std == pytest.approx(math.sqrt(0.02))


def test_brackets_upward_when_over_the_target():
    calls = []
    res = tuning.tune(falling(10.0, 2.0, calls), 12.0, 1e-3, max_probes=10)
    assert calls[0] == 1e-3 and calls[1] == 1e-2  # over the target: stronger
    assert res.status == "converged" and abs(res.best.mean - 12.0) <= 0.6


def test_exact_line_is_hit_by_false_position():
    res = tuning.tune(lambda lam: [20.0 - 4.0 * math.log10(lam)], 24.0, 10.0, tol=0.001, max_probes=6)
    assert res.status == "converged" and res.lam == pytest.approx(0.1, rel=1e-2)


def test_out_of_reach_and_probe_budget():
    flat = lambda lam: [7.5]  # noqa: E731 - the searched net never moves
    res = tuning.tune(flat, 22.0, 0.2, max_probes=2)
    assert res.status == "max_probes" and len(res.probes) == 2 and res.gap_pct < -60
    # two steps without progress: the next probe is the range's end (no latency term), then stop
    res = tuning.tune(flat, 22.0, 0.2, max_probes=50)
    assert res.status == "unreachable" and [p.lam for p in res.probes] == [0.2, 0.02, tuning.LAM_RANGE[0]]
    # slow progress (0.6 ms per decade, 6.2 ms short, accelerating): the end, over the target, brackets
    calls = []
    accelerating = lambda lam: calls.append(lam) or [5.0 + 0.2 * math.log10(lam) ** 2]  # noqa: E731
    res = tuning.tune(accelerating, 12.0, 0.1, max_probes=50, lam_range=(1e-9, 1e3))
    assert calls[:3] == [0.1, 0.01, 1e-9] and res.status == "converged" and abs(res.best.mean - 12.0) <= 0.6
    assert all(1e-9 < lam < 0.01 for lam in calls[3:])


def test_decades_needed():
    a, b = tuning.Probe(0.2, (10.0,)), tuning.Probe(0.02, (11.0,))
    assert tuning.decades_needed(a, b, 21.0) == pytest.approx(10.0)
    assert tuning.decades_needed(b, a, 21.0) == math.inf  # moving away
    assert tuning.decades_needed(a, tuning.Probe(0.02, (10.0,)), 21.0) == math.inf


def test_first_probe_on_target_stops():
    res = tuning.tune(lambda lam: [22.5], 22.0, 0.2)
    assert res.status == "converged" and len(res.probes) == 1 and res.lam == 0.2


@pytest.mark.parametrize("kw", [{"target_ms": 0}, {"lam0": -1.0}, {"tol": float("nan")}, {"factor": 1.0},
                                {"max_probes": 0}])
def test_bad_settings_are_refused(kw):
    args = {"target_ms": 22.0, "lam0": 0.2, **kw}
    with pytest.raises(ValueError, match=next(iter(kw))):
        tuning.tune(lambda lam: [1.0], args.pop("target_ms"), args.pop("lam0"), **args)


def test_only_c1_c2_are_tuned():
    with pytest.raises(ValueError, match="objective"):
        tuning.tune_objective(E.Context("smoke", progress=False), "abs", [2])


def _configs(runs_root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(runs_root.glob("*/config.json"))]


@pytest.mark.slow
def test_smoke_tuning_end_to_end(tmp_path, monkeypatch):
    """Two probes per objective through the run store; CSVs written; a rerun reads them back."""
    ctx = E.Context("smoke", runs_root=str(tmp_path / "runs"), progress=False, log=lambda m: None)
    res_dir = tmp_path / "results"
    t = tuning.tuned_values(ctx, [2], results_dir=str(res_dir))
    table = pd.read_csv(res_dir / "tuned-smoke.csv")
    assert table["objective"].tolist() == ["c1", "c2"] and (table["probes"] == 2).all()
    assert (table["searches"] == 2).all() and t.source.startswith("tuned now (4 searches")
    assert table.loc[0, "lam2"] == objectives.DEFAULTS["c1"]["lam2"] and math.isnan(table.loc[1, "lam2"])
    probes = pd.read_csv(res_dir / "tuned_probes-smoke.csv")
    assert len(probes) == 4 and probes["lam"].iloc[0] == objectives.DEFAULTS["c1"]["lam"]
    # every probe is a finished search w/o elasticity scaling, keyed by its λ
    cfgs = _configs(tmp_path / "runs")
    assert len(cfgs) == 4 and not any(c["elasticity"] for c in cfgs)
    assert sorted((c["objective"], c["lam"]) for c in cfgs) == sorted(zip(probes["objective"], probes["lam"]))
    # the tuned value is the probe closest to the target
    for r in table.itertuples():
        p = probes[probes["objective"] == r.objective]
        assert r.lam == p.loc[(p["mean_ms"] - r.target_ms).abs().idxmin(), "lam"]
    again = tuning.tuned_values(ctx, [2], results_dir=str(res_dir))
    assert again.values == t.values and again.source.startswith("read from")
    assert len(_configs(tmp_path / "runs")) == 4  # nothing searched again
    # another target: the file does not apply, tuning runs again (faked here: no searches)
    fake = tuning.tune(lambda lam: [99.0], 99.0, 0.5)
    monkeypatch.setattr(tuning, "tune_objective", lambda ctx, obj, seeds, **kw: fake)
    ctx2 = E.Context("smoke", runs_root=str(tmp_path / "runs"), progress=False, log=lambda m: None,
                     search_overrides={"target_ms": 99.0})
    again = tuning.tuned_values(ctx2, [2], results_dir=str(res_dir), write=False)
    assert again.source.startswith("tuned now (2 searches") and again.values["c2"] == {"lam": 0.5}
    off = tuning.tuned_values(ctx, [2], tune_on=False)
    assert off.values == {"c1": {}, "c2": {}} and "untuned" in off.source


def test_tuned_values_reach_every_runs_resolved_config():
    """Table 5's and Fig. 5's C1/C2 runs carry the tuned λ (so the run store keys them)."""
    ctx = E.Context("smoke", progress=False)
    tuned = {"c1": {"lam": 0.0123, "lam2": 0.6}, "c2": {"lam": 0.000456}}
    variants = E.table5_variants(tuned)
    for v in variants:
        cfg = E.search_cfg(ctx, 2, **v.overrides)
        if v.overrides["objective"] in tuned:
            assert cfg.lam == tuned[v.overrides["objective"]]["lam"]
            assert E.search_key(cfg)["lam"] == cfg.lam
        else:
            assert cfg.lam == objectives.DEFAULTS[v.overrides["objective"]]["lam"]
    c1 = E.search_cfg(ctx, 2, **next(v for v in variants if v.overrides["objective"] == "c1").overrides)
    assert c1.lam2 == 0.6
    # untuned: the defaults, as before
    assert [v.overrides for v in E.table5_variants()] == [v.overrides for v in E.table5_variants(None)]
    assert E.search_cfg(ctx, 2, **E.table5_variants()[0].overrides).lam == objectives.DEFAULTS["c1"]["lam"]


@pytest.mark.slow
def test_fig5_runs_use_the_tuned_values(tmp_path):
    ctx = E.Context("smoke", runs_root=str(tmp_path / "runs"), progress=False, log=lambda m: None)
    runs = E.fig5(ctx, [2], tuned={"c1": {"lam": 0.0123, "lam2": 0.6}, "c2": {"lam": 0.000456}})
    seen = {(obj, r.config.elasticity, r.config.lam) for obj, by_es in runs.items() for rs in by_es.values() for r in rs}
    assert seen == {("c1", True, 0.0123), ("c1", False, 0.0123), ("c2", True, 0.000456), ("c2", False, 0.000456)}
    on_disk = {(c["objective"], c["elasticity"], c["lam"]) for c in _configs(tmp_path / "runs")}
    assert on_disk == seen


@pytest.mark.slow
def test_a_longer_budget_is_tuned_apart_from_a_start_and_waits_for_missing_runs(tmp_path):
    """``suffix`` keeps another budget's tuning in its own CSV, ``start`` is where it brackets from, and a
    finished-only context leaves an objective whose probes are missing out (``incomplete``), writing nothing."""
    ctx = E.Context("smoke", runs_root=str(tmp_path / "runs"), progress=False, log=lambda m: None)
    res_dir = tmp_path / "results"
    start = {"c1": {"lam": 0.5, "lam2": 0.6}, "c2": {"lam": 0.05}}
    lazy = tuning.tuned_values(E.longer(ctx, 2, compute=False), [2], results_dir=str(res_dir), suffix="-long", start=start)
    assert lazy.values == {} and lazy.incomplete == ("c1", "c2") and not res_dir.exists()
    t = tuning.tuned_values(E.longer(ctx, 2), [2], results_dir=str(res_dir), suffix="-long", start=start)
    table = pd.read_csv(res_dir / "tuned-smoke-long.csv")
    probes = pd.read_csv(res_dir / "tuned_probes-smoke-long.csv")
    assert (table["epochs"] == 4).all() and not (res_dir / "tuned-smoke.csv").exists()
    assert probes.groupby("objective")["lam"].first().to_dict() == {"c1": 0.5, "c2": 0.05}
    assert all(c["epochs"] == 4 for c in _configs(tmp_path / "runs"))
    again = tuning.tuned_values(E.longer(ctx, 2, compute=False), [2], results_dir=str(res_dir), suffix="-long")
    assert again.values == t.values and again.source.startswith("read from") and again.incomplete == ()
