"""The evidence report's forest plot pinned on the hand-made runs of test_report_pinned (issue 33):
which panels, rows, intervals and dots are drawn, in which verdict colour, with which thresholds
and labels.  Sizes, fonts and line widths are the figure's styling and not pinned here."""
from __future__ import annotations

import textwrap

import matplotlib
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from tfnas_core.report import claims, forest, verdicts  # noqa: E402

from test_report_pinned import EXPECTED_CHECKS, OWN, T3, results  # noqa: E402,F401  (the fixture)

COLOUR = {"reproduced": "tab:green", "not reproduced": "tab:red", "inconclusive": "tab:gray", "not tested": "tab:orange"}
UNITS = ["top-op share points", "supernet accuracy points", verdicts.TOP1, "ratio of search wall times", "layers",
         verdicts.LAT_UNIT, verdicts.LATE_UNIT]


@pytest.fixture()
def drawn(results):
    checks = claims.evaluate_checks(results, OWN)
    fig = forest.figure(checks)
    yield checks, fig
    plt.close(fig)


def _marks(ax):
    """(x data, y, colour, face) of each line but the vertical thresholds, in drawing order."""
    return [(list(map(float, l.get_xdata())), [float(y) for y in l.get_ydata()], l.get_color(), l.get_marker(),
             l.get_mec(), l.get_mfc()) for l in ax.get_lines() if len(set(l.get_xdata())) != 1 or len(l.get_xdata()) != 2
            or list(l.get_ydata()) != [0, 1]]


def _vlines(ax):
    return sorted((float(l.get_xdata()[0]), l.get_linestyle()) for l in ax.get_lines()
                  if list(l.get_ydata()) == [0, 1] and len(set(l.get_xdata())) == 1)


def test_one_panel_per_unit_with_its_rows(drawn):
    checks, fig = drawn
    assert [ax.get_xlabel() for ax in fig.axes] == [textwrap.fill(u, 60) for u in UNITS]
    for ax, unit in zip(fig.axes, UNITS):
        rows = checks[checks["unit"] == unit]
        # rows top to bottom in the checks' order: the first check at the top (largest y)
        want = [textwrap.fill(f"{w} (n={n})", forest.LABEL_CHARS) for w, n in zip(rows["what"], rows["n"])][::-1]
        assert [t.get_text() for t in ax.get_yticklabels()] == want
        assert list(ax.get_yticks()) == list(range(len(rows)))
    assert fig.axes[0].get_title() == (
        "per check: mean and 95 % t interval, or every run (dots)\ngreen: reproduced, red: not reproduced, grey: "
        "inconclusive,\norange: not tested; hollow: context, decides nothing")
    assert [ax.get_title() for ax in fig.axes[1:]] == [""] * 6
    gs = fig.axes[0].get_subplotspec().get_gridspec()
    assert list(gs.get_height_ratios()) == [1, 1, 15, 2, 2, 7, 2]  # panel heights follow their rows
    assert fig.get_size_inches()[0] == forest.FIGURE_WIDTH_IN


def test_intervals_and_means_in_verdict_colours(drawn):
    _, fig = drawn
    share = _marks(fig.axes[0])
    # the interval 30 ± 2.48 and the mean, green (reproduced), filled (it decides)
    assert share[0][0] == pytest.approx([30 - T3, 30 + T3], abs=1e-9) and share[0][1] == [0, 0]
    assert share[0][2] == "tab:green"
    assert share[1][0] == [30.0] and share[1][1] == [0] and share[1][3:] == ("o", "tab:green", "tab:green")
    top1 = _marks(fig.axes[2])
    top1_checks = [c for c in EXPECTED_CHECKS if c[1].startswith("top1")]
    drawn_rows = [(m[1][0], m[2]) for m in top1[0::2]]
    # every top-1 check with runs: its interval at its row, in its verdict's colour (the λ check has none)
    assert drawn_rows == [(14 - i, COLOUR[v]) for i, (_, _, v) in enumerate(top1_checks[:-1])]
    assert [m[4:] for m in top1[1::2]] == [(COLOUR[v], COLOUR[v]) for _, _, v in top1_checks[:-1]]
    assert [t.get_text() for t in fig.axes[2].texts] == ["no data"]
    assert fig.axes[2].texts[0].get_position() == (0, 0)  # the last row, at the bottom
    # a check of one seed: no interval, the mean alone (drawn as a zero-length interval and a dot)


