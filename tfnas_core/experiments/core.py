"""The experiments behind each table and figure, as library calls the notebooks make.

A notebook builds a ``Context`` (profile, run store, overrides) and asks for what it needs:

* ``search_run(ctx, seed, **variant)`` — a search run, reused when finished, resumed when
  interrupted, started when missing (``runs.RunStore``, keyed by the resolved config);
* ``retrain_run(ctx, spec, seed)`` — the retraining of a derived spec, the same way;
* ``ablation(ctx, variants, seeds)`` — for each variant: search → retrain → measure, one row per
  (variant, seed) with top-1, LUT and measured latency, FLOPs, search and retrain time;
* ``table3/table4/table5/table13`` — ``ablation`` with the paper's rows beside ours;
* ``fig2/fig4/fig5`` — the records of the searches each figure is drawn from.

Runs are shared between experiments whenever their configs agree: Table 3's Gumbel+Random run
is Table 4's sink-connecting run, Table 5's "Ours (|.|) with ES" run and Table 13's λ = 0.1 run.
"""
from __future__ import annotations

import dataclasses
import os
import time
import traceback
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pandas as pd

from tfnas_core import stats
from tfnas_core.arch import spec as arch_spec
from tfnas_core.execution import executors
from tfnas_core.nn import flops
from tfnas_core.latency import measure
from tfnas_core.report import paper_tables
from tfnas_core.report import plots
from tfnas_core.train import config as profiles
from tfnas_core.report import claims as report
from tfnas_core.runs import archive as run_archive
from tfnas_core.runs import loop as run_loop
from tfnas_core.search import config as search_config
from tfnas_core.arch import zoo
from tfnas_core.config import PROFILE_NAMES
from tfnas_core.execution.executors import planned
from tfnas_core.runs.store import RunStore
from tfnas_core.arch.space import Proxy

@dataclass
class Context:
    """Where runs live and how every search/retraining of a notebook is configured."""

    profile: str = "mini"
    runs_root: str = "runs"
    # finished runs committed without checkpoints (run_archive.py), reused when runs_root lacks them;
    # None, or TFNAS_FRESH=1 (make FRESH=1), ignores it and recomputes
    archive_root: str | None = run_archive.DEFAULT_ARCHIVE
    search_overrides: dict[str, Any] = field(default_factory=dict)  # applied to every search
    train_overrides: dict[str, Any] = field(default_factory=dict)  # applied to every retraining
    # where derived nets are measured at paper scale (measured_ms); None: the LUT's device when it is
    # here (the official GPU table: CUDA batch 32), else the CPU at batch 1 (measure.measure_setting)
    measure_device: str | None = None
    measure_repeats: int | None = None  # None: 20 timed runs (3 at the smoke profile)
    measure_min_s: float | None = None  # None: time at least 1 s (0 at the smoke profile)
    # the file keeping measured_ms per machine (measured.MeasuredStore; launch.measured_path: beside the
    # tables), so a re-render times nothing it timed before here; None: time on every call
    measured: str | None = None
    log: Callable[[str], None] | None = None  # every line a search/retraining logs (default: none)
    name: str = ""  # the notebook's name, shown on the terminal's progress lines
    progress: bool = True  # one line per epoch on the process's real stderr (progress.RunProgress)
    ledger: list = field(default_factory=list)  # every run this context asked for (runs_table), in order
    # False: finished runs only (run store or archive); a search that is not finished raises
    # MissingRun and is listed in ``missing``, nothing is computed (a section rendered from what is there)
    compute: bool = True
    missing: list = field(default_factory=list)
    shown_overrides: tuple[str, ...] = ()  # search_overrides named in every run's description (``longer``: epochs)
    # where missing runs are computed (executors.py): inline (here, one after another) | local (``jobs``
    # worker processes) | slurm (submitit job arrays, ``slurm``: executors.SlurmOptions fields)
    executor: str = "inline"
    jobs: int | None = None  # local workers; None: one per GPU where CUDA is present, else one per CPU core
    slurm: dict = field(default_factory=dict)
    planning: bool = False  # a planning pass of executors.run_plan: missing runs become jobs, nothing is computed

    def __post_init__(self) -> None:
        if self.profile not in PROFILE_NAMES:
            raise ValueError(f"unknown profile {self.profile!r}; known: {', '.join(PROFILE_NAMES)}")
        smoke = self.profile == "smoke"
        if self.measure_repeats is None:
            self.measure_repeats = 3 if smoke else 20
        if self.measure_min_s is None:
            self.measure_min_s = 0.0 if smoke else 1.0
        if self.measure_device not in (None, "cpu", "cuda"):
            raise ValueError(f"measure_device: expected None, 'cpu' or 'cuda', got {self.measure_device!r}")
        executors.check(self.executor, self.jobs, self.slurm)

    @property
    def runner(self) -> Callable[["executors.Job"], dict]:
        """How an executor's worker computes one of this context's missing runs (``run_job``)."""
        return run_job

    @property
    def store(self) -> RunStore:
        use_archive = self.archive_root is not None and not run_archive.fresh_requested()
        return RunStore(self.runs_root, archive=self.archive_root if use_archive else None)

    def say(self, msg: str) -> None:
        (self.log or (lambda m: print(m, file=sys.stderr)))(msg)

    def run_log(self, what: str, path: Path) -> Callable[[str], None]:
        """The ``log`` of one search/retraining: announces it in the cell and, with ``progress``,
        on the terminal, then reports every epoch there with its ETA."""
        self.say(f"{what} -> {path}")
        if not self.progress:
            return self.log or (lambda m: None)
        from tfnas_core.utils.progress import RunProgress

        p = RunProgress(what, self.name, forward=self.log)
        p.start(f"running in {path}")
        return p


