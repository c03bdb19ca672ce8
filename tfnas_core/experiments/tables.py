"""The ablation tables: Table 3 (the second path of bi-sampling, Sec. 4.3), Table 4 (depth-level
search spaces, Sec. 4.4), Table 5 (latency objectives with and without elasticity scaling,
Sec. 4.5) and Table 13 (the trade-off λ, Appendix): for each variant search → retrain → measure,
one row per (variant, seed), the paper's rows beside ours.

Each table's runs are one function (``table3``, ``table4``, ``table5``, ``table13`` and the longer
searches ``table5_long``, ``table13_long``) that the notebook calls and ``plans.steps`` plans with,
so the keys a plan lists are the keys the notebook uses.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import pandas as pd

from tfnas_core import stats
from tfnas_core.experiments.context import Context, MissingRun
from tfnas_core.experiments.run_plan import planned
from tfnas_core.experiments.runs import SearchRun, retrain_run, search_run, search_runs
from tfnas_core.execution.jobs import Missing
from tfnas_core.latency import measure
from tfnas_core.nn import flops
from tfnas_core.report import verdicts
from tfnas_core.report import paper_tables
from tfnas_core.search import config as search_config


@dataclass(frozen=True)
class Variant:
    label: str
    overrides: dict[str, Any]
    paper: dict[str, Any]  # the paper's numbers for this row (column -> value)


@planned
def searches(ctx: Context, variants: Sequence[Variant], seeds: Iterable[int]) -> dict[str, list[SearchRun]]:
    """The searches of ``variants`` at ``seeds`` (no retraining), by variant label; with
    ``ctx.compute`` off, the finished ones only."""
    seeds = list(seeds)
    return {v.label: search_runs(ctx, seeds, **v.overrides) for v in variants}


@planned
def ablation(ctx: Context, variants: Sequence[Variant], seeds: Iterable[int]) -> pd.DataFrame:
    """Search, retrain and measure every variant at every seed: one row per (variant, seed).

    The derived nets are measured at the end, all in one interleaved timing (``measure.measure_many``:
    round r runs every net once), so machine drift hits every row alike, where the search LUT was
    made (``measure.measure_setting``, ``ctx.measure_device``): with the official GPU table and CUDA
    here on CUDA at batch 32 (CUDA-graph replay between events), at mini on the CPU at batch 1 as its
    table.  ``measured_on`` names it (``"cuda b32"``, ``"cpu b1"``); measured elsewhere than the LUT
    (a GPU table on a CPU-only machine) it says so (``"cpu b1, not the LUT's cuda b32"``) and
    ``measured_ms_lut_base`` / ``speed_factor`` are NaN: the two are not comparable.  When the LUT
    carries drift sentinels for this device (the CPU table), its sentinel networks join the rounds and
    ``measured_ms_lut_base`` = ``measured_ms`` / speed factor is the latency in the LUT's time base
    (what the LUT would have been compared with when it was built); ``speed_factor`` says how much
    slower (> 1) or faster this machine ran than at the build.

    With ``ctx.compute`` off, the rows of finished runs only, unmeasured when any is missing (a
    planning pass: ``run_plan.run_plan``; a retraining waiting on its search is listed with
    status ``after search <key>``)."""
    from tfnas_core.latency import lut as latency

    seeds = list(seeds)
    rows, specs = [], {}
    lut = None
    for v in variants:
        for seed in seeds:
            try:
                s = search_run(ctx, seed, **v.overrides)
            except MissingRun:
                if ctx.planning:
                    ctx.missing.append(Missing("train", v.label, seed, None, f"after search {ctx.missing[-1].key}"))
                continue
            spec = s.spec
            try:
                r = retrain_run(ctx, spec, seed, label=v.label)
            except MissingRun:
                continue
            if lut is None:
                lut = latency.load(search_config.resolve_path(s.config.lut))
            specs[f"{v.label} seed {seed}"] = spec
            rows.append({
                "variant": v.label, "seed": seed,
                "top1": r["top1"], "top5": r["top5"],
                "lut_ms": s.summary["lut_ms"], "target_ms": s.summary["target_ms"],
                "measured_ms": None, "measured_on": None, "measured_ms_lut_base": None, "speed_factor": None,  # filled below
                "flops_m": flops.count_flops(spec), "proxy_flops_m": r.get("proxy_flops_m"),
                "depths": "-".join(map(str, spec.depths)),
                "search_min": s.summary["search_wall_s"] / 60, "retrain_min": r["wall_s"] / 60,
                **{f"paper_{k}": val for k, val in v.paper.items()},
            })
    if rows and not ctx.planning and not (ctx.missing and not ctx.compute):
        from tfnas_core.latency import measured

        where = measure.measure_setting(lut, ctx.measure_device)
        store = measured.MeasuredStore(ctx.measured) if ctx.measured else None
        ctx.say(f"measuring {len(specs)} derived nets at paper scale on {where['label']}, interleaved"
                + (f" (timings this machine already made are kept in {ctx.measured})" if store else ""))
        m = measure.measure_many(specs, device=where["device"], batch=where["batch"], threads=where["threads"],
                                 repeats=ctx.measure_repeats, min_time_s=ctx.measure_min_s, lut=lut, store=store)
        if m.get("kept"):
            ctx.say(f"kept: timed on this machine at {m['measured_at']}; REMEASURE=1 "
                    f"({measured.ENV_REMEASURE}=1) times them again")
        factor = m["speed_factor"] if where["comparable"] else None
        for row, name in zip(rows, specs):  # one name per row, in the rows' order
            ms = m["timings"][name].ms
            row.update(measured_ms=ms, measured_on=where["label"],
                       measured_ms_lut_base=ms / factor if factor is not None else float("nan"),
                       speed_factor=factor if factor is not None else float("nan"))
    return pd.DataFrame(rows)


def summarise(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per variant (in the variants' order), with differences to the paper."""
    order = list(dict.fromkeys(per_seed["variant"]))
    num = [c for c in per_seed.columns if c not in ("variant", "seed", "depths", "measured_on")]
    g = per_seed.groupby("variant", sort=False)
    out = g[num].mean().reindex(order).reset_index()
    if "measured_on" in per_seed:  # where measured_ms was measured (ablation): one value per table
        out["measured_on"] = g["measured_on"].first().reindex(order).to_numpy()
    out.insert(1, "seeds", g.size().reindex(order).to_numpy())
    if "paper_top1" in out:
        out["top1_minus_paper"] = out["top1"] - out["paper_top1"]
    if "paper_flops_m" in out:
        out["flops_minus_paper"] = out["flops_m"] - out["paper_flops_m"]
    # ours, the paper's and the difference side by side
    first = ["variant", "seeds", "top1", "paper_top1", "top1_minus_paper", "top5", "lut_ms", "target_ms",
             "measured_ms", "measured_on", "measured_ms_lut_base", "speed_factor", "paper_gpu_ms", "flops_m", "paper_flops_m", "flops_minus_paper", "proxy_flops_m",
             "search_min", "paper_search_gpu_days", "retrain_min"]
    cols = [c for c in first if c in out] + [c for c in out if c not in first]
    out = out[cols]
    for col in CI_COLUMNS:  # the 95 % Student-t half-width beside each headline mean (stats.mean_ci)
        if col in out:
            hw = g[col].agg(lambda v: stats.mean_ci(v.dropna()).half_width if v.notna().any() else float("nan"))
            out.insert(out.columns.get_loc(col) + 1, f"{col}_ci95", hw.reindex(order).to_numpy())
    return out


