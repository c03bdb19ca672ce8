"""FLOPs and parameters, counted the paper's way.

Two conventions, both at 224x224 input and 1000 classes, with no expansion conv where
``mid == cin``:

* ``"macs"`` - multiply-adds of the convolutions (SE's 1x1 convs included) and the classifier;
  BN, activations, pooling and the residual add not counted (``../shared/reference/README.md``).
* ``"official"`` (default) - what the released code's counter adds on top: the biases of
  convolutions and of the classifier (one add per output element) and the global-pool module
  (one add per input element; SE's functional pool is not counted).  This is how the paper's
  numbers were produced; it adds about 0.07 M to ``"macs"``.

``count_flops`` counts analytically from the layout (``spec.layout``: exact and instant, no module built);
``measure_flops`` counts a built module with ``torch.utils.flop_counter`` (2 FLOPs per
multiply-add, biases not counted) as an independent cross-check of ``"macs"``.
"""
from __future__ import annotations

import torch
from torch import nn

from tfnas_core.arch.spec import Spec, layout
from tfnas_core.arch.space import PAPER_SCALE, NetLayout, Proxy, conv_out


CONVENTIONS = ("official", "macs")


def layout_flops(p: NetLayout, convention: str = "official") -> int:
    """FLOPs of a network layout under ``convention`` (see the module docstring)."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown FLOPs convention {convention!r}; known: {', '.join(CONVENTIONS)}")
    total = layout_macs(p)
    if convention == "official":
        hw = p.blocks_hw_out[-1]
        total += sum(b.se_chs + b.mid_chs for b in p.blocks if b.se_chs)  # SE conv biases
        total += hw * hw * p.head_chs  # global average pool over the head's output
        total += p.num_classes  # classifier bias
    return total


def layout_macs(p: NetLayout) -> int:
    """Multiply-adds of a network layout."""
    hw = conv_out(p.resolution, p.stem_stride)
    total = hw * hw * p.in_chans * p.stem_chs * 9
    for b in p.blocks:
        out_hw = conv_out(b.in_hw, b.stride)
        if b.mid_chs != b.in_chs:
            total += b.in_hw * b.in_hw * b.in_chs * b.mid_chs
        total += out_hw * out_hw * b.mid_chs * b.kernel * b.kernel
        if b.se_chs:
            total += 2 * b.mid_chs * b.se_chs
        total += out_hw * out_hw * b.mid_chs * b.out_chs
        hw = out_hw
    total += hw * hw * p.blocks[-1].out_chs * p.head_chs
    total += p.head_chs * p.num_classes
    return total


def count_flops(spec: Spec, proxy: Proxy = PAPER_SCALE, convention: str = "official") -> float:
    """FLOPs in millions under ``convention`` (paper scale unless a proxy is given)."""
    return layout_flops(layout(spec, proxy), convention) / 1e6


def count_params(spec: Spec, proxy: Proxy = PAPER_SCALE) -> float:
    """Parameters in millions of the evaluation network (BN affine parameters included)."""
    from tfnas_core.nn.model import build

    return sum(p.numel() for p in build(spec, proxy).parameters()) / 1e6


def measure_flops(model: nn.Module, resolution: int, in_chans: int = 3) -> float:
    """Multiply-adds in millions of ``model`` on one image, by ``torch.utils.flop_counter``."""
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    x = torch.zeros(1, in_chans, resolution, resolution)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / 2 / 1e6
