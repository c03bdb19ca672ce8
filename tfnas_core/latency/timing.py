"""The latency protocol: how one module, or several compared with each other, are timed.

Paper conventions: CPU batch 1 on one thread (Appendix G), GPU batch 32 (Appendix B); the paper
reports means.  On a shared machine the mean (and even the median) of wall-clock runs is not
reproducible, so the protocol here is:

* **Interleaved rounds.**  Networks that are compared are timed in rounds ``A B C D A B C D ...``
  (one timed run of each per round), so a change of machine speed during the measurement hits
  all of them alike instead of whichever happened to run then.  Each timed run follows one
  untimed run of the same module (``rewarm``): the latency we want is the steady state of a
  module run again and again (the paper's "many runs"), and the first run after the others
  ran finds its weights evicted.  Measured here: TF-NAS-C 16.1 ms timed warm (two networks
  interleaved) vs 21.2 ms as one of 30 networks interleaved without a re-warm run.
* **Warm-up by time.**  Untimed rounds for at least ``warmup_s`` seconds (and ``warmup`` runs):
  the first network a process runs is 1.5-3x slow here (allocator, page faults, caches).
* **Clock.**  CPU with one thread: the thread's CPU time (``time.thread_time``), which is the
  latency of the run minus the time the scheduler gave the core to someone else; measured on
  this 2-core machine with three busy loops beside it, TF-NAS-B's wall-clock minimum doubled
  (20.3 -> 54.4 ms) while its thread-time minimum rose 7-30 %.  On an idle machine the two
  clocks agree within 0.1 %.  With several threads the work leaves the calling thread, so the
  wall clock is used.  CUDA: CUDA events around each run.
* **Estimator: the minimum** of the timed runs (``ms``).  Noise on a shared machine is one-sided
  (preemption, cache pollution by neighbours, a busy SMT sibling only ever add time), so the
  smallest run is the closest to the uncontended cost and the least dependent on what the
  neighbours do; a quantile (``"q10"``, ``"q25"``, ...) or ``"median"`` can be asked for.  The
  median, inter-quartile range and mean are reported beside it.
* **CUDA.**  By default each module is captured once in a CUDA graph and the graph is replayed
  between two CUDA events, with ``cudnn.benchmark`` on: kernel-launch overhead and host jitter
  leave the measurement.  ``cuda_mode="eager"`` times plain calls between events.
"""
from __future__ import annotations

import contextlib
import math
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable, Mapping

import torch
from torch import nn

from tfnas_core.utils.checks import check_threads

DEFAULT_BATCH = {"cpu": 1, "cuda": 32}
ESTIMATOR = "min"
CLOCKS = ("auto", "thread", "wall")
CUDA_MODES = ("graph", "eager")


@dataclass(frozen=True)
class Timing:
    ms: float  # the protocol's estimate (``estimator`` of the timed runs)
    median_ms: float
    iqr_ms: float
    mean_ms: float
    min_ms: float
    runs: int
    estimator: str = ESTIMATOR
    clock: str = "wall"

    def to_dict(self) -> dict:
        return asdict(self)


@contextlib.contextmanager
def cpu_threads(n: int | None, name: str = "threads"):
    """Temporarily set torch's intra-op thread count (``None``: leave it).

    More threads than this process may use cores (``checks.check_threads``; setting named
    ``name`` in the message) are refused before torch is touched: torch/OpenMP end in a
    segmentation fault at 10^5 threads, and threads beyond the cores only wait for each other.
    Runs enter this before they create their folder, so a refused run leaves nothing behind."""
    check_threads(n, name)
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@contextlib.contextmanager
def cudnn_benchmark(on: bool):
    """Temporarily set ``torch.backends.cudnn.benchmark`` (autotuned convolution algorithms)."""
    old = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = on
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = old