# ----------------------------------------------------------------------------- single runs


class MissingRun(LookupError):
    """A run a ``compute=False`` context asked for is not finished (``Context.missing`` lists it)."""


def _missing(ctx: Context, job: "executors.Job", status: str, message: str) -> MissingRun:
    """List ``job`` in ``ctx.missing`` (for ``missing_table`` and the executors) and return the error to raise."""
    ctx.missing.append({"kind": job.kind, "what": job.what, "seed": job.seed, "key": job.key, "status": status, "job": job})
    return MissingRun(message)


@dataclass(frozen=True)
class SearchRun:
    path: Path
    config: search_config.SearchConfig
    summary: dict
    source: str = "run store"  # runs.Run.source: where the finished run was read

    @property
    def spec(self) -> arch_spec.Spec:
        return arch_spec.load(self.path / "spec.json")

    @property
    def records(self) -> pd.DataFrame:
        """The per-epoch records (``plots.load_records``), after ``check_records``."""
        self.check_records()
        return plots.load_records(self.path)

    def check_records(self) -> None:
        """Refuse, with one line naming ``records.jsonl`` (and the line), records that are torn, not
        one object per epoch of the run, or without a column the tables and figures read."""
        from tfnas_core.search import loop as search

        path = self.path / "records.jsonl"
        hint = damaged_hint(self.path, self.source == "archive")
        recs = search.read_records(path, hint)
        if len(recs) != self.config.epochs:
            raise ValueError(f"{path}: {len(recs)} epoch record(s), the run has {self.config.epochs}; {hint}")
        for i, r in enumerate(recs, 1):
            absent = [k for k in RECORD_KEYS if k not in r]
            if absent:
                raise ValueError(f"{path} line {i}: no {', '.join(absent[:3])}{' ...' if len(absent) > 3 else ''}; {hint}")


# what the tables and figures read from a finished run's done file (numbers; other values) and records
DONE_KEYS = {"search": (("search_wall_s", "lut_ms", "target_ms", "final_val_acc"), ("depths",)),
             "train": (("wall_s", "top1", "top5"), ())}
RECORD_KEYS = ("epoch", "phase", "derived_depths", "derived_ops", "lut_ms_after", "val_acc", "arch_steps")