CI_COLUMNS = ("top1", "lut_ms", "measured_ms", "flops_m")


def paired_comparisons(per_seed: pd.DataFrame, pairs: Sequence[tuple[str, str, str, int]]) -> pd.DataFrame:
    """Per-seed paired differences ``a - b`` of ``metric`` for each ``(a, b, metric, direction)``,
    with the mean, its 95 % t interval and the verdict (``stats.verdict``: +1 when the paper finds
    ``a`` above ``b``, -1 below)."""
    rows = []
    for a, b, metric, direction in pairs:
        e = verdicts.paired_by_seed(per_seed, a, b, metric)
        rows.append({"comparison": f"{a} - {b}", "metric": metric, "paper_direction": "+" if direction > 0 else "-",
                     "seeds": 0 if e is None else e.n, "mean_diff": float("nan") if e is None else e.mean,
                     "ci95_low": float("nan") if e is None else e.low,
                     "ci95_high": float("nan") if e is None else e.high,
                     "verdict": "inconclusive" if e is None else stats.verdict(e, direction)})
    return pd.DataFrame(rows)


def table3_variants() -> list[Variant]:
    """Table 3: the second path of bi-sampling."""
    return [Variant(name, {"second_path": sampler},
                    {"top1": top1, "gpu_ms": ms, "flops_m": fl, "search_gpu_days": days})
            for sampler, name, top1, ms, fl, days in paper_tables.TABLE3]


