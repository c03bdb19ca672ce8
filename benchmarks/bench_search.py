"""Benchmark: throughput of the search steps (paper Sec. 3.3 / Eq. 8 weight step, Eq. 3-7 arch step).

For each case (proxy x batch x threads) one fresh subprocess builds the supernet twice - the plain
path (``--set fast=false``) and the fast path (``tfnas_core.nn.fast_ops``, the default) - and, with
``--original DIR`` (a checkout of github.com/AberHu/TF-NAS), the released TF-NAS supernet, and times
them interleaved (plain, fast, original, plain, ...) after one warm-up step each, so that the drift of
a shared machine hits every implementation alike.  Steps: ``weight_bi`` (bi-sampled weight step:
Gumbel + random path, one backward, SGD step), ``arch_relaxed`` (every candidate runs, CE + latency
loss, Adam step) and ``arch_hard`` (one op per layer).  It reports the minimum and median step time,
images/s, the ratios to the plain path and to the original, the FLOPs of one step (forward counted
by ``torch.utils.flop_counter``, backward estimated) against this machine's measured float32 matmul
peak, and the process's peak memory.

Cases: ``mini`` (the mini search profile: 28 px, width 0.25, stem stride 1, 10 classes, 1 channel),
``cpu32`` (issue 8's CPU comparison with the original: 32 px, width 1.0, stem stride 2, 100
classes) and ``paper`` (224 px, width 1.0, 100 classes; on a CPU at a small batch).

Writes ``OUT/search_bench_<device>.json`` and ``.md``.  Run:
``python -m benchmarks.bench_search [--out results/bench] [--device cpu|cuda] [--original DIR]
[--cases mini:64:1 cpu32:32:2 ...]``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from benchmarks import provenance

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


CASES = {
    # name: (profile, resolution, width_mult, stem_stride, classes, channels) - batch and threads per case
    "mini": ("mini", 28, 0.25, 1, 10, 1),  # the mini search profile (Fashion-MNIST proxy)
    "cpu32": ("paper", 32, 1.0, 2, 100, 3),  # issue 8's CPU comparison with the original code
    "paper": ("paper", 224, 1.0, 2, 100, 3),  # the paper proxy (ImageNet-100 at 224 px)
}


def _case_config(case: str, batch: int, device: str):
    from tfnas_core.search import config as search_config

    profile, res, width, stride, classes, chans = CASES[case]
    cfg = replace(search_config.get_profile(profile), resolution=res, width_mult=width, stem_stride=stride,
                  batch_size=batch, device=device, target_ms=20.0, lut=search_config.CPU_LUT)
    return search_config.fill_objective_defaults(cfg), classes, chans


def _original_steps(original: str, cfg, classes: int, chans: int, x, y, dev):
    """The released TF-NAS supernet (a checkout of github.com/AberHu/TF-NAS at ``original``), fed the
    same batch: weight step = Gumbel path + random path, summed CE, one backward, SGD (its
    train_search.py); relaxed arch step = every op mixed with soft Gumbel-softmax, CE + |LAT/T - 1|,
    Adam.  Its op widths are the initial ones (3·cin / 6·cin), as ours at the start of a search."""
    sys.path.insert(0, str(Path(original).resolve()))
    from models.model_search import Network  # noqa: E402  (the original's module layout)

    from tfnas_core.arch.space import all_layer_geometries, get_space

    if chans != 3 or cfg.stem_stride != 2 or cfg.width_mult != 1.0:
        raise ValueError("the original supernet is fixed at 3 input channels, stem stride 2, width 1.0")
    space = get_space("tfnas")
    order = ["k3_e3", "k3_e6", "k5_e3", "k5_e6", "k3_e3_se", "k3_e6_se", "k5_e3_se", "k5_e6_se"]  # its PRIMITIVES
    geoms = list(all_layer_geometries(space))
    dddict, l = {}, 0
    for s, st in enumerate(space.searchable):
        dddict[f"stage{s + 1}"] = {}
        for b in range(st.depth[1]):
            dddict[f"stage{s + 1}"][f"block{b + 1}"] = {i: space.op(n).init_width(geoms[l].cin) for i, n in enumerate(order)}
            l += 1

    class _Lat(dict):  # every key, every width: 1 ms (timing only; the values do not change the work)
        def __getitem__(self, key):
            return 1.0 if key == "base" else _Widths()

    class _Widths:
        def __getitem__(self, mid):
            return 1.0

    net = Network(classes, dddict, _Lat()).to(dev)
    net.set_temperature(5.0)
    w_opt = torch.optim.SGD(net.weight_parameters(), lr=cfg.w_lr, momentum=cfg.w_momentum, weight_decay=cfg.w_wd)
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=cfg.a_lr, betas=(cfg.a_beta1, cfg.a_beta2), weight_decay=cfg.a_wd)
    ce = torch.nn.functional.cross_entropy

    def weight_bi():
        net.train()
        w_opt.zero_grad()
        loss = ce(net(x, sampling=True, mode="gumbel")[0], y) + ce(net(x, sampling=True, mode="random")[0], y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.weight_parameters(), cfg.w_grad_clip)
        w_opt.step()
        net.reset_switches()

    def arch_relaxed():
        net.train()
        a_opt.zero_grad()
        logits, lat = net(x, sampling=False)
        loss = ce(logits, y) + cfg.lam * torch.abs(lat / cfg.target_ms - 1.0)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.arch_parameters(), cfg.a_grad_clip)
        a_opt.step()

    return {"weight_bi": weight_bi, "arch_relaxed": arch_relaxed}


def run_case(case: str, batch: int, threads: int, device: str, steps: int, original: str | None = None) -> dict:
    """One case, in this process (called in a fresh subprocess by ``main``): every implementation's
    steps timed interleaved (plain, fast[, original], plain, fast, ...), so drift hits them alike."""
    from torch.utils.flop_counter import FlopCounterMode

    from tfnas_core.latency import lut as latency
    from tfnas_core.search import samplers
    from tfnas_core.search import loop as search
    from tfnas_core.search import config as search_config
    from tfnas_core.search import steps as search_steps

    torch.set_num_threads(threads)
    cfg, classes, chans = _case_config(case, batch, device)
    dev = torch.device(device)
    lut = latency.load(search_config.resolve_path(cfg.lut))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, chans, cfg.resolution, cfg.resolution, generator=g).to(dev)
    y = torch.randint(0, classes, (batch,), generator=g).to(dev)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    impls = {}
    for name, fast in (("plain", False), ("fast", True)):
        c = replace(cfg, fast=fast)
        net = search.build_supernet(c, classes, chans, dev)
        w_opt, _, a_opt = search.build_optimizers(net, c)
        gen = samplers.make_generator(0)
        impls[name] = {  # each step's numbers read at once, as the search does on a CPU
            "weight_bi": lambda net=net, o=w_opt, c=c, gen=gen: search_steps.weight_step(
                net, x, y, o, gen, **search.weight_step_args(c, True)).numbers(),
            "arch_relaxed": lambda net=net, o=a_opt, c=c, gen=gen: search_steps.arch_step(
                net, x, y, o, lut, gen, temperature=5.0, **search.arch_step_args(replace(c, arch_step="relaxed"))).numbers(),
            "arch_hard": lambda net=net, o=a_opt, c=c, gen=gen: search_steps.arch_step(
                net, x, y, o, lut, gen, temperature=5.0, **search.arch_step_args(replace(c, arch_step="hard"))).numbers(),
        }
    if device == "cuda":  # the GPU path: relaxed arch step from a CUDA graph, no host reads in either step
        c = replace(cfg, fast=True, cuda_graphs=True)
        net = search.build_supernet(c, classes, chans, dev)
        w_opt, _, a_opt = search.build_optimizers(net, c)
        gen = samplers.make_generator(0)
        impls["graphed"] = {  # nothing read back: the search reads a GPU's step metrics at the epoch's end
            "weight_bi": lambda net=net, o=w_opt, c=c, gen=gen: search_steps.weight_step(
                net, x, y, o, gen, **search.weight_step_args(c, True)),
            "arch_relaxed": lambda net=net, o=a_opt, c=c, gen=gen: search_steps.arch_step(
                net, x, y, o, lut, gen, temperature=5.0, **search.arch_step_args(replace(c, arch_step="relaxed"))),
        }
    if original:
        impls["original"] = _original_steps(original, cfg, classes, chans, x, y, dev)

    out = {"case": case, "batch": batch, "threads": threads, "device": device, "resolution": cfg.resolution,
           "width_mult": cfg.width_mult, "stem_stride": cfg.stem_stride, "steps": steps, "impls": {}}
    flops = {}
    for step in ("weight_bi", "arch_relaxed", "arch_hard"):
        with FlopCounterMode(display=False) as fc:
            impls["plain"][step]()  # plain path: the counted work (the fast path does the same)
        # FlopCounterMode overcounts aten.convolution_backward for depthwise (grouped) convs, so the
        # backward is estimated from the forward: 2x for the weight step, 1x for the arch step.
        fwd = sum(v for k, v in fc.get_flop_counts()["Global"].items() if "backward" not in str(k))
        flops[step] = (fwd, fwd * (3 if step.startswith("weight") else 2))
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = {(impl, step): [] for impl in impls for step in impls[impl]}
    for (impl, step) in times:  # warm-up: one of each
        impls[impl][step]()
    sync()
    for _ in range(steps):
        for step in ("weight_bi", "arch_relaxed", "arch_hard"):
            for impl in impls:
                if step not in impls[impl]:
                    continue
                t = time.perf_counter()
                impls[impl][step]()
                sync()
                times[(impl, step)].append(time.perf_counter() - t)
    for (impl, step), ts in times.items():
        fwd, total = flops[step]
        best, med = min(ts), statistics.median(ts)
        out["impls"].setdefault(impl, {})[step] = {
            "step_s_min": best, "step_s_median": med, "step_s_all": ts, "images_per_s": batch / best,
            "images_per_s_median": batch / med, "forward_gflop": fwd / 1e9, "gflop_per_step": total / 1e9,
            "gflops": total / best / 1e9}
    if device == "cuda":  # kernel-busy fraction: profiled GPU kernel time per step over the step's wall time
        for impl in impls:
            for step, fn in impls[impl].items():
                out["impls"][impl][step]["kernel_busy"] = _kernel_busy(fn, sync)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device == "cuda":
        out["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    return out


def _kernel_busy(fn, sync, steps: int = 5) -> dict:
    """GPU kernel time per step (torch.profiler, summed over kernels) against the step's wall time."""
    from torch.profiler import ProfilerActivity, profile

    try:
        sync()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            t = time.perf_counter()
            for _ in range(steps):
                fn()
            sync()
            wall = (time.perf_counter() - t) / steps
        kernel_us = sum(getattr(e, "self_device_time_total", 0) for e in prof.key_averages()
                        if str(getattr(e, "device_type", "")).endswith("CUDA"))
        kernel = kernel_us / 1e6 / steps
        return {"kernel_s": kernel, "wall_s_profiled": wall, "fraction": kernel / wall if wall else None}
    except Exception as e:  # the profiler's API moves between torch versions: say so, keep the timings
        return {"error": f"{type(e).__name__}: {e}"}


