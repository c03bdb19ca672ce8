"""Command line: ``python -m tfnas_core {profile,scale,zoo,lut,archive,verify-archive,plan,train,measure,fidelity,search,fake-imagenet,check-data,import-official,evaluate,export} ...``.

Bad input (missing file, unknown op, width out of range, a LUT without a needed key) exits
with code 2 and one line on stderr; nothing is written.
"""
from __future__ import annotations

import argparse
import errno
import json
import sys

from tfnas_core.utils.atomic import write_error
from tfnas_core.utils.checks import batch_int, non_negative_int, positive_float, positive_int, rounds_int, threads_int, warmup_int
from tfnas_core.cli.common import EXIT_BAD_INPUT, NO_LUT_HINT, CLIError, Parser, load_lut, load_spec, print_result
from tfnas_core.cli.data import add_data_parser
from tfnas_core.cli.models import add_models_parser
from tfnas_core.cli.search import add_search_parser
from tfnas_core.cli.train import add_train_measure_parsers
from tfnas_core.arch.space import SPACES
from tfnas_core.runs.files import ARCHIVE_ROOT, RUNS_ROOT


# a raw OSError with one of these becomes write_error's line (no space on MOUNT, read-only, permission denied)
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def cmd_profile(a: argparse.Namespace) -> None:
    from tfnas_core.nn import flops

    spec = load_spec(a.spec)
    lut = load_lut(a.lut)
    out = {
        "name": spec.name,
        "flops_m": round(flops.count_flops(spec, convention=a.flops), 3),
        "params_m": round(flops.count_params(spec), 4),
        "lut_ms": round(lut.predict(spec), 4) if lut else None,
        "depths": list(spec.depths),
    }
    if lut is None:
        out["lut_note"] = NO_LUT_HINT
    text = "\n".join(f"{k:9s} {v}" for k, v in out.items() if k != "lut_note")
    print_result(out, a.json, text + (f"\nnote: {NO_LUT_HINT}" if lut is None else ""))


def cmd_scale(a: argparse.Namespace) -> None:
    from tfnas_core.arch import spec as arch_spec
    from tfnas_core.search import scaling

    import dataclasses

    spec = load_spec(a.spec)
    lut = load_lut(a.lut)
    res = scaling.scale(spec, lut, a.target_ms)
    # the scaled net is a new architecture: its own name, and where it came from
    scaled = dataclasses.replace(res.spec, name=f"{spec.name}-scaled-{a.target_ms:g}ms", meta={
        "source": f"elasticity scaling (Alg. 1) of {spec.name} to {a.target_ms:g} ms under {a.lut}",
        "scaled_from": {"name": spec.name, **({"meta": spec.meta} if spec.meta else {})},
        "lut_ms_before": round(res.lut_ms_before, 4), "lut_ms_after": round(res.lut_ms_after, 4)})
    res = dataclasses.replace(res, spec=scaled)
    if a.out:
        arch_spec.save(res.spec, a.out)
    d = res.to_dict()
    print_result(d, a.json, f"{res.message}; met={res.met}\n" + res.spec.to_json())


def cmd_zoo(a: argparse.Namespace) -> None:
    from tfnas_core.experiments.zoo_table import zoo_table

    df = zoo_table(a.lut, measure_on=False, flops_convention=a.flops, details=True)

    def value(v):
        return None if v is None or v != v else v  # pandas holds a missing number as NaN

    rows = []
    for r in df.to_dict("records"):
        row = {
            "name": r["architecture"], "space": r["space"], "depths": r["depths"],
            "flops_m": round(r["flops_m"], 2), "paper_flops_m": r["paper_flops_m"],
            "flops_diff_m": round(r["flops_m"] - r["paper_flops_m"], 2), "params_m": round(r["params_m"], 3),
            "lut_ms": None if value(r["lut_ms"]) is None else round(r["lut_ms"], 3),
            "paper_gpu_lut_ms": value(r["paper_gpu_lut_ms"]), "paper_gpu_ms": value(r["paper_gpu_ms"]),
            "paper_cpu_ms": value(r["paper_cpu_ms"]), "paper_top1": value(r["paper_top1"]),
        }
        if value(r["lut_note"]) is not None:
            row["lut_note"] = r["lut_note"]
        if value(r["note"]) is not None:
            row["note"] = r["note"]
        rows.append(row)
    if a.json:
        print(json.dumps(rows, indent=1))
        return
    # beside a CPU table, the paper's measured CPU latency; beside a GPU table, the paper's GPU-LUT column
    if a.lut is not None:
        from tfnas_core.latency.measure import lut_setting

        on_cpu = (lut_setting(load_lut(a.lut)) or {}).get("device") == "cpu"
    else:
        on_cpu = False
    paper_col, paper_key = ("paper CPU ms", "paper_cpu_ms") if on_cpu else ("paper GPU LUT", "paper_gpu_lut_ms")
    hdr = f"{'architecture':15s} {'space':10s} {'depths':11s} {'FLOPs':>8s} {'paper':>6s} {'diff':>6s} {'params':>7s} {'LUT ms':>8s} {paper_col:>13s}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        lut_ms = "-" if r["lut_ms"] is None else f"{r['lut_ms']:.3f}"
        plut = "-" if r[paper_key] is None else f"{r[paper_key]:.2f}"
        print(f"{r['name']:15s} {r['space']:10s} {r['depths']:11s} {r['flops_m']:8.2f} {r['paper_flops_m']:6.0f} "
              f"{r['flops_diff_m']:+6.2f} {r['params_m']:7.3f} {lut_ms:>8s} {plut:>13s}")
    for r in rows:
        if "note" in r:
            print(f"note: {r['name']}: {r['note']}")
    if a.lut is None:
        print(f"note: LUT ms is '-': {NO_LUT_HINT}")


