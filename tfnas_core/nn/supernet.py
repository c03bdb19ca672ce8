"""The TF-NAS supernet (paper Sec. 3, Table 1; Fig. 1(c)) over one search space and proxy.

Stem → fixed stage-2 block → every searchable layer of stages 3..8 at maximum depth, each a
``MixedOp`` over the space's candidates (α order of ``space.OPS``) built from elastic blocks
(``elastic.ElasticMBInvRes``) → 1x1 conv → pool → fc.  All BNs are ``affine=False`` without
running statistics, as the released code (docs/official_behaviour.md, "Supernet BatchNorms").

Architecture parameters (DARTS style, kept apart from the weights: ``arch_parameters()`` /
``weight_parameters()``):

* ``alphas[l]`` - one per searchable layer, stored as log-probabilities initialised to
  ``log(1/N)`` as the released code (``renormalize_arch`` re-projects after each arch step);
* depth, by ``depth_space`` (one ``depth_spaces.DepthSpace`` object, ``self.depth_search``,
  answers every depth question; the supernet never branches on the name):

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

Speed: ``set_fast`` is the one switch for the fused ``fast_ops`` path (the same function up to
float rounding); ``forward`` passes it to every layer it runs.  The supernet knows no latency
table: the relaxed latency of Eq. 4/6 is ``latency.relaxed.supernet_latency(net, lut, ...)``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tfnas_core.nn import fast_ops
from tfnas_core.arch.spec import Layer, Spec, layout, validate
from tfnas_core.nn.depth_spaces import DepthSpace, make_depth_space
from tfnas_core.nn.elastic import ElasticMBInvRes
from tfnas_core.nn.mixed_op import SKIP, Choice, MixedOp
from tfnas_core.nn.model import EvalNet
from tfnas_core.nn.ops import MBInvRes, conv_bn_act
from tfnas_core.arch.space import DEPTH_SPACES, SEARCHABLE_STAGES, PAPER_SCALE, LayerGeom, Proxy, all_layer_geometries, get_space


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


class Supernet(nn.Module):
    """The supernet of ``space_name`` at ``proxy`` with depth search ``depth_space``."""

    def __init__(self, space_name: str = "tfnas", proxy: Proxy = PAPER_SCALE, depth_space: str = "sink"):
        super().__init__()
        self.space = space = get_space(space_name)
        self.proxy = proxy
        self.depth_space = depth_space
        self.geoms: tuple[LayerGeom, ...] = tuple(all_layer_geometries(space))
        self.stage_sizes: tuple[int, ...] = tuple(s.depth[1] for s in space.searchable)
        self.op_names: tuple[str, ...] = space.ops
        self.depth_search: DepthSpace = make_depth_space(depth_space, self.geoms, self.stage_sizes, len(space.ops))
        self.stage_starts: tuple[int, ...] = self.depth_search.stage_starts
        self.fast = False  # the fast_ops switch (set_fast), passed to every layer by forward

        # Block arguments at maximum width, from the same layout() the static network uses.
        max_layouts = {}
        for name in space.ops:
            op = space.op(name)
            stages = tuple(tuple(Layer(name, op.max_width(g.cin)) for g in self.geoms[a:a + n])
                           for a, n in zip(self.stage_starts, self.stage_sizes))
            max_layouts[name] = layout(Spec(f"max-{name}", space.name, stages), proxy)
        p = max_layouts[space.ops[0]]
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
                cands.append(ElasticMBInvRes(max_layouts[name].blocks[1 + l], proxy.width(init)))
            self.mids.append([space.op(name).init_width(g.cin) for name in space.ops])
            layers.append(MixedOp(cands, has_skip=self.depth_search.has_skip(l)))
        self.layers = nn.ModuleList(layers)

        # Architecture parameters.
        self.alphas = nn.ParameterList(
            [nn.Parameter(torch.full((m.num_choices,), math.log(1.0 / m.num_choices))) for m in self.layers])
        self.betas = nn.ParameterList([nn.Parameter(b) for b in self.depth_search.initial_betas()])
        self.gates = nn.ParameterList([nn.Parameter(g) for g in self.depth_search.initial_gates()])
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

    @property
    def gated_layers(self) -> tuple[int, ...]:
        """The layers with a (skip, keep) gate, in ``gates`` order ('skip-out'; otherwise none)."""
        return self.depth_search.gated_layers

    def stage_layers(self, s: int) -> range:
        """Flat indices of the layers of searchable stage ``s`` (0 = paper stage 3)."""
        return self.depth_search.stage_layers(s)

    def allowed_depths(self, s: int) -> tuple[int, ...]:
        """Depths stage ``s`` may take: 1..L, or 0..L if its first layer keeps the shape."""
        return self.depth_search.allowed_depths(s)

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
        the plain reference path.  One plain attribute of the supernet, handed to each layer by
        ``forward``: no parameter, state or layer changes."""
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
        fast = self.fast
        x = self.depth_search.forward(x, lambda l, h: self.layers[l](h, ops[l], fast), depths)
        x = self.pool(self.head(x)).flatten(1)
        return self.classifier(x)

    # -- derivation --------------------------------------------------------------------------
    @torch.no_grad()
    def derived_layers(self) -> list[list[tuple[int, int]]]:
        """Per stage, the kept layers as (flat layer index, op index): argmax α, argmax depth."""
        ops = [int(torch.argmax(a)) for a in self.alphas]
        return [[(l, ops[l]) for l in kept] for kept in self.depth_search.kept_layers(ops, self.depth_parameters())]

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
        return self.depth_search.hard_choices(kept, [len(st) for st in spec.stages])

    @torch.no_grad()
    def active_subnet(self, spec: Spec | None = None, dropout: float = 0.0, drop_connect: float = 0.0) -> EvalNet:
        """A static ``EvalNet`` of ``spec`` (default: ``derive()``) at this proxy, weights copied in.

        Each layer takes the first ``proxy.width(mid)`` channels of its op in the op's current
        channel order (so with the supernet's own widths it is exactly the active slice).  The
        static BNs are ordinary (weight 1, bias 0, fresh running statistics): in train mode the
        static net computes the supernet's sampled path for ``spec``.
        """
        spec = self.derive() if spec is None else spec
        net = EvalNet(layout(spec, self.proxy), dropout=dropout, drop_connect=drop_connect)
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
