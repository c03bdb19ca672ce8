"""The evidence report's figure: a forest plot of every check (``claims.evaluate_checks``) - a
paired check's mean and 95 % interval, a per-run check's runs as dots - coloured by verdict, with
the verdict thresholds of ``verdicts`` dashed, in pages readable at page width (``figures``)."""
from __future__ import annotations

import pandas as pd

from tfnas_core.report.verdicts import LAT_UNIT, LATE_UNIT


def _values(cell) -> list[tuple[int, float]]:
    if not isinstance(cell, str) or not cell:
        return []
    return [(int(s), float(v)) for s, v in (x.split(":") for x in cell.split())]


# The forest plot's pages (``figures``): at most this many checks a page, drawn FIGURE_WIDTH_IN wide
# with FIGURE_FONT_PT labels, so a page read at page width (about 6.5 in of text) shows them at 7 pt or more
PAGE_ROWS = 30
FIGURE_WIDTH_IN = 7.5
FIGURE_FONT_PT = 8
LABEL_CHARS = 46  # a check's label wraps at this many characters


def figures(checks: pd.DataFrame, page_rows: int = PAGE_ROWS) -> list:
    """The forest plot (``figure``) in pages of whole units, each of at most ``page_rows`` checks
    (a unit with more gets a page of its own), in the checks' order."""
    pages, rows = [[]], 0
    for unit in dict.fromkeys(checks["unit"]):
        n = int((checks["unit"] == unit).sum())
        if pages[-1] and rows + n > page_rows:
            pages.append([])
            rows = 0
        pages[-1].append(unit)
        rows += n
    return [figure(checks[checks["unit"].isin(units)]) for units in pages]


def figure(checks: pd.DataFrame):
    """Forest plot, one panel per unit: a paired check's mean and 95 % interval, a per-run check's
    runs as dots (signed); the verdict thresholds dashed; colour = verdict, hollow = context.
    ``FIGURE_WIDTH_IN`` wide, labels of ``FIGURE_FONT_PT`` wrapped at ``LABEL_CHARS``: readable at
    page width; ``figures`` splits a long report into pages."""
    import textwrap

    import matplotlib.pyplot as plt

    units = list(dict.fromkeys(checks["unit"]))
    heights = [max(1, (checks["unit"] == u).sum()) for u in units]
    fig, axes = plt.subplots(len(units), 1, figsize=(FIGURE_WIDTH_IN, 1.6 + 0.36 * sum(heights) + 0.55 * len(units)),
                             squeeze=False, gridspec_kw={"height_ratios": heights})
    colours = {"reproduced": "tab:green", "not reproduced": "tab:red", "inconclusive": "tab:gray",
               "not tested": "tab:orange"}
    for ax, unit in zip(axes[:, 0], units):
        rows = checks[checks["unit"] == unit].reset_index(drop=True)
        for i, r in rows.iterrows():
            y = len(rows) - 1 - i
            col = colours[r["verdict"]]
            face = col if bool(r["decides"]) else "white"
            vals = _values(r["values"])
            if vals:
                ax.plot([v for _, v in vals], [y] * len(vals), "o", mec=col, mfc=face, ms=5)
            elif pd.notna(r["mean"]):
                lo = r["ci95_low"] if pd.notna(r["ci95_low"]) else r["mean"]
                hi = r["ci95_high"] if pd.notna(r["ci95_high"]) else r["mean"]
                ax.plot([lo, hi], [y, y], color=col, lw=2)
                ax.plot(r["mean"], y, "o", mec=col, mfc=face)
            else:
                ax.text(0, y, "no data", va="center", ha="center", fontsize=7, color="tab:gray")
        ax.axvline(0, color="black", lw=0.6)
        for m in set(rows["margin"]):
            if m:
                ax.axvline(m, color="black", lw=0.8, ls="--")
                if unit == LAT_UNIT:
                    ax.axvline(-m, color="black", lw=0.8, ls="--")
        if unit == LAT_UNIT:
            ax.set_xscale("symlog", linthresh=2.0)
        elif unit == LATE_UNIT:
            ax.set_xlim(-5, 105)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([textwrap.fill(f"{w} (n={n})", LABEL_CHARS) for w, n in zip(rows["what"], rows["n"])][::-1],
                           fontsize=FIGURE_FONT_PT, linespacing=0.95)
        ax.tick_params(axis="x", labelsize=FIGURE_FONT_PT)
        ax.set_xlabel(textwrap.fill(unit, 60), fontsize=FIGURE_FONT_PT + 1)
    axes[0, 0].set_title("per check: mean and 95 % t interval, or every run (dots)\ngreen: reproduced, red: not "
                         "reproduced, grey: inconclusive,\norange: not tested; hollow: context, decides nothing",
                         fontsize=FIGURE_FONT_PT + 1)
    fig.tight_layout()
    return fig



__all__ = ["FIGURE_FONT_PT", "FIGURE_WIDTH_IN", "LABEL_CHARS", "PAGE_ROWS", "figure", "figures"]
