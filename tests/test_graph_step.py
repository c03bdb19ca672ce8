"""The arch step's CUDA-graph branch, checked on the CPU (issue 33, "CPU-reachable tests for device
logic").

``steps.arch_step`` hands the relaxed step to ``steps.graphed_arch_step`` when ``steps.uses_graph``
says so (asked for, relaxed, on a CUDA device); that function draws the eager step's Gumbel noise,
keys the graph by ``steps.graph_key`` and runs ``relaxed_body`` through the graph.  Everything but
the capture and replay themselves runs here, through ``_Replaying``: a CPU stand-in with
``cuda_graph.StepGraph``'s contract (at a new key the function runs, then ``before_capture``, and
the function is kept; at a known key the *kept* function runs on the new inputs, as a replay runs
what was captured).  So a key that misses a change (T, widths, optimiser, ...) replays a stale step
and the numbers part from the eager step's.  The real capture and replay:
``test_cuda_graph.py::test_graph_replays_the_eager_step_on_a_gpu`` (skips without CUDA).
"""
from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch

from tfnas_core.latency import lut as latency
from tfnas_core.search import config as search_config
from tfnas_core.search import cuda_graph
from tfnas_core.search import loop as search
from tfnas_core.search import samplers
from tfnas_core.search import steps
from tfnas_core.search.config import smoke
from tfnas_core.search.objectives import LatencyCost

CPU = torch.device("cpu")
LUT = latency.load(search_config.resolve_path(smoke().lut))
N = 6


def _cfg(**kw) -> search_config.SearchConfig:
    return search_config.fill_objective_defaults(replace(smoke(), **{"target_ms": 20.0, "objective": "c1", **kw}))


@pytest.fixture(scope="module")
def template():
    return search.build_supernet(_cfg(), 10, 1, CPU)


def _batch(seed: int = 0, n: int = N, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 16, 16, generator=g).to(dtype), torch.randint(0, 10, (n,), generator=g)


def _capturable(net, cfg):
    """The α/β Adam, flagged capturable.  ``graphed_arch_step`` reads the flag from the optimiser's
    defaults; torch steps a capturable Adam only on an accelerator, so the param groups keep the
    CPU setting they were built with (the update is the same Adam's)."""
    opt = search.build_optimizers(net, cfg)[2]
    opt.defaults["capturable"] = True
    return opt


class _Replaying:
    """``cuda_graph.StepGraph``'s contract on the CPU (see the module docstring), recording each
    call; it also checks that α/β have no gradients when a capture would start (the capture
    allocates them in the graph's memory pool)."""

    def __init__(self, net):
        self.net, self.key, self.kept = net, None, None
        self.calls: list[tuple] = []  # ("capture" | "replay", key, inputs, device)

    def run(self, key, fn, inputs, device, before_capture=lambda: None):
        self.calls.append(("capture" if key != self.key else "replay", key, dict(inputs), device))
        moved = {k: v.to(device) for k, v in inputs.items()}
        if key == self.key:
            return self.kept(**moved).clone()
        out = fn(**moved)
        before_capture()
        assert all(p.grad is None for p in self.net.arch_parameters()), "α/β gradients left before a capture"
        self.key, self.kept = key, fn
        return out


def _graphed(net, x, y, opt, gen, graph, cfg, temp):
    a = search.arch_step_args(cfg)
    return steps.graphed_arch_step(net, x, y, opt, LUT, gen, graph, temperature=temp, cost=a["cost"],
                                   grad_clip=a["grad_clip"]).numbers()


def _eager(net, x, y, opt, gen, cfg, temp):
    return steps.arch_step(net, x, y, opt, LUT, gen, temperature=temp, **search.arch_step_args(cfg)).numbers()


def _shrink(net):
    net.set_mid(0, 1, net.mids[0][1] - 4)  # a width change, as elasticity scaling makes one


def test_uses_graph_only_when_asked_relaxed_and_on_a_cuda_device():
    cuda = torch.device("cuda")  # a device object: no GPU needed
    assert steps.uses_graph(True, False, cuda) is True
    for graphed, hard, device in [(False, False, cuda), (True, True, cuda), (False, True, cuda),
                                  (True, False, CPU), (True, False, torch.device("meta"))]:
        assert steps.uses_graph(graphed, hard, device) is False, (graphed, hard, device)


def test_the_graph_key_changes_with_each_thing_a_capture_depends_on(template):
    net = copy.deepcopy(template)
    cfg = _cfg()
    opt = search.build_optimizers(net, cfg)[2]
    x, y = _batch()
    cost = search.arch_step_args(cfg)["cost"]
    base = dict(temperature=5.0, cost=cost, grad_clip=5.0)

    def key(n=net, xx=x, yy=y, o=opt, lut=LUT, **kw):
        return steps.graph_key(n, xx, yy, o, lut, **{**base, **kw})

    k = key()
    assert key(xx=x.clone(), yy=y.clone()) == k  # new batches of the same shapes replay
    assert key(n=copy.deepcopy(net)) == k  # the same widths
    changed = {"temperature": key(temperature=1.0), "batch size": key(xx=x[:-2]),
               "image size": key(xx=torch.zeros(N, 1, 8, 8)), "dtype": key(xx=x.double()),
               "labels": key(yy=y[:-2]), "optimiser": key(o=search.build_optimizers(net, cfg)[2]),
               "LUT": key(lut=copy.copy(LUT)), "objective": key(cost=LatencyCost("abs", 20.0, 0.1)),
               "clip": key(grad_clip=1.0)}
    for what, other in changed.items():
        assert other != k, what
    before = [list(m) for m in net.mids]
    _shrink(net)
    assert key() != k and [list(m) for m in net.mids] != before  # widths changed in place: the key kept a copy
    assert k[0] == tuple(map(tuple, before))