def damaged_hint(run_dir: Path, archived: bool) -> str:
    """What to do about a run folder whose files are torn or incomplete."""
    if archived:
        return (f"a damaged archived run: restore it (git checkout -- {run_dir}) or delete {run_dir} "
                "to compute it again")
    return f"a damaged run: delete {run_dir} and rerun to compute it again"


def read_done(run_dir: Path, kind: str, archived: bool = False) -> dict:
    """The done file of the finished ``kind`` run in ``run_dir`` (``run_archive.DONE_FILES``) with
    every value the tables read (``DONE_KEYS``); a ``ValueError`` of one line naming it otherwise."""
    numbers, keys = DONE_KEYS[kind]
    return run_loop.read_done(Path(run_dir) / run_archive.DONE_FILES[kind], numbers, keys,
                              damaged_hint(Path(run_dir), archived))


def search_cfg(ctx: Context, seed: int, **variant: Any) -> search_config.SearchConfig:
    base = search_config.get_profile(ctx.profile)
    cfg = dataclasses.replace(base, **{**ctx.search_overrides, **variant, "seed": seed, "progress": False})
    return search_config.check(search_config.fill_objective_defaults(cfg))


def search_key(cfg: search_config.SearchConfig) -> dict[str, Any]:
    """The config a search is keyed by: its fields plus the SHA-256 of the LUT file it reads, so
    a rebuilt LUT under the same path never reuses runs made with the old one.

    imagenet-100 names its data, not where it lies: the location fields (``search_data.
    LOCATION_KEYS``: data_root, the lists' paths, split_dir) give way to ``data``, the lists'
    SHA-256 (``search_data.list_identity``), so moving ImageNet keeps every finished run.  Other
    datasets keep their fields as they are (the archived runs' keys)."""
    import hashlib

    from tfnas_core.search import data as search_data

    lut_path = search_config.resolve_path(cfg.lut)
    digest = hashlib.sha256(lut_path.read_bytes()).hexdigest() if lut_path.is_file() else None
    key = {**search_config.to_dict(cfg), "lut_sha256": digest}
    if cfg.dataset == "imagenet-100":
        key = {k: v for k, v in key.items() if k not in search_data.LOCATION_KEYS}
        key["data"] = search_data.list_identity(cfg)
    return key


def search_run(ctx: Context, seed: int, **variant: Any) -> SearchRun:
    """The search for ``variant`` (SearchConfig fields) at ``seed``: reused, resumed or run."""
    from tfnas_core.search import loop as search

    cfg = search_cfg(ctx, seed, **variant)
    cfg_dict = search_key(cfg)
    shown = {**variant, **{k: ctx.search_overrides[k] for k in ctx.shown_overrides if k not in variant}}
    desc = ", ".join(f"{k}={v}" for k, v in shown.items()) or "default"
    run = ctx.store.run_folder("search", cfg_dict, run_archive.DONE_FILES["search"], search_config.RESUME_FREE_KEYS)
    if not run.done and not ctx.compute:
        job = executors.Job("search", run.key, desc, seed, executors.context_fields(ctx), dict(variant), epochs=cfg.epochs)
        raise _missing(ctx, job, run.status, f"search [{desc}] seed {seed} ({run.key}) is {run.status}")
    if not run.done:
        run = ctx.store.get_or_run(
            "search", cfg_dict, lambda p: search.run(cfg, p, log=ctx.run_log(f"search [{desc}] seed {seed}", p)),
            run_archive.DONE_FILES["search"], ignore=search_config.RESUME_FREE_KEYS)
    out = SearchRun(run.path, cfg, read_done(run.path, "search", run.source == "archive"), run.source)
    out.check_records()  # a damaged run is named here, in the plan, not later in a figure
    _note_run(ctx, run, desc, seed, out.summary["search_wall_s"])
    return out


def train_cfg(ctx: Context, seed: int) -> profiles.TrainConfig:
    base = profiles.get_profile(ctx.profile)
    cfg = dataclasses.replace(base, **{**ctx.train_overrides, "seed": seed, "progress": False})
    return profiles.check(cfg)


