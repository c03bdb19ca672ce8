"""The ``local`` executor: a pool of worker processes on this machine.

``jobs`` workers (fresh interpreters that import torch once and compute one run after another,
each with ``cpu_count // jobs`` torch threads).  Where CUDA is present each worker sees one GPU
through ``CUDA_VISIBLE_DEVICES`` (worker ``i`` the ``i mod n``-th of the ``n`` visible GPUs, mapped
into an existing ``CUDA_VISIBLE_DEVICES`` list; ``local_gpus``) and ``jobs`` defaults to the GPU
count; on a CPU-only machine to one worker per CPU core (``default_workers``).

A worker is ``python -m tfnas_core.execution.local --serve`` (``_serve``): it reads one job a line
(``jobs.job_line``: data only, its runner named ``module:function``), computes it with its output
in the job's log, and answers ``ok KEY`` or ``failed MESSAGE``.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Sequence

from tfnas_core.execution.events import Progress, last_line, tell
from tfnas_core.execution.jobs import Job, Outcome, job_line, read_job_line, runner_function
from tfnas_core.execution.stale import unlink_stale_job_files

WORKER_MODULE = "tfnas_core.execution.local"  # python -m WORKER_MODULE --serve: one local worker
ENV_THREADS = "TFNAS_THREADS"  # a worker's torch threads (worker_env sets it, _serve reads it)


def local_gpus(cuda_available: bool | None = None, device_count: int | None = None,
               environ: dict | None = None) -> list[str]:
    """The GPUs a local pool hands out, as ``CUDA_VISIBLE_DEVICES`` entries: none without CUDA;
    else the entries of an existing ``CUDA_VISIBLE_DEVICES`` (indices or UUIDs, the first
    ``device_count`` of them: those torch sees), or ``0 .. device_count - 1``.  The arguments
    default to ``torch.cuda`` and ``os.environ`` (tests pass them)."""
    if cuda_available is None or device_count is None:
        import torch

        cuda_available = torch.cuda.is_available() if cuda_available is None else cuda_available
        device_count = (torch.cuda.device_count() if cuda_available else 0) if device_count is None else device_count
    if not cuda_available or device_count < 1:
        return []
    visible = (os.environ if environ is None else environ).get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return [str(i) for i in range(device_count)]
    entries = [e.strip() for e in visible.split(",") if e.strip()]
    return entries[:device_count]


def default_workers(gpus: Sequence[str] | None = None) -> int:
    """``jobs=None`` of the local pool: one worker per GPU where CUDA is present, else one per CPU core."""
    gpus = local_gpus() if gpus is None else gpus
    return len(gpus) or os.cpu_count() or 1


def worker_env(threads: int, gpu: str | None, environ: dict | None = None) -> dict:
    """The environment of a local worker: ``threads`` torch/OpenMP threads and, with ``gpu``, that
    one GPU as its ``cuda:0`` (``CUDA_VISIBLE_DEVICES``); without, the parent's CUDA setting."""
    env = {**(os.environ if environ is None else environ), ENV_THREADS: str(threads), "OMP_NUM_THREADS": str(threads)}
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    return env


