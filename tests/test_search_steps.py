"""The search's step and loop functions, pinned against hand computations (paper Sec. 3.3, Eq. 3-9,
Alg. 1; Appendix B; docs/official_behaviour.md "Search loop").

A tiny supernet (the smoke proxy: 16 px, width 0.25), batches of 6, seeded, on the CPU; each test
a step or two.  What is pinned, each from the same sampled paths / Gumbel draws as the code:

* the weight step (Eq. 8): the Gumbel path and, after warm-up, a second path that differs in every
  layer; the loss is the sum of the two cross-entropies; one SGD update of the weights only
  (gradient clipped to ``w_grad_clip``), α/β untouched and without gradients;
* the arch step (Eq. 3-7): loss = CE + λ·|LAT/target − 1| (the configured objective) with LAT the
  expected latency under the same relaxed weights; gradients reach α/β only, clipped to
  ``a_grad_clip``; one Adam step, then α/β re-normalised to log-probabilities; ``hard``: only the
  sampled op runs, its output multiplied by the straight-through weight;
* the temperature per epoch, elasticity scaling toward the configured target at the searching
  epochs, the epoch record's sums and means (``EpochSums``), deferred reads equal to reading at
  once, and the one-line message of a non-finite loss.

The steps (``search.steps``) take flat arguments; ``_w`` / ``_a`` call them with a config's
(``loop.weight_step_args`` / ``arch_step_args``, the loop's own mapping) and read the numbers.
"""
from __future__ import annotations

import copy
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from tfnas_core.latency import lut as latency
from tfnas_core.latency import relaxed as relaxed_latency
from tfnas_core.runs import loop as run_loop
from tfnas_core.search import samplers
from tfnas_core.search import scaling
from tfnas_core.search import loop as search
from tfnas_core.search import steps
from tfnas_core.search import config as search_config
from tfnas_core.nn.elastic import rank_channels
from tfnas_core.search.objectives import DEFAULTS, LatencyCost
from tfnas_core.search.config import smoke

CPU = torch.device("cpu")
LUT = latency.load(search_config.resolve_path(smoke().lut))
N = 6  # images per batch


def _cfg(**kw) -> search_config.SearchConfig:
    return replace(smoke(), **{"target_ms": 20.0, **kw})


def _w(net, x, y, opt, cfg, gen, bi):
    """The weight step under ``cfg`` (a searching epoch's when ``bi``), its numbers read at once."""
    return steps.weight_step(net, x, y, opt, gen, **search.weight_step_args(cfg, bi)).numbers()


def _a(net, x, y, opt, lut, cfg, temp, gen):
    """The arch step under ``cfg`` at temperature ``temp``, its numbers read at once."""
    return steps.arch_step(net, x, y, opt, lut, gen, temperature=temp, **search.arch_step_args(cfg)).numbers()


@pytest.fixture(scope="module")
def template():
    return search.build_supernet(_cfg(), 10, 1, CPU)


@pytest.fixture
def net(template):
    return copy.deepcopy(template)


def _batch(seed: int = 0, n: int = N):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 16, 16, generator=g), torch.randint(0, 10, (n,), generator=g)


def _labels(logits: torch.Tensor) -> torch.Tensor:
    """Labels that the logits get wrong at every third position: CORRECT of the N right."""
    y = logits.detach().argmax(1)
    y[::3] = (y[::3] + 1) % logits.shape[1]
    return y


CORRECT = N - len(range(0, N, 3))  # 4 of 6: not N / 2, so that counting the wrong ones differs


def _spy_paths(net) -> list:
    """Every forward's op choices (``forward`` and the weight step's ``forward_from`` both pass here)."""
    seen, inner = [], net.forward_from

    def recording(x, ops, depths=None):
        seen.append(list(ops))
        return inner(x, ops, depths)

    net.forward_from = recording
    return seen


def _clip(grads, max_norm: float):
    """``clip_grad_norm_`` by hand: scale all by max_norm / (total norm + 1e-6) when that is below 1."""
    norm = math.sqrt(sum(float(g.pow(2).sum()) for g in grads if g is not None))
    coef = min(1.0, max_norm / (norm + 1e-6))
    return [None if g is None else g * coef for g in grads], norm


def _close(a, b, tol=1e-6):
    return all(torch.allclose(p.detach(), q, rtol=1e-5, atol=tol) for p, q in zip(a, b))


# ----------------------------------------------------------------------------- temperature


def test_temperature_per_epoch_reads_the_configured_schedule():
    cfg = replace(smoke(), epochs=6, warmup_epochs=2, t0=4.0, t_decay=0.5, t_final=1.0)
    # exponential: t0 through the first arch epoch (epoch index = warm-up), then x t_decay per epoch
    assert [search.temperature(cfg, e) for e in range(6)] == pytest.approx([4.0, 4.0, 4.0, 2.0, 1.0, 0.5])
    # linear: t0 at the first arch epoch to t_final at the last (epochs - 1), in equal steps
    lin = replace(cfg, t_schedule="linear")
    assert [search.temperature(lin, e) for e in range(6)] == pytest.approx([4.0, 4.0, 4.0, 3.0, 2.0, 1.0])
    assert search.temperature(replace(lin, epochs=4), 2) == pytest.approx(4.0)
    assert search.temperature(replace(lin, epochs=4), 3) == pytest.approx(1.0)  # the run's length counts


# ----------------------------------------------------------------------------- weight step


