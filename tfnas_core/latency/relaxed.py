"""The relaxed, differentiable latency of the supernet the architecture step minimises.

Eq. 4: a layer's latency is Σ_i u_i·LAT(op_i), ``u`` the (Gumbel-)softmax weights over its
candidates; Eq. 6 (sink-connecting depth): a stage's is Σ_d v_d · Σ_{l<=d} LAT(layer l), ``v``
the softmax over its depths.  ``LAT(op_i)`` are LUT entries at the op's current width
(``op_latencies``); ``supernet.Supernet.expected_latency`` assembles the tensors.
"""
from __future__ import annotations

from typing import Sequence

from tfnas_core.latency.lut import LUT
from tfnas_core.latency.keys import layer_key
from tfnas_core.arch.space import LayerGeom, SearchSpace


def op_latencies(lut: LUT, space: SearchSpace, geom: LayerGeom, mids: Sequence[int]) -> list[float]:
    """LUT latency of each candidate op of one layer at its current width (α order)."""
    return [lut.ms(layer_key(space, geom, name), mid) for name, mid in zip(space.ops, mids)]


def expected_latency(base, layer_probs, layer_lats, depth_probs=None, stage_sizes=None):
    """Relaxed latency of the supernet (torch tensors in, a differentiable scalar out).

    ``layer_probs`` / ``layer_lats``: one tensor per layer over its candidates (Eq. 4:
    Σ_i u_i·LAT(op_i)).  With ``depth_probs`` (one tensor per stage over its depths 1..L) and
    ``stage_sizes`` (layers per stage), Eq. 6: Σ_s Σ_d v_d · Σ_{l<=d} LAT(layer l).
    """
    per_layer = [(p * t).sum() for p, t in zip(layer_probs, layer_lats)]
    if depth_probs is None:
        return base + sum(per_layer)
    total = base
    start = 0
    for v, n in zip(depth_probs, stage_sizes):
        prefix, acc = [], 0.0
        for lat in per_layer[start:start + n]:
            acc = acc + lat
            prefix.append(acc)
        if v.numel() == n + 1:  # the stage may also vanish: depth 0 costs nothing
            prefix = [0.0] + prefix
        elif v.numel() != n:
            raise ValueError(f"depth distribution of size {v.numel()} for a stage of {n} layers")
        total = total + sum(v[i] * prefix[i] for i in range(v.numel()))
        start += n
    return total
