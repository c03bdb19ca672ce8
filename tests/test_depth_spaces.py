"""The three depth spaces of Sec. 3.3 / Fig. 3 as classes (``nn.depth_spaces``), checked one by one
on small hand-made layouts, and the relaxed latency (Eq. 4/6, ``latency.relaxed``) that reads them.

Layout used by the hand examples: two stages of 2 layers; each stage's first layer changes the
shape (stride 2), the second keeps it - so sink depths are 1..2 per stage, skip-in has a skip
candidate in layers 1 and 3, skip-out gates layers 1 and 3.
"""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from tfnas_core.arch.space import DEPTH_SPACES, LayerGeom
from tfnas_core.latency import lut as latency
from tfnas_core.latency import relaxed as relaxed_latency
from tfnas_core.nn.depth_spaces import DEPTH_SPACE_CLASSES, SinkConnecting, SkipIn, SkipOut, make_depth_space
from tfnas_core.nn.supernet import Supernet
from tfnas_core.arch.space import Proxy

GEOMS = (LayerGeom(3, 0, 16, 8, 16, 2, "relu"), LayerGeom(3, 1, 8, 16, 16, 1, "relu"),
         LayerGeom(4, 0, 8, 16, 24, 2, "relu"), LayerGeom(4, 1, 4, 24, 24, 1, "relu"))  # stage, index, hw, cin, cout, stride
PROXY = Proxy(resolution=32, width_mult=0.25, num_classes=10, stem_stride=1)


def _space(cls, num_ops=2):
    return cls(GEOMS, (2, 2), num_ops)


def _tagging_run(l: int, h: torch.Tensor) -> torch.Tensor:
    """A 'layer' that is easy to follow: layer l maps h to 10·h + (l + 1)."""
    return 10 * h + (l + 1)


def test_registry_names_are_the_configs():
    assert tuple(DEPTH_SPACE_CLASSES) == DEPTH_SPACES
    assert all(DEPTH_SPACE_CLASSES[n].name == n for n in DEPTH_SPACES)
    assert isinstance(make_depth_space("skip-out", GEOMS, (2, 2), 8), SkipOut)
    with pytest.raises(ValueError, match="unknown depth space 'skip'"):
        make_depth_space("skip", GEOMS, (2, 2), 8)
    with pytest.raises(ValueError, match="unknown depth space"):
        Supernet("tfnas", PROXY, "deep")
    with pytest.raises(ValueError, match="stages of"):
        SinkConnecting(GEOMS, (2, 1), 8)


def test_structure_per_space():
    sink, s_in, s_out = _space(SinkConnecting), _space(SkipIn), _space(SkipOut)
    assert [sink.allowed_depths(s) for s in (0, 1)] == [(1, 2), (1, 2)]
    assert [b.shape for b in sink.initial_betas()] == [(2,), (2,)] and not sink.initial_gates()
    assert [s_in.has_skip(l) for l in range(4)] == [False, True, False, True]
    assert not any(sink.has_skip(l) or s_out.has_skip(l) for l in range(4))
    assert not s_in.initial_betas() and not s_in.initial_gates()
    assert s_out.gated_layers == (1, 3) and sink.gated_layers == s_in.gated_layers == ()
    assert [g.tolist() for g in s_out.initial_gates()] == [[0.0, 0.0], [0.0, 0.0]]


def test_sink_forward_hard_and_eq5():
    sink = _space(SinkConnecting)
    x = torch.zeros(1)
    assert sink.forward(x, _tagging_run, [1, 2]).tolist() == [(1 * 10 + 3) * 10 + 4]  # layers 0 | 2, 3
    v = [torch.tensor([0.25, 0.75]), torch.tensor([1.0, 0.0])]
    after1 = 0.25 * 1 + 0.75 * 12  # Eq. 5: Σ_d v_d · (output after d layers)
    assert sink.forward(x, _tagging_run, v).item() == pytest.approx(10 * after1 + 3)
    with pytest.raises(ValueError, match="depth 0 not in"):
        sink.forward(x, _tagging_run, [0, 1])
    with pytest.raises(ValueError, match="depth weights of shape"):
        sink.forward(x, _tagging_run, [torch.ones(3), 1])