def _hand_weight_step(net, x, paths, cfg):
    """Eq. 8 by hand: the paths' summed CE (depths softmax(β), detached), its gradient over the
    weights clipped to w_grad_clip, one SGD step from zero momentum (p - lr (g + wd p))."""
    ref = copy.deepcopy(net).train()
    depths = [w.detach() for w in ref.depth_weights()]
    logits = [ref(x, p, depths) for p in paths]
    y = _labels(logits[0])
    loss = sum(F.cross_entropy(out, y) for out in logits)
    params = ref.weight_parameters()
    grads, norm = _clip(torch.autograd.grad(loss, params, allow_unused=True), cfg.w_grad_clip)
    new = [p.detach() if g is None else p.detach() - cfg.w_lr * (g + cfg.w_wd * p.detach()) for p, g in zip(params, grads)]
    return y, float(loss.detach()), new, norm


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
def test_weight_step_sums_both_paths_and_updates_only_the_weights(net, fast):
    cfg = _cfg(fast=fast, w_lr=0.5, w_grad_clip=0.05)
    net.set_fast(fast).eval()
    x, _ = _batch()
    first, second = samplers.bi_sample(list(net.alphas), "random", samplers.make_generator(3))
    assert all(a != b for a, b in zip(first, second))  # the second path avoids the first's op in every layer
    y, loss, new, norm = _hand_weight_step(net, x, [first, second], cfg)
    assert norm > cfg.w_grad_clip  # the clip is active
    w_opt, _, a_opt = search.build_optimizers(net, cfg)
    arch = [p.detach().clone() for p in net.arch_parameters()]
    seen = _spy_paths(net)
    r = _w(net, x, y, w_opt, cfg, samplers.make_generator(3), bi=True)
    assert seen == [first, second]
    assert r == {"loss": pytest.approx(loss, rel=1e-5), "correct": CORRECT, "n": N}
    assert type(r["loss"]) is float and type(r["correct"]) is int
    assert net.training
    assert _close(net.weight_parameters(), new)
    assert all(torch.equal(p, q) for p, q in zip(net.arch_parameters(), arch))
    assert all(p.grad is None for p in net.arch_parameters())  # depths detached, α not on the path


def test_a_weight_step_without_a_second_path_runs_one_path(net):
    """``second_path`` defaults to "none": the Gumbel path alone, as a warm-up step."""
    x, y = _batch()
    seen = _spy_paths(net)
    w_opt = search.build_optimizers(net, _cfg())[0]
    steps.weight_step(net, x, y, w_opt, samplers.make_generator(3), grad_clip=5.0)
    (first,) = seen
    assert first == samplers.bi_sample(list(net.alphas), "none", samplers.make_generator(3))[0]


@pytest.mark.parametrize("strategy,bi", [("random", False), ("none", True)], ids=["warm-up", "one-path-search"])
def test_weight_step_with_one_path_runs_the_gumbel_path_alone(net, strategy, bi):
    cfg = _cfg(second_path=strategy, w_lr=0.5, w_grad_clip=0.05)
    x, _ = _batch(1)
    first = samplers.gumbel_path(list(net.alphas), samplers.make_generator(4))
    y, loss, new, _ = _hand_weight_step(net, x, [first], cfg)
    w_opt, _, _ = search.build_optimizers(net, cfg)
    seen = _spy_paths(net)
    r = _w(net, x, y, w_opt, cfg, samplers.make_generator(4), bi=bi)
    assert seen == [first]
    assert r == {"loss": pytest.approx(loss, rel=1e-5), "correct": CORRECT, "n": N}
    assert _close(net.weight_parameters(), new)


def test_weight_step_leaves_ops_off_its_paths_alone(net):
    """Gradients are set to None before each backward: an op the second step does not run keeps its
    weights (SGD skips it), though the first step gave it momentum and it has weight decay."""
    cfg = _cfg(second_path="none")
    w_opt, _, _ = search.build_optimizers(net, cfg)
    x, y = _batch(2)
    p1 = samplers.gumbel_path(list(net.alphas), samplers.make_generator(0))
    p2 = samplers.gumbel_path(list(net.alphas), samplers.make_generator(1))
    off = [(l, a) for l, (a, b) in enumerate(zip(p1, p2)) if a != b]  # run by the first step only
    assert off
    _w(net, x, y, w_opt, cfg, samplers.make_generator(0), bi=False)
    snap = {(l, i): [p.detach().clone() for p in net.layers[l].candidates[i].parameters()] for l, i in off}
    _w(net, x, y, w_opt, cfg, samplers.make_generator(1), bi=False)
    for (l, i), before in snap.items():
        params = list(net.layers[l].candidates[i].parameters())
        assert all(p.grad is None for p in params)
        assert all(torch.equal(p, q) for p, q in zip(params, before))


def test_weight_step_returns_device_tensors_read_by_the_caller(template):
    """One return type: 0-d tensors off the graph (``numbers`` reads them); a non-finite loss comes
    back as it is (the caller, ``EpochSums``, refuses it), after the update."""
    cfg = _cfg()
    x, _ = _batch()
    y = torch.arange(N) % 10
    net = copy.deepcopy(template)
    r = steps.weight_step(net, x, y, search.build_optimizers(net, cfg)[0], samplers.make_generator(5),
                          second_path="random", grad_clip=cfg.w_grad_clip)
    assert isinstance(r, steps.WeightOut) and r.n == N
    assert all(isinstance(t, torch.Tensor) and t.dim() == 0 and not t.requires_grad for t in (r.loss, r.correct))
    assert r.correct.dtype == torch.int64
    assert r.numbers() == {"loss": float(r.loss), "correct": int(r.correct), "n": N}
    x[0, 0, 0, 0] = float("nan")
    bad = steps.weight_step(net, x, y, search.build_optimizers(net, cfg)[0], samplers.make_generator(5),
                            second_path="random", grad_clip=cfg.w_grad_clip)
    assert math.isnan(float(bad.loss))


# ----------------------------------------------------------------------------- arch step


def _weight_hooks(net, ops, choices):
    return [layer.register_forward_hook(lambda m, a, out, w=w[c]: out * w) for layer, w, c in zip(net.layers, ops, choices)]