def train_key(ctx: Context, spec: arch_spec.Spec, seed: int) -> tuple[profiles.TrainConfig, dict[str, Any]]:
    """The retraining config of ``spec`` at ``seed`` and the config its run is keyed by.

    imagenet is keyed by what its root holds (``data.image_folder_identity``: classes and files
    of train/ and val/), not by ``data_root``; other datasets by their fields as they are."""
    from tfnas_core.data import datasets as data

    cfg = train_cfg(ctx, seed)
    key = {"spec": {"name": spec.name, "space": spec.space, "stages": spec.to_dict()["stages"]}, **profiles.to_dict(cfg)}
    if cfg.dataset == "imagenet":
        del key["data_root"]
        key["data"] = data.image_folder_identity(cfg.data_root or "data/imagenet")
    return cfg, key


def retrain_run(ctx: Context, spec: arch_spec.Spec, seed: int = 0, label: str | None = None) -> dict:
    """Train ``spec`` from scratch with the profile's recipe: reused, resumed or run.

    ``label`` names the run in messages (default: the spec's name; searched specs of one seed
    share a name, so ``ablation`` passes the variant).  With ``ctx.compute`` off, a retraining that
    is not finished raises ``MissingRun`` (listed in ``ctx.missing``, with its job)."""
    from tfnas_core.train import retrain as train

    cfg, key = train_key(ctx, spec, seed)
    what = f"retrain [{label}] seed {seed} ({spec.name})" if label else f"retrain {spec.name} seed {seed}"
    if not ctx.compute:
        run = ctx.store.run_folder("train", key, run_archive.DONE_FILES["train"], profiles.RESUME_FREE_KEYS)
        if not run.done:
            job = executors.Job("train", run.key, label or spec.name, seed, executors.context_fields(ctx),
                                spec=spec.to_dict(), label=label, epochs=cfg.epochs)
            raise _missing(ctx, job, run.status, f"{what} ({run.key}) is {run.status}")
    run = ctx.store.get_or_run(
        "train", key, lambda p: (arch_spec.save(spec, p / "spec.json"),
                                 train.run(spec, cfg, p, log=ctx.run_log(what, p))),
        run_archive.DONE_FILES["train"], ignore=profiles.RESUME_FREE_KEYS)
    result = read_done(run.path, "train", run.source == "archive")
    _note_run(ctx, run, label or spec.name, seed, result["wall_s"])
    return result


def _note_run(ctx: Context, run, what: str, seed: int, wall_s: float) -> None:
    """One ledger row: which run, where it came from (``Run.source``), what it cost when it ran."""
    ctx.ledger.append({"kind": run.kind, "what": what, "seed": seed, "key": run.key, "source": run.source,
                       "wall_min": wall_s / 60})


def runs_table(ctx: Context) -> pd.DataFrame:
    """The distinct runs ``ctx`` used (first use first): kind, variant, seed, run key, where it came
    from (computed now / run store / archive) and the wall minutes it took when it ran (the
    run's own ``search_wall_s`` / ``wall_s``, so an archived run keeps what it cost to compute)."""
    cols = ["kind", "what", "seed", "key", "source", "wall_min"]
    df = pd.DataFrame(ctx.ledger, columns=cols)
    return df.drop_duplicates("key", keep="first").reset_index(drop=True)


def cost_line(runs: pd.DataFrame) -> str:
    """Plain words: how many searches and retrainings a table rests on and what they cost to compute."""
    if runs.empty:
        return "no search or retraining runs"
    c = report.cost_row("", runs)
    parts = [f"{c[n]} {one if c[n] == 1 else n} ({c[m]:.0f} min)"
             for n, one, m in (("searches", "search", "search_min"), ("retrainings", "retraining", "retrain_min"))
             if c[n]]
    return (f"{' + '.join(parts)} = {c['compute_min']:.0f} min of compute, one after another; "
            + ", ".join(f"{n} {s}" for s, n in runs["source"].value_counts().items()))