def test_runs_as_dots_and_thresholds(drawn):
    _, fig = drawn
    lat = fig.axes[5]
    dots = _marks(lat)
    assert [(d[0], d[1][0], d[4]) for d in dots] == [
        ([0.5, -0.5, 0.9], 6, "tab:green"), ([0.5, 1.5, 0.2], 5, "tab:gray"), ([0.1, 0.2, 2.5], 4, "tab:red"),
        ([-0.1, 0.0, 0.1], 3, "tab:green"), ([-4.5, -3.0, -2.5], 2, "tab:green"), ([5.1, 1.5, 3.0], 1, "tab:gray")]
    assert all(d[3] == "o" and d[5] == d[4] for d in dots)
    assert [t.get_text() for t in lat.texts] == ["no data"] and lat.texts[0].get_position() == (0, 0)
    # both signs of both tolerances dashed, 0 solid; symlog, linear within ±2 %
    assert _vlines(lat) == [(-2.0, "--"), (-1.0, "--"), (0.0, "-"), (1.0, "--"), (2.0, "--")]
    assert lat.get_xscale() == "symlog" and lat.xaxis.get_transform().linthresh == 2.0
    ratio = fig.axes[3]
    assert _vlines(ratio) == [(0.0, "-"), (1.0, "--")]  # a ratio's threshold 1, one side only
    assert ratio.get_xscale() == "linear"
    assert _vlines(fig.axes[2]) == [(0.0, "-")]  # margin 0: no dashed line
    late = fig.axes[6]
    assert late.get_xlim() == (-5, 105) and late.get_xscale() == "linear"
    assert [(d[0], d[1][0]) for d in _marks(late)] == [([50.0] * 3, 1), ([100.0] * 3, 0)]
    assert fig.axes[2].get_xlim() != (-5, 105)


def test_context_checks_are_hollow_and_not_tested_orange(results):
    from test_report_pinned import _tuned

    _tuned(results, "unreachable")
    checks = claims.evaluate_checks(results, OWN)
    checks.loc[checks["id"] == "op-collapse", "decides"] = False
    fig = forest.figure(checks)
    share = _marks(fig.axes[0])
    assert share[0][2] == "tab:green" and share[1][4:] == ("tab:green", "white")
    lat = _marks(fig.axes[5])
    assert [d[4] for d in lat] == ["tab:green", "tab:orange", "tab:red", "tab:green", "tab:green", "tab:orange"]
    assert [d[5] for d in lat] == ["tab:green", "tab:orange", "tab:red", "tab:green", "tab:green", "tab:orange"]
    plt.close(fig)


def test_a_one_seed_check_is_a_dot_without_interval():
    import pandas as pd

    checks = pd.DataFrame([{"unit": verdicts.TOP1, "what": "w", "n": 1, "verdict": "inconclusive", "decides": True,
                            "values": "", "mean": 2.0, "ci95_low": None, "ci95_high": None, "margin": 0.0}])
    fig = forest.figure(checks)
    m = _marks(fig.axes[0])
    assert m[0][0] == [2.0, 2.0] and m[1][0] == [2.0]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["w (n=1)"]
    plt.close(fig)


def test_pages_keep_units_whole(results):
    checks = claims.evaluate_checks(results, OWN)
    # unit sizes 1, 1, 15, 2, 2, 7, 2: pages of at most 20 -> [1 1 15 2] [2 7 2]
    figs = forest.figures(checks, page_rows=20)
    assert [[ax.get_xlabel() for ax in f.axes] for f in figs] == [
        [textwrap.fill(u, 60) for u in UNITS[:4]], [textwrap.fill(u, 60) for u in UNITS[4:]]]
    figs += forest.figures(checks, page_rows=3)
    # a unit larger than a page gets a page of its own: [1 1] [15] [2] [2] [7] [2] (2 + 2 > 3)
    assert [len(f.axes) for f in figs[2:]] == [2, 1, 1, 1, 1, 1]
    assert forest.PAGE_ROWS == 30 and len(forest.figures(checks)) == 1  # 30 checks fit one page of 30
    for f in figs:
        plt.close(f)


def _unit_checks(sizes: dict[str, int]):
    """A checks table with ``sizes[unit]`` paired checks of each unit, in order (reproduced, deciding)."""
    import pandas as pd

    return pd.DataFrame([{"unit": u, "what": f"{u}{i}", "n": 3, "mean": 1.0, "ci95_low": 0.5, "ci95_high": 1.5,
                          "verdict": "reproduced", "decides": True, "values": "", "margin": 0.0}
                         for u, k in sizes.items() for i in range(k)])


