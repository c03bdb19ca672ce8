"""Benchmark: what the executors buy on this machine, and what a SLURM job costs (issue 20).

* ``smoke``: ``make reproduce-table3 FRESH=1 PROFILE=smoke`` (15 searches, 15 retrainings, the
  notebook and its latency timing) with ``EXECUTOR=inline`` and with ``EXECUTOR=local JOBS=2``,
  each into an empty run store, alternating (inline, local, inline, local, ...) so the drift of
  the shared machine hits both alike; the wall-time ratio per pair and its median.
* ``mini``: a subset at the mini profile (``--mini-variants`` rows of Table 3 x one seed: as many
  searches, then as many retrainings; the library call the notebook makes, without its latency
  timing) inline and with 2 local workers, alternating; the same ratio.
* ``slurm``: single trivial jobs submitted one after another (submit -> result latency) and one
  array of 8 trivial jobs; the overhead per job a plan pays on top of its runs.

Writes ``OUT/executors_cpu.json`` and ``.md``.  Run: ``python -m benchmarks.bench_executors
[--out results/bench] [--parts smoke mini slurm] [--pairs 2] [--mini-variants 2] [--mini-pairs 1]``; the SLURM part
needs a running cluster (``../shared/slurm/slurm-up.sh``) and is skipped without one.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import provenance

ROOT = Path(__file__).resolve().parents[1]


def _make_table3(runs: Path, executor: str, jobs: int | None) -> float:
    cmd = ["make", "-s", "reproduce-table3", "PROFILE=smoke", "FRESH=1", f"RUNS={runs}", f"EXECUTOR={executor}"]
    if jobs:
        cmd.append(f"JOBS={jobs}")
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _mini_subset(runs: Path, executor: str, jobs: int | None, variants: int) -> float:
    code = ("import sys; from tfnas_core.experiments import notebook as E; "
            f"ctx = E.Context('mini', runs_root=sys.argv[1], archive_root=None, progress=False, executor='{executor}', "
            f"jobs={jobs!r}, measure_repeats=1, measure_min_s=0.0); "
            f"E.ablation(ctx, E.table3_variants()[:{variants}], [2])")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(runs)], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _alternate(run, pairs: int) -> dict:
    rows = []
    for _ in range(pairs):
        pair = {}
        for executor, jobs in (("inline", None), ("local", 2)):
            d = Path(tempfile.mkdtemp(prefix=f"bench-exec-{executor}-"))
            try:
                pair[executor] = run(d, executor, jobs)
            finally:
                shutil.rmtree(d, ignore_errors=True)
        pair["ratio"] = pair["inline"] / pair["local"]
        rows.append(pair)
        print(f"  inline {pair['inline']:.1f} s, local x2 {pair['local']:.1f} s: {pair['ratio']:.2f}x", flush=True)
    ratios = [r["ratio"] for r in rows]
    return {"pairs": rows, "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios)}


def _slurm_part() -> dict | None:
    base = Path(os.environ.get("LOCAL_SLURM_DIR", Path(os.environ.get("TMPDIR", "/tmp")) / "local-slurm"))
    conf = os.environ.get("SLURM_CONF") or str(base / "etc" / "slurm.conf")
    if not Path(conf).is_file():
        return None
    os.environ["SLURM_CONF"] = conf
    import submitit

    folder = Path(tempfile.mkdtemp(prefix="bench-slurm-"))
    try:
        ex = submitit.AutoExecutor(folder=str(folder / "%j"), cluster="slurm")
        ex.update_parameters(timeout_min=5, slurm_array_parallelism=8)
        single = []
        for _ in range(5):
            t0 = time.perf_counter()
            ex.submit(int, 1).result()
            single.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        jobs = ex.map_array(int, list(range(8)))
        [j.result() for j in jobs]
        array = time.perf_counter() - t0
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"single_s": single, "single_median_s": statistics.median(single), "array8_s": array,
            "array8_per_job_s": array / 8}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="results/bench")
    p.add_argument("--parts", nargs="+", default=["smoke", "mini", "slurm"], choices=["smoke", "mini", "slurm"])
    p.add_argument("--pairs", type=int, default=2)
    p.add_argument("--mini-variants", type=int, default=2)
    p.add_argument("--mini-pairs", type=int, default=1, help="pairs of the mini subset (each ~20 min here)")
    a = p.parse_args(argv)
    load0 = os.getloadavg()
    res: dict = {"cpus": os.cpu_count()}
    if "smoke" in a.parts:
        print("smoke: make reproduce-table3 FRESH=1, inline vs EXECUTOR=local JOBS=2", flush=True)
        res["smoke_table3"] = _alternate(_make_table3, a.pairs)
    if "mini" in a.parts:
        print(f"mini: Table 3's first {a.mini_variants} rows x seed 2 (search + retrain), inline vs local x2", flush=True)
        res["mini_subset"] = {"variants": a.mini_variants, "seeds": [2],
                              **_alternate(lambda d, e, j: _mini_subset(d, e, j, a.mini_variants), a.mini_pairs)}
    if "slurm" in a.parts:
        print("slurm: trivial jobs", flush=True)
        res["slurm"] = _slurm_part()
    res.update(provenance.header("cpu", load0))
    md = ["# Executors on this machine (issue 20)", "",
          f"{res['cpus']} cores; {res.get('date', '')}, commit {res.get('commit')}; load average at start "
          f"{load0[0]:.2f}, at the end {os.getloadavg()[0]:.2f}. Each pair: inline, then local (2 workers), "
          "each into an empty run store; ratio = inline wall / local wall.", ""]
    for key, title in (("smoke_table3", "`make reproduce-table3 FRESH=1 PROFILE=smoke` (15 searches + 15 retrainings + notebook)"),
                       ("mini_subset", f"mini: {a.mini_variants} Table 3 rows x seed 2 (searches, then retrainings)")):
        if key in res:
            r = res[key]
            md += [f"## {title}", "", "| pair | inline s | local x2 s | ratio |", "|---|---|---|---|"]
            md += [f"| {i + 1} | {x['inline']:.1f} | {x['local']:.1f} | {x['ratio']:.2f} |" for i, x in enumerate(r["pairs"])]
            md += ["", f"Median ratio {r['ratio_median']:.2f} (min {r['ratio_min']:.2f}, max {r['ratio_max']:.2f}).", ""]
    s = res.get("slurm")
    if "slurm" in a.parts:
        md += ["## SLURM overhead", ""]
        md += (["no SLURM here (start one with ../shared/slurm/slurm-up.sh)"] if s is None else [
            f"Single trivial job, submit -> result: median {s['single_median_s']:.1f} s "
            f"(runs: {', '.join(f'{x:.1f}' for x in s['single_s'])} s). "
            f"An array of 8 trivial jobs (2 CPUs, so 2 at a time): {s['array8_s']:.1f} s, {s['array8_per_job_s']:.1f} s per job."])
    provenance.write(a.out, "executors_cpu", res, "\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
