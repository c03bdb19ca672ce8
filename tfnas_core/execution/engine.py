"""Where the runs of an experiment are computed: in this process, a local worker pool or SLURM.

``execute(jobs, settings, runner)`` computes a batch of independent jobs (``jobs.Job``: one
missing run each) with the executor ``settings`` names (``settings.ExecutorSettings``, all it is
told of the experiment), each by ``runner``, a public function of a ``tfnas_core`` module named
``module:function`` (``experiments.jobs.RUNNER``): a local worker is sent it by name, SLURM
pickles it by reference, ``inline`` calls it here.  It returns one ``Outcome`` per job and
reports progress as it goes (``events.Progress``); it never raises for a failed run (the caller
decides: ``experiments.run_plan`` raises ``jobs.PlanFailed``).

* ``inline``: one run after another in this process;
* ``local``: a pool of worker processes here (``local``);
* ``slurm``: ``submitit`` job arrays (``slurm``).

A run's records and results are the same whichever process computed it (``fingerprint``).
"""
from __future__ import annotations

from typing import Callable, Sequence

from tfnas_core.execution.events import Progress
from tfnas_core.execution.jobs import Job, Outcome, runner_function
from tfnas_core.execution.local import default_workers, local_gpus, run_local
from tfnas_core.execution.settings import ExecutorSettings
from tfnas_core.execution.slurm import run_slurm


def execute(jobs: Sequence[Job], settings: ExecutorSettings, runner: str, *, level: int = 1,
            on_submit: Callable[[list], None] | None = None) -> list[Outcome]:
    """Compute ``jobs`` (independent of each other) with ``settings.executor``, each by the function
    ``runner`` names (``module:function``, refused with a ``ValueError`` before anything starts unless
    a worker may run it: ``jobs.runner_function``); one ``Outcome`` per job, in order.  ``level``: the
    dependency level shown on the progress lines; ``on_submit``: called with SLURM's jobs once submitted."""
    if not isinstance(settings, ExecutorSettings):
        raise TypeError(f"execute: settings must be ExecutorSettings, got {type(settings).__name__}")
    jobs = list(jobs)
    fn = runner_function(runner)
    if not jobs:
        return []
    executor = settings.executor
    gpus = local_gpus() if executor == "local" else []
    workers = settings.jobs or default_workers(gpus)
    on = f", {len(gpus)} GPU(s)" if gpus else ""
    progress = Progress(settings.name, executor if executor != "local" else f"local ({workers} workers{on})",
                        len(jobs), level)
    if executor == "local":
        return run_local(jobs, runner, workers, progress, gpus)
    if executor == "slurm":
        return run_slurm(jobs, fn, settings.slurm, settings.slurm_folder, settings.profile, progress, on_submit)
    out = []
    for j in jobs:  # inline: here, one after another
        try:
            out.append(Outcome(j, True, log=str(j.log), wall_s=fn(j)["wall_s"]))
        except Exception as e:
            out.append(Outcome(j, False, f"{type(e).__name__}: {e}", str(j.log)))
        progress(sum(o.ok for o in out), 0, sum(not o.ok for o in out), len(jobs) - len(out))
    return out
