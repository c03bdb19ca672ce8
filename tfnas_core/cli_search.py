"""Command line for the architecture search: ``python -m tfnas_core search``.

Registered by ``cli.parser()`` through ``add_search_parser(sub)``; errors follow ``cli``'s
convention (a ``ValueError`` such as ``SearchConfigError``, ``DataError``, ``LUTError`` or
``SearchDiverged`` → exit 2 with one line on stderr).
"""
from __future__ import annotations

import argparse

from .cli_common import print_result


def cmd_search(a: argparse.Namespace) -> None:
    from . import search, search_config

    cfg = search_config.apply_overrides(search_config.get_profile(a.profile), a.set)
    summary = search.run(cfg, a.out)
    if summary is None:  # stopped on purpose (stop_after_epoch); rerun to resume
        return
    text = (f"{summary['name']}: LUT {summary['lut_ms']:.3f} ms (target {summary['target_ms']:.3f}, "
            f"{summary['target_status']}), depths {summary['depths']}, "
            f"{summary['flops_m']:.1f} MFLOPs, supernet val acc {summary['final_val_acc']:.2f} %, "
            f"{summary['search_wall_s']:.0f} s -> {a.out}/spec.json")
    print_result(summary, a.json, text)


def add_search_parser(sub) -> None:
    from .search_config import PROFILES

    sp = sub.add_parser("search", help="latency-constrained architecture search (TF-NAS; resumable)")
    sp.add_argument("--profile", default="mini", choices=list(PROFILES),
                    help="paper (Appendix B, ImageNet-100), mini (Fashion-MNIST, CPU, <= 10 min), smoke (seconds)")
    sp.add_argument("--out", required=True,
                    help="run folder: config.json, records.jsonl, checkpoint.pt, spec.json, summary.json")
    sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a search setting (see tfnas_core/search_config.py), repeatable")
    sp.add_argument("--json", action="store_true", help="print the summary as JSON")
    sp.set_defaults(func=cmd_search)
