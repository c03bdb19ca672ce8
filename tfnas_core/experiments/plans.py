"""The runs each notebook needs, before it runs: ``python -m tfnas_core plan NOTEBOOK`` (``make plan-table3``).

``steps(notebook, ctx, ...)`` lists a notebook's experiments in its own order: the very functions
its cells call (``tables.table3`` ... ``table13_long``, ``figures.fig2/4/5``, ``tuning.tuned_values``:
one source for each table's runs, so planned keys and run keys cannot drift), Table 5's C1/C2
tuning, then its ablation, then the longer searches; ``plan(...)`` makes one planning pass over
each (``run_plan.planning_pass``: finished runs are read, nothing is computed) and returns one row
per run with its run-store key and status:

* ``done`` (in the run store), ``archived`` (reused from ``run_archive/``), ``partial`` (started,
  resumes), ``missing``;
* ``after search KEY``: a retraining whose spec the missing search will derive (its key is not
  known before).  A C1/C2 tuning lists its next probe only; the C1/C2 rows of Table 5 and Fig. 5
  join the plan once their tuning has finished (their λ is not known before).

``est_min`` is the wall time a missing run is expected to take: the median of finished runs of
the same kind, profile and epochs (this plan's, the run store's and the archive's, as they were
measured); ``-`` where none has run.  ``run(...)`` computes a notebook's missing runs with an
executor without rendering anything (``plan --run``): the notebook then renders from the store.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

NOTEBOOKS = ("table3-sampling", "table4-depth-space", "table5-latency-objectives", "table13-lambda",
             "fig2-operation-collapse", "fig4-depth-and-latency", "fig5-latency-objectives")
TUNED_DIR = "results/table5-latency-objectives"


@dataclass(frozen=True)
class Step:
    label: str
    build: Callable[[Any], Any]  # build(ctx): the library call(s) of one notebook section


def resolve(name: str) -> str:
    """A notebook's name from ``table3``, ``table3-sampling`` or ``notebooks/table3-sampling.ipynb``."""
    stem = Path(name).stem
    hits = [n for n in NOTEBOOKS if n == stem] or [n for n in NOTEBOOKS if n.startswith(stem + "-")]
    if len(hits) != 1:
        raise ValueError(f"notebook {name!r}: expected one of {', '.join(NOTEBOOKS)} (or its prefix, e.g. table3); "
                         "model-zoo and report run no searches")
    return hits[0]


def steps(notebook: str, ctx, seeds: Sequence[int], long_factor: int = 3, tune: bool = True,
          tune_seeds: Sequence[int] | None = None, tuned_dir: str = TUNED_DIR) -> list[Step]:
    """The experiments of ``notebook`` at ``ctx``, in the notebook's order (its default parameters);
    ``tuned_dir``: where the notebooks read the tuned C1/C2 values (``launch.output_dirs``)."""
    from tfnas_core.experiments import figures, tables, tuning
    from tfnas_core.experiments.runs import longer

    nb, seeds = resolve(notebook), list(seeds)
    tseeds = list(tune_seeds or seeds)
    ctx_long = longer(ctx, long_factor)

    def tuned(c, suffix: str = "", start=None):
        return tuning.tuned_values(c, tseeds, tune_on=tune, results_dir=tuned_dir, write=False, suffix=suffix, start=start)

    def long_tuned(c):
        return tuned(longer(c, long_factor), "-long", tuned(c).values)

    out: list[Step] = []
    if nb == "table3-sampling":
        out.append(Step("Table 3", lambda c: tables.table3(c, seeds)))
    elif nb == "table4-depth-space":
        out.append(Step("Table 4", lambda c: tables.table4(c, seeds)))
    elif nb == "table13-lambda":
        out.append(Step("Table 13", lambda c: tables.table13(c, seeds)))
        if ctx_long is not None:
            out.append(Step(f"Table 13, {long_factor}x epochs",
                            lambda c: tables.table13_long(longer(c, long_factor), seeds)))
    elif nb == "table5-latency-objectives":
        out.append(Step("C1/C2 tuning", lambda c: tuned(c)))
        out.append(Step("Table 5", lambda c: tables.table5(c, seeds, tuned(c))))
        if ctx_long is not None:
            out.append(Step(f"C1/C2 tuning, {long_factor}x epochs", long_tuned))
            out.append(Step(f"Table 5, {long_factor}x epochs",
                            lambda c: tables.table5_long(longer(c, long_factor), seeds, long_tuned(c))))
    elif nb == "fig2-operation-collapse":
        out.append(Step("Fig. 2", lambda c: figures.fig2(c, seeds)))
        if ctx_long is not None:
            out.append(Step(f"Fig. 2, {long_factor}x epochs", lambda c: figures.fig2(longer(c, long_factor), seeds)))
    elif nb == "fig4-depth-and-latency":
        out.append(Step("Fig. 4", lambda c: figures.fig4(c, seeds)))
        if ctx_long is not None:
            out.append(Step(f"Fig. 4, {long_factor}x epochs", lambda c: figures.fig4(longer(c, long_factor), seeds)))
    elif nb == "fig5-latency-objectives":
        out.append(Step("C1/C2 tuning", lambda c: tuned(c)))
        out.append(Step("Fig. 5", lambda c: figures.fig5(c, seeds, tuned(c).values)))
        if ctx_long is not None:
            out.append(Step(f"C1/C2 tuning, {long_factor}x epochs", long_tuned))
            out.append(Step(f"Fig. 5, {long_factor}x epochs",
                            lambda c: figures.fig5(longer(c, long_factor), seeds, long_tuned(c).values, tuned_only=True)))
    return out


