"""Confidence intervals and verdicts (tfnas_core.stats) against tabulated Student-t values."""
from __future__ import annotations

import math

import pytest

from tfnas_core import stats

# two-sided 95 % critical values t_{0.975, df} from standard tables
T975 = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 9: 2.2622, 30: 2.0423}


@pytest.mark.parametrize("df,expected", sorted(T975.items()))
def test_t_quantile_matches_tables(df, expected):
    assert stats.t_quantile(0.975, df) == pytest.approx(expected, abs=1e-4)


def test_t_quantile_other_levels_and_bad_input():
    assert stats.t_quantile(0.95, 4) == pytest.approx(2.1318, abs=1e-4)
    assert stats.t_quantile(0.995, 2) == pytest.approx(9.9248, abs=1e-4)
    with pytest.raises(ValueError):
        stats.t_quantile(0.4, 3)


def test_mean_ci_by_hand():
    e = stats.mean_ci([1.0, 2.0, 3.0])
    assert e.mean == 2.0 and e.n == 3 and e.std == pytest.approx(1.0)
    assert e.half_width == pytest.approx(4.3027 / math.sqrt(3), abs=1e-4)
    one = stats.mean_ci([5.0])
    assert one.n == 1 and math.isnan(one.half_width) and str(one) == "5.00 (n=1)"
    with pytest.raises(ValueError):
        stats.mean_ci([])
    with pytest.raises(ValueError):
        stats.mean_ci([1.0, float("nan")])


def test_paired_uses_common_seeds_only():
    a = {1: 80.0, 2: 82.0, 3: 81.0, 9: 0.0}
    b = {1: 79.0, 2: 80.0, 3: 80.5}
    e = stats.paired(a, b)
    assert e.n == 3 and e.mean == pytest.approx((1 + 2 + 0.5) / 3)
    with pytest.raises(ValueError):
        stats.paired({1: 1.0}, {2: 1.0})


def test_verdict_rule():
    clear = stats.mean_ci([1.0, 1.2, 0.9])  # CI well above 0
    assert stats.verdict(clear, +1) == "reproduced"
    assert stats.verdict(clear, -1) == "not reproduced"
    straddle = stats.mean_ci([-1.0, 1.5, 0.2])
    assert stats.verdict(straddle, +1) == "inconclusive"
    assert stats.verdict(stats.mean_ci([3.0]), +1) == "inconclusive"  # one seed decides nothing
    # "within 0.5 of the target": |error| < margin -> direction -1 against the margin
    errs = stats.mean_ci([0.10, 0.12, 0.08])
    assert stats.verdict(errs, -1, margin=0.5) == "reproduced"
    assert stats.verdict(errs, -1, margin=0.05) == "not reproduced"


def test_per_run_verdict():
    # "every run within 1 %" with a grey zone up to 2 %
    assert stats.per_run_verdict([0.1, -0.5, 0.9], 1.0, 2.0, want_inside=True) == "reproduced"
    assert stats.per_run_verdict([0.1, -0.5, -2.5], 1.0, 2.0, want_inside=True) == "not reproduced"
    assert stats.per_run_verdict([0.1, -0.5, 1.5], 1.0, 2.0, want_inside=True) == "inconclusive"
    # "every run misses by more than 2 %", signs either way
    assert stats.per_run_verdict([-4.0, 5.0, 2.5], 1.0, 2.0, want_inside=False) == "reproduced"
    assert stats.per_run_verdict([-4.0, 5.0, 0.5], 1.0, 2.0, want_inside=False) == "not reproduced"
    assert stats.per_run_verdict([-4.0, 1.5], 1.0, 2.0, want_inside=False) == "inconclusive"
    assert stats.per_run_verdict([0.1], 1.0, 2.0, want_inside=True) == "inconclusive"  # one run decides nothing
    with pytest.raises(ValueError):
        stats.per_run_verdict([0.1, 0.2], 2.0, 1.0, want_inside=True)


def test_pooled_sd_by_hand():
    # groups (1, 2, 3) and (10, 12): SS 2 + 2 over 2 + 1 degrees of freedom
    assert stats.pooled_sd([[1, 2, 3], [10, 12], [7]]) == pytest.approx(math.sqrt(4 / 3))
    assert math.isnan(stats.pooled_sd([[1], [2]]))


def test_seeds_needed_by_hand():
    # half-width t_{0.975, n-1} / sqrt(n) <= 1: n = 6 gives 2.571 / 2.449 = 1.05, n = 7 gives 2.447 / 2.646 = 0.92
    assert stats.seeds_needed(1.0, 1.0) == 7
    assert stats.seeds_needed(1.0, -1.0) == 7  # the sign of the effect does not matter
    # 80 % power adds t_{0.8, n-1}: n = 9: (2.306 + 0.889) / 3 = 1.06; n = 10: (2.262 + 0.883) / 3.162 = 0.99
    assert stats.seeds_needed(1.0, 1.0, power=0.8) == 10
    # large n approaches the normal formula ((1.96 + 0.84) * sd / effect)^2 = 784
    assert 784 <= stats.seeds_needed(1.0, 0.1, power=0.8) <= 800
    assert stats.seeds_needed(1.0, 0.0) is None and stats.seeds_needed(float("nan"), 1.0) is None
    assert stats.seeds_needed(0.0, 1.0) == 2
    assert stats.seeds_needed(1.0, 1e-6) is None  # more than the cap


@pytest.mark.parametrize("gap, met, words", [(0.0, True, "met (+0.00 %, within 1 %)"), (-0.99, True, "met (-0.99 %"),
                                             (-1.01, False, "under by 1.01 %"), (0.99, True, "met (+0.99 %"),
                                             (1.01, False, "over by 1.01 %"), (-38.4, False, "under by 38.40 %")])
def test_meets_target_within_the_tolerance_on_both_sides(gap, met, words):
    ms = 15.0 * (1 + gap / 100)
    assert stats.target_gap_pct(ms, 15.0) == pytest.approx(gap)
    assert stats.meets_target(ms, 15.0) is met
    assert stats.target_status(ms, 15.0).startswith(words)
    assert stats.meets_target(15.0 * 1.015, 15.0, tolerance_pct=2.0)
    with pytest.raises(ValueError, match="positive"):
        stats.meets_target(1.0, 0.0)