def _subprocess(case: str, batch: int, threads: int, device: str, steps: int, original: str | None) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench_search", "--one", case, str(batch), str(threads), device, str(steps)]
    if original:
        cmd += ["--original", original]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def _busy(kb: dict | None) -> str:
    if not kb:
        return "-"
    if kb.get("fraction") is None:
        return "error"
    return f"{100 * kb['fraction']:.0f} % ({1000 * kb['kernel_s']:.1f} ms)"


def to_markdown(res: dict) -> str:
    lines = [
        "# Search-step benchmark", "",
        f"Machine: {res['machine']}; torch {res['torch']}; commit {res.get('commit', '?')}; {res['date']}; load average at start {res['loadavg_start']}, "
        f"at end {res['loadavg_end']} (a shared machine: compare within a case, where the implementations "
        "ran interleaved in one process, not across cases or days).", "",
        "Matmul peak (float32 1024x1024, best of 12): "
        + ", ".join(f"{k} thread(s) {v:.1f} GFLOP/s" for k, v in res["matmul_peak_gflops"].items()), "",
        "| case | batch | threads | step | impl | min s | median s | images/s (min) | vs plain | vs original "
        "| GFLOP/step | GFLOP/s | % of matmul peak | kernel busy | peak RSS MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in res["cases"]:
        peak = res["matmul_peak_gflops"][str(c["threads"])]
        for step in ("weight_bi", "arch_relaxed", "arch_hard"):
            base = c["impls"]["plain"][step]["step_s_min"]
            orig = c["impls"].get("original", {}).get(step, {}).get("step_s_min")
            for impl, steps in c["impls"].items():
                if step not in steps:
                    continue
                s = steps[step]
                vs_orig = f"{orig / s['step_s_min']:.2f}x" if orig else "-"
                lines.append(
                    f"| {c['case']} ({c['resolution']} px, x{c['width_mult']}) | {c['batch']} | {c['threads']} | {step} | "
                    f"{impl} | {s['step_s_min']:.3f} | {s['step_s_median']:.3f} | {s['images_per_s']:.1f} | "
                    f"{base / s['step_s_min']:.2f}x | {vs_orig} | "
                    f"{s['gflop_per_step']:.3f} | {s['gflops']:.2f} | {100 * s['gflops'] / peak:.1f} | "
                    f"{_busy(s.get('kernel_busy'))} | {c['peak_rss_mb']:.0f} |")
    lines += ["", "Estimator: the minimum over the timed steps (the least-disturbed run on a shared machine; "
              "medians beside it, every time in the JSON). Implementations of a case run interleaved in one "
              "process after one warm-up step each. plain: the reference path (`--set fast=false`); fast: "
              "`fast_ops` (default); graphed (CUDA only): fast + the relaxed arch step replayed from a CUDA graph "
              "(`--set cuda_graphs=true`) and no host reads in either step; original: the released TF-NAS supernet (`--original DIR`, a checkout of "
              "github.com/AberHu/TF-NAS), same batch and optimiser settings, its initial op widths. "
              "weight_bi: Gumbel path + random second path, summed losses, one backward, SGD step. "
              "arch_relaxed: every candidate op runs (soft Gumbel-softmax, Eq. 3), CE + latency loss, Adam step "
              "(ours: no weight gradients; the original computes them). arch_hard: one op per layer, "
              "straight-through weights. FLOPs: the plain path's forward counted by torch.utils.flop_counter "
              "(2 per multiply-add), backward estimated as 2x (weight step) / 1x (arch step) forward; GFLOP/s "
              "from the minimum step time. Peak RSS is the case's process (all implementations together).", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="results/bench")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--paper-batch", type=int, default=4, help="paper-proxy batch (small on CPU)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per implementation and step kind (after one warm-up)")
    ap.add_argument("--original", default=None, metavar="DIR",
                    help="a checkout of github.com/AberHu/TF-NAS: time its supernet beside ours (cpu32 / paper cases)")
    ap.add_argument("--cases", nargs="+", default=None, metavar="CASE:BATCH:THREADS",
                    help="default cpu: mini:64:1 mini:64:2 cpu32:32:2 paper:4:1; cuda: mini:64:1 paper:32:1")
    ap.add_argument("--name", default=None, help="output file stem (default search_bench_<device>): keep a partial run beside the full table")
    ap.add_argument("--one", nargs=5, metavar=("CASE", "BATCH", "THREADS", "DEVICE", "STEPS"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        case, batch, threads, device, steps = a.one
        print(json.dumps(run_case(case, int(batch), int(threads), device, int(steps), a.original)))
        return 0
    load0 = os.getloadavg()
    default = ["mini:64:1", "paper:32:1"] if a.device == "cuda" else ["mini:64:1", "mini:64:2", "cpu32:32:2", f"paper:{a.paper_batch}:1"]
    cases = []
    for text in a.cases or default:
        name, batch, threads = text.split(":")
        if name not in CASES:
            ap.error(f"unknown case {name!r}; known: {', '.join(CASES)}")
        cases.append((name, int(batch), int(threads)))
    peaks = {str(t): matmul_peak_gflops(t, a.device) for t in sorted({c[2] for c in cases})}
    results = []
    for name, batch, threads in cases:
        print(f"{name} batch {batch} threads {threads} ...", file=sys.stderr, flush=True)
        orig = a.original if CASES[name][2:4] == (1.0, 2) else None
        results.append(_subprocess(name, batch, threads, a.device, a.steps, orig))
    res = {**provenance.header(a.device, load0), "matmul_peak_gflops": peaks, "cases": results}
    provenance.write(a.out, a.name or f"search_bench_{a.device}", res, to_markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
