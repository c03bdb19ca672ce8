"""Command line for retraining and real latency: ``train``, ``measure``, ``fidelity``.

Registered by ``cli.parser()``; errors follow ``cli``'s convention (``ValueError`` → exit 2,
one line on stderr).
"""
from __future__ import annotations

import argparse
import json

from .checks import non_negative_float, non_negative_int, positive_int
from .cli import _load_lut, _load_spec, _print


def cmd_train(a: argparse.Namespace) -> None:
    from . import profiles, train

    spec = _load_spec(a.spec)
    cfg = profiles.apply_overrides(profiles.get_profile(a.profile), a.set)
    result = train.run(spec, cfg, a.out)
    if result is None:  # stopped on purpose (stop_after_epoch); resumable
        return
    if train.dist_from_env().main:
        _print(result, a.json, f"{result['name']}: top-1 {result['top1']:.2f} % top-5 {result['top5']:.2f} % "
                               f"({result['epochs']} epochs, {result['wall_s']:.0f} s) -> {a.out}")


def cmd_measure(a: argparse.Namespace) -> None:
    from .measure import measure

    spec = _load_spec(a.spec)
    lut = _load_lut(a.lut)
    r = measure(spec, a.device, a.batch, a.threads, a.warmup, a.repeats, a.min_time, lut)
    lut_txt = "" if r["lut_ms"] is None else f", LUT {r['lut_ms']:.3f} ms"
    _print(r, a.json, f"{r['name']}: median {r['median_ms']:.3f} ms (IQR {r['iqr_ms']:.3f}, mean {r['mean_ms']:.3f}, "
                      f"{r['runs']} runs){lut_txt} on {r['device']} batch {r['batch']} threads {r['threads']}")


def cmd_fidelity(a: argparse.Namespace) -> None:
    from .measure import fidelity, format_fidelity

    lut = _load_lut(a.lut)
    specs = None
    if a.specs and a.specs != ["zoo"]:
        specs = {}
        for p in a.specs:
            s = _load_spec(p)
            specs[s.name if s.name not in specs else p] = s
    df = fidelity(lut, specs, a.device, a.batch, a.threads, a.warmup, a.repeats, a.min_time)
    if a.json:
        print(json.dumps(json.loads(df.to_json(orient="records")), indent=1))
    else:
        print(format_fidelity(df))


def _timing_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    sp.add_argument("--batch", type=positive_int, help="default: 1 on cpu, 32 on cuda (the paper's)")
    sp.add_argument("--threads", type=positive_int, help="CPU threads (default 1, as the paper)")
    sp.add_argument("--warmup", type=non_negative_int, default=5)
    sp.add_argument("--repeats", type=positive_int, default=20, help="at least this many timed runs")
    sp.add_argument("--min-time", type=non_negative_float, default=1.0, help="and at least this many seconds of them")
    sp.add_argument("--json", action="store_true")


def add_train_measure_parsers(sub) -> None:
    from .profiles import PROFILES

    sp = sub.add_parser("train", help="retrain a spec (paper Appendix B; resumable, DDP under torchrun)")
    sp.add_argument("spec", help="spec JSON path, or zoo:NAME")
    sp.add_argument("--profile", default="mini", choices=list(PROFILES))
    sp.add_argument("--out", required=True, help="run folder: config.json, checkpoint.pt, records.csv, result.json")
    sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_train)

    sp = sub.add_parser("measure", help="whole-network latency at paper scale")
    sp.add_argument("spec")
    sp.add_argument("--lut", help="also print this LUT's prediction")
    _timing_args(sp)
    sp.set_defaults(func=cmd_measure)

    sp = sub.add_parser("fidelity", help="LUT prediction vs measured latency for the zoo")
    sp.add_argument("--lut", required=True)
    sp.add_argument("--specs", nargs="+", help="'zoo' (default: tfnas and tfnas-wose models) or spec paths")
    _timing_args(sp)
    sp.set_defaults(func=cmd_fidelity)