class _Worker:
    """One local worker process (``python -m tfnas_core.execution.local --serve``): a fresh interpreter that
    imports torch once and then computes the jobs it is sent (``job_line``), one at a time, answering a line each."""

    def __init__(self, env: dict, log_dir: Path, n: int, slot: int = 0):
        import subprocess

        log_dir.mkdir(parents=True, exist_ok=True)
        self.slot = slot  # which of the pool's places it fills (a replacement takes the dead worker's, and its GPU)
        self.err = open(log_dir / f"worker-{n}.log", "a")  # what a worker prints outside any job
        self.proc = subprocess.Popen([sys.executable, "-m", WORKER_MODULE, "--serve"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True, bufsize=1)
        self.job: int | None = None
        self.t0 = 0.0

    def send(self, i: int, line: str) -> None:
        self.job, self.t0 = i, time.perf_counter()
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close(self, kill: bool = False) -> None:
        if self.proc.poll() is None:
            if kill:
                self.proc.terminate()
            else:
                try:
                    self.proc.stdin.close()
                except OSError:
                    pass
            try:
                self.proc.wait(timeout=30)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        self.err.close()


def run_local(jobs: Sequence[Job], runner: str, workers: int, progress: Progress,
               gpus: Sequence[str] | None = None) -> list[Outcome]:
    """At most ``workers`` worker processes (``_Worker``), each computing one job at a time; a job's
    output goes to its log.  With ``gpus`` (default ``local_gpus()``) the worker in place ``i`` sees
    only GPU ``gpus[i % len(gpus)]``, said on stderr and in its log.  A worker that dies takes only
    its current job with it (reported failed) and is replaced, on the same GPU, for the rest.

    Each job goes to its worker as one line of JSON on the worker's stdin (``job_line``), so no job
    lies on disk; the job files an earlier version left in ``_jobs/`` are removed first, unread."""
    import selectors

    runner_function(runner)  # refused here, before any worker starts, unless a worker may run it
    lines = [job_line(runner, j) for j in jobs]  # every job checked before a worker starts
    gpus = list(local_gpus() if gpus is None else gpus)
    threads = max(1, (os.cpu_count() or 1) // workers)
    log_dir = jobs[0].log.parent
    for jobs_dir in dict.fromkeys(j.log.parent for j in jobs):
        gone = unlink_stale_job_files(jobs_dir)
        if gone:
            tell(f"{progress.prefix}removed {len(gone)} stale job file(s) of an earlier version from {jobs_dir}, unread")
    outcomes: dict[int, Outcome] = {}
    queue = list(range(len(jobs)))
    pool: list[_Worker] = []
    sel = selectors.DefaultSelector()
    started = 0

    def start_worker(slot: int) -> _Worker:
        nonlocal started
        gpu = gpus[slot % len(gpus)] if gpus else None
        w = _Worker(worker_env(threads, gpu), log_dir, started, slot)
        if gpu is not None:
            line = f"{progress.prefix}local worker {started} (place {slot}): GPU {gpu} (CUDA_VISIBLE_DEVICES={gpu})"
            tell(line)
            w.err.write(line + "\n")
            w.err.flush()
        started += 1
        sel.register(w.proc.stdout, selectors.EVENT_READ, w)
        pool.append(w)
        return w

    def retire(w: _Worker) -> None:
        sel.unregister(w.proc.stdout)
        pool.remove(w)
        w.close(kill=True)

    try:
        for slot in range(min(workers, len(jobs))):
            start_worker(slot)
        while queue or any(w.job is not None for w in pool):
            for w in [w for w in pool if w.job is None]:
                if not queue:
                    break
                i = queue.pop(0)
                w.send(i, lines[i])
            failed = sum(not o.ok for o in outcomes.values())
            progress(len(outcomes) - failed, sum(w.job is not None for w in pool), failed, len(queue))
            for key, _ in sel.select(timeout=1.0):
                w: _Worker = key.data
                line = w.proc.stdout.readline()
                i, j = w.job, jobs[w.job] if w.job is not None else None
                if not line:  # the worker died (killed, out of memory, a crash in C)
                    if j is not None:
                        outcomes[i] = Outcome(j, False, f"worker died (exit {w.proc.wait()}): {last_line(j.log)}", str(j.log))
                    retire(w)
                    if queue:
                        start_worker(w.slot)
                    continue
                status, _, rest = line.rstrip("\n").partition(" ")
                outcomes[i] = (Outcome(j, True, log=str(j.log), wall_s=time.perf_counter() - w.t0) if status == "ok"
                               else Outcome(j, False, rest, str(j.log)))
                w.job = None
        failed = sum(not o.ok for o in outcomes.values())
        progress(len(outcomes) - failed, 0, failed, 0)
    except BaseException:
        for w in list(pool):  # interrupted: stop the workers (their runs resume on a rerun)
            w.close(kill=True)
        raise
    for w in pool:
        w.close()
    sel.close()
    return [outcomes[i] for i in range(len(jobs))]


def _serve(argv: list[str]) -> int:
    """A local worker (``_Worker``): ``--serve`` reads jobs from stdin, one line of JSON each
    (``job_line``), computes each (its output into the job's log) and answers ``ok KEY`` or ``failed
    MESSAGE``; a line that is not a job (``read_job_line``) is refused, unrun, with ``failed error: ...``."""
    import contextlib

    threads = os.environ.get(ENV_THREADS)
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    if argv != ["--serve"]:
        print("usage: python -m tfnas_core.execution.local --serve  (a local worker; local.run_local starts it)",
              file=sys.stderr)
        return 2
    answer = sys.stdout
    for line in sys.stdin:
        try:
            runner, job = read_job_line(line)
        except ValueError as e:
            msg = f"failed error: {e}"
            print(msg, file=sys.stderr, flush=True)  # the worker's own log
            answer.write(msg + "\n")
            answer.flush()
            continue
        job.log.parent.mkdir(parents=True, exist_ok=True)
        with open(job.log, "a") as out, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                runner(job)
                msg = f"ok {job.key}"
            except Exception as e:  # the runner wrote the traceback into the job's log
                first = str(e).strip().splitlines()
                msg = f"failed {type(e).__name__}: {first[0] if first else ''}"
        answer.write(msg + "\n")
        answer.flush()
    return 0


if __name__ == "__main__":  # the worker reads jobs as tfnas_core.execution.jobs.Job, the class the runners know
    from tfnas_core.execution.local import _serve as main

    sys.exit(main(sys.argv[1:]))
