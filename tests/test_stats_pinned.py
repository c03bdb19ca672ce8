"""tfnas_core.stats pinned to values computed without it: Student-t quantiles in closed form (df 1, 2
and 4), from the closed-form CDF (df 3) and from mpmath at 40 digits, the seeds a paired interval
needs at the boundaries where those quantiles decide it, and the report's own seeds-needed numbers
checked against printed t tables."""
from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from tfnas_core import stats


def t_df1(p):  # Cauchy: F(t) = 1/2 + atan(t)/pi
    return math.tan(math.pi * (p - 0.5))


def t_df2(p):  # F(t) = 1/2 + t / (2 sqrt(2 + t^2))
    return (2 * p - 1) / math.sqrt(2 * p * (1 - p))


def t_df4(p):  # Hill (1970): a = 4p(1-p), q = cos(arccos(sqrt a) / 3) / sqrt a, t = 2 sqrt(q - 1)
    a = 4 * p * (1 - p)
    q = math.cos(math.acos(math.sqrt(a)) / 3) / math.sqrt(a)
    return 2 * math.sqrt(q - 1)


def cdf_df3(x):  # F(t) = 1/2 + (t / (sqrt 3 (1 + t^2 / 3)) + atan(t / sqrt 3)) / pi
    return 0.5 + (x / (math.sqrt(3) * (1 + x * x / 3)) + math.atan(x / math.sqrt(3))) / math.pi


# t_{p, df} by mpmath (40 digits: the root of 1 - I_{df/(df+x^2)}(df/2, 1/2)/2 = p), rounded to 17 digits
MPMATH = {(0.8, 3): 0.97847231236330444, (0.8, 9): 0.88340385968553454, (0.8, 29): 0.85419198588185566,
          (0.8, 58): 0.84786246710303342, (0.8, 59): 0.84775594938138675,
          (0.95, 3): 2.3533634348018239, (0.95, 5): 2.0150483733330242, (0.95, 30): 1.6972608865939578,
          (0.975, 3): 3.1824463052837096, (0.975, 5): 2.5705818356363155, (0.975, 9): 2.2621571627982055,
          (0.975, 29): 2.0452296421327043, (0.975, 30): 2.0422724563012383, (0.975, 58): 2.0017174841452361,
          (0.975, 59): 2.0009953780882677}
PS = (0.55, 0.6, 0.75, 0.8, 0.9, 0.95, 0.975, 0.99, 0.995, 0.9995)


@pytest.mark.parametrize("p", PS)
def test_t_quantile_closed_forms(p):
    assert stats.t_quantile(p, 1) == pytest.approx(t_df1(p), rel=1e-12)
    assert stats.t_quantile(p, 2) == pytest.approx(t_df2(p), rel=1e-12)
    assert stats.t_quantile(p, 4) == pytest.approx(t_df4(p), rel=1e-11)
    assert cdf_df3(stats.t_quantile(p, 3)) == pytest.approx(p, abs=1e-14)


@pytest.mark.parametrize("p_df, expected", sorted(MPMATH.items()))
def test_t_quantile_against_mpmath(p_df, expected):
    assert stats.t_quantile(*p_df) == pytest.approx(expected, rel=1e-13)


def test_t_quantile_large_df_is_the_normal_quantile_with_its_expansion():
    # Cornish-Fisher: t = z + (z^3 + z) / (4 v) + (5 z^5 + 16 z^3 + 3 z) / (96 v^2) + O(v^-3)
    for p in (0.8, 0.975):
        z = NormalDist().inv_cdf(p)
        v = 1e4
        expected = z + (z ** 3 + z) / (4 * v) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * v ** 2)
        assert stats.t_quantile(p, v) == pytest.approx(expected, abs=1e-11)


