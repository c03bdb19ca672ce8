"""The checks behind the evidence report's verdicts, and their rules: the claims of the paper
(``claims``) each name the checks here that decide them; a verdict says no more than the
evidence does.

Every check reads the tables the experiment notebooks write (``results/<experiment>/
per_seed-<profile>.csv``, ``collapse-``, ``per_seed_curves-``, ``tuned-``) and reduces them to
checks.  Three kinds of check, three rules (``stats``):

* **paired comparisons** (top-1, supernet accuracy, depth, depth jitter, collapse, search-time
  ratio): the 95 % t interval of the per-seed difference wholly on the paper's side of 0 ->
  reproduced, wholly on the other -> not reproduced, else (or < 2 seeds) inconclusive.  Every
  top-1 check also says how far apart the compared nets are in latency (they are not
  latency-matched), and what deciding it would need (``needs``: the paper's effect, the pooled
  per-run SD, the seeds at which the interval would be as narrow as that effect);
* **per-run latency checks** ("lands on the target", "misses it"): every run, not the mean, is
  judged against the tolerance (``stats.per_run_verdict``), and each run's *signed* error is
  printed - a search under the target and one over it are different findings;
* **premises**: C1 and C2 have no target in their loss, so every check of theirs assumes λ1 was
  tuned to the target (Sec. 4.5).  Where the tuning did not converge (``tuned-<profile>.csv``:
  unreachable or out of probes) those checks are **not tested**, whatever their numbers.

Search budget (``LATENCY_BUDGET``): where the profile's search is too short to decide a latency
claim (mini: 8 epochs, 5 with α steps, every miss an undershoot, while its 24-epoch searches land
within 0.1 % of the target), the latency checks are decided on the notebooks' longer searches
(``-long`` tables) and the profile's own searches are shown as context, deciding nothing.

A claim of several checks: reproduced when every deciding check is, not reproduced when one is
not, not tested when every one is not tested, inconclusive otherwise (``combine``).

Tolerances (the paper gives none): "meets the target precisely" = within ``PRECISE`` (1 %: the
paper's ES rows land within 0.1 ms of 15 ms, 0.7 %; it is ``stats.TARGET_TOLERANCE_PCT``, the one
definition of "met" that elasticity scaling and the search summaries use too); "misses the target" = off by more than
``MISSES`` (2 %: the paper's C1/C2 rows without ES are 4.5 % and 5.1 % off); between the two, a
run decides neither way.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from tfnas_core import stats
from tfnas_core.report import paper_tables

PRECISE = stats.TARGET_TOLERANCE_PCT  # %: a run meets the target within it (stats.meets_target)
MISSES = 2.0  # %
# Profile -> the table suffix whose searches decide latency claims (module docstring); a profile
# not listed decides them on its own searches (paper: the paper's 90 epochs).
LATENCY_BUDGET = {"mini": "-long"}
# Fig. 5: "after the first 50 [of 90] epochs" C1 fluctuates around the target, C2 stays above it.
FIG5_LATE = paper_tables.FIG5_LATE_FROM_EPOCH / paper_tables.SEARCH_EPOCHS
LAT_UNIT = "signed latency error, % of the target (LUT / target - 1)"
LATE_UNIT = "% of late epochs above the target"
TOP1 = "top-1 points"


@dataclass(frozen=True)
class Check:
    """One check of a claim: an estimate (paired checks) or per-run values (latency checks), the
    verdict its rule gives, and whether it decides the claim (``decides``) or is context."""

    what: str
    estimate: stats.Estimate | None
    verdict: str
    note: str = ""
    unit: str = TOP1
    margin: float = 0.0  # the verdict's threshold, in the estimate's unit
    values: tuple[tuple[int, float], ...] = ()  # per-run checks: (seed, signed value)
    decides: bool = True
    needs: dict = field(default_factory=dict)  # top-1 checks: what deciding would take (``_needs``)
    remark: str = ""  # what a reader must know to read the estimate, whatever the verdict

    def text(self) -> str:
        if self.values:
            vals = ", ".join(f"{v:+.2f}" for _, v in self.values)
            s = f"{self.what}: {vals} (seeds {', '.join(str(k) for k, _ in self.values)})"
        elif self.estimate is None:
            s = f"{self.what}: {self.note}"
        else:
            e = self.estimate
            ci = "" if e.n < 2 else f" [{e.low:+.2f}, {e.high:+.2f}]"
            s = f"{self.what}: {e.mean:+.2f}{ci} (n={e.n})"
            if "dlut_ms" in self.needs and math.isfinite(self.needs["dlut_ms"]):
                s += f", LUT latency {self.needs['dlut_ms']:+.2f} ms apart"
        if self.note and (self.values or self.estimate is not None) and self.verdict in ("not tested", "inconclusive"):
            s += f" - {self.verdict}: {self.note}"
        if self.remark:
            s += f" ({self.remark})"
        if not self.decides:
            s += " (context, decides nothing)"
        return s



def combine(verdicts: Sequence[str]) -> str:
    """All reproduced -> reproduced; any not reproduced -> not reproduced; all not tested -> not
    tested; else (and with no check) inconclusive."""
    if not verdicts:
        return "inconclusive"
    if all(v == "reproduced" for v in verdicts):
        return "reproduced"
    if any(v == "not reproduced" for v in verdicts):
        return "not reproduced"
    if all(v == "not tested" for v in verdicts):
        return "not tested"
    return "inconclusive"


# ----------------------------------------------------------------------------- reading tables


def read_table(path: str | Path, columns: Sequence[str] = ()) -> pd.DataFrame:
    """A results table (``runs.write_table``'s CSV) holding ``columns``; a torn, empty or
    unreadable one is a ``ValueError`` of one line naming it (rerun its notebook to rewrite it)."""
    hint = "rerun the notebook that writes it (or delete it)"
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        why = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(f"{path}: not a readable CSV table ({why}); {hint}") from None
    absent = [c for c in columns if c not in df.columns]
    if absent:
        raise ValueError(f"{path}: no column {', '.join(absent[:3])}; {hint}")
    return df


def result_table(root: Path, experiment: str, name: str, profile: str) -> pd.DataFrame | None:
    """``results/<experiment>/<name>-<profile>.csv`` under ``root`` (``read_table``); None when absent."""
    p = root / experiment / f"{name}-{profile}.csv"
    return read_table(p) if p.is_file() else None


def _missing(what: str, experiment: str, name: str, unit: str = TOP1, margin: float = 0.0) -> list[Check]:
    """The check of a table not written yet: inconclusive, deciding (only a deciding table is missed)."""
    return [Check(what, None, "inconclusive", f"no results/{experiment}/{name}.csv yet (run the notebook)",
                  unit, margin)]


def _budget_label(df: pd.DataFrame | None, profile: str, suffix: str) -> str:
    """", 24 epochs": the search budget of a table (its ``epochs`` column, else the profile's)."""
    if df is not None and "epochs" in df and df["epochs"].notna().any():
        return f", {int(df['epochs'].iloc[0])} epochs"
    if suffix:
        return ", longer search"
    from tfnas_core.search import config as search_config

    try:
        return f", {search_config.get_profile(profile).epochs} epochs"
    except Exception:  # an unknown profile name: no label
        return ""


def _deciding_suffix(profile: str) -> str:
    return LATENCY_BUDGET.get(profile, "")


def _budgets(profile: str) -> list[tuple[str, bool]]:
    """(suffix, decides) of every budget a latency claim is checked at for ``profile``."""
    deciding = _deciding_suffix(profile)
    return [("", True)] if not deciding else [("", False), (deciding, True)]


def tuning_premise(root: Path, profile: str, suffix: str = "") -> dict[str, tuple[bool | None, str]]:
    """Objective (c1/c2) -> (premise holds, why not): C1/C2's λ1 tuned to the target at this budget
    (``tuned-<profile><suffix>.csv`` status ``converged``).  None: no finished tuning to say."""
    t = result_table(root, "table5-latency-objectives", "tuned", profile + suffix)
    out: dict[str, tuple[bool | None, str]] = {}
    for r in (t.itertuples(index=False) if t is not None else ()):
        ok = str(r.status) == "converged"
        out[r.objective] = (ok, "" if ok else
                            f"{r.objective.upper()}'s λ1 tuning was {r.status} (best λ1 = {r.lam:g}: mean searched latency "
                            f"{r.gap_pct:+.1f} % of the target over seeds {r.seeds}), so its runs are not the paper's tuned C1/C2")
    for o in ("c1", "c2"):
        out.setdefault(o, (None, f"no finished tuning of {o.upper()} at this budget "
                              f"(results/table5-latency-objectives/tuned-{profile}{suffix}.csv)"))
    return out


def _premise_verdict(premise: dict | None, objs: Sequence[str | None]) -> tuple[str, str] | None:
    """("not tested" | "inconclusive", why) when a C1/C2 premise among ``objs`` failed or is unknown."""
    if not premise:
        return None
    objs = sorted(set(objs) - {None})
    failed = [premise[o][1] for o in objs if premise[o][0] is False]
    if failed:
        return "not tested", "; ".join(failed)
    unknown = [premise[o][1] for o in objs if premise[o][0] is None]
    return ("inconclusive", "; ".join(unknown)) if unknown else None


def _objective_of(variant: str) -> str | None:
    for o in ("c1", "c2"):
        if str(variant).startswith(paper_tables.TABLE5_NAMES[o]):
            return o
    return None


# ----------------------------------------------------------------------------- paired checks


def paired_by_seed(df: pd.DataFrame, a: str, b: str, metric: str) -> stats.Estimate | None:
    """``stats.paired`` of variant ``a`` minus ``b`` in a per-seed table; None when no seed has both."""
    va, vb = (_by_seed(df, x, metric) for x in (a, b))
    return stats.paired(va, vb) if set(va) & set(vb) else None


def _by_seed(df: pd.DataFrame, variant: str, metric: str) -> dict[int, float]:
    return {int(s): float(v) for s, v in df.loc[df["variant"] == variant, ["seed", metric]].dropna().itertuples(index=False)}


def _needs(df: pd.DataFrame, a: str, b: str, e: stats.Estimate | None) -> dict:
    """What a top-1 check would need to decide the paper's effect: the paper's difference, the
    per-run SD of top-1 pooled over the table's variants, the seeds at which the paired interval
    (per-pair SD sqrt(2) x the pooled SD) is as narrow as that effect, and at which a true effect
    of that size is found with 80 % power; and how far apart the two variants' nets are in LUT
    latency (they are not latency-matched)."""
    paper = {}
    if "paper_top1" in df:
        paper = df.dropna(subset=["paper_top1"]).groupby("variant")["paper_top1"].first().to_dict()
    effect = paper[a] - paper[b] if a in paper and b in paper else math.nan
    dlut = paired_by_seed(df, a, b, "lut_ms") if "lut_ms" in df else None
    return _seeds_needs(df, effect, math.sqrt(2), e, math.nan if dlut is None else dlut.mean)


def _seeds_needs(df: pd.DataFrame, effect: float, scale: float, e: stats.Estimate | None, dlut_ms: float) -> dict:
    """``needs`` of a top-1 contrast with per-contrast SD ``scale`` x the per-run SD of top-1 pooled
    over ``df``'s variants (``stats.pooled_sd``): the seeds to decide ``effect`` (``stats.seeds_needed``)."""
    sd = stats.pooled_sd(g["top1"].dropna().tolist() for _, g in df.groupby("variant"))
    ok = math.isfinite(sd)
    return {"effect": effect, "sd_pooled": sd, "sd_diff_observed": math.nan if e is None else e.std,
            "seeds_needed": stats.seeds_needed(scale * sd, effect) if ok else None,
            "seeds_needed_80": stats.seeds_needed(scale * sd, effect, power=0.8) if ok else None,
            "dlut_ms": dlut_ms}


def _paired_checks(df: pd.DataFrame, pairs: Sequence[tuple[str, str, int]], metric: str, unit: str, label: str,
                   premise: dict | None) -> list[Check]:
    out = []
    for a, b, direction in pairs:
        what = f"{metric} {a} − {b}{label} ({'>' if direction > 0 else '<'} 0)"
        e = paired_by_seed(df, a, b, metric)
        needs = _needs(df, a, b, e) if metric == "top1" else {}
        gate = _premise_verdict(premise, [_objective_of(a), _objective_of(b)])
        if e is None:
            out.append(Check(what, None, "inconclusive", "no seed has both variants", unit, needs=needs))
        elif gate:
            out.append(Check(what, e, gate[0], gate[1], unit, needs=needs))
        else:
            out.append(Check(what, e, stats.verdict(e, direction), "" if e.n >= 2 else "one seed", unit, needs=needs))
    return out


@dataclass(frozen=True)
class PairedClaim:
    """Paired differences of ``metric`` between variants of ``experiment``'s per-seed table;
    ``derive`` computes the metric's column when it is not one of the table's; ``suffix``: an
    optional table (``-long``: no check where it is absent); ``tuned``: C1/C2 variants need
    their tuning premise (``tuning_premise``).  Called with ``(root, profile)``: its checks.

    The claim evaluators are objects whose ``__call__`` holds the rule, not closures made when
    ``claims`` is imported: the rule is then looked up at each call, which is what lets
    ``make mutate`` plant changes in it."""
    experiment: str
    pairs: Sequence[tuple[str, str, int]]
    metric: str = "top1"
    unit: str = TOP1
    derive: Callable[[pd.DataFrame], pd.Series] | None = None
    name: str = "per_seed"
    suffix: str = ""
    label: str = ""
    tuned: bool = False

    def __call__(self, root: Path, profile: str) -> list[Check]:
        df = result_table(root, self.experiment, self.name, profile + self.suffix)
        if df is None:
            if self.suffix:
                return []
            a, b, direction = self.pairs[0]
            return _missing(f"{self.metric} {a} − {b} ({'>' if direction > 0 else '<'} 0)"
                            + (" …" if len(self.pairs) > 1 else ""), self.experiment, f"{self.name}-{profile}", self.unit)
        if self.derive is not None:
            df = df.assign(**{self.metric: self.derive(df)})
        premise = tuning_premise(root, profile, self.suffix) if self.tuned else None
        return _paired_checks(df, self.pairs, self.metric, self.unit, self.label, premise)


AccuracyClaim = PairedClaim  # top-1 differences, the default metric


def _seed_values_check(what: str, unit: str, values: dict[int, float], direction: int, margin: float = 0.0,
                       note: str = "") -> Check:
    """A check on one per-seed quantity (already a paired contrast), by ``stats.verdict``;
    ``note``: said when nothing more specific is (one seed, no seed)."""
    if not values:
        return Check(what, None, "inconclusive", "no seed has every variant", unit, margin)
    e = stats.mean_ci(values[s] for s in sorted(values))
    return Check(what, e, stats.verdict(e, direction, margin), note if e.n >= 2 else "one seed", unit, margin)


def exclusion_over_redundancy(root: Path, profile: str) -> list[Check]:
    """Sec. 4.4: (skip out − skip in) − (sink − skip out) > 0, per seed, in top-1 (the paper:
    0.5 against 0.2 points)."""
    what = "top1 (skip out − skip in) − (sink-connecting − skip out) (> 0)"
    df = result_table(root, "table4-depth-space", "per_seed", profile)
    if df is None:
        return _missing(what, "table4-depth-space", f"per_seed-{profile}")
    i, o, s = (_by_seed(df, v, "top1") for v in ("skip in candidates", "skip out candidates", "sink-connecting"))
    c = _seed_values_check(what, TOP1, {k: (o[k] - i[k]) - (s[k] - o[k]) for k in set(i) & set(o) & set(s)}, +1)
    # what deciding it would need: the paper's contrast (0.5 - 0.2) at a per-contrast SD of sqrt(6)
    # x the pooled per-run SD (2·out − in − sink: variance (4 + 1 + 1) σ²)
    paper = {n: p for _, n, p, *_ in paper_tables.TABLE4}
    effect = (paper["skip out candidates"] - paper["skip in candidates"]) - (paper["sink-connecting"] - paper["skip out candidates"])
    return [dataclasses.replace(c, needs=_seeds_needs(df, effect, math.sqrt(6), c.estimate, math.nan))]


def search_cost(root: Path, profile: str) -> list[Check]:
    """Table 3's search cost: bi-sampling's search wall time over one-path Gumbel's, per seed
    (> 1; the paper: 1.8 / 1.5 GPU days = 1.2); from Table 3's runs and Fig. 2's (both budgets)."""
    out = []
    sources = [("table3-sampling", "per_seed", "", "Gumbel+Random", "Gumbel", "search_min")]
    sources += [("fig2-operation-collapse", "per_seed", sfx, "bi-sampling", "Gumbel", "search_min") for sfx in ("", "-long")]
    for experiment, name, sfx, a, b, col in sources:
        df = result_table(root, experiment, name, profile + sfx)
        what = f"search time {a} / {b} ({experiment.split('-')[0]}{_budget_label(df, profile, sfx)}) (> 1)"
        if df is None or col not in df:
            if experiment == "table3-sampling":
                out += _missing(what, experiment, f"{name}-{profile}", "ratio of search wall times", 1.0)
            continue
        va, vb = _by_seed(df, a, col), _by_seed(df, b, col)
        ratio = {s: va[s] / vb[s] for s in set(va) & set(vb) if vb[s] > 0}
        out.append(_seed_values_check(what, "ratio of search wall times", ratio, +1, 1.0,
                                      "wall time on a shared 2-core machine, two searches at a time"))
    return out


def depth_jitter(root: Path, profile: str) -> list[Check]:
    """Fig. 4a's other half: the derived depth jitters with skip in the candidates and is stable
    with sink-connecting.  Jitter of one search = mean |change| of the derived depth between
    consecutive searching epochs (after the first: its change is the descent from the uniform
    initial β, not a jitter); skip in − sink-connecting, paired by seed (> 0)."""
    out = []
    for sfx in ("", "-long"):
        df = result_table(root, "fig4-depth-and-latency", "per_seed_curves", profile + sfx)
        what = f"depth jitter (layers per epoch{_budget_label(df, profile, sfx)}) skip in candidates − sink-connecting (> 0)"
        if df is None:
            if not sfx:
                out += _missing(what, "fig4-depth-and-latency", f"per_seed_curves-{profile}", "layers")
            continue
        d = df[df["panel"] == "a"]
        d = d[d["epoch"] > d["warmup_epochs"]]
        jit = {(r["series"], int(r["seed"])): g["depth"].diff().abs().mean()
               for r, g in ((dict(zip(("series", "seed"), k)), g.sort_values("epoch")) for k, g in d.groupby(["series", "seed"]))}
        si = {s: v for (ser, s), v in jit.items() if ser == "skip in candidates"}
        sk = {s: v for (ser, s), v in jit.items() if ser == "sink-connecting"}
        diff = {s: si[s] - sk[s] for s in set(si) & set(sk) if pd.notna(si[s]) and pd.notna(sk[s])}
        if not diff and set(si) & set(sk):
            out.append(Check(what, None, "inconclusive", "fewer than two searching epochs after the first", "layers"))
            continue
        out.append(dataclasses.replace(_seed_values_check(what, "layers", diff, +1),
                                       remark=_depth_floor_remark(d, "skip in candidates")))
    return out


def _depth_floor_remark(d: pd.DataFrame, series: str) -> str:
    """Said when ``series``' derived depth ends at the depth space's floor (every skippable layer a
    skip) in every seed: a depth at the floor cannot jitter down, so a small jitter there is a
    collapse onto skips, not the stable choice the paper credits sink-connecting with."""
    from tfnas_core.arch.space import get_space  # plain data, no torch
    floor = sum(st.depth[0] for st in get_space("tfnas").searchable)
    runs = [g.sort_values("epoch") for _, g in d[d["series"] == series].groupby("seed")]
    if not runs or any(g["depth"].iloc[-1] != floor for g in runs):
        return ""
    # the first epoch from which each seed stays at the floor to the end
    since = [int(g["epoch"].iloc[(g["depth"] != floor).to_numpy().nonzero()[0].max() + 1]
                 if (g["depth"] != floor).any() else g["epoch"].iloc[0]) for g in runs]
    by = f"{min(since)}" if min(since) == max(since) else f"{min(since)}-{max(since)}"
    return (f"{series}: the derived depth reaches the space's floor of {floor} layers, every skippable layer a skip, "
            f"by epoch {by} of {max(int(g['epoch'].max()) for g in runs)} and stays there in every seed: "
            "it cannot move down, so its small jitter is a collapse onto skips, not a stable choice")


def supernet_accuracy(root: Path, profile: str) -> list[Check]:
    """Fig. 2c/f: the supernet's final validation accuracy, bi-sampling − Gumbel, paired by seed."""
    out = []
    for sfx in ("", "-long"):
        df = result_table(root, "fig2-operation-collapse", "per_seed", profile + sfx)
        if df is None:
            if not sfx:
                out += _missing("supernet val accuracy bi-sampling − Gumbel (> 0)", "fig2-operation-collapse",
                                f"per_seed-{profile}", "supernet accuracy points")
            continue
        out += _paired_checks(df, [("bi-sampling", "Gumbel", +1)], "val_acc", "supernet accuracy points",
                              f" ({_budget_label(df, profile, sfx)[2:]})", None)
    return out


# ----------------------------------------------------------------------------- per-run latency checks


def _per_run_check(what: str, rows: pd.DataFrame, want_inside: bool, decides: bool,
                   gate: tuple[str, str] | None) -> Check:
    err = stats.target_gap_pct(rows["lut_ms"], rows["target_ms"])
    values = tuple((int(s), float(v)) for s, v in zip(rows["seed"], err))
    margin = PRECISE if want_inside else MISSES
    if gate:
        return Check(what, None, gate[0], gate[1], LAT_UNIT, margin, values, decides)
    v = stats.per_run_verdict(err, PRECISE, MISSES, want_inside)
    note = "" if len(values) >= 2 else "one run"
    if v == "inconclusive" and len(values) >= 2:
        note = f"a run between {PRECISE:g} and {MISSES:g} % decides neither way"
    return Check(what, None, v, note, LAT_UNIT, margin, values, decides)


@dataclass(frozen=True)
class LatencyClaim:
    """Per-run latency error (signed, % of the target) of each variant against the tolerance
    (``want_inside``: every run within ``PRECISE``; else every run off by more than ``MISSES``), at
    every budget of the profile (``_budgets``: at mini the 8-epoch searches are context and the
    ``-long`` ones decide).  C1/C2 variants need their tuning premise at that budget.
    ``only_suffix``: check this table only (Fig. 2's longer searches, deciding where they exist).
    Called with ``(root, profile)``: its checks."""
    experiment: str
    variants: Callable[[pd.DataFrame], Sequence[str]]
    want_inside: bool
    label: str = ""
    only_suffix: str | None = None

    def __call__(self, root: Path, profile: str) -> list[Check]:
        rule = f"{'within' if self.want_inside else 'off by more than'} {PRECISE if self.want_inside else MISSES:g} %"
        out = []
        budgets = _budgets(profile) if self.only_suffix is None else [(self.only_suffix, True)]
        for sfx, decides in budgets:
            df = result_table(root, self.experiment, "per_seed", profile + sfx)
            if df is None:
                if self.only_suffix is None and decides:
                    out += _missing(f"latency error, every run {rule}", self.experiment, f"per_seed-{profile}{sfx}",
                                    LAT_UNIT, PRECISE if self.want_inside else MISSES)
                continue
            premise = tuning_premise(root, profile, sfx)
            bl = _budget_label(df, profile, sfx)
            for v in self.variants(df):
                rows = df[df["variant"] == v].dropna(subset=["lut_ms", "target_ms"]).sort_values("seed")
                what = f"latency error of {v}{self.label}{bl}, every run {rule}"
                if rows.empty:
                    out.append(Check(what, None, "inconclusive", "no finished run yet", LAT_UNIT, decides=decides))
                    continue
                out.append(_per_run_check(what, rows, self.want_inside, decides,
                                          _premise_verdict(premise, [_objective_of(v)])))
        return out


def c1_around_c2_above(root: Path, profile: str) -> list[Check]:
    """Fig. 5 w/o ES: over the last 40/90 of the epochs C1 is on both sides of the target (some
    epochs above, some below) and C2 above it in every epoch; per run, at every budget."""
    out = []
    for sfx, decides in _budgets(profile):
        df = result_table(root, "fig5-latency-objectives", "per_seed_curves", profile + sfx)
        if df is None:
            if decides:
                out += _missing("share of late epochs above the target, w/o ES", "fig5-latency-objectives",
                                f"per_seed_curves-{profile}{sfx}", LATE_UNIT)
            continue
        premise = tuning_premise(root, profile, sfx)
        bl = _budget_label(df, profile, sfx)
        d = df[df["series"] == "w/o elasticity scaling"]
        for obj, want in (("c1", "around"), ("c2", "above")):
            rows = d[d["objective"] == obj]
            shares = {}
            for s, g in rows.groupby("seed"):
                late = g[g["epoch"] > FIG5_LATE * g["epoch"].max()]
                shares[int(s)] = 100.0 * float((late["lut_ms"] > late["target_ms"]).mean())
            what = (f"{obj.upper()} w/o ES{bl}: % of late epochs above the target "
                    f"({'between 0 and 100: around it' if want == 'around' else '100: always above'})")
            values = tuple(sorted(shares.items()))
            if not values:
                out.append(Check(what, None, "inconclusive", "no run", LATE_UNIT, decides=decides))
                continue
            ok = [(0 < v < 100) if want == "around" else (v == 100) for _, v in values]
            gate = _premise_verdict(premise, [obj])
            if gate:
                verdict, note = gate
            elif len(values) < 2:
                verdict, note = "inconclusive", "one run"
            else:
                verdict = "reproduced" if all(ok) else "not reproduced" if not any(ok) else "inconclusive"
                note = "" if verdict != "inconclusive" else "some runs do, some do not"
            out.append(Check(what, None, verdict, note, LATE_UNIT, 0.0, values, decides))
    return out


# ----------------------------------------------------------------------------- other checks


@dataclass(frozen=True)
class Collapse:
    """Fig. 2: the share of the most derived op per layer (over the search epochs), averaged over
    the counted layers per seed, Gumbel-only minus bi-sampling, paired by seed (seeds are the
    replicates; layers of one search are not independent).  ``suffix``: an optional table
    (``-long``: the notebook's longer searches, a check only where they ran).  Called with
    ``(root, profile)``: its checks."""
    suffix: str = ""
    label: str = ""

    def __call__(self, root: Path, profile: str) -> list[Check]:
        df = result_table(root, "fig2-operation-collapse", "collapse", profile + self.suffix)
        if df is None and self.suffix:
            return []
        if df is None:
            return _missing("top-op share Gumbel − bi-sampling (> 0)", "fig2-operation-collapse", f"collapse-{profile}",
                            "top-op share points")
        per_seed = df.groupby(["sampling", "seed"])["top_share"].mean()
        g = per_seed.get("Gumbel", pd.Series(dtype=float)).to_dict()
        b = per_seed.get("bi-sampling", pd.Series(dtype=float)).to_dict()
        what = f"top-op share (%, mean over the counted layers{self.label}) Gumbel − bi-sampling (> 0)"
        if not set(g) & set(b):
            return [Check(what, None, "inconclusive", "no seed has both")]
        e = stats.paired(g, b)
        return [Check(what, e, stats.verdict(e, +1), "" if e.n >= 2 else "one seed", "top-op share points")]


def total_depth(df: pd.DataFrame) -> pd.Series:
    """The derived net's layers in stages 3-8, from the per-seed table's ``depths`` (e.g. ``2-3-1-2-4-1``)."""
    return df["depths"].astype(str).map(lambda d: sum(int(x) for x in d.split("-")))


@dataclass(frozen=True)
class AllOf:
    """The checks of several evaluators together, in order (a claim with evidence in more than one
    table).  Called with ``(root, profile)``."""
    evaluators: tuple[Callable[[Path, str], list[Check]], ...]

    def __call__(self, root: Path, profile: str) -> list[Check]:
        return [c for ev in self.evaluators for c in ev(root, profile)]


# The keys of a top-1 check's ``needs`` (``_seeds_needs``): columns of ``claims.evaluate_checks``.
NEEDS_COLUMNS = ("effect", "sd_pooled", "sd_diff_observed", "seeds_needed", "seeds_needed_80", "dlut_ms")

__all__ = ["AccuracyClaim", "AllOf", "Check", "Collapse", "FIG5_LATE", "LAT_UNIT", "LATE_UNIT", "LATENCY_BUDGET",
           "LatencyClaim", "MISSES", "NEEDS_COLUMNS", "PRECISE", "PairedClaim", "TOP1", "c1_around_c2_above", "combine",
           "depth_jitter", "exclusion_over_redundancy", "paired_by_seed", "read_table", "result_table", "search_cost",
           "supernet_accuracy", "total_depth", "tuning_premise"]
