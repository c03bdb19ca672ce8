"""The fast search path (``fast_ops``) computes what the plain path computes.

Compared in float64, where the two differ only by summation order (float32 differs by rounding that
BatchNorm's batch statistics amplify through 18 layers: ~1e-2 relative on some gradients, so a
float32 comparison would need a loose tolerance that hides real mistakes).  Every depth space,
second-path strategy, arch-step mode and objective: the losses, the records and every parameter
after one weight step and one arch step (so gradients, clipping and optimiser steps included).
"""
from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tfnas_core.nn import fast_ops
from tfnas_core.latency import lut as latency
from tfnas_core.search import samplers
from tfnas_core.search import loop as search
from tfnas_core.search import steps
from tfnas_core.search import config as search_config
from tfnas_core.search.config import smoke
from tfnas_core.nn.supernet import DEPTH_SPACES

CPU_LUT = Path(__file__).resolve().parents[1] / "tfnas_core" / "luts" / "cpu_local.json"


@pytest.fixture(autouse=True)
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _pair(depth_space="sink", **kw):
    cfg = search_config.fill_objective_defaults(replace(smoke(), depth_space=depth_space, target_ms=20.0, **kw))
    plain = search.build_supernet(replace(cfg, fast=False), 10, 1, torch.device("cpu")).double()
    fast = copy.deepcopy(plain).set_fast(True)
    assert not plain.fast and fast.fast
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 1, 16, 16, generator=g), torch.randint(0, 10, (8,), generator=g)
    return cfg, plain, fast, x, y


def _assert_same_params(a, b, rtol=1e-9, atol=1e-11):
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=rtol, atol=atol, msg=name)


def _records_close(r, s):
    assert r.keys() == s.keys()
    for k in r:
        assert r[k] == pytest.approx(s[k], rel=1e-9, abs=1e-12), k


@pytest.mark.parametrize("depth_space", DEPTH_SPACES)
@pytest.mark.parametrize("strategy", samplers.SECOND_PATH_STRATEGIES)
def test_weight_step_same_as_plain(depth_space, strategy):
    cfg, plain, fast, x, y = _pair(depth_space, second_path=strategy)
    res = []
    for net, fast_flag in ((plain, False), (fast, True)):
        c = replace(cfg, fast=fast_flag)
        w_opt, _, _ = search.build_optimizers(net, c)
        gen = samplers.make_generator(3)
        res.append([steps.weight_step(net, x, y, w_opt, gen, **search.weight_step_args(c, searching=bi)).numbers()
                    for bi in (False, True, True)])
    for r, s in zip(*res):
        _records_close(r, s)
    _assert_same_params(plain, fast)


@pytest.mark.parametrize("depth_space", DEPTH_SPACES)
@pytest.mark.parametrize("mode,objective", [("relaxed", "abs"), ("relaxed", "eq9"), ("relaxed", "c1"),
                                            ("relaxed", "c2"), ("hard", "abs")])
def test_arch_step_same_as_plain(depth_space, mode, objective):
    cfg, plain, fast, x, y = _pair(depth_space, arch_step=mode, objective=objective)
    lut = latency.load(CPU_LUT)
    res = []
    for net, fast_flag in ((plain, False), (fast, True)):
        c = replace(cfg, fast=fast_flag)
        _, _, a_opt = search.build_optimizers(net, c)
        gen = samplers.make_generator(5)
        res.append([steps.arch_step(net, x, y, a_opt, lut, gen, temperature=t, **search.arch_step_args(c)).numbers()
                    for t in (5.0, 1.0)])
    for r, s in zip(*res):
        _records_close(r, s)
    _assert_same_params(plain, fast)
    assert all(p.grad is None for p in fast.weight_parameters())  # the arch step leaves ω alone


