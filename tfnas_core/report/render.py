"""The evidence report as markdown (``to_markdown``): the verdict rules, what the profile's numbers
are (``scope``), one row per claim (``claims.evaluate``), what an inconclusive top-1 check would
need (``needs_table``) and what the evidence cost in compute (``compute_costs``)."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from tfnas_core import stats
from tfnas_core.report.verdicts import (LATENCY_BUDGET, MISSES, NEEDS_COLUMNS, PRECISE, TOP1, read_table,
                                        result_table)

RUNS_COLUMNS = ("kind", "key", "source", "wall_min")  # of a runs-<profile>.csv (experiments.runs_table)


def compute_costs(results_root: str | Path, profile: str) -> pd.DataFrame:
    """What each notebook's runs cost to compute, from the ``runs-<profile>.csv`` each experiment
    notebook writes (``experiments.runs_table``): searches, retrainings and their wall minutes, one
    after another, per notebook, and a last row over the distinct runs of all of them (notebooks
    share runs, so it is less than the column's sum).  Empty when no notebook has written one."""
    rows, every = [], []
    for path in sorted(Path(results_root).glob(f"*/runs-{profile}.csv")):
        df = read_table(path, RUNS_COLUMNS)
        every.append(df)
        rows.append(cost_row(path.parent.name, df))
    if every:
        rows.append(cost_row("all notebooks (distinct runs)", pd.concat(every).drop_duplicates("key")))
    return pd.DataFrame(rows, columns=["notebook", "searches", "retrainings", "search_min", "retrain_min",
                                       "compute_min", "runs_computed_now"])


def cost_row(name: str, df: pd.DataFrame) -> dict:
    """Counts and wall minutes of one runs table (``experiments.runs_table``), by kind."""
    s, t = df[df["kind"] == "search"], df[df["kind"] == "train"]
    return {"notebook": name, "searches": len(s), "retrainings": len(t), "search_min": s["wall_min"].sum(),
            "retrain_min": t["wall_min"].sum(), "compute_min": df["wall_min"].sum(),
            "runs_computed_now": int((df["source"] == "computed now").sum())}


def scope(results_root: str | Path, profile: str) -> str:
    """What this profile's numbers are and are not, measured from its configs and tables: the
    retraining behind top-1, how strongly top-1 follows the net's size, and which runs serve
    several claims."""
    from tfnas_core.train import config as profiles
    from tfnas_core.search import config as search_config

    root = Path(results_root)
    try:
        t, s = profiles.get_profile(profile), search_config.get_profile(profile)
    except Exception:
        return ""
    parts = [f"**What the numbers are.** Top-1 is the {t.dataset} validation accuracy of each derived net retrained "
             f"from scratch for {t.epochs} epochs at {t.resolution} px and width x{t.width_mult:g} (profile `{profile}`); "
             f"each search ran {s.epochs} epochs ({s.epochs - s.warmup_epochs:g} with α/β steps) on {s.dataset}"
             + (f", the longer ones (`{LATENCY_BUDGET[profile]}` tables, searches only){_long_epochs(root, profile)}"
                if profile in LATENCY_BUDGET else "") + "."]
    if t.dataset != "imagenet":
        parts.append("It is not ImageNet top-1: compare signs and rankings with the paper's, not levels.")
    nets = [df[["seed", "lut_ms", "top1"]] for name in ("table3-sampling", "table4-depth-space",
                                                        "table5-latency-objectives", "table13-lambda")
            for df in [result_table(root, name, "per_seed", profile)] if df is not None and {"seed", "lut_ms", "top1"} <= set(df)]
    if nets:
        d = pd.concat(nets).dropna().round(6).drop_duplicates()
        if len(d) >= 3 and d["lut_ms"].std() > 0 and d["top1"].std() > 0:
            r = d["lut_ms"].corr(d["top1"])
            parts.append(f"The nets a comparison sets side by side are not latency-matched: over the {len(d)} distinct "
                         f"retrained nets top-1 correlates with the derived net's LUT latency at r = {r:+.2f}, and its "
                         f"per-run SD over seeds is the 'pooled SD' below, so each top-1 check also prints how far apart "
                         f"its two variants are in latency.")
    runs = [read_table(p, RUNS_COLUMNS).assign(notebook=p.parent.name) for p in sorted(root.glob(f"*/runs-{profile}.csv"))]
    if runs:
        r = pd.concat(runs)
        shared = r[r["kind"] == "search"].groupby("key")["notebook"].nunique()
        if (shared > 1).any():
            parts.append(f"Checks are not independent where they share runs: {int((shared > 1).sum())} searches serve more "
                         f"than one notebook, one of them {int(shared.max())} (by design, Table 3's Gumbel+Random search is "
                         "also Table 4's sink-connecting, Table 5's Ours (|.|) w/ ES and Table 13's λ = 0.1 search), "
                         "so a chance result in one of them moves several claims at once.")
    return " ".join(parts)


def _long_epochs(root: Path, profile: str) -> str:
    """" 24 epochs": the budget of the longer searches, from any ``-long`` per-seed table."""
    for p in sorted(root.glob(f"*/per_seed-{profile}{LATENCY_BUDGET[profile]}.csv")):
        df = read_table(p)
        if "epochs" in df and df["epochs"].notna().any():
            return f" {int(df['epochs'].iloc[0])} epochs"
    return ""


def _fmt(v, spec: str = "+.2f") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return format(v, spec)


def needs_table(checks: pd.DataFrame) -> pd.DataFrame:
    """The top-1 checks with what deciding them would need (``_needs``)."""
    t = checks[(checks["unit"] == TOP1) & checks["n"].gt(0)].copy()
    return t[["id", "what", "verdict", "mean", "ci95_low", "ci95_high", *NEEDS_COLUMNS]]


def to_markdown(table: pd.DataFrame, profile: str, costs: pd.DataFrame | None = None,
                checks: pd.DataFrame | None = None, scope_text: str = "") -> str:
    counts = table["verdict"].value_counts().to_dict()
    lines = [f"# Evidence report ({profile} profile)", "",
             "One row per claim of the paper. Verdict rules (tfnas_core/report/verdicts.py, stats.py): a paired comparison is "
             "reproduced when the 95 % Student-t interval of the per-seed difference lies wholly on the paper's side, "
             "not reproduced when wholly on the other, inconclusive otherwise or with fewer than 2 seeds. A claim about "
             f"every run (meets the target: within {PRECISE:g} %; misses it: off by more than {MISSES:g} %) is judged run "
             "by run, each run's signed error printed (− under the target, + over). A check whose premise failed (C1/C2 "
             "not tunable to the target) is not tested. "
             + (f"Latency claims are decided on the longer searches (`{LATENCY_BUDGET[profile]}` tables): this profile's "
                "own searches are too short for latency and are shown as context. " if profile in LATENCY_BUDGET else "")
             + "A claim needs every deciding check. "
             + ", ".join(f"{v}: {counts.get(v, 0)}" for v in stats.VERDICTS) + ".", ""]
    if scope_text:
        lines += [scope_text, ""]
    lines += ["| claim | where | paper | ours (check: mean difference [95 % CI] (n), or every run) | verdict |",
              "| --- | --- | --- | --- | --- |"]
    for r in table.itertuples():
        cells = [str(x).replace("|", "\\|") for x in (r.claim, r.where, r.paper, r.ours)]
        lines.append("| " + " | ".join(cells) + f" | **{r.verdict}** |")
    if checks is not None and len(checks):
        nt = needs_table(checks)
        if len(nt):
            lines += ["", "## What an inconclusive top-1 verdict would need", "",
                      "Per top-1 check: the paper's difference (its effect), ours, the observed SD of our per-seed "
                      "differences, the per-run SD of top-1 over seeds pooled over the table's variants, and the seeds "
                      "at which a paired 95 % interval (per-pair SD √2 × the pooled SD; √6 × for the three-variant contrast "
                      "of exclusion over redundancy) would be as narrow as the "
                      "paper's effect - and at which a true effect of that size would be found with 80 % power. "
                      "'LUT ms apart': how much larger the first variant's nets are (they are not latency-matched; "
                      "'What the numbers are' above gives how top-1 goes with latency at this scale).", "",
                      "| claim | check | paper effect | ours [95 % CI] | SD of differences | pooled per-run SD | seeds: "
                      "interval ≤ effect | seeds: 80 % power | LUT ms apart | verdict |",
                      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
            for r in nt.itertuples():
                ours = _fmt(r.mean) + (f" [{_fmt(r.ci95_low)}, {_fmt(r.ci95_high)}]" if pd.notna(r.ci95_low) else "")
                lines.append(f"| {r.id} | {r.what} | {_fmt(r.effect)} | {ours} | {_fmt(r.sd_diff_observed, '.2f')} | "
                             f"{_fmt(r.sd_pooled, '.2f')} | {_fmt(r.seeds_needed, '.0f')} | {_fmt(r.seeds_needed_80, '.0f')} | "
                             f"{_fmt(r.dlut_ms)} | {r.verdict} |")
    if costs is not None and len(costs):
        lines += ["", "## What the evidence cost", "",
                  "Wall minutes of the runs each notebook's tables rest on, as each run took when it was computed "
                  "(one after another on one core; `make -j2` runs two at once), read from "
                  "`results/<notebook>/runs-" + profile + ".csv`. Notebooks share runs: the last row counts each "
                  "run once. `runs_computed_now`: runs the notebook's last execution computed (the others came "
                  "from the run store or the committed run archive).", "",
                  "| notebook | searches | retrainings | search min | retrain min | compute min | computed at last execution |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in costs.itertuples():
            lines.append(f"| {r.notebook} | {r.searches} | {r.retrainings} | {r.search_min:.0f} | {r.retrain_min:.0f} "
                         f"| {r.compute_min:.0f} | {r.runs_computed_now} |")
    return "\n".join(lines) + "\n"



__all__ = ["RUNS_COLUMNS", "compute_costs", "cost_row", "needs_table", "scope", "to_markdown"]
