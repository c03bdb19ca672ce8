"""Command line for the architecture search: ``python -m tfnas_core search``.

Registered by ``cli.parser()`` through ``add_search_parser(sub)``; errors follow ``cli``'s
convention (a ``ValueError`` such as ``SearchConfigError``, ``DataError``, ``LUTError`` or
``SearchDiverged`` → exit 2 with one line on stderr).  ``--help`` lists every setting from
``SearchConfig``'s fields (``cli_common.settings_help``); ``--config`` reruns a run's
``config.json``.
"""
from __future__ import annotations

import argparse

from tfnas_core.cli.common import add_config_arguments, base_config, config_help, print_result
from tfnas_core.runs import files as run_files


def cmd_search(a: argparse.Namespace) -> None:
    from tfnas_core.search import loop as search
    from tfnas_core.search import config as search_config

    base = base_config(a, search_config.get_profile, search_config.from_dict, "search")
    cfg = search_config.apply_overrides(base, a.set)
    summary = search.run(cfg, a.out)
    if summary is None:  # stopped on purpose (stop_after_epoch); rerun to resume
        return
    text = (f"{summary['name']}: LUT {summary['lut_ms']:.3f} ms (target {summary['target_ms']:.3f}, "
            f"{summary['target_status']}), depths {summary['depths']}, "
            f"{summary['flops_m']:.1f} MFLOPs, supernet val acc {summary['final_val_acc']:.2f} %, "
            f"{summary['search_wall_s']:.0f} s -> {a.out}/{run_files.SPEC}")
    print_result(summary, a.json, text)


def add_search_parser(sub) -> None:
    from tfnas_core.search.config import PROFILES, SearchConfig

    sp = sub.add_parser("search", help="latency-constrained architecture search (TF-NAS; resumable)", **config_help(
        "Search with the settings of --profile (paper: Appendix B, ImageNet-100; mini: Fashion-MNIST, CPU, <= 10 "
        "min; smoke: seconds) or of a saved search (--config), then --set on top. Rerunning the same command "
        "resumes.", SearchConfig, PROFILES))
    out_files = (run_files.CONFIG, run_files.SEARCH_RECORDS, run_files.CHECKPOINT, run_files.SPEC,
                 run_files.SEARCH_SUMMARY)
    add_config_arguments(sp, "search", PROFILES, ", ".join(out_files))
    sp.set_defaults(func=cmd_search)