def test_a_page_counts_its_rows_from_zero():
    """Units of 2, 1, 2, 1 checks at 3 a page: [2 1] [2 1]; a new page starts empty (counting the
    unit that opened it once), so the second page still takes the 1 after the 2."""
    figs = forest.figures(_unit_checks({"a": 2, "b": 1, "c": 2, "d": 1}), page_rows=3)
    assert [[ax.get_xlabel() for ax in f.axes] for f in figs] == [["a", "b"], ["c", "d"]]
    for f in figs:
        plt.close(f)


def test_the_figure_grows_by_a_fixed_height_per_row_and_per_panel():
    """Readable at any length (issue 32): 1.6 in for the title and axis, 0.36 in a check row, 0.55 in
    a panel (its unit's label), 7.5 in wide whatever the rows."""
    for sizes in ({"a": 1}, {"a": 3, "b": 1}, {"a": 7, "b": 2, "c": 5}):
        fig = forest.figure(_unit_checks(sizes))
        want = 1.6 + 0.36 * sum(sizes.values()) + 0.55 * len(sizes)
        assert tuple(fig.get_size_inches()) == pytest.approx((forest.FIGURE_WIDTH_IN, want), abs=1e-9), sizes
        plt.close(fig)


def test_the_styling_a_reader_sees():
    """What makes the plot readable, pinned (issue 32): dots of 5 pt and intervals 2 pt wide, a grey
    7 pt "no data" centred on 0, the zero line black 0.6 pt, the thresholds black 0.8 pt dashed on
    both sides for latency, the late-epoch shares on 0-100 % whatever the data, ticks at
    ``FIGURE_FONT_PT``, axis labels (wrapped at 60 characters) and the title a point larger."""
    import pandas as pd

    long_unit = "a unit whose name runs well past the sixty characters an axis label keeps on one line"
    row = {"n": 3, "mean": None, "ci95_low": None, "ci95_high": None, "verdict": "reproduced", "decides": True,
           "values": "", "margin": 0.0}
    checks = pd.DataFrame([
        {**row, "unit": verdicts.LAT_UNIT, "what": "runs", "values": "1:0.5 2:-0.3", "margin": 1.0},
        {**row, "unit": verdicts.LAT_UNIT, "what": "none"},
        {**row, "unit": verdicts.LATE_UNIT, "what": "late", "values": "1:50 2:60"},
        {**row, "unit": long_unit, "what": "paired", "mean": 1.0, "ci95_low": 0.5, "ci95_high": 1.5}])
    fig = forest.figure(checks)
    lat, late, paired = fig.axes
    dots = [l for l in lat.get_lines() if l.get_marker() == "o"]
    assert [l.get_markersize() for l in dots] == [5]
    interval = [l for l in paired.get_lines() if list(l.get_xdata()) == [0.5, 1.5]]
    assert [l.get_linewidth() for l in interval] == [2]
    (text,) = lat.texts
    assert (text.get_text(), text.get_fontsize(), text.get_color(), text.get_horizontalalignment(),
            text.get_verticalalignment()) == ("no data", 7, "tab:gray", "center", "center")
    vlines = sorted((float(l.get_xdata()[0]), l.get_color(), l.get_linewidth(), l.get_linestyle())
                    for l in lat.get_lines() if list(l.get_ydata()) == [0, 1] and len(set(l.get_xdata())) == 1)
    assert vlines == [(-1.0, "black", 0.8, "--"), (0.0, "black", 0.6, "-"), (1.0, "black", 0.8, "--")]
    assert late.get_xlim() == (-5, 105)  # not the 49.5-60.5 the two runs alone would give
    for ax in fig.axes:
        assert {t.get_fontsize() for t in ax.get_yticklabels()} == {forest.FIGURE_FONT_PT}
        assert {t.get_linespacing() for t in ax.get_yticklabels()} == {0.95}
        assert {t.get_fontsize() for t in ax.get_xticklabels()} == {forest.FIGURE_FONT_PT}
        assert ax.xaxis.label.get_fontsize() == forest.FIGURE_FONT_PT + 1
    assert paired.get_xlabel() == textwrap.fill(long_unit, 60) and paired.get_xlabel().count("\n") == 1
    assert lat.title.get_fontsize() == forest.FIGURE_FONT_PT + 1
    plt.close(fig)