def _status(row: dict) -> str:
    return {"run store": "done", "archive": "archived", "absent": "missing"}.get(row.get("source") or row.get("status"),
                                                                              row.get("source") or row.get("status"))


def plan(notebook: str, ctx, seeds: Sequence[int], **kw) -> pd.DataFrame:
    """One row per run ``notebook`` needs (first ask first): step, kind, what, seed, key, status, epochs,
    est_min and what the estimate rests on (``est_from``: finished runs of the same kind, profile and
    epochs; at the paper profile without one, a search from the GPU step rates)."""
    from tfnas_core.experiments.run_plan import planning_pass
    from tfnas_core.experiments.runs import search_cfg, train_cfg

    rows: list[dict] = []
    for st in steps(notebook, ctx, seeds, **kw):
        _, _, probe = planning_pass(ctx, st.build)
        for r in probe.ledger:
            rows.append({"step": st.label, "kind": r["kind"], "what": r["what"], "seed": r["seed"], "key": r["key"],
                         "status": _status(r), "epochs": None, "wall_min": r["wall_min"]})
        for m in probe.missing:
            rows.append({"step": st.label, **m.row(), "status": _status(m.row()),
                         "epochs": m.job.epochs if m.job is not None else None, "wall_min": None})
    df = pd.DataFrame(rows, columns=["step", "kind", "what", "seed", "key", "status", "epochs", "wall_min"])
    keyed = df[df["key"].notna()].drop_duplicates("key")
    df = pd.concat([keyed, df[df["key"].isna()]]).sort_index()
    walls, scfg, tcfg = _finished_walls(ctx), search_cfg(ctx, 0), train_cfg(ctx, 0)
    est, basis, rated = [], [], None
    for r in df.itertuples():
        e, b = None, None
        if r.status not in ("done", "archived"):
            profile = scfg.profile if r.kind == "search" else tcfg.profile
            e = _estimate(walls, profile, r.kind, r.epochs if r.kind == "search" else tcfg.epochs)
            b = "finished runs" if e is not None else None
            if e is None and r.kind == "search" and scfg.profile == "paper":
                rated = rated or _step_seconds(scfg)  # the list and the rates read once
                e, b = _search_minutes_from_rate(scfg, r.epochs, rated)
        est.append(e)
        basis.append(b)
    df["est_min"] = pd.array(est, dtype="Float64")
    df["est_from"] = basis
    return df.drop(columns=["wall_min"]).reset_index(drop=True)


# Measured search step rates on GPUs (images/s at batch 32, 224 px, the paper's supernet): what
# ``plan`` estimates a paper search from when no search of its kind has finished.  A rate measured
# by benchmarks/device_check.sh (results/bench/device/search_bench_cuda.json) is used first.
GPU_STEP_RATES = {
    # H100, fast path, batch 32: weight step (bi-sampling) 404 img/s, relaxed arch step 169 img/s
    # (lent H100, measured 2026; DEVELOPERS.md "Measuring on these machines")
    "H100": {"weight": 404.0, "arch": 169.0},
}
DEVICE_BENCH = "results/bench/device/search_bench_cuda.json"


def _measured_rates() -> tuple[str, dict[str, float]]:
    """(which GPU, {weight, arch} images/s): the device check's own measurement when there is one
    (a torn one is refused naming it; one without the paper case at batch 32 is passed over)."""
    from tfnas_core.utils.checks import read_json

    path = Path(DEVICE_BENCH)
    if not path.is_file():
        return "H100", GPU_STEP_RATES["H100"]
    try:
        data = read_json(path, what="device benchmark")
    except ValueError as e:
        raise ValueError(f"{e}; rerun benchmarks/device_check.sh, or delete it to estimate from the H100 rates") from None
    try:
        case = next(c for c in data["cases"] if c["case"] == "paper" and c["batch"] == 32)
        impl = case["impls"]["graphed"] if "graphed" in case["impls"] else case["impls"]["fast"]
        rate = {"weight": float(impl["weight_bi"]["images_per_s"]), "arch": float(impl["arch_relaxed"]["images_per_s"])}
        return f"{data.get('gpu') or data.get('machine', 'GPU')}, {DEVICE_BENCH}", rate
    except (ValueError, KeyError, StopIteration, TypeError, AttributeError):
        return "H100", GPU_STEP_RATES["H100"]


