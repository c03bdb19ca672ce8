"""A missing run computed as a job in a worker (a local worker process or a SLURM job): ``run_job``,
the runner every executor is handed by name (``RUNNER``), rebuilds the notebook's context from the
job's settings and takes the inline code path (``runs.search_run`` / ``runs.retrain_run``).

A retraining at the paper profile that SLURM runs as one job of several tasks trains DDP over
them (``train.run``'s torchrun path, the rank variables taken from SLURM's).
"""
from __future__ import annotations

import os
import time
import traceback
from typing import Callable

from tfnas_core.arch import spec as arch_spec
from tfnas_core.execution.jobs import Job
from tfnas_core.experiments.context import Context
from tfnas_core.experiments.runs import retrain_run, search_run, train_key
from tfnas_core.runs import files as run_files
from tfnas_core.train import config as profiles

RUNNER = "tfnas_core.experiments.jobs:run_job"  # what every executor is told to run a job with (module:function)


def _slurm_dist() -> tuple[int, int, int] | None:
    """(rank, world, local rank) of a SLURM job step of several tasks, else None."""
    n = int(os.environ.get("SLURM_NTASKS", "1") or 1)
    if n <= 1 or "SLURM_PROCID" not in os.environ:
        return None
    return int(os.environ["SLURM_PROCID"]), n, int(os.environ.get("SLURM_LOCALID", "0"))


def run_job(job: Job) -> dict:
    """Compute ``job`` in this process (a worker): ``runs.search_run`` / ``runs.retrain_run``, the
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


def _ddp_retrain(ctx: Context, job: Job, log: Callable[[str], None]) -> None:
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
    run = ctx.store.run_folder("train", key_cfg, run_files.DONE["train"], profiles.RESUME_FREE_KEYS)
    if run.done:
        return
    if rank == 0:  # what RunStore.get_or_run and retrain_run's runner write before training
        ctx.store.write_record(run, key_cfg)
        arch_spec.save(spec, run.path / run_files.SPEC)
    log(f"DDP rank {rank}/{world} (local {local}), master {os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}")
    train.run(spec, cfg, run.path, log=log if rank == 0 else None)


def _first_host(nodelist: str) -> str:
    """The first host of a SLURM node list (``node[1-3,7]`` -> ``node1``)."""
    import re

    m = re.match(r"([^,\[]+)(?:\[(\d+))?", nodelist)
    return (m.group(1) + (m.group(2) or "")) if m else "127.0.0.1"
