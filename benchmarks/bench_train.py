"""Benchmark: retrain published models at a profile and compare their accuracy ranking.

The paper's ImageNet ranking is TF-NAS-A > B > C > D (Table 2: 76.9 / 76.3 / 75.2 / 74.2 %).
This retrains each at ``--profile`` (default ``mini``: Fashion-MNIST, ~4 min each on 2 CPU
cores), one run folder per model under ``--runs`` (resumable), and writes ``OUT/train_bench.json``
and ``OUT/train_bench.md``: top-1/top-5, wall time, FLOPs, whether the ranking matches.

Run: ``python -m benchmarks.bench_train --models A B C D --out results/bench``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from tfnas_core.train import config as profiles
from tfnas_core.train import retrain as train
from tfnas_core.arch import zoo
from tfnas_core.utils.atomic import atomic_write_text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["A", "B", "C", "D"], help="zoo names (TF-NAS- prefix optional)")
    ap.add_argument("--profile", default="mini", choices=list(profiles.PROFILES))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--runs", default="runs", help="parent folder of the run folders")
    ap.add_argument("--out", default="results/bench")
    a = ap.parse_args(argv)
    cfg = profiles.apply_overrides(profiles.get_profile(a.profile), a.set)
    rows = []
    for m in a.models:
        spec = zoo.load(m)
        run_dir = Path(a.runs) / f"{a.profile}_{spec.name.lower().replace('tf-nas-', 'tfnas_').replace('-', '_')}"
        r = train.run(spec, cfg, run_dir)
        rows.append({k: r[k] for k in ("name", "top1", "top5", "wall_s", "flops_m", "proxy_flops_m", "params_m")}
                    | {"paper_top1": zoo.PAPER[spec.name].top1, "run": str(run_dir)})
    by_paper = [r["name"] for r in sorted(rows, key=lambda r: -r["paper_top1"])]
    by_ours = [r["name"] for r in sorted(rows, key=lambda r: -r["top1"])]
    summary = {"profile": a.profile, "overrides": a.set, "rows": rows, "paper_order": by_paper,
               "our_order": by_ours, "ranking_matches": by_paper == by_ours}
    out = Path(a.out)
    atomic_write_text(out / "train_bench.json", json.dumps(summary, indent=1) + "\n")
    lines = [f"# Retraining at profile `{a.profile}`", "",
             "| model | paper top-1 | top-1 | top-5 | FLOPs (M) | proxy FLOPs (M) | params (M) | wall (s) |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['paper_top1']} | {r['top1']:.2f} | {r['top5']:.2f} | {r['flops_m']:.0f} | "
              f"{r['proxy_flops_m']:.2f} | {r['params_m']:.3f} | {r['wall_s']:.0f} |" for r in rows]
    lines += ["", f"paper order: {' > '.join(by_paper)}; ours: {' > '.join(by_ours)}; "
              f"matches: {summary['ranking_matches']}"]
    atomic_write_text(out / "train_bench.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
