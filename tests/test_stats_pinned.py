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