def _hand_arch_step(net, x, cfg, temp, seed, hard=False, noise=None):
    """Eq. 3-7 by hand from the generator's draws: the loss terms, the labels used, the clipped
    α/β gradients and α/β after one Adam step from fresh state (p - lr d / (|d| + eps), d = g + wd p)
    and log_softmax."""
    ref = copy.deepcopy(net).train()
    alphas = list(ref.alphas)
    if noise is None:
        gen = samplers.make_generator(seed)
        noise = torch.cat([samplers.gumbel_noise_on(a, gen).reshape(-1) for a in alphas])
    parts = noise.split([a.numel() for a in alphas])
    soft = [F.softmax((a + g.view(a.shape)) / temp, -1) for a, g in zip(alphas, parts)]
    if hard:
        ops = [F.one_hot(s.argmax(), s.numel()).to(s.dtype) - s.detach() + s for s in soft]
        choices = [int(s.argmax()) for s in soft]
        handles = _weight_hooks(ref, ops, choices)
        logits = ref(x, choices, ref.depth_weights())
        for h in handles:
            h.remove()
    else:
        ops = soft
        logits = ref(x, ops, ref.depth_weights())
    y = _labels(logits)
    ce = F.cross_entropy(logits, y)
    lat = relaxed_latency.supernet_latency(ref, LUT, ops, ref.depth_weights())
    lat_loss = cfg.lam * (lat / cfg.target_ms - 1).abs()  # the 'abs' objective (released code)
    params = ref.arch_parameters()
    grads, norm = _clip(torch.autograd.grad(ce + lat_loss, params), cfg.a_grad_clip)
    ce, lat, lat_loss = ce.detach(), lat.detach(), lat_loss.detach()
    new = []
    for p, g in zip(params, grads):
        d = g + cfg.a_wd * p.detach()
        new.append(F.log_softmax(p.detach() - cfg.a_lr * d / (d.abs() + 1e-8), -1))
    out = {"loss": float(ce + lat_loss), "ce": float(ce), "lat_loss": float(lat_loss), "lat_ms": float(lat),
           "correct": CORRECT, "n": N}
    return y, out, grads, new, norm


ARCH_CFG = dict(objective="abs", lam=0.3, target_ms=12.0, a_grad_clip=0.01, a_lr=0.05)


@pytest.mark.parametrize("mode", ["relaxed", "hard"])
def test_arch_step_is_ce_plus_latency_loss_and_updates_only_alpha_beta(net, mode):
    cfg = _cfg(arch_step=mode, **ARCH_CFG)
    net.eval()
    x, _ = _batch(7)
    y, want, grads, new, norm = _hand_arch_step(net, x, cfg, 2.5, 9, hard=mode == "hard")
    assert norm > cfg.a_grad_clip and want["lat_loss"] > 0.01
    _, _, a_opt = search.build_optimizers(net, cfg)
    weights = [p.detach().clone() for p in net.weight_parameters()]
    seen = _spy_paths(net)
    r = _a(net, x, y, a_opt, LUT, cfg, 2.5, samplers.make_generator(9))
    assert r == {k: v if k in ("correct", "n") else pytest.approx(v, rel=1e-5) for k, v in want.items()}
    assert r["loss"] == pytest.approx(r["ce"] + r["lat_loss"], rel=1e-6)
    assert type(r["correct"]) is int and all(type(r[k]) is float for k in ("loss", "ce", "lat_loss", "lat_ms"))
    assert net.training
    assert len(seen) == 1  # one forward: every op mixed (relaxed), or the sampled op per layer (hard)
    assert all(isinstance(c, int) if mode == "hard" else c.shape == (8,) for c in seen[0])
    assert all(torch.equal(p, q) for p, q in zip(net.weight_parameters(), weights))
    assert all(p.grad is None for p in net.weight_parameters())
    assert _close([p.grad for p in net.arch_parameters()], grads, tol=1e-7)
    assert _close(net.arch_parameters(), new)
    for a in net.alphas:
        assert float(torch.logsumexp(a.detach(), 0)) == pytest.approx(0.0, abs=1e-6)


def test_relaxed_body_from_given_noise_is_the_eager_step(net, template):
    """What a CUDA graph replays (``relaxed_body``) run on the CPU: the same update and numbers as
    the eager relaxed step from the same Gumbel draws, stacked in ARCH_OUTPUTS order."""
    cfg = _cfg(**ARCH_CFG)
    x, _ = _batch(7)
    noise = samplers.relaxed_noise(list(net.alphas), samplers.make_generator(9))
    y, want, grads, new, _ = _hand_arch_step(net, x, cfg, 2.5, 9, noise=noise)
    _, _, a_opt = search.build_optimizers(net, cfg)
    vec = steps.relaxed_body(net, x, y, noise, a_opt, LUT, temperature=2.5, cost=search.arch_step_args(cfg)["cost"],
                             grad_clip=cfg.a_grad_clip)
    assert steps.ARCH_OUTPUTS == ("loss", "ce", "lat_loss", "lat_ms", "correct") == steps.ArchOut._fields[:5]
    assert vec.tolist() == pytest.approx([want[k] for k in steps.ARCH_OUTPUTS], rel=1e-5)
    assert _close(net.arch_parameters(), new)
    assert all(p.grad is None for p in net.weight_parameters())
    eager = copy.deepcopy(template)
    r = _a(eager, x, y, search.build_optimizers(eager, cfg)[2], LUT, cfg, 2.5, samplers.make_generator(9))
    assert [r[k] for k in steps.ARCH_OUTPUTS] == pytest.approx(vec.tolist(), rel=1e-6)


def test_arch_step_with_cuda_graphs_on_the_cpu_is_the_eager_step(template):
    x, _ = _batch(7)
    y = torch.arange(N) % 10
    out = []
    for graphs in (False, True):
        net = copy.deepcopy(template)
        cfg = _cfg(cuda_graphs=graphs, **ARCH_CFG)
        out.append(_a(net, x, y, search.build_optimizers(net, cfg)[2], LUT, cfg, 2.5, samplers.make_generator(9)))
    assert out[0] == out[1]