def cmd_lut_build(a: argparse.Namespace) -> None:
    from tfnas_core.latency import build as lut_build

    lut = lut_build.build(a.space, a.out, device=a.device, batch=a.batch, threads=a.threads, step=a.step,
                        warmup=a.warmup, repeats=a.repeats, progress=not a.quiet, fit=a.fit, calib=a.calib,
                        cuda_mode=a.cuda_mode)
    n = sum(len(v) for v in lut.measured.values())
    cal = lut.provenance.get("calibration")
    cal_txt = (f"; calibrated on {cal['networks']} random networks (fit mean |err| {cal['fit_mean_abs_err_pct']:.2f} %,"
               f" max {cal['fit_max_abs_err_pct']:.2f} %)") if cal else ""
    print(f"wrote {a.out}: {len(lut.entries)} keys, {n} widths measured, base {lut.base:.3f} ms{cal_txt}")


def cmd_lut_check(a: argparse.Namespace) -> None:
    from tfnas_core.latency import drift
    from tfnas_core.latency import lut as latency

    r = drift.check(latency.load(a.lut), rounds=a.rounds)
    print_result(r, a.json, f"{r['message']}\n(LUT {r['lut']} built {r['built']}; sentinel networks "
                      + ", ".join(f"{k} x{v:.3f}" for k, v in r["ratios"].items()) + ")")
    if r["warn"] and not a.json:
        print(f"warning: {r['message']}", file=sys.stderr)


def cmd_lut_show(a: argparse.Namespace) -> None:
    from tfnas_core.latency import lut as latency
    from tfnas_core.latency import measure
    from tfnas_core.arch.space import get_space

    lut = latency.load(a.lut)
    missing = lut.check_covers(get_space(a.space))
    setting = measure.lut_setting(lut)
    out = {"source": lut.source, "base_ms": lut.base, "keys": len(lut.entries),
           "provenance": lut.provenance, "measured_on": setting,
           "covers_space": a.space if not missing else None, "missing": missing}
    n = sum(len(v) for v in lut.measured.values())
    lines = [f"source    {lut.source}", f"base      {lut.base:.3f} ms (stem, stage-2 block, head, pool, fc)",
             f"keys      {len(lut.entries)}" + (f", {n} widths measured, the rest fitted" if n else ""),
             "measured  " + (measure.setting_label(setting["device"], setting["batch"], setting["threads"])
                             if setting else "unknown (no provenance, not an official table)")]
    lines += [f"  {k:14s} {v}" for k, v in lut.provenance.items()]
    lines.append(f"covers    {a.space}: " + ("every block" if not missing else
                                            f"NO, {len(missing)} key(s) missing, e.g. {missing[0]}"))
    print_result(out, a.json, "\n".join(lines))


def cmd_archive(a: argparse.Namespace) -> None:
    from tfnas_core.runs import archive as run_archive

    r = run_archive.export(a.runs, a.out)
    print_result({"archive": a.out, "archived": r.archived, "kept": r.kept, "skipped": r.skipped,
                  "size_bytes": r.size_bytes}, a.json, r.message(a.out))