def test_mean_ci_half_width_in_closed_form():
    # [1, 2, 3]: SD 1, n 3, df 2: half-width t_{0.975, 2} / sqrt 3; at 90 %: t_{0.95, 2} / sqrt 3
    assert stats.mean_ci([1.0, 2.0, 3.0]).half_width == pytest.approx(t_df2(0.975) / math.sqrt(3), rel=1e-13)
    assert stats.mean_ci([1.0, 2.0, 3.0], level=0.9).half_width == pytest.approx(t_df2(0.95) / math.sqrt(3), rel=1e-13)
    # two values: df 1, half-width tan(0.475 pi) * |a - b| / sqrt 2 / sqrt 2 = tan(0.475 pi) * |a - b| / 2
    e = stats.mean_ci([4.0, 6.0])
    assert (e.low, e.high) == pytest.approx((5 - t_df1(0.975), 5 + t_df1(0.975)), rel=1e-13)


@pytest.mark.parametrize("n, q_level, q_power", [
    (2, t_df1(0.975), 0.0), (3, t_df2(0.975), 0.0), (5, t_df4(0.975), 0.0),
    (2, t_df1(0.975), t_df1(0.8)), (3, t_df2(0.975), t_df2(0.8)), (5, t_df4(0.975), t_df4(0.8))])
def test_seeds_needed_at_closed_form_boundaries(n, q_level, q_power):
    """At sd 1, n seeds suffice exactly when (t_{0.975, n-1} + t_{0.8, n-1}) / sqrt n <= |effect|
    (the t_{0.8} term only with power=0.8): an effect a hair above that bound needs n seeds, a hair
    below it n + 1 (the bound falls quickly with n)."""
    bound = (q_level + q_power) / math.sqrt(n)
    power = 0.8 if q_power else None
    assert stats.seeds_needed(1.0, bound * (1 + 1e-9), power=power) == n
    assert stats.seeds_needed(1.0, -bound * (1 + 1e-9), power=power) == n
    assert stats.seeds_needed(1.0, bound * (1 - 1e-9), power=power) == n + 1
    # the bound scales with the SD: twice the SD, twice the effect, the same seeds
    assert stats.seeds_needed(2.0, 2 * bound * (1 + 1e-9), power=power) == n


def test_seeds_needed_at_level_90():
    # alpha 0.1: t_{0.95, 1} = tan(0.45 pi) = 6.3138; n = 2 needs |effect| >= 6.3138 / sqrt 2 at sd 1
    bound = t_df1(0.95) / math.sqrt(2)
    assert stats.seeds_needed(1.0, bound * (1 + 1e-9), level=0.9) == 2
    assert stats.seeds_needed(1.0, bound * (1 - 1e-9), level=0.9) == 3


def test_the_reports_seeds_needed_against_printed_tables():
    """The committed report (results/REPORT-mini.md, bi-beats-gumbel): pooled per-run SD 0.95684, paper
    effect 0.5, per-pair SD sqrt 2 x 0.95684 = 1.35318.  Interval: t_{0.975, 29} = 2.0452 gives
    2.0452 x 1.35318 / sqrt 30 = 0.5053 > 0.5, t_{0.975, 30} = 2.0423 gives 0.4964 <= 0.5: 31 seeds.
    80 % power: (2.0017 + 0.8481) x 1.35318 / sqrt 59 = 0.5020 > 0.5 and (2.0010 + 0.8478) x 1.35318
    / sqrt 60 = 0.4977: 60 seeds."""
    sd = math.sqrt(2) * 0.95684202806245144
    assert 2.0452 * sd / math.sqrt(30) > 0.5 >= 2.0423 * sd / math.sqrt(31)
    assert (2.0017 + 0.8481) * sd / math.sqrt(59) > 0.5 >= (2.0010 + 0.8478) * sd / math.sqrt(60)
    assert stats.seeds_needed(sd, 0.5) == 31
    assert stats.seeds_needed(sd, 0.5, power=0.8) == 60


# ----------------------------------------------------------------------------- the rules at their edges
# (what a plausible slip - < for <=, a dropped argument, a lost message - would change)