@pytest.mark.parametrize("mode", ["relaxed", "hard"])
def test_arch_step_returns_device_tensors_read_by_the_caller(template, mode):
    """One return type: 0-d tensors off the graph in ``ARCH_OUTPUTS`` order, then ``n``; a
    non-finite loss comes back as it is (``EpochSums`` refuses it)."""
    x, _ = _batch(7)
    y = torch.arange(N) % 10
    net = copy.deepcopy(template)
    cfg = _cfg(arch_step=mode, **ARCH_CFG)
    a_opt = search.build_optimizers(net, cfg)[2]
    r = steps.arch_step(net, x, y, a_opt, LUT, samplers.make_generator(9), temperature=2.5,
                        **search.arch_step_args(cfg))
    assert isinstance(r, steps.ArchOut) and r.n == N
    assert all(isinstance(getattr(r, k), torch.Tensor) and getattr(r, k).dim() == 0 and not getattr(r, k).requires_grad
               for k in steps.ARCH_OUTPUTS)
    n = r.numbers()
    assert n == {**{k: float(getattr(r, k)) for k in steps.ARCH_OUTPUTS[:4]}, "correct": int(r.correct), "n": N}
    assert type(n["correct"]) is int and all(type(n[k]) is float for k in steps.ARCH_OUTPUTS[:4])
    x[0, 0, 0, 0] = float("inf")
    bad = steps.arch_step(net, x, y, a_opt, LUT, samplers.make_generator(0), temperature=2.5,
                          **search.arch_step_args(cfg))
    assert not bool(torch.isfinite(bad.loss))


def test_weighted_outputs_scale_each_layer_by_its_chosen_weight_and_go_away(net):
    net.train()
    choices = [l % 3 + 1 for l in range(net.num_layers)]
    weights = [(l + 1) * torch.arange(1.0, layer.num_choices + 1) for l, layer in enumerate(net.layers)]  # w[c] = (l+1)(c+1)
    with torch.no_grad():
        h = [net.features_in(_batch()[0])]
        for l in range(3):
            h.append(net.layers[l](h[-1], choices[l]))
        with steps._weighted_outputs(net, weights, choices):
            scaled = [net.layers[l](h[l], choices[l]) for l in range(3)]
        after = [net.layers[l](h[l], choices[l]) for l in range(3)]
    for l in range(3):
        assert torch.allclose(scaled[l], (l + 1) * (choices[l] + 1) * h[l + 1], rtol=1e-6)
        assert torch.equal(after[l], h[l + 1])  # the hooks are removed on leaving
    assert all(not layer._forward_hooks for layer in net.layers)


def test_weighted_outputs_removes_its_hooks_when_the_forward_fails(net):
    with pytest.raises(RuntimeError, match="boom"):
        with steps._weighted_outputs(net, [torch.ones(l.num_choices) for l in net.layers], [0] * net.num_layers):
            raise RuntimeError("boom")
    assert all(not layer._forward_hooks for layer in net.layers)


# ----------------------------------------------------------------------------- the losses


@pytest.mark.parametrize("objective,lam,lam2,target,formula", [
    ("abs", 0.3, None, 12.0, lambda lat, t: 0.3 * abs(lat / t - 1)),
    ("eq9", 0.4, None, 10.0, lambda lat, t: 0.4 * max(lat / t - 1, 0.0)),
    ("eq9", None, None, 99.0, lambda lat, t: 0.0),
    ("c1", 0.5, 1.3, None, lambda lat, t: 0.5 * math.log(lat) ** 1.3),
    ("c1", None, None, None, lambda lat, t: DEFAULTS["c1"]["lam"] * math.log(lat) ** DEFAULTS["c1"]["lam2"]),
    ("c2", 0.07, None, None, lambda lat, t: 0.07 * lat),
])
def test_arch_loss_is_ce_plus_the_configured_objective(net, objective, lam, lam2, target, formula):
    cfg = _cfg(objective=objective, lam=lam, lam2=lam2, target_ms=target)
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(N, 10, generator=g), torch.arange(N) % 10
    ops = samplers.relaxed_weights(list(net.alphas), 1.5, samplers.make_generator(0))
    depths = net.depth_weights()
    loss, ce, lat, lat_loss = steps.arch_loss(net, logits, y, LUT, search.arch_step_args(cfg)["cost"], ops, depths)
    want_ce = float(-torch.log_softmax(logits, 1)[torch.arange(N), y].mean())
    want_lat = float(relaxed_latency.supernet_latency(net, LUT, ops, depths).detach())
    got = [float(t.detach()) for t in (loss, ce, lat, lat_loss)]
    assert 10.0 < want_lat < 20.0 and got[2] == pytest.approx(want_lat, rel=1e-6)
    assert got[1] == pytest.approx(want_ce, rel=1e-6)
    assert got[3] == pytest.approx(formula(want_lat, target), rel=1e-5, abs=1e-9)
    assert got[0] == pytest.approx(want_ce + formula(want_lat, target), rel=1e-5)
    if objective == "eq9" and target == 10.0:
        assert got[3] > 0  # over the target: the hinge is open
    loss.backward()
    assert all(a.grad is not None for a in net.alphas)  # differentiable in α through LAT


def test_relaxed_loss_runs_every_op_mixed_in_training_mode(net):
    cfg = _cfg(**ARCH_CFG)
    x, y = _batch(3)
    ops = samplers.relaxed_weights(list(net.alphas), 2.0, samplers.make_generator(1))
    ref = copy.deepcopy(net).train()
    with torch.no_grad():
        want = ref(x, [o.detach() for o in ops], ref.depth_weights())
    net.eval()
    logits, loss, ce, lat, lat_loss = steps.relaxed_loss(net, x, y, LUT, search.arch_step_args(cfg)["cost"], ops)
    assert net.training
    assert torch.allclose(logits, want, atol=1e-6)
    got = {k: float(t.detach()) for k, t in (("loss", loss), ("ce", ce), ("lat", lat), ("lat_loss", lat_loss))}
    assert got["ce"] == pytest.approx(float(F.cross_entropy(want, y)), rel=1e-6)
    assert got["lat"] == pytest.approx(float(relaxed_latency.supernet_latency(net, LUT, ops, net.depth_weights()).detach()), rel=1e-6)
    assert got["lat_loss"] == pytest.approx(0.3 * abs(got["lat"] / 12.0 - 1), rel=1e-5)
    assert got["loss"] == pytest.approx(got["ce"] + got["lat_loss"], rel=1e-6)
    loss.backward()
    assert all(b.grad is not None for b in net.betas)  # depths from softmax(β), not detached


