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


def interpolation_error(luts: dict[str, latency.LUT], n_keys: int, n_probes: int, seed: int = 0) -> list[dict]:
    """Time unmeasured widths once and compare with every fit in ``luts`` (same timed points)."""
    lut = next(iter(luts.values()))
    rng = random.Random(seed)
    infos = latency.space_keys(get_space(lut.provenance.get("space", "tfnas")))
    keys = rng.sample(sorted(infos), min(n_keys, len(infos)))
    rows = []
    with cpu_threads(1):
        for key in keys:
            info = infos[key]
            measured = set(lut.measured[key])
            candidates = [w for w in range(info.lo, info.hi + 1) if w not in measured]
            x = torch.randn(1, info.geom.cin, info.geom.in_hw, info.geom.in_hw)
            for w in rng.sample(candidates, min(n_probes, len(candidates))):
                block = MBInvRes(BlockArgs(info.geom.cin, w, info.geom.cout, info.kernel, info.geom.stride,
                                           info.se, info.geom.act, info.geom.in_hw))
                t = time_module(block, x, warmup=3, repeats=lut.provenance.get("repeats", 10)).median_ms
                row = {"key": key, "mid": w, "measured_ms": t}
                for fit, l in luts.items():
                    pred = l.entries[key][w]
                    row.update({f"{fit}_ms": pred, f"{fit}_abs_err_ms": pred - t, f"{fit}_rel_err": (pred - t) / t})
                rows.append(row)
    return rows


def whole_network(luts: dict[str, latency.LUT], repeats: int) -> list[dict]:
    rows = []
    with cpu_threads(1):
        x = torch.randn(1, 3, 224, 224)
        for name, spec in zoo.load_all().items():
            if spec.space not in ("tfnas", "tfnas-wose"):
                continue
            net = model.build(spec)
            t = time_module(net, x, warmup=3, repeats=repeats)
            row = {"name": name, "measured_median_ms": t.median_ms, "measured_iqr_ms": t.iqr_ms,
                   "paper_cpu_ms": zoo.PAPER[name].cpu_ms}
            for fit, l in luts.items():
                pred = l.predict(spec)
                row.update({f"{fit}_ms": pred, f"{fit}_abs_err_ms": pred - t.median_ms,
                            f"{fit}_rel_err": (pred - t.median_ms) / t.median_ms})
            rows.append(row)
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
    luts = {"linear": lut.refit("linear"), "interp": lut.refit("interp")}
    with cpu_threads(1):  # a fresh process times slow until it has run a whole base once: do that first
        latency._time_base(get_space("tfnas"), torch.device("cpu"), 1, 5, 30)
    interp = interpolation_error(luts, a.probe_keys, a.probes)
    nets = whole_network(luts, a.net_repeats)

    def stats(fit: str) -> dict:
        ab = [abs(r[f"{fit}_abs_err_ms"]) for r in interp]
        rel = [abs(r[f"{fit}_rel_err"]) for r in interp]
        net = [abs(r[f"{fit}_rel_err"]) for r in nets]
        return {"median_abs_err_ms": statistics.median(ab), "max_abs_err_ms": max(ab),
                "median_rel_err": statistics.median(rel), "max_rel_err": max(rel),
                "net_median_abs_rel_err": statistics.median(net), "net_max_abs_rel_err": max(net)}

    summary = {
        "lut": str(lut_path),
        "lut_build_s": build_s,
        "provenance": lut.provenance,
        "probes": len(interp),
        "fits": {fit: stats(fit) for fit in luts},
        "whole_network": nets,
        "interpolation_rows": interp,
    }
    out = Path(a.out)
    atomic_write_text(out / "lut_bench.json", json.dumps(summary, indent=1) + "\n")
    lines = [f"# CPU LUT benchmark ({summary['provenance'].get('device_name')}, batch 1, one thread)", "",
             f"- LUT: `{lut_path}`; build wall time: "
             + (f"{build_s:.0f} s" if build_s is not None else "(loaded, not rebuilt)"),
             f"- {len(interp)} unmeasured widths timed afresh; whole networks timed {a.net_repeats}x (median)", "",
             "| fit | median abs err at unmeasured widths | max | median rel | max rel | whole-net median rel err | max |",
             "|---|---|---|---|---|---|---|"]
    for fit, st in summary["fits"].items():
        lines.append(f"| {fit} | {st['median_abs_err_ms']:.4f} ms | {st['max_abs_err_ms']:.4f} ms | "
                     f"{100 * st['median_rel_err']:.1f} % | {100 * st['max_rel_err']:.1f} % | "
                     f"{100 * st['net_median_abs_rel_err']:.1f} % | {100 * st['net_max_abs_rel_err']:.1f} % |")
    lines += ["", "| network | measured median (ms) | IQR | LUT linear (ms) | err | LUT interp (ms) | err | paper CPU (ms) |",
              "|---|---|---|---|---|---|---|---|"]
    for r in nets:
        lines.append(f"| {r['name']} | {r['measured_median_ms']:.2f} | {r['measured_iqr_ms']:.2f} | "
                     f"{r['linear_ms']:.2f} | {100 * r['linear_rel_err']:+.1f} % | {r['interp_ms']:.2f} | "
                     f"{100 * r['interp_rel_err']:+.1f} % | {r['paper_cpu_ms']} |")
    atomic_write_text(out / "lut_bench.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
