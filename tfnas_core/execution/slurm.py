"""The ``slurm`` executor: ``submitit`` job arrays (partition, GPUs, time limit, array throttle:
``settings.SlurmOptions``).

A job that reaches its time limit is requeued (``submitit``'s checkpoint hook) and the run resumes
from its last epoch checkpoint; a retraining at the paper profile with ``gpus > 1`` runs as one
job of ``gpus`` tasks, DDP over them (``train.run``'s torchrun path, the rank variables taken
from SLURM's).  SLURM jobs are ``submitit``'s pickles in ``RUNS/_slurm``, a folder only its owner
may enter (0700); the runner is pickled by reference (the job imports the package itself).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Sequence

from tfnas_core.execution.events import Progress, last_line
from tfnas_core.execution.jobs import Job, Outcome
from tfnas_core.execution.settings import SlurmOptions


def _submitit_runner(runner: Callable[[Job], dict]):
    """``submitit``'s checkpointable wrapper of ``runner``: on the time-limit signal the job is
    requeued with the same arguments, and the run resumes from its last epoch checkpoint."""
    import submitit

    class JobRunner(submitit.helpers.Checkpointable):
        def __init__(self, fn):
            self.fn = fn  # pickled by reference (experiments.run_job): the job imports the package itself

        def __call__(self, job: Job) -> dict:
            return self.fn(job)

    return JobRunner(runner)


def private_folder(folder: str | os.PathLike) -> Path:
    """``folder``, made if missing, with mode 0700: a folder of pickles that jobs load (submitit's) is
    code, so no other user may write into it.  ``ValueError`` when another user owns it."""
    folder = Path(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = folder.stat()
    if st.st_uid != os.getuid():
        raise ValueError(f"SLURM folder {folder}: owned by user id {st.st_uid}, not by you ({os.getuid()}); "
                         "its job pickles would run as your jobs: use a runs folder of your own")
    if st.st_mode & 0o777 != 0o700:
        os.chmod(folder, 0o700)
    return folder


def submit_slurm(jobs: Sequence[Job], runner: Callable[[Job], dict], opts: SlurmOptions, folder: str | os.PathLike,
                 profile: str = "mini"):
    """Submit ``jobs`` as job arrays (one per kind and task count) with ``opts``; the submitit jobs, in order.
    ``folder`` holds submitit's pickles, which the jobs load: it is made (or kept) private (``private_folder``)."""
    import shutil

    import submitit

    if shutil.which("sbatch") is None:
        raise ValueError("executor slurm: sbatch is not on the PATH (no SLURM client on this machine); "
                         "run where SLURM is, or use executor local or inline")
    private_folder(folder)
    out = [None] * len(jobs)
    groups: dict[tuple[int, int], list[int]] = {}  # (tasks, GPUs) -> the jobs of one array
    for i, j in enumerate(jobs):
        if j.kind == "train":
            tasks = opts.train_tasks or (opts.gpus if profile == "paper" and opts.gpus > 1 else 1)
            gpus = opts.gpus
        else:
            tasks, gpus = 1, opts.search_gpus if opts.search_gpus is not None else min(opts.gpus, 1)
        groups.setdefault((tasks, gpus), []).append(i)
    for (tasks, gpus), idx in groups.items():
        ex = submitit.AutoExecutor(folder=str(Path(folder) / "%j"), cluster="slurm",
                                   slurm_max_num_timeout=opts.max_requeues)
        params = dict(timeout_min=opts.timeout_min, slurm_array_parallelism=opts.array_parallelism,
                      slurm_signal_delay_s=opts.signal_delay_s,
                      name="tfnas", tasks_per_node=tasks, nodes=1)
        if opts.partition:
            params["slurm_partition"] = opts.partition
        if gpus:
            params["gpus_per_node"] = gpus
        if opts.cpus:
            params["cpus_per_task"] = opts.cpus
        if opts.mem_gb:
            params["mem_gb"] = opts.mem_gb
        if opts.additional:
            params["slurm_additional_parameters"] = dict(opts.additional)
        ex.update_parameters(**params)
        try:
            subs = ex.map_array(_submitit_runner(runner), [jobs[i] for i in idx])
        except (submitit.core.utils.FailedJobError, OSError) as e:  # no controller answers, a refused option ...
            said = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
            raise ValueError(f"executor slurm: sbatch refused the submission of {len(idx)} job(s): "
                             f"{said[-1] if said else type(e).__name__}") from None
        for i, s in zip(idx, subs):
            out[i] = s
    return out


def run_slurm(jobs: Sequence[Job], runner: Callable[[Job], dict], opts: SlurmOptions, folder: Path, profile: str,
               progress: Progress, on_submit: Callable[[list], None] | None = None) -> list[Outcome]:
    subs = submit_slurm(jobs, runner, opts, folder, profile)
    if on_submit is not None:
        on_submit(subs)
    outcomes: dict[int, Outcome] = {}
    while len(outcomes) < len(jobs):
        running = 0
        for i, s in enumerate(subs):
            if i in outcomes:
                continue
            if s.done():
                try:
                    r = s.results()[0]  # rank 0 of a multi-task (DDP) job; result() refuses sub-tasks
                    outcomes[i] = Outcome(jobs[i], True, log=str(jobs[i].log), wall_s=r["wall_s"])
                except Exception as e:  # FailedJobError (with the remote traceback), UncompletedJobError (cancelled)
                    state = s.state
                    why = last_line(jobs[i].log, failed_only=True) or f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"
                    outcomes[i] = Outcome(jobs[i], False, f"SLURM job {s.job_id} {state}: {why}",
                                          f"{jobs[i].log} (SLURM: {s.paths.stderr})")
            elif s.state == "RUNNING":
                running += 1
        failed = sum(not o.ok for o in outcomes.values())
        progress(len(outcomes) - failed, running, failed, len(jobs) - len(outcomes) - running)
        if len(outcomes) < len(jobs):
            time.sleep(opts.poll_s)
    return [outcomes[i] for i in range(len(jobs))]
