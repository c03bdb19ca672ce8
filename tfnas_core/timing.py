"""Measuring the latency of a module properly: warm-up, repeated timed runs, CUDA synchronisation.

CPU convention (paper Appendix G): batch 1, one thread.  CUDA convention (Appendix B): batch 32,
with ``torch.cuda.synchronize()`` around every timed run (the original code does not
synchronise, so its kernel launches could overlap the clock).  We report the median and the
inter-quartile range of the per-run times; the mean is kept too, as the paper reports means.
"""
from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

DEFAULT_BATCH = {"cpu": 1, "cuda": 32}


@dataclass(frozen=True)
class Timing:
    median_ms: float
    iqr_ms: float
    mean_ms: float
    min_ms: float
    runs: int

    def to_dict(self) -> dict:
        return asdict(self)


@contextlib.contextmanager
def cpu_threads(n: int | None):
    """Temporarily set torch's intra-op thread count (``None``: leave it)."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def resolve_device(device: str) -> torch.device:
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch sees no CUDA device")
    return torch.device(device)


def _quartiles(xs: list[float]) -> tuple[float, float]:
    if len(xs) < 2:
        return xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[2]


@torch.no_grad()
def time_module(
    module: nn.Module,
    x: torch.Tensor,
    warmup: int = 5,
    repeats: int = 20,
    min_time_s: float = 0.0,
    warmup_s: float = 0.0,
) -> Timing:
    """Time ``module(x)`` in eval mode; ``x`` decides the device.  At least ``warmup`` untimed
    runs and ``warmup_s`` seconds of them, then at least ``repeats`` timed runs and more until
    ``min_time_s`` of timed runs have passed.

    The time-based warm-up matters for the first network a process times: measured here, the
    first 30-run median of a network was 1.5-3x its later medians (allocator, page faults,
    caches), which five warm-up runs do not absorb.
    """
    module.eval()
    cuda = x.is_cuda
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    t_end = time.perf_counter() + warmup_s
    done = 0
    while done < warmup or time.perf_counter() < t_end:
        module(x)
        done += 1
    sync()
    times: list[float] = []
    spent = 0.0
    while len(times) < repeats or spent < min_time_s:
        t0 = time.perf_counter()
        module(x)
        sync()
        dt = time.perf_counter() - t0
        times.append(dt * 1e3)
        spent += dt
    q1, q3 = _quartiles(times)
    return Timing(statistics.median(times), q3 - q1, statistics.fmean(times), min(times), len(times))
