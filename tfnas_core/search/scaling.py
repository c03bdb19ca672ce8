"""Elasticity scaling (paper Sec. 3.3 "Rethinking Width-level Freedom", Algorithm 1, Appendix C).

Reproduces the released code's behaviour (docs/official_behaviour.md, "Elasticity scaling"):

* above the target: one global *shrink* over stages 3-8, then *expansions* restricted to stages
  4-8, 5-8, 6-8, 7-8 and 8;
* below the target: one global *expansion* over stages 3-8, then the same restricted expansions;
* exactly at the target: nothing.

One pass over a set of layers fixes each layer's step at ``round(mid / m_min)`` (Python's
``round``, as the original), ``m_min`` the smallest current width among them, and moves every
layer by its step, clipped to its bounds (``[max // 2, max]`` by default), until the latency
crosses the target or every layer is at a bound.  A shrink returns the first widths strictly
below the target (or the clipped widths); an expansion returns the last widths whose successor
was tried - so when every layer hits its upper bound during an expansion, the clipped widths
are *not* taken, exactly as the original.

What the result is called (``ScaleResult.met``, its message) follows ``stats.meets_target``: the
scaled latency within ``stats.TARGET_TOLERANCE_PCT`` of the target, under or over; a net left
further under the target is "under by X %" (``target_gap_pct``), not met.  The widths are the
released code's whatever the label.

The channel-selection rule used with it (L1 norm of depthwise filters) is ``elastic.rank_channels``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from tfnas_core.arch.spec import Spec
from tfnas_core.latency.lut import LUT
from tfnas_core.latency.keys import layer_key
from tfnas_core.arch.space import SEARCHABLE_STAGES
from tfnas_core.stats import TARGET_TOLERANCE_PCT, meets_target, target_gap_pct, target_status

Bounds = Callable[[int], tuple[int, int]]


def official_bounds(max_width: int) -> tuple[int, int]:
    """The released code's bounds: ``[max // 2, max]`` (equal to the op's width range)."""
    return max_width // 2, max_width


@dataclass(frozen=True)
class ScaleResult:
    spec: Spec
    lut_ms_before: float
    lut_ms_after: float
    target_ms: float
    met: bool  # latency after scaling within stats.TARGET_TOLERANCE_PCT of the target, under or over
    message: str

    @property
    def target_gap_pct(self) -> float:
        """Signed distance of the scaled latency from the target, % of the target (negative: under)."""
        return target_gap_pct(self.lut_ms_after, self.target_ms)

    def to_dict(self) -> dict:
        return {
            "spec": self.spec.to_dict(),
            "lut_ms_before": self.lut_ms_before,
            "lut_ms_after": self.lut_ms_after,
            "target_ms": self.target_ms,
            "met": self.met,
            "target_gap_pct": round(self.target_gap_pct, 4),
            "tolerance_pct": TARGET_TOLERANCE_PCT,
            "message": self.message,
        }


class FlatLayers:
    """A derived net as flat per-layer lists (LUT key, stage, width bounds), so the latency of
    many candidate widths (``latency(mids)``) is a sum over lists, not a spec rebuilt each time."""

    @classmethod
    def from_lists(cls, keys: list[str], stage: list[int], lo: list[int], hi: list[int], lut: LUT) -> "FlatLayers":
        """Flat layers given directly (a hand-made net for tests and what-if studies), checked like a spec's."""
        if not len(keys) == len(stage) == len(lo) == len(hi):
            raise ValueError("keys, stage, lo and hi must have one entry per layer")
        net = cls.__new__(cls)
        net.keys, net.stage, net.lo, net.hi, net.lut = list(keys), list(stage), list(lo), list(hi), lut
        for i, (k, a, b) in enumerate(zip(keys, lo, hi)):
            lut.ms(k, a, f"layer {i}")
            lut.ms(k, b, f"layer {i}")
        return net

    def __init__(self, spec: Spec, lut: LUT, bounds: Bounds):
        space = spec.search_space
        self.keys, self.stage, self.lo, self.hi = [], [], [], []
        where = []
        for geom, layer in spec.layers():
            op = space.op(layer.op)
            lo, hi = bounds(op.max_width(geom.cin))
            self.keys.append(layer_key(space, geom, layer.op))
            self.stage.append(geom.stage)
            self.lo.append(lo)
            self.hi.append(hi)
            where.append(f"stage {geom.stage} layer {geom.index} ({layer.op})")
        self.lut = lut
        # Fail early (with the layer named) if the LUT lacks a key or a width we may visit.
        for k, lo, hi, w in zip(self.keys, self.lo, self.hi, where):
            lut.ms(k, lo, w)
            lut.ms(k, hi, w)

    def latency(self, mids: list[int]) -> float:
        return self.lut.base + sum(self.lut.entries[k][m] for k, m in zip(self.keys, mids))