def longer(ctx: Context, factor: int, compute: bool | None = None) -> Context | None:
    """The context of a notebook's "longer search" section: every search ``factor`` times the
    profile's epochs with the same warm-up (so α/β get more than ``factor`` times the steps),
    sharing ``ctx``'s ledger (its runs join ``runs-<profile>.csv``).  ``compute=False``: finished
    runs only (``Context.compute``); None: ``ctx``'s.  A planning pass's copy shares its list of
    missing runs (``executors.planning_pass`` collects them).  None at the paper profile (its 90
    epochs are the paper's) or when ``factor <= 1``."""
    if ctx.profile == "paper" or factor <= 1:
        return None
    base = search_cfg(ctx, 0)
    return dataclasses.replace(ctx, search_overrides={**ctx.search_overrides, "epochs": factor * base.epochs,
                                                      "warmup_epochs": base.warmup_epochs},
                               ledger=ctx.ledger, compute=ctx.compute if compute is None else compute,
                               missing=ctx.missing if ctx.planning else [], shown_overrides=("epochs", "warmup_epochs"))


def _runs(ctx: Context, seeds: Iterable[int], **variant: Any) -> list[SearchRun]:
    """``search_run`` at every seed; with ``ctx.compute`` off, the finished ones only."""
    out = []
    for s in seeds:
        try:
            out.append(search_run(ctx, s, **variant))
        except MissingRun:
            pass
    return out


@planned
def searches(ctx: Context, variants: Sequence["Variant"], seeds: Iterable[int]) -> dict[str, list[SearchRun]]:
    """The searches of ``variants`` at ``seeds`` (no retraining), by variant label; with
    ``ctx.compute`` off, the finished ones only."""
    seeds = list(seeds)
    return {v.label: _runs(ctx, seeds, **v.overrides) for v in variants}


def missing_table(ctx: Context) -> pd.DataFrame:
    """The runs a ``compute=False`` context asked for and did not find finished."""
    rows = [m for m in ctx.missing if m.get("key") is not None]
    return pd.DataFrame(rows, columns=["kind", "what", "seed", "key", "status"]).drop_duplicates("key")


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


# ----------------------------------------------------------------------------- a run as a job (executors)


def _slurm_dist() -> tuple[int, int, int] | None:
    """(rank, world, local rank) of a SLURM job step of several tasks, else None."""
    n = int(os.environ.get("SLURM_NTASKS", "1") or 1)
    if n <= 1 or "SLURM_PROCID" not in os.environ:
        return None
    return int(os.environ["SLURM_PROCID"]), n, int(os.environ.get("SLURM_LOCALID", "0"))


def run_job(job: executors.Job) -> dict:
    """Compute ``job`` in this process (a worker): ``experiments.search_run`` / ``retrain_run``, the
    inline code path.  Appends its log lines to ``job.log``; on failure the traceback too, then raises."""
    job.log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(job.log, "a") as f:
        def log(msg: str) -> None:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}\n")
            f.flush()

        log(f"{job.kind} [{job.what}] seed {job.seed} ({job.key}) on {os.uname().nodename}, pid {os.getpid()}"
            + (f", SLURM job {os.environ['SLURM_JOB_ID']}" if "SLURM_JOB_ID" in os.environ else ""))
        ctx = Context(**job.ctx, progress=False, log=log)
        try:
            if job.kind == "search":
                search_run(ctx, job.seed, **job.variant)
            elif _slurm_dist() is not None:
                _ddp_retrain(ctx, job, log)
            else:
                retrain_run(ctx, arch_spec.validate(job.spec), job.seed, label=job.label)
        except SystemExit:  # submitit's time-limit hook: checkpointed (the run's last epoch) and requeued
            log("stopped by the scheduler (time limit or preemption): requeued, the run resumes from its last epoch")
            raise
        except BaseException:
            log("failed:\n" + traceback.format_exc())
            raise
        wall = time.perf_counter() - t0
        log(f"finished in {wall:.1f} s")
    return {"key": job.key, "wall_s": wall}


