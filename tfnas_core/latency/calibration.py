"""Calibrating a LUT's block timings against whole networks timed in the same window.

A block timed alone, again and again on the same input, runs from warm caches; inside a network
its weights and input come from further away, so the plain sum of Eq. 4 (``base + Σ entry``)
predicts whole networks low (measured here, uncalibrated: 14.9 % low on average on 20 held-out
random architectures, 13.8 % on the zoo).  The gap is not one constant: the fitted factors
differ by stage (committed CPU LUT: 1.01 for stage 3 up to 1.46 for stage 7).  So, with the
block points timed,
``build`` times ``n`` random valid architectures (``random_arch``) interleaved, and fits

    measured(net) ≈ b + Σ_stage c_stage · Σ_{layers l of the stage} entry_l

by least squares on relative error (each net's row divided by its measured latency).  The
calibrated LUT has ``base = b`` and every entry of a stage's keys multiplied by ``c_stage``
(each key belongs to one stage: its geometry names it), so it stays a plain table and Eq. 4 /
Eq. 6 of the search are unchanged.  Held-out architectures (another seed, and the zoo) are what
``measure.fidelity`` checks it against.
"""
from __future__ import annotations

from typing import Any

from tfnas_core.arch.spec import Spec
from tfnas_core.latency.keys import layer_key, space_keys
from tfnas_core.arch.space import SEARCHABLE_STAGES

CALIB_SEED = 0  # random_arch seed of the calibration set; fidelity holds out HELDOUT_SEED
HELDOUT_SEED = 1


def stage_sums(entries: dict[str, dict[int, float]], spec: Spec) -> list[float]:
    """Σ entry over the layers of each searchable stage (stage 3 first)."""
    space = spec.search_space
    sums = {s: 0.0 for s in SEARCHABLE_STAGES}
    for geom, layer in spec.layers():
        sums[geom.stage] += entries[layer_key(space, geom, layer.op)][layer.mid]
    return [sums[s] for s in SEARCHABLE_STAGES]


def fit(rows: list[list[float]], measured: list[float]) -> tuple[float, list[float]]:
    """Least-squares ``(b, [c_stage])`` of ``measured ≈ b + Σ c·row`` on relative error."""
    import numpy as np

    if len(rows) < len(SEARCHABLE_STAGES) + 1:
        raise ValueError(f"calibration needs at least {len(SEARCHABLE_STAGES) + 1} networks, got {len(rows)}")
    y = np.asarray(measured, dtype=float)
    a = np.column_stack([np.ones(len(rows)), np.asarray(rows, dtype=float)])
    coef, *_ = np.linalg.lstsq(a / y[:, None], np.ones(len(y)), rcond=None)
    if coef[0] <= 0 or (coef[1:] <= 0).any():
        raise ValueError(f"calibration fit is not physical (base {coef[0]:.3f}, stage factors "
                         f"{', '.join(f'{c:.3f}' for c in coef[1:])}): the timings are too noisy; rebuild on a quieter machine")
    return float(coef[0]), [float(c) for c in coef[1:]]


def key_stage(space) -> dict[str, int]:
    """Which searchable stage each LUT key of ``space`` belongs to."""
    return {k: info.geom.stage for k, info in space_keys(space).items()}


def apply(entries: dict[str, dict[int, float]], factors: dict[int, float], space) -> dict[str, dict[int, float]]:
    """Entries with each key's table multiplied by its stage's factor."""
    stage = key_stage(space)
    return {k: {w: v * factors[stage[k]] for w, v in t.items()} for k, t in entries.items()}


def summary(raw_base: float, base: float, factors: list[float], specs: dict[str, Spec],
            measured: dict[str, float], predicted: dict[str, float], rounds: int) -> dict[str, Any]:
    """What is stored in a LUT's provenance about its calibration."""
    errs = [100 * (predicted[n] - measured[n]) / measured[n] for n in specs]
    return {
        "method": "per-stage factors + base, least squares on relative error (tfnas_core.latency.calibration)",
        "networks": len(specs), "seed": CALIB_SEED, "rounds": rounds,
        "raw_base": round(raw_base, 6), "base": round(base, 6),
        "factors": {str(s): round(c, 6) for s, c in zip(SEARCHABLE_STAGES, factors)},
        "fit_mean_abs_err_pct": round(sum(abs(e) for e in errs) / len(errs), 3),
        "fit_max_abs_err_pct": round(max(abs(e) for e in errs), 3),
        "measured_ms": {n: round(v, 4) for n, v in measured.items()},
    }
