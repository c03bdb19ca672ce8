"""The GPU-side search code (issue 8), checked where it can be on the CPU.

``steps.relaxed_body`` is what a CUDA graph captures: run eagerly it must be the arch step
bit for bit, and it must neither read a value back to the host nor build a tensor from host data
(either breaks a capture).  The search loop's deferred metrics (on a GPU no step waits for its loss:
``loop.EpochSums`` without ``check_each_step``) must give the same sums as reading each step at once
(and stop at the same non-finite loss: test_search_steps.py).  The capture and replay themselves
need a GPU: that test skips here.
"""
from __future__ import annotations

import copy
import traceback
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from tfnas_core.search import cuda_graph
from tfnas_core.latency import lut as latency
from tfnas_core.latency import relaxed as relaxed_latency
from tfnas_core.search import samplers
from tfnas_core.search import loop as search
from tfnas_core.search import steps
from tfnas_core.search import config as search_config
from tfnas_core.search.config import smoke
from tfnas_core.nn.supernet import DEPTH_SPACES

ROOT = Path(__file__).resolve().parents[1]
CPU_LUT = ROOT / "tfnas_core" / "luts" / "cpu_local.json"
QUIET = lambda m: None  # noqa: E731


def _setup(depth_space="sink", device="cpu", **kw):
    cfg = search_config.fill_objective_defaults(replace(smoke(), depth_space=depth_space, target_ms=20.0, **kw))
    net = search.build_supernet(cfg, 10, 1, torch.device(device))
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 1, 16, 16, generator=g), torch.randint(0, 10, (8,), generator=g)
    return cfg, net, x.to(device), y.to(device)


def _arch(net, x, y, opt, lut, cfg, temp, gen) -> steps.ArchOut:
    return steps.arch_step(net, x, y, opt, lut, gen, temperature=temp, **search.arch_step_args(cfg))


def _body(net, x, y, noise, opt, lut, cfg, temp):
    return steps.relaxed_body(net, x, y, noise, opt, lut, temperature=temp, cost=search.arch_step_args(cfg)["cost"],
                              grad_clip=cfg.a_grad_clip)


def _shrink_one_op(net):
    """A width change as elasticity scaling makes one (the graph's key changes with it)."""
    net.set_mid(0, 1, net.mids[0][1] - 4)


@pytest.mark.parametrize("depth_space", DEPTH_SPACES)
@pytest.mark.parametrize("objective", ["abs", "eq9", "c1", "c2"])
def test_graph_body_is_the_eager_arch_step(depth_space, objective):
    cfg, net, x, y = _setup(depth_space, objective=objective)
    twin = copy.deepcopy(net)
    lut = latency.load(CPU_LUT)
    _, _, opt = search.build_optimizers(net, cfg)
    _, _, opt2 = search.build_optimizers(twin, cfg)
    gen, gen2 = samplers.make_generator(5), samplers.make_generator(5)
    for i, temp in enumerate((5.0, 5.0, 1.0)):
        if i == 2:
            _shrink_one_op(net), _shrink_one_op(twin)
        r = _arch(net, x, y, opt, lut, cfg, temp, gen).numbers()
        noise = samplers.relaxed_noise(list(twin.alphas), gen2)
        vec = _body(twin, x, y, noise, opt2, lut, cfg, temp)
        got = dict(zip(steps.ARCH_OUTPUTS, vec.tolist()))
        for k in ("loss", "ce", "lat_loss", "lat_ms"):
            assert got[k] == pytest.approx(r[k], rel=1e-6, abs=1e-7), k  # vec is float32; r holds float32 values
            assert torch.tensor(r[k], dtype=torch.float32).item() == got[k], k  # ... and they are the same float32
        assert int(got["correct"]) == r["correct"]
        for a, b in zip(net.arch_parameters(), twin.arch_parameters()):
            assert torch.equal(a, b)
    assert torch.equal(gen.get_state(), gen2.get_state())  # the same draws were taken


class _HostReads(TorchDispatchMode):
    """Counts what a CUDA graph cannot capture: reading a tensor's value on the host
    (``.item()``, ``bool()``, ``int()``) and tensors built from host data (``torch.tensor(list)``),
    with where each came from; the optimiser's own reads are left out (on the CPU Adam keeps its
    step count on the host; the capturable Adam the GPU path builds does not)."""

    WATCH = ("aten._local_scalar_dense", "aten.lift_fresh", "aten.lift_fresh_copy", "aten.nonzero")

    def __init__(self):
        super().__init__()
        self.seen = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func.overloadpacket)
        if name in self.WATCH:
            stack = traceback.extract_stack()
            if not any("torch/optim" in f.filename for f in stack):
                here = [f for f in stack if "tfnas_core" in f.filename]
                self.seen[(name, f"{here[-1].filename.split('/')[-1]}:{here[-1].lineno}" if here else "?")] += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("depth_space", DEPTH_SPACES)