def _ddp_retrain(ctx: Context, job: executors.Job, log: Callable[[str], None]) -> None:
    """A retraining as one SLURM job of several tasks: every task a DDP rank (torchrun's
    variables from SLURM's); rank 0 writes the run folder's ``store.json``, ``train.run`` the rest."""
    from tfnas_core.train import retrain as train

    rank, world, local = _slurm_dist()
    nodes = os.environ.get("SLURM_JOB_NODELIST", "127.0.0.1")
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(local),
                      MASTER_ADDR=os.environ.get("MASTER_ADDR") or (
                          "127.0.0.1" if os.environ.get("SLURM_JOB_NUM_NODES", "1") == "1" else _first_host(nodes)),
                      MASTER_PORT=os.environ.get("MASTER_PORT") or str(20000 + int(os.environ.get("SLURM_JOB_ID", "0")) % 20000))
    spec = arch_spec.validate(job.spec)
    cfg, key_cfg = train_key(ctx, spec, job.seed)
    run = ctx.store.run_folder("train", key_cfg, run_archive.DONE_FILES["train"], profiles.RESUME_FREE_KEYS)
    if run.done:
        return
    if rank == 0:  # what RunStore.get_or_run and retrain_run's runner write before training
        ctx.store.write_record(run, key_cfg)
        arch_spec.save(spec, run.path / "spec.json")
    log(f"DDP rank {rank}/{world} (local {local}), master {os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}")
    train.run(spec, cfg, run.path, log=log if rank == 0 else None)


def _first_host(nodelist: str) -> str:
    """The first host of a SLURM node list (``node[1-3,7]`` -> ``node1``)."""
    import re

    m = re.match(r"([^,\[]+)(?:\[(\d+))?", nodelist)
    return (m.group(1) + (m.group(2) or "")) if m else "127.0.0.1"


# ----------------------------------------------------------------------------- ablations


