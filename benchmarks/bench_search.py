"""Benchmark: throughput of the search steps (paper Sec. 3.3 / Eq. 8 weight step, Eq. 3-7 arch step).

For each case (proxy x batch x threads) a fresh subprocess builds the supernet and times
``search.weight_step`` (bi-sampled: Gumbel + random path, one backward) and ``search.arch_step``
(``relaxed``: every op runs; ``hard``: one op per layer) on random inputs, after a warm-up step.
It reports images/s (median step), the FLOPs of one step (forward counted by
``torch.utils.flop_counter.FlopCounterMode``, 2 FLOPs per multiply-add; backward estimated as 2x /
1x forward for the weight / arch step, since the counter overcounts depthwise-conv backward) and
the achieved GFLOP/s against this machine's measured float32 matmul peak at the same thread
count, and the subprocess's peak memory (``ru_maxrss``; ``torch.cuda.max_memory_allocated`` on
CUDA).  Proxies: ``mini`` (the mini search profile: 28 px, width 0.25, stem stride 1, batch 64)
and ``paper`` (224 px, width 1.0, stem stride 2, 100 classes) - on a CPU the paper proxy runs at
a small batch (default 4), not the paper's 32.

Writes ``OUT/search_bench.json`` and ``OUT/search_bench.md``.  Run:
``python -m benchmarks.bench_search [--out results/bench] [--device cpu]``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def matmul_peak_gflops(threads: int, device: str = "cpu", n: int = 1024, repeats: int = 10) -> float:
    """Best-of float32 ``n x n`` matmul rate (GFLOP/s) at ``threads`` - the peak we compare with."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    best = float("inf")
    for _ in range(repeats + 2):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def _case_config(proxy: str, batch: int, device: str):
    from tfnas_core import search_config

    if proxy == "mini":
        cfg = search_config.mini()
        classes, chans = 10, 1
    else:
        cfg = search_config.paper()
        classes, chans = 100, 3
    cfg = replace(cfg, batch_size=batch, device=device, target_ms=20.0, lut=search_config.CPU_LUT)
    return cfg, classes, chans


