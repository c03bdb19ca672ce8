"""The stand-alone evaluation network of a spec (paper scale or any training proxy)."""
from __future__ import annotations

import torch
from torch import nn

from tfnas_core.arch.spec import Spec, layout
from tfnas_core.nn.ops import MBInvRes, conv_bn_act, make_act
from tfnas_core.arch.space import PAPER_SCALE, NetLayout, Proxy


class EvalNet(nn.Module):
    """Stem → stage-2 block → derived layers of stages 3..8 → 1x1 conv → pool → dropout → fc.

    ``drop_connect`` is the rate of the last block; earlier blocks get it scaled linearly with
    their index (Appendix B: "drop-connect 0.2 scaled with block index").
    """

    def __init__(self, net_layout: NetLayout, dropout: float = 0.0, drop_connect: float = 0.0):
        super().__init__()
        p = net_layout
        self.layout = p
        self.stem = conv_bn_act(p.in_chans, p.stem_chs, 3, p.stem_stride, p.stem_act)
        n = len(p.blocks)
        self.blocks = nn.Sequential(*[MBInvRes(b, drop_connect * i / n) for i, b in enumerate(p.blocks)])
        self.head = conv_bn_act(p.blocks[-1].out_chs, p.head_chs, 1, 1, p.head_act)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(p.head_chs, p.num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.forward_features(x)).flatten(1)
        return self.classifier(self.dropout(x))


def build(spec: Spec, proxy: Proxy = PAPER_SCALE, dropout: float = 0.0, drop_connect: float = 0.0) -> EvalNet:
    return EvalNet(layout(spec, proxy), dropout=dropout, drop_connect=drop_connect)


__all__ = ["EvalNet", "build", "make_act"]