def test_skip_spaces_forward():
    x = torch.zeros(1)
    assert _space(SkipIn).forward(x, _tagging_run, []).item() == 1234  # every layer: skip is an op
    s_out = _space(SkipOut)
    assert s_out.forward(x, _tagging_run, [0, 1]).item() == 134  # layer 1 skipped
    assert s_out.forward(x, _tagging_run, [1, 0]).item() == 123  # layer 3 skipped
    g = [torch.tensor([0.5, 0.5]), torch.tensor([0.0, 1.0])]
    h1 = 0.5 * 1 + 0.5 * 12  # P(skip)·x + P(keep)·op(x)
    assert s_out.forward(x, _tagging_run, g).item() == pytest.approx((10 * h1 + 3) * 10 + 4)


def test_derived_depths_of_known_parameters():
    sink = _space(SinkConnecting)
    betas = [torch.tensor([0.1, 0.9]), torch.tensor([2.0, -1.0])]
    assert sink.kept_layers([0, 1, 1, 0], betas) == [[0, 1], [2]]
    s_in = _space(SkipIn)
    assert s_in.kept_layers([0, 2, 1, 1], []) == [[0], [2, 3]]  # op 2 = skip (num_ops = 2)
    s_out = _space(SkipOut)
    gates = [torch.tensor([0.0, 1.0]), torch.tensor([3.0, 1.0])]
    assert s_out.kept_layers([0, 0, 0, 0], gates) == [[0, 1], [2]]


def test_hard_choices_of_kept_layers():
    kept = {0: 1, 2: 0, 3: 1}
    assert _space(SinkConnecting).hard_choices(kept, [1, 2]) == ([1, 0, 0, 1], [1, 2])
    assert _space(SkipIn).hard_choices(kept, [1, 2]) == ([1, 2, 0, 1], [])
    assert _space(SkipOut).hard_choices(kept, [1, 2]) == ([1, 0, 0, 1], [0, 1])
    for cls in (SkipIn, SkipOut):
        with pytest.raises(ValueError, match="layer 2 cannot be skipped"):
            _space(cls).hard_choices({0: 0, 1: 0, 3: 0}, [2, 1])


def test_latency_hooks():
    v = [torch.tensor([0.3, 0.7]), torch.tensor([0.6, 0.4])]
    assert _space(SinkConnecting).stage_distributions(v) == v and _space(SinkConnecting).latency_factors(v) == {}
    assert _space(SkipIn).stage_distributions([]) is None and _space(SkipIn).latency_factors([]) == {}
    out = _space(SkipOut)
    assert out.stage_distributions(v) is None
    assert {l: float(f) for l, f in out.latency_factors(v).items()} == {1: pytest.approx(0.7), 3: pytest.approx(0.4)}


# ----------------------------------------------------------------------------- relaxed latency on a supernet


def _lut_and_net(depth_space: str, seed: int = 3):
    torch.manual_seed(seed)
    net = Supernet("tfnas", PROXY, depth_space)
    entries = {}
    for n, (key, info) in enumerate(sorted(latency.space_keys(net.space).items())):
        entries[key] = {w: 0.01 * (n + 1) + 0.0007 * w for w in range(info.lo, info.hi + 1)}
    lut = latency.LUT(base=2.0, entries=entries)
    with torch.no_grad():
        for p in net.arch_parameters():
            p.copy_(torch.randn(p.shape))
    return lut, net


