"""The relaxed, differentiable latency of the supernet the architecture step minimises.

Eq. 4: a layer's latency is Σ_i u_i·LAT(op_i), ``u`` the (Gumbel-)softmax weights over its
candidates; Eq. 6 (sink-connecting depth): a stage's is Σ_d v_d · Σ_{l<=d} LAT(layer l), ``v``
the softmax over its depths.  ``LAT(op_i)`` are LUT entries at the op's current width
(``op_latencies``).  The latency table is handed the network, once-for-all style
(``predict_network_latency(net, ...)``): ``supernet_latency(net, lut, op_weights, depth_weights)``
reads the supernet's layers, widths and depth space (``nn.depth_spaces``: per-layer factors such as
skip-out's P(keep), per-stage depth distributions for Eq. 6); the supernet knows no table.
"""
from __future__ import annotations

import weakref
from typing import Sequence

import torch

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


def layer_latencies(net, lut: LUT) -> list[list[float]]:
    """LUT latency of every choice of every layer of supernet ``net`` at its current widths
    (α order; a ``skip`` candidate costs 0)."""
    out = []
    for l, g in enumerate(net.geoms):
        lats = op_latencies(lut, net.space, g, net.mids[l])
        out.append(lats + [0.0] * int(net.layers[l].has_skip))
    return out


class LatencyTensors:
    """``layer_latencies`` as tensors, built once per (supernet, LUT, widths, device, dtype): no
    host-to-device copy per arch step, which a CUDA graph could not capture.  Keyed by the supernet
    weakly, outside it (nothing is added to the module, so nothing reaches its state_dict)."""

    def __init__(self):
        self._by_net: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def __call__(self, net, lut: LUT, ref: torch.Tensor) -> list[torch.Tensor]:
        """The tensors (a fresh list) in ``ref``'s device and dtype."""
        key = (tuple(map(tuple, net.mids)), ref.device, ref.dtype)
        cached = self._by_net.get(net)
        if cached is None or cached[0] is not lut or cached[1] != key:
            tensors = [torch.tensor(t, dtype=ref.dtype, device=ref.device) for t in layer_latencies(net, lut)]
            cached = (lut, key, tensors)
            self._by_net[net] = cached
        return list(cached[2])


latency_tensors = LatencyTensors()  # the one cache the search steps share


def supernet_latency(net, lut: LUT, op_weights: Sequence[torch.Tensor],
                     depth_weights: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
    """Relaxed latency of supernet ``net`` under ``op_weights`` (per layer) and ``depth_weights``
    (per depth parameter, ``net.depth_weights()`` order).

    'sink': Eq. 6 with the stage depth distributions; 'skip-in': Eq. 4 with the skip candidate
    costing 0; 'skip-out': Eq. 4 with each gated layer's latencies multiplied by P(keep) (the
    depth space says which: ``latency_factors`` / ``stage_distributions``).  ``lut.base`` (the
    fixed parts) is included.
    """
    if len(op_weights) != net.num_layers:
        raise ValueError(f"expected {net.num_layers} op weight vectors, got {len(op_weights)}")
    lats = latency_tensors(net, lut, op_weights[0])
    depth_weights = list(depth_weights) if depth_weights is not None else []
    if len(depth_weights) != len(net.depth_parameters()):
        raise ValueError(f"expected {len(net.depth_parameters())} depth weight vectors, got {len(depth_weights)}")
    depths = net.depth_search
    for l, factor in depths.latency_factors(depth_weights).items():
        lats[l] = lats[l] * factor
    stages = depths.stage_distributions(depth_weights)
    if stages is None:
        return expected_latency(lut.base, op_weights, lats)
    return expected_latency(lut.base, op_weights, lats, stages, net.stage_sizes)


__all__ = ["LatencyTensors", "expected_latency", "latency_tensors", "layer_latencies", "op_latencies",
           "supernet_latency"]