def _pass(net: FlatLayers, mids: list[int], layers: list[int], expand: bool, target: float) -> list[int]:
    """One shrink or expansion pass over ``layers`` (indices into ``mids``)."""
    if not layers:
        return mids
    m_min = min(mids[i] for i in layers)
    steps = {i: round(mids[i] / m_min) for i in layers}
    cur = list(mids)
    new = list(mids)
    new_lat = net.latency(new)
    unfinished = True
    while unfinished and (new_lat <= target if expand else new_lat >= target):
        cur = new
        new = list(cur)
        unfinished = False
        for i in layers:
            v = cur[i] + steps[i] if expand else cur[i] - steps[i]
            v = min(max(v, net.lo[i]), net.hi[i])
            new[i] = v
            if net.lo[i] < v < net.hi[i]:
                unfinished = True
        new_lat = net.latency(new)
    return cur if expand else new


def scale_widths(net: FlatLayers, mids: list[int], target_ms: float) -> list[int]:
    """The released code's passes over ``net`` from ``mids``: one global shrink (above the target) or
    expansion (below) over stages 3-8, then expansions restricted to stages 4-8, 5-8, 6-8, 7-8 and 8;
    at the target, nothing.  The widths, layer by layer."""
    mids = list(mids)
    before = net.latency(mids)
    if before == target_ms:
        return mids
    in_stages = lambda first: [i for i, s in enumerate(net.stage) if s >= first]  # noqa: E731
    mids = _pass(net, mids, in_stages(SEARCHABLE_STAGES[0]), expand=before < target_ms, target=target_ms)
    for first in SEARCHABLE_STAGES[1:]:
        mids = _pass(net, mids, in_stages(first), expand=True, target=target_ms)
    return mids


def scale(spec: Spec, lut: LUT, target_ms: float, bounds: Bounds = official_bounds) -> ScaleResult:
    """Shrink/expand the widths of a derived net toward ``target_ms`` under ``lut``."""
    if not target_ms > 0:
        raise ValueError(f"target latency must be positive, got {target_ms}")
    net = FlatLayers(spec, lut, bounds)
    mids = list(spec.mids)
    for i, m in enumerate(mids):
        if not net.lo[i] <= m <= net.hi[i]:
            raise ValueError(f"layer {i}: width {m} outside the scaling bounds [{net.lo[i]}, {net.hi[i]}]")
    before = net.latency(mids)
    mids = scale_widths(net, mids, target_ms)
    after = net.latency(mids)
    met = meets_target(after, target_ms)
    msg = f"scaled {before:.3f} -> {after:.3f} ms (target {target_ms:.3f} ms): {target_status(after, target_ms)}"
    if not met and after < target_ms:
        widest = net.latency(net.hi)
        if widest < target_ms and not meets_target(widest, target_ms):
            msg += (f"; the target is out of reach from below: every layer at its upper width bound gives only "
                    f"{widest:.3f} ms")
        else:  # a wider net would meet it, but the passes' proportional steps stop short (released code's rule)
            msg += "; the expansions stop at the last widths their proportional steps reach below the target"
    elif not met:
        at_lo = all(m <= lo for m, lo in zip(mids, net.lo))
        msg += ("; the target cannot be met from above: "
                + ("with every layer at its lower width bound" if at_lo else "with the widths scaling reached"))
    return ScaleResult(spec.with_mids(mids), before, after, float(target_ms), met, msg)