def measurement_device(device: str) -> torch.device:
    """The device a measurement names (``"cpu"`` or ``"cuda"``, given explicitly: timing never falls
    back); a run's device is chosen by ``config.resolve_device``."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch sees no CUDA device")
    return torch.device(device)


def check_estimator(estimator: str) -> str:
    """``"min"``, ``"median"`` or ``"qNN"`` (the NN-th percentile, 1..99); anything else is refused."""
    if estimator in ("min", "median"):
        return estimator
    if estimator.startswith("q") and estimator[1:].isdigit() and 1 <= int(estimator[1:]) <= 99:
        return estimator
    raise ValueError(f"unknown latency estimator {estimator!r}; use 'min', 'median' or 'qNN' (e.g. q10)")


def quantile(xs: list[float], q: float) -> float:
    """Linearly interpolated quantile ``q`` in [0, 1] of ``xs`` (numpy's default method)."""
    s = sorted(xs)
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def estimate(times: list[float], estimator: str = ESTIMATOR) -> float:
    """The protocol's estimate of a list of per-run times (see the module docstring)."""
    check_estimator(estimator)
    if not times:
        raise ValueError("no timed runs to estimate from")
    if estimator == "min":
        return min(times)
    if estimator == "median":
        return statistics.median(times)
    return quantile(times, int(estimator[1:]) / 100)


def summarise(times: list[float], estimator: str = ESTIMATOR, clock: str = "wall") -> Timing:
    iqr = quantile(times, 0.75) - quantile(times, 0.25)
    return Timing(estimate(times, estimator), statistics.median(times), iqr, statistics.fmean(times), min(times),
                  len(times), estimator, clock)


def resolve_clock(clock: str, device: torch.device) -> str:
    """``auto``: the thread's CPU time on CPU with one intra-op thread, else the wall clock (CUDA:
    events, reported as ``cuda-event``)."""
    if clock not in CLOCKS:
        raise ValueError(f"unknown clock {clock!r}; known: {', '.join(CLOCKS)}")
    if device.type == "cuda":
        return "cuda-event"
    if clock == "auto":
        return "thread" if torch.get_num_threads() == 1 else "wall"
    if clock == "thread" and torch.get_num_threads() != 1:
        raise ValueError(f"clock 'thread' needs one intra-op thread; torch uses {torch.get_num_threads()}")
    return clock


Runner = Callable[[], float]  # one timed run, returning milliseconds


def _cpu_runner(module: nn.Module, x: torch.Tensor, clock: str) -> Runner:
    tick = time.thread_time if clock == "thread" else time.perf_counter

    def run() -> float:
        t0 = tick()
        module(x)
        return (tick() - t0) * 1e3

    return run


def _cuda_eager_runner(module: nn.Module, x: torch.Tensor) -> Runner:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def run() -> float:
        start.record()
        module(x)
        end.record()
        end.synchronize()
        return start.elapsed_time(end)

    return run


def _cuda_graph_runner(module: nn.Module, x: torch.Tensor) -> Runner:
    """Capture ``module(x)`` once (after three runs on a side stream, as CUDA graphs require)
    and time each replay between CUDA events."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            module(x)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        module(x)
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def run() -> float:
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)

    return run


def make_runner(module: nn.Module, x: torch.Tensor, clock: str, cuda_mode: str) -> Runner:
    if x.is_cuda:
        if cuda_mode not in CUDA_MODES:
            raise ValueError(f"unknown CUDA timing mode {cuda_mode!r}; known: {', '.join(CUDA_MODES)}")
        return _cuda_graph_runner(module, x) if cuda_mode == "graph" else _cuda_eager_runner(module, x)
    return _cpu_runner(module, x, clock)


def run_rounds(runners: Mapping[str, Runner], rounds: int, warmup: int = 1, warmup_s: float = 0.0,
               min_time_s: float = 0.0, on_round: Callable[[], None] | None = None,
               rewarm: int | None = None) -> dict[str, list[float]]:
    """The interleaving: untimed rounds until ``warmup`` rounds and ``warmup_s`` seconds have
    passed, then timed rounds until ``rounds`` rounds and ``min_time_s`` seconds of them; in a
    round each runner (in order) runs ``rewarm`` times untimed, then once timed.  ``rewarm``
    defaults to 1 with several runners, 0 with one.  Returns the per-run times of every runner."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if rewarm is None:
        rewarm = 1 if len(runners) > 1 else 0
    t_end = time.perf_counter() + warmup_s
    done = 0
    while done < warmup or time.perf_counter() < t_end:
        for run in runners.values():
            run()
        done += 1
    times: dict[str, list[float]] = {name: [] for name in runners}
    t_end = time.perf_counter() + min_time_s
    while len(next(iter(times.values()))) < rounds or time.perf_counter() < t_end:
        for name, run in runners.items():
            for _ in range(rewarm):
                run()
            times[name].append(run())
        if on_round:
            on_round()
    return times


@torch.no_grad()
def time_interleaved(items: Mapping[str, tuple[nn.Module, torch.Tensor]], rounds: int = 20, warmup: int = 1,
                     warmup_s: float = 1.0, min_time_s: float = 0.0, estimator: str = ESTIMATOR,
                     clock: str = "auto", cuda_mode: str = "graph", cudnn_bench: bool = True,
                     on_round: Callable[[], None] | None = None) -> dict[str, Timing]:
    """Time every ``module(x)`` of ``items`` (eval mode) in interleaved rounds; see the module
    docstring for the protocol.  All inputs must be on one device."""
    if not items:
        raise ValueError("nothing to time")
    check_estimator(estimator)
    devices = {x.device.type for _, x in items.values()}
    if len(devices) != 1:
        raise ValueError(f"all inputs must be on one device, got {sorted(devices)}")
    device = next(iter(items.values()))[1].device
    used_clock = resolve_clock(clock, device)
    with cudnn_benchmark(cudnn_bench) if device.type == "cuda" else contextlib.nullcontext():
        runners = {}
        for name, (module, x) in items.items():
            module.eval()
            runners[name] = make_runner(module, x, used_clock, cuda_mode)
        times = run_rounds(runners, rounds, warmup, warmup_s, min_time_s, on_round)
    label = f"{used_clock}/{cuda_mode}" if device.type == "cuda" else used_clock
    return {name: summarise(ts, estimator, label) for name, ts in times.items()}


def time_module(module: nn.Module, x: torch.Tensor, warmup: int = 5, repeats: int = 20, min_time_s: float = 0.0,
                warmup_s: float = 0.0, estimator: str = ESTIMATOR, clock: str = "auto",
                cuda_mode: str = "graph") -> Timing:
    """Time one ``module(x)`` with the protocol: ``warmup`` runs and ``warmup_s`` seconds untimed,
    then at least ``repeats`` timed runs and ``min_time_s`` seconds of them."""
    return time_interleaved({"m": (module, x)}, repeats, warmup, warmup_s, min_time_s, estimator, clock,
                            cuda_mode)["m"]
