"""Benchmark: build this machine's CPU LUT, then measure how good it is.

1. Builds (or resumes) the tfnas-space CPU LUT at ``--lut`` and records the wall time
   (issue budget: <= 10 minutes on 2 cores).
2. Interpolation error: for ``--probe-keys`` keys, times ``--probes`` widths that were *not*
   measured and compares with the interpolated entry.
3. Whole-network fidelity: times each zoo network of the tfnas / tfnas-wose spaces (paper scale,
   batch 1, one thread) and compares with the LUT's prediction.

Writes ``OUT/lut_bench.json`` and ``OUT/lut_bench.md``.  Run: ``make bench`` or
``python -m benchmarks.bench_lut --out results/bench``.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import torch

from tfnas_core import latency, model, zoo
from tfnas_core.arch import atomic_write_text
from tfnas_core.ops import MBInvRes
from tfnas_core.space import BlockArgs, get_space
from tfnas_core.timing import cpu_threads, time_module


def interpolation_error(lut: latency.LUT, n_keys: int, n_probes: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    infos = latency.space_keys(get_space(lut.provenance.get("space", "tfnas")))
    keys = rng.sample(sorted(infos), min(n_keys, len(infos)))
    rows = []
    with cpu_threads(1):
        for key in keys:
            info = infos[key]
            measured = set(lut.provenance["measured_widths"][key])
            candidates = [w for w in range(info.lo, info.hi + 1) if w not in measured]
            x = torch.randn(1, info.geom.cin, info.geom.in_hw, info.geom.in_hw)
            for w in rng.sample(candidates, min(n_probes, len(candidates))):
                block = MBInvRes(BlockArgs(info.geom.cin, w, info.geom.cout, info.kernel, info.geom.stride,
                                           info.se, info.geom.act, info.geom.in_hw))
                t = time_module(block, x, warmup=3, repeats=lut.provenance.get("repeats", 10)).median_ms
                pred = lut.entries[key][w]
                rows.append({"key": key, "mid": w, "measured_ms": t, "lut_ms": pred,
                             "abs_err_ms": pred - t, "rel_err": (pred - t) / t})
    return rows


def whole_network(lut: latency.LUT, repeats: int) -> list[dict]:
    rows = []
    with cpu_threads(1):
        x = torch.randn(1, 3, 224, 224)
        for name, spec in zoo.load_all().items():
            if spec.space not in ("tfnas", "tfnas-wose"):
                continue
            net = model.build(spec)
            t = time_module(net, x, warmup=3, repeats=repeats)
            pred = lut.predict(spec)
            rows.append({"name": name, "measured_median_ms": t.median_ms, "measured_iqr_ms": t.iqr_ms,
                         "lut_ms": pred, "abs_err_ms": pred - t.median_ms,
                         "rel_err": (pred - t.median_ms) / t.median_ms,
                         "paper_cpu_ms": zoo.PAPER[name].cpu_ms})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lut", default="tfnas_core/luts/cpu_local.json")
    ap.add_argument("--out", default="results/bench")
    ap.add_argument("--probe-keys", type=int, default=16)
    ap.add_argument("--probes", type=int, default=4)
    ap.add_argument("--net-repeats", type=int, default=30)
    a = ap.parse_args()

    lut_path = Path(a.lut)
    t0 = time.perf_counter()
    if lut_path.exists():
        lut = latency.load(lut_path)
        build_s = None
    else:
        lut = latency.build("tfnas", lut_path, device="cpu")
        build_s = time.perf_counter() - t0
    interp = interpolation_error(lut, a.probe_keys, a.probes)
    nets = whole_network(lut, a.net_repeats)
    abs_i = [abs(r["abs_err_ms"]) for r in interp]
    rel_i = [abs(r["rel_err"]) for r in interp]
    summary = {
        "lut": str(lut_path),
        "lut_build_s": build_s,
        "provenance": {k: v for k, v in lut.provenance.items() if k != "measured_widths"},
        "interpolation": {"probes": len(interp), "median_abs_err_ms": statistics.median(abs_i),
                          "max_abs_err_ms": max(abs_i), "median_rel_err": statistics.median(rel_i),
                          "max_rel_err": max(rel_i)},
        "whole_network": nets,
        "interpolation_rows": interp,
    }
    out = Path(a.out)
    atomic_write_text(out / "lut_bench.json", json.dumps(summary, indent=1) + "\n")
    lines = [f"# CPU LUT benchmark ({summary['provenance'].get('device_name')})", "",
             f"- LUT: `{lut_path}`; build wall time: "
             + (f"{build_s:.0f} s" if build_s is not None else "(loaded, not rebuilt)"),
             f"- interpolation error over {len(interp)} unmeasured widths: median "
             f"{summary['interpolation']['median_abs_err_ms']:.4f} ms "
             f"({100 * summary['interpolation']['median_rel_err']:.1f} %), max "
             f"{summary['interpolation']['max_abs_err_ms']:.4f} ms "
             f"({100 * summary['interpolation']['max_rel_err']:.1f} %)", "",
             "| network | measured median (ms) | IQR | LUT (ms) | error (ms) | error (%) | paper CPU (ms) |",
             "|---|---|---|---|---|---|---|"]
    for r in nets:
        lines.append(f"| {r['name']} | {r['measured_median_ms']:.2f} | {r['measured_iqr_ms']:.2f} | {r['lut_ms']:.2f} "
                     f"| {r['abs_err_ms']:+.2f} | {100 * r['rel_err']:+.1f} | {r['paper_cpu_ms']} |")
    atomic_write_text(out / "lut_bench.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