def test_arch_update_steps_alpha_beta_alone_from_fresh_gradients(net):
    cfg = _cfg(a_grad_clip=0.5, a_lr=0.05)
    _, _, a_opt = search.build_optimizers(net, cfg)
    params = net.arch_parameters()
    c = [torch.linspace(-1.0, 1.0, p.numel()).view(p.shape) for p in params]

    def loss_of(k):  # touches the weights too: only α/β may get gradients
        return sum(k * (p * ci).sum() for p, ci in zip(params, c)) + sum(p.sum() for p in net.weight_parameters())

    steps.arch_update(net, a_opt, loss_of(1.0), cfg.a_grad_clip)
    start = [p.detach().clone() for p in params]
    steps.arch_update(net, a_opt, loss_of(3.0), cfg.a_grad_clip)
    grads, norm = _clip([3.0 * ci for ci in c], cfg.a_grad_clip)
    assert norm > cfg.a_grad_clip
    assert _close([p.grad for p in params], grads)  # this step's gradient alone, clipped
    assert all(p.grad is None for p in net.weight_parameters())
    assert not _close(params, start)
    for p in params:
        assert float(torch.logsumexp(p.detach(), -1)) == pytest.approx(0.0, abs=1e-6)


# ----------------------------------------------------------------------------- elasticity


def _momentum(net, w_opt, layers):
    """Give every coupled tensor of the named (layer, op)s a random momentum buffer."""
    g = torch.Generator().manual_seed(0)
    for l, i in layers:
        for p, _ in net.layers[l].candidates[i].coupled_tensors():
            w_opt.state[p]["momentum_buffer"] = torch.randn(p.shape, generator=g)


def test_elasticity_scales_toward_the_given_target_and_permutes_momentum(net):
    w_opt, _, _ = search.build_optimizers(net, _cfg())
    spec = net.derive()
    kept = [k for stage in net.derived_layers() for k in stage]
    _momentum(net, w_opt, kept)
    snap = {(l, i): (rank_channels(net.layers[l].candidates[i].dw_conv.weight),
                     [(p, dim, p.detach().clone(), w_opt.state[p]["momentum_buffer"].clone())
                      for p, dim in net.layers[l].candidates[i].coupled_tensors()]) for l, i in kept}
    mids = [list(m) for m in net.mids]
    target = 0.8 * LUT.predict(spec)
    want = scaling.scale(spec, LUT, target)
    es = steps.elasticity(net, LUT, target, w_opt, enabled=True)
    assert es == {"lut_ms_before": LUT.predict(spec), "lut_ms_after": want.lut_ms_after,
                  "es_changed": sum(net.mids[l][i] != mids[l][i] for l, i in kept)}
    assert es["es_changed"] > 0 and LUT.predict(net.derive()) == pytest.approx(want.lut_ms_after)
    assert list(net.derive().mids) == list(want.spec.mids)
    moved = 0
    for (l, i), (perm, tensors) in snap.items():
        changed = net.mids[l][i] != mids[l][i]
        idx = perm if changed else torch.arange(len(perm))
        for p, dim, w, buf in tensors:
            assert torch.equal(p.detach(), w.index_select(dim, idx))
            assert torch.equal(w_opt.state[p]["momentum_buffer"], buf.index_select(dim, idx))
        moved += changed and not torch.equal(perm, torch.arange(len(perm)))
    assert moved > 0


def test_elasticity_without_an_optimiser_or_disabled(net, template):
    spec = net.derive()
    target = 1.2 * LUT.predict(spec)
    mids = [list(m) for m in net.mids]
    off = steps.elasticity(net, LUT, target, None, enabled=False)
    assert off == {"lut_ms_before": LUT.predict(spec), "lut_ms_after": LUT.predict(spec), "es_changed": 0}
    assert [list(m) for m in net.mids] == mids
    on = steps.elasticity(net, LUT, target, None, enabled=True)
    assert on["lut_ms_after"] == scaling.scale(spec, LUT, target).lut_ms_after > on["lut_ms_before"]
    other = copy.deepcopy(template)
    w_opt, _, _ = search.build_optimizers(other, _cfg())
    assert steps.elasticity(other, LUT, target, w_opt, enabled=True) == on  # no momentum yet: nothing to permute
    assert [list(m) for m in net.mids] == [list(m) for m in other.mids]


# ----------------------------------------------------------------------------- the epoch


class _Batches:
    def __init__(self, batches):
        self.batches, self.epochs = batches, []

    def set_epoch(self, e):
        self.epochs.append(e)

    def __iter__(self):
        return iter(self.batches)


class _Data:
    """search_data.SearchData's interface: weights (set_epoch, iter), arch_stream(epoch), val."""

    def __init__(self, nan_at=None, arch_nan=False):
        self.weights = _Batches([_batch(s) for s in range(4)])
        self.val = [_batch(10), _batch(11)]
        self.arch = [_batch(20 + i) for i in range(3)]
        self.streams = []
        for i, (x, _) in enumerate(self.weights.batches):
            if i == nan_at:
                x[0, 0, 0, 0] = float("nan")
        if arch_nan:
            self.arch[0][0][0, 0, 0, 0] = float("nan")

    def arch_stream(self, epoch):
        self.streams.append(epoch)
        return iter(self.arch)


def _spy(monkeypatch, module, name, calls):
    real = getattr(module, name)

    def spy(*a, **k):
        out = real(*a, **k)
        calls.append((a, k, out.numbers() if hasattr(out, "numbers") else out))
        return out

    monkeypatch.setattr(module, name, spy)


def _state(template, cfg, epoch):
    """A search's state at ``epoch``'s start (the cosine schedule stepped ``epoch`` times)."""
    net = copy.deepcopy(template)
    state = search.SearchState(net, *search.build_optimizers(net, cfg), samplers.make_generator(0))
    for _ in range(epoch):
        state.w_opt.step()
        state.w_sched.step()
    return state


class _Loop:
    """What ``search_epoch`` uses of a ``RunLoop``: ``kept`` and ``step``."""

    def __init__(self):
        self.steps = []

    def kept(self):
        return "last good checkpoint (epoch 1)"

    def step(self, epoch, step, phase, values):
        self.steps.append((epoch, step, phase))


