"""One searchable layer of the supernet (paper Sec. 3.1, Eq. 3): its candidate blocks and, in the
'skip-in' depth space (Fig. 3(a)), a ``skip`` candidate.

A choice is an ``int`` or 0-d tensor (the candidate to run: the *sampled* forward; index N is
``skip``) or a 1-D tensor of weights over the candidates (the *relaxed* forward, Eq. 3:
Σ_i u_i · op_i(x); every candidate runs).  ``fast`` is an argument, not state: the supernet owns
the switch (``Supernet.set_fast``) and passes it to every layer it runs.
"""
from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import nn

from tfnas_core.nn import fast_ops
from tfnas_core.nn.elastic import ElasticMBInvRes

SKIP = "skip"
Choice = Union[int, torch.Tensor]


def is_weights(choice: Choice) -> bool:
    """A 1-D tensor of weights (relaxed); an int or a 0-d tensor is a hard choice (sampled)."""
    return isinstance(choice, torch.Tensor) and choice.dim() > 0


class MixedOp(nn.Module):
    """One searchable layer: its candidate blocks (α order) and, with ``has_skip``, a ``skip``."""

    def __init__(self, candidates: Sequence[ElasticMBInvRes], has_skip: bool):
        super().__init__()
        self.candidates = nn.ModuleList(candidates)
        self.has_skip = has_skip

    @property
    def num_choices(self) -> int:
        return len(self.candidates) + int(self.has_skip)

    def forward(self, x: torch.Tensor, choice: Choice, fast: bool = False) -> torch.Tensor:
        """The layer under ``choice``; ``fast`` runs ``fast_ops`` (the same function, fused)."""
        n = len(self.candidates)
        if is_weights(choice):
            if choice.shape != (self.num_choices,):
                raise ValueError(f"op weights of shape {tuple(choice.shape)} for a layer of {self.num_choices} choices")
            if fast:
                return fast_ops.relaxed_layer(self.candidates, x, choice, self.has_skip)
            out = sum(choice[i] * op(x) for i, op in enumerate(self.candidates))
            return out + choice[n] * x if self.has_skip else out
        i = int(choice)
        if 0 <= i < n:
            return self.candidates[i](x, fast=fast)
        if i == n and self.has_skip:
            return x
        raise ValueError(f"op index {i} outside the layer's {self.num_choices} choices")


__all__ = ["SKIP", "Choice", "MixedOp", "is_weights"]
