"""Tuning C1 and C2 to the target latency, as the paper did for Table 5 and Fig. 5.

Paper Sec. 4.5: C1 (FBNet, ``λ1 · log(LAT)^λ2``) and C2 (ProxylessNAS, ``λ1 · LAT``) have no
target inside the loss, so "we try our best to fine-tune the hyperparameters in C1 and C2, so that
the searched architectures conform to the latency constraint", searching *without* elasticity
scaling; the tuned values are not printed.  This module does that tuning the same way for every
profile, and records what it cost.

What is tuned: λ1 only.  For C1, λ2 stays at FBNet's 0.6 (``objectives.DEFAULTS``): one number
(mean searched latency = target) pins one degree of freedom, the paper gives neither value, and
λ2 only reshapes the penalty's slope over LAT while λ1 sets its strength.

How (``tune``): the searched latency falls as λ1 grows, so on ``log λ1``

1. start at ``lam0`` (the objective's default unless given; ``START`` scales it per profile);
2. *bracket*: step by ``factor`` (10) toward the target - weaker when the searched net is under
   the target, stronger when over - until two probes straddle it.  When the last two probes,
   extrapolated on log λ1, put the target beyond the end of ``lam_range`` (1e-7: no latency
   term to speak of; 1e3), the next probe is that end; if even the end stays on the same side,
   the target is out of reach and the closest probe is returned with ``status="unreachable"``;
3. *bisect*: the next ``log λ1`` is where the straight line through the bracket's two probes
   (mean latency against ``log λ1``) meets the target, held inside the bracket's middle half
   (a safeguarded false position; plain bisection when the line is flat), until
   ``|mean − target| <= tol · target`` (5 %) or ``max_probes`` probes.

A probe is one search per seed at that λ1 (the profile's full search, elasticity off); its score
is the mean over seeds of the derived net's final LUT latency.  Every search goes through the run
store (``experiments.search_run``), so a rerun of the tuning, and the notebooks' "w/o ES" rows at
the tuned value, reuse the searches.  λ1 is rounded to 3 significant digits so run keys stay
readable and reproducible.  ``tuned_values`` writes / reads
``results/table5-latency-objectives/tuned-<profile>.csv`` (one row per objective) and
``tuned_probes-<profile>.csv`` (one row per probe).
"""
from __future__ import annotations

import dataclasses

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from tfnas_core.search import objectives
from tfnas_core.experiments.run_plan import planned

TUNED = ("c1", "c2")  # the objectives without a target (Table 5)
TOL = 0.05  # |mean − target| <= 5 % of the target
FACTOR = 10.0  # bracketing step on λ1
LAM_RANGE = (1e-7, 1e3)  # bracketing gives up outside this range
# Probes (each one search per seed) a tuning may spend, per profile: smoke only shows the
# procedure; mini is what two shared CPU cores afford in an hour.
MAX_PROBES = {"smoke": 2, "mini": 6, "paper": 8}
RESULTS_DIR = "results/table5-latency-objectives"
# Where the bracketing starts, as a multiple of the objective's default λ1: at mini the defaults
# were measured far under the target (issue 13: C1/C2 searches at 6-10 ms against 17.8 ms), so
# the first probe there is one bracketing step weaker; elsewhere the default itself.
START = {"mini": 1 / FACTOR}


@dataclass(frozen=True)
class Probe:
    """The searches at one λ1: the final LUT latency of the derived net per seed."""

    lam: float
    latencies: tuple[float, ...]
    seeds: tuple[int, ...] = ()

    @property
    def mean(self) -> float:
        return statistics.fmean(self.latencies)

    @property
    def std(self) -> float:
        return statistics.stdev(self.latencies) if len(self.latencies) > 1 else 0.0


@dataclass(frozen=True)
class Result:
    """Where a tuning ended: the chosen λ1 (the probe closest to the target) and every probe."""

    lam: float
    target_ms: float
    probes: tuple[Probe, ...]
    status: str  # converged | max_probes | unreachable
    best: Probe = field(repr=False)

    @property
    def searches(self) -> int:
        return sum(len(p.latencies) for p in self.probes)

    @property
    def gap_pct(self) -> float:
        return 100.0 * (self.best.mean - self.target_ms) / self.target_ms