def test_graph_body_reads_nothing_back(depth_space):
    cfg, net, x, y = _setup(depth_space)
    lut = latency.load(CPU_LUT)
    _, _, opt = search.build_optimizers(net, cfg)
    gen = samplers.make_generator(0)
    _body(net, x, y, samplers.relaxed_noise(list(net.alphas), gen), opt, lut, cfg, 5.0)  # warm-up
    noise = samplers.relaxed_noise(list(net.alphas), gen)
    with _HostReads() as spy:
        _body(net, x, y, noise, opt, lut, cfg, 5.0)
    assert not spy.seen, dict(spy.seen)
    r = _arch(net, x, y, opt, lut, cfg, 5.0, gen)
    with _HostReads() as spy:  # the spy does see them: reading the step's numbers
        r.numbers()
    assert spy.seen


@torch.no_grad()
def test_latency_tensors_follow_the_widths():
    """The device-side LUT latencies are cached per widths: a width change must be seen."""
    cfg, net, x, y = _setup()
    lut = latency.load(CPU_LUT)
    w = [torch.full((len(net.op_names),), 1 / len(net.op_names)) for _ in range(net.num_layers)]
    before = float(relaxed_latency.supernet_latency(net, lut, w, net.depth_weights()))
    _shrink_one_op(net)
    after = float(relaxed_latency.supernet_latency(net, lut, w, net.depth_weights()))
    lats = [torch.tensor(t) for t in relaxed_latency.layer_latencies(net, lut)]
    fresh = float(relaxed_latency.expected_latency(lut.base, w, lats, net.depth_weights(), net.stage_sizes))
    assert after == fresh and after < before


@pytest.mark.parametrize("searching", [False, True], ids=["warmup", "search"])
def test_reading_the_steps_at_the_end_gives_the_sums_read_at_once(searching):
    """Twin nets, the same steps: the sums checked and read at every step (the CPU) equal those
    read once at the end (a GPU), bit for bit, and the steps update the nets the same way."""
    cfg, net, x, y = _setup()
    twin = copy.deepcopy(net)
    lut = latency.load(CPU_LUT)
    sums = []
    for n, each in ((net, True), (twin, False)):
        w_opt, _, a_opt = search.build_optimizers(n, cfg)
        gen = samplers.make_generator(3)
        s = search.EpochSums(torch.device("cpu"), each, lambda: "kept")
        for step in range(3):
            s.add_weight(steps.weight_step(n, x, y, w_opt, gen, **search.weight_step_args(cfg, searching)), 0, step)
            if searching:
                s.add_arch(_arch(n, x, y, a_opt, lut, cfg, 5.0, gen), 0, step)
        assert len(s.checks) == (0 if each else 3 * (1 + searching))
        sums.append(s.read())
    assert sums[0] == sums[1] and sums[0]["w_n"] == 3 * len(y)
    for p, q in zip(net.parameters(), twin.parameters()):
        assert torch.equal(p, q)


def _tiny(tmp_path, **kw):
    base = dict(steps_per_epoch=2, val_batches=1, split_dir=str(tmp_path / "splits"))
    return search_config.check(replace(smoke(), **{**base, **kw}))


@pytest.mark.slow
def test_cuda_graphs_off_the_gpu_change_nothing(tmp_path):
    """On a CPU the flag has no effect (and it is not part of the run key: like ``threads``)."""
    cfg = _tiny(tmp_path)
    search.run(cfg, tmp_path / "off", log=QUIET)
    search.run(replace(cfg, cuda_graphs=True), tmp_path / "on", log=QUIET)
    assert (tmp_path / "off" / "spec.json").read_text() == (tmp_path / "on" / "spec.json").read_text()
    assert "cuda_graphs" in search_config.RESUME_FREE_KEYS


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: capture and replay run only there")
def test_graph_replays_the_eager_step_on_a_gpu():
    cfg, net, x, y = _setup(device="cuda", cuda_graphs=True)
    twin = copy.deepcopy(net)
    lut = latency.load(CPU_LUT)
    _, _, opt = search.build_optimizers(net, cfg)
    _, _, opt2 = search.build_optimizers(twin, replace(cfg, cuda_graphs=False))
    assert opt.defaults["capturable"] and not opt2.defaults["capturable"]
    gen, gen2 = samplers.make_generator(5), samplers.make_generator(5)
    for i in range(6):
        if i == 4:
            _shrink_one_op(net), _shrink_one_op(twin)
        r = _arch(net, x, y, opt, lut, cfg, 5.0, gen).numbers()
        s = _arch(twin, x, y, opt2, lut, replace(cfg, cuda_graphs=False), 5.0, gen2).numbers()
        for k in ("loss", "ce", "lat_loss", "lat_ms"):
            assert r[k] == pytest.approx(s[k], rel=1e-4, abs=1e-5), (i, k)
        for a, b in zip(net.arch_parameters(), twin.arch_parameters()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    g = cuda_graph.for_net(net)
    assert g.captures == 2 and g.replays == 4  # captured at steps 1 and 5, replayed at 2-4 and 6
