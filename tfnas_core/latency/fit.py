"""Filling a LUT key's every width from the widths that were timed.

A LUT holds a latency for every middle width of every block key; ``lut_build`` times only every
``step``-th width (plus the widest) and fills the rest from those points.

``measured_widths`` says which widths are timed; ``fit_points`` fills the rest (``FITS``).
Pure functions on plain dicts; ``latency.LUT.refit`` and ``lut_build.build`` use them.
"""
from __future__ import annotations


def measured_widths(lo: int, hi: int, step: int) -> list[int]:
    """Every ``step``-th width from ``lo`` plus ``hi``: the points we time."""
    ws = list(range(lo, hi + 1, step))
    if ws[-1] != hi:
        ws.append(hi)
    return ws


FITS = ("aligned", "linear", "interp")
ALIGN = 16  # channel multiple that runs fast on this repository's CPU (AVX-512: 16 fp32 lanes)


def fit_points(points: dict[int, float], lo: int, hi: int, fit: str = "aligned") -> dict[int, float]:
    """Fill every width ``lo..hi`` from timed ``points``.

    ``"aligned"`` (default): a least-squares line plus a step for widths that are a multiple
    of ``ALIGN``.  Measured on this machine, a block whose ``mid`` is a multiple of 16 runs
    3-14 % faster than its neighbours (e.g. the 56 px k3 key: 0.707 ms at mid 64, 0.751 at 63,
    0.823 at 65), so a plain line through multiples of 8 (where ``measured_widths`` times, half
    of them multiples of 16) misfits both kinds; the step term separates them (fresh probes of
    unmeasured widths, committed build: median error 3.6 % aligned vs 4.9 % linear).
    ``"linear"`` (the official tables' style: "a linear fit per key"): a plain line.  Both are
    refitted once without the points whose residual exceeds 3x the median residual (timing
    spikes from a busy machine).  ``"interp"``: piecewise-linear through every timed point.
    """
    import numpy as np

    if fit == "interp":
        return interpolate(points, lo, hi)
    if fit not in FITS:
        raise ValueError(f"unknown LUT fit {fit!r}; known: {', '.join(FITS)}")
    xs = np.array(sorted(points), dtype=float)
    ys = np.array([points[int(x)] for x in xs])
    if len(xs) < 2:
        return {w: float(ys[0]) for w in range(lo, hi + 1)}

    def design(w):
        cols = [np.ones_like(w), w]
        if fit == "aligned":
            cols.append((np.mod(w, ALIGN) == 0).astype(float))
        return np.column_stack(cols)

    a = design(xs)
    if np.linalg.matrix_rank(a) < a.shape[1] or len(xs) <= a.shape[1]:  # one kind of width only: a line
        a = a[:, :2]
        fit = "linear"
    coef = np.linalg.lstsq(a, ys, rcond=None)[0]
    res = np.abs(ys - a @ coef)
    keep = res <= 3 * np.median(res) + 1e-9
    if keep.sum() > a.shape[1] and not keep.all() and np.linalg.matrix_rank(a[keep]) == a.shape[1]:
        coef = np.linalg.lstsq(a[keep], ys[keep], rcond=None)[0]
    ws = np.arange(lo, hi + 1, dtype=float)
    full = design(ws)[:, : len(coef)]
    return {int(w): float(v) for w, v in zip(ws, full @ coef)}


def interpolate(points: dict[int, float], lo: int, hi: int) -> dict[int, float]:
    """Linear interpolation of measured ``points`` over every width ``lo..hi``."""
    import numpy as np

    xs = sorted(points)
    ys = [points[x] for x in xs]
    ws = np.arange(lo, hi + 1)
    return {int(w): float(v) for w, v in zip(ws, np.interp(ws, xs, ys))}