def cmd_plan(a: argparse.Namespace) -> None:
    import pandas as pd
    import yaml

    from tfnas_core.execution import stale as stale_runs
    from tfnas_core.execution.local import default_workers
    from tfnas_core.execution.jobs import PlanFailed
    from tfnas_core.experiments import launch
    from tfnas_core.experiments import plans

    name = plans.resolve(a.notebook)
    try:
        seeds = [int(x) for x in str(a.seeds).strip("[] ").replace(",", " ").split()]
    except ValueError:
        raise CLIError(f"--seeds: expected integers such as '2 3 4' or [2,3,4], got {a.seeds!r}") from None
    if not seeds:
        raise CLIError(f"--seeds: expected at least one seed, such as '2 3 4' or [2,3,4], got {a.seeds!r}")
    try:
        slurm = yaml.safe_load(a.slurm) if a.slurm else {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at column {mark.column + 1}" if mark is not None else ""
        why = getattr(e, "problem", None) or (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CLIError(f"--slurm: not valid YAML ({why}{where}), got {a.slurm!r}") from None
    if slurm is not None and not isinstance(slurm, dict):
        raise CLIError(f"--slurm: expected a mapping such as '{{partition: gpu, gpus: 1}}', got {a.slurm!r}")
    ctx = launch.notebook_context(name, a.profile, runs_root=a.runs, budget=a.budget, target_ms=a.target_ms,
                                  lam=a.lam, lut=a.lut or None, imagenet_root=a.imagenet or None,
                                  search_set=a.search_set, train_set=a.train_set, executor=a.executor, jobs=a.jobs,
                                  slurm=slurm or {}, computes=a.run, progress=not a.json,
                                  log=(lambda m: None) if a.json else None)
    kw = {"long_factor": a.long_factor, "tuned_dir": launch.output_dirs(plans.TUNED_DIR, budget=a.budget,
                                                                       search_set=a.search_set, train_set=a.train_set)[0]}
    if a.run:
        try:
            plans.run(name, ctx, seeds, **kw)
        except PlanFailed as e:  # each failed run's traceback is in its log
            raise CLIError(e.summary()) from None
    df = plans.plan(name, ctx, seeds, **kw)
    workers = (a.jobs or default_workers()) if a.executor == "local" else None  # GPUs where CUDA is, else cores
    line = plans.summary_line(df, workers)
    stale = stale_runs.stale_files(ctx.runs_root)  # what a crash left: old job files, run folders with only store.json
    if a.json:
        print(json.dumps({"notebook": name, "profile": a.profile, "budget": a.budget, "summary": line,
                          "runs": json.loads(df.to_json(orient="records")), "stale": [str(p) for p in stale]},
                         indent=1))
        return
    with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 48):
        print(df.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.1f}"))
    print(f"{name} at {a.profile}{'' if a.budget == 'full' else f' ({a.budget} budget)'}: {line}")
    if stale:
        print(stale_runs.stale_note(ctx.runs_root, stale))


def latency_fits() -> tuple[str, ...]:
    from tfnas_core.latency.fit import FITS

    return FITS


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m tfnas_core", description="TF-NAS reproduction toolkit")
    sub = p.add_subparsers(dest="cmd", required=True)

    sp = sub.add_parser("profile", help="FLOPs, parameters and LUT latency of a spec")
    sp.add_argument("spec", help="spec JSON path, or zoo:NAME (e.g. zoo:TF-NAS-B)")
    sp.add_argument("--lut", help="latency table: official .pkl or our JSON (without it: no latency)")
    sp.add_argument("--flops", default="official", choices=["official", "macs"], help="FLOPs convention")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")
    sp.set_defaults(func=cmd_profile)

    sp = sub.add_parser("scale", help="elasticity scaling of a spec toward a target latency",
                        description="Elasticity scaling (paper Alg. 1, Appendix C): shrink or grow the "
                                    "widths of a spec until its LUT latency meets the target.")
    sp.add_argument("spec", help="spec JSON path, or zoo:NAME (e.g. zoo:TF-NAS-A)")
    sp.add_argument("--lut", required=True, help="latency table the target is measured in: official .pkl or our JSON")
    sp.add_argument("--target-ms", type=positive_float, required=True, help="target latency in ms under --lut (paper: 15)")
    sp.add_argument("--out", help="also write the scaled spec here (named NAME-scaled-Tms)")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")
    sp.set_defaults(func=cmd_scale)

    sp = sub.add_parser("zoo", help="the published architectures beside the paper's numbers")
    sp.add_argument("--lut", help="latency table for the 'LUT ms' column: official .pkl or our JSON")
    sp.add_argument("--flops", default="official", choices=["official", "macs"], help="FLOPs convention")
    sp.add_argument("--json", action="store_true", help="print the rows as JSON")
    sp.set_defaults(func=cmd_zoo)

    sp = sub.add_parser("lut", help="latency lookup tables")
    lsub = sp.add_subparsers(dest="lut_cmd", required=True)
    b = lsub.add_parser("build", help="measure a LUT on this machine (resumable)")
    b.add_argument("--out", required=True)
    b.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    b.add_argument("--space", default="tfnas", choices=list(SPACES))
    b.add_argument("--batch", type=batch_int, help="default: 1 on cpu, 32 on cuda")
    b.add_argument("--threads", type=threads_int, default=1, help="CPU threads (default 1, as the paper)")
    b.add_argument("--step", type=positive_int, default=8, help="measure every STEP-th width, interpolate the rest")
    b.add_argument("--warmup", type=warmup_int, default=5)
    b.add_argument("--repeats", type=rounds_int, default=20, help="interleaved timed rounds per width (minimum kept)")
    b.add_argument("--fit", default="aligned", choices=list(latency_fits()),
                   help="fill unmeasured widths: robust line + multiple-of-16 step (default), plain line, or piecewise-linear")
    b.add_argument("--calib", type=non_negative_int, default=32,
                   help="random networks timed whole to calibrate the entries against (0: none; needs every key)")
    b.add_argument("--cuda-mode", default="graph", choices=["graph", "eager"], help="CUDA timing: graph replay (default) or eager")
    b.add_argument("--quiet", action="store_true")
    b.set_defaults(func=cmd_lut_build)
    s = lsub.add_parser("show", help="provenance and coverage of a LUT")
    s.add_argument("lut", help="official .pkl or our JSON")
    s.add_argument("--space", default="tfnas", choices=list(SPACES),
                   help="the space whose blocks must all have an entry")
    s.add_argument("--json", action="store_true", help="print as JSON")
    s.set_defaults(func=cmd_lut_show)
    c = lsub.add_parser("check", help="re-time a LUT's sentinels: this machine's speed factor now vs when it was built")
    c.add_argument("lut")
    c.add_argument("--rounds", type=positive_int, default=15, help="interleaved timed rounds of the sentinel networks")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_lut_check)
    sp = sub.add_parser("archive", help="copy finished runs, without checkpoints, into the committed run archive",
                        description="Copy every finished run of the run store (config, records, spec, summary or "
                                    "result; no checkpoints) into the compact run archive that notebooks reuse.")
    sp.add_argument("--runs", default=RUNS_ROOT, help=f"the run store to export from (default: {RUNS_ROOT})")
    sp.add_argument("--out", default=ARCHIVE_ROOT, help=f"the archive (default: {ARCHIVE_ROOT})")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")
    sp.set_defaults(func=cmd_archive)
    sp = sub.add_parser("plan", help="the runs a notebook needs, their status and estimated cost; --run computes the missing ones",
                        description="List every search and retraining NOTEBOOK needs (its run-store key and status: done, "
                                    "archived, partial, missing, or after the search a retraining waits on) with the "
                                    "estimated wall minutes of those still to run. --run first computes them with the "
                                    "executor (nothing is rendered: run the notebook afterwards).")
    sp.add_argument("notebook", help="e.g. table3 or table3-sampling (or notebooks/table3-sampling.ipynb)")
    sp.add_argument("--profile", default="mini", help="paper | mini | smoke (default: mini)")
    sp.add_argument("--seeds", default="2 3 4", help="search seeds (default: 2 3 4, the notebooks')")
    sp.add_argument("--runs", default=RUNS_ROOT, help=f"the run store (default: {RUNS_ROOT})")
    sp.add_argument("--long-factor", type=int, default=3, help="the longer-search sections' epoch factor (1: none; default 3)")
    sp.add_argument("--imagenet", default="", help="ImageNet root (paper profile), as the notebook's imagenet_root")
    sp.add_argument("--lut", default="", help="latency table (default: the profile's), as the notebook's lut")
    sp.add_argument("--target-ms", type=positive_float, default=None, help="target latency (default: the profile's)")
    sp.add_argument("--lam", type=float, default=None, help="trade-off lambda (default: the objective's)")
    sp.add_argument("--budget", default="full", help="full | rehearsal (paper only: every paper setting, a few steps per epoch)")
    sp.add_argument("--search-set", default="", help="key=value pairs applied to every search, e.g. 'epochs=2 warmup_epochs=1'")
    sp.add_argument("--train-set", default="", help="key=value pairs applied to every retraining, e.g. 'epochs=1'")
    sp.add_argument("--run", action="store_true", help="compute the missing runs first")
    sp.add_argument("--executor", default="inline", help="inline | local | slurm (with --run; default inline)")
    sp.add_argument("--jobs", type=int, default=None, help="local workers (default: one per core)")
    sp.add_argument("--slurm", default="", help="SLURM settings, YAML: '{partition: gpu, gpus: 1, timeout_min: 900}'")
    sp.add_argument("--json", action="store_true", help="print the plan as JSON")
    sp.set_defaults(func=cmd_plan)
    add_train_measure_parsers(sub)
    add_search_parser(sub)
    add_data_parser(sub)
    add_models_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, OSError, KeyError, CLIError) as e:  # SpecError and LUTError are ValueErrors
        if isinstance(e, OSError) and e.filename and e.errno in WRITE_ERRNOS:  # raw "[Errno 28] ...: 'FILE'"
            e = write_error(e.filename, e)
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