def _epoch(template, monkeypatch, epoch, cfg, data=None):
    state = _state(template, cfg, epoch)
    calls = {k: [] for k in ("weight_step", "arch_step", "validate", "elasticity", "progress_bar")}
    for name in ("weight_step", "arch_step", "validate", "elasticity"):
        _spy(monkeypatch, steps, name, calls[name])
    _spy(monkeypatch, run_loop, "progress_bar", calls["progress_bar"])
    data = data or _Data()
    lr = state.w_sched.get_last_lr()[0]
    loop = _Loop()
    rec = search.search_epoch(state, LUT, cfg, data, epoch, 3, loop)
    assert state.w_sched.get_last_lr()[0] < lr  # the cosine schedule stepped once
    assert loop.steps == [(epoch, s, rec["phase"]) for s in range(3)]
    monkeypatch.undo()
    return rec, calls, data, lr


LOOP_CFG = dict(epochs=3, warmup_epochs=1, arch_every=2, val_batches=1, lam=0.1, target_ms=14.0)


def test_a_warmup_epoch_trains_weights_on_one_path_and_records_means(template, monkeypatch):
    cfg = _cfg(**LOOP_CFG)
    rec, calls, data, lr = _epoch(template, monkeypatch, 0, cfg)
    ws = calls["weight_step"]
    assert len(ws) == 3 and all(k == {"second_path": "none", "grad_clip": cfg.w_grad_clip} for _, k, _ in ws)
    assert len(data.weights.batches) == 4  # the steps cap the batches
    assert all(torch.equal(a[1], b[0]) and torch.equal(a[2], b[1]) for (a, _, _), b in zip(ws, data.weights.batches))
    assert data.weights.epochs == [0] and data.streams == [] and calls["arch_step"] == []
    (_, _, _, _, max_batches), _, va = calls["validate"][0]
    assert max_batches == 1
    (_, _, target, _), es_kw, es = calls["elasticity"][0]
    assert target == 14.0 and es_kw == {"enabled": False}
    (_, enabled), bar, _ = calls["progress_bar"][0]
    assert bar == {"dynamic_ncols": True, "desc": "epoch 1/3", "total": 3, "leave": False} and enabled is False
    n = sum(r["n"] for _, _, r in ws)
    assert rec["train_loss"] == pytest.approx(sum(r["loss"] * r["n"] for _, _, r in ws) / n, rel=1e-12)
    assert rec["train_acc"] == pytest.approx(100 * sum(r["correct"] for _, _, r in ws) / n, rel=1e-12)
    assert {k: rec[k] for k in ("epoch", "phase", "temperature", "lr", "arch_steps", "arch_loss", "arch_ce",
                                "lat_loss", "arch_expected_ms", "es_applied", "target_ms")} == {
        "epoch": 1, "phase": "warmup", "temperature": 5.0, "lr": lr, "arch_steps": 0, "arch_loss": None,
        "arch_ce": None, "lat_loss": None, "arch_expected_ms": None, "es_applied": False, "target_ms": 14.0}
    assert {k: rec[k] for k in va} == va and {k: rec[k] for k in es} == es
    assert es["es_changed"] == 0
    assert {"derived_ops", "alpha_softmax", "beta_softmax", "derived_depths", "expected_ms", "mids"} <= set(rec)


def test_a_searching_epoch_adds_arch_steps_bi_sampling_and_elasticity(template, monkeypatch):
    cfg = _cfg(t0=4.0, t_decay=0.5, **LOOP_CFG)
    rec, calls, data, lr = _epoch(template, monkeypatch, 2, cfg)
    assert [k["second_path"] for _, k, _ in calls["weight_step"]] == [cfg.second_path] * 3 == ["random"] * 3
    assert data.streams == [2] and data.weights.epochs == [2]
    arch = calls["arch_step"]
    assert len(arch) == 1  # after the 2nd of 3 weight steps (arch_every = 2)
    (_, xa, ya, _, lut, _), kw, a = arch[0]
    assert torch.equal(xa, data.arch[0][0]) and torch.equal(ya, data.arch[0][1]) and lut is LUT
    assert kw == {"temperature": 2.0, "cost": LatencyCost("abs", 14.0, 0.1, None), "grad_clip": cfg.a_grad_clip,
                  "hard": False, "graphed": False}
    assert rec["temperature"] == 2.0
    (_, _, target, _), es_kw, es = calls["elasticity"][0]
    assert target == 14.0 and es_kw == {"enabled": True}
    assert rec["es_applied"] is True and rec["phase"] == "search" and rec["epoch"] == 3 and rec["lr"] == lr
    assert rec["arch_steps"] == 1
    assert (rec["arch_loss"], rec["arch_ce"], rec["lat_loss"], rec["arch_expected_ms"]) == pytest.approx(
        (a["loss"], a["ce"], a["lat_loss"], a["lat_ms"]), rel=1e-12)
    assert rec["lut_ms_after"] == es["lut_ms_after"] and rec["es_changed"] == es["es_changed"]
    assert calls["progress_bar"][0][1]["desc"] == "epoch 3/3"


def test_a_searching_epoch_records_the_means_of_its_arch_steps(template, monkeypatch):
    """With an arch step after each of 3 weight steps the record holds their means (sum / 3)."""
    cfg = _cfg(**{**LOOP_CFG, "arch_every": 1})
    rec, calls, _, _ = _epoch(template, monkeypatch, 1, cfg)
    arch = [a for _, _, a in calls["arch_step"]]
    assert rec["arch_steps"] == len(arch) == 3
    assert (rec["arch_loss"], rec["arch_ce"], rec["lat_loss"], rec["arch_expected_ms"]) == pytest.approx(
        tuple(sum(a[k] for a in arch) / 3 for k in ("loss", "ce", "lat_loss", "lat_ms")), rel=1e-6)


