"""Benchmark: build this machine's CPU LUT, then measure how far it can be trusted.

1. Builds (or, when ``--lut`` exists, loads) the tfnas-space CPU LUT and records the wall time
   (issue budget: <= 10 minutes on 2 cores).
2. Drift: the machine's speed factor against the LUT's drift sentinels (``lut check``).
3. Whole-network fidelity (issue budget: <= 5 minutes): the zoo's tfnas / tfnas-wose networks
   and ``--random`` held-out random valid architectures (``random_arch``), timed interleaved
   (``measure.fidelity``); mean / max |relative error| and Spearman rank correlation.
4. Interpolation: ``--probe-keys`` keys, ``--probes`` widths each that were *not* timed, timed
   afresh (interleaved with the key's timed points) and compared with every fit of the raw
   (uncalibrated) points.
5. Repeatability: ``measure zoo:TF-NAS-B`` in ``--processes`` separate processes.

Writes ``OUT/lut_bench.json`` and ``OUT/lut_bench.md``.  Run: ``make bench`` or
``python -m benchmarks.bench_lut --out results/bench``.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from tfnas_core.latency import drift
from tfnas_core.latency import lut as latency
from tfnas_core.latency import build as lut_build
from tfnas_core.latency import fit as lut_fit
from tfnas_core.latency import keys as lut_keys
from tfnas_core.latency import measure
from tfnas_core.utils.atomic import atomic_write_text
from tfnas_core.arch.space import get_space
from tfnas_core.latency.timing import cpu_threads, time_interleaved

ROOT = Path(__file__).resolve().parents[1]


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def interpolation_error(lut: latency.LUT, n_keys: int, n_probes: int, seed: int = 0) -> list[dict]:
    """Time unmeasured widths (interleaved with the key's timed widths) and compare with every
    fit of the raw points; errors are relative to the fresh timing, and the fresh timings of the
    timed widths are scaled to the stored ones first (the machine's speed may have moved)."""
    rng = random.Random(seed)
    infos = lut_keys.space_keys(get_space(lut.provenance.get("space", "tfnas")))
    keys = rng.sample(sorted(infos), min(n_keys, len(infos)))
    rows = []
    with cpu_threads(1):
        for key in keys:
            info = infos[key]
            measured = lut.measured[key]
            candidates = [w for w in range(info.lo, info.hi + 1) if w not in measured]
            probes = rng.sample(candidates, min(n_probes, len(candidates)))
            x = torch.randn(1, info.geom.cin, info.geom.in_hw, info.geom.in_hw)
            widths = sorted(set(probes) | set(measured))
            items = {w: (lut_build.key_block(info, w), x) for w in widths}
            t = time_interleaved(items, rounds=lut.provenance.get("repeats", 20), warmup_s=0.1)
            speed = statistics.median(t[w].ms / measured[w] for w in measured)
            fits = {f: lut_fit.fit_points(measured, info.lo, info.hi, f) for f in lut_fit.FITS}
            for w in probes:
                now = t[w].ms / speed
                row = {"key": key, "mid": w, "measured_ms": now}
                for f, table in fits.items():
                    row[f"{f}_rel_err"] = (table[w] - now) / now
                rows.append(row)
    return rows


def repeatability(n: int, lut_path: Path) -> list[float]:
    """``ms`` of TF-NAS-B measured by ``n`` fresh processes, one after the other."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = []
    for _ in range(n):
        p = subprocess.run([sys.executable, "-m", "tfnas_core", "measure", "zoo:TF-NAS-B", "--json"],
                           capture_output=True, text=True, env=env, check=True)
        out.append(json.loads(p.stdout)["ms"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lut", default="tfnas_core/luts/cpu_local.json")
    ap.add_argument("--out", default="results/bench")
    ap.add_argument("--random", type=int, default=20, help="held-out random architectures in the fidelity check")
    ap.add_argument("--probe-keys", type=int, default=8)
    ap.add_argument("--probes", type=int, default=4)
    ap.add_argument("--processes", type=int, default=3)
    a = ap.parse_args()

    lut_path = Path(a.lut)
    load_before = loadavg()
    t0 = time.perf_counter()
    if lut_path.exists():
        lut, build_s = latency.load(lut_path), None
    else:
        lut = lut_build.build("tfnas", lut_path, device="cpu")
        build_s = time.perf_counter() - t0
    check = drift.check(lut)
    t0 = time.perf_counter()
    df = measure.fidelity(lut, n_random=a.random)
    fidelity_s = time.perf_counter() - t0
    summ = measure.summary(df)
    interp = interpolation_error(lut, a.probe_keys, a.probes)
    reps = repeatability(a.processes, lut_path)
    summary = {
        "lut": str(lut_path), "lut_build_s": build_s, "loadavg_before": load_before, "loadavg_after": loadavg(),
        "provenance": lut.provenance, "speed_factor": check["speed_factor"], "check": check,
        "fidelity_s": fidelity_s, "fidelity": summ, "fidelity_rows": json.loads(df.to_json(orient="records")),
        "interpolation": {f: {"median_abs_rel_err": statistics.median(abs(r[f"{f}_rel_err"]) for r in interp),
                              "max_abs_rel_err": max(abs(r[f"{f}_rel_err"]) for r in interp)} for f in lut_fit.FITS},
        "interpolation_rows": interp,
        "repeatability_ms": reps, "repeatability_spread_pct": 100 * (max(reps) - min(reps)) / min(reps),
    }
    out = Path(a.out)
    atomic_write_text(out / "lut_bench.json", json.dumps(summary, indent=1) + "\n")
    cal = lut.provenance.get("calibration", {})
    lines = [f"# CPU LUT benchmark ({lut.provenance.get('device_name')}, batch 1, one thread)", "",
             f"- LUT: `{lut_path}` built {lut.provenance.get('date')}; build wall time: "
             + (f"{build_s:.0f} s" if build_s is not None else "(loaded, not rebuilt)")
             + f"; calibrated on {cal.get('networks', 0)} random networks",
             f"- load average (1/5/15 min) before {summary['loadavg_before']}, after {summary['loadavg_after']}",
             f"- {check['message']}",
             f"- fidelity: {fidelity_s:.0f} s for {len(df)} networks (zoo + {a.random} held-out random, seed "
             f"{df.attrs['seed']}), timed interleaved", "",
             "| group | n | mean abs rel err | max | Spearman |", "|---|---|---|---|---|"]
    for g, s in summ.items():
        lines.append(f"| {g} | {s['n']} | {s['mean_abs_err_pct']:.2f} % | {s['max_abs_err_pct']:.2f} % | {s['spearman']:.3f} |")
    if df.attrs["speed_factor"] is not None:
        lines += ["", f"In the LUT's time base (measured / speed factor {df.attrs['speed_factor']:.3f}, sentinels "
                  "timed in the same rounds):", "", "| group | mean abs rel err | max |", "|---|---|---|"]
        for g, s in summ.items():
            lines.append(f"| {g} | {s['mean_abs_err_lut_base_pct']:.2f} % | {s['max_abs_err_lut_base_pct']:.2f} % |")
    lines += ["", "| network | LUT (ms) | measured ms (min) | median | err |", "|---|---|---|---|---|"]
    for r in df.dropna(subset=["ms"]).itertuples():
        lines.append(f"| {r.name} | {r.lut_ms:.2f} | {r.ms:.2f} | {r.median_ms:.2f} | {r.rel_err_pct:+.1f} % |")
    lines += ["", f"Unmeasured widths ({len(interp)} probes, raw block timings, before calibration):", "",
              "| fit | median abs rel err | max |", "|---|---|---|"]
    for f, s in summary["interpolation"].items():
        lines.append(f"| {f} | {100 * s['median_abs_rel_err']:.1f} % | {100 * s['max_abs_rel_err']:.1f} % |")
    lines += ["", f"Repeatability: TF-NAS-B in {a.processes} separate processes: "
              + ", ".join(f"{v:.2f}" for v in reps) + f" ms (spread {summary['repeatability_spread_pct']:.1f} %)"]
    atomic_write_text(out / "lut_bench.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
