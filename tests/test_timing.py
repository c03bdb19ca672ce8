"""The latency protocol's logic: interleaving, re-warm runs, estimators, clocks, CUDA modes."""
from __future__ import annotations

import statistics

import pytest
import torch
from torch import nn

from tfnas_core.latency import timing


def test_rounds_interleave_with_one_rewarm_run_before_each_timed_run():
    log = []

    def runner(name):
        def run():
            log.append(name)
            return float(len(log))
        return run

    times = timing.run_rounds({"A": runner("A"), "B": runner("B"), "C": runner("C")}, rounds=2, warmup=1)
    assert log[:3] == ["A", "B", "C"]  # one untimed warm-up round
    assert log[3:] == ["A", "A", "B", "B", "C", "C"] * 2  # per round: re-warm, then the timed run
    assert times == {"A": [5.0, 11.0], "B": [7.0, 13.0], "C": [9.0, 15.0]}  # each timed run is the 2nd of its pair


def test_a_single_runner_needs_no_rewarm_and_rounds_extend_to_min_time():
    calls = []
    times = timing.run_rounds({"A": lambda: calls.append(1) or 1.0}, rounds=3, warmup=2)
    assert len(calls) == 5 and times == {"A": [1.0, 1.0, 1.0]}
    times = timing.run_rounds({"A": lambda: 1.0}, rounds=1, warmup=0, min_time_s=0.05)
    assert len(times["A"]) > 1
    with pytest.raises(ValueError, match="rounds must be >= 1"):
        timing.run_rounds({"A": lambda: 1.0}, rounds=0)


def test_estimators():
    xs = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert timing.estimate(xs, "min") == 1.0
    assert timing.estimate(xs, "median") == 3.0
    assert timing.estimate(xs, "q25") == 2.0 and timing.estimate(xs, "q10") == pytest.approx(1.4)
    assert timing.quantile(xs, 0.5) == statistics.median(xs)
    for bad in ("mean", "q0", "q100", "qx", "q"):
        with pytest.raises(ValueError, match="unknown latency estimator"):
            timing.estimate(xs, bad)
    t = timing.summarise(xs, "min", "thread")
    assert (t.ms, t.min_ms, t.median_ms, t.runs, t.iqr_ms) == (1.0, 1.0, 3.0, 5, 2.0)


def test_a_spike_moves_the_mean_not_the_estimate():
    xs = [10.0, 10.2, 10.1, 10.3, 80.0]  # one run preempted
    t = timing.summarise(xs)
    assert t.ms == 10.0 and t.mean_ms > 20


def test_clock_is_thread_time_only_with_one_thread():
    cpu = torch.device("cpu")
    with timing.cpu_threads(1):
        assert timing.resolve_clock("auto", cpu) == "thread"
    with timing.cpu_threads(2):
        assert timing.resolve_clock("auto", cpu) == "wall"
        with pytest.raises(ValueError, match="one intra-op thread"):
            timing.resolve_clock("thread", cpu)
    with pytest.raises(ValueError, match="unknown clock"):
        timing.resolve_clock("tsc", cpu)


def test_time_interleaved_times_every_item_in_eval_mode():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Dropout(0.5))
    net.train()
    with timing.cpu_threads(1):
        res = timing.time_interleaved({"a": (net, torch.randn(1, 3, 8, 8)), "b": (nn.Identity(), torch.randn(1))},
                                      rounds=3, warmup_s=0.0)
    assert set(res) == {"a", "b"} and not net.training
    assert all(t.runs == 3 and t.ms == t.min_ms > 0 and t.clock == "thread" for t in res.values())
    with pytest.raises(ValueError, match="nothing to time"):
        timing.time_interleaved({})


def test_cuda_mode_is_checked_and_cudnn_benchmark_restored():
    class FakeCudaTensor:  # make_runner decides by ``is_cuda`` and checks the mode before touching CUDA
        is_cuda = True

    with pytest.raises(ValueError, match="unknown CUDA timing mode"):
        timing.make_runner(nn.Identity(), FakeCudaTensor(), "wall", "graphs")
    old = torch.backends.cudnn.benchmark
    with timing.cudnn_benchmark(not old):
        assert torch.backends.cudnn.benchmark is (not old)
    assert torch.backends.cudnn.benchmark is old


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the CUDA-graph + event path is unmeasured here")
@pytest.mark.parametrize("mode", ["graph", "eager"])
def test_cuda_modes_time_a_conv(mode):
    net = nn.Conv2d(3, 8, 3).cuda()
    t = timing.time_module(net, torch.randn(32, 3, 32, 32, device="cuda"), warmup=2, repeats=5, cuda_mode=mode)
    assert t.ms > 0 and t.clock == f"cuda-event/{mode}"
