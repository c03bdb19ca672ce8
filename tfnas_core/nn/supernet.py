"""The TF-NAS supernet (paper Sec. 3, Table 1; Fig. 1(c)) over one search space and proxy.

Stem → fixed stage-2 block → every searchable layer of stages 3..8 at maximum depth, each a
``MixedOp`` over the space's candidates (α order of ``space.OPS``) built from elastic blocks
(``elastic.ElasticMBInvRes``) → 1x1 conv → pool → fc.  All BNs are ``affine=False`` without
running statistics, as the released code (docs/official_behaviour.md, "Supernet BatchNorms").

Architecture parameters (DARTS style, kept apart from the weights: ``arch_parameters()`` /
``weight_parameters()``):

* ``alphas[l]`` - one per searchable layer, stored as log-probabilities initialised to
  ``log(1/N)`` as the released code (``renormalize_arch`` re-projects after each arch step);
* depth, by ``depth_space``:

  - ``'sink'`` (the paper's sink-connecting space, Sec. 3.3, Eq. 5/6; default): ``betas[s]`` per
    stage, one entry per allowed depth (1..L when the stage's first layer changes shape, which is
    every stage here; 0..L otherwise), initialised to 0.  Stage output = Σ_d softmax(β)_d ·
    (output after d layers).
  - ``'skip-in'`` (Fig. 3(a)): a ``skip`` candidate appended to α (index N) in every layer that
    keeps its shape (stride 1 and cin == cout; so never a stage's first layer here).
  - ``'skip-out'`` (Fig. 3(b)): an independent 2-way parameter ``gates[g]`` = (skip, keep) per
    such layer, initialised to 0; the layer's output is P(skip)·x + P(keep)·op(x).

Forward is a pure function of explicit choices (no state is changed by ``forward``)::

    logits = net(x, ops, depths)

* ``ops`` - one entry per searchable layer: an ``int`` or 0-d tensor (the candidate to run: the
  *sampled* forward of the weight step; index N is ``skip`` in 'skip-in') or a 1-D tensor of
  weights over the layer's candidates (the *relaxed* forward of the arch step, Eq. 3:
  Σ_i u_i · op_i(x); every candidate runs).
* ``depths`` - one entry per depth parameter (``depth_parameters()``): for 'sink' a stage depth
  (``int``, only those layers run) or weights over ``allowed_depths(s)`` (Eq. 5); for 'skip-out'
  ``0``/``1`` (skip/keep) or weights over (skip, keep); for 'skip-in' nothing (``None``/``[]``).
  The released weight step uses the sink mix with softmax(β) (it does not sample depths):
  pass ``[w.detach() for w in net.depth_weights()]`` (the released code freezes the arch
  parameters in the weight step).  The relaxed arch step passes ``net.depth_weights()``.

Widths: ``mids[l][i]`` is the paper-scale ``mid`` of candidate ``i`` in layer ``l`` (the LUT
index); the elastic block runs ``proxy.width(mid)`` channels.  ``set_mid`` / ``set_widths``
change them (never inside ``forward``); they travel in ``state_dict`` as extra state.
"""
from __future__ import annotations

import math
from typing import Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from tfnas_core.nn import fast_ops
from tfnas_core.latency import relaxed as relaxed_latency
from tfnas_core.latency.lut import LUT
from tfnas_core.arch.spec import Layer, Spec, plan, validate
from tfnas_core.nn.elastic import ElasticMBInvRes
from tfnas_core.nn.model import EvalNet
from tfnas_core.nn.ops import MBInvRes, conv_bn_act
from tfnas_core.arch.space import DEPTH_SPACES, SEARCHABLE_STAGES, PAPER_SCALE, LayerGeom, Proxy, all_layer_geometries, get_space

SKIP = "skip"
Choice = Union[int, torch.Tensor]


def _is_weights(choice: Choice) -> bool:
    """A 1-D tensor of weights (relaxed); an int or a 0-d tensor is a hard choice (sampled)."""
    return isinstance(choice, torch.Tensor) and choice.dim() > 0


