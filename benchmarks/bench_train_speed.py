"""Benchmark: retraining throughput of a published architecture, per memory layout and precision.

One training step of ``train``'s recipe (forward, label-smoothed cross-entropy, backward, grad-clip,
SGD with momentum and weight decay) on synthetic data, for each variant - ``contiguous`` (NCHW),
``channels_last`` (NHWC, ``TrainConfig.channels_last``, the default) and on CUDA also
``channels_last+amp`` (``TrainConfig.amp``: float16 autocast with a gradient scaler) - timed interleaved
(variant 1, 2, 3, 1, 2, 3, ...) after warm-up steps, so a drifting machine hits all alike.  Reports
the minimum and median step, images/s and, on CUDA, the kernel time of one step from
``torch.profiler`` (the busy fraction: kernel time / wall time) and the peak memory.

Cases: ``mini`` (28 px, width 0.25, stem stride 1, 10 classes, 1 channel: the mini retraining
proxy) and ``paper`` (224 px, width 1.0, 1000 classes).  Run:
``python -m benchmarks.bench_train_speed [--device cpu|cuda] [--model A] [--cases mini:256 paper:8]
[--out results/bench]`` -> ``OUT/train_speed_<device>.json`` and ``.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks import provenance
from tfnas_core.nn import model
from tfnas_core.arch import zoo
from tfnas_core.utils.atomic import atomic_write_text
from tfnas_core.arch.space import Proxy

CASES = {"mini": Proxy(28, 0.25, 1, 10, 1), "paper": Proxy(224, 1.0, 2, 1000, 3)}


def _variants(device: str) -> list[tuple[str, bool, bool]]:
    out = [("contiguous", False, False), ("channels_last", True, False)]
    if device == "cuda":
        out.append(("channels_last+amp", True, True))
    return out


def _step_fn(spec, proxy: Proxy, batch: int, device: torch.device, channels_last: bool, amp: bool):
    torch.manual_seed(0)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    net = model.build(spec, proxy, dropout=0.2, drop_connect=0.2).to(device, memory_format=layout).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=4e-5, nesterov=False)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, proxy.in_chans, proxy.resolution, proxy.resolution, generator=g)
    x = x.to(device, memory_format=layout)
    y = torch.randint(0, proxy.num_classes, (batch,), generator=g).to(device)

    def step():
        with torch.autocast(device.type, enabled=amp):
            loss = F.cross_entropy(net(x).float(), y, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        scaler.step(opt)
        scaler.update()

    return step


def _kernel_ms(step, device: torch.device) -> float | None:
    """Summed device-kernel time of one step (CUDA only), from torch.profiler."""
    if device.type != "cuda":
        return None
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    return sum(e.self_device_time_total for e in prof.key_averages()) / 1e3


def run_case(name: str, batch: int, spec_name: str, device: str, steps: int, warmup: int) -> dict:
    dev = torch.device(device)
    spec = zoo.load(spec_name)
    proxy = CASES[name]
    if device == "cuda":
        torch.backends.cudnn.benchmark = True

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    fns = {v: _step_fn(spec, proxy, batch, dev, cl, amp) for v, cl, amp in _variants(device)}
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync()
    times: dict[str, list[float]] = {v: [] for v in fns}
    for _ in range(steps):
        for v, fn in fns.items():
            t = time.perf_counter()
            fn()
            sync()
            times[v].append(time.perf_counter() - t)
    out = {"case": name, "model": spec_name, "batch": batch, "device": device, "resolution": proxy.resolution,
           "width_mult": proxy.width_mult, "variants": {}}
    base = min(times["contiguous"])
    for v, ts in times.items():
        best = min(ts)
        k = _kernel_ms(fns[v], dev)
        out["variants"][v] = {"step_s_min": best, "step_s_median": statistics.median(ts), "step_s_all": ts,
                              "images_per_s": batch / best, "vs_contiguous": base / best,
                              "kernel_ms": k, "busy": None if k is None else k / 1e3 / best}
    if device == "cuda":
        out["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    return out


def to_markdown(res: dict) -> str:
    lines = ["# Retraining-step benchmark", "",
             f"Machine: {res['machine']}; torch {res['torch']}; commit {res.get('commit', '?')}; {res['date']}; threads {res['threads']}; load average at start "
             f"{res['loadavg_start']}, at end {res['loadavg_end']}. Variants of a case ran interleaved in one "
             "process; compare within a case.", "",
             "| case | model | batch | variant | min s | median s | images/s (min) | vs contiguous | kernel ms | busy |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for c in res["cases"]:
        for v, s in c["variants"].items():
            k = "-" if s["kernel_ms"] is None else f"{s['kernel_ms']:.1f}"
            busy = "-" if s["busy"] is None else f"{100 * s['busy']:.0f} %"
            lines.append(f"| {c['case']} ({c['resolution']} px, x{c['width_mult']}) | {c['model']} | {c['batch']} | {v} | "
                         f"{s['step_s_min']:.3f} | {s['step_s_median']:.3f} | {s['images_per_s']:.0f} | "
                         f"{s['vs_contiguous']:.2f}x | {k} | {busy} |")
    lines += ["", "One step: forward, label-smoothed CE, backward, grad-clip 5, SGD (momentum 0.9, wd 4e-5) on "
              "synthetic data, dropout 0.2 and drop-connect 0.2 as in training. Estimator: minimum over the timed "
              "steps (medians beside; every time in the JSON). kernel ms: summed CUDA kernel time of one step "
              "(torch.profiler); busy = kernel time / step wall time.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--model", default="A", help="zoo name (TF-NAS- prefix optional)")
    ap.add_argument("--cases", nargs="+", default=None, metavar="CASE:BATCH",
                    help="default cpu: mini:256 paper:8; cuda: mini:512 paper:512")
    ap.add_argument("--steps", type=int, default=6, help="timed steps per variant")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per variant first")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads")
    ap.add_argument("--out", default="results/bench")
    a = ap.parse_args(argv)
    if a.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device here")
    if a.steps < 1 or a.warmup < 0 or a.threads < 1:
        ap.error("--steps and --threads must be >= 1, --warmup >= 0")
    spec_name = a.model if a.model.startswith("TF-NAS-") else f"TF-NAS-{a.model}"
    if spec_name not in zoo.load_all():
        ap.error(f"unknown model {a.model!r}; known: {', '.join(zoo.load_all())}")
    cases = []
    for text in a.cases or (["mini:512", "paper:512"] if a.device == "cuda" else ["mini:256", "paper:8"]):
        name, _, batch = text.partition(":")
        if name not in CASES or not batch.isdigit() or int(batch) < 1:
            ap.error(f"bad case {text!r}: CASE:BATCH with CASE in {', '.join(CASES)}")
        cases.append((name, int(batch)))
    torch.set_num_threads(a.threads)
    load0 = os.getloadavg()
    results = []
    for name, batch in cases:
        print(f"{name} batch {batch} ...", file=sys.stderr, flush=True)
        results.append(run_case(name, batch, spec_name, a.device, a.steps, a.warmup))
    res = {**provenance.header(a.device, load0), "threads": a.threads, "cases": results}
    provenance.write(a.out, f"train_speed_{a.device}", res, to_markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
