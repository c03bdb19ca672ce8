"""Fast kernels for the supernet's search steps: same functions as the plain path, fewer, cheaper calls.

The plain path (``elastic.ElasticMBInvRes.forward``, ``mixed_op.MixedOp.forward``) is the
readable reference: one ``F.conv2d`` per convolution in NCHW, one candidate after another.  This
module computes the *same* mathematical functions (equal up to float rounding; tests compare
losses and gradients at tolerance) in a layout and grouping that suit the hardware:

* **channels_last activations** - every block works on NHWC memory, so a 1x1 convolution is one
  GEMM on the ``(B·H·W, C)`` view (``F.linear``, no im2col, no oneDNN primitive per call) and the
  depthwise convolution and BatchNorm use their NHWC kernels.  Measured on the 2-core CPU (mini
  proxy, batch 64, one thread): depthwise conv forward+backward 2-3x faster than NCHW, the
  whole weight step ~1.45x (``benchmarks/bench_search.py`` has the current numbers).
* **SE on vectors** - the squeeze-excite convolutions act on pooled ``(B, C)`` vectors: ``F.linear``
  instead of a 1x1 convolution on a 1x1 map (each of those cost a oneDNN call of ~0.1 ms).
* **depthwise on a 1x1 map** - with stride 1 and "same" padding only the centre tap of the kernel
  meets a pixel, so the convolution is a per-channel scale (exact).  The 32-px proxy has whole
  stages at 1x1, where oneDNN's depthwise kernel took ~4 ms per call.
* **one relaxed layer as one wide block** (the arch step runs every candidate, Eq. 3): the
  candidates share their input, so their expand convolutions are one GEMM over the concatenated
  widths, followed by one BatchNorm and one activation over all candidates' middle channels
  (BatchNorm without affine parameters is per channel, so normalising the concatenation is
  normalising each candidate); the depthwise convolutions are one convolution at kernel 5 with
  the k3 kernels embedded in a zero border (the same function), then one BatchNorm and one
  activation; SE and project run per candidate (their inputs differ).  On the CPU this is about
  as fast as running the candidates one after another (the high-resolution layers are bound by
  memory traffic, not by calls); it exists for launch-bound GPUs, where it replaces ~8x the
  kernel launches - unmeasured there so far (see the README's speed section).

Nothing here keeps state; the blocks' weights stay where they are (the elastic slices
``[:active_mid]`` are views), so optimisers, checkpoints and elasticity scaling are unaffected.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from tfnas_core.nn.ops import drop_connect, search_bn

CL = torch.channels_last


def to_cl(x: torch.Tensor) -> torch.Tensor:
    """``x`` with channels_last memory (no copy when it already is)."""
    return x.contiguous(memory_format=CL)


def pointwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """1x1 convolution of a channels_last ``x`` (N, C, H, W) with ``weight`` (O, C[, 1, 1]) as one GEMM.

    Returns (N, O, H, W) with channels_last memory."""
    w = weight.reshape(weight.shape[0], weight.shape[1])
    y = F.linear(x.permute(0, 2, 3, 1), w, bias)  # (N, H, W, O), contiguous
    return y.permute(0, 3, 1, 2)


def depthwise(x: torch.Tensor, weight: torch.Tensor, stride: int, kernel: int) -> torch.Tensor:
    """Depthwise kxk convolution, "same" padding ``kernel // 2``, ``weight`` (C, 1, k', k') with k' <= k
    centred (a k3 kernel inside a k5 call is the same function: zero border)."""
    h, w = x.shape[-2:]
    if h == 1 and w == 1 and stride == 1:
        c = weight.shape[-1] // 2
        return x * weight[:, 0, c, c].view(1, -1, 1, 1)  # only the centre tap meets the pixel
    k = weight.shape[-1]
    return F.conv2d(x, weight, None, stride, k // 2, 1, x.shape[1])


def se_scale(h: torch.Tensor, reduce_w: torch.Tensor, reduce_b: torch.Tensor, expand_w: torch.Tensor,
             expand_b: torch.Tensor, act) -> torch.Tensor:
    """Squeeze-excite on pooled vectors: ``h · sigmoid(W2 act(W1 mean(h) + b1) + b2)``."""
    s = h.mean((2, 3))
    s = act(F.linear(s, reduce_w.reshape(reduce_w.shape[0], -1), reduce_b))
    s = F.linear(s, expand_w.reshape(expand_w.shape[0], -1), expand_b)
    return h * torch.sigmoid(s)[:, :, None, None]


def block_forward(block, x: torch.Tensor) -> torch.Tensor:
    """``ElasticMBInvRes.forward`` at its active width, channels_last and GEMM-based."""
    m = block.active_mid
    x = to_cl(x)
    h = x
    if m != block.in_chs:
        h = block.act(search_bn(pointwise(h, block.expand_conv.weight[:m])))
    h = block.act(search_bn(depthwise(h, block.dw_conv.weight[:m], block.stride, block.kernel)))
    if block.se_reduce is not None:
        h = se_scale(h, block.se_reduce.weight[:, :m], block.se_reduce.bias, block.se_expand.weight[:m],
                     block.se_expand.bias[:m], block.act)
    y = search_bn(pointwise(h, block.project_conv.weight[:, :m]))
    if block.has_residual:
        y = x + drop_connect(y, block.drop_connect_rate, block.training)
    return y


EMBED_KERNELS = False  # relaxed_layer: one depthwise at the largest kernel (True) or one per kernel size


def relaxed_layer(candidates: Sequence, x: torch.Tensor, weights: torch.Tensor, has_skip: bool) -> torch.Tensor:
    """Σ_i weights[i] · candidate_i(x) (+ weights[N] · x with a skip), every candidate at once (Eq. 3).

    The candidates of one layer share ``in_chs``, ``out_chs``, stride and activation (they differ in
    kernel, width and SE).  Expand (one GEMM over the concatenated widths, one BN, one act) and
    depthwise (one convolution, one BN, one act) run once per kernel size (``EMBED_KERNELS`` false, the default: on a CPU a
    k3 kernel embedded in k5 costs 25/9 of its depthwise work, which at 112 px outweighs the saved
    calls - measured in benchmarks/bench_search.py) or once for all candidates (true: one
    depthwise at the largest kernel, the smaller kernels embedded with a zero border - the same
    function, fewer kernel launches).  SE and project per candidate (their inputs differ), each projection normalised and accumulated with its weight.
    A candidate at ``active_mid == in_chs`` (no expand conv; never at the proxies' widths, where
    mid >= 2·cin) sends the layer through the per-candidate path."""
    x = to_cl(x)
    n_ops = len(candidates)
    first = candidates[0]
    if any(op.active_mid == op.in_chs for op in candidates):
        out = sum(weights[i] * block_forward(op, x) for i, op in enumerate(candidates))
        return out + weights[n_ops] * x if has_skip else out
    if first.has_residual and first.drop_connect_rate > 0 and first.training:
        raise ValueError("the fused relaxed layer assumes drop-connect 0 (the supernet's)")
    groups: dict[int, list[int]] = {}  # kernel -> candidate indices (one group when EMBED_KERNELS)
    k_max = max(op.kernel for op in candidates)
    for i, op in enumerate(candidates):
        groups.setdefault(k_max if EMBED_KERNELS else op.kernel, []).append(i)
    out = None
    for k, idx in groups.items():
        ops = [candidates[i] for i in idx]
        mids = [op.active_mid for op in ops]
        w_exp = torch.cat([op.expand_conv.weight[:m] for op, m in zip(ops, mids)])
        h = first.act(search_bn(pointwise(x, w_exp)))  # BN is per channel: one call over the group
        w_dw = torch.cat([F.pad(op.dw_conv.weight[:m], [(k - op.kernel) // 2] * 4) for op, m in zip(ops, mids)])
        h = first.act(search_bn(depthwise(h, w_dw, first.stride, k)))
        for i, op, m, hi in zip(idx, ops, mids, torch.split(h, mids, dim=1)):
            if op.se_reduce is not None:
                hi = se_scale(hi, op.se_reduce.weight[:, :m], op.se_reduce.bias, op.se_expand.weight[:m],
                              op.se_expand.bias[:m], op.act)
            z = weights[i] * search_bn(pointwise(hi, op.project_conv.weight[:, :m]))
            out = z if out is None else out + z
    if first.has_residual:  # Σ u_i (x + y_i) = (Σ u_i) x + Σ u_i y_i  (the supernet has no drop-connect)
        out = out + weights[:n_ops].sum() * x
    if has_skip:
        out = out + weights[n_ops] * x
    return out


__all__ = ["block_forward", "depthwise", "pointwise", "relaxed_layer", "se_scale", "to_cl"]
