"""A notebook's single runs: a search (Sec. 3) and the retraining of its derived architecture, each
reused when finished, resumed when interrupted, started when missing (``runs.RunStore``, keyed by
the resolved config).

* ``search_run(ctx, seed, **variant)`` — a search run; ``search_runs`` — one per seed;
* ``retrain_run(ctx, spec, seed)`` — the retraining of a derived spec, the same way;
* ``runs_table`` / ``cost_line`` — the runs a context used and what they cost;
* ``missing_table`` — the runs a ``compute=False`` context found unfinished (``execution.jobs.Missing``);
* ``longer`` — the context of a notebook's "longer search" section.

Runs are shared between experiments whenever their configs agree: Table 3's Gumbel+Random run
is Table 4's sink-connecting run, Table 5's "Ours (|.|) with ES" run and Table 13's λ = 0.1 run.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from tfnas_core.arch import spec as arch_spec
from tfnas_core.config import IMAGENET_ROOT
from tfnas_core.execution.jobs import Job, Missing
from tfnas_core.experiments.context import Context, MissingRun
from tfnas_core.report import render as report_render
from tfnas_core.report import plots
from tfnas_core.runs import files as run_files
from tfnas_core.runs import loop as run_loop
from tfnas_core.search import config as search_config
from tfnas_core.train import config as profiles


def _missing(ctx: Context, job: Job, status: str, message: str) -> MissingRun:
    """List ``job`` in ``ctx.missing`` (for ``missing_table`` and the run plan) and return the error to raise."""
    ctx.missing.append(Missing(job.kind, job.what, job.seed, job.key, status, job))
    return MissingRun(message)


@dataclass(frozen=True)
class SearchRun:
    path: Path
    config: search_config.SearchConfig
    summary: dict
    source: str = "run store"  # runs.Run.source: where the finished run was read

    @property
    def spec(self) -> arch_spec.Spec:
        return arch_spec.load(self.path / run_files.SPEC)

    @property
    def records(self) -> pd.DataFrame:
        """The per-epoch records (``plots.load_records``), after ``check_records``."""
        self.check_records()
        return plots.load_records(self.path)

    def check_records(self) -> None:
        """Refuse, with one line naming ``records.jsonl`` (and the line), records that are torn, not
        one object per epoch of the run, or without a column the tables and figures read."""
        from tfnas_core.search import loop as search

        path = self.path / run_files.SEARCH_RECORDS
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
    """The done file of the finished ``kind`` run in ``run_dir`` (``run_files.DONE``) with
    every value the tables read (``DONE_KEYS``); a ``ValueError`` of one line naming it otherwise."""
    numbers, keys = DONE_KEYS[kind]
    return run_loop.read_done(Path(run_dir) / run_files.DONE[kind], numbers, keys,
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
    from tfnas_core.latency import lut as latency
    from tfnas_core.search import data as search_data

    key = {**search_config.to_dict(cfg), "lut_sha256": latency.file_sha256(search_config.resolve_path(cfg.lut))}
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
    run = ctx.store.run_folder("search", cfg_dict, run_files.DONE["search"], search_config.RESUME_FREE_KEYS)
    if not run.done and not ctx.compute:
        job = Job("search", run.key, desc, seed, ctx.job_settings(), dict(variant), epochs=cfg.epochs)
        raise _missing(ctx, job, run.status, f"search [{desc}] seed {seed} ({run.key}) is {run.status}")
    if not run.done:
        run = ctx.store.get_or_run(
            "search", cfg_dict, lambda p: search.run(cfg, p, log=ctx.run_log(f"search [{desc}] seed {seed}", p)),
            run_files.DONE["search"], ignore=search_config.RESUME_FREE_KEYS)
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
        key["data"] = data.image_folder_identity(cfg.data_root or IMAGENET_ROOT)
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
        run = ctx.store.run_folder("train", key, run_files.DONE["train"], profiles.RESUME_FREE_KEYS)
        if not run.done:
            job = Job("train", run.key, label or spec.name, seed, ctx.job_settings(),
                      spec=spec.to_dict(), label=label, epochs=cfg.epochs)
            raise _missing(ctx, job, run.status, f"{what} ({run.key}) is {run.status}")
    run = ctx.store.get_or_run(
        "train", key, lambda p: (arch_spec.save(spec, p / run_files.SPEC),
                                 train.run(spec, cfg, p, log=ctx.run_log(what, p))),
        run_files.DONE["train"], ignore=profiles.RESUME_FREE_KEYS)
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
    c = report_render.cost_row("", runs)
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
    missing runs (``run_plan.planning_pass`` collects them).  None at the paper profile (its 90
    epochs are the paper's) or when ``factor <= 1``."""
    if ctx.profile == "paper" or factor <= 1:
        return None
    base = search_cfg(ctx, 0)
    return ctx.replace(search_overrides={**ctx.search_overrides, "epochs": factor * base.epochs,
                                         "warmup_epochs": base.warmup_epochs},
                       ledger=ctx.ledger, compute=ctx.compute if compute is None else compute,
                       missing=ctx.missing if ctx.planning else [], shown_overrides=("epochs", "warmup_epochs"))


def search_runs(ctx: Context, seeds: Iterable[int], **variant: Any) -> list[SearchRun]:
    """``search_run`` at every seed; with ``ctx.compute`` off, the finished ones only."""
    out = []
    for s in seeds:
        try:
            out.append(search_run(ctx, s, **variant))
        except MissingRun:
            pass
    return out


def missing_table(ctx: Context) -> pd.DataFrame:
    """The runs a ``compute=False`` context asked for and did not find finished."""
    rows = [m.row() for m in ctx.missing if m.key is not None]
    return pd.DataFrame(rows, columns=list(Missing.COLUMNS)).drop_duplicates("key")


def candidate_ops(ctx: Context, **variant: Any) -> list[str]:
    """Candidate op names (α order) of the space a search of ``ctx`` runs in."""
    from tfnas_core.arch.space import get_space

    cfg = search_cfg(ctx, 0, **variant)
    return list(get_space(cfg.space).ops)
