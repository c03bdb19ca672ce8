"""The three depth-level search spaces of paper Sec. 3.3 / Fig. 3 / Tab. 4, one class each.

* ``SinkConnecting`` (``"sink"``, the paper's, Fig. 1(c), Eq. 5/6; the default): a distribution β
  per stage over its depths (1..L when the stage's first layer changes the shape, which is every
  stage here; 0..L otherwise); the stage output is Σ_d softmax(β)_d · (output after d layers).
* ``SkipIn`` (``"skip-in"``, Fig. 3(a), "skip in candidates"): a ``skip`` candidate appended to α
  (index N) in every layer that keeps its shape (stride 1 and cin == cout); no depth parameter.
* ``SkipOut`` (``"skip-out"``, Fig. 3(b), "skip out candidates"): an independent 2-way gate
  (skip, keep) per such layer; the layer's output is P(skip)·x + P(keep)·op(x).

All three answer the same questions (``DepthSpace``), so the supernet holds one of them and never
branches on the name: which layers get a skip candidate, the depth parameters and their initial
values, the forward over the searchable layers, the derived depths, the hard choices that run a
spec, and what the relaxed latency (Eq. 4/6, ``latency.relaxed``) needs to know: per-layer latency
factors (skip-out: P(keep)) and per-stage depth distributions (sink: Eq. 6).  Plain objects over
the layer geometry, no parameters of their own: the supernet keeps β in ``betas`` and the gates in
``gates`` (its state_dict keys), and hands them in.  ``DEPTH_SPACE_CLASSES`` maps the config's
names (``arch.space.DEPTH_SPACES``) to the classes.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, ClassVar, Mapping, Sequence

import torch

from tfnas_core.arch.space import SEARCHABLE_STAGES, LayerGeom
from tfnas_core.nn.mixed_op import Choice, is_weights

RunLayer = Callable[[int, torch.Tensor], torch.Tensor]  # (flat layer index, input) -> the layer's output


class DepthSpace(ABC):
    """How depth is searched over the searchable layers ``geoms`` grouped in ``stage_sizes``."""

    name: ClassVar[str]
    gated_layers: tuple[int, ...] = ()  # layers with a (skip, keep) gate, in ``Supernet.gates`` order

    def __init__(self, geoms: Sequence[LayerGeom], stage_sizes: Sequence[int], num_ops: int):
        if sum(stage_sizes) != len(geoms):
            raise ValueError(f"stages of {tuple(stage_sizes)} layers for {len(geoms)} layer geometries")
        self.geoms = tuple(geoms)
        self.stage_sizes = tuple(stage_sizes)
        self.stage_starts = tuple(sum(self.stage_sizes[:i]) for i in range(len(self.stage_sizes)))
        self.num_ops = num_ops  # candidate operations per layer, skip excluded

    # -- structure ---------------------------------------------------------------------------
    def stage_layers(self, s: int) -> range:
        """Flat indices of the layers of searchable stage ``s`` (0 = paper stage 3)."""
        return range(self.stage_starts[s], self.stage_starts[s] + self.stage_sizes[s])

    def allowed_depths(self, s: int) -> tuple[int, ...]:
        """Depths stage ``s`` may take: 1..L, or 0..L if its first layer keeps the shape."""
        first = self.geoms[self.stage_starts[s]]
        return tuple(range(0 if first.keeps_shape else 1, self.stage_sizes[s] + 1))

    def has_skip(self, l: int) -> bool:
        """Whether layer ``l`` gets a ``skip`` candidate in α (index ``num_ops``)."""
        return False

    def initial_betas(self) -> list[torch.Tensor]:
        """Initial values of the per-stage depth parameters (``Supernet.betas``)."""
        return []

    def initial_gates(self) -> list[torch.Tensor]:
        """Initial values of the per-layer (skip, keep) gates (``Supernet.gates``)."""
        return []

    # -- forward -----------------------------------------------------------------------------
    @abstractmethod
    def forward(self, x: torch.Tensor, run: RunLayer, depths: Sequence[Choice]) -> torch.Tensor:
        """Every searchable stage on ``x``; ``run(l, h)`` runs layer ``l`` under its op choice and
        ``depths`` holds one choice per depth parameter (hard or weights, see ``Supernet``)."""

    # -- derivation --------------------------------------------------------------------------
    @abstractmethod
    def kept_layers(self, ops: Sequence[int], depth_params: Sequence[torch.Tensor]) -> list[list[int]]:
        """Per stage, the flat indices of the layers the derived net keeps, from the argmax ops
        ``ops`` (index ``num_ops`` is skip) and the depth parameters (β or gates)."""

    @abstractmethod
    def hard_choices(self, kept: Mapping[int, int], stage_lengths: Sequence[int]) -> tuple[list[int], list[int]]:
        """(ops, depths) for the sampled forward that runs exactly the layers ``kept`` (flat layer
        -> op index; ``stage_lengths``: the spec's layers per stage)."""

    # -- what the relaxed latency (Eq. 4/6) needs --------------------------------------------
    def latency_factors(self, depth_weights: Sequence[torch.Tensor]) -> dict[int, torch.Tensor]:
        """Per layer, a factor its candidates' latencies are multiplied by (none: {})."""
        return {}

    def stage_distributions(self, depth_weights: Sequence[torch.Tensor]) -> list[torch.Tensor] | None:
        """Per stage, the distribution over its depths for Eq. 6 (None: layers simply add up, Eq. 4)."""
        return None


class SinkConnecting(DepthSpace):
    """The sink-connecting space (Sec. 3.3, Fig. 1(c)): β per stage, Eq. 5 forward, Eq. 6 latency."""

    name = "sink"

    def initial_betas(self) -> list[torch.Tensor]:
        return [torch.zeros(len(self.allowed_depths(s))) for s in range(len(self.stage_sizes))]

    def forward(self, x: torch.Tensor, run: RunLayer, depths: Sequence[Choice]) -> torch.Tensor:
        for s in range(len(self.stage_sizes)):
            x = self._stage(x, s, run, depths[s])
        return x

    def _stage(self, x: torch.Tensor, s: int, run: RunLayer, depth: Choice) -> torch.Tensor:
        allowed = self.allowed_depths(s)
        layers = self.stage_layers(s)
        if not is_weights(depth):
            d = int(depth)
            if d not in allowed:
                raise ValueError(f"stage {SEARCHABLE_STAGES[s]}: depth {d} not in {allowed}")
            for l in layers[:d]:
                x = run(l, x)
            return x
        if depth.shape != (len(allowed),):
            raise ValueError(f"stage {SEARCHABLE_STAGES[s]}: depth weights of shape {tuple(depth.shape)}, "
                             f"expected ({len(allowed)},)")
        outs = [x]
        for l in layers:
            outs.append(run(l, outs[-1]))
        return sum(depth[j] * outs[d] for j, d in enumerate(allowed))  # Eq. 5

    def kept_layers(self, ops: Sequence[int], depth_params: Sequence[torch.Tensor]) -> list[list[int]]:
        return [list(self.stage_layers(s))[:self.allowed_depths(s)[int(torch.argmax(b))]]
                for s, b in enumerate(depth_params)]

    def hard_choices(self, kept: Mapping[int, int], stage_lengths: Sequence[int]) -> tuple[list[int], list[int]]:
        # Layers past a stage's depth never run: op 0 stands in for them.
        return [kept.get(l, 0) for l in range(len(self.geoms))], list(stage_lengths)

    def stage_distributions(self, depth_weights: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return list(depth_weights)  # Eq. 6: Σ_d v_d · Σ_{l<=d} LAT(layer l)


class SkipIn(DepthSpace):
    """Skip in the candidates (Fig. 3(a)): α gains a ``skip`` (latency 0) where the shape is kept."""

    name = "skip-in"

    def has_skip(self, l: int) -> bool:
        return self.geoms[l].keeps_shape

    def forward(self, x: torch.Tensor, run: RunLayer, depths: Sequence[Choice]) -> torch.Tensor:
        for l in range(len(self.geoms)):
            x = run(l, x)
        return x

    def kept_layers(self, ops: Sequence[int], depth_params: Sequence[torch.Tensor]) -> list[list[int]]:
        return [[l for l in self.stage_layers(s) if ops[l] < self.num_ops] for s in range(len(self.stage_sizes))]

    def hard_choices(self, kept: Mapping[int, int], stage_lengths: Sequence[int]) -> tuple[list[int], list[int]]:
        ops = []
        for l in range(len(self.geoms)):
            if l in kept:
                ops.append(kept[l])
            elif self.has_skip(l):
                ops.append(self.num_ops)
            else:
                raise ValueError(f"layer {l} cannot be skipped in 'skip-in' (it changes the shape)")
        return ops, []


class SkipOut(DepthSpace):
    """Skip out of the candidates (Fig. 3(b)): a (skip, keep) gate per shape-keeping layer, its
    latency weighted by P(keep)."""

    name = "skip-out"

    def __init__(self, geoms: Sequence[LayerGeom], stage_sizes: Sequence[int], num_ops: int):
        super().__init__(geoms, stage_sizes, num_ops)
        self.gated_layers = tuple(l for l, g in enumerate(self.geoms) if g.keeps_shape)

    def initial_gates(self) -> list[torch.Tensor]:
        return [torch.zeros(2) for _ in self.gated_layers]

    def forward(self, x: torch.Tensor, run: RunLayer, depths: Sequence[Choice]) -> torch.Tensor:
        gate_of = {l: g for g, l in enumerate(self.gated_layers)}
        for l in range(len(self.geoms)):
            if l not in gate_of:
                x = run(l, x)
                continue
            gate = depths[gate_of[l]]
            if is_weights(gate):
                x = gate[0] * x + gate[1] * run(l, x)
            elif int(gate):
                x = run(l, x)
        return x

    def kept_layers(self, ops: Sequence[int], depth_params: Sequence[torch.Tensor]) -> list[list[int]]:
        gate = {l: int(torch.argmax(p)) for l, p in zip(self.gated_layers, depth_params)}
        return [[l for l in self.stage_layers(s) if gate.get(l, 1) == 1] for s in range(len(self.stage_sizes))]

    def hard_choices(self, kept: Mapping[int, int], stage_lengths: Sequence[int]) -> tuple[list[int], list[int]]:
        for l in range(len(self.geoms)):
            if l not in kept and l not in self.gated_layers:
                raise ValueError(f"layer {l} cannot be skipped in 'skip-out' (it changes the shape)")
        return [kept.get(l, 0) for l in range(len(self.geoms))], [int(l in kept) for l in self.gated_layers]

    def latency_factors(self, depth_weights: Sequence[torch.Tensor]) -> dict[int, torch.Tensor]:
        return {l: depth_weights[g][1] for g, l in enumerate(self.gated_layers)}  # P(keep)


DEPTH_SPACE_CLASSES: dict[str, type[DepthSpace]] = {c.name: c for c in (SinkConnecting, SkipIn, SkipOut)}


def make_depth_space(name: str, geoms: Sequence[LayerGeom], stage_sizes: Sequence[int], num_ops: int) -> DepthSpace:
    """The depth space called ``name`` in a config (``"sink"``, ``"skip-in"``, ``"skip-out"``)."""
    if name not in DEPTH_SPACE_CLASSES:
        raise ValueError(f"unknown depth space {name!r}; known: {', '.join(DEPTH_SPACE_CLASSES)}")
    return DEPTH_SPACE_CLASSES[name](geoms, stage_sizes, num_ops)


__all__ = ["DEPTH_SPACE_CLASSES", "DepthSpace", "SinkConnecting", "SkipIn", "SkipOut", "make_depth_space"]