def _step_seconds(cfg) -> tuple[float, float, str] | None:
    """(seconds of an epoch's weight steps, of its arch steps, which GPU) of a paper search from
    the GPU step rates: ``steps_per_epoch`` (or the weights list / batch) weight steps, one arch
    step after every ``arch_every``-th (data loading not counted); None without the list."""
    from tfnas_core.search import data as search_data

    try:
        n_weights = len(search_data.read_list(cfg.train_list))
    except (OSError, ValueError):
        return None
    steps = n_weights // cfg.batch_size
    if cfg.steps_per_epoch:
        steps = min(steps, cfg.steps_per_epoch)
    gpu, rate = _measured_rates()
    return (steps * cfg.batch_size / rate["weight"], (steps // cfg.arch_every) * cfg.batch_size / rate["arch"], gpu)


def _search_minutes_from_rate(cfg, epochs, rated) -> tuple[float | None, str | None]:
    """Minutes of a paper search of ``epochs`` from ``_step_seconds``: weight steps every epoch,
    arch steps after the warm-up."""
    if rated is None:
        return None, None
    w_s, a_s, gpu = rated
    epochs = int(epochs) if epochs is not None and epochs == epochs else cfg.epochs
    warm = min(cfg.warmup_epochs, epochs)
    return (warm * w_s + (epochs - warm) * (w_s + a_s)) / 60, f"step rate ({gpu})"


def _finished_walls(ctx) -> list[tuple[str, str, int | None, float]]:
    """(kind, profile, epochs, wall minutes) of every finished run in the run store and the archive;
    a torn ``store.json`` or done file is refused naming it (``run_loop.read_done``)."""
    from tfnas_core.experiments.runs import damaged_hint
    from tfnas_core.runs import files as run_files
    from tfnas_core.runs import loop as run_loop
    from tfnas_core.utils.checks import read_json

    out = []
    for root in (r for r in (ctx.runs_root, ctx.archive_root) if r):
        archived = root == ctx.archive_root
        for store in Path(root).glob(f"*/{run_files.STORE}"):
            meta = read_json(store, what="run-store record")
            if not isinstance(meta, dict) or meta.get("kind") not in run_files.DONE \
                    or not isinstance(meta.get("config"), dict):
                raise ValueError(f"{store}: expected {{kind: search|train, key, config: {{...}}}}; "
                                 + damaged_hint(store.parent, archived))
            if not (store.parent / run_files.DONE[meta["kind"]]).is_file():
                continue  # not finished
            wall_key = "search_wall_s" if meta["kind"] == "search" else "wall_s"
            done = run_loop.read_done(store.parent / run_files.DONE[meta["kind"]], (wall_key,),
                                      hint=damaged_hint(store.parent, archived))
            wall = done[wall_key]
            cfg = meta["config"]
            out.append((meta["kind"], cfg.get("profile"), cfg.get("epochs"), wall / 60))
    return out


def _estimate(walls: list[tuple[str, str, int | None, float]], profile: str, kind: str, epochs) -> float | None:
    """The median wall minutes of the finished runs of ``kind`` at ``profile`` and ``epochs`` (None or NaN: any)."""
    known = epochs is not None and epochs == epochs
    same = [w for k, p, e, w in walls if k == kind and p == profile and (not known or e == epochs)]
    return statistics.median(same) if same else None


def summary_line(df: pd.DataFrame, jobs: int | None = None) -> str:
    """Plain words: how many runs, by status, and the estimated compute of the ones still to run."""
    counts = df["status"].map(lambda s: "waiting" if str(s).startswith("after") else s).value_counts()
    todo = df[~df["status"].isin(["done", "archived"])]
    est = todo["est_min"].dropna()
    unknown = len(todo) - len(est)
    parts = ", ".join(f"{n} {s}" for s, n in counts.items())
    line = f"{len(df)} runs: {parts}"
    if len(todo):
        line += f"; still to run: {est.sum():.0f} min of compute one after another"
        if est.sum() >= 600:
            line += f" ({est.sum() / 60:.0f} hours)"
        if jobs and jobs > 1:
            line += f" (about {est.sum() / jobs:.0f} min on {jobs} workers, if they run at full speed side by side)"
        if unknown:
            line += f", plus {unknown} run(s) with no finished run of their kind to estimate from"
    return line


def run(notebook: str, ctx, seeds: Sequence[int], **kw) -> None:
    """Compute every run ``notebook`` needs with ``ctx.executor`` (each step through ``run_plan``), rendering nothing."""
    from tfnas_core.experiments.run_plan import run_plan

    for st in steps(notebook, ctx, seeds, **kw):
        ctx.say(f"{st.label}: planning, then computing the missing runs ({ctx.executor})")
        run_plan(ctx, st.build, final=False)
