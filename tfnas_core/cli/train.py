"""Command line for retraining and real latency: ``train``, ``measure``, ``fidelity``.

Registered by ``cli.parser()``; errors follow ``cli``'s convention (``ValueError`` → exit 2,
one line on stderr).  ``train --help`` lists every setting from ``TrainConfig``'s fields
(``cli_common.settings_help``); ``train --config`` reruns a run's ``config.json``.
"""
from __future__ import annotations

import argparse
import json

from tfnas_core.utils.checks import Range, batch_int, bounded_int, rounds_int, seconds_float, threads_int, warmup_int
from tfnas_core.cli.common import add_config_arguments, base_config, config_help, load_lut, load_spec, print_result
from tfnas_core.runs import files as run_files


# fidelity --random: each is a paper-scale network (~20 MB of weights) held in memory while all are
# timed in one window; 500 is 25x the default.
RANDOM_NETS = Range(0, 500)


def cmd_train(a: argparse.Namespace) -> None:
    from tfnas_core.train import config as profiles
    from tfnas_core.train import retrain as train

    spec = load_spec(a.spec)
    cfg = profiles.apply_overrides(base_config(a, profiles.get_profile, profiles.from_dict, "retraining"), a.set)
    result = train.run(spec, cfg, a.out)
    if result is None:  # stopped on purpose (stop_after_epoch); resumable
        return
    if train.dist_from_env().main:
        print_result(result, a.json, f"{result['name']}: top-1 {result['top1']:.2f} % top-5 {result['top5']:.2f} % "
                               f"({result['epochs']} epochs, {result['wall_s']:.0f} s) -> {a.out}")


def cmd_measure(a: argparse.Namespace) -> None:
    import sys

    from tfnas_core.latency.measure import check_setting, lut_mismatch, lut_setting, measure
    from tfnas_core.latency.timing import DEFAULT_BATCH

    spec = load_spec(a.spec)
    lut = load_lut(a.lut)
    known = lut_setting(lut) if lut is not None else None
    if a.batch is None and known is not None and known["device"] == a.device:
        a.batch = known["batch"]  # on the LUT's device, at the batch it was made at (the official GPU table: 32)
    check_setting(a.device, a.batch or DEFAULT_BATCH[a.device], a.threads, "--")
    r = measure(spec, a.device, a.batch, a.threads, a.warmup, a.repeats, 3.0 if a.min_time is None else a.min_time, lut,
                estimator=a.estimator,
                cuda_mode=a.cuda_mode, time_base=a.time_base)
    warning = lut_mismatch(lut, r["device"], r["batch"], r["threads"])
    if warning:
        print(warning, file=sys.stderr)
    lut_txt = "" if r["lut_ms"] is None else f", LUT {r['lut_ms']:.3f} ms"
    if r["ms_lut_base"] is not None:
        lut_txt += f", {r['ms_lut_base']:.3f} ms in the LUT's time base (speed factor {r['speed_factor']:.3f})"
    print_result(r, a.json, f"{r['name']}: {r['ms']:.3f} ms ({r['estimator']} of {r['runs']} runs, {r['clock']} clock; "
                      f"median {r['median_ms']:.3f}, IQR {r['iqr_ms']:.3f}){lut_txt} on {r['device']} batch {r['batch']} "
                      f"threads {r['threads']}")


def cmd_fidelity(a: argparse.Namespace) -> None:
    from tfnas_core.latency.measure import check_setting, fidelity, format_fidelity
    from tfnas_core.latency.timing import DEFAULT_BATCH

    check_setting(a.device, a.batch or DEFAULT_BATCH[a.device], a.threads, "--")
    lut = load_lut(a.lut)
    specs = None
    if a.specs and a.specs != ["zoo"]:
        specs = {}
        for p in a.specs:
            s = load_spec(p)
            specs[s.name if s.name not in specs else p] = s
    df = fidelity(lut, specs, a.device, a.batch, a.threads, a.warmup, a.repeats,
                  1.0 if a.min_time is None else a.min_time, n_random=a.random,
                  seed=a.seed, cuda_mode=a.cuda_mode)
    if a.json:
        from tfnas_core.latency.measure import summary

        print(json.dumps({"rows": json.loads(df.to_json(orient="records")), "summary": summary(df),
                          "speed_factor": df.attrs["speed_factor"], "seed": df.attrs["seed"],
                          "held_out": df.attrs["held_out"]}, indent=1))
    else:
        print(format_fidelity(df))


def _timing_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    sp.add_argument("--batch", type=batch_int, help="default: the LUT's batch on the LUT's device, else 1 on cpu, "
                                                    "32 on cuda (the paper's)")
    sp.add_argument("--threads", type=threads_int, help="CPU threads (default 1, as the paper; at most the cores)")
    sp.add_argument("--warmup", type=warmup_int, default=5, help="untimed runs before timing (and 1 s of them)")
    sp.add_argument("--repeats", type=rounds_int, default=20, help="at least this many timed (interleaved) rounds")
    sp.add_argument("--min-time", type=seconds_float, help="and at least this many seconds of them (default: measure 3, fidelity 1)")
    sp.add_argument("--cuda-mode", default="graph", choices=["graph", "eager"],
                    help="CUDA: CUDA-graph replay timed by events (default) or eager calls")
    sp.add_argument("--json", action="store_true")


def add_train_measure_parsers(sub) -> None:
    from tfnas_core.train.config import PROFILES, TrainConfig

    sp = sub.add_parser("train", help="retrain a spec (paper Appendix B; resumable, DDP under torchrun)", **config_help(
        "Retrain SPEC with the settings of --profile (paper: Appendix B, ImageNet; mini: Fashion-MNIST, CPU, < 5 "
        "min; smoke: seconds) or of a saved retraining (--config), then --set on top. Rerunning the same command "
        "resumes.", TrainConfig, PROFILES))
    sp.add_argument("spec", help="spec JSON path, or zoo:NAME")
    out_files = (run_files.CONFIG, run_files.CHECKPOINT, run_files.TRAIN_RECORDS, run_files.TRAIN_RESULT)
    add_config_arguments(sp, "retraining", PROFILES, ", ".join(out_files))
    sp.set_defaults(func=cmd_train)

    sp = sub.add_parser("measure", help="whole-network latency at paper scale")
    sp.add_argument("spec")
    sp.add_argument("--lut", help="also print this LUT's prediction")
    sp.add_argument("--estimator", default="min", help="min (default), median or qNN (a percentile, e.g. q10)")
    sp.add_argument("--time-base", default="machine", choices=["machine", "lut"],
                    help="lut: also time the LUT's sentinels and report ms divided by the speed factor")
    _timing_args(sp)
    sp.set_defaults(func=cmd_measure)

    sp = sub.add_parser("fidelity", help="LUT prediction vs measured latency for the zoo")
    sp.add_argument("--lut", required=True)
    sp.add_argument("--specs", nargs="+", help="'zoo' (default: tfnas and tfnas-wose models) or spec paths")
    sp.add_argument("--random", type=bounded_int(RANDOM_NETS, f"a count in [0, {int(RANDOM_NETS.hi)}]"), default=20,
                    help="also this many random valid architectures (held out)")
    sp.add_argument("--seed", type=int, help="their seed (default: the held-out seed, not the LUT's calibration seed)")
    _timing_args(sp)
    sp.set_defaults(func=cmd_fidelity)