def test_a_searching_epoch_without_elasticity_leaves_the_widths(template, monkeypatch):
    cfg = _cfg(elasticity=False, **{**LOOP_CFG, "arch_every": 1})
    rec, calls, _, _ = _epoch(template, monkeypatch, 1, cfg)
    assert calls["elasticity"][0][1] == {"enabled": False} and rec["es_applied"] is False
    arch = [out for _, _, out in calls["arch_step"]]
    assert rec["arch_steps"] == len(arch) == 3
    assert rec["arch_loss"] == pytest.approx(sum(a["loss"] for a in arch) / 3, rel=1e-12)
    assert rec["arch_expected_ms"] == pytest.approx(sum(a["lat_ms"] for a in arch) / 3, rel=1e-12)
    assert rec["lut_ms_after"] == rec["lut_ms_before"]


@pytest.mark.parametrize("which", ["weight", "arch"])
def test_a_non_finite_loss_stops_the_epoch_with_the_message_users_see(template, monkeypatch, which):
    cfg = _cfg(**LOOP_CFG)
    data = _Data(nan_at=1) if which == "weight" else _Data(arch_nan=True)
    step = 2  # the 2nd weight step, or the arch step after it
    with pytest.raises(search.SearchDiverged) as e:
        _epoch(template, monkeypatch, 1, cfg, data=data)
    assert str(e.value) == (f"loss is nan ({which} step) at epoch 2 step {step}; search stopped, "
                            "last good checkpoint (epoch 1)")


def test_on_the_cpu_a_non_finite_loss_stops_at_its_step(template, monkeypatch):
    """On the CPU each loss is checked at once: the epoch stops at the NaN weight step, before the
    next step runs."""
    cfg = _cfg(**{**LOOP_CFG, "arch_every": 1})
    state = _state(template, cfg, 1)
    calls = {"weight_step": [], "arch_step": []}
    for name in calls:
        _spy(monkeypatch, steps, name, calls[name])
    with pytest.raises(search.SearchDiverged) as e:
        search.search_epoch(state, LUT, cfg, _Data(nan_at=1), 1, 3, None)
    assert len(calls["weight_step"]) == 2 and len(calls["arch_step"]) == 1
    # without a RunLoop (no checkpoints), the message says so
    assert str(e.value) == ("loss is nan (weight step) at epoch 2 step 2; search stopped, "
                            "no checkpoint was written yet")


# ----------------------------------------------------------------------------- EpochSums, deferring


STEPS = [  # (weight loss, n, correct) per step and, at some steps, an arch step's outputs
    (2.3025851, 3, 1, {"loss": 2.4, "ce": 2.3, "lat_loss": 0.1, "lat_ms": 13.7}),
    (2.1000001, 3, 2, None),
    (1.7777777, 5, 4, {"loss": 1.9, "ce": 1.6, "lat_loss": 0.3, "lat_ms": 12.1}),
]


def _kept():
    return "kept"


def _sums(check_each_step, kept=_kept):
    s = search.EpochSums(CPU, check_each_step, kept)
    for step, (loss, n, correct, arch) in enumerate(STEPS):
        s.add_weight(steps.WeightOut(torch.tensor(loss), torch.tensor(correct), n), 0, step)  # float32, as a step's
        if arch is not None:
            s.add_arch(steps.ArchOut(*(torch.tensor(arch[k]) for k in steps.ARCH_OUTPUTS[:4]), torch.tensor(1), n), 0,
                       step)
    return s


def test_epoch_sums_add_losses_times_batch_sizes_and_arch_outputs():
    s = _sums(True)
    assert s.checks == []  # checked at every step
    out = s.read()
    f32 = [float(torch.tensor(v)) for v, *_ in STEPS]
    assert out["w_loss"] == sum(v * n for v, (_, n, _, _) in zip(f32, STEPS))  # float32 widened, times n, summed
    assert (out["w_correct"], out["w_n"], out["a_steps"]) == (7, 11, 2) and type(out["w_correct"]) is int
    for k in ("loss", "ce", "lat_loss", "lat_ms"):
        assert out[f"a_{k}"] == sum(float(torch.tensor(a[k])) for *_, a in STEPS if a is not None)
    empty = search.EpochSums(CPU, True, _kept).read()
    assert empty == {"w_loss": 0.0, "a_loss": 0.0, "a_ce": 0.0, "a_lat_loss": 0.0, "a_lat_ms": 0.0, "w_correct": 0,
                     "w_n": 0, "a_steps": 0}
    assert all(type(empty[k]) is float for k in search.EpochSums.FLOATS)


def test_deferred_epoch_sums_read_the_same_numbers():
    d = _sums(False)
    assert len(d.checks) == 5
    assert d.v["w_loss"].dtype == torch.float64 and d.v["w_correct"].dtype == torch.int64
    assert d.v["a_lat_ms"].dtype == torch.float64
    out = d.read()
    assert d.checks == []
    assert out == _sums(True).read()
    assert all(type(out[k]) is float for k in search.EpochSums.FLOATS) and type(out["w_correct"]) is int


def _bad_steps(s):
    good, nan, inf = torch.tensor(1.0), torch.tensor(float("nan")), torch.tensor(float("inf"))
    s.add_weight(steps.WeightOut(good, torch.tensor(1), 2), 4, 0)
    s.add_arch(steps.ArchOut(inf, good, good, good, torch.tensor(1), 2), 4, 0)
    s.add_weight(steps.WeightOut(nan, torch.tensor(1), 2), 4, 1)


def test_deferred_epoch_sums_refuse_the_first_non_finite_loss_in_step_order():
    s = search.EpochSums(CPU, False, lambda: "last good checkpoint (epoch 4)")
    _bad_steps(s)  # nothing checked yet
    with pytest.raises(search.SearchDiverged) as e:
        s.read()
    assert str(e.value) == "loss is inf (arch step) at epoch 5 step 1; search stopped, last good checkpoint (epoch 4)"
    assert isinstance(e.value, ValueError)
    t = search.EpochSums(CPU, False, lambda: "k")
    t.add_weight(steps.WeightOut(torch.tensor(1.0), torch.tensor(1), 2), 0, 0)
    t.add_weight(steps.WeightOut(torch.tensor(float("nan")), torch.tensor(0), 2), 0, 1)
    with pytest.raises(search.SearchDiverged, match=r"^loss is nan \(weight step\) at epoch 1 step 2; search stopped, k$"):
        t.read()


