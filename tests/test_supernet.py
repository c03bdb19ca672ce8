"""Property tests of the elastic block and the supernet (small proxy, CPU, one thread)."""
from __future__ import annotations

import random

import pytest
import torch

from tfnas_core.arch import spec as arch_spec
from tfnas_core.latency import lut as latency
from tfnas_core.latency import relaxed as relaxed_latency
from tfnas_core.nn.elastic import ElasticMBInvRes
from tfnas_core.arch.space import BlockArgs, Proxy, get_space
from tfnas_core.nn.supernet import DEPTH_SPACES, Supernet

PROXY = Proxy(resolution=32, width_mult=0.25, num_classes=10, stem_stride=1)


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return {ds: Supernet("tfnas", PROXY, ds) for ds in DEPTH_SPACES}


def fresh(depth_space: str = "sink", seed: int = 0, space: str = "tfnas") -> Supernet:
    torch.manual_seed(seed)
    return Supernet(space, PROXY, depth_space)


def synthetic_lut(space_name: str = "tfnas") -> latency.LUT:
    """A LUT over every key of the space, strictly increasing in ``mid``, distinct per key."""
    entries = {}
    for n, (key, info) in enumerate(sorted(latency.space_keys(get_space(space_name)).items())):
        entries[key] = {w: 0.05 + 0.001 * (n + 1) + 0.0003 * w * info.kernel for w in range(info.lo, info.hi + 1)}
    return latency.LUT(base=1.5, entries=entries)


def randomize(net: Supernet, seed: int, skip_some: bool = True) -> None:
    """Random α / depth parameters and random in-range widths (with channel reordering)."""
    g = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    with torch.no_grad():
        for p in net.arch_parameters():
            p.copy_(torch.randn(p.shape, generator=g))
        if net.depth_space == "skip-in" and skip_some:
            for l in (1, 4, 7):  # non-first layers of stages 3-5: make skip win
                net.alphas[l][-1] = 10.0
        if net.depth_space == "skip-out" and skip_some:
            for gi in (0, 3):
                net.gates[gi].copy_(torch.tensor([5.0, -5.0]))
    for l, geom in enumerate(net.geoms):
        for i, name in enumerate(net.op_names):
            lo, hi = net.space.op(name).width_range(geom.cin)
            if rng.random() < 0.5:
                net.layers[l].candidates[i].reorder_channels()
            net.set_mid(l, i, rng.randint(lo, hi))


# ----------------------------------------------------------------------------- elastic block


BLOCKS = [
    BlockArgs(8, 32, 8, 5, 1, 4, "swish", 8),  # SE + residual
    BlockArgs(8, 24, 16, 3, 2, 0, "relu", 8),  # no SE, stride 2
    BlockArgs(16, 48, 16, 3, 1, 8, "relu6", 4),
]