@pytest.mark.parametrize("embed", [False, True])
def test_relaxed_layer_gradients_every_input(embed, monkeypatch):
    """One fused layer: output and gradients w.r.t. input, mixing weights and every weight tensor -
    depthwise per kernel size (default) and with k3 embedded in one k5 convolution."""
    monkeypatch.setattr(fast_ops, "EMBED_KERNELS", embed)
    _, plain, fast, x, _ = _pair("skip-in")
    for l in (0, 1, 8):  # stride-2 first layer, a residual layer with skip, a residual layer
        h = plain.features_in(x).detach()
        for i in range(l):
            h = plain.layers[i](h, 0).detach()
        n = plain.layers[l].num_choices
        u = torch.softmax(torch.randn(n), 0)
        outs, grads = [], []
        for net in (plain, fast):
            hin, uu = h.clone().requires_grad_(), u.clone().requires_grad_()
            out = net.layers[l](hin, uu, net.fast)  # the supernet's switch, passed to the layer
            params = list(net.layers[l].parameters())
            gs = torch.autograd.grad((out * torch.arange(out.numel()).view_as(out).sin()).sum(), [hin, uu, *params])
            outs.append(out)
            grads.append(gs)
        torch.testing.assert_close(outs[0], outs[1])
        for a, b in zip(*grads):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("k,stride,hw", [(3, 1, 1), (5, 1, 1), (5, 2, 1), (3, 2, 4), (5, 1, 2), (5, 2, 7)])
def test_depthwise_shortcuts_and_embedding(k, stride, hw):
    """The 1x1-map shortcut and a k3 kernel embedded in a k5 call are the plain convolution."""
    x = torch.randn(4, 6, hw, hw)
    w = torch.randn(6, 1, k, k)
    ref = F.conv2d(x, w, None, stride, k // 2, 1, 6)
    torch.testing.assert_close(fast_ops.depthwise(x, w, stride, k), ref)
    if k == 3:
        torch.testing.assert_close(fast_ops.depthwise(x, F.pad(w, [1] * 4), stride, 5), ref)


def test_pointwise_and_se_match_convolutions():
    x = fast_ops.to_cl(torch.randn(3, 5, 4, 4))
    w, b = torch.randn(7, 5, 1, 1), torch.randn(7)
    y = fast_ops.pointwise(x, w, b)
    torch.testing.assert_close(y, F.conv2d(x, w, b))
    assert y.is_contiguous(memory_format=torch.channels_last)
    r_w, r_b, e_w, e_b = torch.randn(2, 5, 1, 1), torch.randn(2), torch.randn(5, 2, 1, 1), torch.randn(5)
    s = F.conv2d(F.silu(F.conv2d(x.mean((2, 3), keepdim=True), r_w, r_b)), e_w, e_b)
    torch.testing.assert_close(fast_ops.se_scale(x, r_w, r_b, e_w, e_b, F.silu), x * torch.sigmoid(s))


def test_fast_is_one_switch_of_the_supernet_and_falls_back(monkeypatch):
    cfg = replace(smoke(), fast=False)
    net = search.build_supernet(cfg, 10, 1, torch.device("cpu"))
    assert not net.fast
    assert not any(hasattr(m, "fast") for m in net.modules() if m is not net)  # no state in the layers
    keys = {k: v.clone() for k, v in net.state_dict().items() if isinstance(v, torch.Tensor)}
    assert net.set_fast(True) is net and net.fast
    assert {k: v for k, v in net.state_dict().items() if isinstance(v, torch.Tensor)}.keys() == keys.keys()
    assert search.build_supernet(smoke(), 10, 1, torch.device("cpu")).fast and smoke().fast
    assert search_config.apply_overrides(smoke(), ["fast=false"]).fast is False
    # The switch reaches every layer the forward runs: count the fused calls.
    calls = {"block": 0, "relaxed": 0}
    block, relaxed = fast_ops.block_forward, fast_ops.relaxed_layer
    monkeypatch.setattr(fast_ops, "block_forward", lambda *a: calls.__setitem__("block", calls["block"] + 1) or block(*a))
    monkeypatch.setattr(fast_ops, "relaxed_layer",
                        lambda *a: calls.__setitem__("relaxed", calls["relaxed"] + 1) or relaxed(*a))
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    net = net.double()
    depths = [w.detach() for w in net.depth_weights()]
    net(x, [0] * net.num_layers, depths)
    assert calls == {"block": net.num_layers, "relaxed": 0}
    net(x, [torch.softmax(a.detach(), -1) for a in net.alphas], depths)
    assert calls == {"block": net.num_layers, "relaxed": net.num_layers}
    net.set_fast(False)(x, [0] * net.num_layers, depths)
    assert calls == {"block": net.num_layers, "relaxed": net.num_layers}  # the plain path calls neither