def test_eq6_by_hand_on_two_stages():
    """Eq. 6 on a 2-stage example with numbers small enough to add by hand."""
    lats = [torch.tensor([1.0, 3.0]), torch.tensor([2.0, 4.0]), torch.tensor([5.0, 1.0])]
    u = [torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0]), torch.tensor([0.25, 0.75])]
    v = [torch.tensor([0.2, 0.8]), torch.tensor([1.0])]  # stage 1: depth 1 or 2; stage 2: one layer
    # layer costs 2, 2, 2 -> stage 1: 0.2·2 + 0.8·(2+2) = 3.6; stage 2: 2; base 1
    got = relaxed_latency.expected_latency(1.0, u, lats, v, [2, 1])
    assert got.item() == pytest.approx(6.6)


def test_skip_out_latency_weights_each_gated_layer_by_p_keep():
    lut, net = _lut_and_net("skip-out")
    u = [torch.softmax(a, -1) for a in net.alphas]
    g = [w.detach() for w in net.depth_weights()]
    table = relaxed_latency.layer_latencies(net, lut)
    want = lut.base
    for l in range(net.num_layers):
        layer = sum(float(p) * t for p, t in zip(u[l].detach(), table[l]))
        keep = float(g[net.gated_layers.index(l)][1]) if l in net.gated_layers else 1.0
        want += keep * layer
    assert relaxed_latency.supernet_latency(net, lut, u, g).item() == pytest.approx(want, rel=1e-6)
    ones = [torch.tensor([0.0, 1.0]) for _ in g]  # every gate keeps: plain Eq. 4
    plain = lut.base + sum(sum(float(p) * t for p, t in zip(u[l].detach(), table[l])) for l in range(net.num_layers))
    assert relaxed_latency.supernet_latency(net, lut, u, ones).item() == pytest.approx(plain, rel=1e-6)


def test_skip_in_latency_skip_costs_nothing():
    lut, net = _lut_and_net("skip-in")
    table = relaxed_latency.layer_latencies(net, lut)
    assert all(t[-1] == 0.0 for l, t in enumerate(table) if net.layers[l].has_skip)
    assert all(len(t) == net.layers[l].num_choices for l, t in enumerate(table))
    skip_all = [torch.nn.functional.one_hot(torch.tensor(len(a) - 1), len(a)).float() if net.layers[l].has_skip
                else torch.nn.functional.one_hot(torch.tensor(0), len(a)).float() for l, a in enumerate(net.alphas)]
    firsts = sum(table[net.stage_starts[s]][0] for s in range(len(net.stage_sizes)))
    assert relaxed_latency.supernet_latency(net, lut, skip_all).item() == pytest.approx(lut.base + firsts, rel=1e-6)


def test_latency_tensor_cache_lives_outside_the_module():
    lut, net = _lut_and_net("sink")
    u = [torch.softmax(a, -1) for a in net.alphas]
    keys = set(net.state_dict())
    first = relaxed_latency.latency_tensors(net, lut, u[0])
    again = relaxed_latency.latency_tensors(net, lut, u[0])
    assert all(a is b for a, b in zip(first, again))  # built once per widths
    assert set(net.state_dict()) == keys and "_lat_cache" not in net.__dict__
    assert [a.dtype for a in relaxed_latency.latency_tensors(net, lut, u[0].double())] == [torch.float64] * len(u)
    name = net.op_names[0]
    net.set_mid(0, 0, net.space.op(name).max_width(net.geoms[0].cin))
    assert relaxed_latency.latency_tensors(net, lut, u[0])[0] is not first[0]  # a width change rebuilds
    with pytest.raises(ValueError, match="depth weight vectors"):
        relaxed_latency.supernet_latency(net, lut, u, [])
    with pytest.raises(ValueError, match="op weight vectors"):
        relaxed_latency.supernet_latency(net, lut, u[:-1], net.depth_weights())


def test_nn_imports_no_latency_table():
    code = ("import sys, tfnas_core.nn.supernet, tfnas_core.nn.depth_spaces, tfnas_core.nn.flops; "
            "print(sorted(m for m in sys.modules if m.startswith(('tfnas_core.latency', 'tfnas_core.search', "
            "'tfnas_core.runs'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