def _to_search_bn(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` under ``module`` by the supernet's (affine=False, no stats)."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, nn.BatchNorm2d(child.num_features, eps=child.eps, affine=False,
                                                 track_running_stats=False))
        else:
            _to_search_bn(child)
    return module


@torch.no_grad()
def _copy_params(src: nn.Module, dst: nn.Module) -> None:
    """Copy every parameter of ``src`` into the same-named one of ``dst`` (shapes must agree)."""
    for name, p in src.named_parameters():
        q = dst.get_parameter(name)
        if q.shape != p.shape:
            raise ValueError(f"cannot copy {name}: shape {tuple(p.shape)} into {tuple(q.shape)}")
        q.copy_(p)


class MixedOp(nn.Module):
    """One searchable layer: its candidate blocks (α order) and, in 'skip-in', a ``skip``."""

    def __init__(self, candidates: Sequence[ElasticMBInvRes], has_skip: bool):
        super().__init__()
        self.candidates = nn.ModuleList(candidates)
        self.has_skip = has_skip
        self.fast = False  # plain attribute: relaxed forward through fast_ops.relaxed_layer (Supernet.set_fast)

    @property
    def num_choices(self) -> int:
        return len(self.candidates) + int(self.has_skip)

    def forward(self, x: torch.Tensor, choice: Choice) -> torch.Tensor:
        n = len(self.candidates)
        if _is_weights(choice):
            if choice.shape != (self.num_choices,):
                raise ValueError(f"op weights of shape {tuple(choice.shape)} for a layer of {self.num_choices} choices")
            if self.fast:
                return fast_ops.relaxed_layer(self.candidates, x, choice, self.has_skip)
            out = sum(choice[i] * op(x) for i, op in enumerate(self.candidates))
            return out + choice[n] * x if self.has_skip else out
        i = int(choice)
        if 0 <= i < n:
            return self.candidates[i](x)
        if i == n and self.has_skip:
            return x
        raise ValueError(f"op index {i} outside the layer's {self.num_choices} choices")


class Supernet(nn.Module):
    """The supernet of ``space_name`` at ``proxy`` with depth search ``depth_space``."""

    def __init__(self, space_name: str = "tfnas", proxy: Proxy = PAPER_SCALE, depth_space: str = "sink"):
        super().__init__()
        if depth_space not in DEPTH_SPACES:
            raise ValueError(f"unknown depth space {depth_space!r}; known: {', '.join(DEPTH_SPACES)}")
        self.space = space = get_space(space_name)
        self.proxy = proxy
        self.depth_space = depth_space
        self.geoms: tuple[LayerGeom, ...] = tuple(all_layer_geometries(space))
        self.stage_sizes: tuple[int, ...] = tuple(s.depth[1] for s in space.searchable)
        self.stage_starts: tuple[int, ...] = tuple(sum(self.stage_sizes[:i]) for i in range(len(self.stage_sizes)))
        self.op_names: tuple[str, ...] = space.ops

        # Block arguments at maximum width, from the same plan() the static network uses.
        max_plans = {}
        for name in space.ops:
            op = space.op(name)
            stages = tuple(tuple(Layer(name, op.max_width(g.cin)) for g in self.geoms[a:a + n])
                           for a, n in zip(self.stage_starts, self.stage_sizes))
            max_plans[name] = plan(Spec(f"max-{name}", space.name, stages), proxy)
        p = max_plans[space.ops[0]]
        self.stem = _to_search_bn(conv_bn_act(p.in_chans, p.stem_chs, 3, p.stem_stride, p.stem_act))
        self.stage2 = _to_search_bn(MBInvRes(p.blocks[0]))
        self.head = _to_search_bn(conv_bn_act(p.blocks[-1].out_chs, p.head_chs, 1, 1, p.head_act))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(p.head_chs, p.num_classes)

        self.mids: list[list[int]] = []  # paper-scale widths, [layer][candidate]
        layers = []
        for l, g in enumerate(self.geoms):
            cands = []
            for name in space.ops:
                init = space.op(name).init_width(g.cin)
                cands.append(ElasticMBInvRes(max_plans[name].blocks[1 + l], proxy.width(init)))
            self.mids.append([space.op(name).init_width(g.cin) for name in space.ops])
            layers.append(MixedOp(cands, has_skip=depth_space == "skip-in" and g.keeps_shape))
        self.layers = nn.ModuleList(layers)

        # Architecture parameters.
        self.alphas = nn.ParameterList(
            [nn.Parameter(torch.full((m.num_choices,), math.log(1.0 / m.num_choices))) for m in self.layers])
        self.betas = nn.ParameterList()
        self.gates = nn.ParameterList()
        self.gated_layers: tuple[int, ...] = ()
        self.fast = False
        if depth_space == "sink":
            for s in range(len(self.stage_sizes)):
                self.betas.append(nn.Parameter(torch.zeros(len(self.allowed_depths(s)))))
        elif depth_space == "skip-out":
            self.gated_layers = tuple(l for l, g in enumerate(self.geoms) if g.keeps_shape)
            for _ in self.gated_layers:
                self.gates.append(nn.Parameter(torch.zeros(2)))
        self._init_weights()

    def _init_weights(self) -> None:
        """PyTorch's default conv/linear init with zero biases, as the released supernet."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
                nn.init.zeros_(m.bias)

    # -- structure ---------------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return len(self.geoms)

    def stage_layers(self, s: int) -> range:
        """Flat indices of the layers of searchable stage ``s`` (0 = paper stage 3)."""
        return range(self.stage_starts[s], self.stage_starts[s] + self.stage_sizes[s])

    def allowed_depths(self, s: int) -> tuple[int, ...]:
        """Depths stage ``s`` may take: 1..L, or 0..L if its first layer keeps the shape."""
        first = self.geoms[self.stage_starts[s]]
        return tuple(range(0 if first.keeps_shape else 1, self.stage_sizes[s] + 1))

    def choice_names(self, l: int) -> tuple[str, ...]:
        return self.op_names + ((SKIP,) if self.layers[l].has_skip else ())

    # -- parameter groups --------------------------------------------------------------------
    def depth_parameters(self) -> list[nn.Parameter]:
        return list(self.betas) + list(self.gates)

    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.alphas) + self.depth_parameters()

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def depth_weights(self) -> list[torch.Tensor]:
        """softmax of every depth parameter (Eq. 5's v; skip-out: (P(skip), P(keep)))."""
        return [F.softmax(p, dim=-1) for p in self.depth_parameters()]

    @torch.no_grad()
    def renormalize_arch(self, include_depth: bool = True) -> None:
        """Re-project arch parameters to log-probabilities (released code: after every arch step).

        The released code applies ``log_softmax`` to *all* arch parameters, β included; that
        leaves softmax(β) unchanged but not β itself (weight decay and Adam see the new values).
        ``include_depth=False`` renormalises α only.
        """
        params = self.arch_parameters() if include_depth else list(self.alphas)
        for p in params:
            p.copy_(F.log_softmax(p, dim=-1))

    # -- speed -------------------------------------------------------------------------------
    def set_fast(self, fast: bool = True) -> "Supernet":
        """Run the searchable layers through ``fast_ops`` (same function, fused and channels_last) or
        the plain reference path.  A plain attribute per block: no parameter or state changes."""
        for layer in self.layers:
            layer.fast = bool(fast)
            for op in layer.candidates:
                op.fast = bool(fast)
        self.fast = bool(fast)
        return self

    # -- widths ------------------------------------------------------------------------------
    def set_mid(self, layer: int, op: int, mid: int) -> None:
        """Set the paper-scale width of candidate ``op`` of ``layer`` (inside the op's range)."""
        name = self.op_names[op]
        lo, hi = self.space.op(name).width_range(self.geoms[layer].cin)
        if not lo <= mid <= hi:
            raise ValueError(f"layer {layer} {name}: width {mid} outside [{lo}, {hi}]")
        self.mids[layer][op] = int(mid)
        self.layers[layer].candidates[op].active_mid = self.proxy.width(int(mid))

    def set_widths(self, spec: Spec, reorder: bool = True) -> list[tuple[int, int]]:
        """Write a derived spec's widths back (elasticity scaling, Alg. 1 line 6).

        Only the derived ops of the kept layers change; with ``reorder`` an op whose width
        changes first ranks its channels (``reorder_channels``), as the released code re-selects
        the top channels by depthwise L1 norm only for those ops.  Returns the (layer, op)
        pairs that changed.
        """
        changed = []
        for l, i, layer in self._spec_layers(spec):
            if layer.mid != self.mids[l][i]:
                if reorder:
                    self.layers[l].candidates[i].reorder_channels()
                self.set_mid(l, i, layer.mid)
                changed.append((l, i))
        return changed

    def get_extra_state(self) -> dict:
        return {"mids": [list(m) for m in self.mids]}

    def set_extra_state(self, state: dict) -> None:
        mids = state["mids"]
        if len(mids) != self.num_layers or any(len(a) != len(b) for a, b in zip(mids, self.mids)):
            raise ValueError("saved widths do not match this supernet's layers")
        for l, row in enumerate(mids):
            for i, m in enumerate(row):
                self.set_mid(l, i, int(m))

    # -- forward -----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, ops: Sequence[Choice], depths: Sequence[Choice] | None = None) -> torch.Tensor:
        return self.forward_from(self.features_in(x), ops, depths)

    def features_in(self, x: torch.Tensor) -> torch.Tensor:
        """Stem and the fixed stage-2 block: the part of ``forward`` no choice affects."""
        x = self.stage2(self.stem(x))
        return fast_ops.to_cl(x) if self.fast else x

    def forward_from(self, x: torch.Tensor, ops: Sequence[Choice], depths: Sequence[Choice] | None = None) -> torch.Tensor:
        """``forward`` after ``features_in`` (the weight step shares that part between its two paths)."""
        if len(ops) != self.num_layers:
            raise ValueError(f"expected {self.num_layers} op choices, got {len(ops)}")
        depths = list(depths) if depths is not None else []
        if len(depths) != len(self.depth_parameters()):
            raise ValueError(f"expected {len(self.depth_parameters())} depth choices for "
                             f"{self.depth_space!r}, got {len(depths)}")
        if self.depth_space == "sink":
            for s in range(len(self.stage_sizes)):
                x = self._sink_stage(x, s, ops, depths[s])
        else:
            gate_of = {l: g for g, l in enumerate(self.gated_layers)}
            for l, layer in enumerate(self.layers):
                if l in gate_of:
                    x = self._gated(x, layer, ops[l], depths[gate_of[l]])
                else:
                    x = layer(x, ops[l])
        x = self.pool(self.head(x)).flatten(1)
        return self.classifier(x)

    def _sink_stage(self, x: torch.Tensor, s: int, ops: Sequence[Choice], depth: Choice) -> torch.Tensor:
        allowed = self.allowed_depths(s)
        layers = self.stage_layers(s)
        if not _is_weights(depth):
            d = int(depth)
            if d not in allowed:
                raise ValueError(f"stage {SEARCHABLE_STAGES[s]}: depth {d} not in {allowed}")
            for l in layers[:d]:
                x = self.layers[l](x, ops[l])
            return x
        if depth.shape != (len(allowed),):
            raise ValueError(f"stage {SEARCHABLE_STAGES[s]}: depth weights of shape {tuple(depth.shape)}, "
                             f"expected ({len(allowed)},)")
        outs = [x]
        for l in layers:
            outs.append(self.layers[l](outs[-1], ops[l]))
        return sum(depth[j] * outs[d] for j, d in enumerate(allowed))  # Eq. 5

    @staticmethod
    def _gated(x: torch.Tensor, layer: MixedOp, op: Choice, gate: Choice) -> torch.Tensor:
        if _is_weights(gate):
            return gate[0] * x + gate[1] * layer(x, op)
        return layer(x, op) if int(gate) else x

    # -- latency (Eq. 4 / 6) -----------------------------------------------------------------
    def layer_latencies(self, lut: LUT) -> list[list[float]]:
        """LUT latency of every choice of every layer at its current width (skip: 0)."""
        out = []
        for l, g in enumerate(self.geoms):
            lats = relaxed_latency.op_latencies(lut, self.space, g, self.mids[l])
            out.append(lats + [0.0] * int(self.layers[l].has_skip))
        return out

    def _latency_tensors(self, lut: LUT, ref: torch.Tensor) -> list[torch.Tensor]:
        """``layer_latencies`` as tensors like ``ref``, built once per (LUT, widths, device, dtype):
        no host-to-device copy per arch step, which a CUDA graph could not capture."""
        key = (tuple(map(tuple, self.mids)), ref.device, ref.dtype)
        cached = self.__dict__.get("_lat_cache")
        if cached is None or cached[0] is not lut or cached[1] != key:
            tensors = [torch.tensor(t, dtype=ref.dtype, device=ref.device) for t in self.layer_latencies(lut)]
            cached = (lut, key, tensors)
            self.__dict__["_lat_cache"] = cached  # not a module attribute: stays out of state_dict
        return list(cached[2])

    def expected_latency(self, lut: LUT, op_weights: Sequence[torch.Tensor],
                         depth_weights: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        """Relaxed latency of the supernet under ``op_weights`` (per layer) and ``depth_weights``.

        'sink': Eq. 6 (``relaxed_latency.expected_latency`` with the stage depth distribution);
        'skip-in': Eq. 4 with the skip candidate costing 0; 'skip-out': Eq. 4 with each gated
        layer's latency multiplied by P(keep).  ``base`` (fixed parts) is included.
        """
        if len(op_weights) != self.num_layers:
            raise ValueError(f"expected {self.num_layers} op weight vectors, got {len(op_weights)}")
        lats = self._latency_tensors(lut, op_weights[0])
        depth_weights = list(depth_weights) if depth_weights is not None else []
        if len(depth_weights) != len(self.depth_parameters()):
            raise ValueError(f"expected {len(self.depth_parameters())} depth weight vectors, got {len(depth_weights)}")
        if self.depth_space == "sink":
            return relaxed_latency.expected_latency(lut.base, op_weights, lats, depth_weights, self.stage_sizes)
        if self.depth_space == "skip-out":
            for g, l in enumerate(self.gated_layers):
                lats[l] = lats[l] * depth_weights[g][1]
        return relaxed_latency.expected_latency(lut.base, op_weights, lats)

    # -- derivation --------------------------------------------------------------------------
    @torch.no_grad()
    def derived_layers(self) -> list[list[tuple[int, int]]]:
        """Per stage, the kept layers as (flat layer index, op index): argmax α, argmax depth."""
        ops = [int(torch.argmax(a)) for a in self.alphas]
        out = []
        for s in range(len(self.stage_sizes)):
            layers = list(self.stage_layers(s))
            if self.depth_space == "sink":
                d = self.allowed_depths(s)[int(torch.argmax(self.betas[s]))]
                kept = layers[:d]
            elif self.depth_space == "skip-in":
                kept = [l for l in layers if ops[l] < len(self.op_names)]
            else:
                gate = {l: int(torch.argmax(p)) for l, p in zip(self.gated_layers, self.gates)}
                kept = [l for l in layers if gate.get(l, 1) == 1]
            out.append([(l, ops[l]) for l in kept])
        return out

    def derive(self, name: str = "derived") -> Spec:
        """The derived architecture (argmax α per layer, argmax depth) with the current widths.

        Validated with ``arch_spec.validate``; ``meta["supernet_layers"]`` records, per stage, the
        in-stage positions of the supernet layers kept (they differ from 0..d-1 only in the skip
        spaces), which ``active_subnet`` and ``set_widths`` use to find the weights.
        """
        stages, positions = [], []
        for s, kept in enumerate(self.derived_layers()):
            stages.append([{"op": self.op_names[i], "mid": self.mids[l][i]} for l, i in kept])
            positions.append([l - self.stage_starts[s] for l, _ in kept])
        meta = {"depth_space": self.depth_space, "supernet_layers": positions}
        return validate({"name": name, "space": self.space.name, "stages": stages, "meta": meta})

    def _spec_layers(self, spec: Spec) -> list[tuple[int, int, Layer]]:
        """(flat supernet layer, op index, spec layer) for every layer of ``spec``."""
        if spec.space != self.space.name:
            raise ValueError(f"spec of space {spec.space!r} for a supernet over {self.space.name!r}")
        positions = spec.meta.get("supernet_layers") or [list(range(len(st))) for st in spec.stages]
        out = []
        for s, (layers, pos) in enumerate(zip(spec.stages, positions)):
            if len(pos) != len(layers) or any(p >= self.stage_sizes[s] for p in pos):
                raise ValueError(f"stage {SEARCHABLE_STAGES[s]}: supernet_layers {pos} do not fit {len(layers)} layers")
            for p, layer in zip(pos, layers):
                out.append((self.stage_starts[s] + p, self.op_names.index(layer.op), layer))
        return out

    def hard_choices(self, spec: Spec | None = None) -> tuple[list[int], list[int]]:
        """(ops, depths) that make the sampled ``forward`` run exactly ``spec`` (default: derived).

        Layers a spec does not keep get op 0 in 'sink' (never run), ``skip`` in 'skip-in' and gate
        0 in 'skip-out'.  Widths are the supernet's current ones (see ``set_widths``).
        """
        spec = self.derive() if spec is None else spec
        kept = {l: i for l, i, _ in self._spec_layers(spec)}
        if self.depth_space == "sink":
            ops = [kept.get(l, 0) for l in range(self.num_layers)]
            return ops, [len(st) for st in spec.stages]
        if self.depth_space == "skip-in":
            ops = []
            for l in range(self.num_layers):
                if l in kept:
                    ops.append(kept[l])
                elif self.layers[l].has_skip:
                    ops.append(len(self.op_names))
                else:
                    raise ValueError(f"layer {l} cannot be skipped in 'skip-in' (it changes the shape)")
            return ops, []
        for l in range(self.num_layers):
            if l not in kept and l not in self.gated_layers:
                raise ValueError(f"layer {l} cannot be skipped in 'skip-out' (it changes the shape)")
        return [kept.get(l, 0) for l in range(self.num_layers)], [int(l in kept) for l in self.gated_layers]

    @torch.no_grad()
    def active_subnet(self, spec: Spec | None = None, dropout: float = 0.0, drop_connect: float = 0.0) -> EvalNet:
        """A static ``EvalNet`` of ``spec`` (default: ``derive()``) at this proxy, weights copied in.

        Each layer takes the first ``proxy.width(mid)`` channels of its op in the op's current
        channel order (so with the supernet's own widths it is exactly the active slice).  The
        static BNs are ordinary (weight 1, bias 0, fresh running statistics): in train mode the
        static net computes the supernet's sampled path for ``spec``.
        """
        spec = self.derive() if spec is None else spec
        net = EvalNet(plan(spec, self.proxy), dropout=dropout, drop_connect=drop_connect)
        net.to(self.classifier.weight.device)
        _copy_params(self.stem, net.stem)
        _copy_params(self.stage2, net.blocks[0])
        _copy_params(self.head, net.head)
        _copy_params(self.classifier, net.classifier)
        for k, (l, i, layer) in enumerate(self._spec_layers(spec), start=1):
            static = self.layers[l].candidates[i].get_active_subnet(self.proxy.width(layer.mid))
            net.blocks[k].load_state_dict(static.state_dict(), strict=True)  # raises on any mismatch
        return net


__all__ = ["DEPTH_SPACES", "SKIP", "MixedOp", "Supernet"]