@dataclass(frozen=True)
class Variant:
    label: str
    overrides: dict[str, Any]
    paper: dict[str, Any]  # the paper's numbers for this row (column -> value)


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
    carries a fingerprint for this device (the CPU table), its sentinel networks join the rounds and
    ``measured_ms_lut_base`` = ``measured_ms`` / speed factor is the latency in the LUT's time base
    (what the LUT would have been compared with when it was built); ``speed_factor`` says how much
    slower (> 1) or faster this machine ran than at the build.

    With ``ctx.compute`` off, the rows of finished runs only, unmeasured when any is missing (a
    planning pass: ``executors.run_plan``; a retraining waiting on its search is listed with
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
                    ctx.missing.append({"kind": "train", "what": v.label, "seed": seed, "key": None,
                                        "status": f"after search {ctx.missing[-1]['key']}", "job": None})
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
        e = report.paired_by_seed(per_seed, a, b, metric)
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


# ----------------------------------------------------------------------------- figures


@planned
def fig2(ctx: Context, seeds: Iterable[int], **variant: Any) -> dict[str, list[SearchRun]]:
    """Fig. 2: Gumbel-only vs bi-sampling (random second path), T linear 5.0 -> 0.2; ``variant``:
    more SearchConfig fields for both (the notebook's longer search: ``epochs``)."""
    seeds = list(seeds)
    return {label: _runs(ctx, seeds, second_path=sp, t_schedule="linear", **variant)
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
    depth = {name: _runs(ctx, seeds, depth_space=ds) for ds, name, *_ in paper_tables.TABLE4}
    es = {label: _runs(ctx, seeds, elasticity=on)
          for label, on in (("w/ elasticity scaling", True), ("w/o elasticity scaling", False))}
    return {"depth": depth, "latency": es}


@planned
def fig5(ctx: Context, seeds: Iterable[int], tuned: dict[str, dict[str, float]] | None = None,
         tuned_only: bool = False) -> dict[str, dict[str, list[SearchRun]]]:
    """Fig. 5: the searched latency of C1 and C2 with / without elasticity scaling; ``tuned``:
    objective -> its λ values (``tuning.Tuned.values``), default the objectives' defaults;
    ``tuned_only``: only the objectives ``tuned`` has (a tuning that is not finished has none)."""
    seeds, tuned = list(seeds), tuned or {}
    return {obj: {label: _runs(ctx, seeds, objective=obj, elasticity=on, **tuned.get(obj, {}))
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


# ----------------------------------------------------------------------------- the zoo


def zoo_table(lut_path: str | None, device: str | None = None, repeats: int = 20, min_time_s: float = 1.0,
              measure_on: bool = True, flops_convention: str = "official", details: bool = False,
              store=None) -> pd.DataFrame:
    """Tables 2/6/8/9/11 for the published architectures: our FLOPs and LUT latency beside the
    paper's, and the latency measured here with the LUT's error.

    Measured where the LUT was made (``measure.measure_setting``; ``device`` None: the LUT's device
    when it is here, else the CPU at batch 1), named in ``measured_on``, all nets interleaved in one
    timing (``measure.measure_many``: drift hits every row alike); measured elsewhere than
    the LUT (``measured_on`` says so, e.g. ``"cpu b1, not the LUT's cuda b32"``) ``lut_error_pct`` is
    left empty: the two are not comparable.  When the LUT carries a fingerprint for this setting (the
    CPU table), its sentinels join the rounds: ``measured_ms_lut_base`` = ``measured_ms`` / ``speed_factor``
    is the latency in the LUT's time base and ``lut_error_lut_base_pct`` the LUT's error against it.

    ``details`` adds the depths, why a LUT gives no latency (``lut_note``) and the known
    discrepancies of the paper's tables (``note``): what ``python -m tfnas_core zoo`` prints.
    ``store`` (``measured.MeasuredStore``): the timing is made once on this machine (``measure.measure_many``)."""
    from tfnas_core.latency import lut as latency

    lut = latency.load(lut_path) if lut_path else None
    where = measure.measure_setting(lut, device) if measure_on else None
    rows, specs = [], zoo.load_all()
    m = measure.measure_many(specs, device=where["device"], batch=where["batch"], threads=where["threads"],
                             repeats=repeats, min_time_s=min_time_s, lut=lut if where["comparable"] else None,
                             store=store) if measure_on else None
    factor = m.get("speed_factor") if m else None
    for name, spec in specs.items():
        p = zoo.PAPER[name]
        row = {"architecture": name, "space": spec.space,
               "flops_m": flops.count_flops(spec, convention=flops_convention),
               "paper_flops_m": p.flops_m, "params_m": flops.count_params(spec),
               "proxy_flops_m": flops.count_flops(spec, Proxy(28, 0.25, 1, 10, 1), convention=flops_convention),
               "paper_top1": p.top1, "paper_gpu_ms": p.gpu_ms, "paper_gpu_lut_ms": p.gpu_lut_ms,
               "paper_cpu_ms": p.cpu_ms, "lut_ms": None, "measured_ms": None, "lut_error_pct": None}
        if measure_on:
            row["measured_on"] = where["label"]
        lut_note = None
        if lut is not None:
            try:
                row["lut_ms"] = lut.predict(spec)
            except ValueError as e:  # e.g. the official GPU table has no mbv2 keys
                row["lut_ms"] = None
                lut_note = str(e).split(" (needed")[0]
        if measure_on:
            row["measured_ms"] = m["timings"][name].ms
            if row["lut_ms"] is not None and where["comparable"]:
                row["lut_error_pct"] = 100 * (row["lut_ms"] - row["measured_ms"]) / row["measured_ms"]
            if factor is not None:
                row.update(measured_ms_lut_base=row["measured_ms"] / factor, speed_factor=factor)
                if row["lut_ms"] is not None:
                    row["lut_error_lut_base_pct"] = 100 * (row["lut_ms"] / row["measured_ms_lut_base"] - 1)
        if details:
            row.update(depths="-".join(map(str, spec.depths)), lut_note=lut_note,
                       note=zoo.KNOWN_DISCREPANCIES.get(name))
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- reading results


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


def candidate_ops(ctx: Context, **variant: Any) -> list[str]:
    """Candidate op names (α order) of the space a search of ``ctx`` runs in."""
    from tfnas_core.arch.space import get_space

    cfg = search_cfg(ctx, 0, **variant)
    return list(get_space(cfg.space).ops)
