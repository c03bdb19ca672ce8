"""Elastic (width-adjustable) MBInvRes block of the supernet, once-for-all style.

Paper Appendix C ("Implementation Details of Elasticity-scaling"): every candidate operation owns
a *full-width* weight space (``mid = 4·cin`` for e3 ops, ``8·cin`` for e6 ops, see
``space.OpDef.max_width``) and runs on the channels elasticity scaling keeps.  Here that is a
slice: the block's middle channels are kept ordered by importance and ``forward`` uses
``[:active_mid]``.  ``active_mid`` is a plain attribute set from outside before ``forward``
(``supernet.Supernet.set_mid`` does it); changing it never rebuilds a module, never replaces a
parameter (optimiser references stay valid) and dropped channels keep their weights, so they
come back if the op is expanded later.

``reorder_channels`` ranks the full-width middle channels by the L1 norm of their depthwise
filters (``rank_channels``, Appendix C) and applies one permutation to every coupled
tensor: expand conv (output dim), depthwise conv, SE reduce conv (input dim), SE expand conv
(output dim and bias) and project conv (input dim).  Then the first ``active_mid`` channels are
exactly the top-``active_mid`` channels the released code keeps.

Speed: ``forward(x, fast=True)`` (the supernet passes its ``Supernet.set_fast`` switch) runs the
same function through ``fast_ops.block_forward`` (channels_last, 1x1 convolutions as GEMMs); the
rest of ``forward`` is the plain reference.

BatchNorm: the supernet's BNs are ``affine=False`` without running statistics, as the released
code (docs/official_behaviour.md, "Supernet BatchNorms").  Such a BN has no state at all, so
"slicing its statistics" is normalising the active channels with their own batch statistics:
``F.batch_norm(x, None, None, training=True)`` on the slice, in train and eval mode alike.

``get_active_subnet`` returns the static ``ops.MBInvRes`` with the active weights copied in; its
BNs are the ordinary affine ones (weight 1, bias 0, fresh running statistics), so it computes
the same function as this block when it runs in train mode (batch statistics).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tfnas_core.nn import fast_ops
from tfnas_core.nn.ops import BN_EPS, MBInvRes, drop_connect, make_act, search_bn
from tfnas_core.arch.space import BlockArgs


def rank_channels(depthwise_weight) -> torch.Tensor:
    """Channel order by importance: L1 norm of each depthwise filter, descending (Appendix C).

    ``depthwise_weight`` has shape ``(mid, 1, k, k)``; keep the first ``mid'`` indices of the
    result to shrink to ``mid'``.  The same indices select the expand conv's outputs, the
    project conv's inputs and the SE convs' channels.  Ties keep the lower index first.
    """
    imp = depthwise_weight.detach().abs().flatten(1).sum(1)
    return torch.sort(imp, descending=True, stable=True).indices


class ElasticMBInvRes(nn.Module):
    """MBInvRes block whose middle width is elastic in ``[1, max_mid]``.

    ``args`` describes the block at its *maximum* width (``args.mid_chs`` = channels allocated,
    ``args.se_chs`` = SE width, fixed by the op family, not by ``mid``); ``init_mid`` is the
    starting active width (3·cin for e3 ops, 6·cin for e6 ops, after the proxy transform).

    Layout, as ``ops.MBInvRes``: 1x1 expand → BN → act (skipped when ``active_mid == in_chs``,
    like the static block, which has no expand conv then; never the case at paper scale, where
    ``mid >= 2·cin``); kxk depthwise (stride) → BN → act; [SE]; 1x1 project → BN; residual when
    the block keeps its shape.
    """

    def __init__(self, args: BlockArgs, init_mid: int, drop_connect_rate: float = 0.0):
        super().__init__()
        a = args
        if not 1 <= init_mid <= a.mid_chs:
            raise ValueError(f"init_mid {init_mid} outside [1, {a.mid_chs}]")
        self.in_chs, self.max_mid, self.out_chs = a.in_chs, a.mid_chs, a.out_chs
        self.kernel, self.stride, self.se_chs, self.act_name, self.in_hw = a.kernel, a.stride, a.se_chs, a.act, a.in_hw
        self.has_residual = a.stride == 1 and a.in_chs == a.out_chs
        self.drop_connect_rate = drop_connect_rate
        self.expand_conv = nn.Conv2d(a.in_chs, a.mid_chs, 1, bias=False)
        self.dw_conv = nn.Conv2d(a.mid_chs, a.mid_chs, a.kernel, a.stride, a.kernel // 2, groups=a.mid_chs, bias=False)
        if a.se_chs > 0:
            self.se_reduce = nn.Conv2d(a.mid_chs, a.se_chs, 1, bias=True)
            self.se_expand = nn.Conv2d(a.se_chs, a.mid_chs, 1, bias=True)
        else:
            self.se_reduce = self.se_expand = None
        self.project_conv = nn.Conv2d(a.mid_chs, a.out_chs, 1, bias=False)
        self.act = make_act(a.act)
        self.active_mid = int(init_mid)  # plain attribute: set from outside before forward

    # -- forward -----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, fast: bool = False) -> torch.Tensor:
        m = self.active_mid
        if not 1 <= m <= self.max_mid:
            raise ValueError(f"active_mid {m} outside [1, {self.max_mid}]")
        if fast:
            return fast_ops.block_forward(self, x)
        h = x
        if m != self.in_chs:
            h = self.act(search_bn(F.conv2d(h, self.expand_conv.weight[:m])))
        h = F.conv2d(h, self.dw_conv.weight[:m], None, self.stride, self.kernel // 2, 1, m)
        h = self.act(search_bn(h))
        if self.se_reduce is not None:
            s = h.mean((2, 3), keepdim=True)
            s = self.act(F.conv2d(s, self.se_reduce.weight[:, :m], self.se_reduce.bias))
            s = F.conv2d(s, self.se_expand.weight[:m], self.se_expand.bias[:m])
            h = h * torch.sigmoid(s)
        y = search_bn(F.conv2d(h, self.project_conv.weight[:, :m]))
        if self.has_residual:
            y = x + drop_connect(y, self.drop_connect_rate, self.training)
        return y

    # -- channel order -----------------------------------------------------------------------
    @torch.no_grad()
    def reorder_channels(self) -> torch.Tensor:
        """Sort the full-width middle channels by depthwise-filter L1 norm (descending), in place.

        Every coupled tensor gets the same permutation; parameters are written in place (their
        identity is kept).  Returns the permutation (new position ``j`` holds old channel
        ``perm[j]``) so a caller can permute optimiser state the same way if it keeps any.
        """
        perm = rank_channels(self.dw_conv.weight).to(self.dw_conv.weight.device)
        for p, dim in self.coupled_tensors():
            p.copy_(p.index_select(dim, perm))
        return perm

    def coupled_tensors(self) -> list[tuple[torch.Tensor, int]]:
        """Each tensor indexed by the middle channels, with the dimension that indexes them."""
        out = [(self.expand_conv.weight, 0), (self.dw_conv.weight, 0), (self.project_conv.weight, 1)]
        if self.se_reduce is not None:
            out += [(self.se_reduce.weight, 1), (self.se_expand.weight, 0), (self.se_expand.bias, 0)]
        return out

    # -- static export -----------------------------------------------------------------------
    def active_block_args(self, mid: int | None = None) -> BlockArgs:
        m = self.active_mid if mid is None else int(mid)
        return BlockArgs(self.in_chs, m, self.out_chs, self.kernel, self.stride, self.se_chs, self.act_name, self.in_hw)

    @torch.no_grad()
    def get_active_subnet(self, mid: int | None = None, drop_connect_rate: float = 0.0) -> MBInvRes:
        """A static ``ops.MBInvRes`` holding the first ``mid`` (default ``active_mid``) channels.

        Its BNs are ordinary (weight 1, bias 0, fresh running statistics): in train mode it
        computes exactly what this block computes at that width.
        """
        m = self.active_mid if mid is None else int(mid)
        if not 1 <= m <= self.max_mid:
            raise ValueError(f"mid {m} outside [1, {self.max_mid}]")
        block = MBInvRes(self.active_block_args(m), drop_connect_rate)
        block.to(self.dw_conv.weight.device)
        if m != self.in_chs:
            block.expand[0].weight.copy_(self.expand_conv.weight[:m])
        block.depthwise[0].weight.copy_(self.dw_conv.weight[:m])
        if self.se_reduce is not None:
            block.se.reduce.weight.copy_(self.se_reduce.weight[:, :m])
            block.se.reduce.bias.copy_(self.se_reduce.bias)
            block.se.expand.weight.copy_(self.se_expand.weight[:m])
            block.se.expand.bias.copy_(self.se_expand.bias[:m])
        block.project[0].weight.copy_(self.project_conv.weight[:, :m])
        return block

    def extra_repr(self) -> str:
        return (f"in={self.in_chs}, mid={self.active_mid}/{self.max_mid}, out={self.out_chs}, k={self.kernel}, "
                f"s={self.stride}, se={self.se_chs}, act={self.act_name}")


__all__ = ["BN_EPS", "ElasticMBInvRes", "search_bn"]
