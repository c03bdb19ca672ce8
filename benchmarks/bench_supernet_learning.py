"""Benchmark: how fast the supernet learns at the mini profile (issue 10, item 3: "≥ 50 % supernet
validation accuracy within the mini budget if it can be reached faithfully; say what you tried").

Each case trains a fresh mini supernet (seed 2, Fashion-MNIST's 5120-image weights split) with the
search's warm-up weight step (``search.steps.weight_step``, one Gumbel-sampled path per step; α is uniform,
so a random single path), SGD as the search (momentum 0.9, wd 1e-5, grad-clip 5) with a cosine lr
over the case's steps, and measures the supernet validation accuracy as the search records it
(``search.steps.validate``: the 1280-image arch split, Gumbel-sampled paths, training mode) at a quarter,
half, three quarters and all of its steps.  What varies: the weights' learning rate, the number of
steps and the width multiplier (the mini search takes 640 weight steps at 0.025 and width 0.25).

Cases run in subprocesses, ``--jobs`` at a time, one thread each (deterministic: a rerun gives the
same accuracies).  Writes ``OUT/supernet_learning_cpu.json`` and ``.md``.  Run:
``python -m benchmarks.bench_supernet_learning [--out results/bench] [--jobs 2] [--only base lr0.05]``.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name: (SearchConfig overrides, weight steps)
CASES: dict[str, tuple[dict, int]] = {
    "base": ({}, 640),
    "lr0.05": ({"w_lr": 0.05}, 640),
    "lr0.1": ({"w_lr": 0.1}, 640),
    "width0.5": ({"width_mult": 0.5}, 640),
    "width1.0": ({"width_mult": 1.0}, 640),
    "steps2400": ({}, 2400),
    "steps2400-lr0.05": ({"w_lr": 0.05}, 2400),
}


def run_case(name: str) -> dict:
    """One case in this process: the accuracy curve and the wall time."""
    import torch

    from tfnas_core.search import loop as search
    from tfnas_core.search import config as search_config
    from tfnas_core.search import data as search_data
    from tfnas_core.search import steps as search_steps
    from tfnas_core.search import samplers

    torch.set_num_threads(1)
    overrides, steps = CASES[name]
    cfg = search_config.fill_objective_defaults(replace(search_config.get_profile("mini"), target_ms=20.0,
                                                        progress=False, **overrides))
    data = search_data.make(cfg)
    net = search.build_supernet(cfg, data.num_classes, data.in_chans, torch.device("cpu"))
    w_opt, _, _ = search.build_optimizers(net, cfg)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, T_max=steps, eta_min=0.0)
    gen = samplers.make_generator(cfg.seed)

    def batches():
        for epoch in itertools.count():
            data.weights.set_epoch(epoch)
            yield from data.weights

    t0, curve, train_correct, train_n = time.perf_counter(), [], 0, 0
    for step, (x, y) in zip(range(steps), batches()):
        r = search_steps.weight_step(net, x, y, w_opt, gen, **search.weight_step_args(cfg, False)).numbers()
        train_correct, train_n = train_correct + r["correct"], train_n + r["n"]
        sched.step()
        if (step + 1) % (steps // 4) == 0:
            va = search_steps.validate(net, data.val, gen, "cpu", None)
            curve.append({"steps": step + 1, "val_acc": round(va["val_acc"], 2),
                          "train_acc": round(100 * train_correct / train_n, 2)})
            train_correct = train_n = 0
    return {"case": name, "overrides": overrides, "steps": steps, "w_lr": cfg.w_lr, "width_mult": cfg.width_mult,
            "curve": curve, "wall_s": round(time.perf_counter() - t0, 1)}


def _subprocess(name: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "benchmarks.bench_supernet_learning", "--one", name],
                       capture_output=True, text=True, cwd=ROOT, env=env, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def to_markdown(res: dict) -> str:
    lines = ["# Supernet learning at the mini profile", "",
             f"Machine: {res['machine']}; torch {res['torch']}; commit {res.get('commit', '?')}; {res['date']}; "
             f"load average at start {res['loadavg_start']}, at end {res['loadavg_end']} (accuracies do not depend "
             "on it; wall times do).", "",
             "Weight-only training with one Gumbel-sampled path per step (the search's warm-up step; α uniform, so "
             "a random single path), mini profile, seed 2, cosine lr over the case's steps. Supernet validation "
             "accuracy as the search records it (arch split, Gumbel-sampled paths, training mode) after 1/4, 2/4, "
             "3/4 and all of the steps; the training accuracy beside it is over the steps since the previous "
             "point. The mini search takes 640 weight steps (240 warm-up, 400 bi-sampled) at w_lr 0.025, width 0.25.",
             "", "| case | w_lr | width | steps | val acc at 1/4, 2/4, 3/4, 4/4 of the steps (%) | train acc, last quarter (%) | wall s |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for c in res["cases"]:
        accs = ", ".join(f"{p['val_acc']:.1f} ({p['steps']})" for p in c["curve"])
        lines.append(f"| {c['case']} | {c['w_lr']} | {c['width_mult']} | {c['steps']} | {accs} | "
                     f"{c['curve'][-1]['train_acc']:.1f} | {c['wall_s']:.0f} |")
    best = max(p["val_acc"] for c in res["cases"] for p in c["curve"])
    lines += ["", f"Best supernet validation accuracy over every case and point: {best:.1f} % (uniform guessing: 10 %)."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/bench")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", nargs="*", choices=sorted(CASES), help="cases to run (default: all)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(run_case(a.one)))
        return 0
    from benchmarks import provenance

    names, load = a.only or list(CASES), os.getloadavg()
    with ThreadPoolExecutor(max(1, a.jobs)) as pool:
        cases = list(pool.map(_subprocess, names))
    res = {**provenance.header("cpu", load), "cases": cases}
    provenance.write(a.out, "supernet_learning_cpu", res, to_markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