def test_what_a_user_reads_when_the_input_is_wrong():
    with pytest.raises(ValueError, match=r"^t_quantile: need 0\.5 < p < 1 and df > 0, got p=0\.4, df=3$"):
        stats.t_quantile(0.4, 3)
    with pytest.raises(ValueError, match=r"^mean_ci: no values$"):
        stats.mean_ci([])
    with pytest.raises(ValueError, match=r"^mean_ci: non-finite value in \[1\.0, nan\]$"):
        stats.mean_ci([1, float("nan")])
    with pytest.raises(ValueError, match=r"^paired: no seed in common$"):
        stats.paired({1: 1.0}, {2: 1.0})
    with pytest.raises(ValueError, match=r"^verdict: direction must be \+1 or -1$"):
        stats.verdict(stats.mean_ci([1.0, 2.0]), 0)
    with pytest.raises(ValueError, match=r"^per_run_verdict: need inside <= outside, got 2\.0, 1\.0$"):
        stats.per_run_verdict([0.1, 0.2], 2.0, 1.0, want_inside=True)
    with pytest.raises(ValueError, match=r"^target latency must be positive, got 0\.0$"):
        stats.meets_target(1.0, 0.0)


@pytest.mark.parametrize("p, df", [(0.5, 3), (1.0, 3), (1.5, 3), (0.975, 0), (0.975, -1)])
def test_t_quantile_refuses_the_edges(p, df):
    """The median (p = 0.5) and p = 1 (an infinite quantile) are outside the open interval; df must be > 0."""
    with pytest.raises(ValueError, match="t_quantile: need"):
        stats.t_quantile(p, df)


def test_two_values_are_an_interval_and_one_is_not():
    # two values: df 1, SD sqrt 2, half-width tan(0.475 pi) x sqrt 2 / sqrt 2 = 12.7062
    two = stats.mean_ci([4.0, 6.0])
    assert two.n == 2 and two.std == pytest.approx(math.sqrt(2)) and str(two) == "5.00 ± 12.71"
    assert str(stats.mean_ci([1.0, 2.0, 3.0])) == "2.00 ± 2.48"
    one = stats.mean_ci([5.0], level=0.9)
    assert one.n == 1 and one.level == 0.9 and math.isnan(one.half_width) and math.isnan(one.std)
    assert stats.mean_ci([1.0, 2.0, 3.0], level=0.9).level == 0.9


def test_paired_passes_its_level_on():
    a, b = {1: 3.0, 2: 4.0, 3: 5.0}, {1: 1.0, 2: 1.0, 3: 1.0}  # differences 2, 3, 4: SD 1
    e = stats.paired(a, b, level=0.9)
    assert e.level == 0.9 and e.half_width == pytest.approx(t_df2(0.95) / math.sqrt(3), rel=1e-13)


def test_verdict_at_the_edges_of_the_interval():
    """An interval that touches 0 does not lie wholly on either side; two seeds are enough for a
    verdict, one never is (whatever width it claims), and neither is an interval of unknown width."""
    assert stats.verdict(stats.Estimate(1.0, 1.0, 3, 1.0), +1) == "inconclusive"  # [0, 2]
    assert stats.verdict(stats.Estimate(-1.0, 1.0, 3, 1.0), +1) == "inconclusive"  # [-2, 0]
    assert stats.verdict(stats.Estimate(0.2, 0.5, 3, 1.0), +1) == "inconclusive"  # [-0.3, 0.7]
    assert stats.verdict(stats.Estimate(0.2, 0.1, 3, 1.0), +1) == "reproduced"  # [0.1, 0.3]
    assert stats.verdict(stats.Estimate(-0.2, 0.1, 3, 1.0), +1) == "not reproduced"
    assert stats.verdict(stats.Estimate(2.0, 0.5, 1, 0.5), +1) == "inconclusive"  # one seed
    assert stats.verdict(stats.Estimate(2.0, math.nan, 3, math.nan), +1) == "inconclusive"
    two = stats.mean_ci([1.0, 1.1])  # 1.05 +- 0.635: two seeds decide
    assert stats.verdict(two, +1) == "reproduced" and stats.verdict(two, -1) == "not reproduced"
    # against a margin: [0.3, 0.5] is wholly under 0.6 and wholly over 0.2
    e = stats.Estimate(0.4, 0.1, 3, 0.1)
    assert stats.verdict(e, -1, margin=0.6) == "reproduced" and stats.verdict(e, +1, margin=0.2) == "reproduced"
    assert stats.verdict(e, -1, margin=0.2) == "not reproduced" and stats.verdict(e, +1, margin=0.45) == "inconclusive"