def _sig(x: float, digits: int = 3) -> float:
    return float(f"{x:.{digits}g}")


def tune(measure: Callable[[float], Sequence[float]], target_ms: float, lam0: float, *, tol: float = TOL,
         factor: float = FACTOR, max_probes: int = 6, lam_range: tuple[float, float] = LAM_RANGE,
         say: Callable[[str], None] | None = None) -> Result:
    """Find λ1 with ``mean(measure(λ1)) ≈ target_ms``, ``measure`` falling in λ1 (module docstring).

    ``measure(lam)`` returns the searched latencies (one per seed).  Raises ``ValueError`` on a
    non-positive target/λ0/tolerance, ``factor <= 1`` or ``max_probes < 1``."""
    for name, v in (("target_ms", target_ms), ("lam0", lam0), ("tol", tol)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive number, got {v!r}")
    if not factor > 1:
        raise ValueError(f"factor must be > 1, got {factor!r}")
    if not (isinstance(max_probes, int) and max_probes >= 1):
        raise ValueError(f"max_probes must be an integer >= 1, got {max_probes!r}")
    say = say or (lambda m: None)
    probes: list[Probe] = []
    seen: dict[float, Probe] = {}

    def probe(lam: float) -> Probe:
        lam = _sig(lam)
        if lam in seen:  # rounding can map two points onto one λ: never search twice
            return seen[lam]
        lats = tuple(float(x) for x in measure(lam))
        if not lats:
            raise ValueError("measure returned no latencies")
        p = Probe(lam, lats)
        probes.append(p)
        seen[lam] = p
        say(f"tuning probe {len(probes)}/{max_probes}: λ1 = {lam:g} -> mean {p.mean:.3f} ms "
            f"(sd {p.std:.3f}, {len(lats)} seed(s)) vs target {target_ms:.3f} ms ({100 * (p.mean / target_ms - 1):+.1f} %)")
        return p

    def close(p: Probe) -> bool:
        return abs(p.mean - target_ms) <= tol * target_ms

    def done(status: str) -> Result:
        best = min(probes, key=lambda p: abs(p.mean - target_ms))
        return Result(best.lam, float(target_ms), tuple(probes), status, best)

    p = probe(lam0)
    if close(p):
        return done("converged")
    # -- bracket: over the target -> stronger (×factor), under -> weaker (÷factor); when the last
    # two steps say the target lies beyond the range's end, probe that end instead
    over, under = (p, None) if p.mean > target_ms else (None, p)
    prev = None
    while over is None or under is None:
        if len(probes) >= max_probes:
            return done("max_probes")
        up = p.mean > target_ms
        end = lam_range[1] if up else lam_range[0]
        if p.lam == end:
            return done("unreachable")
        nxt = p.lam * factor if up else p.lam / factor
        if prev is not None and decades_needed(prev, p, target_ms) > abs(math.log10(end / p.lam)):
            nxt = end
        nxt = min(max(nxt, lam_range[0]), lam_range[1])
        prev, p = p, probe(nxt)
        if close(p):
            return done("converged")
        if p.mean > target_ms:
            over = p
        else:
            under = p
    # -- safeguarded false position on log λ1 between `over` (weaker) and `under` (stronger)
    while len(probes) < max_probes:
        a, b = math.log(over.lam), math.log(under.lam)
        slope = under.mean - over.mean
        t = (target_ms - over.mean) / slope if slope < 0 else 0.5
        t = min(max(t, 0.25), 0.75)
        p = probe(math.exp(a + t * (b - a)))
        if close(p):
            return done("converged")
        if p.lam in (over.lam, under.lam):  # the bracket is narrower than the rounding
            break
        if p.mean > target_ms:
            over = p
        else:
            under = p
    return done("max_probes")


def decades_needed(a: Probe, b: Probe, target_ms: float) -> float:
    """How many decades of λ1 beyond ``b`` the target lies, going on as from ``a`` to ``b``
    (infinite when that step did not move the latency toward it)."""
    gain = (b.mean - a.mean) * math.copysign(1.0, target_ms - b.mean)  # ms toward the target
    if gain <= 0:
        return math.inf
    return abs(target_ms - b.mean) / gain * abs(math.log10(b.lam / a.lam))


# ----------------------------------------------------------------------------- with real searches


def tune_objective(ctx, objective: str, seeds: Sequence[int], *, lam0: float | None = None,
                   tol: float = TOL, max_probes: int | None = None) -> Result:
    """Tune λ1 of ``objective`` (c1/c2) for ``ctx``'s profile: searches w/o elasticity scaling at
    every seed, through the run store.  λ2 of C1 stays at its default."""
    from tfnas_core.experiments import runs as R

    if objective not in TUNED:
        raise ValueError(f"objective: only {', '.join(TUNED)} are tuned (no target in the loss), got {objective!r}")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds: give at least one seed to tune over")
    fixed = {"lam2": objectives.DEFAULTS["c1"]["lam2"]} if objective == "c1" else {}
    target = target_of(ctx)

    def measure(lam: float) -> list[float]:
        runs = R.search_runs(ctx, seeds, objective=objective, elasticity=False, lam=lam, **fixed)
        if len(runs) < len(seeds):  # compute off: every missing seed is listed (ctx.missing), then the probe stops
            raise R.MissingRun(f"tuning {objective}: λ1 = {lam:g} has {len(runs)} of {len(seeds)} searches finished")
        return [r.summary["lut_ms"] for r in runs]

    ctx.say(f"tuning {objective} λ1 to the target {target:.3f} ms over seeds {seeds} (w/o elasticity scaling)")
    if lam0 is None:
        lam0 = objectives.DEFAULTS[objective]["lam"] * START.get(ctx.profile, 1.0)
    res = tune(measure, target, lam0, tol=tol,
               max_probes=MAX_PROBES.get(ctx.profile, 6) if max_probes is None else max_probes, say=ctx.say)
    return Result(res.lam, res.target_ms, tuple(Probe(p.lam, p.latencies, tuple(seeds)) for p in res.probes),
                  res.status, Probe(res.best.lam, res.best.latencies, tuple(seeds)))


def target_of(ctx) -> float:
    """The target latency of ``ctx``'s searches (resolved as a search resolves it)."""
    from tfnas_core.experiments import runs as R
    from tfnas_core.search import config as search_config

    cfg = R.search_cfg(ctx, 0)
    return search_config.resolve(dataclasses.replace(cfg, device="cpu"), False, search_config.load_lut(cfg)).target_ms


def lut_digest(ctx) -> str:
    from tfnas_core.experiments import runs as R

    return (R.search_key(R.search_cfg(ctx, 0))["lut_sha256"] or "")[:16]


def rows(objective: str, res: Result, lut_sha: str) -> tuple[dict, list[dict]]:
    """One row for ``tuned-<profile>.csv`` and one per probe for ``tuned_probes-<profile>.csv``."""
    lam2 = objectives.DEFAULTS["c1"]["lam2"] if objective == "c1" else None
    seeds = " ".join(map(str, res.best.seeds))
    row = {"objective": objective, "lam": res.lam, "lam2": lam2, "mean_ms": res.best.mean, "std_ms": res.best.std,
           "min_ms": min(res.best.latencies), "max_ms": max(res.best.latencies), "target_ms": res.target_ms,
           "gap_pct": res.gap_pct, "searches": res.searches, "probes": len(res.probes), "seeds": seeds,
           "status": res.status, "tol_pct": 100 * TOL, "lut_sha256": lut_sha}
    probes = [{"objective": objective, "probe": i, "lam": p.lam, "lam2": lam2, "mean_ms": p.mean, "std_ms": p.std,
               "latencies_ms": " ".join(f"{x:.3f}" for x in p.latencies), "seeds": seeds, "target_ms": res.target_ms}
              for i, p in enumerate(res.probes, 1)]
    return row, probes


@dataclass(frozen=True)
class Tuned:
    """The λ values the notebooks give C1/C2, and where they came from."""

    values: dict[str, dict[str, float]]  # objective -> {"lam": .., ("lam2": ..)}
    source: str
    table: pd.DataFrame | None = None
    incomplete: tuple[str, ...] = ()  # objectives whose tuning needs runs a compute=False context lacks

    def overrides(self, objective: str) -> dict[str, float]:
        return dict(self.values.get(objective, {}))


@planned
def tuned_values(ctx, seeds: Sequence[int], tune_on: bool = True, results_dir: str = RESULTS_DIR,
                 write: bool = True, suffix: str = "", start: dict[str, dict[str, float]] | None = None) -> Tuned:
    """C1/C2's λ for ``ctx``: from ``results_dir/tuned-<profile><suffix>.csv`` when it holds this
    target, LUT and search length, else tuned now (and the CSVs written); ``tune_on=False``:
    ``objectives.DEFAULTS``.  ``suffix``: another budget's tuning (``-long``: the longer searches);
    ``start``: objective -> values to start the bracketing from (e.g. the profile's own tuning),
    instead of ``START``.  With ``ctx.compute`` off, an objective whose probes are not all finished
    is left out and named in ``Tuned.incomplete``."""
    from tfnas_core.experiments import runs as R
    from tfnas_core.runs.store import write_table

    if not tune_on:
        return Tuned({o: {} for o in TUNED}, "untuned: objectives.DEFAULTS (" + ", ".join(
            f"{o}: " + ", ".join(f"{k} {v:g}" for k, v in objectives.DEFAULTS[o].items()) for o in TUNED) + ")")
    path = Path(results_dir) / f"tuned-{ctx.profile}{suffix}.csv"
    target, sha, epochs = target_of(ctx), lut_digest(ctx), R.search_cfg(ctx, 0).epochs
    if path.is_file():
        table = pd.read_csv(path)
        ok = (set(TUNED) <= set(table["objective"]) and (table["target_ms"] - target).abs().max() < 1e-6
              and (table["lut_sha256"].astype(str) == sha).all()
              and ("epochs" not in table or (table["epochs"] == epochs).all()))
        if ok:
            return Tuned(_values(table), f"read from {path} (tuned earlier: "
                         f"{int(table['searches'].sum())} searches over seeds {table['seeds'].iloc[0]})", table)
        ctx.say(f"{path}: tuned for another target, LUT or search length, or not finished; tuning again")
    rows_, probes, incomplete = [], [], []
    for obj in TUNED:
        lam0 = (start or {}).get(obj, {}).get("lam")
        try:
            row, pr = rows(obj, tune_objective(ctx, obj, seeds, lam0=lam0), sha)
        except R.MissingRun as e:
            ctx.say(f"tuning {obj}: not finished ({e})")
            incomplete.append(obj)
            continue
        rows_.append({**row, "epochs": epochs})
        probes += pr
    table = pd.DataFrame(rows_)
    written = write and bool(rows_) and not ctx.planning
    if written:
        write_table(table, path.with_suffix(""), floatfmt=".4g")
        write_table(pd.DataFrame(probes), path.with_name(f"tuned_probes-{ctx.profile}{suffix}"), floatfmt=".4g")
    searches = sum(r["searches"] for r in rows_)
    return Tuned(_values(table), f"tuned now ({searches} searches over seeds {' '.join(map(str, seeds))})"
                 + (f", written to {path}" if written else "")
                 + (f"; not finished: {', '.join(incomplete)}" if incomplete else ""), table, tuple(incomplete))


def _values(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    out = {}
    for r in table.itertuples(index=False):
        v = {"lam": float(r.lam)}
        if r.objective == "c1":
            v["lam2"] = float(r.lam2)
        out[r.objective] = v
    return out


__all__ = ["FACTOR", "MAX_PROBES", "Probe", "Result", "TOL", "TUNED", "Tuned", "tune", "tune_objective",
           "tuned_values"]
