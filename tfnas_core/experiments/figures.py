"""The figures' searches and curves: Fig. 2 (operation collapse: Gumbel only vs bi-sampling,
Sec. 3.3), Fig. 4 (the depth spaces and elasticity scaling, Sec. 3.3) and Fig. 5 (the latency
objectives C1/C2 with and without elasticity scaling, Sec. 4.5): the records of the searches each
figure is drawn from.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import pandas as pd

from tfnas_core.experiments.context import Context
from tfnas_core.experiments.run_plan import planned
from tfnas_core.experiments.runs import SearchRun, search_runs
from tfnas_core.report import paper_tables
from tfnas_core.report import plots


@planned
def fig2(ctx: Context, seeds: Iterable[int], **variant: Any) -> dict[str, list[SearchRun]]:
    """Fig. 2: Gumbel-only vs bi-sampling (random second path), T linear 5.0 -> 0.2; ``variant``:
    more SearchConfig fields for both (the notebook's longer search: ``epochs``)."""
    seeds = list(seeds)
    return {label: search_runs(ctx, seeds, second_path=sp, t_schedule="linear", **variant)
            for label, sp in (("Gumbel", "none"), ("bi-sampling", "random"))}


def fig2_collapse(runs: dict[str, list[SearchRun]], layers: Sequence[int], ops: Sequence[str]) -> pd.DataFrame:
    """Per sampling, seed and paper layer: the most derived op and its share over the search epochs."""
    idx = [paper_tables.paper_layer_to_supernet_index(l) for l in layers]
    return pd.DataFrame([{"sampling": label, "seed": r.config.seed, "layer": layer,
                          **plots.collapse_summary(r.records, [i], ops)[i]}
                         for label, rs in runs.items() for r in rs for layer, i in zip(layers, idx)])


def fig2_alpha(runs: dict[str, list[SearchRun]]) -> pd.DataFrame:
    """``plots.alpha_movement`` of every search, with its sampling and seed."""
    return pd.concat([plots.alpha_movement(r.records).assign(sampling=label, seed=r.config.seed)
                      for label, rs in runs.items() for r in rs], ignore_index=True)


def search_rows(runs: dict[str, list[SearchRun]]) -> pd.DataFrame:
    """One row per search: its label as ``variant``, seed, the derived net's LUT latency and the
    target, its depths (stages 3-8, ``2-3-1-2-4-1``), the final supernet validation accuracy, the
    search's epochs and its wall minutes."""
    return pd.DataFrame([{"variant": label, "seed": r.config.seed, "lut_ms": r.summary["lut_ms"],
                          "target_ms": r.summary["target_ms"], "depths": "-".join(map(str, r.summary["depths"])),
                          "val_acc": r.summary["final_val_acc"], "epochs": r.config.epochs,
                          "search_min": r.summary["search_wall_s"] / 60} for label, rs in runs.items() for r in rs],
                        columns=["variant", "seed", "lut_ms", "target_ms", "depths", "val_acc", "epochs", "search_min"])


def fig2_signal_line(runs: dict[str, list[SearchRun]], alpha: pd.DataFrame, n_ops: int) -> str:
    """One sentence: the steps per search epoch and, after the last epoch, α's largest share and
    the supernet's validation accuracy (means over runs)."""
    first = next(iter(runs.values()))[0]
    arch = int(first.records["arch_steps"].max())
    last = alpha.groupby(["sampling", "seed"]).tail(1)
    val = pd.concat([r.records.tail(1) for rs in runs.values() for r in rs])["val_acc"].mean()
    return (f"{arch * first.config.arch_every} weight steps and {arch} arch steps per search epoch; after the last "
            f"epoch ({int(last['arch_steps'].max())} arch steps) the largest α share is {last['max_share'].mean():.3f} "
            f"on average (uniform: {1 / n_ops:.3f}) and the supernet validation accuracy {val:.1f} %")


@planned
def fig4(ctx: Context, seeds: Iterable[int]) -> dict[str, dict[str, list[SearchRun]]]:
    """Fig. 4: (a) the three depth spaces; (b) the sink space with / without elasticity scaling."""
    seeds = list(seeds)
    depth = {name: search_runs(ctx, seeds, depth_space=ds) for ds, name, *_ in paper_tables.TABLE4}
    es = {label: search_runs(ctx, seeds, elasticity=on)
          for label, on in (("w/ elasticity scaling", True), ("w/o elasticity scaling", False))}
    return {"depth": depth, "latency": es}


@planned
def fig5(ctx: Context, seeds: Iterable[int], tuned: dict[str, dict[str, float]] | None = None,
         tuned_only: bool = False) -> dict[str, dict[str, list[SearchRun]]]:
    """Fig. 5: the searched latency of C1 and C2 with / without elasticity scaling; ``tuned``:
    objective -> its λ values (``tuning.Tuned.values``), default the objectives' defaults;
    ``tuned_only``: only the objectives ``tuned`` has (a tuning that is not finished has none)."""
    seeds, tuned = list(seeds), tuned or {}
    return {obj: {label: search_runs(ctx, seeds, objective=obj, elasticity=on, **tuned.get(obj, {}))
                  for label, on in (("w/ elasticity scaling", True), ("w/o elasticity scaling", False))}
            for obj in ("c1", "c2") if obj in tuned or not tuned_only}


def fig4_curves(runs: dict[str, dict[str, list[SearchRun]]]) -> pd.DataFrame:
    """Fig. 4's bands as one table: panel (a: depth, b: LUT latency), series, epoch, mean, min, max
    over seeds; a series without a finished run is left out."""
    rows = [row for panel, key, band in (("a", "depth", searched_depth), ("b", "latency", searched_latency))
            for row in _band_rows(runs[key], band, panel=panel)]
    return pd.DataFrame(rows, columns=["panel", "series", "epoch", "mean", "min", "max"])


def _band_rows(series: dict[str, list[SearchRun]], band: Callable[[Sequence[SearchRun]], pd.DataFrame],
               **columns: Any) -> list[dict]:
    """One row per (series, epoch) of ``band`` over each series' runs (a series without a run is
    left out), after the constant ``columns``."""
    return [{**columns, "series": name, "epoch": e, **b.loc[e].to_dict()}
            for name, rs in series.items() if rs for b in [band(rs)] for e in b.index]


def fig4_per_seed(runs: dict[str, dict[str, list[SearchRun]]]) -> pd.DataFrame:
    """``per_seed_curves`` of both Fig. 4 panels (the report's depth-jitter check reads panel a)."""
    return pd.concat([per_seed_curves(runs["depth"], panel="a"), per_seed_curves(runs["latency"], panel="b")],
                     ignore_index=True)


def fig5_curves(runs: dict[str, dict[str, list[SearchRun]]]) -> pd.DataFrame:
    """Fig. 5's bands as one table: objective, series, epoch, mean, min, max, target and λ values."""
    rows = []
    for obj, by_es in runs.items():
        for row in _band_rows(by_es, searched_latency, objective=obj):
            first = by_es[row["series"]][0]
            rows.append({**row, "target_ms": first.summary["target_ms"], "lam": first.config.lam, "lam2": first.config.lam2})
    return pd.DataFrame(rows, columns=["objective", "series", "epoch", "mean", "min", "max", "target_ms", "lam", "lam2"])


def fig5_per_seed(runs: dict[str, dict[str, list[SearchRun]]]) -> pd.DataFrame:
    """``per_seed_curves`` of every objective (the report's around/above-the-target check)."""
    parts = [per_seed_curves(by_es, objective=obj) for obj, by_es in runs.items()]
    return pd.concat(parts, ignore_index=True) if parts else per_seed_curves({}, objective=None)


def fig5_verdict(curves: pd.DataFrame, warmup: float) -> pd.DataFrame:
    """Per series, over the post-warm-up epochs of the mean curve: epochs, share above the target,
    mean and last gap (ms)."""
    searching = curves[curves["epoch"] > warmup]
    g = searching.assign(above=searching["mean"] > searching["target_ms"],
                         gap=searching["mean"] - searching["target_ms"]).groupby(["objective", "series"], sort=False)
    return pd.DataFrame({"epochs": g.size(), "share_above_pct": 100 * g["above"].mean(), "mean_gap_ms": g["gap"].mean(),
                         "last_gap_ms": g["gap"].last()}).reset_index()


def searched_latency(runs: Sequence[SearchRun]) -> pd.DataFrame:
    """Band (mean, min, max over seeds) of the derived net's LUT latency after each epoch."""
    return plots.band([r.records["lut_ms_after"].tolist() for r in runs])


def searched_depth(runs: Sequence[SearchRun]) -> pd.DataFrame:
    """Band of the derived net's total depth (layers in stages 3-8) after each epoch."""
    return plots.band([[sum(d) for d in r.records["derived_depths"]] for r in runs])


def per_seed_curves(runs: dict[str, list[SearchRun]], **columns: Any) -> pd.DataFrame:
    """One row per (series, seed, epoch): the derived net's depth (layers in stages 3-8) and LUT
    latency after that epoch, the target and the warm-up epochs; ``columns``: constant columns
    to add (e.g. ``panel``, ``objective``)."""
    return pd.DataFrame([{**columns, "series": label, "seed": r.config.seed, "epoch": int(e),
                          "depth": sum(d), "lut_ms": lat, "target_ms": r.summary["target_ms"],
                          "warmup_epochs": r.config.warmup_epochs}
                         for label, rs in runs.items() for r in rs
                         for e, d, lat in zip(r.records["epoch"], r.records["derived_depths"], r.records["lut_ms_after"])],
                        columns=[*columns, "series", "seed", "epoch", "depth", "lut_ms", "target_ms", "warmup_epochs"])