def test_graphed_arch_step_is_the_eager_step_captured_per_key_and_replayed(template):
    """Six steps through the stand-in: captured at step 1, replayed at 2-3, captured again at a new
    T (4) and at new widths (5), replayed at 6; each equal to the eager relaxed step, bit for bit,
    from the same generator."""
    cfg = _cfg()
    net, twin = copy.deepcopy(template), copy.deepcopy(template)
    opt, opt2 = _capturable(net, cfg), search.build_optimizers(twin, cfg)[2]
    gen, gen2 = samplers.make_generator(5), samplers.make_generator(5)
    graph = _Replaying(net)
    for i, temp in enumerate((5.0, 5.0, 5.0, 1.0, 1.0, 1.0)):
        if i == 4:
            _shrink(net), _shrink(twin)
        x, y = _batch(i)
        got, want = _graphed(net, x, y, opt, gen, graph, cfg, temp), _eager(twin, x, y, opt2, gen2, cfg, temp)
        assert got == want, i
        for a, b in zip(net.arch_parameters(), twin.arch_parameters()):
            assert torch.equal(a, b), i
        kind, key, inputs, device = graph.calls[-1]
        assert key == steps.graph_key(net, x, y, opt, LUT, temperature=temp, grad_clip=cfg.a_grad_clip,
                                      cost=search.arch_step_args(cfg)["cost"])
        assert list(inputs) == ["x", "y", "noise"] and inputs["x"] is x and inputs["y"] is y and device == x.device
    assert [c[0] for c in graph.calls] == ["capture", "replay", "replay", "capture", "capture", "replay"]
    assert torch.equal(gen.get_state(), gen2.get_state())  # the same draws, no more
    assert all(p.grad is None for p in net.weight_parameters())


def test_graphed_arch_step_returns_the_eager_steps_types(template):
    cfg = _cfg()
    net = copy.deepcopy(template)
    x, y = _batch(3)
    a = search.arch_step_args(cfg)
    r = steps.graphed_arch_step(net, x, y, _capturable(net, cfg), LUT, samplers.make_generator(1), _Replaying(net),
                                temperature=2.0, cost=a["cost"], grad_clip=a["grad_clip"])
    assert isinstance(r, steps.ArchOut) and r.n == N and type(r.n) is int
    assert all(getattr(r, k).dim() == 0 and not getattr(r, k).requires_grad for k in steps.ARCH_OUTPUTS)


def test_graphed_arch_step_refuses_an_adam_that_is_not_capturable(template):
    cfg = _cfg()
    net = copy.deepcopy(template)
    opt = search.build_optimizers(net, cfg)[2]
    assert not opt.defaults.get("capturable")
    gen = samplers.make_generator(1)
    state, alphas = gen.get_state(), [a.detach().clone() for a in net.arch_parameters()]
    graph = _Replaying(net)
    with pytest.raises(ValueError, match=r"^cuda_graphs needs a capturable Adam for α/β \(search\.loop\.build_optimizers"
                                         r" builds one when cfg\.cuda_graphs is on and the supernet is on a GPU\)$"):
        _graphed(net, *_batch(), opt, gen, graph, cfg, 5.0)
    assert not graph.calls and torch.equal(gen.get_state(), state)  # nothing drawn, run or updated
    assert all(torch.equal(a, b) for a, b in zip(net.arch_parameters(), alphas))


@pytest.mark.parametrize("graphed,hard,through_graph", [(True, False, True), (False, False, False),
                                                        (True, True, False)])
def test_arch_step_takes_the_graph_branch_when_uses_graph_says_so(template, monkeypatch, graphed, hard,
                                                                  through_graph):
    """``arch_step`` on a device ``uses_graph`` takes for CUDA: the relaxed step goes through the
    net's graph (``cuda_graph.for_net``) with the step's own arguments, a hard or ungraphed step
    stays eager; either way the numbers are the eager step's."""
    cfg = _cfg(arch_step="hard" if hard else "relaxed", cuda_graphs=graphed)
    net, twin = copy.deepcopy(template), copy.deepcopy(template)
    opt, opt2 = _capturable(net, cfg), search.build_optimizers(twin, replace(cfg, cuda_graphs=False))[2]
    gen, gen2 = samplers.make_generator(2), samplers.make_generator(2)
    batches = [_batch(1), _batch(2)]
    want = [_eager(twin, x, y, opt2, gen2, replace(cfg, cuda_graphs=False), 3.0) for x, y in batches]
    asked, nets, graphs = [], [], []
    real = steps.uses_graph
    monkeypatch.setattr(steps, "uses_graph", lambda g, h, d: asked.append((g, h, d)) or real(g, h, torch.device("cuda")))

    def for_net(n):
        nets.append(n)
        graphs.append(graphs[-1] if graphs else _Replaying(n))
        return graphs[-1]

    monkeypatch.setattr(cuda_graph, "for_net", for_net)
    assert [_eager(net, x, y, opt, gen, cfg, 3.0) for x, y in batches] == want
    assert asked == [(graphed, hard, CPU)] * 2
    assert nets == ([net, net] if through_graph else [])
    if through_graph:
        assert [c[0] for c in graphs[0].calls] == ["capture", "replay"] and graphs[0].calls[0][1][1] == 3.0