@pytest.mark.parametrize("args", BLOCKS)
def test_reorder_at_full_width_keeps_output(args):
    torch.manual_seed(1)
    op = ElasticMBInvRes(args, init_mid=args.mid_chs * 3 // 4)
    op.active_mid = op.max_mid
    x = torch.randn(3, args.in_chs, args.in_hw, args.in_hw)
    before = op(x)
    params = [p.clone() for p in op.parameters()]
    perm = op.reorder_channels()
    assert not torch.equal(perm, torch.arange(op.max_mid)), "random init should not already be sorted"
    assert any(not torch.equal(a, b) for a, b in zip(params, op.parameters())), "weights were not permuted"
    torch.testing.assert_close(op(x), before, atol=1e-5, rtol=1e-5)
    imp = op.dw_conv.weight.abs().flatten(1).sum(1)
    assert torch.all(imp[:-1] >= imp[1:]), "depthwise L1 norms are not descending after reorder"


def test_reorder_selects_top_channels_at_partial_width():
    torch.manual_seed(2)
    op = ElasticMBInvRes(BLOCKS[0], init_mid=20)
    imp = op.dw_conv.weight.detach().abs().flatten(1).sum(1)
    top = set(torch.topk(imp, 20).indices.tolist())
    dw_before = op.dw_conv.weight.detach().clone()
    op.reorder_channels()
    active = op.dw_conv.weight.detach()[:20]
    kept = {int(j) for j in range(op.max_mid) if any(torch.equal(dw_before[j], a) for a in active)}
    assert kept == top


@pytest.mark.parametrize("args", BLOCKS)
@pytest.mark.parametrize("frac", [1.0, 0.6])
def test_elastic_block_matches_static_export(args, frac):
    torch.manual_seed(3)
    op = ElasticMBInvRes(args, init_mid=args.mid_chs)
    op.active_mid = max(1, int(args.mid_chs * frac))
    static = op.get_active_subnet().train()
    x = torch.randn(4, args.in_chs, args.in_hw, args.in_hw)
    torch.testing.assert_close(static(x), op(x), atol=1e-5, rtol=1e-5)


def test_elastic_block_without_expand_when_mid_equals_cin():
    """Like ops.MBInvRes, no expand conv when mid == cin: the static export must agree."""
    torch.manual_seed(4)
    args = BlockArgs(8, 32, 8, 3, 1, 0, "relu", 8)
    op = ElasticMBInvRes(args, init_mid=8)
    static = op.get_active_subnet().train()
    assert isinstance(static.expand, torch.nn.Identity)
    x = torch.randn(2, 8, 8, 8)
    torch.testing.assert_close(static(x), op(x), atol=1e-5, rtol=1e-5)


def test_width_out_of_range_raises():
    op = ElasticMBInvRes(BLOCKS[1], init_mid=12)
    op.active_mid = 25
    with pytest.raises(ValueError, match="active_mid 25"):
        op(torch.randn(1, 8, 8, 8))


# ----------------------------------------------------------------------------- supernet structure


@pytest.mark.parametrize("depth_space", DEPTH_SPACES)
def test_arch_and_weight_parameters_are_apart(nets, depth_space):
    net = nets[depth_space]
    arch_ids = {id(p) for p in net.arch_parameters()}
    weight_ids = {id(p) for p in net.weight_parameters()}
    assert not arch_ids & weight_ids
    assert arch_ids | weight_ids == {id(p) for p in net.parameters()}
    assert len(net.alphas) == net.num_layers == net.space.max_layers
    for l, a in enumerate(net.alphas):
        n = len(net.choice_names(l))
        torch.testing.assert_close(a.detach(), torch.full((n,), -torch.log(torch.tensor(float(n)))))
        assert n == 8 + (depth_space == "skip-in" and net.geoms[l].keeps_shape)
    if depth_space == "sink":
        assert [len(b) for b in net.betas] == [s.depth[1] for s in net.space.searchable]  # depths 1..L
        assert all(torch.count_nonzero(b) == 0 for b in net.betas)
        assert not net.gates
    elif depth_space == "skip-out":
        assert len(net.gates) == sum(g.keeps_shape for g in net.geoms) == net.num_layers - 6
        assert not net.betas
    else:
        assert not net.betas and not net.gates
        assert not any(net.layers[net.stage_starts[s]].has_skip for s in range(6)), "first layers cannot be skipped"


def test_initial_widths_and_allocation(nets):
    net = nets["sink"]
    for l, g in enumerate(net.geoms):
        for i, name in enumerate(net.op_names):
            op = net.space.op(name)
            cand = net.layers[l].candidates[i]
            assert net.mids[l][i] == op.init_width(g.cin)
            assert cand.active_mid == PROXY.width(op.init_width(g.cin))
            assert cand.max_mid == PROXY.width(op.max_width(g.cin))
            assert cand.se_chs == PROXY.width(op.se_width(g.cin))


def test_paper_scale_allocation_matches_the_facts():
    """At paper scale the weight space is 4·cin (e3) / 8·cin (e6), SE cin / 2·cin (first stage only)."""
    net = Supernet("tfnas", depth_space="sink")
    for l in net.stage_layers(0):
        cin = net.geoms[l].cin
        for i, name in enumerate(net.op_names):
            cand = net.layers[l].candidates[i]
            e6 = "_e6" in name
            assert cand.max_mid == (8 if e6 else 4) * cin
            assert cand.active_mid == (6 if e6 else 3) * cin
            assert cand.se_chs == ((2 * cin if e6 else cin) if name.endswith("_se") else 0)


# ----------------------------------------------------------------------------- forward properties


def test_reorder_all_ops_at_full_width_keeps_supernet_output():
    net = fresh("sink", seed=5)
    for l, g in enumerate(net.geoms):
        for i, name in enumerate(net.op_names):
            net.set_mid(l, i, net.space.op(name).max_width(g.cin))
    x = torch.randn(4, 3, 32, 32)
    gen = torch.Generator().manual_seed(0)
    ops_w = [torch.softmax(torch.randn(a.shape, generator=gen), -1) for a in net.alphas]
    depth_w = [torch.softmax(torch.randn(b.shape, generator=gen), -1) for b in net.betas]
    path = [int(torch.randint(8, (1,), generator=gen)) for _ in net.alphas]
    with torch.no_grad():
        relaxed, sampled = net(x, ops_w, depth_w), net(x, path, [len(b) for b in net.betas])
        for layer in net.layers:
            for cand in layer.candidates:
                cand.reorder_channels()
        torch.testing.assert_close(net(x, ops_w, depth_w), relaxed, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(net(x, path, [len(b) for b in net.betas]), sampled, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("depth_space", DEPTH_SPACES)
@pytest.mark.parametrize("seed", [0, 1])
def test_active_subnet_matches_sampled_path(depth_space, seed):
    net = fresh(depth_space, seed=10 + seed)
    randomize(net, seed)
    spec = net.derive("d")
    arch_spec.validate(spec.to_dict())
    if depth_space != "sink":
        assert sum(spec.depths) < net.num_layers, "the randomised arch should skip some layers"
    ops, depths = net.hard_choices(spec)
    static = net.active_subnet(spec).train()
    assert [b.mid_chs for b in static.layout.blocks[1:]] == [PROXY.width(m) for m in spec.mids]
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(static(x), net(x, ops, depths), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("space", ["mbv2", "tfnas-wose"])
def test_active_subnet_matches_in_other_spaces(space):
    net = fresh("sink", seed=20, space=space)
    randomize(net, 20)
    spec = net.derive()
    assert spec.space == space and len(net.alphas[0]) == 4
    ops, depths = net.hard_choices(spec)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(net.active_subnet(spec).train()(x), net(x, ops, depths), atol=1e-5, rtol=1e-4)


def test_forward_does_not_change_state():
    net = fresh("sink", seed=6)
    randomize(net, 6)
    before = {k: v.clone() for k, v in net.state_dict().items() if isinstance(v, torch.Tensor)}
    mids = [list(m) for m in net.mids]
    x = torch.randn(2, 3, 32, 32)
    net(x, [0] * net.num_layers, [1] * 6).sum().backward()
    net(x, [torch.softmax(a, -1) for a in net.alphas], net.depth_weights()).sum().backward()
    assert net.mids == mids
    after = {k: v for k, v in net.state_dict().items() if isinstance(v, torch.Tensor)}
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_sampled_sink_depth_runs_only_kept_layers():
    net = fresh("sink", seed=7)
    x = torch.randn(2, 3, 32, 32)
    ops = [0] * net.num_layers
    net(x, ops, [1, 1, 1, 1, 1, 1]).sum().backward()
    for s in range(6):
        for l in net.stage_layers(s):
            grad = net.layers[l].candidates[0].dw_conv.weight.grad
            assert (grad is not None) == (l == net.stage_starts[s])
    with pytest.raises(ValueError, match="depth 5"):
        net(x, ops, [1, 1, 5, 1, 1, 1])


def test_relaxed_forward_gives_every_arch_parameter_a_gradient():
    net = fresh("sink", seed=8)
    x = torch.randn(2, 3, 32, 32)
    out = net(x, [torch.softmax(a, -1) for a in net.alphas], net.depth_weights())
    out.pow(2).sum().backward()
    for p in net.arch_parameters():
        if p.numel() == 1:  # stage 8 allows depth 1 only: softmax of one entry is constant
            continue
        assert p.grad is not None and torch.count_nonzero(p.grad) > 0


# ----------------------------------------------------------------------------- widths


def test_width_changes_keep_parameter_identity_and_dropped_weights():
    net = fresh("sink", seed=9)
    params = list(net.parameters())
    ids = [id(p) for p in params]
    shapes = [p.shape for p in params]
    opt = torch.optim.SGD(net.weight_parameters(), lr=0.5)
    x = torch.randn(2, 3, 32, 32)
    l, i = net.stage_starts[1], 3  # stage 4 first layer, k5_e6
    cand = net.layers[l].candidates[i]
    lo, _ = net.space.op("k5_e6").width_range(net.geoms[l].cin)
    net.set_mid(l, i, lo)
    m = cand.active_mid
    dropped = cand.dw_conv.weight.detach()[m:].clone()
    kept = cand.dw_conv.weight.detach()[:m].clone()
    ops = [i] * net.num_layers
    opt.zero_grad()
    net(x, ops, [1] * 6).sum().backward()
    opt.step()
    assert [id(p) for p in net.parameters()] == ids
    assert [p.shape for p in net.parameters()] == shapes
    assert all(any(q is p for q in opt.param_groups[0]["params"]) for p in net.weight_parameters())
    assert torch.equal(cand.dw_conv.weight.detach()[m:], dropped), "dropped channels must keep their weights"
    assert not torch.equal(cand.dw_conv.weight.detach()[:m], kept), "active channels were not trained"


def test_set_mid_validates_range(nets):
    net = nets["sink"]
    lo, hi = net.space.op("k3_e3").width_range(net.geoms[0].cin)
    with pytest.raises(ValueError, match="outside"):
        net.set_mid(0, 0, hi + 1)
    with pytest.raises(ValueError, match="outside"):
        net.set_mid(0, 0, lo - 1)


def test_set_widths_roundtrip_and_reorder():
    net = fresh("sink", seed=11)
    randomize(net, 11)
    spec = net.derive()
    new = []
    for geom, layer in spec.layers():
        lo, hi = net.space.op(layer.op).width_range(geom.cin)
        new.append(lo if layer.mid != lo else hi)
    target = spec.with_mids(new)
    (l0, i0), *_ = [(l, i) for kept in net.derived_layers() for l, i in kept]
    cand = net.layers[l0].candidates[i0]
    with torch.no_grad():
        cand.dw_conv.weight.mul_(torch.linspace(0.1, 2.0, cand.max_mid).view(-1, 1, 1, 1))  # unsorted importance
    changed = net.set_widths(target)
    assert len(changed) == len(new)
    assert net.derive().mids == tuple(new)
    imp = cand.dw_conv.weight.abs().flatten(1).sum(1)
    assert torch.all(imp[:-1] >= imp[1:]), "changed op was not reordered"
    assert net.set_widths(target) == []


def test_widths_travel_in_state_dict():
    a, b = fresh("skip-out", seed=12), fresh("skip-out", seed=13)
    randomize(a, 12)
    b.load_state_dict(a.state_dict())
    assert b.mids == a.mids
    assert all(cb.active_mid == ca.active_mid for la, lb in zip(a.layers, b.layers)
               for ca, cb in zip(la.candidates, lb.candidates))
    assert b.derive().to_dict() == a.derive().to_dict()


# ----------------------------------------------------------------------------- derivation


def test_sink_derive_takes_argmax_alpha_and_beta():
    net = fresh("sink", seed=14)
    with torch.no_grad():
        for l, a in enumerate(net.alphas):
            a.zero_()
            a[l % 8] = 1.0
        wanted = [2, 1, 4, 3, 2, 1]
        for b, d in zip(net.betas, wanted):
            b.zero_()
            b[d - 1] = 1.0
    spec = net.derive()
    assert spec.depths == tuple(wanted)
    for s, layers in enumerate(spec.stages):
        for j, layer in enumerate(layers):
            assert layer.op == net.op_names[(net.stage_starts[s] + j) % 8]
    arch_spec.validate(spec.to_dict())


def test_skip_derivation_rules():
    net = fresh("skip-in", seed=15)
    with torch.no_grad():
        for a in net.alphas:
            a.zero_()
            a[-1] = 1.0  # skip wins wherever it exists; elsewhere k5_e6_se
    spec = net.derive()
    assert spec.depths == (1, 1, 1, 1, 1, 1)  # a stage's first layer cannot be skipped
    assert all(layer.op == "k5_e6_se" for st in spec.stages for layer in st)
    net = fresh("skip-out", seed=15)
    with torch.no_grad():
        for g in net.gates:
            g.copy_(torch.tensor([0.0, 1.0]))
        net.gates[0].copy_(torch.tensor([1.0, 0.0]))  # skip stage 3's second layer
    spec = net.derive()
    assert spec.depths == (1, 3, 4, 4, 4, 1)


# ----------------------------------------------------------------------------- expected latency


@pytest.mark.parametrize("depth_space", DEPTH_SPACES)
def test_one_hot_expected_latency_equals_lut_prediction(depth_space):
    lut = synthetic_lut()
    net = fresh(depth_space, seed=16)
    randomize(net, 16)
    spec = net.derive()
    ops, depths = net.hard_choices(spec)
    one_hot = [torch.nn.functional.one_hot(torch.tensor(o), len(a)).float() for o, a in zip(ops, net.alphas)]
    if depth_space == "sink":
        dw = [torch.nn.functional.one_hot(torch.tensor(net.allowed_depths(s).index(d)), len(b)).float()
              for s, (d, b) in enumerate(zip(depths, net.betas))]
    elif depth_space == "skip-out":
        dw = [torch.nn.functional.one_hot(torch.tensor(d), 2).float() for d in depths]
    else:
        dw = []
    lat = relaxed_latency.supernet_latency(net, lut, one_hot, dw)
    assert lat.item() == pytest.approx(lut.predict(spec), rel=1e-6)


def test_sink_expected_latency_formula_and_gradients():
    """Eq. 6 by hand: Σ_s Σ_d v_d Σ_{l<=d} Σ_i u_i LAT(op_i^l)."""
    lut = synthetic_lut()
    net = fresh("sink", seed=17)
    randomize(net, 17)
    u = [torch.softmax(a, -1) for a in net.alphas]
    v = net.depth_weights()
    lat = relaxed_latency.supernet_latency(net, lut, u, v)
    table = relaxed_latency.layer_latencies(net, lut)
    u, v = [t.detach() for t in u], [t.detach() for t in v]
    want = lut.base
    for s in range(6):
        layer_lat = [sum(float(p) * t for p, t in zip(u[l], table[l])) for l in net.stage_layers(s)]
        for j, d in enumerate(net.allowed_depths(s)):
            want += float(v[s][j]) * sum(layer_lat[:d])
    assert lat.item() == pytest.approx(want, rel=1e-5)
    lat.backward()
    for p in net.arch_parameters()[:-1]:  # stage 8 has a single depth: its β gets no gradient
        assert p.grad is not None and torch.count_nonzero(p.grad) > 0


def test_expected_latency_follows_current_widths():
    lut = synthetic_lut()
    net = fresh("skip-in", seed=18)
    u = [torch.softmax(a, -1) for a in net.alphas]
    before = relaxed_latency.supernet_latency(net, lut, u).item()
    name = net.op_names[1]
    net.set_mid(0, 1, net.space.op(name).max_width(net.geoms[0].cin))
    assert relaxed_latency.supernet_latency(net, lut, u).item() > before


@pytest.mark.parametrize("depth_space", DEPTH_SPACES)
def test_checkpoint_keys_of_the_arch_parameters(nets, depth_space):
    """The depth space decides the parameters, the supernet keeps them: ``betas.s`` per stage
    ('sink'), ``gates.g`` per gated layer ('skip-out'), after ``alphas.l`` (checkpoints load)."""
    net = nets[depth_space]
    n_betas = {"sink": len(net.stage_sizes)}.get(depth_space, 0)
    n_gates = {"skip-out": len(net.gated_layers)}.get(depth_space, 0)
    keys = [k for k in net.state_dict() if k.split(".")[0] in ("alphas", "betas", "gates")]
    assert keys == ([f"alphas.{l}" for l in range(net.num_layers)] + [f"betas.{s}" for s in range(n_betas)]
                    + [f"gates.{g}" for g in range(n_gates)])
    assert (n_gates > 0) == (depth_space == "skip-out") and net.gated_layers == net.depth_search.gated_layers