def table4_variants() -> list[Variant]:
    """Table 4: depth-level search spaces."""
    return [Variant(name, {"depth_space": ds}, {"top1": top1, "gpu_ms": ms, "flops_m": fl})
            for ds, name, top1, ms, fl in paper_tables.TABLE4]


def table5_variants(tuned: dict[str, dict[str, float]] | None = None, skip: Iterable[str] = ()) -> list[Variant]:
    """Table 5: latency objectives without / with elasticity scaling (Ours in both forms).

    ``tuned``: objective -> its λ values (``tuning.Tuned.values``), given to those rows (C1/C2);
    the others keep their defaults.  ``skip``: objectives left out (``tuning.Tuned.incomplete``:
    a tuning that is not finished has no λ to give)."""
    tuned, skip = tuned or {}, set(skip)
    return [Variant(f"{paper_tables.TABLE5_NAMES[obj]} {'w/' if es else 'w/o'} ES",
                    {"objective": obj, "elasticity": es, **tuned.get(obj, {})}, {"top1": top1, "gpu_ms": ms})
            for obj, es, top1, ms in paper_tables.TABLE5 if obj not in skip]


def table13_variants() -> list[Variant]:
    """Table 13: the trade-off λ (with elasticity scaling)."""
    return [Variant(f"λ = {lam}", {"lam": lam}, {"top1": top1, "gpu_ms": ms, "flops_m": fl})
            for lam, top1, ms, fl in paper_tables.TABLE13]


def ranking(summary: pd.DataFrame, col: str = "top1", paper_col: str = "paper_top1") -> str:
    """Plain words: how our variants rank by ``col`` against the paper's ranking, and Spearman's ρ."""
    ours = summary.sort_values(col, ascending=False)["variant"].tolist()
    paper = summary.sort_values(paper_col, ascending=False)["variant"].tolist()
    rho = summary[col].rank().corr(summary[paper_col].rank(), method="pearson") if len(summary) > 1 else float("nan")
    best_ours, best_paper = ours[0], paper[0]
    same = "the same" if best_ours == best_paper else "a different"
    return (f"ours by {col}: {' > '.join(ours)}\n"
            f"paper:        {' > '.join(paper)}\n"
            f"Spearman rank correlation {rho:+.2f}; {same} best variant ({best_ours} vs the paper's {best_paper}).")


# ----------------------------------------------------------------------------- each table's runs (notebook and plan)


def table3(ctx: Context, seeds: Iterable[int]) -> pd.DataFrame:
    """Table 3's rows: ``ablation`` of ``table3_variants``."""
    return ablation(ctx, table3_variants(), seeds)


def table4(ctx: Context, seeds: Iterable[int]) -> pd.DataFrame:
    """Table 4's rows: ``ablation`` of ``table4_variants``."""
    return ablation(ctx, table4_variants(), seeds)


def table5(ctx: Context, seeds: Iterable[int], tuned) -> pd.DataFrame:
    """Table 5's rows: ``ablation`` of ``table5_variants`` with the C1/C2 λ of ``tuned``
    (``tuning.Tuned``; a tuning that is not finished leaves its objective out)."""
    return ablation(ctx, table5_variants(tuned.values, skip=tuned.incomplete), seeds)


def table13(ctx: Context, seeds: Iterable[int]) -> pd.DataFrame:
    """Table 13's rows: ``ablation`` of ``table13_variants``."""
    return ablation(ctx, table13_variants(), seeds)


def table5_long(ctx_long: Context, seeds: Iterable[int], tuned_long) -> dict[str, list[SearchRun]]:
    """Table 5's longer searches (``runs.longer``'s context), no retraining, with their own tuning."""
    return searches(ctx_long, table5_variants(tuned_long.values, skip=tuned_long.incomplete), seeds)


def table13_long(ctx_long: Context, seeds: Iterable[int]) -> dict[str, list[SearchRun]]:
    """Table 13's longer searches (``runs.longer``'s context), no retraining."""
    return searches(ctx_long, table13_variants(), seeds)