def run_case(proxy: str, batch: int, threads: int, device: str, steps: int) -> dict:
    """One case, in this process (called in a fresh subprocess by ``main``)."""
    from torch.utils.flop_counter import FlopCounterMode

    from tfnas_core import latency, samplers, search, search_config

    torch.set_num_threads(threads)
    cfg, classes, chans = _case_config(proxy, batch, device)
    dev = torch.device(device)
    net = search.build_supernet(cfg, classes, chans, dev)
    w_opt, _, a_opt = search.build_optimizers(net, cfg)
    lut = latency.load(search_config.resolve_path(cfg.lut))
    gen = samplers.make_generator(0)
    x = torch.randn(batch, chans, cfg.resolution, cfg.resolution, device=dev)
    y = torch.randint(0, classes, (batch,), device=dev)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    steps_fn = {
        "weight_bi": lambda: search.weight_step(net, x, y, w_opt, cfg, gen, bi=True),
        "arch_relaxed": lambda: search.arch_step(net, x, y, a_opt, lut, replace(cfg, arch_step="relaxed"), 5.0, gen),
        "arch_hard": lambda: search.arch_step(net, x, y, a_opt, lut, replace(cfg, arch_step="hard"), 5.0, gen),
    }
    out = {"proxy": proxy, "batch": batch, "threads": threads, "device": device,
           "resolution": cfg.resolution, "width_mult": cfg.width_mult, "stem_stride": cfg.stem_stride}
    for name, fn in steps_fn.items():
        with FlopCounterMode(display=False) as fc:
            fn()  # also the warm-up step
        sync()
        # FlopCounterMode overcounts aten.convolution_backward for depthwise (grouped) convs (8.8x the
        # forward measured here), so the backward is estimated from the counted forward instead:
        # 2x forward for the weight step (input + weight gradients), 1x for the arch step (input only).
        fwd = sum(v for k, v in fc.get_flop_counts()["Global"].items() if "backward" not in str(k))
        flops = fwd * (3 if name.startswith("weight") else 2)
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        out[name] = {"step_s": med, "step_s_all": times, "images_per_s": batch / med,
                     "forward_gflop": fwd / 1e9, "gflop_per_step": flops / 1e9, "gflops": flops / med / 1e9}
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device == "cuda":
        out["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    return out


def _subprocess(proxy: str, batch: int, threads: int, device: str, steps: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench_search", "--one", proxy, str(batch), str(threads), device, str(steps)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def to_markdown(res: dict) -> str:
    lines = [
        "# Search-step benchmark", "",
        f"Machine: {res['machine']}; torch {res['torch']}; load average at start {res['loadavg_start']}, "
        f"at end {res['loadavg_end']} (2 cores shared with other developers: numbers are under that contention).", "",
        "Matmul peak (float32 1024x1024, best of 12): "
        + ", ".join(f"{k} thread(s) {v:.1f} GFLOP/s" for k, v in res["matmul_peak_gflops"].items()), "",
        "| proxy | batch | threads | step | median s | images/s | GFLOP/step | GFLOP/s | % of matmul peak | peak RSS MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in res["cases"]:
        peak = res["matmul_peak_gflops"][str(c["threads"])]
        for step in ("weight_bi", "arch_relaxed", "arch_hard"):
            s = c[step]
            lines.append(f"| {c['proxy']} ({c['resolution']} px, x{c['width_mult']}) | {c['batch']} | {c['threads']} | "
                         f"{step} | {s['step_s']:.3f} | {s['images_per_s']:.1f} | {s['gflop_per_step']:.3f} | "
                         f"{s['gflops']:.2f} | {100 * s['gflops'] / peak:.1f} | {c['peak_rss_mb']:.0f} |")
    lines += ["", "weight_bi: Gumbel path + random second path, summed losses, one backward, SGD step. "
              "arch_relaxed: every candidate op runs (soft Gumbel-softmax, Eq. 3), CE + latency loss, Adam step "
              "(weight gradients skipped). arch_hard: one op per layer, straight-through weights. "
              "FLOPs: forward counted by torch.utils.flop_counter (2 per multiply-add; it counts every op that ran, "
              "so the relaxed step's 8 candidates per layer), backward estimated as 2x forward (weight step) or "
              "1x (arch step, input gradients only), because the counter overcounts depthwise-conv backward. "
              "Step times are medians; a step far above its siblings in step_s_all (JSON) is contention. "
              "The paper proxy runs at a small batch on CPU (the paper uses 32 on a GPU).", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="results/bench")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--paper-batch", type=int, default=4, help="paper-proxy batch (small on CPU)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per measurement (after one warm-up)")
    ap.add_argument("--one", nargs=5, metavar=("PROXY", "BATCH", "THREADS", "DEVICE", "STEPS"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        proxy, batch, threads, device, steps = a.one
        print(json.dumps(run_case(proxy, int(batch), int(threads), device, int(steps))))
        return 0
    load0 = os.getloadavg()
    cases = [("mini", 64, 1), ("mini", 64, 2), ("paper", a.paper_batch, 1), ("paper", a.paper_batch, 2)]
    if a.device == "cuda":
        cases = [("mini", 64, 1), ("paper", 32, 1)]
    peaks = {str(t): matmul_peak_gflops(t, a.device) for t in sorted({c[2] for c in cases})}
    results = []
    for proxy, batch, threads in cases:
        steps = a.steps
        print(f"{proxy} batch {batch} threads {threads} ...", file=sys.stderr, flush=True)
        results.append(_subprocess(proxy, batch, threads, a.device, steps))
    name = torch.cuda.get_device_name() if a.device == "cuda" else (platform.processor() or platform.machine())
    res = {"machine": f"{name}, {os.cpu_count()} logical CPUs", "torch": torch.__version__,
           "loadavg_start": [round(v, 2) for v in load0], "loadavg_end": [round(v, 2) for v in os.getloadavg()],
           "matmul_peak_gflops": peaks, "cases": results, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    from tfnas_core.arch import atomic_write_text

    out = Path(a.out)
    atomic_write_text(out / "search_bench.json", json.dumps(res, indent=1) + "\n")
    atomic_write_text(out / "search_bench.md", to_markdown(res))
    print(to_markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