def test_per_run_verdict_at_the_edges_of_the_grey_zone():
    """Strict on both edges: a run exactly at ``inside`` is not inside, one exactly at ``outside``
    is not outside; two runs are enough; a grey zone of width 0 is allowed."""
    assert stats.per_run_verdict([0.1, -0.2], 1.0, 2.0, want_inside=True) == "reproduced"  # two runs
    assert stats.per_run_verdict([-3.0, 2.5], 1.0, 2.0, want_inside=False) == "reproduced"
    assert stats.per_run_verdict([1.0, 0.5], 1.0, 2.0, want_inside=True) == "inconclusive"
    assert stats.per_run_verdict([2.0, 0.5], 1.0, 2.0, want_inside=True) == "inconclusive"
    assert stats.per_run_verdict([2.0, 3.0], 1.0, 2.0, want_inside=False) == "inconclusive"
    assert stats.per_run_verdict([1.0, 3.0], 1.0, 2.0, want_inside=False) == "inconclusive"
    assert stats.per_run_verdict([0.5, -0.7], 1.0, 1.0, want_inside=True) == "reproduced"
    assert stats.per_run_verdict([0.5, 1.5], 1.0, 1.0, want_inside=True) == "not reproduced"


def test_pooled_sd_skips_single_values_wherever_they_are():
    assert stats.pooled_sd([[7], [1, 2, 3], [5], [10, 12]]) == pytest.approx(math.sqrt(4 / 3))
    assert stats.pooled_sd([[7], [1, 2, 3]]) == pytest.approx(1.0)


def test_meets_target_is_strict_and_takes_small_targets():
    # exactly on the tolerance is not within it (50 %: 1.5 ms and 0.5 ms against 1 ms, exact in binary)
    assert not stats.meets_target(1.5, 1.0, tolerance_pct=50.0) and not stats.meets_target(0.5, 1.0, tolerance_pct=50.0)
    assert stats.meets_target(1.49, 1.0, tolerance_pct=50.0)
    assert stats.meets_target(0.8, 0.8) and stats.meets_target(0.801, 0.8)  # a target under 1 ms is a target


def test_target_status_words_with_another_tolerance():
    assert stats.target_status(15.0 * 1.015, 15.0, tolerance_pct=2.0) == "met (+1.50 %, within 2 %)"
    assert stats.target_status(15.0 * 1.005, 15.0, tolerance_pct=0.25) == "over by 0.50 %"
    assert stats.target_status(15.0 * 0.995, 15.0, tolerance_pct=0.25) == "under by 0.50 %"
    assert stats.target_status(15.0, 15.0, tolerance_pct=0.0) == "over by 0.00 %"  # not under: at the target


def test_seeds_needed_refuses_what_it_cannot_decide():
    assert stats.seeds_needed(1.0, math.inf) is None and stats.seeds_needed(1.0, math.nan) is None
    assert stats.seeds_needed(math.inf, 1.0) is None
    assert stats.seeds_needed(-1.0, 1.0) is None  # a negative SD is not an SD
    assert stats.seeds_needed(0.5, 0.0) is None
    assert stats.seeds_needed(1.0, 100.0) == 2  # the fewest seeds an interval needs


def test_seeds_needed_boundary_is_inclusive_and_capped():
    """n seeds suffice when the interval is *as narrow as* the effect (equality counts); past the cap
    of 100 000 seeds the answer is None (at df ~1e5 the quantile is the normal one plus (z^3 + z) / (4 df))."""
    for n in (2, 6, 7):
        exact = stats.t_quantile(0.975, n - 1) * 1.0 / math.sqrt(n)
        assert stats.seeds_needed(1.0, exact) == n
    z = NormalDist().inv_cdf(0.975)

    def bound(n):
        v = n - 1
        return (z + (z ** 3 + z) / (4 * v) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * v ** 2)) / math.sqrt(n)

    assert stats.seeds_needed(1.0, bound(100_000) * (1 + 1e-9)) == 100_000
    assert stats.seeds_needed(1.0, bound(100_001) * (1 + 1e-7)) is None  # would need 100 001
    assert stats.seeds_needed(1.0, bound(100_001) * (1 + 1e-7), cap=200_000) == 100_001
