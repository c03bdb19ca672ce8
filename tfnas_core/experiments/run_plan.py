"""A run plan: the runs an experiment needs, computed by an executor before the experiment renders.

An experiment (``tables.ablation``, ``tables.searches``, ``figures.fig2/4/5``,
``tuning.tuned_values``) is planned, then run: with ``Context.executor`` other than ``inline``,
``run_plan`` calls it with a *planning* context (``compute`` off: every finished run is read,
every missing one is listed as an ``execution.jobs.Missing`` with its ``Job`` and nothing is
computed), hands the missing jobs to the executor all at once (``execution.engine.execute``: one
batch, on SLURM one job array, per dependency level: the searches first, then the retrainings of
the specs they derived, then the next probe of a λ tuning), and repeats until nothing is missing.
The last call computes nothing: it reads every run from the run store, the one place where runs
meet, so the tables are those ``inline`` gives (a run's records and results are the same
whichever process computed it; ``execution.fingerprint`` compares them).

A job that fails is reported with its log path while the others go on; ``run_plan`` raises
``PlanFailed`` naming every failed run once its level has finished.  A rerun picks up what
finished (the run store reuses it) and resumes what was interrupted.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from tfnas_core.execution.engine import execute
from tfnas_core.execution.jobs import Job, PlanFailed, missing_jobs
from tfnas_core.experiments.context import Context
from tfnas_core.experiments.jobs import RUNNER


def planning_pass(ctx: Context, build: Callable[[Context], Any]) -> tuple[Any, list[Job], Context]:
    """``build`` on a planning copy of ``ctx`` (reads finished runs, computes nothing): its result,
    the jobs of the missing runs (one per key, first ask first) and the copy (its ledger and missing)."""
    probe = ctx.replace(compute=False, planning=True, missing=[], ledger=[])
    result = build(probe)
    return result, missing_jobs(probe.missing), probe


def run_plan(ctx: Context, build: Callable[[Context], Any], final: bool = True):
    """``build(ctx)`` with its missing runs computed by ``ctx.executor`` first, level by level;
    ``final=False``: only compute them (``plans.run``), return None."""
    settings = ctx.executor_settings()
    computed: set[str] = set()
    attempted: set[str] = set()
    level = 0
    while True:
        _, jobs, _ = planning_pass(ctx, build)
        if not jobs:
            break
        again = [j.key for j in jobs if j.key in attempted]
        if again:
            raise ValueError(f"runs {', '.join(again)} were computed and are still missing from the run store "
                             f"{ctx.runs_root} (another runs_root on the workers?)")
        level += 1
        outcomes = execute(jobs, settings, RUNNER, level=level)
        attempted.update(j.key for j in jobs)
        failed = [o for o in outcomes if not o.ok]
        computed.update(o.job.key for o in outcomes if o.ok)
        if failed:
            raise PlanFailed(failed)
    if not final:
        return None
    start = len(ctx.ledger)
    result = build(ctx)  # everything is finished: read from the run store, as inline would
    for row in ctx.ledger[start:]:
        if row["key"] in computed:
            row["source"] = f"computed now ({ctx.executor})"
    return result


def planned(fn: Callable) -> Callable:
    """Make ``fn(ctx, ...)`` go through ``run_plan`` when ``ctx.executor`` is not ``inline`` (and
    ``ctx`` computes and is not itself a planning pass)."""
    @functools.wraps(fn)
    def wrapper(ctx, *args, **kwargs):
        if ctx.executor == "inline" or not ctx.compute or ctx.planning:
            return fn(ctx, *args, **kwargs)
        return run_plan(ctx, lambda c: fn(c, *args, **kwargs))
    return wrapper
