"""Static building blocks: the MBInvRes block (MobileNetV2's inverted residual) with optional SE.

Block layout (docs/official_behaviour.md, "MBInvRes"): 1x1 expand (only when mid != cin) →
BN → act; kxk depthwise (stride here) → BN → act; [SE: avg-pool → 1x1 (bias) → act → 1x1
(bias) → sigmoid → scale]; 1x1 project → BN; residual add (with drop-connect) when the block
keeps its shape.  Optional parts are ``nn.Identity`` so ``forward`` is straight-line.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tfnas_core.arch.space import BlockArgs

BN_EPS = 1e-5  # nn.BatchNorm2d's default, so the static network and the supernet normalise identically


def search_bn(x: torch.Tensor) -> torch.Tensor:
    """The supernet's BatchNorm: ``affine=False``, no running statistics (batch statistics always)."""
    return F.batch_norm(x, None, None, None, None, training=True, momentum=0.0, eps=BN_EPS)


def make_act(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "relu6":
        return nn.ReLU6(inplace=True)
    if name == "swish":
        return nn.SiLU(inplace=True)  # x * sigmoid(x)
    raise ValueError(f"unknown activation {name!r}")


class SqueezeExcite(nn.Module):
    def __init__(self, chs: int, se_chs: int, act: str):
        super().__init__()
        self.reduce = nn.Conv2d(chs, se_chs, 1, bias=True)
        self.act = make_act(act)
        self.expand = nn.Conv2d(se_chs, chs, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = self.expand(self.act(self.reduce(s)))
        return x * torch.sigmoid(s)


def drop_connect(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Drop whole residual branches per sample (stochastic depth), rescaling the survivors."""
    if not training or rate <= 0.0:
        return x
    keep = 1.0 - rate
    mask = x.new_empty((x.shape[0], 1, 1, 1)).bernoulli_(keep)
    return x * mask / keep


def conv_bn_act(in_chs: int, out_chs: int, kernel: int, stride: int, act: str | None, groups: int = 1) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_chs, out_chs, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_chs),
    ]
    if act:
        layers.append(make_act(act))
    return nn.Sequential(*layers)


class MBInvRes(nn.Module):
    def __init__(self, args: BlockArgs, drop_connect_rate: float = 0.0):
        super().__init__()
        a = args
        self.has_residual = a.stride == 1 and a.in_chs == a.out_chs
        self.drop_connect_rate = drop_connect_rate
        self.expand = conv_bn_act(a.in_chs, a.mid_chs, 1, 1, a.act) if a.mid_chs != a.in_chs else nn.Identity()
        self.depthwise = conv_bn_act(a.mid_chs, a.mid_chs, a.kernel, a.stride, a.act, groups=a.mid_chs)
        self.se = SqueezeExcite(a.mid_chs, a.se_chs, a.act) if a.se_chs > 0 else nn.Identity()
        self.project = conv_bn_act(a.mid_chs, a.out_chs, 1, 1, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.depthwise(self.expand(x))))
        if self.has_residual:
            y = x + drop_connect(y, self.drop_connect_rate, self.training)
        return y