def test_epoch_sums_checking_each_step_refuse_at_the_step():
    s = search.EpochSums(CPU, True, lambda: "kept")
    with pytest.raises(search.SearchDiverged, match=r"^loss is inf \(arch step\) at epoch 5 step 1; search stopped, kept$"):
        _bad_steps(s)
    assert s.v["a_steps"] == 1 and s.v["w_n"] == 2  # the weight step after it never came


@pytest.mark.parametrize("device, each_step", [("cpu", True), ("cuda", False)])
def test_the_epoch_sums_live_on_the_state_device_and_check_each_step_only_off_a_gpu(template, monkeypatch, device,
                                                                                    each_step):
    """Where the metrics are summed and when they are checked is decided here, from the state's
    device alone (no CUDA needed: the epoch is stopped as soon as its sums are made)."""
    made = []

    class Stop(Exception):
        pass

    def sums(dev, check_each_step, kept):
        made.append((dev, check_each_step, kept()))
        raise Stop

    cfg = _cfg(**LOOP_CFG)
    state = _state(template, cfg, 1)
    monkeypatch.setattr(search.SearchState, "device", property(lambda self: torch.device(device)))
    monkeypatch.setattr(search, "EpochSums", sums)
    with pytest.raises(Stop):
        search.search_epoch(state, LUT, cfg, _Data(), 1, 3, None)
    assert made == [(torch.device(device), each_step, "no checkpoint was written yet")]


def test_each_logging_point_gets_the_steps_since_the_previous_one_and_the_arch_state(template, monkeypatch):
    """``values`` handed to ``loop.step`` (what a RunLoop logs at its logging points; here every step):
    the weight step's loss and accuracy since the previous point, the arch step's losses and sampled
    latency where one ran, T and the lr, and ``tb_log.arch_scalars`` of the net, LUT and target now."""
    from tfnas_core.runs import tb_log

    cfg = _cfg(**LOOP_CFG)
    state = _state(template, cfg, 1)
    calls = {"weight_step": [], "arch_step": []}
    for name in calls:
        _spy(monkeypatch, steps, name, calls[name])

    class Logging(_Loop):
        def __init__(self):
            super().__init__()
            self.logged, self.arch_now = [], []

        def step(self, epoch, step, phase, values):
            super().step(epoch, step, phase, values)
            self.logged.append(dict(values()))
            self.arch_now.append(tb_log.arch_scalars(state.net, LUT, cfg.target_ms))

    loop = Logging()
    rec = search.search_epoch(state, LUT, cfg, _Data(), 1, 3, loop)
    ws, (arch,) = [r for _, _, r in calls["weight_step"]], [r for _, _, r in calls["arch_step"]]
    assert len(loop.logged) == 3
    for i, (got, w, now) in enumerate(zip(loop.logged, ws, loop.arch_now)):
        assert got["train/loss"] == pytest.approx(w["loss"], rel=1e-6)
        assert got["train/acc"] == pytest.approx(100 * w["correct"] / w["n"], rel=1e-12)
        assert (got["schedule/temperature"], got["schedule/lr"]) == (rec["temperature"], rec["lr"])
        assert {k: got[k] for k in now} == now and now["latency/target_ms"] == 14.0
        arch_keys = {k for k in got if k.startswith("arch/")}
        if i == 1:  # the arch step ran after the 2nd weight step (arch_every=2), and only there
            assert {k: got[k] for k in arch_keys} == pytest.approx(
                {"arch/loss": arch["loss"], "arch/ce": arch["ce"], "arch/lat_loss": arch["lat_loss"],
                 "arch/sampled_ms": arch["lat_ms"]}, rel=1e-6)
        else:
            assert arch_keys == set()


def test_every_batch_goes_to_the_state_device_and_arch_steps_follow_arch_every(template, monkeypatch):
    """The batches of both steps are moved to the state's device (here "meta", which a CPU can
    name: the steps are recorded, not run), and an arch step follows every ``arch_every``-th weight
    step (the 3rd of 3 at arch_every=3, none before it)."""
    cfg = _cfg(**{**LOOP_CFG, "arch_every": 3})
    state = _state(template, cfg, 1)
    seen = []

    class Sums:
        def __init__(self, *a, **k):
            pass

        def add_weight(self, *a):
            pass

        add_arch = add_weight

        def read(self):
            return {k: 1 for k in ("w_loss", "w_n", "w_correct", "a_steps", "a_loss", "a_ce", "a_lat_loss", "a_lat_ms")}

    def step(kind):
        def record(net, x, y, *a, **k):
            seen.append((kind, x.device.type, y.device.type))
        return record

    monkeypatch.setattr(search.SearchState, "device", property(lambda self: torch.device("meta")))
    monkeypatch.setattr(search, "EpochSums", Sums)
    monkeypatch.setattr(steps, "weight_step", step("weight"))
    monkeypatch.setattr(steps, "arch_step", step("arch"))
    monkeypatch.setattr(steps, "validate", lambda net, batches, gen, device, n: seen.append(("validate", device)) or {})
    monkeypatch.setattr(steps, "elasticity", lambda net, lut, target, opt, enabled: seen.append(("es", opt, enabled)) or {})
    search.search_epoch(state, LUT, cfg, _Data(), 1, 3, None)
    assert seen == [("weight", "meta", "meta")] * 3 + [("arch", "meta", "meta"), ("validate", torch.device("meta")),
                                                      ("es", state.w_opt, True)]  # ES permutes the ω momentum


def test_epoch_sums_start_as_float64_and_int64_zeros_on_their_device():
    """The sums are float64 (losses, latency) and int64 (correct) zeros on the given device (here
    "meta": a CPU names it without a GPU), the counts plain ints, nothing checked yet."""
    s = search.EpochSums(torch.device("meta"), False, _kept)
    assert {k: (v.dtype, v.device.type, tuple(v.shape)) for k, v in s.v.items() if isinstance(v, torch.Tensor)} == {
        **{k: (torch.float64, "meta", ()) for k in search.EpochSums.FLOATS}, "w_correct": (torch.int64, "meta", ())}
    assert (s.v["w_n"], s.v["a_steps"], s.checks, s.check_each_step, s.kept) == (0, 0, [], False, _kept)
